#!/usr/bin/env python3
"""test_wan_delay.py - the site harness's WAN latency stage (tests/netem/
wan_delay.c, pfs_site.Site(rtt_ms=...)): it adds the round trip it is told
to, no less and not much more, in order, through ARP, UDP, TFTP and TCP
with segmentation offload, and refuses bad arguments. And what a WAN does
to TFTP's block size: large blocks cross it in as many round trips as
blocks, and a WAN that drops IP fragments makes a fetch fall back to
frame-sized ones. Run as root; same conventions as test_site.py.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pfs_site as S  # noqa: E402
from test_site import expect, main  # noqa: E402

ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("%s", 7007))
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(2048)
    s.sendto(data, addr)
""" % S.HQ_IP

PROBE = """
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
rtts = []
for i in range(int(sys.argv[1])):
    t = time.monotonic()
    s.sendto(struct.pack("!Id", i, t), ("%s", 7007))
    data, _ = s.recvfrom(2048)
    seq, sent = struct.unpack("!Id", data)
    assert seq == i, "out of order: %%d after %%d" %% (seq, i)
    rtts.append((time.monotonic() - sent) * 1000)
print(" ".join("%%.3f" %% r for r in rtts))
""" % S.HQ_IP


def echo_rtts(site, count=15):
    """Round trips, ms, from device 0 to a UDP echo server at HQ."""
    hq = site.prefix + "-hq"
    srv = subprocess.Popen(["ip", "netns", "exec", hq, "python3", "-c", ECHO],
                           stdout=subprocess.PIPE, text=True)
    try:
        expect(srv.stdout.readline().strip() == "ready", "echo server did not start")
        r = subprocess.run(["ip", "netns", "exec", site.devices[0].ns, "python3", "-c", PROBE,
                            str(count)], capture_output=True, text=True, timeout=30)
        expect(r.returncode == 0, "probe failed: %s" % r.stderr.strip()[-300:])
        return sorted(float(x) for x in r.stdout.split())
    finally:
        srv.kill()
        srv.wait()


def scenario_wan_delay_round_trip():
    """40 ms asked: every UDP round trip takes at least 40 ms, the median
    under 48 ms, in order; without the stage the same probe is under 5 ms."""
    with S.Site(1, ["CP-8845"], {"f.bin": 1000}, rtt_ms=40) as site:
        rtts = echo_rtts(site)
        counters = site.stop_wan_delay()
    expect(rtts[0] >= 40.0, "a round trip of %.3f ms under the 40 ms asked" % rtts[0])
    median = rtts[len(rtts) // 2]
    expect(median < 48.0, "median round trip %.3f ms for 40 asked" % median)
    expect(counters and counters["a_to_b"]["frames"] >= 15 and
           counters["b_to_a"]["frames"] >= 15, "counters: %s" % counters)
    expect(not counters["a_to_b"]["dropped"] and not counters["b_to_a"]["send_errors"],
           "drops or errors: %s" % counters)
    with S.Site(1, ["CP-8845"], {"f.bin": 1000}) as site:
        plain = echo_rtts(site)
    expect(plain[len(plain) // 2] < 5.0, "without delay the median is %.3f ms" % plain[7])
    return "40 ms asked: %.1f .. %.1f ms (median %.1f); without: median %.2f ms" % (
        rtts[0], rtts[-1], median, plain[len(plain) // 2])


def scenario_wan_delay_carries_tftp_and_tcp():
    """A device fetches 400 kB by TFTP (pfs-peer, tftp-only) and by HTTP
    (curl: TCP with GSO super-frames from the veth) across a 30 ms WAN:
    both byte-identical, nothing dropped; TFTP's lock-step shows (at least
    one round trip per 1468-byte block)."""
    size = 400 * 1000
    with S.Site(1, ["CP-8845"], {"fw/f.bin": size}, wan_mbit=100, signed=False,
                rtt_ms=30) as site:
        site.start_http()
        d = site.devices[0]
        t0 = time.time()
        d.start(["fw/f.bin"], mode="tftp-only")
        expect(site.wait(120), "the TFTP fetch did not finish")
        tftp_s = time.time() - t0
        expect(not S.check_outputs(site), "TFTP copy: %s" % S.check_outputs(site))
        out = os.path.join(d.out, "http.bin")
        r = subprocess.run(["ip", "netns", "exec", d.ns, "curl", "-sS", "--fail", "-m", "60",
                            "-w", "%{time_total}", "-o", out, S.HTTP_URL + "fw/f.bin"],
                           capture_output=True, text=True, timeout=90)
        expect(r.returncode == 0, "curl: %s" % r.stderr.strip())
        expect(S.sha256(out) == site.files["fw/f.bin"][1], "the HTTP copy differs")
        counters = site.stop_wan_delay()
    blocks = size / 1468.0
    expect(tftp_s >= blocks * 0.030, "TFTP took %.1f s for %d blocks at 30 ms" % (tftp_s,
                                                                                 blocks))
    for lane in ("a_to_b", "b_to_a"):
        expect(counters and not counters[lane]["dropped"] and
               not counters[lane]["send_errors"], "counters: %s" % counters)
    return "400 kB over 30 ms: TFTP %.1f s (lock-step), HTTP %.2f s" % (tftp_s,
                                                                      float(r.stdout))


def hq_rx_packets(site):
    """Datagrams HQ received over the WAN: requests and TFTP's ACKs."""
    return int(S.sh("cat", "/sys/class/net/hq0/statistics/rx_packets", ns=site.prefix + "-hq",
                    capture=True))


def scenario_wan_delay_tftp_large_blocks():
    """--tftp-blksize 65464 across a 30 ms WAN: one ACK per 64 kB block
    (HQ hears a few dozen datagrams for 2 MiB, not the 1,429 ACKs of
    1468-byte blocks), the copy byte-identical, no retry."""
    size = 2 * 1024 * 1024
    with S.Site(1, ["CP-8845"], {"fw/big.bin": size}, wan_mbit=100, signed=False,
                rtt_ms=30) as site:
        d = site.devices[0]
        rx0, t0 = hq_rx_packets(site), time.time()
        d.start(["fw/big.bin"], mode="tftp-only", extra=["--tftp-blksize", "65464"])
        expect(site.wait(60), "the TFTP fetch did not finish")
        took = time.time() - t0
        expect(not S.check_outputs(site), "copy: %s" % S.check_outputs(site))
        acks = hq_rx_packets(site) - rx0
        expect(acks < size // 65464 + 20, "HQ received %d datagrams for %d blocks" % (
            acks, size // 65464 + 1))
        retries = [ev["msg"] for _, ev in S.events(site, "upstream_retry")]
        expect(not retries, "retried: %s" % retries)
        site.stop_wan_delay()
    return "2 MiB in 65464-byte blocks over 30 ms: %d datagrams to HQ, %.1f s" % (acks, took)


def scenario_tftp_fragments_dropped_falls_back():
    """A WAN that drops IP fragments (tests/netem/frag_drop.bpf.c on the
    site's side, so no datagram larger than a frame arrives): a fetch
    asking 65464-byte blocks gets none, is tried again with 1468-byte ones,
    says so (upstream_retry, then that 1468 holds from now on), and
    completes byte-identical."""
    size = 512 * 1024
    with S.Site(1, ["CP-8845"], {"fw/f.bin": size}, signed=False) as site:
        site.drop_wan_fragments()
        d = site.devices[0]
        rx0 = hq_rx_packets(site)
        d.start(["fw/f.bin"], mode="tftp-only",
                extra=["--tftp-blksize", "65464", "--connect-timeout", "1", "--stall-timeout", "1"])
        expect(site.wait(60), "the fetch did not finish")
        expect(d.proc.returncode == 0, "exit %s: %s" % (d.proc.returncode, d.stderr_text()[-300:]))
        expect(not S.check_outputs(site), "copy: %s" % S.check_outputs(site))
        retries = [ev["msg"] for _, ev in S.events(site, "upstream_retry")]
        expect(len(retries) == 2 and "no data with 65464" in retries[0] and
               "1468" in retries[0] and "from now on" in retries[1], "retries: %s" % retries)
        acks = hq_rx_packets(site) - rx0
        expect(acks >= size // 1468, "%d datagrams to HQ: the small blocks were not used" % acks)
    return "fragments dropped: %s; then %d datagrams to HQ" % (retries[0][:90], acks)


def scenario_wan_delay_bad_arguments():
    """Bad arguments: exit 2 and a message naming the option."""
    for args, word in ((["--a", "x", "--b", "y", "--delay-ms", "-1"], "--delay-ms"),
                       (["--a", "x", "--b", "y", "--delay-ms", "5", "--limit-kb", "1"],
                        "--limit-kb"),
                       (["--a", "x", "--delay-ms", "5"], "usage"),
                       (["--a", "nonexistent0", "--b", "nonexistent1", "--delay-ms", "5"],
                        "no such interface")):
        r = subprocess.run([S.WAN_DELAY] + args, capture_output=True, text=True, timeout=10)
        expect(r.returncode == 2 and word in r.stderr,
               "%s: exit %d, %r" % (args, r.returncode, r.stderr))
    return "4 bad invocations refused"


SCENARIOS = [scenario_wan_delay_round_trip, scenario_wan_delay_carries_tftp_and_tcp,
             scenario_wan_delay_tftp_large_blocks, scenario_tftp_fragments_dropped_falls_back,
             scenario_wan_delay_bad_arguments]

if __name__ == "__main__":
    sys.exit(main(SCENARIOS, "wan-delay"))
