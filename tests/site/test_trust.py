#!/usr/bin/env python3
"""test_trust.py - signed firmware on a real site (issue "Trust" section 7):
devices verify the publisher's signature and every chunk, a rogue root with
its own key and server is ignored, a lower sequence is refused across runs,
the server's bytes are checked against the manifest, and pfs-peer refuses to
start without a key or --allow-unsigned. Run as root (scripts/test.sh)."""
import os
import subprocess
import sys
import time

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
    expect(r.returncode == 4 and "/nonexistent.pub" in r.stderr, "missing key: %d %r"
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


def stats(d):
    """The device's closing stats event."""
    for ev in d.events:
        if ev.get("event") == "stats":
            return ev
    raise AssertionError("d%d logged no stats" % d.idx)


def last_done(devices):
    return max(ev["t"] for d in devices for ev in d.events if ev.get("event") == "file_done")


def rollout_time(site, devices, extra_start=None):
    for d in devices:
        d.start([FILE])
    if extra_start:
        extra_start()
    expect(site.wait(120), "rollout did not finish")
    finished(site, devices, 0)
    return last_done(devices)


def scenario_outsider_without_key():
    """Site key (a): a class-15 node without the site key is ignored: the
    keyed devices fetch once, finish about as fast as without it, and count
    its messages as untagged."""
    size = 2 * 1024 * 1024
    with S.Site(5, MODEL, {FILE: size}, site_key=True) as site:
        keyed = site.devices[:4]
        base = rollout_time(site, keyed)
        for d in keyed:
            os.unlink(os.path.join(d.out, FILE))
            d.events, d._pos = [], 0
        outsider = site.devices[4]
        t = rollout_time(site, keyed, lambda: outsider.start(
            [FILE], extra=["--strength", "15", "--linger", "3"], site_key=False))
        outsider.proc.wait(60)
        problems = S.check_outputs(site, devices=keyed)
        expect(not problems, "; ".join(problems[:3]))
        starts = sum(1 for d in keyed for ev in d.events if ev.get("event") == "upstream_start")
        expect(starts == 1, "keyed devices fetched %d times, want 1" % starts)
        untagged = sum(stats(d)["auth_drop_no_tag"] for d in keyed)
        expect(untagged > 0, "no untagged message counted")
        expect(t <= 1.5 * base + 1.0, "with the outsider %.1f s, without %.1f s" % (t, base))
        return "last device %.1f s (%.1f s without it); %d untagged messages dropped" % (
            t, base, untagged)


def scenario_replayed_claims():
    """Site key (c): CLAIM and ROOT frames captured in the first 1.8 s of a
    rollout and replayed byte for byte 0.5 s later are dropped as replayed;
    the rollout completes."""
    rawcap = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rawcap.py")
    with S.Site(5, MODEL, {FILE: 8 * 1024 * 1024}, site_key=True) as site:
        keyed, host = site.devices[:4], site.devices[4]
        cap = os.path.join(site.work, "claims.bin")
        capture = subprocess.Popen(["ip", "netns", "exec", host.ns, sys.executable, rawcap,
                                    "capture", "eth0", "1.8", cap], stdout=subprocess.PIPE,
                                   text=True)
        for d in keyed:
            d.start([FILE])
        captured = int(capture.communicate(timeout=30)[0].strip() or 0)
        expect(captured > 0, "no CLAIM or ROOT captured")
        r = subprocess.run(["ip", "netns", "exec", host.ns, sys.executable, rawcap, "replay",
                            "eth0", cap], capture_output=True, text=True, timeout=30)
        expect(r.returncode == 0, "replay: " + r.stderr)
        expect(any(d.proc.poll() is None for d in keyed), "rollout ended before the replay")
        expect(site.wait(120), "rollout did not finish")
        finished(site, keyed, 0)
        replayed = sum(stats(d)["auth_drop_replayed"] for d in keyed)
        # Each frame reaches 3 keyed devices besides its sender: at least one
        # drop per frame, whatever sent it.
        expect(replayed >= captured, "%d replays counted for %d frames" % (replayed, captured))
        return "%d election frames replayed: %d drops as replayed" % (captured, replayed)


def port_bytes(site, devices):
    """Bytes the site bridge delivered to these devices' ports."""
    return sum(int(S.sh("cat", "/sys/class/net/v%d/statistics/tx_bytes" % d.idx,
                        ns=site.prefix + "-site", capture=True).strip()) for d in devices)


def scenario_forged_datagrams():
    """Section 6 with forged datagrams from a node without the site key...
    and on a site with none (the sender field is all it has): a class-15
    ROOT with FAILED that answers no JOIN, HEARTBEATs with FAILED, DATA with
    valid CRCs and wrong bytes and LEAVEs, each naming the devices' possible
    parents. Every honest device completes with the right file, none exits
    early, the silent root is excluded within seconds (not the 30 s
    fallback), and the LAN bytes to honest devices stay within 1.5 times
    those of the same rollout without the attacker."""
    forge = os.path.join(os.path.dirname(os.path.abspath(__file__)), "forge.py")
    size = 2 * 1024 * 1024
    with S.Site(6, MODEL, {FILE: size}) as site:
        honest, host = site.devices[:5], site.devices[5]
        before = port_bytes(site, honest)
        base = rollout_time(site, honest)
        base_bytes = port_bytes(site, honest) - before
        for d in honest:
            os.unlink(os.path.join(d.out, FILE))
            d.events, d._pos = [], 0
        before = port_bytes(site, honest)
        attacker = subprocess.Popen(
            ["ip", "netns", "exec", host.ns, sys.executable, forge, MODEL[0], FILE,
             S.SUBNET + ".255", "20", host.ip] + [d.ip for d in honest],
            stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(0.3)         # its ROOTs are on the wire before the devices start
            t = rollout_time(site, honest)
        finally:
            attacker.kill()
            attacker.wait()
        lan = port_bytes(site, honest) - before
        problems = S.check_outputs(site, devices=honest)
        expect(not problems, "; ".join(problems[:3]))
        silent = [e for d in honest for e in d.events
                  if e.get("event") == "distrust" and e.get("a") == 5]
        expect(silent, "no device excluded the silent root")
        expect(t < 20, "last device at %.1f s: the silent root held it" % t)
        expect(lan <= 1.5 * base_bytes, "LAN bytes %d, %.2f x the %d without the attacker" %
               (lan, lan / base_bytes, base_bytes))
        starts = sum(1 for d in honest for e in d.events if e.get("event") == "upstream_start")
        expect(starts == 1, "honest devices fetched %d times, want 1" % starts)
        wrong = sum(stats(d)["rx_wrong_source"] for d in honest)
        return "done at %.1f s (%.1f s without); LAN %.2f x; %d silent-root exclusions; " \
               "%d forged neighbour messages dropped" % (t, base, lan / base_bytes,
                                                          len(silent), wrong)


SCENARIOS = [scenario_no_trust_exit_2, scenario_signed_rollout, scenario_rogue_root,
             scenario_rollback_refused, scenario_server_bytes_checked,
             scenario_outsider_without_key, scenario_replayed_claims,
             scenario_forged_datagrams]

if __name__ == "__main__":
    sys.exit(main(SCENARIOS, label="trust"))
