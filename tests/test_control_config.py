#!/usr/bin/env python3
"""test_control_config.py - pfs-control --check on good and bad configurations:
the shipped example passes; each mistake exits 1 naming file, line and key."""
import os
import subprocess
import sys
import tempfile

CONTROL, EXAMPLE, SIGN = sys.argv[1], sys.argv[2], sys.argv[3]
GOOD = ('site = { address = "10.0.0.2"; broadcast = "10.0.0.255"; };\nupstream = { tftp = "h"; };'
        ' trust = { allow_unsigned = true; state_dir = "/tmp"; };\n')
CASES = [   # (config text, the line, the key or message part expected)
    ('site = { address = "10.0.0"; broadcast = "10.0.0.255"; };\n', 1, "site.address"),
    (GOOD + 'appliance = {\n  priority = 16; };\n', 4, "appliance.priority"),
    (GOOD + 'appliance = { max_children = "two"; };\n', 3, "appliance.max_children"),
    (GOOD + 'appliance = { mode = "fast"; };\n', 3, "appliance.mode"),
    (GOOD + 'appliance = { models = ("ok", 5); };\n', 3, "appliance.models"),
    (GOOD + 'appliance = {\n relay = "yes"; };\n', 4, "appliance.relay: must be true or false"),
    (GOOD + 'appliance = { enabled = 1; };\n', 3, "appliance.enabled: must be true or false"),
    (GOOD + 'serve = { tftp = "yes"; };\n', 3, "serve.tftp: must be true or false"),
    (GOOD + 'serve = {\n files = [ "../etc/*" ]; };\n', 4, "serve.files: element 1"),
    (GOOD + 'serve = { files = [ "/abs/*" ]; };\n', 3, "serve.files: element 1"),
    (GOOD + 'serve = { max_clients = 0; };\n', 3, "serve.max_clients"),
    (GOOD + 'serve = { max_per_client = 0; };\n', 3, "serve.max_per_client: 0 is out of range"),
    (GOOD + 'serve = { wait_timeout = 0; };\n', 3, "serve.wait_timeout: must be 0.1..3600 seconds"),
    (GOOD + 'serve = { http = "0.0.0.0"; };\n', 3, "serve.http: is not ADDRESS:PORT"),
    (GOOD + 'serve = { http = "10.0.0.300:80"; };\n', 3, "serve.http: is not ADDRESS:PORT"),
    (GOOD + 'serve = { http = "0.0.0.0:70000"; };\n', 3, "serve.http: is not ADDRESS:PORT"),
    (GOOD + 'serve = { tftp = true; ftp = true; };\n', 3, "unknown key 'ftp'"),
    (GOOD + 'metrics = { listen = "localhost:9851"; };\n', 3, "metrics.listen: is not ADDRESS"),
    (GOOD + 'metrics = { port = 9851; };\n', 3, "unknown key 'port'"),
    (GOOD + 'segment = { ring_slots = 1000; };\n', 3, "segment.ring_slots"),
    (GOOD + 'segment = { cache_mb = 64; rx_frames = 20000; };\n', 3,
     "segment.rx_frames: 20000 frames of 2048 bytes take more than half of segment.cache_mb"),
    (GOOD + 'segment = { rx_frames = -1; };\n', 3, "segment.rx_frames"),
    (GOOD + 'control = { socket_mode = "0999"; };\n', 3, "control.socket_mode"),
    (GOOD + 'control = { ro_socket_mode = "rw"; };\n', 3, "control.ro_socket_mode"),
    (GOOD + 'control = { socket = "/tmp/c.sock"; ro_socket = "/tmp/c.sock"; };\n', 3,
     "control.ro_socket: is control.socket itself"),
    (GOOD + 'control = { heartbeat_timeout = 0.0; };\n', 3, "control.heartbeat_timeout"),
    (GOOD + 'apliance = { };\n', 3, "apliance: unknown section"),
    (GOOD + 'site2 = 1;\n', 3, "site2: unknown section"),
    ('site = { address = "10.0.0.2"; broadcast = "10.0.0.255"; colour = 1; };\n'
     'upstream = { tftp = "h"; };\n', 1, "unknown key 'colour'"),
    ('site = { address = "10.0.0.2"; broadcast = "10.0.0.255"; };\nupstream = { tftp = "h"; };\n',
     0, "trust: missing section"),
    (GOOD.replace("allow_unsigned = true;", "allow_unsigned = false;"), 2, "trust: no keys"),
    (GOOD.replace("allow_unsigned = true;", 'keys = [ "/nonexistent.pub" ];'), 2,
     "trust.keys: /nonexistent.pub"),
    (GOOD.replace("allow_unsigned = true;", 'allow_unsigned = true; site_key = "%s";'
                  % sys.argv[2]), 2, "trust.site_key"),
    (GOOD.replace("allow_unsigned = true;", 'allow_unsigned = "yes";'), 2,
     "trust.allow_unsigned"),
    (GOOD.replace("allow_unsigned = true;", 'allow_unsigned = true; previous_site_key = "x";'),
     2, "trust.previous_site_key"),
    ('site = { address = "10.0.0.2"; broadcast = "10.0.0.255"; };\n', 0, "upstream"),
    ('site = { address = "10.0.0.2"; };\n' + GOOD.split("\n", 1)[1], 1, "broadcast or prefix"),
    ('site = { address = "10.0.0.2"; broadcast = "10.0.0.2"; };\n' + GOOD.split("\n", 1)[1],
     1, "site.broadcast: is site.address itself"),
    ('site = { address = "10.0.0.2"; prefix = 33; };\n' + GOOD.split("\n", 1)[1], 1,
     "site.prefix"),
    # issue 17, section 5: numbers past 32 bits, host:port values, socket paths
    (GOOD + 'appliance = { max_children = 4294967297; };\n', 3,
     "appliance.max_children: 4294967297 is out of range"),
    (GOOD + 'segment = { ring_slots = 99999999999999999999; };\n', 3, "beyond 64 bits"),
    (GOOD.replace('tftp = "h"', 'tftp = ""'), 2, "upstream.tftp: no host name"),
    (GOOD.replace('tftp = "h"', 'tftp = "h:99999"'), 2, "upstream.tftp: 'h:99999' has no port"),
    (GOOD.replace('tftp = "h"', 'tftp = "h:"'), 2, "has no port"),
    (GOOD + 'control = { max_clients = 0; };\n', 3, "control.max_clients"),
    (GOOD + 'control = { client_idle_timeout = 0.5; };\n', 3, "control.client_idle_timeout"),
    (GOOD + 'control = { socket = "/%s/s"; };\n' % ("x" * 120), 3,
     "control.socket: longer than 107 bytes"),
    ('site = { address = "10.0.0.2" \n', 2, "syntax"),
    # issue 17, section 1: the server and the bounds of every fetch
    (GOOD.replace('tftp = "h"', 'tftp = "h"; http = "http://h/"'), 2,
     "upstream.http: give one of url, tftp and http"),
    (GOOD.replace('tftp = "h"', 'url = "http://h/"; tftp = "h"'), 2,
     "upstream.url: give one of url, tftp and http"),
    (GOOD.replace('tftp = "h"', 'url = "ftp://h/fw"'), 2,
     "upstream.url: 'ftp://h/fw' is not a tftp://, http:// or https:// URL"),
    (GOOD.replace('tftp = "h"', 'url = "tftp://h:99999"'), 2, "has no host, or a bad port"),
    (GOOD.replace('tftp = "h"', 'url = "https://h/"; ca_file = "/nonexistent.pem"'), 2,
     "upstream.ca_file: cannot read '/nonexistent.pem'"),
    (GOOD.replace('tftp = "h"', 'http = "ftp://h/fw"'), 2,
     "upstream.http: 'ftp://h/fw' is not an http:// or https:// URL"),
    (GOOD.replace('tftp = "h"', 'http = "http://"'), 2, "is not an http:// or https:// URL"),
    (GOOD.replace('tftp = "h"', 'connect_timeout = 5'), 2,
     "upstream: url (or tftp, or http) is required"),
    (GOOD.replace('tftp = "h"', 'tftp = "h"; stall_timeout = 0'), 2,
     "upstream.stall_timeout: must be 0.1..3600 seconds"),
    (GOOD.replace('tftp = "h"', 'tftp = "h"; min_rate = -1'), 2,
     "upstream.min_rate: -1 is out of range"),
    (GOOD.replace('tftp = "h"', 'tftp = "h"; retries = 11'), 2,
     "upstream.retries: 11 is out of range 0..10"),
    (GOOD.replace('tftp = "h"', 'tftp = "h"; tftp_blksize = 65465'), 2,
     "upstream.tftp_blksize: 65465 is out of range 8..65464"),
    (GOOD.replace('tftp = "h"', 'tftp = "h"; low_speed = "fast"'), 2,
     "upstream.low_speed: must be an integer"),
]

failures = 0
with tempfile.TemporaryDirectory() as tmp:
    # The example names /etc/pfs-relay/publisher.pub: check it with a real
    # key file in that place, and with none (the missing key is named).
    r = subprocess.run([CONTROL, "--config", EXAMPLE, "--check"], capture_output=True, text=True)
    if r.returncode != 1 or "/etc/pfs-relay/publisher.pub" not in r.stderr:
        print("not ok: the example without its key file: %r" % r.stderr)
        failures += 1
    subprocess.run([SIGN, "keygen", "--secret", tmp + "/p.sec", "--public", tmp + "/p.pub"],
                   check=True, stdout=subprocess.DEVNULL)
    text = open(EXAMPLE).read().replace("/etc/pfs-relay/publisher.pub", tmp + "/p.pub")
    open(tmp + "/example.conf", "w").write(text)
    r = subprocess.run([CONTROL, "--config", tmp + "/example.conf", "--check"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("not ok: the shipped example fails: %s" % r.stderr)
        failures += 1
with tempfile.TemporaryDirectory() as tmp:
    for i, (text, line, key) in enumerate(CASES):
        path = os.path.join(tmp, "c%d.conf" % i)
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([CONTROL, "--config", path, "--check"], capture_output=True, text=True)
        want = "%s:%d:" % (path, line)
        if r.returncode != 1 or want not in r.stderr or key not in r.stderr:
            print("not ok %d: %r -> rc %d, %r (want %r and %r)" % (i, text, r.returncode,
                                                                 r.stderr, want, key))
            failures += 1
    # An HTTP server with every bound set is accepted.
    path = os.path.join(tmp, "http.conf")
    with open(path, "w") as f:
        f.write(GOOD.replace('tftp = "h"', 'http = "https://fw.example:8443/cisco/"; '
                             'connect_timeout = 5; stall_timeout = 2.5; low_speed = 500; '
                             'min_rate = 4096; retries = 4; tftp_blksize = 65464'))
    r = subprocess.run([CONTROL, "--config", path, "--check"], capture_output=True, text=True)
    if r.returncode != 0:
        print("not ok: an http upstream with bounds: %r" % r.stderr)
        failures += 1
    # upstream.url, the general form, with each scheme; a CA file for HTTPS.
    for url in ("tftp://fw.example", "tftp://fw.example:6969", "http://fw.example/cisco",
                "https://fw.example:8443/"):
        with open(path, "w") as f:
            f.write(GOOD.replace('tftp = "h"', 'url = "%s"; ca_file = "%s"' % (url, path)))
        r = subprocess.run([CONTROL, "--config", path, "--check"], capture_output=True,
                           text=True)
        if r.returncode != 0:
            print("not ok: upstream.url %s: %r" % (url, r.stderr))
            failures += 1
    # --check: a socket whose directory cannot be made is named.
    path = os.path.join(tmp, "nodir.conf")
    with open(path, "w") as f:
        f.write(GOOD + 'control = { socket = "/nonexistent-pfs/a/b/control.sock"; };\n')
    r = subprocess.run([CONTROL, "--config", path, "--check"], capture_output=True, text=True)
    if r.returncode != 1 or "control.socket" not in r.stderr:
        print("not ok: a socket directory that cannot be made: %r" % r.stderr)
        failures += 1
    # A control.socket naming a regular file: refused, the file kept.
    victim = os.path.join(tmp, "notes.txt")
    with open(victim, "w") as f:
        f.write("precious\n")
    path = os.path.join(tmp, "victim.conf")
    with open(path, "w") as f:
        f.write(GOOD + 'control = { socket = "%s"; };\nsegment = { path = "%s/seg"; };\n'
                % (victim, tmp))
    r = subprocess.run([CONTROL, "--config", path], capture_output=True, text=True, timeout=30)
    if r.returncode == 0 or "not a socket" not in r.stderr or \
            open(victim).read() != "precious\n":
        print("not ok: a regular file as control.socket: rc %d %r" % (r.returncode, r.stderr))
        failures += 1
    path = os.path.join(tmp, "prefix.conf")
    with open(path, "w") as f:
        f.write('site = { address = "10.0.0.2"; prefix = 24; };\n' + GOOD.split("\n", 1)[1])
    r = subprocess.run([CONTROL, "--config", path, "--check"], capture_output=True, text=True)
    if r.returncode != 0:
        print("not ok: site.prefix instead of site.broadcast: %r" % r.stderr)
        failures += 1
    r = subprocess.run([CONTROL, "--config", os.path.join(tmp, "absent.conf")],
                       capture_output=True, text=True)
    if r.returncode != 1 or "cannot read" not in r.stderr:
        print("not ok: a missing file: %r" % r.stderr)
        failures += 1
r = subprocess.run([CONTROL], capture_output=True, text=True)
if r.returncode != 2 or "usage" not in r.stderr:
    print("not ok: no arguments: rc %d" % r.returncode)
    failures += 1
print("%d cases, %d failures" % (len(CASES) + 3, failures))
sys.exit(1 if failures else 0)
