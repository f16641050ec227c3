#!/usr/bin/env python3
"""site_rollout.py - site rollouts, nine ways, against the number of devices
(issue 4 section 3, issue 12 section 6; results in bench/RESULTS.md).

For each N and each way, a fresh site of N devices (network namespaces, a
real tftpd-hpa at HQ behind a tbf-limited WAN, tests/site/pfs_site.py) rolls
out one firmware file:

  tftp-only      traditional: every device fetches from HQ
  seed           seed-style PFS: devices only, binary tree, store-and-forward
  peers          our peers, cut-through
  appliance      our peers with the pfs-relay appliance (pfs-control +
                 pfs-dataplane on AF_XDP, tests/site/appliance.py), a site
                 relay (docs/protocol.md 4.4), fetching with TFTP
  appliance-http the same, the appliance fetching over HTTP (lighttpd at HQ)
  nginx          no PFS: nginx as an HTTP caching proxy on the site
                 (proxy_cache_lock, bench/http_proxy.py), devices GET with
                 curl; what an administrator would otherwise install
  legacy-hq      devices that only speak TFTP (tftp-hpa, 512-byte lock-step
                 blocks), each fetching from HQ: what they do today
  legacy         the same devices with the appliance as their load server
                 (TFTP on UDP 69, a cold cache, one fetch from HQ by TFTP)
  legacy-http    HTTP-only devices (curl) with the appliance as their load
                 server, fetching over HTTP from HQ: nginx's setting exactly

It reports, per run: seconds until the last device held a verified copy
(from the devices' own file_done events; for TFTP- and HTTP-only devices,
until the last client exited with a copy checked against the server's,
bench/legacy_clients.py), WAN bytes (HQ's side of the WAN
link), LAN bytes (the site bridge's device ports), and the appliance's CPU
seconds (pfs-control, and pfs-dataplane, which busy-polls its core: its CPU
time is its run time), and the devices' CPU seconds (pfs-peer's own, from
their stats events, summed). The bound, file size over WAN rate, is what one copy
over the WAN costs; no way can beat it.

The devices keep their files on a tmpfs of the site's (--device-storage
tmpfs, the default), as each device in the field writes its own flash: on
the one disk of this host, the devices' fsyncs at the end of a rollout
wait for each other, one journal commit and cache flush each (0.3 s of the
last device's time at N = 64, RESULTS.md 3.9). curl and tftp-hpa do not
fsync at all. --device-storage disk measures that disk.

    bench/site_rollout.py [--devices 4,8,16,32,64] [--file-mb 8] [--wan-mbit 20]
                          [--modes tftp-only,...,nginx] [--rtt 0,20,50] [--out DIR]
                          [--dp-idle-sleep-us US] [--appliance-children K]
                          [--control-rt-priority P] [--tftp-blksize B]
                          [--no-udp-offload] [--device-storage tmpfs|disk]
    bench/site_rollout.py --smoke      # the test command's short run

Writes DIR/site_rollout.json, DIR/site_rollout.md and, with gnuplot,
DIR/site_rollout.png (completion time against N, one line per way, and the
bound). Needs root. Every run is bounded (--timeout per run).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "site"))
import pfs_site as S  # noqa: E402
from appliance import APP_IP, Appliance  # noqa: E402
from http_proxy import CachingProxy  # noqa: E402
import legacy_clients as L  # noqa: E402

MODEL = "CP-7961G"
FILE = "dnld/SCCP41.9-4-2SR2-2S.loads"
MODES = ["tftp-only", "seed", "peers", "appliance", "appliance-http", "nginx", "legacy-hq",
         "legacy", "legacy-http"]
PEER_MODE = {"tftp-only": "tftp-only", "seed": "store-forward", "peers": "cut-through",
             "appliance": "cut-through", "appliance-http": "cut-through"}
LABEL = {"tftp-only": "traditional TFTP", "seed": "seed-style PFS (store-and-forward)",
         "peers": "our peers (cut-through)", "appliance": "our peers + appliance (TFTP)",
         "appliance-http": "our peers + appliance (HTTP)",
         "nginx": "nginx caching proxy (HTTP, curl)",
         "legacy-hq": "TFTP-only devices, from HQ",
         "legacy": "TFTP-only devices + appliance load server",
         "legacy-http": "HTTP-only devices (curl) + appliance load server"}
APPLIANCE = ("appliance", "appliance-http", "legacy", "legacy-http")
HTTP_UPSTREAM = ("appliance-http", "nginx", "legacy-http")
LEGACY = ("legacy-hq", "legacy", "legacy-http", "nginx")     # no pfs-peer on the devices
SERVE = 'serve = { tftp = true; http = "0.0.0.0:6970"; max_clients = 256; };' 


def cpu_seconds(pid):
    """utime + stime of a live process, from /proc (0 if it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def fs_type(path):
    """The type of the filesystem path is on (stat -f: tmpfs, ext2/ext3, ...)."""
    r = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def site_mounts():
    """How many of the site harness's tmpfs mounts are mounted now."""
    with open("/proc/self/mounts") as f:
        return sum(1 for line in f if line.split()[0] == "pfs-site")


def dataplane_pid(app):
    """The pfs-dataplane process (its wrapper shell execs it)."""
    return app.dataplane.pid if app.dataplane else 0


def one_run(mode, n, file_bytes, wan_mbit, timeout, idle_sleep_us=0, rtt_ms=0, app_children=16,
            control_rt=0, tftp_blksize=0, udp_offload=True, storage="tmpfs"):
    """One rollout; returns its figures or raises with what went wrong."""
    with S.Site(n, [MODEL], {FILE: file_bytes}, wan_mbit=wan_mbit, rtt_ms=rtt_ms,
                device_storage=storage) as site:
        app = proxy = device_cpu = sock = None
        if mode in HTTP_UPSTREAM:
            site.start_http()
        if mode in APPLIANCE:
            app = Appliance(site, upstream=S.HTTP_URL if mode in HTTP_UPSTREAM else None,
                            idle_sleep_us=idle_sleep_us, max_children=app_children,
                            upstream_extra="tftp_blksize = %d" % tftp_blksize
                            if tftp_blksize else "",
                            extra_config=SERVE if mode in LEGACY else "")
            app.start()
            if control_rt:
                # As CPUSchedulingPolicy=rr in pfs-control's unit would:
                # its ACKs and answers go out as soon as they are due.
                subprocess.run(["chrt", "-r", "-p", str(control_rt), str(app.control.pid)],
                               check=True)
        if mode == "nginx":
            proxy = CachingProxy(site)
            proxy.start()
        wan0, lan0 = site.wan_bytes(), site.lan_bytes()
        cpu0 = (cpu_seconds(app.control.pid), cpu_seconds(dataplane_pid(app))) if app else (0, 0)
        t0 = time.time()
        if proxy:
            done = {FILE: max(proxy.fetch_all(FILE, timeout).values())}
        elif mode in ("legacy-hq", "legacy"):
            host = S.HQ_IP if mode == "legacy-hq" else APP_IP
            done = {FILE: max(L.fetch_all(site, FILE, lambda out: L.tftp_cmd(host, FILE, out),
                                          timeout, mode).values())}
        elif mode == "legacy-http":
            url = "http://%s:6970/%s" % (APP_IP, FILE)
            done = {FILE: max(L.fetch_all(site, FILE, lambda out: L.curl_cmd(url, out, timeout),
                                          timeout, mode).values())}
        else:
            for d in site.devices:
                d.start([FILE], mode=PEER_MODE[mode],
                        extra=(["--tftp-blksize", str(tftp_blksize)] if tftp_blksize else []) +
                        ([] if udp_offload else ["--no-udp-offload"]))
            finished = site.wait(timeout, tick=0.2)
            failed = [d for d in site.devices if d.proc.returncode not in (0, None)]
            problems = S.check_outputs(site)
            if not finished or failed or problems:
                raise RuntimeError("%s N=%d: %s%s" % (
                    mode, n, "" if finished else "not done in %d s; " % timeout,
                    "; ".join(problems + ["d%d exited %s: %s" % (
                        d.idx, d.proc.returncode, d.stderr_text().strip()[-200:])
                        for d in failed])))
            done = S.done_times(site)
            stats = [ev for _, ev in S.events(site, "stats")]
            device_cpu = sum(ev.get("cpu_s", 0.0) for ev in stats)
            # what the devices' sockets moved, and in how many messages
            sock = {k: sum(ev.get(k, 0) for ev in stats) for k in (
                "tx_datagrams", "tx_calls", "tx_segmented", "rx_datagrams", "rx_calls",
                "rx_coalesced",
                "loop_turns",
                "chunks_rx", "chunks_tx", "chunks_read_back", "store_pwrites")}
        wall = time.time() - t0
        storage_fs = fs_type(site.devices[0].out)     # what the devices wrote on
        ctl_st = (app.ctl_json("stats") or {}).get("control", {}) if app else {}
        cpu = ((cpu_seconds(app.control.pid) - cpu0[0],
                cpu_seconds(dataplane_pid(app)) - cpu0[1]) if app else (0.0, 0.0))
        return {"mode": mode, "devices": n, "file_bytes": file_bytes, "wan_mbit": wan_mbit,
                "rtt_ms": rtt_ms,
                "completion_s": max(done.values()), "wall_s": wall,
                "wan_bytes": site.wan_bytes() - wan0, "lan_bytes": site.lan_bytes() - lan0,
                "wan_copies": (site.wan_bytes() - wan0) / file_bytes,
                "appliance_control_cpu_s": cpu[0], "appliance_dataplane_cpu_s": cpu[1],
                "device_cpu_s": device_cpu,     # pfs-peer's own, all devices
                "device_sockets": sock,
                "dataplane_idle_sleep_us": idle_sleep_us if app else None,
                "appliance_children": app_children if app else None,
                "control_rt_priority": control_rt if app else None,
                "tftp_blksize": tftp_blksize or None,   # None: as shipped (1468)
                "udp_offload": udp_offload,     # False: pfs-peer --no-udp-offload
                "device_storage": storage, "device_storage_fs": storage_fs,
                # SEND_CHUNKS messages to the dataplane, and the chunks in them
                "chunk_ranges": ctl_st.get("chunk_ranges"),
                "chunks_queued": ctl_st.get("chunks_queued"),
                "bound_s": file_bytes * 8 / (wan_mbit * 1e6)}


def table(runs, modes, counts, rtts):
    by = {(r["mode"], r["devices"], r["rtt_ms"]): r for r in runs}
    bound = runs[0]["bound_s"]
    lines = ["| way | N | RTT | last device verified | / bound | / nginx | WAN bytes "
             "| WAN copies | LAN bytes | appliance CPU (control + dataplane) | devices' CPU |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m, n, rtt in ((m, n, rtt) for rtt in rtts for m in modes for n in counts):
        r = by.get((m, n, rtt))
        if not r:
            continue
        cpu = ("%.2f s + %.1f s" % (r["appliance_control_cpu_s"], r["appliance_dataplane_cpu_s"])
               if m in APPLIANCE else "-")
        px = by.get(("nginx", n, rtt))
        dev = "%.1f s" % r["device_cpu_s"] if r.get("device_cpu_s") is not None else "-"
        lines.append("| %s | %d | %d ms | %.1f s | %.2f | %s | %.1f MB | %.2f | %.1f MB | %s | %s |" % (
            LABEL[m], n, rtt, r["completion_s"], r["completion_s"] / bound,
            "%.2f" % (r["completion_s"] / px["completion_s"]) if px and m != "nginx" else "-",
            r["wan_bytes"] / 1e6, r["wan_copies"], r["lan_bytes"] / 1e6, cpu, dev))
    lines.append("")
    lines.append("File %.1f MiB, WAN %d Mbit/s (tbf): bound = file / WAN rate = %.2f s. "
                 "MB = 10^6 bytes. Target with the appliance (issue 14): 1.1 x bound + 0.25 s = "
                 "%.2f s. The dataplane busy-polls one core unless told to sleep when idle "
                 "(--dp-idle-sleep-us), so its CPU time is then its run time. Devices' CPU: "
                 "the pfs-peer processes' user + system time, summed. The devices' files on "
                 "%s." % (
                     runs[0]["file_bytes"] / 2**20, runs[0]["wan_mbit"], bound,
                     1.1 * bound + 0.25,
                     "a tmpfs (each device's fsync free, as on storage of its own)"
                     if runs[0]["device_storage"] == "tmpfs" else
                     "the host's disk, shared (their fsyncs wait for each other)"))
    return "\n".join(lines)


def plot(runs, modes, counts, rtts, out_dir):
    """completion time against N, one line per way, and the bound; None
    without gnuplot."""
    if not shutil.which("gnuplot"):
        return None
    dat = os.path.join(out_dir, "site_rollout.dat")
    png = os.path.join(out_dir, "site_rollout.png")
    by = {(r["mode"], r["devices"], r["rtt_ms"]): r for r in runs}
    lines = [(m, rtt) for rtt in rtts for m in modes]
    with open(dat, "w") as f:
        for m, rtt in lines:
            f.write("# %s, RTT %d ms\n" % (m, rtt))
            for n in counts:
                if (m, n, rtt) in by:
                    f.write("%d %.3f\n" % (n, by[(m, n, rtt)]["completion_s"]))
            f.write("\n\n")
    bound = runs[0]["bound_s"]
    plots = ["'%s' index %d with linespoints lw 2 title '%s'" % (
        dat, i, LABEL[m] + (", RTT %d ms" % rtt if len(rtts) > 1 or rtt else ""))
        for i, (m, rtt) in enumerate(lines)]
    plots.append("%f with lines dt 2 lw 2 lc rgb 'black' title 'bound: file / WAN rate'" % bound)
    script = "\n".join([
        "set terminal pngcairo size 900,560 noenhanced" if _has_cairo() else
        "set terminal png size 900,560 noenhanced",
        "set output '%s'" % png,
        "set title 'Site rollout: %.0f MiB file over a %d Mbit/s WAN'" % (
            runs[0]["file_bytes"] / 2**20, runs[0]["wan_mbit"]),
        "set xlabel 'devices (N)'", "set ylabel 'seconds until the last device is verified'",
        "set logscale x 2", "set logscale y", "set grid", "set key top left",
        "set xrange [%f:%f]" % (min(counts) / 1.2, max(counts) * 1.2),
        "set xtics (%s)" % ", ".join(str(n) for n in counts),
        "plot " + ", ".join(plots), ""])
    subprocess.run(["gnuplot"], input=script, text=True, check=True, timeout=60)
    return png


def _has_cairo():
    r = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True,
                       timeout=30)
    return "pngcairo" in (r.stdout + r.stderr)


def sane(r):
    """What the smoke run asserts: figures that cannot be right if broken."""
    problems = []
    if not 0 < r["completion_s"] < 600:
        problems.append("completion %.1f s" % r["completion_s"])
    if r["completion_s"] < r["bound_s"] * 0.9:
        problems.append("faster than the WAN allows (%.2f s < %.2f s)" % (
            r["completion_s"], r["bound_s"]))
    copies = r["wan_copies"]
    want = r["devices"] if r["mode"] in ("tftp-only", "legacy-hq") else 1
    if not want * 0.95 <= copies <= want * 1.25 + 0.25:
        problems.append("%.2f WAN copies, expected about %d" % (copies, want))
    lan_copies = r["devices"] - (0 if r["mode"] in LEGACY else 1)  # peers: the root's came in
    if r["mode"] != "tftp-only" and r["lan_bytes"] < r["file_bytes"] * lan_copies * 0.95:
        problems.append("LAN bytes %.0f below what %d copies need" % (r["lan_bytes"],
                                                                        lan_copies))
    if (r["device_storage_fs"] == "tmpfs") != (r["device_storage"] == "tmpfs"):
        problems.append("devices wrote on %s, asked for %s" % (r["device_storage_fs"],
                                                                r["device_storage"]))
    if r["site_mounts_left"]:
        problems.append("%d device storage mounts left after the site closed" %
                        r["site_mounts_left"])
    if r["mode"] in APPLIANCE and r["appliance_dataplane_cpu_s"] <= 0:
        problems.append("no appliance CPU time measured")
    # The root fetches while it sends: chunk sends at the fetch's frontier
    # are held a moment so ranges grow (control/runs.c), not one per chunk.
    # Not over a WAN with a round trip: lock-step TFTP then brings one block
    # a round trip, longer than a run is held.
    if r["mode"] in ("appliance", "appliance-http") and r["chunks_queued"] and \
            not r["rtt_ms"] and r["chunk_ranges"] * 2 > r["chunks_queued"]:
        problems.append("%d SEND_CHUNKS ranges for %d chunks: not batched" % (
            r["chunk_ranges"], r["chunks_queued"]))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", default="4,8,16,32,64")
    ap.add_argument("--file-mb", type=float, default=8)
    ap.add_argument("--wan-mbit", type=int, default=20)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--rtt", default="0",
                    help="WAN round trips to run, ms, comma-separated (default 0: no delay)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per run")
    ap.add_argument("--dp-idle-sleep-us", type=int, default=0,
                    help="the appliance's dataplane sleeps this long when idle (default 0: "
                         "busy-poll, as on a dedicated core)")
    ap.add_argument("--appliance-children", type=int, default=16,
                    help="the appliance's appliance.max_children (default 16, as shipped)")
    ap.add_argument("--control-rt-priority", type=int, default=0,
                    help="run the appliance's pfs-control SCHED_RR at this priority "
                         "(1..99; default 0: as shipped, the normal scheduler)")
    ap.add_argument("--tftp-blksize", type=int, default=0,
                    help="TFTP block size our fetches ask for (pfs-peer --tftp-blksize, "
                         "upstream.tftp_blksize; default: as shipped, 1468)")
    ap.add_argument("--no-udp-offload", action="store_true",
                    help="devices send and receive each datagram alone (pfs-peer "
                         "--no-udp-offload; default: as shipped, runs as one message, UDP "
                         "GSO and GRO)")
    ap.add_argument("--device-storage", choices=("tmpfs", "disk"), default="tmpfs",
                    help="where the devices keep their files: tmpfs (default: each "
                         "device's fsync free, as each has storage of its own in the "
                         "field) or disk (the work directory's, shared by every device: "
                         "their fsyncs wait for each other, RESULTS.md 3.9)")
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--smoke", action="store_true",
                    help="N=3, 2 MiB, 50 Mbit/s, every way; asserts the figures are sane")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("site_rollout: needs root (network namespaces)")
    if args.smoke:
        args.devices, args.file_mb, args.wan_mbit, args.timeout = "3", 2, 50, 120
    try:
        counts = sorted({int(x) for x in args.devices.split(",")})
    except ValueError:
        raise SystemExit("site_rollout: --devices: '%s' is not a list of numbers" % args.devices)
    try:
        rtts = sorted({int(x) for x in args.rtt.split(",")})
    except ValueError:
        raise SystemExit("site_rollout: --rtt: '%s' is not a list of milliseconds" % args.rtt)
    if min(rtts) < 0 or max(rtts) > 1000:
        raise SystemExit("site_rollout: --rtt: 0..1000 ms (got %s)" % args.rtt)
    if not 1 <= args.appliance_children <= 255:
        raise SystemExit("site_rollout: --appliance-children: 1..255 (got %d)"
                         % args.appliance_children)
    if args.tftp_blksize and not 8 <= args.tftp_blksize <= 65464:
        raise SystemExit("site_rollout: --tftp-blksize: 8..65464 (got %d)" % args.tftp_blksize)
    if not 0 <= args.control_rt_priority <= 99:
        raise SystemExit("site_rollout: --control-rt-priority: 0..99 (got %d)"
                         % args.control_rt_priority)
    modes = args.modes.split(",")
    bad = [m for m in modes if m not in MODES]
    if bad or not counts or min(counts) < 2 or max(counts) > 200:
        raise SystemExit("site_rollout: --modes takes %s; --devices 2..200 (got %s, %s)" % (
            ",".join(MODES), args.modes, args.devices))
    os.makedirs(args.out, exist_ok=True)
    file_bytes = int(args.file_mb * 2**20)
    runs, problems = [], []
    for rtt, n, m in ((rtt, n, m) for rtt in rtts for n in counts for m in modes):
        r = one_run(m, n, file_bytes, args.wan_mbit, args.timeout, args.dp_idle_sleep_us,
                    rtt, args.appliance_children, args.control_rt_priority, args.tftp_blksize,
                    udp_offload=not args.no_udp_offload, storage=args.device_storage)
        r["site_mounts_left"] = site_mounts()   # the site's tmpfs went with it
        runs.append(r)
        print("%-14s N=%-3d RTT %3d ms last verified %6.1f s (bound %.1f)  WAN %7.1f MB (%.2f copies)"
              "  LAN %7.1f MB%s" % (
                  m, n, rtt, r["completion_s"], r["bound_s"], r["wan_bytes"] / 1e6,
                  r["wan_copies"],
                  r["lan_bytes"] / 1e6,
                  "  appliance CPU %.2f + %.1f s" % (r["appliance_control_cpu_s"],
                                                     r["appliance_dataplane_cpu_s"])
                  if m in APPLIANCE else ""), flush=True)
        problems += ["%s N=%d: %s" % (m, n, p) for p in sane(r)]
    md = table(runs, modes, counts, rtts)
    with open(os.path.join(args.out, "site_rollout.json"), "w") as f:
        json.dump(runs, f, indent=1)
    with open(os.path.join(args.out, "site_rollout.md"), "w") as f:
        f.write(md + "\n")
    print("\n" + md)
    png = plot(runs, modes, counts, rtts, args.out)
    print("plot: %s" % (png or "skipped (no gnuplot)"))
    if args.smoke and png and os.path.getsize(png) < 1000:
        problems.append("the plot is empty")
    if problems:
        raise SystemExit("site_rollout: " + "; ".join(problems))


if __name__ == "__main__":
    main()
