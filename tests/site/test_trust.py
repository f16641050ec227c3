#!/usr/bin/env python3
"""test_trust.py - signed firmware on a real site (issue "Trust" section 7):
devices verify the publisher's signature and every chunk, a rogue root with
its own key and server is ignored, a lower sequence is refused across runs,
the server's bytes are checked against the manifest, and pfs-peer refuses to
start without a key or --allow-unsigned. Run as root (scripts/test.sh)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pfs_site as S  # noqa: E402
from test_site import expect, main  # noqa: E402

MODEL = ["CP-7961G"]
FILE = "dnld/signed.loads"


def finished(site, devices, code):
    for d in devices:
        expect(d.proc.returncode == code, "d%d exited %s, want %d: %s" % (
            d.idx, d.proc.returncode, code, d.stderr_text().strip()[-300:]))


def scenario_signed_rollout():
    """6 devices, signed file: every device verified the manifest (one per
    device, sequence kept in its state file) and holds the right bytes."""
    with S.Site(6, MODEL, {FILE: 600000}) as site:
        for d in site.devices:
            d.start([FILE])
        expect(site.wait(90), "rollout did not finish")
        finished(site, site.devices, 0)
        problems = S.check_outputs(site)
        expect(not problems, "; ".join(problems[:3]))
        verified = [d for d, _ in S.events(site, "manifest_verified")]
        expect(len(verified) == 6, "%d manifest_verified events, want 6" % len(verified))
        for d in site.devices:
            state = open(os.path.join(d.out, ".pfs-peer-state")).read()
            expect(FILE in state, "d%d state file lacks %s: %r" % (d.idx, FILE, state))
        return "6 devices verified the signed manifest and every chunk"


def scenario_no_trust_exit_2():
    """pfs-peer with neither --trust nor --allow-unsigned: exit 2, says why."""
    r = subprocess.run([S.PEER, "--iface", "lo", "--model", "M", "--want", "f", "--tftp", "h",
                        "--out", "/tmp"], capture_output=True, text=True, timeout=10)
    expect(r.returncode == 2, "exit %d, want 2" % r.returncode)
    expect("--trust" in r.stderr and "--allow-unsigned" in r.stderr, r.stderr)
    r = subprocess.run([S.PEER, "--iface", "lo", "--model", "M", "--want", "f", "--tftp", "h",
                        "--out", "/tmp", "--trust", "/nonexistent.pub"],
                       capture_output=True, text=True, timeout=10)
    expect(r.returncode == 3 and "/nonexistent.pub" in r.stderr, "missing key: %d %r"
           % (r.returncode, r.stderr))
    return "exit 2 without a key; a missing key file is named"


def scenario_rogue_root():
    """A class-15 device with its own key, its own TFTP server and its own
    firmware for the same name: no honest device ever holds its bytes, every
    honest device ends with the publisher's file and distrusts the rogue."""
    with S.Site(6, MODEL, {FILE: 400000}) as site:
        rogue = site.devices[0]
        honest = site.devices[1:]
        rroot = os.path.join(site.work, "rogue-root")
        S.make_file(os.path.join(rroot, FILE), 400000, 99)
        rsec = os.path.join(site.work, "rogue.sec")
        site.sign_files([], seckey=rsec)
        subprocess.run([S.SIGN, "sign", "--secret", rsec, "--name", FILE,
                        "--sequence", str(2 ** 40), os.path.join(rroot, FILE)],
                       check=True, stdout=subprocess.DEVNULL)
        tftpd = subprocess.Popen(["ip", "netns", "exec", rogue.ns, "in.tftpd", "-L", "-s",
                                  rroot, "-a", rogue.ip + ":69"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            rogue.start([FILE], extra=["--strength", "15", "--tftp", rogue.ip,
                                       "--trust", rsec[:-4] + ".pub", "--linger", "5"])
            for d in honest:
                d.start([FILE])
            expect(site.wait(120), "rollout did not finish")
        finally:
            tftpd.kill()
            tftpd.wait()
        finished(site, honest, 0)
        problems = S.check_outputs(site, devices=honest)
        expect(not problems, "; ".join(problems[:3]))
        rejected = [e for _, e in S.events(site, "manifest_rejected")]
        distrust = [e for _, e in S.events(site, "distrust")]
        expect(distrust, "no honest device distrusted the rogue root")
        return "%d honest devices complete; %d distrusts, %d manifests rejected" % (
            len(honest), len(distrust), len(rejected))


def scenario_rollback_refused():
    """A device that verified sequence 10 refuses a manifest with sequence 5
    for the same name on its next run (state kept across restarts)."""
    with S.Site(2, MODEL, {FILE: 50000}, signed=False) as site:
        site.sign_files([FILE], sequence=10)
        site.trust_args = ["--trust", site.pubkey]
        for d in site.devices:
            d.start([FILE])
        expect(site.wait(60), "first run did not finish")
        finished(site, site.devices, 0)
        site.sign_files([FILE], sequence=5)
        for d in site.devices:
            os.unlink(os.path.join(d.out, FILE))
            d.start([FILE])
        expect(site.wait(60), "second run did not finish")
        finished(site, site.devices, 1)
        for d in site.devices:
            err = d.stderr_text()
            expect("rollback" in err, "d%d did not name the rollback: %r" % (d.idx, err[-300:]))
            expect(not os.path.exists(os.path.join(d.out, FILE)), "an old file was published")
        return "sequence 5 after 10: both devices exit 1 naming the rollback"


def scenario_server_bytes_checked():
    """The file on the server changed after it was signed: the root's fetch
    fails its digest check, nothing is forwarded or published, exit 1."""
    with S.Site(3, MODEL, {FILE: 200000}) as site:
        path = os.path.join(site.tftp_root, FILE)
        data = bytearray(open(path, "rb").read())
        data[150000] ^= 0xff
        open(path, "wb").write(data)
        for d in site.devices:
            d.start([FILE])
        expect(site.wait(90), "devices did not give up")
        finished(site, site.devices, 1)
        for d in site.devices:
            expect(not os.path.exists(os.path.join(d.out, FILE)), "d%d published" % d.idx)
        errs = " ".join(d.stderr_text() for d in site.devices)
        expect("do not match the signed manifest" in errs, errs[-400:])
        return "a changed server copy is refused by its signed digests"


SCENARIOS = [scenario_no_trust_exit_2, scenario_signed_rollout, scenario_rogue_root,
             scenario_rollback_refused, scenario_server_bytes_checked]

if __name__ == "__main__":
    sys.exit(main(SCENARIOS, label="trust"))
