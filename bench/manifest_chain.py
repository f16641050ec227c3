#!/usr/bin/env python3
"""manifest_chain.py - a large signed file down a chain of devices: how long
each member waits for its manifest, and when the last one has the file
(bench/RESULTS.md 3.5).

    bench/manifest_chain.py [--file-mb 256] [--devices 4] [--runs 2]

A site of N devices (tests/site/pfs_site.py, network namespaces), every
device with one child slot (--max-children 1), so the file goes root ->
member -> member ...; the root fetches over HTTP at 2000 Mbit/s. A signed
file's members must each fetch the manifest (16 bytes per 1408-byte chunk:
3 MB for 256 MB) from their parent before they take a chunk. Per run:
seconds from each member's join to its verified manifest, and from the
start to the last member's file. Needs root; each run is bounded.
"""
import argparse
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "site"))
import pfs_site as S  # noqa: E402

PATH = "fw/big.bin"


def first(d, name):
    return next((ev["t"] for ev in d.events if ev.get("event") == name), None)


def one_run(n, size, timeout):
    work = tempfile.mkdtemp(prefix="pfs-man-", dir="/dev/shm")    # keep the copies off the disk
    try:
        with S.Site(n, ["CP-8845"], {PATH: size}, wan_mbit=2000, work=work) as site:
            site.start_http()
            root, *members = site.devices
            root.start([PATH], upstream=S.HTTP_URL, extra=["--strength", "15",
                                                            "--max-children", "1"])
            for d in members:
                d.start([PATH], upstream=S.HTTP_URL, extra=["--max-children", "1"])
            if not site.wait(timeout):
                raise SystemExit("manifest_chain: not done in %d s" % timeout)
            problems = S.check_outputs(site)
            if problems:
                raise SystemExit("manifest_chain: %s" % "; ".join(problems))
            waits = [first(d, "manifest_verified") - first(d, "joined") for d in members
                     if first(d, "joined") is not None and first(d, "manifest_verified")]
            return waits, max(S.done_times(site).values()), sum(S.upstream_starts(site).values())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file-mb", type=int, default=256)
    ap.add_argument("--devices", type=int, default=4)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=300, help="seconds per run")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("manifest_chain: needs root (network namespaces)")
    if not 2 <= args.devices <= 16 or not 1 <= args.file_mb <= 2048 or args.runs < 1:
        raise SystemExit("manifest_chain: --devices 2..16, --file-mb 1..2048, --runs >= 1")
    for r in range(args.runs):
        waits, last, fetches = one_run(args.devices, args.file_mb << 20, args.timeout)
        print("run %d: manifest %s s after each member's join; last member done %.1f s; "
              "%d fetch(es) from the server" % (r + 1, ", ".join("%.2f" % w for w in waits),
                                                 last, fetches))


if __name__ == "__main__":
    main()
