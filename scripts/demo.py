#!/usr/bin/env python3
"""demo.py - the main job: a firmware rollout on a simulated site with the
pfs-relay appliance, then with devices only (pfs-peer), then the traditional
way, and a summary of the three.

16 devices of two models on one subnet running pfs-peer, 8 more that only
speak TFTP (tftp-hpa, as phones of other makes, cameras: --legacy N), a
real tftpd-hpa at HQ behind a 20 Mbit/s WAN link, three firmware files.
With the appliance, the TFTP-only devices have it as their load server
(its cache, one WAN copy of each file for everyone); without it they fetch
from HQ, as they do today. Shows live progress (with the appliance's own
view, `pfsctl trees`, while it runs), then a table: per (model, file) the
time until the last device held a verified copy, and the WAN bytes, for
each way.

--rtt MS gives the WAN a round trip (tests/netem/wan_delay.c); --http makes
the firmware server HTTP (lighttpd at HQ) for the appliance and the devices
alike, instead of TFTP, whose lock-step pays that round trip per block.
"""
import argparse
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "site"))
import pfs_site as S  # noqa: E402
from appliance import APP_IP, Appliance  # noqa: E402

FILES = {
    "dnld/SCCP41.9-4-2SR2-2S.loads": 6 * 1024 * 1024,
    "dnld/apps41.9-4-2ES26.sbn": 3 * 1024 * 1024,
    "dnld/cnu41.9-4-2ES26.sbn": 2 * 1024 * 1024 + 777,
}
MODELS = ["CP-7961G", "CP-7941G"]
LEGACY = "TFTP-only"                    # the model column of devices without pfs-peer
SERVE = 'serve = { tftp = true; };'


class LegacyGroup:
    """Devices that only speak TFTP: each fetches the files one after the
    other with tftp-hpa from its load server (the appliance, or HQ), as a
    phone's firmware loader does. Each copy is checked against the server's."""

    def __init__(self, site, devices, server):
        self.site, self.devices, self.server = site, devices, server
        self.done = {}          # (LEGACY, file) -> seconds until the last device had it
        self.finished = {}      # device index -> files it holds, checked
        self.errors = []
        self.threads = []

    def _fetch(self, d, t0):
        have = self.finished.setdefault(d.idx, [])
        for w in sorted(FILES):
            out = os.path.join(d.out, w)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            r = subprocess.run(["ip", "netns", "exec", d.ns, "tftp", "-m", "binary",
                                self.server, "-c", "get", w, out], capture_output=True,
                               text=True, timeout=600)
            said = (r.stdout + r.stderr).strip()
            if r.returncode != 0 or S.sha256(out) != self.site.files[w][1]:
                self.errors.append("%s: %s: %s" % (d.ip, w, said[-200:] or "a wrong copy"))
                return
            key = (LEGACY, w)
            self.done[key] = max(self.done.get(key, 0.0), time.time() - t0)
            have.append(w)

    def start(self, t0):
        for d in self.devices:
            t = threading.Thread(target=self._fetch, args=(d, t0), daemon=True)
            t.start()
            self.threads.append(t)

    def running(self):
        return any(t.is_alive() for t in self.threads)

    def wait(self, timeout):
        deadline = time.time() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.time()))
        return not self.running()


def bar(frac, width=10):
    full = int(frac * width + 1e-9)
    return "#" * full + "." * (width - full)


def progress(site, t0, tty, app=None, legacy=None):
    """One screen (tty) or one line (log) of where the rollout stands."""
    rows, files_done, total = [], 0, 0
    for d in site.devices:
        cells = []
        held = legacy.finished.get(d.idx) if legacy and d in legacy.devices else None
        for w in sorted(FILES):
            total += 1
            final = os.path.join(d.out, w)
            part = os.path.join(os.path.dirname(final), "." + os.path.basename(final) + ".part")
            if held is not None and w not in held:  # tftp writes the final name as it goes
                frac = min(0.99, os.path.getsize(final) / max(1, FILES[w])) \
                    if os.path.exists(final) else 0.0
            elif os.path.exists(final):
                frac = 1.0
                files_done += 1
            elif os.path.exists(part):
                frac = min(0.99, os.path.getsize(part) / max(1, FILES[w]))
            else:
                frac = 0.0
            cells.append("%s %3d%%" % (bar(frac), int(frac * 100)))
        role = "root" if any(e.get("event") == "root_confirmed" for e in d.events) else ""
        rows.append("  %-11s %-9s %-5s %s" % (d.ip, LEGACY if held is not None else d.model,
                                             role, "  ".join(cells)))
    wan = site.wan_bytes() / 1e6
    head = "t=%5.1fs  files complete %d/%d  WAN %.1f MB" % (time.time() - t0, files_done,
                                                          total, wan)
    view = ""
    if app:
        view = "\n  pfsctl trees (the appliance's view):\n" + "".join(
            "  " + line + "\n" for line in app.ctl("trees").stdout.splitlines())
    if tty:
        names = "  ".join("%-15s" % os.path.basename(w)[:15] for w in sorted(FILES))
        sys.stdout.write("\x1b[H\x1b[J" + head + "\n  %-11s %-9s %-5s %s\n" % (
            "device", "model", "role", names) + "\n".join(rows) + "\n" + view)
    else:
        print(head + view.rstrip("\n"))
    sys.stdout.flush()


def rollout(mode, n, wan_mbit, tty, with_appliance=False, rtt_ms=0, http=False, legacy=8):
    with S.Site(n + legacy, MODELS, FILES, wan_mbit=wan_mbit, site_key=True,
                rtt_ms=rtt_ms) as site:
        app = None
        if http:
            site.start_http()
        if with_appliance:
            app = Appliance(site, upstream=S.HTTP_URL if http else None,
                            extra_config=SERVE if legacy else "")
            app.start()
        peers = site.devices[:n]
        group = LegacyGroup(site, site.devices[n:], APP_IP if app else S.HQ_IP)
        print("\n== %s rollout: %d devices, %s, and %d TFTP-only devices (from %s), WAN %d "
              "Mbit/s, RTT %d ms, %s server" % (
                  "appliance + cut-through" if app else mode, n, ", ".join(MODELS), legacy,
                  "the appliance" if app else "HQ", wan_mbit, rtt_ms, "HTTP" if http else "TFTP"))
        t0 = time.time()
        for d in peers:
            d.start(sorted(FILES), mode=mode, upstream=S.HTTP_URL if http else None)
        group.start(t0)
        last = [0.0]

        def tick(s):
            if time.time() - last[0] >= (0.5 if tty else 2.0):
                last[0] = time.time()
                progress(s, t0, tty, app, group)

        finished = site.wait(600, on_tick=tick, tick=0.25)
        while finished and group.running() and time.time() - t0 < 600:
            tick(site)
            group.wait(0.25)
        finished = finished and group.wait(max(0.0, 600 - (time.time() - t0)))
        progress(site, t0, tty, app, group)
        wall = time.time() - t0
        failed = [d for d in peers if d.proc.returncode != 0]
        problems = S.check_outputs(site, peers) + group.errors
        if not finished or failed or problems:
            for d in failed:
                print("d%d exited %s: %s" % (d.idx, d.proc.returncode, d.stderr_text().strip()))
            print("\n".join(problems))
            raise SystemExit("%s rollout failed" % mode)
        if app:
            print("\n  pfsctl files:\n" + "".join("  " + line + "\n" for line in
                                                  app.ctl("files").stdout.splitlines()))
        done = S.done_times(site)
        done.update(group.done)
        return {"wall": wall, "done": done, "wan": site.wan_bytes(), "lan": site.lan_bytes()}


def summary(runs, n, wan_mbit, rtt_ms=0, http=False, legacy=8):
    """runs: [(name, result)], the traditional way last (ratios are against it)."""
    names = [name for name, _ in runs]
    base = runs[-1][1]
    lines = ["| model | file | size | " + " | ".join("%s: last device" % x for x in names) + " |",
             "|---|---|---:|" + "---:|" * len(runs)]
    for m in MODELS + ([LEGACY] if legacy else []):
        for f in sorted(FILES):
            lines.append("| %s | %s | %.1f MiB | " % (m, os.path.basename(f), FILES[f] / 2**20) +
                         " | ".join("%.1f s" % r["done"].get((m, f), float("nan"))
                                    for _, r in runs) + " |")
    payload = sum(FILES.values()) * len(MODELS)
    last = lambda r: max(r["done"].values())  # noqa: E731
    lines += ["", "| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(runs),
              "| rollout, last device | " + " | ".join(
                  "%.1f s (%.1fx faster)" % (last(r), last(base) / last(r)) if r is not base
                  else "%.1f s" % last(r) for _, r in runs) + " |",
              "| WAN bytes (all traffic from HQ) | " + " | ".join(
                  "%.1f MB" % (r["wan"] / 1e6) for _, r in runs) + " |",
              "| WAN bytes / (models x files) | " + " | ".join(
                  "%.2f" % (r["wan"] / payload) for _, r in runs) + " |",
              "| WAN bytes / files (one copy each) | " + " | ".join(
                  "%.2f" % (r["wan"] / sum(FILES.values())) for _, r in runs) + " |",
              "| LAN bytes (site bridge, device ports) | " + " | ".join(
                  "%.1f MB" % (r["lan"] / 1e6) for _, r in runs) + " |",
              "", "%d devices, %d models, %d files (%.1f MB per device; MB = 10^6 bytes), "
              "and %d TFTP-only devices (tftp-hpa, the three files one after the other; the "
              "appliance is their load server, else HQ), WAN %d Mbit/s (tbf), round trip %d "
              "ms, %s server. One copy of each file over the WAN takes %.1f s; one per model "
              "%.1f s. The appliance fetches each file once for every model and the TFTP-only "
              "devices (the same path on the server is the same bytes); devices alone elect "
              "a root per (model, file)." % (
                  n, len(MODELS), len(FILES), sum(FILES.values()) / 1e6, legacy, wan_mbit,
                  rtt_ms, "HTTP" if http else "TFTP",
                  sum(FILES.values()) * 8 / (wan_mbit * 1e6), payload * 8 / (wan_mbit * 1e6))]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=16)
    ap.add_argument("--wan-mbit", type=int, default=20)
    ap.add_argument("--no-tftp-only", action="store_true", help="skip the traditional run")
    ap.add_argument("--no-peers-only", action="store_true", help="skip the run without appliance")
    ap.add_argument("--summary-file", help="also write the summary table here")
    ap.add_argument("--rtt", type=int, default=0, metavar="MS",
                    help="the WAN's round trip, ms (default 0)")
    ap.add_argument("--http", action="store_true",
                    help="the firmware server speaks HTTP (lighttpd), not TFTP")
    ap.add_argument("--legacy", type=int, default=8, metavar="N",
                    help="devices that only speak TFTP, beside the pfs-peer ones (default 8)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("demo: needs root (network namespaces)")
    if not 0 <= args.rtt <= 1000:
        raise SystemExit("demo: --rtt: %d is not 0..1000 ms" % args.rtt)
    if not 0 <= args.legacy <= 64 or not 1 <= args.devices <= 128:
        raise SystemExit("demo: --devices 1..128 and --legacy 0..64 (got %d, %d)" % (
            args.devices, args.legacy))
    tty = sys.stdout.isatty()
    way = dict(rtt_ms=args.rtt, http=args.http, legacy=args.legacy)
    runs = [("appliance", rollout("cut-through", args.devices, args.wan_mbit, tty, True, **way))]
    if not args.no_peers_only:
        runs.append(("peers only", rollout("cut-through", args.devices, args.wan_mbit, tty,
                                           **way)))
    if not args.no_tftp_only:
        runs.append(("tftp-only", rollout("tftp-only", args.devices, args.wan_mbit, tty, **way)))
    table = summary(runs, args.devices, args.wan_mbit, **way)
    print("\n== summary\n" + table)
    if args.summary_file:
        with open(args.summary_file, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
