#!/usr/bin/env python3
"""sim_bench.py - pfs-sim from 1,000 to 100,000 devices (issue 4 section 4;
results in bench/RESULTS.md).

    bench/sim_bench.py [--sim build/sim/pfs-sim] [--out bench/out] [--smoke]

Runs a fixed matrix of pfs-sim scenarios, one process at a time, and writes
DIR/sim.json (every run's JSON) and DIR/sim.md (the table). --smoke runs two
small ones and 1,000 devices with an appliance (the test command's guard).
Every run must complete every live device with verified chunks; with an
appliance, within 1.1 x the bound + 0.25 s of simulated time, with one
fetch. Each is bounded by a wall-clock timeout.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# (label, arguments): 8 MiB per model, 20 Mbit/s WAN, 100 Mbit/s LAN unless said.
MATRIX = [
    ("1k", ["--devices", "1000"]),
    ("10k", ["--devices", "10000"]),
    ("10k, seed's election (claim at boot)", ["--devices", "10000", "--listen-ms", "0"]),
    ("10k, store-and-forward", ["--devices", "10000", "--mode", "store"]),
    ("10k, 2% loss, 5% churn", ["--devices", "10000", "--loss", "0.02", "--churn", "0.05"]),
    ("10k, 4 models", ["--devices", "10000", "--models", "4"]),
    ("1k, appliance", ["--devices", "1000", "--appliance"]),
    ("10k, appliance (devices hold its beacon)", ["--devices", "10000", "--appliance"]),
    ("10k, appliance (devices just booted)", ["--devices", "10000", "--appliance-quiet"]),
    ("100k", ["--devices", "100000"]),
    ("100k, 2% loss, 5% churn", ["--devices", "100000", "--loss", "0.02", "--churn", "0.05"]),
    ("100k, 4 models", ["--devices", "100000", "--models", "4"]),
    ("100k, appliance (devices hold its beacon)", ["--devices", "100000", "--appliance"]),
    ("100k, appliance (devices just booted)", ["--devices", "100000", "--appliance-quiet"]),
]
SMOKE = {"1k", "10k, 2% loss, 5% churn", "1k, appliance"}


def fmt(v, spec):
    return "-" if v is None else spec % v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sim", default=os.path.join(HERE, "..", "build", "sim", "pfs-sim"))
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per run")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for label, argv in MATRIX:
        if args.smoke and label not in SMOKE:
            continue
        r = subprocess.run([args.sim, "--json", "--seed", "1"] + argv, capture_output=True,
                           text=True, timeout=args.timeout)
        if r.returncode != 0:
            raise SystemExit("pfs-sim %s: exit %d: %s" % (" ".join(argv), r.returncode, r.stderr))
        res = json.loads(r.stdout)
        res["label"], res["args"] = label, argv
        rows.append(res)
        if res["completed"] != res["alive"] or res["chunks_mismatched"] or res["chunks_unheld"]:
            raise SystemExit("pfs-sim %s: %d of %d completed, %d mismatched, %d unheld" % (
                " ".join(argv), res["completed"], res["alive"], res["chunks_mismatched"],
                res["chunks_unheld"]))
        # Simulated time is exact: the appliance's target (issue 14
        # section 2) holds or the run is wrong.
        target = 1.1 * res["bound_s"] + 0.25
        if res["appliance"] and (res["completion_s"] > target or res["upstream_fetches"] != 1 or
                                 ("--appliance" in argv and not res["relay_joins"])):
            raise SystemExit("pfs-sim %s: %.2f s (target %.2f), %d fetches, %d relay joins" % (
                " ".join(argv), res["completion_s"], target, res["upstream_fetches"],
                res["relay_joins"]))
        print("%-40s completion %6.2f s (bound %5.2f, x%.2f)  depth %2d  conv %5s s  msgs/dev %6.1f"
              "  claims %5d  mem/dev %5.0f B  wall %6.1f s" % (
                  label, res["completion_s"], res["bound_s"], res["completion_over_bound"],
                  res["depth"], fmt(res["convergence_s"], "%.2f"), res["messages_per_device"],
                  res["claims"], res["memory_per_device_bytes"], res["wall_s"]), flush=True)
    lines = ["| scenario | completed | depth | convergence | last device | bound | / bound "
             "| msgs/device | deliveries/device | claims | WAN copies | memory/device | wall |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append("| %s | %d/%d | %d | %s s | %.2f s | %.2f s | %.2f | %.1f | %.1f | %d | %.2f "
                     "| %.1f KB | %.1f s |" % (
                         r["label"], r["completed"], r["alive"], r["depth"],
                         fmt(r["convergence_s"], "%.2f"), r["completion_s"], r["bound_s"],
                         r["completion_over_bound"], r["messages_per_device"],
                         r["deliveries_per_device"], r["claims"], r["wan_copies"],
                         r["memory_per_device_bytes"] / 1e3, r["wall_s"]))
    md = "\n".join(lines)
    with open(os.path.join(args.out, "sim.json"), "w") as f:
        json.dump(rows, f, indent=1)
    with open(os.path.join(args.out, "sim.md"), "w") as f:
        f.write(md + "\n")
    print("\n" + md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
