#!/usr/bin/env python3
"""test_pktgen_lua.py - bench/pktgen/pfs_replay.lua, run for real.

pktgen-dpdk is not packaged for Debian 12, so the script runs under the
Lua 5.4 interpreter with tests/pktgen/Pktgen.lua standing in for pktgen's
API (the calls the script makes, logged). What is real: the script itself,
and the appliance it reads: pfs-dataplane relaying a pfs-gen trace to two
children (net_pcap replaying it, pfs-relayctl as control), its counters
read through DPDK telemetry with the command the README gives for a rig
(PFSCTL="echo /pfs/stats | dpdk-telemetry.py -f PREFIX").

Checked: the script drives pktgen as documented (link state, screen off,
count 0, then per rate step clr, set rate, start, delay, stop, a delay past
pktgen's next counter refresh, portStats; quit), turns each step's packets
per second into the percentage of the port's link speed pktgen takes (the
stand-in's port says 100 Gbit/s, as memif does), prints a row per step
whose send rate is what the stand-in sent (it shows its counters as of its
last once-a-second refresh, as pktgen does), and whose appliance columns
move (received, relayed, two copies delivered per relayed chunk, nothing
dropped, no bad CRC); a port whose link is down gives a message, no steps;
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
RATES = [100000, 250000, 500000, 1000000, 2000000]     # packets per second
LINK_MBPS = 100000                      # the stand-in's port, as memif says
WIRE_BITS = (1478 + 4 + 20) * 8         # a 1408-byte chunk's frame on the wire
STEP_S = 1


def run_script(pfsctl, seconds=STEP_S, link_mbps=LINK_MBPS):
    env = dict(os.environ, PFSCTL=pfsctl, PFS_SECONDS=str(seconds),
               PKTGEN_LINK_MBPS=str(link_mbps))
    r = subprocess.run([LUA, SCRIPT], cwd=MOCK_DIR, env=env, capture_output=True, text=True,
                       timeout=len(RATES) * (seconds + 1) + 60)
    expect(r.returncode == 0, "%s exited %d: %s" % (LUA, r.returncode, r.stderr.strip()))
    calls = [l[len("pktgen: "):].split() for l in r.stdout.splitlines()
             if l.startswith("pktgen: ")]
    rows = [l.split() for l in r.stdout.splitlines()
            if not l.startswith("pktgen: ") and re.match(r"\s*\d+\s", l)]
    return calls, rows, r.stdout


def check_calls(calls):
    want = [["linkState", "0"], ["screen", "off"], ["set", "0", "count", "0"]]
    for pps in RATES:
        want += [["clr"], ["set", "0", "rate", pps * WIRE_BITS / (LINK_MBPS * 1e6) * 100],
                 ["start", "0"], ["delay", str(STEP_S * 1000)], ["stop", "0"],
                 ["delay", "1500"], ["portStats", "0", "port"]]
    want.append(["quit"])
    # The rate is a float: compared as a number, the rest as words.
    same = len(calls) == len(want) and all(
        c[:3] == w[:3] and abs(float(c[3]) - w[3]) < 1e-9 if w[:3] == ["set", "0", "rate"]
        else c == w for c, w in zip(calls, want))
    expect(same, "pktgen calls differ from the documented sequence:\n%s" % calls)


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
    expect(len(rows) == len(RATES), "%d rows for %d rates:\n%s" % (len(rows), len(RATES), out))
    for pps, row in zip(RATES, rows):
        expect(len(row) == 7 and int(row[0]) == pps, "row for %d pps: %s" % (pps, row))
        sent, rx, relayed, delivered, dropped, bad = (float(x) for x in row[1:7])
        # What the stand-in sent in the step, all of it: read after its refresh.
        expect(abs(sent - pps) <= 1, "%d pps: sent/s %g" % (pps, sent))
        expect(rx > 0 and relayed > 0, "%d pps: the appliance columns did not move: %s" % (
            pps, row))
        expect(abs(delivered - 2 * relayed) <= 0.01 * delivered,
               "%d pps: %g delivered/s for %g relayed/s at fan-out 2" % (pps, delivered,
                                                                        relayed))
        expect(dropped == 0 and bad == 0, "%d pps: %g dropped/s, %g bad CRCs" % (
            pps, dropped, bad))
    check_calls(calls)
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
                "\"tx_pkts\": '$((k * 3))', \"tx_drops\": '$n', \"rx_bad_crc\": 0, "
                "\"mbuf_drops\": '$n'}}'\n" % (seq, seq))
    os.chmod(path, 0o755)
    calls, rows, out = run_script(path)
    expect(len(rows) == len(RATES), "%d rows:\n%s" % (len(rows), out))
    for row in rows:
        expect([float(x) for x in row[2:6]] == [1000.0 / STEP_S, 1000.0 / STEP_S,
                                                 3000.0 / STEP_S, 2.0 / STEP_S],
               "pfsctl JSON read wrong (control's counter taken?): %s" % row)
    return "pfsctl's JSON read from its dataplane object"


def link_down_case(work):
    calls, rows, out = run_script("false", seconds=0, link_mbps=0)
    expect(not rows and "link down" in out and calls == [["linkState", "0"]] * 2 + [["quit"]],
           "a port with no link must stop the script before any step:\n%s" % out)
    return "link down: said so, no steps run"


def main():
    if not shutil.which(LUA):
        print("FAIL %s not found (scripts/install-deps.sh installs lua5.4)" % LUA)
        return 1
    cases = [("replay_against_dataplane", dataplane_case), ("no_counters", no_counters_case),
             ("pfsctl_json", pfsctl_json_case), ("link_down", link_down_case)]
    return run_cases("pktgen lua", [(name, lambda fn=fn: in_tempdir(fn)) for name, fn in cases],
                     width=26)


def in_tempdir(fn):
    with tempfile.TemporaryDirectory() as work:
        return fn(work)


if __name__ == "__main__":
    sys.exit(main())
