#!/usr/bin/env python3
"""test_appliance.py - the pfs-relay appliance on a real site: pfs-dataplane
on net_af_xdp with the steering program, pfs-control, pfsctl, and devices
running pfs-peer (docs/appliance.md 6).

Same conventions as test_site.py: each scenario builds and tears down its own
site, one line per scenario, non-zero exit on any failure. Run as root.
"""
import json
import os
import signal
import socket  # noqa: F401 - used by the code run inside namespaces
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pfs_site as S  # noqa: E402
from appliance import APP_IP, CONTROL, Appliance  # noqa: E402
from test_site import FILES, MODELS, expect, main  # noqa: E402
from appliance_checks import (EXTRA, check_operator_commands, check_pfsctl, metric,  # noqa: E402
                              pfsctl_bg, scrape)


def check_devices(site, devices):
    for d in devices:
        expect(d.proc.returncode == 0, "d%d exited %s: %s" % (d.idx, d.proc.returncode,
                                                          d.stderr_text().strip()[-300:]))
    problems = S.check_outputs(site, devices)
    expect(not problems, "; ".join(problems[:5]))
    fetched = S.upstream_starts(site)
    expect(not fetched, "devices fetched from the server themselves: %s" % fetched)


def scenario_appliance_16_then_cache_wave():
    """16 devices, 2 models, four files: the appliance is root of every
    hierarchy, fetches each file once for both models (one cache entry),
    devices get byte-identical files. pfs-control restarts (the cache stays), and a second wave of 8 new
    devices gets the same files with no WAN byte. pfsctl checked throughout."""
    with S.Site(24, MODELS, dict(FILES, **{"extra.bin": EXTRA}), site_key=True) as site:
        app = Appliance(site)
        app.start()
        first, second = site.devices[:16], site.devices[16:]
        for d in first:
            d.start(sorted(FILES))
        expect(site.wait(120), "first wave did not finish in 120 s")
        check_devices(site, first)
        payload = sum(FILES.values())           # once, whatever the models
        wan1 = site.wan_bytes()
        expect(wan1 <= 1.1 * payload + 64 * 1024, "WAN %d for %d bytes of files" % (wan1,
                                                                                 payload))
        nfiles = len(FILES) * len(MODELS)
        check_pfsctl(app, nfiles, len(FILES))
        # Restart the control process: completed files must survive.
        app.control.terminate()
        app.control.wait(10)
        app.start_control()
        for d in second:
            d.start(sorted(FILES))
        expect(site.wait(120), "second wave did not finish in 120 s")
        check_devices(site, second)
        wan2 = site.wan_bytes() - wan1
        expect(wan2 < 16 * 1024, "second wave cost %d WAN bytes" % wan2)
        files = app.ctl_json("files")["files"]
        hits = sum(f["hits"] for f in files)
        expect(hits >= nfiles, "cache hits %d < %d" % (hits, nfiles))
        check_operator_commands(site, app, len(FILES))
        return "wave 1: WAN %.2f MB for %.2f MB; wave 2: %d WAN bytes, %d cache hits" % (
            wan1 / 1e6, payload / 1e6, wan2, hits)


def scenario_appliance_kernel_traffic():
    """With the dataplane on port 4051, a TCP connection and a UDP echo to
    other ports of the appliance reach its kernel stack; the XDP counters
    account for both kinds."""
    with S.Site(2, MODELS[:1], {"x.bin": 200000}) as site:
        app = Appliance(site)
        app.start()
        server = ("import socket,threading\n"
                  "t=socket.socket(); t.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                  "t.bind(('',8080)); t.listen(1)\n"
                  "u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(('',7007))\n"
                  "print('ready',flush=True)\n"
                  "for _ in range(5):\n"
                  "  d,a=u.recvfrom(100); u.sendto(d,a)\n"
                  "c,_=t.accept(); c.sendall(c.recv(100).upper()); c.close()\n")
        srv = subprocess.Popen(["ip", "netns", "exec", app.ns, "python3", "-c", server],
                               stdout=subprocess.PIPE, text=True)
        try:
            expect(srv.stdout.readline().strip() == "ready", "server did not start")
            client = ("import socket\n"
                      "u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.settimeout(5)\n"
                      "n=0\n"
                      "for i in range(5):\n"
                      "  u.sendto(b'ping%%d'%%i,('%s',7007)); n+=u.recv(100)==b'ping%%d'%%i\n"
                      "t=socket.create_connection(('%s',8080),timeout=5); t.sendall(b'hello')\n"
                      "print(n, t.recv(100).decode())\n") % (APP_IP, APP_IP)
            out = S.sh("python3", "-c", client, ns=site.devices[0].ns, capture=True).split()
            expect(out == ["5", "HELLO"], "kernel traffic: %r" % out)
        finally:
            srv.kill()
            srv.wait()
        for d in site.devices:
            d.start(["x.bin"])
        expect(site.wait(60), "devices did not finish")
        check_devices(site, site.devices)
        st = app.steer_stats()
        expect(st and st["steered"] > 0 and st["passed"] >= 12, "XDP counters %s" % st)
        dp = app.ctl_json("stats")["dataplane"]
        expect(dp["rx_pfs"] == st["steered"] and dp["rx_not_pfs"] == 0,
               "steered %d but the dataplane saw %d PFS datagrams (and %d others)" %
               (st["steered"], dp["rx_pfs"], dp["rx_not_pfs"]))
        return "TCP and UDP echo reach the kernel; XDP steered %d, passed %d" % (
            st["steered"], st["passed"])


def scenario_appliance_dataplane_restart():
    """The dataplane is killed (SIGKILL) while it feeds 8 devices a 6 MB file
    and restarted: pfs-control re-attaches, the devices finish with
    byte-identical files, the file was fetched once."""
    files = {"fw/big.bin": 6 * 1024 * 1024}
    with S.Site(8, MODELS[:1], files) as site:
        app = Appliance(site)
        app.start()
        for d in site.devices:
            d.start(sorted(files))
        deadline = time.time() + 30
        while time.time() < deadline:
            if app.ctl_json("stats")["dataplane"].get("tx_chunks", 0) > 500:
                break
            time.sleep(0.05)
        sent = app.ctl_json("stats")["dataplane"]["tx_chunks"]
        expect(sent > 500, "no chunks flowed before the kill")
        app.kill_dataplane()
        app.start_dataplane()
        expect(site.wait(120), "devices did not finish after the restart")
        check_devices(site, site.devices)
        st = app.ctl_json("stats")
        expect(st["control"]["dataplane_restarts"] >= 2, "restart not seen: %s" % st["control"])
        wan = site.wan_bytes()
        expect(wan <= 1.1 * files["fw/big.bin"] + 64 * 1024, "WAN %d bytes" % wan)
        return "killed after %d chunks; restarted; %d devices done, WAN %.2f MB" % (
            sent, len(site.devices), wan / 1e6)


def scenario_appliance_cache_relayout_refused():
    """pfs-control restarted with another segment.rx_frames while the
    dataplane runs would lay the cache out anew under it (its frames, chunk
    maps and reference counts move; the dataplane keeps the layout it
    found): it refuses, names the setting, and exits non-zero, leaving the
    cache as it was; with the setting back it starts, and the dataplane,
    never stopped, is still the one it sees."""
    with S.Site(1, MODELS[:1], {"fw/a.bin": 1000}) as site:
        app = Appliance(site)
        app.start()
        pid = app.dataplane_pid()
        app.control.send_signal(signal.SIGTERM)
        expect(app.control.wait(15) == 0, "pfs-control did not stop")
        good = open(app.conf).read()
        open(app.conf, "w").write(good.replace("cache_mb = ", "rx_frames = 1000; cache_mb = "))
        ctl = subprocess.run(["ip", "netns", "exec", app.ns, CONTROL, "--config", app.conf],
                             capture_output=True, text=True, timeout=30)
        expect(ctl.returncode != 0 and "rx_frames = 1000" in ctl.stderr and
               "running dataplane" in ctl.stderr,
               "pfs-control exited %d: %s" % (ctl.returncode, ctl.stderr.strip()[-300:]))
        open(app.conf, "w").write(good)
        app.start_control()
        deadline, dp = time.time() + 20, {}
        while time.time() < deadline:
            dp = (app.status() or {}).get("dataplane", {})
            if dp.get("alive") and dp.get("pid") == pid:
                break
            time.sleep(0.1)
        expect(dp.get("alive") and dp.get("pid") == pid and app.dataplane.poll() is None,
               "after the restart: %s" % dp)
        return "refused: %s" % ctl.stderr.strip().splitlines()[-1][:120]


def scenario_appliance_member_relays_locally():
    """The appliance below the devices' priority: a device is root, the
    appliance joins as a member with 16 child slots, and its dataplane
    stores and replicates the chunks it receives itself (local fan-out);
    every device ends byte-identical, the appliance fetched nothing. The
    file is signed: the dataplane checks every relayed chunk against its
    digest before it stores or sends it."""
    files = {"fw/big.bin": 4 * 1024 * 1024 + 77}
    with S.Site(12, MODELS[:1], files) as site:
        app = Appliance(site, priority=0)
        app.start()
        # The appliance joins on the first claim it hears; a head start for
        # two devices makes one of them root and puts the appliance right
        # below it, where later joiners are sent.
        for d in site.devices[:2]:
            d.start(sorted(files))
        deadline = time.time() + 20
        trees = []
        while time.time() < deadline and not (trees and trees[0]["state"] == "member"):
            time.sleep(0.05)
            trees = app.ctl_json("trees")["trees"]
        expect(trees and trees[0]["depth"] == 2, "appliance did not join the root: %s" % trees)
        for d in site.devices[2:]:
            d.start(sorted(files))
        expect(site.wait(120), "devices did not finish in 120 s")
        for d in site.devices:
            expect(d.proc.returncode == 0, "d%d exited %s" % (d.idx, d.proc.returncode))
        problems = S.check_outputs(site, site.devices)
        expect(not problems, "; ".join(problems[:5]))
        trees = app.ctl_json("trees")["trees"]
        expect(len(trees) == 1 and not trees[0]["root"] and trees[0]["complete"],
               "appliance not a complete member: %s" % trees)
        st = app.ctl_json("stats")
        dp, ctl = st["dataplane"], st["control"]
        expect(ctl["wan_bytes"] == 0, "a member fetched %d WAN bytes" % ctl["wan_bytes"])
        expect(dp["fanout_chunks"] > 0 and dp["fanout_tx"] > 0, "%s " % trees +
               "no chunk relayed locally: %s" % dp)
        expect(ctl["fanout_chunks"] >= dp["fanout_chunks"] - dp["to_control_drops"],
               "reports lost: dataplane %d, control %d" % (dp["fanout_chunks"],
                                                          ctl["fanout_chunks"]))
        expect(ctl["fanout_skipped"] > 0, "the engine re-sent every relayed chunk: %s" % ctl)
        expect(dp["fanout_verified"] >= dp["fanout_chunks"] and dp["fanout_bad_digest"] == 0,
               "relayed chunks not checked against their digests: %s" % dp)
        # What the dataplane checked, the engine does not hash again: every
        # reported chunk of the current table reaches it as checked.
        eng = st["engine"]
        expect(0 < eng["chunks_prechecked"] <= ctl["fanout_chunks"] and
               eng["chunks_forged"] == 0,
               "chunks hashed twice: %d of %d reported reached the engine as checked" % (
                   eng["chunks_prechecked"], ctl["fanout_chunks"]))
        return "member at depth %d: %d chunks verified and relayed locally as %d copies " \
               "(%d reports, %d not hashed again), %d engine sends skipped" % (
                   trees[0]["depth"], dp["fanout_chunks"], dp["fanout_tx"],
                   dp["fanout_notices"], eng["chunks_prechecked"], ctl["fanout_skipped"])


def scenario_appliance_demoted_keeps_cache():
    """An appliance that was root of a file (cached, signed) is demoted below
    the devices (set priority 0, disable, enable): a device is root of the
    next wave and the appliance joins it as a member, takes no chunk of the
    file it holds, and keeps it (issue 14 section 5)."""
    files = {"fw/demo.bin": 1024 * 1024 + 5}
    with S.Site(6, MODELS[:1], files) as site:
        app = Appliance(site)
        app.start()
        first, second = site.devices[:3], site.devices[3:]
        for d in first:
            d.start(sorted(files))
        expect(site.wait(60), "wave 1 did not finish")
        check_devices(site, first)
        expect(app.ctl_json("set", "priority", "0")["ok"], "set priority 0")
        expect(app.ctl_json("disable")["ok"] and app.ctl_json("enable")["ok"], "disable/enable")
        for d in second:
            d.start(sorted(files))
        expect(site.wait(60), "wave 2 did not finish")
        for d in second:
            expect(d.proc.returncode == 0, "d%d exited %s" % (d.idx, d.proc.returncode))
        problems = S.check_outputs(site, second)
        expect(not problems, "; ".join(problems[:3]))
        trees = app.ctl_json("trees")["trees"]
        expect(len(trees) == 1 and not trees[0]["root"] and trees[0]["complete"],
               "the appliance is not a complete member: %s" % trees)
        st = app.ctl_json("stats")
        expect(st["engine"]["chunks_rx"] == 0 and st["dataplane"]["fanout_chunks"] == 0,
               "the member took chunks of a file it held: %s / %s" % (
                   st["engine"]["chunks_rx"], st["dataplane"]["fanout_chunks"]))
        expect(st["engine"]["manifests_ok"] >= 1, "no manifest verified: %s" % st["engine"])
        log = app.log("control")
        expect("member with a complete cached copy" in log, "no word of the cached copy")
        kept = [f for f in app.ctl_json("files")["files"] if f["file"] == "fw/demo.bin"]
        expect(kept and kept[0]["state"] == "complete" and kept[0]["hits"] >= 1,
               "cache entry not kept: %s" % kept)
        return "member at depth %d with its cached copy: 0 chunks taken, %d hit(s)" % (
            trees[0]["depth"], kept[0]["hits"])


def scenario_appliance_http_server_killed_resumes():
    """The appliance fetches over HTTP (lighttpd at HQ) for 6 devices; the
    server is killed a third of the way and back 0.5 s later: pfs-control's
    retry resumes where the bytes stopped (Range), the devices end
    byte-identical, and the WAN carried the file about once."""
    size = 4 * 1024 * 1024
    files = {"fw/big.bin": size}
    with S.Site(6, MODELS[:1], files, wan_mbit=8) as site:
        site.start_http()
        app = Appliance(site, upstream=S.HTTP_URL)
        app.start()
        for d in site.devices:
            d.start(sorted(files))
        site.cut_http(size / 3)
        expect(site.wait(90), "devices did not finish")
        check_devices(site, site.devices)
        log = app.log("control")
        expect("resuming the fetch at byte" in log, "no resume in: %s" % log[-600:])
        wan = site.wan_bytes()
        expect(wan <= 1.15 * size, "WAN %d bytes for %d" % (wan, size))
        return "resumed after the kill; 6 devices done, WAN %.2f x the file" % (wan / size)


def udp_csum_errors(ns):
    """UDP datagrams the kernel of namespace ns dropped for their checksum."""
    lines = [ln.split() for ln in subprocess.run(
        ["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"], capture_output=True, text=True,
        check=True).stdout.splitlines() if ln.startswith("Udp:")]
    return int(lines[1][lines[0].index("InCsumErrors")])


def scenario_appliance_server_file_changed_on_retry():
    """The server's copy changes while the appliance's TFTP fetch is down
    (tftpd killed, back with other bytes under the same name), then is put
    back. pfs-control's retries fail the other bytes' signed digests; the
    cache entry of the first attempt stays, and the chunks it checked are
    sent from it meanwhile: a device that joins then gets them, every one
    right (before, the entry was dropped with the failed attempt and the
    appliance had nothing to send for chunks its engine held; and bytes the
    retry had stored over a chunk went out with the CRC and checksum the
    dataplane remembered for it, dropped by the device's kernel). Once the file
    is back, a retry completes that entry, storing nothing over what it
    held, and every device ends with the file."""
    path = "fw/changed.bin"
    with S.Site(3, MODELS[:1], {path: 2 << 20}, wan_mbit=8) as site:
        # Retries enough that it stays the root (its own FAILED would send
        # the devices to another root) until the file is back.
        app = Appliance(site, upstream_extra="retries = 10")
        app.start()
        late = site.devices[2]
        for d in site.devices[:2]:
            d.start([path])
        deadline = time.time() + 30
        while site.wan_bytes() < 600000:
            expect(time.time() < deadline, "the appliance's fetch did not start")
            time.sleep(0.02)
        site.stop_tftpd()
        full = os.path.join(site.tftp_root, path)
        with open(full, "rb") as f:
            orig = f.read()
        with open(full, "wb") as f:
            f.write(bytes(b ^ 0x5A for b in orig))
        site.start_tftpd()
        deadline = time.time() + 30
        while "do not match the signed manifest" not in app.log("control"):
            expect(time.time() < deadline, "the retry's bytes were not refused: %s" %
                   app.log("control")[-600:])
            time.sleep(0.05)
        late.start([path])
        deadline = time.time() + 30
        while not [ev for ev in late.poll_events() + late.events
                   if ev.get("event") in ("progress", "chunk_rejected")]:
            expect(time.time() < deadline, "the late device got nothing: %s" % [
                (e.get("event"), e.get("peer"), e.get("a"), e.get("have")) for e in late.events])
            time.sleep(0.05)
        # Changed bytes under a chunk the dataplane sent before go out with
        # its remembered CRC and checksum: the device's kernel drops them.
        csum_errors = udp_csum_errors(late.ns)
        expect(csum_errors == 0, "%d datagrams from the appliance with a bad UDP checksum "
               "(bytes changed in the cache under a chunk sent before)" % csum_errors)
        with open(full, "wb") as f:
            f.write(orig)
        expect(site.wait(90), "devices did not finish once the file was back")
        check_devices(site, site.devices)
        st = {d.idx: ev for d, ev in S.events(site, "stats")}
        joined = [ev.get("peer") for ev in late.events if ev.get("event") == "joined"]
        expect(joined == [APP_IP], "the late device joined %s, not the appliance alone" % joined)
        # A chunk whose bytes changed in the cache fails its digest at a
        # device, or its CRC (the dataplane keeps each chunk's CRC).
        bad = {i: (s["chunks_forged"], s["rx_bad"]) for i, s in st.items()}
        expect(not any(f or b for f, b in bad.values()),
               "(chunks that failed their digest, datagrams refused) by device: %s" % bad)
        return "retries refused, the held chunks served meanwhile; 3 devices done once " \
            "the file was back"


def scenario_appliance_relay_no_election():
    """With a site key and the filter requiring it: 12 devices boot beside
    the appliance, a site relay (docs/protocol.md 4.4). It is root at the
    first claim, so every device is in the tree within the listen window
    (no 1.1 s election), only the first listeners claim, no device confirms
    itself root, one WAN copy; and every device hears and authenticates the
    appliance's RELAY beacons while it runs."""
    size = 4 * 1024 * 1024
    files = {"fw/relay.bin": size}
    with S.Site(12, MODELS[:1], files, site_key=True) as site:
        app = Appliance(site)
        app.start()
        st = app.ctl_json("status")
        expect(st["relay"] is True, "status: not a relay: %s" % st)
        for d in site.devices:
            d.start(sorted(files))
        expect(site.wait(60), "devices did not finish")
        check_devices(site, site.devices)
        joined = {d.idx: min(ev["t"] for ev in d.events if ev.get("event") == "joined")
                  for d in site.devices}
        late = {i: t for i, t in joined.items() if t > 0.4}
        expect(not late, "joined later than the listen window: %s" % late)
        claims = sum(1 for _ in S.events(site, "claim_sent"))
        roots = [d.idx for d, _ in S.events(site, "root_confirmed")]
        expect(claims <= 4 and not roots, "%d claims, devices confirmed root: %s" % (claims,
                                                                                   roots))
        trees = app.ctl_json("trees")["trees"]
        expect(len(trees) == 1 and trees[0]["root"], "appliance not root: %s" % trees)
        heard = {d.idx: ev.get("relay_heard") for d, ev in S.events(site, "stats")}
        deaf = {i: n for i, n in heard.items() if not n}
        expect(len(heard) == 12 and not deaf, "devices that heard no RELAY: %s" % deaf)
        drops = sum(ev.get("auth_drop_bad_tag", 0) + ev.get("auth_drop_no_tag", 0)
                    for _, ev in S.events(site, "stats"))
        expect(drops == 0, "%d authentication drops" % drops)
        wan = site.wan_bytes()
        expect(wan <= 1.1 * size, "WAN %d bytes for %d" % (wan, size))
        return "joined within %.0f ms, %d claim(s), RELAY heard %d-%d times per device" % (
            max(joined.values()) * 1000, claims, min(heard.values()), max(heard.values()))


def scenario_appliance_tiny_ring_loses_nothing():
    """A ring of 15 slots to the dataplane, 16 children and a file already
    in the cache: the appliance makes ranges faster than the dataplane
    takes them, and none is dropped (docs/appliance.md 3.1): what the ring
    cannot take waits or is kept and grown, the devices get the file."""
    size = 4 * 1024 * 1024
    files = {"fw/ring.bin": size}
    with S.Site(20, MODELS[:1], files) as site:
        app = Appliance(site, ring_slots=16, max_children=16)
        app.start()
        site.devices[16].start(sorted(files))   # brings the file into the cache
        expect(site.wait(60), "the first device did not finish")
        wave = site.devices[:16]
        for d in wave:
            d.start(sorted(files))
        expect(site.wait(90), "the wave through a 15-slot ring did not finish in 90 s")
        check_devices(site, wave)
        st = app.ctl_json("stats")["control"]
        expect(st["tx_ring_full"] == 0, "%d messages dropped at the ring: %s" % (
            st["tx_ring_full"], st))
        expect(st["chunks_queued"] == st["chunk_sends"], "the engine sent %d chunks from the "
               "cache, %d went to the dataplane" % (st["chunk_sends"], st["chunks_queued"]))
        held = st["ranges_deferred"] + st["tx_backlog_waited"]
        expect(held > 0, "the ring never filled (nothing deferred or waited): %s" % st)
        return "%d ranges kept back and grown, %d messages waited (at most %d at once), " \
               "0 dropped, %d ranges in all" % (st["ranges_deferred"], st["tx_backlog_waited"],
                                               st["tx_backlog_high"], st["chunk_ranges"])


def scenario_appliance_tftp_blocks_fall_back():
    """upstream.tftp_blksize = 65464 over a WAN that drops IP fragments
    (tests/netem/frag_drop.bpf.c): pfs-control's fetch gets nothing, says
    so, goes on with 1468-byte blocks, the devices get the file from it;
    status and /metrics then show 1468 as the size asked for."""
    size = 1024 * 1024
    files = {"fw/frag.bin": size}
    with S.Site(4, MODELS[:1], files) as site:
        site.drop_wan_fragments()
        app = Appliance(site, upstream_extra="tftp_blksize = 65464",
                        extra_config='metrics = { listen = "127.0.0.1:9851"; };')
        app.start()
        expect(app.ctl_json("status")["tftp_blksize"] == 65464, "status before: %s" %
               app.ctl_json("status"))
        for d in site.devices:
            d.start(sorted(files))
        expect(site.wait(60), "devices did not finish")
        check_devices(site, site.devices)
        log = app.log("control")
        expect("no data with 65464-byte TFTP blocks" in log and "from now on" in log,
               "pfs-control said nothing of the fallback: %s" % log[-600:])
        expect(app.ctl_json("status")["tftp_blksize"] == 1468, "status after: %s" %
               app.ctl_json("status"))
        code, body = scrape(app)
        expect(code == 200 and metric(body, "pfs_relay_upstream_tftp_blksize_bytes") == 1468,
               "metrics: %d" % code)
    return "4 devices done; pfs-control fell back to 1468-byte blocks and shows it"


def scenario_appliance_fetch_port_pinned():
    """The appliance's kernel would hand out 4051 and nothing else as an
    ephemeral port (ip_local_port_range "4051 4051"): pfs-control's
    upstream fetches keep to 49152-65535, so their replies are not steered
    into the dataplane (issue 15 section 2). 3 devices complete over TFTP,
    then 3 more over HTTP."""
    files = {"fw/p.bin": 300 * 1024, "fw/q.bin": 200 * 1024}
    with S.Site(6, MODELS[:1], files) as site:
        site.start_http()
        for upstream, devices, f in ((None, site.devices[:3], "fw/p.bin"),
                                     (S.HTTP_URL, site.devices[3:], "fw/q.bin")):
            app = Appliance(site, upstream=upstream)
            S.sh("sysctl", "-qw", "net.ipv4.ip_local_port_range=4051 4051", ns=app.ns)
            app.start()
            for d in devices:
                d.start([f])
            expect(site.wait(60), "%s: devices did not finish" % (upstream or "tftp"))
            check_devices(site, devices)
            expect("complete" in app.log("control"), "no fetch completed")
            app.close()
            site.extra_stop.remove(app.close)
            S.sh("ip", "netns", "del", app.ns)
            site.namespaces.remove(app.ns)
        return "TFTP and HTTP fetched with the ephemeral range pinned on 4051"


def scenario_appliance_metrics():
    """GET /metrics (metrics.listen): the page passes promtool check metrics
    before and after a rollout of 4 devices, and its counters move with it:
    the dataplane's chunks out, WAN bytes, one fetch, a root hierarchy, a
    complete cache file, the XDP filter's steered frames, election and event
    counters; other paths 404. Meanwhile two `pfsctl events --json`
    subscribers get the same events as they happen (children added, the
    file complete), and `pfsctl watch` (not on a terminal: plain snapshots)
    shows the hierarchy and the last events."""
    files = {"fw/m.bin": 2 * 1024 * 1024}
    with S.Site(4, MODELS[:1], files) as site:
        app = Appliance(site, extra_config='metrics = { listen = "127.0.0.1:9851"; };')
        app.start()
        pages = []
        code, before = scrape(app)
        expect(code == 200, "GET /metrics: %d" % code)
        # Idle, pfs-control sleeps until the dataplane rings (its doorbell):
        # a few turns a second for timers, not a thousand ring polls.
        loops0 = app.ctl_json("stats")["control"]["loops"]
        time.sleep(2)           # the window measured, not a synchronisation
        idle_loops = app.ctl_json("stats")["control"]["loops"] - loops0
        expect(idle_loops < 200, "idle pfs-control turned %d times in 2 s" % idle_loops)
        subs = [pfsctl_bg(app, "--json", "events") for _ in range(2)]
        for p in subs:      # subscribed before the rollout starts: nothing missed
            expect("subscribed" in p.stderr.readline(), "pfsctl events did not subscribe")
        watch = pfsctl_bg(app, "watch", "--count", "4", "--interval", "0.5")
        for d in site.devices:
            d.start(sorted(files))
        expect(site.wait(60), "devices did not finish")
        check_devices(site, site.devices)
        shown, _ = watch.communicate(timeout=30)
        streams = []
        for p in subs:
            p.send_signal(signal.SIGINT)
            out, _ = p.communicate(timeout=10)
            expect(p.returncode == 0, "pfsctl events exited %s" % p.returncode)
            streams.append([json.loads(ln) for ln in out.splitlines()])
        names = [e["event"] for e in streams[0]]
        expect(streams[0] == streams[1], "the two subscribers got different streams")
        expect(names.count("child_added") >= 4 and "complete" in names and
               all(e.get("file") == "fw/m.bin" for e in streams[0] if e.get("model")),
               "events: %s" % names)
        expect(watch.returncode == 0 and "pfs-relay %s" % APP_IP in shown and
               "fw/m.bin" in shown and shown.count("last events:") == 4 and
               "child_added" in shown and "\x1b[" not in shown,
               "pfsctl watch: %s" % shown[-1500:])
        code, after = scrape(app)
        for text in (before, after):
            p = subprocess.run(["promtool", "check", "metrics"], input=text,
                               capture_output=True, text=True, timeout=30)
            expect(p.returncode == 0, "promtool: %s" % (p.stdout + p.stderr)[-600:])
            pages.append(len(text.splitlines()))
        expect(metric(before, "pfs_relay_dataplane_tx_chunks_total") <
               metric(after, "pfs_relay_dataplane_tx_chunks_total"), "chunks out did not move")
        expect(metric(after, "pfs_relay_wan_bytes_total") >= files["fw/m.bin"], "WAN bytes")
        expect(metric(after, "pfs_relay_upstream_fetches_total", 'result="ok"') >= 1, "fetches")
        expect(metric(after, "pfs_relay_hierarchies", 'state="root"') == 1, "no root hierarchy")
        expect(metric(after, "pfs_relay_cache_files", 'state="complete"') >= 1, "cache files")
        expect(metric(after, "pfs_relay_dataplane_up") == 1 and
               metric(after, "pfs_relay_site_relay") == 1, "up and relay")
        expect(metric(after, "pfs_relay_xdp_packets_total", 'verdict="steered"') > 0,
               "the XDP filter's counters are not on the page")
        expect(metric(after, "pfs_relay_events_total", 'event="child_added"') >= 4 and
               metric(after, "pfs_relay_elections_total", 'outcome="won"') >= 0,
               "event and election counters")
        st = app.ctl_json("stats")
        expect(st["control"]["bell_wakes"] > 0 and st["dataplane"]["bell_rings"] > 0,
               "the doorbell never rang: %s" % st["control"])
        expect(scrape(app, "/other")[0] == 404, "/other is not 404")
        return "promtool-clean pages of %d and %d lines; counters moved with the rollout; " \
            "idle control: %d turns in 2 s" % (pages[0], pages[1], idle_loops)


SCENARIOS = [scenario_appliance_16_then_cache_wave, scenario_appliance_kernel_traffic,
             scenario_appliance_dataplane_restart, scenario_appliance_member_relays_locally,
             scenario_appliance_demoted_keeps_cache, scenario_appliance_http_server_killed_resumes,
             scenario_appliance_server_file_changed_on_retry,
             scenario_appliance_relay_no_election, scenario_appliance_metrics,
             scenario_appliance_fetch_port_pinned, scenario_appliance_cache_relayout_refused,
             scenario_appliance_tiny_ring_loses_nothing,
             scenario_appliance_tftp_blocks_fall_back]

if __name__ == "__main__":
    sys.exit(main(SCENARIOS, "appliance"))
