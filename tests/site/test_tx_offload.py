#!/usr/bin/env python3
"""test_tx_offload.py - the dataplane's TX checksum offload on a port that
offers it (issue 15 section 1).

DPDK's net_tap port offers IPv4 and UDP checksum offload and honours it the
way a NIC does, computing the checksums as the frame leaves, from the
offload metadata the mbuf carries (the header lengths, the pseudo header's
sum in the UDP field): if the dataplane's metadata is wrong, so are the
checksums the kernel sees. In a network namespace of its own, pfs-dataplane
runs on a tap port with pfs-relayctl as control (one hierarchy, three
children); tests/site/tap_io.py, on the kernel's side of the tap, sends a
pfs-gen trace of a parent's chunks into it and captures the copies. Every
copy is checked byte for byte (tests/dpframes.py's checker:
IPv4 and UDP checksums, headers, CRC32C, payload, each chunk to each child
once), with the offload on (copied payloads, chained payloads, behind a
VLAN tag) and off (--no-tx-csum-offload, the sums computed on the core).
Run as root; leaves no namespace or process behind.
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import dpframes as F  # noqa: E402
from caserun import dpdk_runtime_base, expect, run_cases  # noqa: E402

NS = "pfsoff%d" % os.getpid()
TAP = "pfsoff0"
CHUNK, SIZE = 1408, 1408 * 40 + 500
OFFLOADED = "TX checksums offloaded"


def netns(*cmd, **kw):
    return subprocess.run(["ip", "netns", "exec", NS] + list(cmd), **kw)


def relay(work, tag, frames, dp_args):
    """The trace through the dataplane on a tap port: (log, frames sent)."""
    trace, out = os.path.join(work, tag + "-in.pcap"), os.path.join(work, tag + "-out.pcap")
    F.write_pcap(trace, F.read_pcap(os.path.join(work, "trace.pcap"))[0], frames)
    seg = "/dev/shm/pfs-offload-%d-%s" % (os.getpid(), tag)
    prefix = "pfsoffload%d" % os.getpid()
    nchunks = (SIZE + CHUNK - 1) // CHUNK
    ctl = subprocess.Popen([F.RELAYCTL, "--segment", seg, "--chunk-size", str(CHUNK),
                            "--file-size", str(SIZE), "--children", str(F.CHILDREN),
                            "--until-chunks", str(nchunks), "--timeout", "30"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dp = subprocess.Popen(["ip", "netns", "exec", NS, F.DATAPLANE, "--no-huge", "-m", "256",
                           "--no-pci", "--no-shconf", "--file-prefix", prefix, "-l", "1",
                           "--log-level=lib.eal:error", "--vdev", "net_tap0,iface=%s" % TAP,
                           "--", "--segment", seg] + dp_args,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = []
    try:
        # The tap exists once the port is up, which the dataplane says.
        for line in dp.stdout:
            log.append(line)
            if "running on lcore" in line:
                break
        expect(dp.poll() is None, "pfs-dataplane did not start: %s" % "".join(log))
        r = netns("python3", os.path.join(HERE, "tap_io.py"), TAP, trace, out,
                  str(nchunks * F.CHILDREN), "20", capture_output=True, text=True, timeout=60)
        expect(r.returncode == 0, "%s: tap_io: %s %s" % (tag, r.stdout.strip(), r.stderr[-300:]))
        ctl.communicate(timeout=40)
        expect(ctl.returncode == 0, "%s: pfs-relayctl exited %d" % (tag, ctl.returncode))
    finally:
        for p in (ctl, dp):
            if p.poll() is None:
                p.send_signal(2)
            try:
                rest = p.communicate(timeout=20)[0]
            except subprocess.TimeoutExpired:
                p.kill()
                rest = p.communicate()[0]
            if p is dp and rest:
                log.append(rest)
        for f in (seg, seg + ".bell"):
            if os.path.exists(f):
                os.unlink(f)
        shutil.rmtree(os.path.join(dpdk_runtime_base(), prefix), ignore_errors=True)
    expect(dp.returncode == 0, "%s: pfs-dataplane exited %d" % (tag, dp.returncode))
    return "".join(log), F.read_pcap(out)[1]


def cases():
    work = tempfile.mkdtemp()
    r = subprocess.run([F.GEN, "--out", os.path.join(work, "trace.pcap"), "--file-size",
                        str(SIZE), "--chunk-size", str(CHUNK), "--content",
                        os.path.join(work, "file.bin")], capture_output=True, text=True)
    expect(r.returncode == 0, "pfs-gen: %s" % r.stderr)
    hier = int(r.stdout.split("hierarchy ")[1].split(",")[0], 16)
    content = open(os.path.join(work, "file.bin"), "rb").read()
    frames = F.read_pcap(os.path.join(work, "trace.pcap"))[1]

    def one(tag, dp_args, offloaded, vlan=False):
        def run():
            sent = [F.tag_frame(fr, F.TAG_PARENT) for fr in frames] if vlan else frames
            args = dp_args + (["--vlan", "100"] if vlan else [])
            log, out = relay(work, tag, sent, args)
            expect((OFFLOADED in log) == offloaded, "%s: offload %s in the log: %s" % (
                tag, "missing" if offloaded else "claimed", log[-300:]))
            if vlan:        # every copy tagged as --vlan says (no child was heard)
                expect(all(F.untag_frame(fr)[0] == [(0x8100, 100)] for fr in out),
                       "%s: copies without the VLAN tag" % tag)
                out = [F.untag_frame(fr)[1] for fr in out]
            F.check_frames(out, content, CHUNK, hier)
            return "%d copies, checksums %s, all valid" % (
                len(out), "by the port" if offloaded else "on the core")
        return (tag, run)

    return work, [one("offload_copied", ["--no-zero-copy"], True),
                  one("offload_chained", ["--force-zero-copy", "--copybreak", "0"], True),
                  one("offload_vlan", ["--no-zero-copy"], True, vlan=True),
                  one("no_offload", ["--no-zero-copy", "--no-tx-csum-offload"], False)]


def main():
    if os.geteuid() != 0:
        print("FAIL needs root (a network namespace)")
        return 1
    subprocess.run(["ip", "netns", "add", NS], check=True)
    work = None
    try:
        # No IPv6 chatter from the kernel into the port.
        netns("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1",
              "net.ipv6.conf.all.disable_ipv6=1", check=True)
        work, todo = cases()
        return run_cases("tx offload", todo, width=18)
    finally:
        subprocess.run(["ip", "netns", "del", NS])
        if work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
