#!/usr/bin/env python3
"""upstream_faults.py - site rollouts when the WAN loses packets or the
server fails, over TFTP and over HTTP (issue 17; results in bench/RESULTS.md
section 7).

Each case is a fresh site of N devices (tests/site/pfs_site.py: namespaces,
tftpd-hpa and lighttpd at HQ behind a tbf WAN) rolling out one signed file:

  clean          no fault: the reference of its transport
  loss           random loss (--loss-pct) on every packet reaching the
                 devices (tests/netem/loss.bpf.c), PFS traffic included
  server-kill    the server killed once a third of the file crossed the
                 WAN, back 0.5 s later (TFTP restarts the file, HTTP resumes)

and reports seconds until the last device held a verified copy, WAN bytes
and requests to the server, with each case's ratio to its transport's clean
run of the same invocation (absolute times drift on shared machines).

    bench/upstream_faults.py [--devices 4] [--file-mb 3] [--wan-mbit 20]
                             [--loss-pct 5] [--transports tftp,http]
                             [--cases clean,loss,server-kill] [--out DIR]
    bench/upstream_faults.py --smoke      # short: 1 MiB, no TFTP under loss (minutes)

Writes DIR/upstream_faults.json and DIR/upstream_faults.md. Needs root.
Every run is bounded (--timeout): a run that does not finish is reported as
such with what it had done, not waited for.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "site"))
import pfs_site as S  # noqa: E402

MODEL = "CP-7961G"
FILE = "dnld/fw.loads"
BOUNDS = ["--stall-timeout", "5", "--connect-timeout", "5"]


def requests(site):
    return sum(1 for _, ev in S.events(site, "upstream_start")) + \
        sum(1 for _, ev in S.events(site, "upstream_resume"))


def one_run(transport, case, a):
    size = int(a.file_mb * 2**20)
    with S.Site(a.devices, [MODEL], {FILE: size}, wan_mbit=a.wan_mbit) as site:
        upstream = None
        if transport == "http":
            site.start_http()
            upstream = S.HTTP_URL
        if case == "loss":
            site.add_loss(int(a.loss_pct * 10000))
        t0 = time.time()
        for d in site.devices:
            d.start([FILE], extra=BOUNDS, upstream=upstream)
        if case == "server-kill":
            deadline = time.time() + a.timeout
            while site.wan_bytes() < size / 3 and time.time() < deadline:
                time.sleep(0.01)
            (site.stop_http if transport == "http" else site.stop_tftpd)()
            time.sleep(0.5)             # the outage itself
            (site.start_http if transport == "http" else site.start_tftpd)()
        finished = site.wait(a.timeout, tick=0.2)
        done = S.done_times(site)
        ok = [d for d in site.devices if d.proc.returncode == 0]
        return {"transport": transport, "case": case, "devices": a.devices,
                "file_bytes": size, "wan_mbit": a.wan_mbit, "loss_pct": a.loss_pct,
                "finished": finished, "devices_ok": len(ok),
                "completion_s": max(done.values()) if done and len(ok) == a.devices else None,
                "wall_s": time.time() - t0, "wan_bytes": site.wan_bytes(),
                "requests": requests(site),
                "resumes": len(list(S.events(site, "upstream_resume"))),
                "dropped": site.loss_drops() if case == "loss" else 0}


def table(runs):
    clean = {r["transport"]: r["completion_s"] for r in runs if r["case"] == "clean"}
    lines = ["| transport | case | last device verified | / clean | WAN copies | requests "
             "| resumed | packets dropped |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        c = r["completion_s"]
        base = clean.get(r["transport"])
        lines.append("| %s | %s | %s | %s | %.2f | %d | %d | %d |" % (
            r["transport"], r["case"],
            "%.1f s" % c if c else "not done in %.0f s (%d/%d)" % (r["wall_s"], r["devices_ok"],
                                                                   r["devices"]),
            "%.2f" % (c / base) if c and base else "-", r["wan_bytes"] / r["file_bytes"],
            r["requests"], r["resumes"], r["dropped"]))
    r0 = runs[0]
    lines.append("")
    lines.append("%d devices, %.1f MiB signed file, WAN %d Mbit/s (tbf), loss %.1f %% on "
                 "every packet reaching a device; bounds --stall-timeout 5 "
                 "--connect-timeout 5. WAN copies = HQ's bytes sent / file size." % (
                     r0["devices"], r0["file_bytes"] / 2**20, r0["wan_mbit"], r0["loss_pct"]))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=4)
    ap.add_argument("--file-mb", type=float, default=3)
    ap.add_argument("--wan-mbit", type=int, default=20)
    ap.add_argument("--loss-pct", type=float, default=5)
    ap.add_argument("--transports", default="tftp,http")
    ap.add_argument("--cases", default="clean,loss,server-kill")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--out", default=".")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.file_mb, a.timeout = 1, 400
    if os.geteuid() != 0:
        sys.exit("upstream_faults.py needs root (namespaces, tc)")
    runs = []
    for t in a.transports.split(","):
        for c in a.cases.split(","):
            if a.smoke and t == "tftp" and c == "loss":
                continue
            r = one_run(t, c, a)
            runs.append(r)
            print("%-5s %-12s %s" % (t, c, json.dumps({k: r[k] for k in (
                "completion_s", "wan_bytes", "requests", "resumes", "dropped", "devices_ok")})),
                  flush=True)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "upstream_faults.json"), "w") as f:
        json.dump(runs, f, indent=1)
    md = table(runs)
    with open(os.path.join(a.out, "upstream_faults.md"), "w") as f:
        f.write(md + "\n")
    print(md)
    if a.smoke and not all(r["completion_s"] for r in runs):
        sys.exit("smoke: a rollout did not complete")


if __name__ == "__main__":
    main()
