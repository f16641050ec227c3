#!/usr/bin/env python3
"""fsync_contention.py - what N devices' fsyncs cost when they share one disk
(bench/RESULTS.md 3.9): why bench/site_rollout.py keeps the simulated
devices' files on a tmpfs.

N processes each write a file of --file-mb in 128 KiB writes paced over
--seconds (as a device stores a rollout's chunks), then fsync it at the
same moment, as a site's devices do when a rollout ends together. Prints,
for each N, the fsync times (median, max) and when the last one was done.
On one disk each fsync is a journal commit and a cache flush, and they wait
for each other: the time grows with N whatever the bytes. In the field each
device has storage of its own.

    bench/fsync_contention.py [--devices 1,8,32,64] [--file-mb 8] [--seconds 3.5]
                              [--dir DIR]   # default: a directory under /tmp
    bench/fsync_contention.py --smoke       # the test command's short run
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from multiprocessing import Pool

BLOCK = 128 * 1024


def one_device(job):
    """Write the file paced from start, fsync it; (fsync seconds, done at,
    bytes the file held when synced)."""
    path, size, seconds, start = job
    block = os.urandom(BLOCK)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for off in range(0, size, BLOCK):
            due = start + seconds * off / size
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)       # pacing a workload, not waiting for an event
            os.pwrite(fd, block, off)
        t = time.monotonic()
        os.fsync(fd)
        done = time.monotonic()
        return done - t, done - start, os.fstat(fd).st_size
    finally:
        os.close(fd)
        os.unlink(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", default="1,8,32,64")
    ap.add_argument("--file-mb", type=float, default=8)
    ap.add_argument("--seconds", type=float, default=3.5)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--smoke", action="store_true",
                    help="N = 1, 2; 1 MiB over 0.2 s; asserts every file was whole when synced")
    args = ap.parse_args()
    if args.smoke:
        args.devices, args.file_mb, args.seconds = "1,2", 1, 0.2
    try:
        counts = [int(x) for x in args.devices.split(",")]
    except ValueError:
        raise SystemExit("fsync_contention: --devices: '%s' is not a list of numbers"
                         % args.devices)
    if not counts or min(counts) < 1 or max(counts) > 512 or args.seconds <= 0 or \
            args.file_mb <= 0:
        raise SystemExit("fsync_contention: --devices 1..512, --seconds and --file-mb > 0")
    size = int(args.file_mb * 2**20)
    work = tempfile.mkdtemp(prefix="pfs-fsync-", dir=args.dir)
    try:
        for n in counts:
            start = time.monotonic() + 0.5      # every process started by then
            jobs = [(os.path.join(work, "d%d" % i), size, args.seconds, start)
                    for i in range(n)]
            with Pool(n) as pool:
                got = pool.map(one_device, jobs)
            syncs = [s for s, _, _ in got]
            short = [b for _, _, b in got if b != size]
            if short:
                raise SystemExit("fsync_contention: N=%d: files of %s bytes synced, not %d"
                                 % (n, short, size))
            print("N=%-3d fsync of %.0f MiB: median %.3f s, max %.3f s; last done %.2f s "
                  "after the first write (writes paced over %.1f s)" % (
                      n, args.file_mb, statistics.median(syncs), max(syncs),
                      max(d for _, d, _ in got), args.seconds))
            sys.stdout.flush()
    finally:
        os.rmdir(work)


if __name__ == "__main__":
    main()
