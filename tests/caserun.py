"""caserun.py - what the Python test scripts under tests/ share: a failed
expectation, running named cases with one line each and a total, and where
DPDK keeps its processes' runtime directories (for their cleanup).

Each case is (name, fn); fn() returns the message of its "ok" line or
raises. A Failed, a timeout, an OS error or a bad value fails the case and
the next one runs; anything else is a bug of the test and propagates.
"""
import os
import subprocess
import time


class Failed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Failed(what)


def run_cases(label, cases, width=24):
    """Run every case; print "ok"/"FAIL" lines and "LABEL: N passed, N
    failed". Returns the exit status: 1 if any case failed."""
    passed = failed = 0
    for name, fn in cases:
        t0 = time.time()
        try:
            msg = fn()
            print("ok   %-*s %5.1fs  %s" % (width, name, time.time() - t0, msg), flush=True)
            passed += 1
        except (Failed, subprocess.SubprocessError, OSError, ValueError) as e:
            print("FAIL %-*s %5.1fs  %s" % (width, name, time.time() - t0, e), flush=True)
            failed += 1
    print("%s: %d passed, %d failed" % (label, passed, failed))
    return 1 if failed else 0


def dpdk_runtime_base():
    """Where EAL keeps its processes' runtime directories; it leaves one per
    --file-prefix even with --no-shconf."""
    if os.geteuid() == 0:
        return "/var/run/dpdk"
    return os.path.join(os.environ.get("XDG_RUNTIME_DIR", "/tmp"), "dpdk")
