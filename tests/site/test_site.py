#!/usr/bin/env python3
"""test_site.py - pfs-peer on a real site: namespaces, tftpd-hpa, a tbf WAN.

Each scenario builds its own site and tears it down. Prints one line per
scenario and ends with "N passed, N failed"; exits non-zero on any failure.
Run as root from a built tree (scripts/test.sh does both).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pfs_site as S  # noqa: E402

CHUNK = 1408
FILES = {
    "empty.bin": 0,
    "one.bin": 1,
    "dnld/exact.bin": CHUNK * 512,
    "dnld/big.loads": 3 * 1024 * 1024 + 123,
}
MODELS = ["CP-7961G", "CP-7941G"]


def expect(cond, what):
    if not cond:
        raise AssertionError(what)



def check_rollout(site, wan_limit_factor=1.1):
    for d in site.devices:
        expect(d.proc.returncode == 0, "d%d exited %s: %s" % (d.idx, d.proc.returncode,
                                                          d.stderr_text().strip()[-300:]))
    problems = S.check_outputs(site)
    expect(not problems, "; ".join(problems[:5]))
    starts = S.upstream_starts(site)
    for m in MODELS:
        for f in site.devices[0].wants:
            expect(starts.get((m, f), 0) == 1, "%s %s fetched %d times (want 1)"
                   % (m, f, starts.get((m, f), 0)))
    payload = sum(site.files[f][0] for f in site.devices[0].wants) * len(MODELS)
    wan = site.wan_bytes()
    expect(wan <= wan_limit_factor * payload + 64 * 1024,
           "WAN bytes %d > %.1f x %d file bytes" % (wan, wan_limit_factor, payload))
    return wan, payload


def scenario_cut_through_8():
    """8 devices, 2 models, all four files (so two trees per file), garbage
    broadcast on port 4051 in the middle: byte-identical files, one fetch per
    (model, file), WAN bytes within 1.1x, malformed datagrams counted. Half
    the devices send and receive each datagram alone (--no-udp-offload), half
    send runs to a child as one message, cut by the kernel (UDP GSO), and
    take runs coalesced on receipt (GRO): the same datagrams on the wire."""
    with S.Site(8, MODELS, FILES) as site:
        for d in site.devices:
            d.start(sorted(FILES), extra=["--no-udp-offload"] if d.idx % 2 else [])
        time.sleep(0.3)     # garbage lands during the election; not a sync point
        site.send_garbage(0, count=80)
        expect(site.wait(90), "devices did not finish in 90 s")
        wan, payload = check_rollout(site)
        bad = sum(ev.get("rx_bad", 0) for d in site.devices for ev in d.events
                  if ev.get("event") == "stats")
        expect(bad > 0, "no malformed datagram was counted")
        foreign = sum(ev.get("rx_foreign", 0) for _, ev in S.events(site, "stats"))
        expect(foreign > 0, "the other model's claims were not counted as foreign")
        roots = {(d.model, ev["file"]) for d in site.devices for ev in d.events
                 if ev.get("event") == "root_confirmed"}
        expect(len(roots) == len(FILES) * len(MODELS), "roots: %s" % sorted(roots))
        # Batched sockets: a chunk to two children leaves in one sendmmsg,
        # and a member relays a chunk as received, without reading it back
        # (roots read theirs: the server's blocks are not chunks).
        st = [ev for _, ev in S.events(site, "stats")]
        tot = {k: sum(ev[k] for ev in st) for k in ("tx_datagrams", "tx_calls", "chunks_tx",
                                                   "chunks_read_back", "chunks_rx",
                                                   "store_pwrites")}
        expect(tot["tx_datagrams"] >= 1.3 * tot["tx_calls"],
               "%(tx_datagrams)d datagrams sent in %(tx_calls)d calls" % tot)
        segmented, coalesced = ({d.idx: sum(ev[k] for ev in d.events
                                            if ev.get("event") == "stats")
                                 for d in site.devices} for k in ("tx_segmented", "rx_coalesced"))
        expect(not any(segmented[i] or coalesced[i] for i in segmented if i % 2),
               "--no-udp-offload devices sent or took runs: %s %s" % (segmented, coalesced))
        if S.udp_gso_supported():
            expect(sum(segmented.values()) > 0, "no run left as one message: %s" % segmented)
            expect(sum(coalesced.values()) > 0, "no run came coalesced: %s" % coalesced)
        expect(tot["chunks_read_back"] * 2 < tot["chunks_tx"],
               "%(chunks_read_back)d of %(chunks_tx)d chunks sent read back from files" % tot)
        # Chunks reach the file in runs (peer/wcbuf.h), not a pwrite each.
        expect(tot["store_pwrites"] * 8 <= tot["chunks_rx"],
               "%(store_pwrites)d pwrites for %(chunks_rx)d chunks received" % tot)
        return "WAN %.2f MB for %.2f MB of files; %d malformed datagrams dropped; %.1f " \
            "datagrams a send call; %d runs sent as one message, %d received so; %d of " \
            "%d chunks read back; %d pwrites for %d chunks" % (
                wan / 1e6, payload / 1e6, bad, tot["tx_datagrams"] / tot["tx_calls"],
                sum(segmented.values()), sum(coalesced.values()), tot["chunks_read_back"],
                tot["chunks_tx"],
                tot["store_pwrites"], tot["chunks_rx"])


def scenario_gso_refused():
    """A path whose MTU is below what the interface says (a route with a
    smaller one), so the kernel refuses the first run pfs-peer asks it to
    cut: each relaying device says so once and sends its datagrams one by
    one from then on (IP fragments here), and the rollout completes with one
    fetch; with the refusal taken for a full buffer, every run would be lost
    and the members would fall back to the server."""
    if not S.udp_gso_supported():
        return "skipped: this kernel has no UDP GSO"
    files = {"dnld/big.loads": 2 * 1024 * 1024}
    with S.Site(6, MODELS[:1], files) as site:
        for d in site.devices:
            S.sh("ip", "route", "replace", S.SUBNET + ".0/24", "dev", "eth0", "src", d.ip,
                 "mtu", "1000", ns=d.ns)
            d.start(sorted(files))
        expect(site.wait(60), "devices did not finish in 60 s")
        for d in site.devices:
            expect(d.proc.returncode == 0, "d%d exited %s" % (d.idx, d.proc.returncode))
        expect(not S.check_outputs(site), "; ".join(S.check_outputs(site)[:3]))
        starts = S.upstream_starts(site)
        expect(starts == {(MODELS[0], "dnld/big.loads"): 1}, "fetches: %s" % starts)
        relayed = [d for d in site.devices if sum(ev["chunks_tx"] for ev in d.events
                                                  if ev.get("event") == "stats")]
        said = [d for d in site.devices if d.stderr_text().count("UDP GSO refused") == 1]
        expect(relayed and set(said) >= set(relayed),
               "relaying devices %s, those that said GSO was refused once %s" % (
                   [d.idx for d in relayed], [d.idx for d in said]))
        return "%d relaying devices fell back to one datagram a message; one fetch" % len(relayed)


def scenario_store_forward_8():
    """The seed's store-and-forward mode on the same site."""
    with S.Site(8, MODELS, FILES) as site:
        for d in site.devices:
            d.start(sorted(FILES), mode="store-forward")
        expect(site.wait(90), "devices did not finish in 90 s")
        wan, payload = check_rollout(site)
        # A child finishes only after its parent finished.
        done = {(d.ip, ev["file"]): ev["t"] for d in site.devices for ev in d.events
                if ev.get("event") == "file_done"}
        for d in site.devices:
            for ev in d.events:
                if ev.get("event") == "joined" and ev["file"] == "dnld/big.loads":
                    parent = ev["peer"]
                    if (parent, ev["file"]) in done and (d.ip, ev["file"]) in done:
                        expect(done[(d.ip, ev["file"])] + 0.5 >= done[(parent, ev["file"])],
                               "d%d finished before its parent" % d.idx)
        return "WAN %.2f MB for %.2f MB of files" % (wan / 1e6, payload / 1e6)


def scenario_interior_killed():
    """An interior device (has children, is not the root) killed mid-transfer:
    every other device still ends with the right files."""
    files = {"dnld/big.loads": 4 * 1024 * 1024}
    with S.Site(8, MODELS, files, wan_mbit=8) as site:
        for d in site.devices:
            d.start(sorted(files))
        victim = None
        deadline = time.time() + 30
        while victim is None and time.time() < deadline:
            for d in site.devices:
                d.poll_events()
                evs = d.events
                is_root = any(e.get("event") == "root_confirmed" for e in evs)
                has_child = any(e.get("event") == "child_added" for e in evs)
                done = any(e.get("event") == "file_done" for e in evs)
                if has_child and not is_root and not done:
                    victim = d
                    break
            time.sleep(0.05)
        expect(victim is not None, "no interior device found mid-transfer")
        victim.kill(signal.SIGKILL)
        others = [d for d in site.devices if d is not victim]
        expect(site.wait(90), "devices did not finish in 90 s")
        for d in others:
            expect(d.proc.returncode == 0, "d%d exited %s: %s" % (
                d.idx, d.proc.returncode, d.stderr_text()[-300:]))
        problems = S.check_outputs(site, others)
        expect(not problems, "; ".join(problems[:5]))
        lost = sum(1 for d in others for e in d.events if e.get("event") == "parent_lost")
        expect(lost > 0, "the kill orphaned no one")
        partial = os.path.join(victim.out, "dnld", "big.loads")
        expect(not os.path.exists(partial), "the killed device shows a file as complete")
        return "killed d%d (%s); %d re-parentings; WAN %.2f MB" % (
            victim.idx, victim.model, lost, site.wan_bytes() / 1e6)


def scenario_tftp_only():
    """The traditional upgrade: every device fetches from the server."""
    files = {"dnld/big.loads": 1024 * 1024}
    with S.Site(3, MODELS, files, wan_mbit=50) as site:
        for d in site.devices:
            d.start(sorted(files), mode="tftp-only")
        expect(site.wait(60), "devices did not finish")
        expect(all(d.proc.returncode == 0 for d in site.devices), "a device failed")
        expect(not S.check_outputs(site), "wrong files")
        wan = site.wan_bytes()
        expect(wan >= 3 * 1024 * 1024, "tftp-only WAN bytes %d < 3 copies" % wan)
        return "WAN %.2f MB for 3 devices" % (wan / 1e6)


def scenario_missing_file():
    """A file the server does not have: every device exits 1 and names the
    server and the file; nothing is published."""
    with S.Site(3, MODELS[:1], {"present.bin": 1000}) as site:
        for d in site.devices:
            d.start(["absent.bin"])
        expect(site.wait(60), "devices did not give up")
        for d in site.devices:
            err = d.stderr_text()
            expect(d.proc.returncode == 1, "d%d exited %s" % (d.idx, d.proc.returncode))
            expect("absent.bin" in err and S.HQ_IP in err, "d%d said: %r" % (d.idx, err))
            expect(not os.path.exists(os.path.join(d.out, "absent.bin")), "a file appeared")
        return "every device exited 1 naming tftp://%s and absent.bin" % S.HQ_IP


def scenario_libcurl_only_where_fetched():
    """libcurl is loaded by the first fetch (upstream/curl_dl.h): the root
    maps it, members never do; and a root that cannot load it fails the
    file naming the library, exit 1, nothing published."""
    with S.Site(3, MODELS[:1], {"fw.bin": 256 * 1024}) as site:
        for d in site.devices:
            d.start(["fw.bin"])
        expect(site.wait(60), "devices did not finish")
        expect(not S.check_outputs(site), "; ".join(S.check_outputs(site)))
        loaded = {d.idx: ev["libcurl_loaded"] for d, ev in S.events(site, "stats")}
        roots = {d.idx for d, _ in S.events(site, "upstream_start")}
        expect(len(roots) == 1 and loaded == {i: i in roots for i in range(3)},
               "libcurl loaded %s, roots %s" % (loaded, sorted(roots)))
    with S.Site(1, MODELS[:1], {"fw.bin": 1000}) as site:
        broken = os.path.join(site.work, "badlib")
        os.makedirs(broken)
        open(os.path.join(broken, "libcurl.so.4"), "w").close()      # not an ELF file
        d = site.devices[0]
        d.start(["fw.bin"], extra=["--retries", "0"], env={"LD_LIBRARY_PATH": broken})
        expect(site.wait(60), "the device did not give up")
        err = d.stderr_text()
        expect(d.proc.returncode == 1, "exited %s: %r" % (d.proc.returncode, err[-300:]))
        expect("cannot load libcurl" in err, "it said: %r" % err[-300:])
        expect(not os.path.exists(os.path.join(d.out, "fw.bin")), "a file appeared")
    return "loaded by the root only; a broken one named, exit 1"


def scenario_bad_arguments():
    """Bad command lines: usage on stderr, exit 2, no network needed."""
    cases = [[], ["--iface"], ["--iface", "lo", "--model", "bad model", "--want", "f",
                                "--tftp", "h", "--out", "/tmp"],
             ["--iface", "lo", "--model", "M", "--want", "../etc/passwd", "--tftp", "h",
              "--out", "/tmp"],
             ["--iface", "lo", "--model", "M", "--want", "f", "--tftp", "h", "--out", "/tmp",
              "--mode", "fastest"],
             ["--iface", "lo", "--model", "M", "--want", "f", "--tftp", "h", "--out", "/tmp",
              "--max-children", "0"],
             ["--iface", "lo", "--model", "M", "--want", "f", "--tftp", "h"]]
    for args in cases:
        r = subprocess.run([S.PEER] + args, capture_output=True, text=True, timeout=10)
        expect(r.returncode == 2, "%s exited %d" % (args, r.returncode))
        expect("usage:" in r.stderr and "pfs-peer:" in r.stderr,
               "%s: no message/usage: %r" % (args, r.stderr[:200]))
    return "%d bad command lines rejected with exit 2" % len(cases)


def scenario_xdp_steer_attach():
    """pfs-steer on a real veth (skb mode, no DPDK): port-4051 datagrams are
    steered (with no AF_XDP socket bound they fall back to the kernel), other
    ports pass, the counters account for both; port and on/off take effect."""
    steer = os.path.join(S.ROOT, "build", "bpf", "pfs-steer")
    pins = tempfile.mkdtemp(prefix="pfs-bpffs-")
    subprocess.run(["mount", "-t", "bpf", "bpf", pins], check=True)
    try:
        with S.Site(2, MODELS[:1], {"x.bin": 1}) as site:
            rx, tx = site.devices
            run = lambda *a: subprocess.run(["ip", "netns", "exec", rx.ns, steer,
                                             "--pin-root", pins] + list(a),
                                            capture_output=True, text=True, timeout=20)
            r = run("attach", "eth0", "skb")
            expect(r.returncode == 0, "attach: %s" % r.stderr)
            listen = ("import socket,sys\n"
                      "socks=[]\n"
                      "for p in (4051,5000):\n"
                      "  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('',p))\n"
                      "  s.settimeout(10); socks.append(s)\n"
                      "print('ready',flush=True)\n"
                      "got=[0,0]\n"
                      "for i,s in enumerate(socks):\n"
                      "  for _ in range(5): s.recv(100); got[i]+=1\n"
                      "print(got[0],got[1],flush=True)\n")
            lp = subprocess.Popen(["ip", "netns", "exec", rx.ns, "python3", "-c", listen],
                                  stdout=subprocess.PIPE, text=True)
            expect(lp.stdout.readline().strip() == "ready", "listener did not start")
            # PFS datagrams carry TTL 255 (the link-local guard); three
            # with the default TTL are dropped by the filter and counted.
            send = ("import socket\n"
                    "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                    "for _ in range(3): s.sendto(b'x'*64,('%s',4051))\n"
                    "s.setsockopt(socket.IPPROTO_IP,socket.IP_TTL,255)\n"
                    "for p in (4051,5000):\n"
                    "  for _ in range(5): s.sendto(b'x'*64,('%s',p))\n") % (rx.ip, rx.ip)
            S.sh("python3", "-c", send, ns=tx.ns)
            out, _ = lp.communicate(timeout=20)
            expect(out.split() == ["5", "5"], "kernel sockets got %r" % out)
            st = json.loads(run("--json", "stats").stdout)
            expect(st["steered"] >= 5 and st["passed"] >= 5 and st["ttl_drop"] == 3,
                   "counters %s" % st)
            expect(run("port", "5000").returncode == 0, "set port")
            expect(json.loads(run("--json", "show").stdout)["port"] == 5000, "port not set")
            expect(run("port", "70000").returncode == 2, "a bad port was accepted")
            expect(run("disable").returncode == 0, "disable")
            expect(json.loads(run("--json", "show").stdout)["enabled"] is False, "not disabled")
            r = run("detach", "eth0")
            expect(r.returncode == 0, "detach: %s" % r.stderr)
            left = [f for f in os.listdir(pins) if not f.endswith(".debug")]  # kernel's own
            expect(not left, "pinned maps left: %s" % left)
            return "steered %d, passed %d; port, disable, detach work" % (st["steered"],
                                                                          st["passed"])
    finally:
        subprocess.run(["umount", pins])
        os.rmdir(pins)


def scenario_memory_flat():
    """pfs-peer streams to storage: its peak RSS with a 32 MB file is within
    4 MB of its peak RSS with a 1 MB file (root and child alike)."""
    peaks = {}
    for size in (1 << 20, 32 << 20):
        with S.Site(2, MODELS[:1], {"fw.bin": size}, wan_mbit=400) as site:
            for d in site.devices:
                d.start(["fw.bin"])
            expect(site.wait(120), "devices did not finish")
            expect(not S.check_outputs(site), "wrong files")
            peaks[size] = max(ev["max_rss_kb"] for _, ev in S.events(site, "stats"))
    grew = peaks[32 << 20] - peaks[1 << 20]
    expect(grew < 4096, "peak RSS grew by %d kB from 1 MB to 32 MB" % grew)
    return "peak RSS %d kB (1 MB file), %d kB (32 MB file)" % (peaks[1 << 20], peaks[32 << 20])


def scenario_no_broadcast_address():
    """Addresses added without a broadcast address (as a new user does):
    each device says it derived the subnet's, claims reach the others, and
    the rollout costs one fetch per (model, file), not one per device."""
    files = {"dnld/a.loads": 300000, "b.sbn": 100000}
    with S.Site(6, MODELS, files, brd=False) as site:
        out = S.sh("ip", "-4", "addr", "show", "dev", "eth0", ns=site.devices[0].ns, capture=True)
        expect(" brd " not in out, "the address has a broadcast address: %r" % out)
        for d in site.devices:
            d.start(sorted(files))
        expect(site.wait(90), "rollout did not finish")
        derived = [d for d, ev in S.events(site, "broadcast_derived")
                   if S.SUBNET + ".255" in ev.get("msg", "")]
        expect(len(derived) == len(site.devices), "%d of %d devices derived %s.255" % (
            len(derived), len(site.devices), S.SUBNET))
        wan, payload = check_rollout(site)
    # Claims that reach nobody (here: forced to the device's own address)
    # are what made every device root: each says so when it becomes root.
    with S.Site(2, MODELS[:1], {"c.bin": 1000}) as site:
        for d in site.devices:
            d.start(["c.bin"], extra=["--broadcast", d.ip])
        expect(site.wait(60), "the misconfigured pair did not finish")
        warned = [d for d, _ in S.events(site, "heard_no_peer")]
        expect(len(warned) == 2, "%d of 2 lone roots warned" % len(warned))
        return "every device derived %s.255; one fetch per (model, file); WAN %.2f MB " \
               "for %.2f MB" % (S.SUBNET, wan / 1e6, payload / 1e6)


def heartbeat_times(pcap):
    """(sender, receiver) -> capture times of the HEARTBEATs between them."""
    out = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "frame.time_epoch",
                          "-e", "ip.src", "-e", "ip.dst"], capture_output=True, text=True,
                         check=True).stdout
    times = {}
    for line in out.splitlines():
        t, src, dst = line.split("\t")
        times.setdefault((src, dst), []).append(float(t))
    return times


def scenario_big_file_heartbeats():
    """1 GB down a chain (root -> member -> leaf, --max-children 1) with
    loss at the members, so a member's chunks arrive out of order and its
    whole-file digest must read most of the file back at the end (unsigned:
    a signed file is verified chunk by chunk and not hashed whole). The
    member's HEARTBEATs to its child, captured on the site's bridge, never
    stop for more than two intervals (250 ms each; 1.5 s is the child's
    give-up): the digest is read back in 2 ms slices, one per loop turn
    (issue 16 item 3). In one go it held the loop 0.8 s here."""
    size, path = 1 << 30, "fw/big.bin"
    work = tempfile.mkdtemp(prefix="pfs-big-", dir="/dev/shm")   # 4 GB: keep it off the disk
    cap = None
    try:
        with S.Site(3, MODELS[:1], {path: size}, wan_mbit=2000, work=work,
                    signed=False) as site:
            site.start_http()
            site.add_loss(100, site.devices[1:])
            pcap = os.path.join(work, "heartbeats.pcapng")
            cap = subprocess.Popen(["ip", "netns", "exec", site.prefix + "-site", "dumpcap", "-q",
                                    "-i", "br0", "-f", "udp dst port 4051 and udp[11] = 7",
                                    "-w", pcap], stderr=subprocess.PIPE, text=True)
            ready = cap.stderr.readline()       # "Capturing on 'br0'": the filter is in
            expect("Capturing" in ready, "dumpcap: %r" % ready)
            root, *members = site.devices
            root.start([path], upstream=S.HTTP_URL, extra=["--strength", "15",
                                                            "--max-children", "1"])
            for d in members:
                d.start([path], upstream=S.HTTP_URL, extra=["--max-children", "1"])
            expect(site.wait(240), "1 GB did not reach the chain in 240 s")
            cap.send_signal(signal.SIGINT)
            cap.wait(10)
            for d in site.devices:
                expect(d.proc.returncode == 0, "d%d exited %s" % (d.idx, d.proc.returncode))
            expect(not S.check_outputs(site), "wrong files: %s" % S.check_outputs(site))
            times = heartbeat_times(pcap)
            member_ips = {d.ip for d in members}
            chain = [(src, dst) for src, dst in times if src in member_ips]
            expect(len(chain) == 1, "heartbeats between %s: not a chain" % sorted(times))
            src, dst = chain[0]
            ts = times[(src, dst)]
            gap = max(b - a for a, b in zip(ts, ts[1:]))
            mid = next(d for d in members if d.ip == src)
            back = [ev.get("hash_read_back", 0) for ev in mid.events if ev["event"] == "stats"]
            expect(back and back[0] > size // 2, "the member read back %s bytes to hash: not "
                   "the worst case this checks" % back)
            expect(gap < 0.5, "the member's heartbeats stopped for %.3f s" % gap)
            return "member %s read %.0f MB back to hash; %d heartbeats to %s, longest gap " \
                "%.3f s" % (src, back[0] / 1e6, len(ts), dst, gap)
    finally:
        if cap and cap.poll() is None:
            cap.kill()
            cap.wait()
        shutil.rmtree(work, ignore_errors=True)


SCENARIOS = [scenario_bad_arguments, scenario_xdp_steer_attach, scenario_cut_through_8,
             scenario_gso_refused, scenario_store_forward_8, scenario_interior_killed, scenario_tftp_only,
             scenario_missing_file, scenario_libcurl_only_where_fetched, scenario_memory_flat,
             scenario_no_broadcast_address, scenario_big_file_heartbeats]


def run_beside(name):
    """One scenario in a process of its own (its own site prefix, so its own
    namespaces), started now and judged by finish_beside()."""
    return name, subprocess.Popen([sys.executable, sys.argv[0], name], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)


def finish_beside(kid, timeout=600):
    """Its report lines as run_scenarios prints them; True if it passed."""
    name, proc = kid
    try:
        out = proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.terminate()        # its own handler tears its site down
        out = proc.communicate(timeout=60)[0] + "\nFAIL %s: no verdict in %d s" % (name, timeout)
    lines = [ln for ln in out.splitlines() if ln.startswith(("ok ", "FAIL "))]
    ok = proc.returncode == 0 and len(lines) == 1 and lines[0].startswith("ok ")
    print("\n".join(lines if ok else out.splitlines()[-40:]), flush=True)
    return ok


def main(scenarios=None, label="site", beside=()):
    """Run the scenarios named on the command line, or all. beside: those
    that mostly wait (for timeouts, not the CPU), each run in a process of
    its own alongside the others when all are run."""
    only = sys.argv[1:]
    passed = failed = 0
    kids = [] if only else [run_beside(sc.__name__.replace("scenario_", "")) for sc in beside]
    try:
        for sc in scenarios or SCENARIOS:
            name = sc.__name__.replace("scenario_", "")
            if (only and name not in only) or (not only and sc in beside):
                continue
            t0 = time.time()
            try:
                info = sc()
                passed += 1
                print("ok   %-22s %5.1fs  %s" % (name, time.time() - t0, info), flush=True)
            except Exception as exc:  # noqa: BLE001 - report and go on to the next
                failed += 1
                print("FAIL %-22s %5.1fs  %s" % (name, time.time() - t0, exc), flush=True)
                if not isinstance(exc, AssertionError):
                    traceback.print_exc()
        while kids:
            if finish_beside(kids.pop(0)):
                passed += 1
            else:
                failed += 1
    finally:
        for _, proc in kids:    # interrupted: the others tear their sites down
            if proc.poll() is None:
                proc.terminate()
                proc.wait(60)
    print("%s: %d passed, %d failed" % (label, passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
