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

import legacy_clients as L
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
        """Every device GETs path at once with curl; returns {device index:
        seconds until its copy was whole}, each copy checked."""
        url = "http://%s:%d/%s" % (PROXY_IP, PROXY_PORT, path.lstrip("/"))
        return L.fetch_all(self.site, path, lambda out: L.curl_cmd(url, out, timeout), timeout,
                           "nginx")

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
