#!/usr/bin/env python3
"""test_pktgen_lua.py - bench/pktgen/pfs_replay.lua, run for real.

pktgen-dpdk is not packaged for Debian 12, so the script runs under the
Lua 5.4 interpreter with tests/pktgen/Pktgen.lua standing in for pktgen's
API (the calls the script makes, logged). What is real: the script itself,
and the appliance it reads: pfs-dataplane relaying a pfs-gen trace to two
children (net_pcap replaying it, pfs-relayctl as control), its counters
read through DPDK telemetry with the command the README gives for a rig
(PFSCTL="echo /pfs/stats | dpdk-telemetry.py -f PREFIX").

Checked: the script drives pktgen as documented (screen off, count 0, then
per rate step clr, set rate, start, delay, stop, portStats; quit), prints a
row per step whose send rate is what the stand-in sent, and whose appliance
columns move (received, relayed, two copies per relayed chunk, no bad CRC);
every counter the script parses is a key the dataplane publishes; a command
that prints no counters gives the "no appliance counters" row, not zeros;
pfsctl's JSON, where control has a fanout_chunks of its own, is read from
its "dataplane" object.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from caserun import dpdk_runtime_base, expect, run_cases

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
GEN = os.path.join(BUILD, "bench", "pfs-gen")
RELAYCTL = os.path.join(BUILD, "bench", "pfs-relayctl")
DATAPLANE = os.path.join(BUILD, "dataplane", "pfs-dataplane")
SCRIPT = os.path.join(ROOT, "bench", "pktgen", "pfs_replay.lua")
MOCK_DIR = os.path.join(ROOT, "tests", "pktgen")
LUA = "lua5.4"
RATES = [10, 25, 50, 75, 100]
LINE_PPS = 1e9 / ((1478 + 20) * 8)      # Pktgen.lua's port at 100 %
STEP_S = 1


def run_script(pfsctl, seconds=STEP_S):
    env = dict(os.environ, PFSCTL=pfsctl, PFS_SECONDS=str(seconds))
    r = subprocess.run([LUA, SCRIPT], cwd=MOCK_DIR, env=env, capture_output=True, text=True,
                       timeout=len(RATES) * (seconds + 1) + 60)
    expect(r.returncode == 0, "%s exited %d: %s" % (LUA, r.returncode, r.stderr.strip()))
    calls = [l[len("pktgen: "):].split() for l in r.stdout.splitlines()
             if l.startswith("pktgen: ")]
    rows = [l.split() for l in r.stdout.splitlines()
            if not l.startswith("pktgen: ") and re.match(r"\s*\d+\s", l)]
    return calls, rows, r.stdout


def check_calls(calls):
    want = [["screen", "off"], ["set", "0", "count", "0"]]
    for rate in RATES:
        want += [["clr"], ["set", "0", "rate", str(rate)], ["start", "0"],
                 ["delay", str(STEP_S * 1000)], ["stop", "0"], ["delay", "500"],
                 ["portStats", "0", "port"]]
    want.append(["quit"])
    expect(calls == want, "pktgen calls differ from the documented sequence:\n%s" % calls)


def dataplane_case(work):
    trace = os.path.join(work, "trace.pcap")
    subprocess.run([GEN, "--out", trace, "--chunk-size", "1408", "--file-size",
                    str(1408 * 2048)], check=True, capture_output=True, timeout=60)
    seg = "/dev/shm/pfs-luatest-%d" % os.getpid()
    prefix = "pfsluatest%d" % os.getpid()
    ctl = subprocess.Popen([RELAYCTL, "--segment", seg, "--chunk-size", "1408", "--file-size",
                            str(1408 * 2048), "--children", "2", "--warmup", "0", "--seconds",
                            "120", "--timeout", "30"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dp = subprocess.Popen([DATAPLANE, "--no-huge", "-m", "512", "--no-pci", "-l", "1",
                           "--file-prefix", prefix, "--log-level=lib.eal:error", "--vdev",
                           "net_pcap0,rx_pcap=%s,infinite_rx=1" % trace, "--",
                           "--segment", seg],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pfsctl = "echo /pfs/stats | dpdk-telemetry.py -f %s" % prefix
    try:
        # Until the dataplane answers on its telemetry socket and relays.
        deadline, stats = time.monotonic() + 30, {}
        while time.monotonic() < deadline and dp.poll() is None:
            r = subprocess.run(pfsctl, shell=True, capture_output=True, text=True, timeout=20)
            m = re.search(r"\{.*\}", r.stdout, re.S)
            # null until the dataplane has registered the command (its EAL,
            # and so the telemetry socket, comes up first)
            stats = (json.loads(m.group(0)).get("/pfs/stats") or {}) if m else {}
            if stats.get("fanout_tx", 0) > 0:
                break
            time.sleep(0.1)
        expect(stats.get("fanout_tx", 0) > 0,
               "the dataplane never relayed (telemetry: %s)" % (stats or "no answer"))
        fields = re.findall(r'field\("(\w+)"\)', open(SCRIPT).read())
        missing = [f for f in fields if f not in stats]
        expect(fields and not missing, "the script parses counters the dataplane does not "
               "publish: %s" % missing)
        calls, rows, out = run_script(pfsctl)
    finally:
        for p in (ctl, dp):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
            try:
                p.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
        if os.path.exists(seg):
            os.unlink(seg)
        shutil.rmtree(os.path.join(dpdk_runtime_base(), prefix), ignore_errors=True)
    check_calls(calls)
    expect(len(rows) == len(RATES), "%d rows for %d rates:\n%s" % (len(rows), len(RATES), out))
    for rate, row in zip(RATES, rows):
        expect(len(row) == 7 and int(row[0]) == rate, "row for %d%%: %s" % (rate, row))
        sent, rx, relayed, copies, bad = (float(x) for x in row[1:6])
        want = LINE_PPS * rate / 100
        expect(abs(sent - want) <= 1, "%d%%: sent/s %g, the stand-in sent %g" % (rate, sent, want))
        expect(rx > 0 and relayed > 0, "%d%%: the appliance columns did not move: %s" % (
            rate, row))
        expect(abs(copies - 2 * relayed) <= 0.01 * copies,
               "%d%%: %g copies/s for %g relayed/s at fan-out 2" % (rate, copies, relayed))
        expect(bad == 0, "%d%%: %g bad CRCs from a valid trace" % (rate, bad))
    # (The dataplane relays all along here, drain delay included, so its
    # per-second columns are not rates of this step: only that they moved.)
    return "%d steps against a live dataplane: its columns moved, 2 copies per chunk" % len(rows)


def no_counters_case(work):
    calls, rows, out = run_script("false", seconds=0)
    expect(len(rows) == len(RATES) and all("no appliance counters" in " ".join(r) for r in rows),
           "a command printing nothing must say so on every row:\n%s" % out)
    return "PFSCTL printing nothing: %d rows say no appliance counters" % len(rows)


def pfsctl_json_case(work):
    """pfsctl's layout: control's object (with its own fanout_chunks) first."""
    path = os.path.join(work, "stats.json")
    seq = os.path.join(work, "n")
    # Each call prints counters 1000 higher: the dataplane's, not control's.
    with open(path, "w") as f:
        f.write("#!/bin/sh\nn=$(cat %s 2>/dev/null || echo 0); echo $((n + 1)) > %s\n"
                "k=$((n * 1000))\n"
                "echo '{\"ok\": true, \"control\": {\"fanout_chunks\": 7}, \"dataplane\": "
                "{\"alive\": true, \"rx_pkts\": '$k', \"fanout_chunks\": '$k', "
                "\"fanout_tx\": '$((k * 3))', \"tx_chunks\": 0, \"rx_bad_crc\": 0, "
                "\"mbuf_drops\": 0}}'\n" % (seq, seq))
    os.chmod(path, 0o755)
    calls, rows, out = run_script(path)
    expect(len(rows) == len(RATES), "%d rows:\n%s" % (len(rows), out))
    for row in rows:
        expect([float(x) for x in row[2:5]] == [1000.0 / STEP_S, 1000.0 / STEP_S,
                                                 3000.0 / STEP_S],
               "pfsctl JSON read wrong (control's counter taken?): %s" % row)
    return "pfsctl's JSON read from its dataplane object"


def main():
    if not shutil.which(LUA):
        print("FAIL %s not found (scripts/install-deps.sh installs lua5.4)" % LUA)
        return 1
    cases = [("replay_against_dataplane", dataplane_case), ("no_counters", no_counters_case),
             ("pfsctl_json", pfsctl_json_case)]
    return run_cases("pktgen lua", [(name, lambda fn=fn: in_tempdir(fn)) for name, fn in cases],
                     width=26)


def in_tempdir(fn):
    with tempfile.TemporaryDirectory() as work:
        return fn(work)


if __name__ == "__main__":
    sys.exit(main())
