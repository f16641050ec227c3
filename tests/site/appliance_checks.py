"""appliance_checks.py - what test_appliance.py checks of pfsctl after a
rollout: every command, human and --json, malformed requests, idle
connections, and the operator commands with their effects; and its
helpers for /metrics and pfsctl in the background."""
import socket
import subprocess
import time

from appliance import PFSCTL
from test_site import MODELS, expect

EXTRA = 300000          # a file only the operator asks for


def check_pfsctl(app, nfiles, nentries):
    """Every command, human and --json, and malformed requests. nfiles
    hierarchies (model, file); nentries cache entries (one per file: the
    same path on the server is the same bytes, whatever the model)."""
    for cmd in (["status"], ["trees"], ["files"], ["peers"], ["stats"]):
        r = app.ctl(*cmd)
        expect(r.returncode == 0 and r.stdout.strip(), "pfsctl %s: %s" % (cmd, r.stderr))
    st = app.ctl_json("status")
    expect(st["ok"] and st["dataplane"]["alive"] and st["hierarchies"] == nfiles,
           "status: %s" % st)
    trees = app.ctl_json("trees")["trees"]
    expect(len(trees) == nfiles and all(t["root"] and t["complete"] for t in trees),
           "not root of every hierarchy: %s" % [(t["model"], t["file"], t["state"])
                                                for t in trees])
    key = trees[0]["key"]
    tree = app.ctl_json("tree", key[:6])["tree"]
    expect(tree["key"] == key and "child_slots" in tree, "tree %s: %s" % (key, tree))
    drawn = app.ctl("tree", key).stdout
    expect("this appliance" in drawn and "--" in drawn, "tree not drawn: %r" % drawn)
    entries = app.ctl_json("files")["files"]
    files = [f for f in entries if not f["file"].endswith(".pfsm")]
    expect(sum(f["state"] == "complete" for f in files) == nentries, "files: %s" % files)
    if app.site.signed:     # each signed manifest kept beside its file
        names = {f["file"] for f in entries if f["state"] == "complete"}
        expect(all(f["file"] + ".pfsm" in names for f in files),
               "manifests not cached: %s" % sorted(names))
    expect(app.ctl_json("peers")["ok"], "peers")
    stats = app.ctl_json("stats")
    expect(stats["dataplane"]["tx_chunks"] > 0 and stats["control"]["wan_bytes"] > 0,
           "stats: %s" % stats)
    # Errors: named, non-zero exit, and the daemon goes on.
    r = app.ctl("tree", "ffff")
    expect(r.returncode == 1 and "no hierarchy" in r.stderr, "tree ffff: %r" % r.stderr)
    expect(app.ctl("frobnicate").returncode == 2, "unknown command not a usage error")
    r = app.ctl("set", "priority", "99")
    expect(r.returncode == 1 and "0..15" in r.stderr, "set priority 99: %r" % r.stderr)
    r = app.ctl("prefetch", "CP-7961G", "../etc/passwd")
    expect(r.returncode == 1, "a bad path was prefetched")
    replies = app.request(b'garbage\n{"cmd": 5}\n{"cmd":"nope"}\n[1,2]\n' +
                          b'{"cmd":"tree"}\n' + b'x' * 5000 + b'\n')
    expect(len(replies) >= 5 and not any(r["ok"] for r in replies),
           "malformed requests: %s" % replies)
    expect(all(r.get("error") for r in replies), "an error reply names no problem")
    expect(app.ctl_json("status")["ok"], "the daemon stopped answering")
    # More idle connections than control.max_clients (16) hold no operator
    # out: once they have been idle a second, the longest idle gives way.
    idle = []
    try:
        for _ in range(20):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(app.socket)
            idle.append(s)
        time.sleep(1.2)         # what "idle" means here: a second without a request
        expect(app.ctl_json("status")["ok"], "20 idle connections locked pfsctl out")
    finally:
        for s in idle:
            s.close()
    expect(app.ctl_json("set", "priority", "9")["ok"], "set priority 9")
    expect(app.ctl_json("status")["priority"] == 9, "priority not set")


def check_operator_commands(site, app, nentries):
    """prefetch, evict, disable and enable, with their effects."""
    r = app.ctl_json("prefetch", MODELS[0], "one.bin")
    expect(not r["ok"] and "already" in r["error"], "prefetch of a served file: %s" % r)
    wan0 = site.wan_bytes()
    r = app.ctl("prefetch", MODELS[0], "extra.bin", "--wait")     # progress until whole
    expect(r.returncode == 0 and r.stdout.strip().endswith("done"),
           "prefetch --wait: exit %d, %r %r" % (r.returncode, r.stdout[-300:], r.stderr))
    got = [f for f in app.ctl_json("files")["files"] if f["file"] == "extra.bin"]
    expect(got and got[0]["state"] == "complete" and got[0]["size"] == EXTRA,
           "prefetched file: %s" % got)
    expect(site.wan_bytes() - wan0 >= EXTRA, "the prefetch crossed no WAN")
    # Devices are done: nothing pins the files, evict takes them all.
    evicted = app.ctl_json("evict")
    per_file = 2 if app.site.signed else 1  # a signed file's manifest goes too
    expect(evicted["ok"] and evicted["evicted"] == (nentries + 1) * per_file,
           "evict: %s" % evicted)
    expect(app.ctl_json("files")["files"] == [], "files left after evict")
    expect(app.ctl_json("disable")["ok"], "disable")
    st = app.ctl_json("status")
    expect(st["enabled"] is False and st["hierarchies"] == 0, "after disable: %s" % st)
    expect(app.ctl_json("prefetch", MODELS[0], "extra.bin")["ok"] is False,
           "prefetch accepted while disabled")
    expect(app.ctl_json("enable")["ok"], "enable")
    expect(app.ctl_json("status")["enabled"] is True, "not enabled again")


def scrape(app, path="/metrics"):
    """GET path from pfs-control's metrics listener: (HTTP code, body)."""
    r = subprocess.run(["ip", "netns", "exec", app.ns, "curl", "-sS", "-m", "10", "-w",
                        "\n%{http_code}", "http://127.0.0.1:9851" + path],
                       capture_output=True, text=True, timeout=20)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


def metric(body, name, labels=""):
    """The value of one sample (labels as written, e.g. 'state="root"')."""
    for line in body.splitlines():
        if line.startswith(name + ("{" if labels else " ")) and (not labels or labels in line):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no sample %s{%s} in /metrics" % (name, labels))


def pfsctl_bg(app, *args):
    """pfsctl ARGS in the background, stdout and stderr piped."""
    return subprocess.Popen(["ip", "netns", "exec", app.ns, PFSCTL, "--socket", app.socket] +
                            list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
