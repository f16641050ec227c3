#!/usr/bin/env python3
"""test_ctlsock.py - the control socket's command table, error codes and
read-only socket (docs/appliance.md 5), against a real pfs-control.

pfs-control runs unprivileged with no dataplane (it waits for one; its
sockets answer meanwhile), its segment in /dev/shm and its sockets in a
temporary directory; READY=1 on a stand-in for systemd's NOTIFY_SOCKET says
when they answer.

    test_ctlsock.py PFS_CONTROL PFSCTL
"""
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time

CONTROL, PFSCTL = sys.argv[1], sys.argv[2]
READ_ONLY = {"help", "status", "trees", "tree", "files", "peers", "clients", "stats", "events"}
CHANGES = {"prefetch", "evict", "set", "enable", "disable"}
CONFIG = """site = {{ address = "127.0.0.1"; broadcast = "127.255.255.255"; }};
upstream = {{ tftp = "127.0.0.1"; }};
appliance = {{ models = ( "CP-7961G" ); }};
segment = {{ path = "{segment}"; cache_mb = 8; ring_slots = 64; }};
control = {{ socket = "{work}/control.sock"; }};
trust = {{ allow_unsigned = true; state_dir = "{work}"; }};
"""
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def call(path, line):
    """One request line (bytes or an object), its reply as an object."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n")
    buf = b""
    while b"\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    return json.loads(buf.split(b"\n")[0])


def pfsctl(*args):
    return subprocess.run([PFSCTL] + list(args), capture_output=True, text=True, timeout=30)


def start(work, segment):
    conf = os.path.join(work, "pfs-relay.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(work=work, segment=segment))
    notify = os.path.join(work, "notify")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(notify)
    ns.settimeout(0.2)
    log = open(os.path.join(work, "control.log"), "w")
    p = subprocess.Popen([CONTROL, "--config", conf], stdout=log, stderr=subprocess.STDOUT,
                         env=dict(os.environ, NOTIFY_SOCKET=notify))
    deadline = time.time() + 15
    try:
        while time.time() < deadline:
            try:
                if b"READY=1" in ns.recv(256):
                    return p
            except socket.timeout:
                pass
            if p.poll() is not None:
                break
    finally:
        ns.close()
    p.kill()
    p.wait()
    raise RuntimeError("pfs-control did not come up: " + open(log.name).read()[-800:])


def offline_help():
    """pfsctl help needs no daemon: the table pfsctl was built with."""
    r = pfsctl("--socket", "/nonexistent/control.sock", "help")
    check(r.returncode == 0 and all(c in r.stdout for c in READ_ONLY | CHANGES),
          "pfsctl help without a daemon lists every command")
    j = json.loads(pfsctl("--json", "help").stdout)
    names = {c["name"]: c["read_only"] for c in j["commands"]}
    check(names == {**{c: True for c in READ_ONLY}, **{c: False for c in CHANGES}},
          "the table: read-only exactly %s" % sorted(READ_ONLY))
    check([e["code"] for e in j["errors"]] == list(range(1, 10)),
          "error codes 1..9 in the table")
    marked = [ln.split()[1] for ln in r.stdout.splitlines() if ln.startswith("* ")]
    check(set(marked) == CHANGES, "pfsctl help marks what changes state: %s" % marked)
    return j


def main():
    table = offline_help()
    with tempfile.TemporaryDirectory() as work:
        segment = "/dev/shm/pfs-ctltest-%d" % os.getpid()
        main_sock = os.path.join(work, "control.sock")
        ro_sock = os.path.join(work, "control-ro.sock")
        p = start(work, segment)
        try:
            check(stat.S_IMODE(os.stat(main_sock).st_mode) == 0o660 and
                  stat.S_IMODE(os.stat(ro_sock).st_mode) == 0o666,
                  "control.sock 0660, control-ro.sock beside it, 0666")
            h = call(main_sock, {"cmd": "help"})
            check(h["ok"] and not h["read_only_socket"] and
                  h["commands"] == table["commands"] and h["errors"] == table["errors"],
                  "the daemon's help is pfsctl's table")
            check(call(ro_sock, {"cmd": "help"})["read_only_socket"],
                  "help on the read-only socket says so")
            # What reads runs on the read-only socket; what changes, not.
            for cmd in ("status", "trees", "files", "peers", "clients", "stats"):
                r = call(ro_sock, {"cmd": cmd})
                check(r.get("ok") is True, "read-only socket: %s runs" % cmd)
            for req in ({"cmd": "set", "key": "priority", "value": 3}, {"cmd": "evict"},
                        {"cmd": "disable"}, {"cmd": "enable"},
                        {"cmd": "prefetch", "model": "CP-7961G", "file": "f.bin"}):
                r = call(ro_sock, req)
                check(r.get("ok") is False and r.get("code") == 4,
                      "read-only socket: %s refused with code 4 (%s)" % (req["cmd"], r))
            r = call(ro_sock, {"cmd": "events"})
            check(r == {"ok": True, "subscribed": True}, "read-only socket: events subscribes")
            r = pfsctl("--socket", ro_sock, "set", "priority", "3")
            check(r.returncode == 1 and "error 4 (read_only)" in r.stderr,
                  "pfsctl on the read-only socket: exit 1, 'error 4 (read_only)': %r" %
                  r.stderr.strip())
            check(pfsctl("--socket", ro_sock, "status").returncode == 0,
                  "pfsctl status on the read-only socket")
            # Each error code where it belongs.
            cases = [
                (b"{not json", 1), (b"[1, 2]", 1), ({"cmd": 5}, 1), ({"nocmd": "x"}, 1),
                ({"cmd": "frobnicate"}, 2), ({"cmd": "tree"}, 3), ({"cmd": "tree", "key": 7}, 3),
                ({"cmd": "tree", "key": "zz"}, 3), ({"cmd": "tree", "key": "ffff"}, 5),
                ({"cmd": "set", "key": "colour", "value": 1}, 3),
                ({"cmd": "set", "key": "priority", "value": "high"}, 3),
                ({"cmd": "set", "key": "priority", "value": 99}, 3),
                ({"cmd": "prefetch", "model": "CP-7961G"}, 3),
                ({"cmd": "prefetch", "model": "OTHER", "file": "f.bin"}, 5),
                (b"x" * 5000, 7),
            ]
            for req, code in cases:
                r = call(main_sock, req)
                check(r.get("ok") is False and r.get("code") == code and r.get("error"),
                      "%s -> code %d (%s)" % (str(req)[:48], code, r.get("error")))
            r = call(main_sock, {"cmd": "set", "key": "priority", "value": 3})
            check(r == {"ok": True} and call(ro_sock, {"cmd": "status"})["priority"] == 3,
                  "set priority on control.sock, seen on the read-only one")
            r = pfsctl("--socket", main_sock, "set", "priority", "x")
            check(r.returncode == 2, "pfsctl set priority x: a usage error (exit 2)")
            r = pfsctl("--socket", main_sock, "tree", "ffff")
            check(r.returncode == 1 and "error 5 (not_found)" in r.stderr,
                  "pfsctl tree ffff: 'error 5 (not_found)': %r" % r.stderr.strip())
            check(p.poll() is None, "pfs-control still running")
        finally:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            for leftover in (segment, segment + ".bell"):      # the segment, its doorbell
                if os.path.exists(leftover):
                    os.unlink(leftover)
        check(not os.path.exists(main_sock) and not os.path.exists(ro_sock),
              "both sockets removed at exit")
    print("ctlsock: %d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
