#!/usr/bin/env python3
"""test_dataplane_frames.py - pfs-dataplane's local fan-out, frame by frame.

pfs-gen writes a trace of a parent sending a file; pfs-dataplane reads it
from net_pcap (rx_pcap) with pfs-relayctl standing in for pfs-control (one
hierarchy, three children), and writes what it sends to tx_pcap. Every frame
sent is then checked byte for byte: Ethernet, IPv4 header checksum and TTL,
UDP checksum, PFS header, CRC32C, and the payload against the file itself;
every chunk must reach every child exactly once. Copies take their UDP
checksum from the sender's (fanout.c), which the dataplane checked on
receipt: a sender without one (0) still gets summed copies, and a frame
whose checksum is wrong (a bit flipped outside the CRC32C's reach, as a
chunk index) is counted and neither cached nor relayed.

Each case runs four times, with payloads copied into linear mbufs, with the
zero-copy path (a header mbuf chained to an mbuf attached to the chunk in
the cache, forced on net_pcap, which linearises chains as it writes), and
with the default copybreak choosing per chunk (the first child gets the
received frame itself; 512- and 1408-byte chunks x 2 more copy, 8192-byte
ones chain), and with every copy built (--no-rx-reuse, chained): the
captures must hold the same frames. Bad frames added to the trace (bad CRC,
TTL 64, another UDP port) must be counted and not relayed.

Also pfs-gen --transmit (its DPDK load generator): the frames it sends are
the trace's, in order, exactly as many as asked, paced or not; and on a
memif pair it stops in the order that keeps DPDK 22.11's memif from
crashing (gen_tx.c), reporting its figures.

No root needed: DPDK runs with --no-huge on virtual devices. One line per
case, non-zero exit on any failure.
"""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

from caserun import dpdk_runtime_base, expect, run_cases
from dpframes import (
    BCAST_MAC, CHILDREN, DATAPLANE, GEN, LAST_LOG, RELAYCTL, RESTART_CTL, ROOT, TESTPMD,
    VLAN_DEFAULT, VLAN_KIDS, add_bad_frames, break_udp_checksum, check_frames, heard_from,
    read_pcap, relay, vlan_frames, write_pcap, zero_udp_checksums)



def run_case(chunk, size, extra_dp_args, mangle=None):
    with tempfile.TemporaryDirectory() as work:
        content_path = os.path.join(work, "file.bin")
        trace = os.path.join(work, "in.pcap")
        r = subprocess.run([GEN, "--out", trace, "--file-size", str(size), "--chunk-size",
                            str(chunk), "--content", content_path], capture_output=True,
                           text=True)
        expect(r.returncode == 0, "pfs-gen: %s" % r.stderr)
        hier = int(r.stdout.split("hierarchy ")[1].split(",")[0], 16)
        with open(content_path, "rb") as f:
            content = f.read()
        header, frames = read_pcap(trace)
        nchunks = len(frames)
        bad_csum_idx = None
        if mangle == "no_udp_csum":
            frames = zero_udp_checksums(frames)
        elif mangle == "bad_udp_csum":
            bad_csum_idx = 4
            frames = break_udp_checksum(frames, bad_csum_idx)
        frames = add_bad_frames(frames)
        vlan = mangle == "vlan"
        ctl_args = []
        if vlan:
            frames = vlan_frames(frames)
            extra_dp_args = extra_dp_args + ["--vlan", VLAN_DEFAULT]
            ctl_args = ["--echo"]
        write_pcap(trace, header, frames)
        got = nchunks - (bad_csum_idx is not None)     # what reaches the cache
        ctl_args = ctl_args + ["--check-cache", content_path, "--drop-wait"]
        results = {}
        for tag, args in (("copied", ["--no-zero-copy"]),
                          ("chained", ["--force-zero-copy", "--copybreak", "0"]),
                          ("copybreak", ["--force-zero-copy"]),
                          ("no_reuse", ["--force-zero-copy", "--copybreak", "0",
                                        "--no-rx-reuse"]),
                          ("no_keep", ["--force-zero-copy", "--no-rx-keep"])):
            totals, out, mode = relay(work, tag, chunk, size, got, extra_dp_args + args,
                                      ctl_args)
            # Every chunk read back from the cache as pfs-control reads it;
            # each kept in the frame it came in, unless told not to or the
            # frames are too small for its frames (jumbo).
            kept = 0 if tag == "no_keep" or "--max-frame" in extra_dp_args else got
            expect(totals["cache_same"] == got and totals["cache_differ"] == 0,
                   "%s: cache holds %d chunks right, %d wrong, of %d" % (
                       tag, totals["cache_same"], totals["cache_differ"], got))
            expect(totals["fanout_kept"] == kept and totals["cache_kept"] == kept,
                   "%s: %d chunks kept in frames, %d found so in the cache, want %d" % (
                       tag, totals["fanout_kept"], totals["cache_kept"], kept))
            expect(totals["frames_after_drop"] == 0,
                   "%s: %d frames still held after the file was dropped" % (
                       tag, totals["frames_after_drop"]))
            expect(mode == ("copied" if tag == "copied" else "zero-copy"),
                   "%s: dataplane used %s payloads" % (tag, mode))
            expect(totals["fanout_chunks"] == got and totals["fanout_tx"] == got * CHILDREN,
                   "%s: relayed %s" % (tag, totals))
            expect(totals["rx_bad_csum"] == (bad_csum_idx is not None),
                   "%s: %d frames with a wrong UDP checksum counted" % (
                       tag, totals["rx_bad_csum"]))
            # The frame a chunk came in goes on to the first child; of the
            # other copies, chained: all, or (copybreak) those of chunks
            # whose copies add up to more than 4096 bytes, the short last
            # chunk aside.
            reused = 0 if tag == "no_reuse" else got
            built = CHILDREN - (tag != "no_reuse")
            expect(totals["fanout_reused"] == reused,
                   "%s: %d received frames sent on, want %d" % (tag, totals["fanout_reused"],
                                                               reused))
            chained = {"copied": 0, "chained": got * built, "no_reuse": got * built,
                       "copybreak": got * built if chunk * built > 4096 else 0,
                       "no_keep": got * built if chunk * built > 4096 else 0}[tag]
            expect(abs(totals["tx_chained"] - chained) <= built,
                   "%s: %d copies chained, want %d" % (tag, totals["tx_chained"], chained))
            expect(totals["rx_bad_crc"] == 1 and totals["rx_ttl"] == 1 and
                   totals["rx_not_pfs"] == 1 and totals["rx_malformed"] == 1,
                   "%s: bad frames not counted: %s" % (tag, totals))
            heard = len(VLAN_KIDS) if vlan else 0
            expect(totals["tx_pkts"] == totals["tx_chunks"] + totals["tx_ctrl"] and
                   totals["tx_drops"] == 0, "%s: frames queued %d + %d, accepted %d" % (
                       tag, totals["tx_chunks"], totals["tx_ctrl"], totals["tx_pkts"]))
            expect(totals["reported_chunks"] == got and totals["to_control"] == heard,
                   "%s: reports to control %s" % (tag, totals))
            expect(totals["rx_tagged"] == (heard + got if vlan else 0) and
                   totals["tx_ctrl"] == 2 * heard,
                   "%s: %d tagged PFS frames, %d datagrams sent" % (
                       tag, totals["rx_tagged"], totals["tx_ctrl"]))
            check_frames(out, content, chunk, hier, bad_csum_idx, vlan)
            results[tag] = (out, totals)
        expect(results["copied"][0] == results["chained"][0] == results["copybreak"][0] ==
               results["no_reuse"][0] == results["no_keep"][0],
               "zero-copy frames differ from copied ones")
        return "%d chunks x %d children, all paths byte-identical, %d reports" % (
            nchunks, CHILDREN, results["chained"][1]["reports"])


CASES = [
    ("chunk_1408", 1408, 100000, []),
    ("chunk_8192_jumbo", 8192, 90000, ["--max-frame", "9000"]),
    ("chunk_512_short_last", 512, 512 * 40 + 7, []),
    ("sender_no_udp_csum", 1408, 30000, [], "no_udp_csum"),
    ("sender_bad_udp_csum", 1408, 30000, [], "bad_udp_csum"),
    ("vlan_tags_kept", 1408, 60000, [], "vlan"),
]


def transmit_case(chunk, size, extra):
    """pfs-gen --transmit through DPDK: the frames that leave its port are the
    trace's, in order, round and round, exactly --count of them."""
    with tempfile.TemporaryDirectory() as work:
        trace, sent = os.path.join(work, "trace.pcap"), os.path.join(work, "sent.pcap")
        count = 2 * (size // chunk) + 7
        eal = ("--no-huge -m 256 --no-pci --no-shconf -l 1 --log-level=*:error "
               "--file-prefix pfsgentx%d --vdev net_pcap0,tx_pcap=%s" % (os.getpid(), sent))
        r = subprocess.run([GEN, "--out", trace, "--chunk-size", str(chunk), "--file-size",
                            str(size), "--transmit", "--count", str(count), "--eal", eal] + extra,
                           capture_output=True, text=True, timeout=60)
        expect(r.returncode == 0, "pfs-gen --transmit exited %d: %s" % (r.returncode, r.stderr))
        stats = json.loads(r.stdout.strip().splitlines()[-1])
        _, want = read_pcap(trace)
        _, got = read_pcap(sent)
        expect(stats["frames"] == count and stats["port_opackets"] == count,
               "asked %d frames, sent %d (port says %d)" % (count, stats["frames"],
                                                             stats["port_opackets"]))
        expect(len(got) == count, "%d frames captured, %d sent" % (len(got), count))
        bad = [i for i, fr in enumerate(got) if fr != want[i % len(want)]]
        expect(not bad, "frames %s differ from the trace" % bad[:5])
        if "--tx-rate" in extra:
            # Pacing only ever makes it slower: a floor, not a timing test.
            rate = float(extra[extra.index("--tx-rate") + 1])
            expect(stats["seconds"] >= (count - 32) / rate,
                   "%d frames in %.4f s at --tx-rate %g" % (count, stats["seconds"], rate))
        return "%d frames sent through net_pcap, identical to the trace's" % count


def gen_header_line(name):
    """A line pfs-gen prints on stderr, from gen_tx.h (one truth)."""
    with open(os.path.join(ROOT, "bench", "gen_tx.h")) as h:
        return re.search(r'#define %s "(.*)"' % name, h.read()).group(1)


def read_until(stream, want, lines, timeout):
    """Lines of stream into lines until one equals want; False on EOF or
    after timeout seconds (a watchdog closes nothing: it only gives up)."""
    got = threading.Event()

    def reader():
        for line in stream:
            lines.append(line)
            if line.strip() == want:
                got.set()
                return
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    return got.wait(timeout)


def memif_stop_case(chunk, size, extra):
    """pfs-gen --transmit on a memif pair with dpdk-testpmd (io forwarding)
    as the peer, stopped the way the benchmark stops it: SIGINT to pfs-gen,
    wait for its "stopped sending" line, only then stop the peer. DPDK
    22.11's memif crashes a process that polls through its peer's
    disconnect; pfs-gen must neither poll then nor exit before the peer has
    gone, and must report its figures and remove its socket file (a next
    server could not bind it). Several rounds, each a fresh pair."""
    sending, stopped = gen_header_line("GEN_TX_SENDING"), gen_header_line("GEN_TX_STOPPED")
    rounds = int(extra[0]) if extra else 3
    for rnd in range(rounds):
        with tempfile.TemporaryDirectory() as work:
            sock = os.path.join(work, "memif.sock")
            prefixes = ["pfsmstg%d" % os.getpid(), "pfsmstp%d" % os.getpid()]
            gen = subprocess.Popen(
                [GEN, "--out", os.path.join(work, "t.pcap"), "--chunk-size", str(chunk),
                 "--file-size", str(size), "--transmit", "--seconds", "60", "--eal",
                 "--no-huge -m 256 --no-pci -l 0 --file-prefix %s --log-level=*:error "
                 "--vdev net_memif0,role=server,socket=%s,socket-abstract=no" % (
                     prefixes[0], sock)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            peer = None
            err = []
            try:
                deadline = time.monotonic() + 20
                while not os.path.exists(sock):
                    expect(gen.poll() is None and time.monotonic() < deadline,
                           "round %d: pfs-gen made no memif socket: %s" % (
                               rnd, gen.stderr.read() if gen.poll() is not None else "20 s"))
                    time.sleep(0.01)
                peer = subprocess.Popen(
                    [TESTPMD, "--no-huge", "-m", "512", "--no-pci", "-l", "0,1",
                     "--file-prefix", prefixes[1], "--log-level=lib.eal:error", "--vdev",
                     "net_memif0,role=client,socket=%s,socket-abstract=no" % sock, "--",
                     "--forward-mode=io", "--total-num-mbufs=4096"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
                expect(read_until(gen.stderr, sending, err, 30),
                       "round %d: pfs-gen never said %r: %s" % (rnd, sending, "".join(err)))
                gen.send_signal(signal.SIGINT)
                expect(read_until(gen.stderr, stopped, err, 10),
                       "round %d: pfs-gen never said %r after SIGINT: %s" % (
                           rnd, stopped, "".join(err)))
                expect(gen.poll() is None, "round %d: pfs-gen exited before its peer left" % rnd)
                peer.send_signal(signal.SIGINT)
                expect(peer.wait(30) == 0, "round %d: testpmd exited %d" % (rnd, peer.returncode))
                out, rest = gen.communicate(timeout=30)
                expect(gen.returncode == 0, "round %d: pfs-gen exited %d after its peer left: %s"
                       % (rnd, gen.returncode, "".join(err) + rest))
                expect(not os.path.exists(sock),
                       "round %d: pfs-gen left its memif socket file behind" % rnd)
                stats = json.loads(out.strip().splitlines()[-1])
                expect(stats["port_opackets"] == stats["frames"],
                       "round %d: pfs-gen sent %d, its port says %d" % (
                           rnd, stats["frames"], stats["port_opackets"]))
            finally:
                for p in (gen, peer):
                    if p and p.poll() is None:
                        p.kill()
                        p.wait()
                for pre in prefixes:
                    shutil.rmtree(os.path.join(dpdk_runtime_base(), pre), ignore_errors=True)
    return "%d rounds: stopped on SIGINT, peer left, pfs-gen exited 0 with its figures" % rounds


def telemetry(prefix, cmd):
    """One DPDK telemetry command of the process with EAL file prefix prefix."""
    r = subprocess.run("echo %s | dpdk-telemetry.py -f %s" % (cmd, prefix), shell=True,
                       capture_output=True, text=True, timeout=20)
    m = re.search(r"\{.*\}", r.stdout, re.S)
    return (json.loads(m.group(0)).get(cmd) or {}) if m else {}


def tx_full_case(chunk, size, _args):
    """A receiver that stalls: pfs-gen sends chunks over memif and never reads
    what comes back (--no-rx), so the dataplane's TX ring fills with the
    copies to its two children. It must try a full ring again (tx_retries),
    then drop what is left, and account for every copy: accepted by the port
    or dropped (tx_pkts + tx_drops = tx_chunks), each drop counted against
    the child it was for (DPDK telemetry /pfs/fanout)."""
    until = 3 * (size // chunk)
    sent_prefix = gen_header_line("GEN_TX_SENT")
    with tempfile.TemporaryDirectory() as work:
        sock = os.path.join(work, "memif.sock")
        seg = "/dev/shm/pfs-txfull-%d" % os.getpid()
        prefixes = ["pfstxg%d" % os.getpid(), "pfstxd%d" % os.getpid()]
        procs, err = [], []
        try:
            gen = subprocess.Popen(
                [GEN, "--out", os.path.join(work, "t.pcap"), "--chunk-size", str(chunk),
                 "--file-size", str(size), "--transmit", "--no-rx", "--seconds", "60",
                 "--tx-rate", "20000", "--eal",
                 "--no-huge -m 256 --no-pci -l 0 --file-prefix %s --log-level=*:error "
                 "--vdev net_memif0,role=server,socket=%s,socket-abstract=no" % (
                     prefixes[0], sock)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(gen)
            deadline = time.monotonic() + 20
            while not os.path.exists(sock):
                expect(gen.poll() is None and time.monotonic() < deadline,
                       "pfs-gen made no memif socket")
                time.sleep(0.01)
            ctl = subprocess.Popen([RELAYCTL, "--segment", seg, "--chunk-size", str(chunk),
                                    "--file-size", str(size), "--children", "2",
                                    "--until-chunks", str(until), "--timeout", "30"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(ctl)
            dp = subprocess.Popen(
                [DATAPLANE, "--no-huge", "-m", "256", "--no-pci", "--file-prefix", prefixes[1],
                 "-l", "1", "--log-level=lib.eal:error", "--vdev",
                 "net_memif0,role=client,socket=%s,socket-abstract=no" % sock, "--",
                 "--segment", seg], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            procs.append(dp)
            cout, cerr = ctl.communicate(timeout=60)
            expect(ctl.returncode == 0, "pfs-relayctl: %s" % cerr.strip())
            # Stop sending, then wait until the dataplane has taken every
            # frame sent: its counters then stand still.
            gen.send_signal(signal.SIGINT)
            expect(read_until(gen.stderr, gen_header_line("GEN_TX_STOPPED"), err, 10),
                   "pfs-gen never stopped: %s" % "".join(err))
            line = gen.stderr.readline()
            expect(line.startswith(sent_prefix), "pfs-gen said %r" % line)
            frames = int(line[len(sent_prefix):])
            deadline, st = time.monotonic() + 20, {}
            while time.monotonic() < deadline:
                st = telemetry(prefixes[1], "/pfs/stats")
                if st.get("rx_pkts") == frames:
                    break
                time.sleep(0.05)
            expect(st.get("rx_pkts") == frames, "the dataplane received %s of %d frames" % (
                st.get("rx_pkts"), frames))
            kids = telemetry(prefixes[1], "/pfs/fanout")
            st2 = telemetry(prefixes[1], "/pfs/stats")
            expect(st2["tx_chunks"] == st["tx_chunks"], "the dataplane still sends: %s" % st2)
            dp.send_signal(signal.SIGINT)
            dlog = dp.communicate(timeout=20)[0]
            expect(dp.returncode == 0, "pfs-dataplane exited %d: %s" % (dp.returncode,
                                                                       dlog[-400:]))
            gen.communicate(timeout=30)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            if os.path.exists(seg):
                os.unlink(seg)
            for pre in prefixes:
                shutil.rmtree(os.path.join(dpdk_runtime_base(), pre), ignore_errors=True)
    expect(st["tx_drops"] > 0 and st["tx_retries"] > 0,
           "a stalled receiver, yet %d drops after %d retries" % (st["tx_drops"],
                                                                 st["tx_retries"]))
    expect(st["tx_pkts"] + st["tx_drops"] == st["tx_chunks"] and st["tx_pkts"] <= 1024,
           "copies: %d queued, %d accepted (a 1024-slot ring), %d dropped" % (
               st["tx_chunks"], st["tx_pkts"], st["tx_drops"]))
    # /pfs/fanout: "hierarchy address" -> [sent, dropped]
    expect(len(kids) == 2 and all(k[0] == st["fanout_chunks"] for k in kids.values()),
           "per child: %s for %d chunks" % (kids, st["fanout_chunks"]))
    dropped = [k[1] for k in kids.values()]
    expect(sum(dropped) == st["tx_drops"] and min(dropped) > 0,
           "drops per child %s, %d in all" % (dropped, st["tx_drops"]))
    return "%d copies: %d accepted, %d dropped after %d retries, %s per child" % (
        st["tx_chunks"], st["tx_pkts"], st["tx_drops"], st["tx_retries"], dropped)


def restart_case(_chunk, _size, _args):
    """pfs-control restarts while the dataplane still works through a range
    it queued (dp_restart_ctl): the new control's CONFIG carries a new
    generation, and the dataplane drops the old one's ranges then, in ring
    order: child A's range stops short, a straggler stamped with the old
    generation (child B) is dropped and counted, and the new control's
    range (child C), queued right behind its CONFIG, goes out whole."""
    with tempfile.TemporaryDirectory() as work:
        seg = "/dev/shm/pfs-restart-%d" % os.getpid()
        prefix = "pfsrestart%d" % os.getpid()
        empty, out = os.path.join(work, "empty.pcap"), os.path.join(work, "out.pcap")
        write_pcap(empty, struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1), [])
        ctl = subprocess.Popen([RESTART_CTL, seg], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        dp = subprocess.Popen([DATAPLANE, "--no-huge", "-m", "256", "--no-pci", "--no-shconf",
                               "--file-prefix", prefix, "-l", "1", "--log-level=lib.eal:error",
                               "--vdev", "net_pcap0,rx_pcap=%s,tx_pcap=%s" % (empty, out), "--",
                               "--segment", seg, "--child-rate", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            cout, cerr = ctl.communicate(timeout=60)
        finally:
            dp.send_signal(signal.SIGINT)
            try:
                dlog = dp.communicate(timeout=20)[0]
            except subprocess.TimeoutExpired:
                dp.kill()
                dlog = dp.communicate()[0]
            for f in (seg, seg + ".bell"):
                if os.path.exists(f):
                    os.unlink(f)
            shutil.rmtree(os.path.join(dpdk_runtime_base(), prefix), ignore_errors=True)
        expect(ctl.returncode == 0, "dp_restart_ctl: %s %s" % (cerr.strip(), dlog[-400:]))
        expect(dp.returncode == 0, "pfs-dataplane exited %d: %s" % (dp.returncode, dlog[-400:]))
        st = json.loads(cout)
        sent = {}
        for fr in read_pcap(out)[1]:
            dst = struct.unpack("!I", fr[30:34])[0]
            sent.setdefault(dst, []).append(struct.unpack("!I", fr[62:66])[0])
        a, b, c, d = (sent.get(0x0A630100 + i, []) for i in (1, 2, 3, 4))
        expect(st["stale_ranges"] == 1 and not b,
               "the old generation's straggler: %d dropped, %d chunks sent" % (
                   st["stale_ranges"], len(b)))
        expect(0 < len(a) < 400, "child A got %d of 400 chunks: its range outlived its "
               "control" % len(a))
        expect(c == list(range(20)), "child C got %s, want chunks 0..19" % c)
        expect(st["tx_chunks"] == len(a) + len(c) + len(d), "%d chunks sent, %d captured" % (
            st["tx_chunks"], len(a) + len(c) + len(d)))
        # Child D: the file's new version, in the old one's slot under the
        # same key: its own bytes, CRCs and checksums (the dataplane's memo
        # of the old version's must not serve it).
        expect(d == list(range(20)), "child D got %s, want chunks 0..19" % d)
        v2 = bytes(((i * 7 + i // 1408) & 0xFF) ^ 0xA5 for i in range(1408 * 20))
        check_frames([fr for fr in read_pcap(out)[1]
                      if struct.unpack("!I", fr[30:34])[0] == 0x0A630104], v2, 1408,
                     struct.unpack("!Q", read_pcap(out)[1][0][54:62])[0], children=[4])
        return "old ranges dropped at the new CONFIG (A: %d of 400), straggler dropped, " \
               "C: 20 of 20; the new version in the same slot: D: 20 of 20, its own CRCs" % (
                   len(a))


def digest_case(chunk, size, _args):
    """Signed chunks: the dataplane checks each against its digest before it
    stores or relays it. One chunk whose bytes (with a valid CRC) are not what
    was signed is counted, goes to pfs-control, and reaches no child; every
    other chunk goes to every child, checked."""
    bad = 5
    with tempfile.TemporaryDirectory() as work:
        content_path = os.path.join(work, "file.bin")
        signed_path = os.path.join(work, "signed.bin")
        trace = os.path.join(work, "in.pcap")
        r = subprocess.run([GEN, "--out", trace, "--file-size", str(size), "--chunk-size",
                            str(chunk), "--content", content_path], capture_output=True,
                           text=True)
        expect(r.returncode == 0, "pfs-gen: %s" % r.stderr)
        signed = bytearray(open(content_path, "rb").read())
        signed[bad * chunk + 7] ^= 0x20         # what the publisher signed differs here
        open(signed_path, "wb").write(signed)
        nchunks = len(read_pcap(trace)[1])
        totals, out, _ = relay(work, "verify", chunk, size, nchunks - 1, ["--no-zero-copy"],
                               ["--verify", signed_path])
        expect(totals["fanout_verified"] == nchunks and totals["fanout_bad_digest"] == 1,
               "digests: %s" % totals)
        # The digests' cache entry is held while the table stands, so its
        # slot and extents cannot go to another file under the checks.
        expect(totals["digests_held"] >= 1, "the digests are read without a hold: %s" % totals)
        expect(totals["digests_held_after_delete"] == 0,
               "the table is gone and its digests still held: %s" % totals)
        expect(totals["fanout_chunks"] == nchunks - 1 and totals["to_control"] == 1,
               "the bad chunk was relayed or lost: %s" % totals)
        sent = [struct.unpack("!I", fr[62:66])[0] for fr in out]
        expect(bad not in sent, "chunk %d reached a child" % bad)
        expect(len(sent) == (nchunks - 1) * CHILDREN and
               all(sent.count(i) == CHILDREN for i in range(nchunks) if i != bad),
               "copies: %d frames for %d chunks" % (len(sent), nchunks - 1))
        return "%d chunks checked, the one not signed so stopped; %d copies of the rest" % (
            totals["fanout_verified"], len(sent))


def workers_case(chunk, size, args):
    """Two workers, a hierarchy each (pfs-relayctl --shard-paths picks a path
    per owner), both hierarchies' chunks on both RX queues: a chunk that
    comes in on the other worker's queue is checked there and handed to its
    owner, which alone relays it, from its own TX queue, so each capture
    holds exactly its hierarchy's copies, every one right. Two children are
    heard only on worker 1's queue: worker 0 learns their MACs from it
    before control's answers (pfs-relayctl --echo) go out on worker 0's
    queue, to the children's own MACs.

    With args ["lost"]: worker 1's first two messages to worker 0 (the
    first child's MAC and its datagram) are lost as to a full ring
    (--fault-drop-outbox 2), and both children are heard again before the
    last chunk: the answer to the first child's second datagram must still
    go to its own MAC (worker 1 owed worker 0 that neighbour), not to the
    broadcast MAC."""
    with tempfile.TemporaryDirectory() as work:
        paths = subprocess.run([RELAYCTL, "--shard-paths", "2"], capture_output=True, text=True,
                               check=True).stdout.split()
        hiers, contents, traces = [], [], []
        for i, path in enumerate(paths):
            trace = os.path.join(work, "h%d.pcap" % i)
            content = os.path.join(work, "h%d.bin" % i)
            r = subprocess.run([GEN, "--out", trace, "--file-size", str(size), "--chunk-size",
                                str(chunk), "--content", content, "--path", path],
                               capture_output=True, text=True)
            expect(r.returncode == 0, "pfs-gen: %s" % r.stderr)
            hiers.append(int(r.stdout.split("hierarchy ")[1].split(",")[0], 16))
            contents.append(open(content, "rb").read())
            header, frames = read_pcap(trace)
            traces.append(frames)
        # queue 0: even chunks of both; queue 1: odd ones, after the children
        kids = {0x0A630101: bytes.fromhex("020000000101"),
                0x0A630102: bytes.fromhex("020000000102")}
        queue = [[f for i, f in enumerate(t) if i % 2 == q] for q in (0, 1) for t in traces]
        q0, q1 = queue[0] + queue[1], queue[2] + queue[3]
        lost = "lost" in args
        heard = [heard_from(traces[1][0], ip, mac, []) for ip, mac in kids.items()]
        q1 = heard + q1
        if lost:        # again, ahead of the last chunk (its report ends the run)
            q1 = q1[:-1] + heard + q1[-1:]
        write_pcap(os.path.join(work, "in-0.pcap"), header, q0)
        write_pcap(os.path.join(work, "in-1.pcap"), header, q1)
        n = [len(t) for t in traces]
        handed = (n[0] // 2) + (n[1] + 1) // 2      # hierarchy 0's odd, 1's even chunks
        totals, outs, _ = relay(work, "workers", chunk, size, n[0] + n[1],
                                ["--no-zero-copy", "--log-json"] +
                                (["--fault-drop-outbox", "2"] if lost else []),
                                ["--path", paths[0], "--path", paths[1], "--echo",
                                 "--drop-wait"], queues=2)
        # Both workers kept their hierarchy's chunks in frames, and worker
        # 0's scan gave every one back once the files were dropped.
        expect(totals["fanout_kept"] == n[0] + n[1] and totals["frames_after_drop"] == 0,
               "%d of %d chunks kept, %d frames held after the drop" % (
                   totals["fanout_kept"], n[0] + n[1], totals["frames_after_drop"]))
        # datagrams control answers: each child's, but the first one lost
        answered = [ip for ip in kids] * (2 if lost else 1)
        if lost:
            answered.remove(0x0A630101)
        # --log-json: every line an object, DPDK's own messages among them.
        lines = [json.loads(ln) for ln in LAST_LOG[0].splitlines() if ln.strip()]
        expect(lines and all(set(o) == {"t", "level", "program", "msg"} and
                             o["program"] == "pfs-dataplane" for o in lines),
               "--log-json: %s" % LAST_LOG[0][-400:])
        expect(any(o["msg"].startswith("TELEMETRY:") for o in lines) and
               any("worker 1 on lcore" in o["msg"] for o in lines),
               "DPDK's and our lines: %s" % [o["msg"] for o in lines])
        expect(totals["workers"] == 2 and totals["fanout_tables"] == 2, "workers: %s" % totals)
        expect(totals["fanout_chunks"] == n[0] + n[1] and
               totals["fanout_tx"] == (n[0] + n[1]) * CHILDREN and
               totals["reported_chunks"] == n[0] + n[1], "relayed: %s" % totals)
        expect(totals["rx_handoff"] == handed and totals["handoff_drops"] == 0,
               "%d chunks handed to their owner, want %d (%d lost)" % (
                   totals["rx_handoff"], handed, totals["handoff_drops"]))
        expect(totals["to_control"] == len(answered) and totals["tx_pkts"] ==
               totals["tx_chunks"] + totals["tx_ctrl"] and totals["tx_drops"] == 0,
               "sent: %s" % totals)
        echoes = [f for f in outs[0] if struct.unpack("!I", f[50:54])[0] in kids]
        expect(not [f for f in outs[1] if struct.unpack("!I", f[50:54])[0] in kids],
               "control's datagrams left on worker 1's queue")
        got = sorted((f[:6], struct.unpack("!I", f[50:54])[0]) for f in echoes)
        want = sorted([(kids[ip], ip) for ip in answered] + [(BCAST_MAC, ip) for ip in answered])
        expect(got == want, "datagrams sent: %s, want %s" % (got, want))
        for q in (0, 1):
            check_frames([f for f in outs[q] if f not in echoes], contents[q], chunk, hiers[q])
        return "%d + %d chunks x %d children, %d handed to their owner, each on its own " \
            "queue; %d answers, each to its child's MAC" % (n[0], n[1], CHILDREN, handed,
                                                            len(answered))


def frames_restart_case(chunk, _size, _args):
    """Chunks kept in frames outlive the dataplane that kept them: a new one
    finds them in the cache's maps and takes their frames out of its pool
    before the port gets any. Run 1 relays file A (every chunk kept). Run 2,
    a new dataplane on the same segment, relays file B, more chunks than its
    frames can keep: without the adoption, its port received B's chunks into
    A's frames. A is then read back whole, as pfs-control reads it."""
    frames = 3400               # twice what one worker's RX ring needs, and a little
    with tempfile.TemporaryDirectory() as work:
        seg = "/dev/shm/pfs-frames-%d-restart" % os.getpid()
        trace, content_a = os.path.join(work, "in.pcap"), os.path.join(work, "a.bin")
        size_a, size_b = chunk * 100 + 7, chunk * 2400
        runs = []
        try:
            for name, path, size, content in (("a", "fw/a.bin", size_a, content_a),
                                              ("b", "fw/b.bin", size_b, None)):
                content = content or os.path.join(work, name + ".bin")
                r = subprocess.run([GEN, "--out", trace, "--file-size", str(size),
                                    "--chunk-size", str(chunk), "--path", path,
                                    "--seed", str(len(runs) + 3), "--content", content],
                                   capture_output=True, text=True)
                expect(r.returncode == 0, "pfs-gen: %s" % r.stderr)
                nchunks = len(read_pcap(trace)[1])
                # The same --file-size both runs: the same cache layout.
                runs.append((nchunks, relay(
                    work, "restart-" + name, chunk, size_b, nchunks, ["--force-zero-copy"],
                    ["--path", path, "--frames", str(frames), "--check-cache", content_a,
                     "--check-path", "fw/a.bin"], segment=seg, keep_segment=True)[0]))
        finally:
            if os.path.exists(seg):
                os.unlink(seg)
        (na, ta), (nb, tb) = runs
        expect(ta["fanout_kept"] == na and ta["cache_same"] == na,
               "run 1: %d of %d chunks of A kept, %d read back right" % (
                   ta["fanout_kept"], na, ta["cache_same"]))
        expect(tb["fanout_chunks"] == nb and 0 < tb["fanout_kept"] < nb,
               "run 2: %d of B's %d chunks relayed, %d kept: the frames did not run out" % (
                   tb["fanout_chunks"], nb, tb["fanout_kept"]))
        expect(tb["cache_same"] == na and tb["cache_differ"] == 0 and tb["cache_kept"] == na,
               "after the restart A reads back %d chunks right, %d wrong, %d still kept, "
               "of %d" % (tb["cache_same"], tb["cache_differ"], tb["cache_kept"], na))
        return "A: %d chunks kept by the first dataplane, read back whole after the second " \
               "relayed %d of B's (%d kept)" % (na, nb, tb["fanout_kept"])


def main():
    cases = [(c[0], c[1], c[2], c[3:], lambda ch, sz, rest: run_case(ch, sz, *rest))
             for c in CASES] + [
        ("gen_transmit_1408", 1408, 100000, [], transmit_case),
        ("gen_transmit_paced_512", 512, 512 * 40 + 7, ["--tx-rate", "20000"], transmit_case),
        ("gen_memif_stop_order", 1408, 100000, ["4"], memif_stop_case),
        ("signed_digest_checked", 1408, 1408 * 20 + 99, [], digest_case),
        ("tx_ring_full_accounted", 1408, 1408 * 512, [], tx_full_case),
        ("control_restart_drops_old_ranges", 1408, 0, [], restart_case),
        ("kept_frames_survive_dataplane_restart", 1408, 0, [], frames_restart_case),
        ("workers_handoff", 1408, 1408 * 64 + 100, [], workers_case),
        ("workers_neighbour_lost_then_owed", 1408, 1408 * 64 + 100, ["lost"], workers_case)]
    only = sys.argv[1:]         # names of cases to run; none: all
    cases = [c for c in cases if not only or c[0] in only]
    try:
        return run_cases("dataplane frames", [
            (name, lambda fn=fn, ch=chunk, sz=size, a=args: fn(ch, sz, a))
            for name, chunk, size, args, fn in cases])
    finally:
        # EAL leaves its runtime directory even with --no-shconf.
        for prefix in ("pfsframes", "pfsgentx"):
            shutil.rmtree(os.path.join(dpdk_runtime_base(), "%s%d" % (prefix, os.getpid())),
                          ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
