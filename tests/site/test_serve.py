#!/usr/bin/env python3
"""test_serve.py - the appliance as the site's TFTP load server (issue 12):
devices that only speak TFTP (tftp-hpa's tftp, atftp with blksize and
windowsize) get files from the appliance's cache, no WAN byte; names that
are not served are refused with the right error; a client that vanishes
leaves nothing behind. Same conventions as test_site.py; run as root.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pfs_site as S  # noqa: E402
from appliance import APP_IP, Appliance  # noqa: E402
from test_site import expect, main  # noqa: E402

MODEL = "CP-8845"
FILES = {"fw/a.bin": 3 * 1024 * 1024 + 77, "fw/b.bin": 600 * 1024, "dnld/c.bin": 1000}
SERVE = 'serve = { tftp = true; files = [ "fw/*" ]; max_clients = 16; };'
SERVE_HTTP = SERVE.replace("tftp = true;", 'tftp = true; http = "0.0.0.0:6970";')

# A raw client: prints "ERROR <code> <message>" or "DATA <bytes>" for one
# request; with "vanish", takes block 1 and goes silent.
RAW = r"""
import socket, struct, sys
host, op, name, mode, how = sys.argv[1:6]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
opts = b"timeout\x001\x00" if how == "vanish" else b""
if how == "short":
    pkt = b"\x00\x01a"
else:
    pkt = struct.pack("!H", int(op)) + name.encode() + b"\0" + mode.encode() + b"\0" + opts
s.sendto(pkt, (host, 69))
data, addr = s.recvfrom(70000)
code = struct.unpack("!H", data[:2])[0]
if code == 5:
    print("ERROR %d %s" % (struct.unpack("!H", data[2:4])[0], data[4:-1].decode()))
elif how == "vanish":
    if code == 6:
        s.sendto(b"\x00\x04\x00\x00", addr)
        data, addr = s.recvfrom(70000)
    print("DATA %d block %d, now silent" % (len(data) - 4, struct.unpack("!H", data[2:4])[0]))
else:
    print("OP %d" % code)
"""


STALLED = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((sys.argv[1], 6970))
s.sendall(b"GET /" + sys.argv[2].encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
s.recv(512)
print("reading", flush=True)
sys.stdin.read()
"""


def raw(site, d, op, name, mode="octet", how="-"):
    r = subprocess.run(["ip", "netns", "exec", site.devices[d].ns, "python3", "-c", RAW, APP_IP,
                        str(op), name, mode, how], capture_output=True, text=True, timeout=20)
    expect(r.returncode == 0, "raw client %s: %s" % (name, r.stderr.strip()[-300:]))
    return r.stdout.strip()


def warm(app, files):
    """The operator prefetches files into the cache (one WAN copy each)."""
    for f in files:
        expect(app.ctl_json("prefetch", MODEL, f)["ok"], "prefetch %s" % f)
    deadline = time.time() + 60
    while time.time() < deadline:
        done = {f["file"] for f in app.ctl_json("files")["files"] if f["state"] == "complete"}
        if set(files) <= done:
            return
        time.sleep(0.1)
    raise AssertionError("prefetch did not complete: %s" % done)


def scenario_serve_tftp_clients_from_cache():
    """8 legacy devices, two files at once: tftp-hpa (RFC 1350, 512-byte
    blocks), atftp (blksize 1468, windowsize 8, tsize), busybox's tftp
    (blksize 1024) and busybox's wget over HTTP: every copy byte-identical,
    no WAN byte beyond the one prefetch."""
    with S.Site(8, [MODEL], FILES) as site:
        app = Appliance(site, extra_config=SERVE_HTTP)
        app.start()
        warm(app, sorted(FILES))
        wan0 = site.wan_bytes()
        procs = []
        for d in site.devices:
            os.makedirs(d.out, exist_ok=True)
            name = "fw/a.bin" if d.idx % 2 == 0 else "/fw/b.bin"
            out = os.path.join(d.out, os.path.basename(name))
            if d.idx < 3:
                cmd = ["tftp", "-m", "binary", APP_IP, "-c", "get", name, out]
            elif d.idx < 6:
                cmd = ["atftp", "--option", "blksize 1468", "--option", "windowsize 8",
                       "--option", "tsize 0", "-g", "-r", name, "-l", out, APP_IP]
            elif d.idx == 6:            # busybox, as small devices carry it
                cmd = ["busybox", "tftp", "-b", "1024", "-g", "-r", name, "-l", out, APP_IP]
            else:
                cmd = ["busybox", "wget", "-q", "-O", out,
                       "http://%s:6970/%s" % (APP_IP, name.lstrip("/"))]
            procs.append((d, name, out, subprocess.Popen(
                ["ip", "netns", "exec", d.ns] + cmd, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)))
        t0 = time.time()
        for d, name, out, p in procs:
            text, _ = p.communicate(timeout=120)
            expect(p.returncode == 0, "d%d %s: exit %d: %s" % (d.idx, name, p.returncode,
                                                             text.strip()[-300:]))
            want = site.files[name.lstrip("/")][1]
            expect(os.path.exists(out) and S.sha256(out) == want,
                   "d%d: %s differs from the server's" % (d.idx, name))
        took = time.time() - t0
        wan = site.wan_bytes() - wan0
        expect(wan < 16 * 1024, "serving cost %d WAN bytes" % wan)
        st = app.ctl_json("stats")["serve"]
        expect(st["tftp_done"] == 7 and st["tftp_failed"] == 0 and st["clients"] == 0 and
               st["http_requests"] == 1, "serve stats: %s" % st)
        log = app.log("control")
        expect("serving TFTP on" in log, "no word of the TFTP server in the log")
        return "8 clients (tftp-hpa, atftp windowsize 8, busybox tftp and wget) in %.1f s, " \
            "%d WAN bytes" % (took, wan)


def scenario_serve_refusals_and_vanished_client():
    """Names that are not served get TFTP's errors: outside serve.files and
    path escapes 2, not cached 1, a write 2, netascii 0, garbage 4; a
    client that stops answering holds its transfer only until the
    timeouts run out, then nothing is left. serve.max_per_client = 2: a
    third transfer from one address is told to try later (error 0) while
    another address is served."""
    with S.Site(2, [MODEL], FILES) as site:
        app = Appliance(site, extra_config=SERVE.replace("16;", "16; max_per_client = 2;"))
        app.start()
        warm(app, ["fw/b.bin", "dnld/c.bin"])
        for _ in range(2):
            got = raw(site, 0, 1, "fw/b.bin", how="vanish")
            expect(got.startswith("DATA 512 block 1"), "vanishing client: %r" % got)
        expect(app.ctl_json("stats")["serve"]["clients"] == 2, "the transfers are not held")
        held = app.ctl_json("clients")["clients"]
        expect(len(held) == 2 and held[0]["proto"] == "tftp" and held[0]["file"] == "fw/b.bin"
               and held[0]["size"] == FILES["fw/b.bin"], "pfsctl clients: %s" % held)
        got = raw(site, 0, 1, "fw/b.bin")
        expect(got.startswith("ERROR 0 ") and "this address" in got,
               "a third transfer from one address: %r" % got)
        expect("fw/b.bin" in app.ctl("clients").stdout, "pfsctl clients (text)")
        cases = [(1, "../etc/passwd", "octet", "-", 2), (1, "fw/../../etc/passwd", "octet",
                                                          "-", 2),
                 (1, "dnld/c.bin", "octet", "-", 2), (1, "fw/missing.bin", "octet", "-", 1),
                 (2, "fw/new.bin", "octet", "-", 2), (1, "fw/b.bin", "netascii", "-", 0),
                 (1, "x", "octet", "short", 4)]
        for op, name, mode, how, code in cases:
            got = raw(site, 1, op, name, mode, how)
            expect(got.startswith("ERROR %d " % code), "%s %s: %r, want error %d" % (
                "WRQ" if op == 2 else "RRQ", name, got, code))
        st = app.ctl_json("stats")["serve"]
        expect(st["tftp_refused"] == 4 and st["tftp_not_found"] == 1 and
               st["tftp_bad_requests"] == 2 and st["tftp_busy"] == 1,
               "refusal counters: %s" % st)
        # The vanished client: 1+2+4+4+4 s of retries (timeout 1 s asked).
        deadline = time.time() + 30
        while time.time() < deadline and app.ctl_json("stats")["serve"]["clients"]:
            time.sleep(0.5)
        st = app.ctl_json("stats")["serve"]
        expect(st["clients"] == 0 and st["tftp_failed"] == 2, "after the timeouts: %s" % st)
        expect("stopped answering" in app.log("control"), "the log does not say why")
        return "7 refusals with TFTP's codes, a per-address limit; the silent clients freed " \
            "after their timeouts"


def curl(site, d, *args):
    """curl in device d's namespace: (HTTP code, stdout, stderr)."""
    r = subprocess.run(["ip", "netns", "exec", site.devices[d].ns, "curl", "-sS", "-m", "30",
                        "-w", "\n%{http_code}"] + list(args), capture_output=True, timeout=60)
    out, _, code = r.stdout.rpartition(b"\n")
    return int(code or 0), out, r.stderr.decode(errors="replace")


def scenario_serve_http_from_cache():
    """HTTP/1.1 from the cache (libmicrohttpd): GET byte-identical, HEAD,
    ranges (206, suffix, 416 past the end), a download resumed with -C -,
    ETag and If-None-Match (304), HTTP/1.0, keep-alive; 403 for escapes
    (.., %2e%2e, an encoded NUL) and files outside serve.files, 404, 405;
    no WAN byte; with serve.max_per_client = 1, a 503 for a second download
    from one address."""
    with S.Site(2, [MODEL], FILES) as site:
        app = Appliance(site, extra_config=SERVE_HTTP.replace("16;", "16; max_per_client = 1;"))
        app.start()
        warm(app, sorted(FILES))
        wan0 = site.wan_bytes()
        base = "http://%s:6970/" % APP_IP
        a = open(os.path.join(site.tftp_root, "fw/a.bin"), "rb").read()
        b = open(os.path.join(site.tftp_root, "fw/b.bin"), "rb").read()
        out = os.path.join(site.devices[0].out, "a.bin")
        os.makedirs(site.devices[0].out, exist_ok=True)
        code, _, err = curl(site, 0, "-o", out, base + "fw/a.bin")
        expect(code == 200 and open(out, "rb").read() == a, "GET: %d %s" % (code, err))
        code, head, _ = curl(site, 0, "-I", base + "fw/a.bin")
        head = head.decode().lower()
        expect(code == 200 and "content-length: %d" % len(a) in head and "etag: \"" in head
               and "accept-ranges: bytes" in head, "HEAD: %d %r" % (code, head))
        etag = [h.split(":", 1)[1].strip() for h in head.splitlines() if h.startswith("etag")][0]
        code, body, _ = curl(site, 1, "-r", "100-199", base + "fw/a.bin")
        expect(code == 206 and body == a[100:200], "range 100-199: %d, %d bytes" % (code,
                                                                                  len(body)))
        code, body, _ = curl(site, 1, "-r", "-50", base + "fw/b.bin")
        expect(code == 206 and body == b[-50:], "suffix range: %d" % code)
        code, _, _ = curl(site, 1, "-r", "99999999-", base + "fw/b.bin")
        expect(code == 416, "a range past the end: %d" % code)
        part = os.path.join(site.devices[0].out, "b.bin")
        with open(part, "wb") as f:
            f.write(b[:1000])                   # a download cut at 1000 bytes
        code, _, err = curl(site, 0, "-C", "-", "-o", part, base + "fw/b.bin")
        expect(code == 206 and open(part, "rb").read() == b, "resume: %d %s" % (code, err))
        code, body, _ = curl(site, 0, "-H", "If-None-Match: " + etag, base + "fw/b.bin")
        expect(code == 200 and body == b, "another file's ETag must not match: %d" % code)
        code, body, _ = curl(site, 0, "-H", "If-None-Match: " + etag, base + "fw/a.bin")
        expect(code == 304 and not body, "If-None-Match: %d" % code)
        code, body, _ = curl(site, 1, "-0", base + "fw/b.bin")
        expect(code == 200 and body == b, "HTTP/1.0: %d" % code)
        code, _, err = curl(site, 1, "-v", "-o", "/dev/null", "-o", "/dev/null",
                            base + "fw/b.bin", base + "fw/a.bin")
        expect("Re-using existing connection" in err, "no keep-alive: %s" % err[-400:])
        for path, want, extra in (("fw/../../etc/passwd", 403, ["--path-as-is"]),
                                  ("fw/%2e%2e/%2e%2e/etc/passwd", 403, ["--path-as-is"]),
                                  ("fw/a.bin%00.txt", 403, []), ("dnld/c.bin", 403, []),
                                  ("fw/missing.bin", 404, []), ("fw/a.bin", 405, ["-X", "POST"])):
            code, _, _ = curl(site, 1, *extra, "-o", "/dev/null", base + path)
            expect(code == want, "%s %s: %d, want %d" % (" ".join(extra), path, code, want))
        # A client that asks and stops reading (a small receive buffer, so
        # the file cannot all sit in socket buffers): in progress until it
        # goes away.
        slow = subprocess.Popen(["ip", "netns", "exec", site.devices[1].ns, "python3", "-c",
                                 STALLED, APP_IP, "fw/a.bin"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        expect(slow.stdout.readline().strip() == "reading", "the stalled client did not start")
        deadline, seen = time.time() + 10, []
        while time.time() < deadline and not seen:
            seen = [x for x in app.ctl_json("clients")["clients"] if x["proto"] == "http"]
            time.sleep(0.1)
        expect(seen and seen[0]["file"] == "fw/a.bin" and seen[0]["size"] == len(a),
               "a slow HTTP download not in pfsctl clients: %s" % seen)
        # serve.max_per_client = 1: a second download from that address is
        # told to come back (503, Retry-After), another address is served.
        code, _, _ = curl(site, 1, "-o", "/dev/null", base + "fw/b.bin")
        expect(code == 503, "a second download from one address: %d" % code)
        code, _, _ = curl(site, 0, "-o", "/dev/null", base + "fw/b.bin")
        expect(code == 200, "another address while one is at its limit: %d" % code)
        slow.kill()                             # the client vanishes mid-transfer
        slow.wait()
        deadline = time.time() + 10
        while time.time() < deadline and app.ctl_json("clients")["clients"]:
            time.sleep(0.1)
        expect(not app.ctl_json("clients")["clients"], "a vanished HTTP client left state")
        wan = site.wan_bytes() - wan0
        expect(wan < 16 * 1024, "HTTP serving cost %d WAN bytes" % wan)
        st = app.ctl_json("stats")["serve"]
        expect(st["http_refused"] == 5 and st["http_not_found"] == 1 and
               st["http_not_modified"] == 1 and st["http_bad_ranges"] == 1 and
               st["http_ranges"] >= 3 and st["http_busy"] == 1, "HTTP counters: %s" % st)
        return "GET, HEAD, ranges, resume, ETag, HTTP/1.0, keep-alive; 6 refusals; %d WAN bytes" % (
            wan)


COLD = {"fw/a.bin": 4 * 1024 * 1024 + 77, "fw/b.bin": 1024 * 1024 + 3}


def legacy_cmd(d, name, out):
    """A legacy device's download of name: eight kinds of client in turn,
    TFTP (tftp-hpa, atftp with windowsize, busybox) and HTTP (curl, busybox
    wget)."""
    url = "http://%s:6970/%s" % (APP_IP, name)
    return [["tftp", "-m", "binary", APP_IP, "-c", "get", name, out],
            ["atftp", "--option", "blksize 1468", "--option", "windowsize 8", "--option",
             "tsize 0", "-g", "-r", name, "-l", out, APP_IP],
            ["busybox", "tftp", "-b", "1024", "-g", "-r", name, "-l", out, APP_IP],
            ["curl", "-sS", "-f", "-m", "100", "-o", out, url],
            ["tftp", "-m", "binary", APP_IP, "-c", "get", "/" + name, out],
            ["atftp", "--option", "blksize 512", "-g", "-r", name, "-l", out, APP_IP],
            ["curl", "-sS", "-f", "-0", "-m", "100", "-o", out, url],
            ["busybox", "wget", "-q", "-O", out, url]][d.idx % 8]


def fetch_lines(site, path):
    """The appliance's log lines saying it fetched path from the server."""
    with open(os.path.join(site.work, "control.log")) as f:
        return [ln for ln in f if ln.rstrip().endswith("%s: fetching it from %s" % (
            path, S.HQ_IP)) or (" %s: fetching it from " % path) in ln]


def scenario_serve_cold_cache_one_wan_copy():
    """Issue 12 section 2 with a cold cache: 32 legacy devices (TFTP and
    HTTP, five kinds of client) ask for two files at once while 8 pfs-peer
    devices want one of them; half the legacy devices ask only once the
    file is arriving. Every copy is byte-identical, the server sends each
    file once (one fetch in the appliance's log, WAN bytes within the files'
    sizes), no device fetches from the server itself."""
    with S.Site(40, [MODEL], COLD, work=os.environ.get("PFS_KEEP_WORK")) as site:
        app = Appliance(site, extra_config=SERVE_HTTP.replace("16", "64"))
        app.start()
        wan0 = site.wan_bytes()
        legacy, peers = site.devices[:32], site.devices[32:]
        procs = []

        def launch(group):
            for d in group:
                os.makedirs(d.out, exist_ok=True)
                name = "fw/a.bin" if d.idx % 2 == 0 else "fw/b.bin"
                out = os.path.join(d.out, os.path.basename(name))
                procs.append((d, name, out, subprocess.Popen(
                    ["ip", "netns", "exec", d.ns] + legacy_cmd(d, name, out),
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))

        t0 = time.time()
        launch(legacy[:16])
        for d in peers:
            d.start(["fw/a.bin"])
        # The rest once a.bin is arriving (its cache entry filling).
        deadline, filling = time.time() + 30, None
        while time.time() < deadline and not filling:
            filling = [f for f in app.ctl_json("files")["files"]
                       if f["file"] == "fw/a.bin" and f["state"] == "filling" and f["size"]]
            time.sleep(0.02)
        expect(filling, "fw/a.bin never seen arriving")
        launch(legacy[16:])
        for d, name, out, p in procs:
            text, _ = p.communicate(timeout=150)
            expect(p.returncode == 0, "d%d %s: exit %d: %s" % (d.idx, name, p.returncode,
                                                             text.strip()[-300:]))
            expect(os.path.exists(out) and S.sha256(out) == site.files[name][1],
                   "d%d: %s differs from the server's" % (d.idx, name))
        took = time.time() - t0
        expect(site.wait(120), "the pfs-peer devices did not finish")
        problems = S.check_outputs(site, peers)
        expect(not problems, "; ".join(problems))
        starts = [(d.idx, [e.get("event") for e in d.events][:12]) for d, _ in
                  S.events(site, "upstream_start")]
        expect(not starts, "devices fetched from the server: %s" % starts)
        for path in COLD:
            n = len(fetch_lines(site, path))
            expect(n == 1, "%s fetched %d times from the server" % (path, n))
        wan = site.wan_bytes() - wan0
        expect(wan < sum(COLD.values()) * 1.05 + 256 * 1024,
               "%d WAN bytes for %d bytes of files" % (wan, sum(COLD.values())))
        st = app.ctl_json("stats")["serve"]
        expect(st["tftp_done"] == 20 and st["tftp_failed"] == 0 and st["clients"] == 0,
               "TFTP counters: %s" % st)
        expect(st["waited"] >= 16, "fewer requests than expected waited: %s" % st)
        return "32 legacy + 8 pfs-peer devices from a cold cache in %.1f s, %.2f MB over the " \
            "WAN for %.2f MB of files (each fetched once)" % (took, wan / 1e6,
                                                                sum(COLD.values()) / 1e6)


def scenario_serve_http_upstream_cut_resumes():
    """A cold cache and an HTTP upstream (lighttpd at HQ) cut a third of the
    way through the one fetch and back 0.5 s later: 8 legacy devices (TFTP
    and HTTP) that asked at the start all complete byte-identical, the
    fetch resumed where its bytes stopped (Range), and the WAN carried the
    file about once."""
    size = 4 * 1024 * 1024 + 5
    files = {"fw/big.bin": size}
    with S.Site(8, [MODEL], files, wan_mbit=8) as site:
        site.start_http()
        app = Appliance(site, upstream=S.HTTP_URL, extra_config=SERVE_HTTP)
        app.start()
        procs = []
        for d in site.devices:
            os.makedirs(d.out, exist_ok=True)
            out = os.path.join(d.out, "big.bin")
            procs.append((d, out, subprocess.Popen(
                ["ip", "netns", "exec", d.ns] + legacy_cmd(d, "fw/big.bin", out),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
        site.cut_http(size / 3)
        for d, out, p in procs:
            text, _ = p.communicate(timeout=120)
            expect(p.returncode == 0 and S.sha256(out) == site.files["fw/big.bin"][1],
                   "d%d: exit %d, %s" % (d.idx, p.returncode, text.strip()[-300:]))
        with open(os.path.join(site.work, "control.log")) as f:
            log = f.read()
        expect("resuming the fetch at byte" in log, "no resume in: %s" % log[-800:])
        wan = site.wan_bytes()
        expect(wan <= 1.15 * size, "WAN %d bytes for %d" % (wan, size))
        return "cut and back: resumed, 8 legacy devices done, WAN %.2f x the file" % (
            wan / size)


HTTPS_SERVER = r"""
import functools, http.server, ssl, sys
root, ip, port, cert, key = sys.argv[1:6]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
srv = http.server.ThreadingHTTPServer((ip, int(port)), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
"""


def scenario_serve_https_upstream_trust():
    """An HTTPS upstream whose certificate the appliance does not trust: a
    legacy device's request gets TFTP error 1 and an HTTP one 502, the log
    says why (no retry: a certificate is not trusted on a second try). With
    upstream.ca_file naming the certificate, the same file is served. The
    same for pfs-peer: exit 1 naming the certificate, then --ca-file."""
    files = {"fw/tls.bin": 300 * 1024 + 9}
    with S.Site(2, [MODEL], files) as site:
        cert, key = os.path.join(site.work, "hq.pem"), os.path.join(site.work, "hq.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                        "/CN=" + S.HQ_IP, "-addext", "subjectAltName=IP:" + S.HQ_IP,
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        https = subprocess.Popen(["ip", "netns", "exec", site.prefix + "-hq", "python3", "-c",
                                  HTTPS_SERVER, site.tftp_root, S.HQ_IP, "8443", cert, key],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            expect(https.stdout.readline().strip() == "ready", "the HTTPS server did not start")
            url = "https://%s:8443/" % S.HQ_IP
            app = Appliance(site, upstream=url, extra_config=SERVE_HTTP)
            app.start()
            out = os.path.join(site.work, "tls.bin")
            r = subprocess.run(["ip", "netns", "exec", site.devices[0].ns, "tftp", "-m",
                                "binary", APP_IP, "-c", "get", "fw/tls.bin", out],
                               capture_output=True, text=True, timeout=60)
            said = (r.stdout + r.stderr).strip()
            expect("Error code 1" in said and "certificate is not trusted" in said,
                   "TFTP from an untrusted HTTPS upstream: %r" % said)
            code, _, _ = curl(site, 1, "-o", "/dev/null", "http://%s:6970/fw/tls.bin" % APP_IP)
            expect(code == 502, "HTTP from an untrusted HTTPS upstream: %d" % code)
            with open(os.path.join(site.work, "control.log")) as f:
                log = f.read()
            expect("certificate is not trusted" in log, "the log does not say why: %s" %
                   log[-600:])
            st = app.ctl_json("stats")["serve"]
            expect(st["tftp_unavailable"] == 1 and st["http_unavailable"] == 1,
                   "counters: %s" % st)
            # Trusted through upstream.ca_file: served, byte-identical.
            app.control.terminate()
            app.control.wait(10)
            with open(app.conf) as f:
                conf = f.read()
            with open(app.conf, "w") as f:
                f.write(conf.replace('url = "%s"' % url, 'url = "%s"; ca_file = "%s"' % (
                    url, cert)))
            app.start_control()
            code, body, err = curl(site, 1, "http://%s:6970/fw/tls.bin" % APP_IP)
            with open(os.path.join(site.tftp_root, "fw/tls.bin"), "rb") as f:
                expect(code == 200 and body == f.read(), "with ca_file: %d %s" % (code, err))
            # pfs-peer fetching by itself (tftp-only mode): the same rule.
            site.devices[0].start(["fw/tls.bin"], mode="tftp-only", upstream=url)
            site.devices[1].start(["fw/tls.bin"], mode="tftp-only", upstream=url,
                                  extra=["--ca-file", cert])
            expect(site.wait(60), "pfs-peer did not finish")
            d0, d1 = site.devices
            expect(d0.proc.returncode == 1 and "certificate is not trusted" in
                   d0.stderr_text(), "pfs-peer, untrusted: exit %s, %r" % (
                       d0.proc.returncode, d0.stderr_text()[-300:]))
            expect(d1.proc.returncode == 0 and not S.check_outputs(site, [d1]),
                   "pfs-peer --ca-file: exit %s, %r" % (d1.proc.returncode,
                                                        d1.stderr_text()[-300:]))
        finally:
            https.kill()
            https.wait()
        return "untrusted certificate: TFTP error 1, HTTP 502, pfs-peer exit 1, logged; " \
            "trusted by ca_file: served"


def scenario_serve_wait_timeout():
    """The server at HQ unreachable (blackholed), serve.wait_timeout = 1: a
    TFTP request waiting for its file gets ERROR 1 "did not arrive in time"
    and an HTTP one 504, each about when the timeout says, long before the
    fetch itself gives up; nothing is left waiting."""
    with S.Site(2, [MODEL], {"fw/slow.bin": 100 * 1024}) as site:
        app = Appliance(site, extra_config=SERVE_HTTP.replace(
            "16;", "16; wait_timeout = 1;"))
        app.start()
        site.blackhole_server()
        out = os.path.join(site.work, "slow.bin")
        t0 = time.time()
        r = subprocess.run(["ip", "netns", "exec", site.devices[0].ns, "tftp", "-m", "binary",
                            APP_IP, "-c", "get", "fw/slow.bin", out], capture_output=True,
                           text=True, timeout=60)
        took_tftp = time.time() - t0
        said = (r.stdout + r.stderr).strip()
        expect("Error code 1" in said and "did not arrive in time" in said,
               "TFTP while the server is unreachable: %r" % said)
        t0 = time.time()
        code, _, _ = curl(site, 1, "-o", "/dev/null", "http://%s:6970/fw/slow.bin" % APP_IP)
        took_http = time.time() - t0
        expect(code == 504, "HTTP while the server is unreachable: %d" % code)
        expect(took_tftp < 5 and took_http < 5, "waited %.1f s (TFTP) and %.1f s (HTTP) "
               "with a 1 s wait_timeout" % (took_tftp, took_http))
        st = app.ctl_json("stats")["serve"]
        expect(st["clients"] == 0 and st["tftp_unavailable"] == 1 and
               st["http_unavailable"] == 1, "after the timeouts: %s" % st)
        return "unreachable server: TFTP error 1 in %.1f s, HTTP 504 in %.1f s" % (
            took_tftp, took_http)


SCENARIOS = [scenario_serve_tftp_clients_from_cache, scenario_serve_refusals_and_vanished_client,
             scenario_serve_http_from_cache, scenario_serve_cold_cache_one_wan_copy,
             scenario_serve_http_upstream_cut_resumes, scenario_serve_https_upstream_trust,
             scenario_serve_wait_timeout]

if __name__ == "__main__":
    sys.exit(main(SCENARIOS, "serve"))
