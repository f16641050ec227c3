"""http_proxy.py - what an administrator would install instead of pfs-relay:
nginx as an HTTP caching proxy on the site, in front of the firmware server
(issue 14 section 2), for bench/site_rollout.py's comparison.

nginx runs in a namespace of its own on the site bridge (PROXY_IP), proxies
to HQ's lighttpd (tests/site/pfs_site.py, S.HTTP_URL) over the same
tbf-limited WAN, with proxy_cache and proxy_cache_lock: the first request
for a file fetches it once, the others wait for it to be cached whole and
are then served from the cache. Devices fetch with curl, each from its own
namespace, all at once.
"""
import os
import shutil
import subprocess
import time

import pfs_site as S

PROXY_IP = S.SUBNET + ".3"
PROXY_PORT = 8080

CONF = """daemon off;
user root;                  # its files are in the site's private work directory
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx.err warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx-tmp/body;
  proxy_temp_path {work}/nginx-tmp/proxy;
  fastcgi_temp_path {work}/nginx-tmp/fastcgi;
  uwsgi_temp_path {work}/nginx-tmp/uwsgi;
  scgi_temp_path {work}/nginx-tmp/scgi;
  proxy_cache_path {work}/nginx-cache levels=1:2 keys_zone=fw:10m max_size=4g
                   inactive=60m use_temp_path=off;
  server {{
    listen {ip}:{port};
    location / {{
      proxy_pass {upstream};
      proxy_cache fw;
      proxy_cache_valid 200 60m;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 600s;
      proxy_cache_lock_age 600s;
    }}
  }}
}}
"""


class CachingProxy:
    def __init__(self, site):
        self.site = site
        self.ns = site.prefix + "-px"
        self.work = os.path.join(site.work, "proxy")
        os.makedirs(os.path.join(self.work, "nginx-tmp"), exist_ok=True)
        self.conf = os.path.join(self.work, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(CONF.format(work=self.work, ip=PROXY_IP, port=PROXY_PORT,
                                upstream=S.HTTP_URL.rstrip("/")))
        self.proc = None
        site.add_host(self.ns, PROXY_IP, "vp")
        site.extra_stop.append(self.close)

    def start(self):
        if not shutil.which("nginx"):
            raise RuntimeError("nginx is not installed (scripts/install-deps.sh)")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "nginx", "-c", self.conf,
                                      "-p", self.work],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            if S.sh("ss", "-Htln", "sport = :%d" % PROXY_PORT, ns=self.ns, capture=True).strip():
                return
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited: %s" % self.proc.stderr.read())
            time.sleep(0.02)
        raise RuntimeError("nginx did not listen within 10 s")

    def fetch_all(self, path, timeout):
        """Every device GETs path at once; returns {device index: seconds}
        from the start of all requests to its last byte, and checks each
        copy against the server's."""
        size, digest = self.site.files[path]
        url = "http://%s:%d/%s" % (PROXY_IP, PROXY_PORT, path.lstrip("/"))
        procs = {}
        t0 = time.time()
        for d in self.site.devices:
            os.makedirs(d.out, exist_ok=True)
            out = os.path.join(d.out, os.path.basename(path))
            procs[d.idx] = (out, time.time() - t0, subprocess.Popen(
                ["ip", "netns", "exec", d.ns, "curl", "-sS", "--fail", "-m", str(timeout),
                 "-w", "%{time_total}", "-o", out, url],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        done = {}
        for idx, (out, started, p) in procs.items():
            took, err = p.communicate(timeout=timeout + 10)
            if p.returncode != 0:
                raise RuntimeError("d%d: curl exited %d: %s" % (idx, p.returncode, err.strip()))
            done[idx] = started + float(took)     # curl's own clock, from its launch
            if os.path.getsize(out) != size or S.sha256(out) != digest:
                raise RuntimeError("d%d: the copy from nginx differs from the server's" % idx)
        return done

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
