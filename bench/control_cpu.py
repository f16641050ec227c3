#!/usr/bin/env python3
"""control_cpu.py - pfs-control's CPU time at idle and during a rollout
(issue 15 section 2: the ring polled every millisecond, against the
doorbell that lets it sleep until the dataplane enqueues).

A site of N devices with the appliance; pfs-control's utime + stime over
an idle window (the appliance up, no device asking), then over a rollout
of one file to every device. Also its main-loop turns in each window
(pfsctl stats: control.loops), the count that the doorbell changes.

    bench/control_cpu.py [--devices 16] [--idle-s 10] [--file-mb 8] [--member]

--member: the appliance's priority class at the devices' own (1), so a
device is root and the appliance a member that relays locally: chunks
reach pfs-control as the dataplane's reports (CHUNKS_STORED), not from
its own upstream fetch.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "site"))
import pfs_site as S  # noqa: E402
from appliance import Appliance  # noqa: E402


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loops(app):
    st = app.ctl_json("stats") or {}
    return st.get("control", {}).get("loops")      # absent before the doorbell


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=16)
    ap.add_argument("--idle-s", type=float, default=10)
    ap.add_argument("--file-mb", type=float, default=8)
    ap.add_argument("--member", action="store_true",
                    help="the appliance a member, a device root (local fan-out)")
    a = ap.parse_args()
    path = "fw/cpu.bin"
    with S.Site(a.devices, ["CP-8845"], {path: int(a.file_mb * 2**20)}) as site:
        app = Appliance(site, idle_sleep_us=50, priority=1 if a.member else 8)
        app.start()
        pid = app.control.pid
        c0, l0, t0 = cpu_s(pid), loops(app), time.time()
        time.sleep(a.idle_s)            # the idle window itself
        c1, l1, t1 = cpu_s(pid), loops(app), time.time()
        for d in site.devices:
            d.start([path])
        if not site.wait(300):
            raise SystemExit("control_cpu: the rollout did not finish")
        c2, l2, t2 = cpu_s(pid), loops(app), time.time()
        turns = (lambda x, y: "%d turns" % (y - x) if x is not None else "turns not counted")
        print("idle    %5.1f s: pfs-control CPU %.3f s (%.2f %%), %s" % (
            t1 - t0, c1 - c0, 100 * (c1 - c0) / (t1 - t0), turns(l0, l1)))
        st = app.ctl_json("stats") or {}
        print("rollout %5.1f s: pfs-control CPU %.3f s (%.2f %%), %s (%d devices, %.0f MiB, "
              "%d chunks reported by the dataplane)" % (
                  t2 - t1, c2 - c1, 100 * (c2 - c1) / (t2 - t1), turns(l1, l2), a.devices,
                  a.file_mb, st.get("control", {}).get("fanout_chunks", 0)))


if __name__ == "__main__":
    main()
