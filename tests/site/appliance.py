"""appliance.py - the pfs-relay appliance on a pfs_site.Site.

    site ns br0 --- va (bridge port) === eth0 10.88.0.2/24  appliance ns
                                          XDP pfs_steer: UDP/TCP 4051 -> AF_XDP
                                          pfs-dataplane (net_af_xdp on eth0)
                                          pfs-control (engines, cache, socket)

The dataplane runs in a private mount namespace with its own bpffs, so the
maps its XDP program pins vanish with it; pfs-steer reads them by entering
that namespace (steer_stats). DPDK runs without hugepages (--no-huge): the
af_xdp PMD copies into its UMEM anyway. Everything is stopped by close(),
which the Site's cleanup also reaches.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pfs_site as S

APP_IP = S.SUBNET + ".2"
CONTROL = os.path.join(S.ROOT, "build", "control", "pfs-control")
PFSCTL = os.path.join(S.ROOT, "build", "control", "pfsctl")
DATAPLANE = os.path.join(S.ROOT, "build", "dataplane", "pfs-dataplane")
STEER = os.path.join(S.ROOT, "build", "bpf", "pfs-steer")
XDP_OBJ = os.path.join(S.ROOT, "build", "bpf", "pfs_steer.bpf.o")

CONFIG = """# written by tests/site/appliance.py
site = {{ address = "{ip}"; broadcast = "{bcast}"; }};
upstream = {{ {server}; stall_timeout = 3; connect_timeout = 3; }};
appliance = {{ max_children = {kids}; priority = {prio}; local_fanout = {fanout}; }};
segment = {{ path = "{segment}"; cache_mb = {cache_mb};{ring} }};
control = {{ socket = "{socket}"; }};
trust = {{ {trust} state_dir = "{state}"; }};
{extra}
"""


class Appliance:
    def __init__(self, site, max_children=16, cache_mb=64, lcore=1, priority=8,
                 local_fanout=True, upstream=None, idle_sleep_us=0, extra_config="",
                 ca_file=None, upstream_extra="", ring_slots=None):
        """upstream: a URL (S.HTTP_URL, https://...); default TFTP at HQ.
        ca_file: HTTPS's CA certificates (upstream.ca_file).
        upstream_extra: more settings of the upstream group ("retries = 8").
        idle_sleep_us: the dataplane sleeps when idle instead of busy-polling
        (its --idle-sleep-us), for benchmarks whose devices share its cores.
        extra_config: more groups for pfs-relay.conf (serve = { ... };).
        ring_slots: segment.ring_slots (default pfs-control's)."""
        self.site = site
        # The appliance trusts what the site's devices trust: the site's
        # publisher key when its files are signed, its site key if it has one.
        trust = ('keys = [ "%s" ];' % site.pubkey) if site.signed else "allow_unsigned = true;"
        if site.site_key:
            trust += ' site_key = "%s";' % site.site_key
        self.ns = site.prefix + "-app"
        self.segment = "/dev/shm/%s-seg" % site.prefix
        self.socket = os.path.join(site.work, "control.sock")
        self.conf = os.path.join(site.work, "pfs-relay.conf")
        self.lcore = lcore
        self.idle_sleep_us = idle_sleep_us
        self.control = self.dataplane = None
        self.dp_starts = 0
        with open(self.conf, "w") as f:
            server = 'url = "%s"' % upstream if upstream else 'tftp = "%s"' % S.HQ_IP
            if ca_file:
                server += '; ca_file = "%s"' % ca_file
            if upstream_extra:
                server += "; " + upstream_extra
            f.write(CONFIG.format(ip=APP_IP, bcast=S.SUBNET + ".255", server=server,
                                  kids=max_children, prio=priority,
                                  fanout="true" if local_fanout else "false", segment=self.segment, cache_mb=cache_mb,
                                  ring=" ring_slots = %d;" % ring_slots if ring_slots else "",
                                  socket=self.socket, trust=trust,
                                  state=os.path.join(site.work, "app-state"),
                                  extra=extra_config))
        site.add_host(self.ns, APP_IP, "va")
        site.extra_stop.append(self.close)

    def _notify_socket(self, name):
        """A datagram socket standing in for systemd's NOTIFY_SOCKET."""
        path = os.path.join(self.site.work, name)
        if os.path.exists(path):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(0.2)
        return sock, path

    def _wait_ready(self, sock, proc, what, timeout):
        """Until proc sends READY=1 (sd_notify), as a Type=notify unit waits."""
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                try:
                    if b"READY=1" in sock.recv(256):
                        return
                except socket.timeout:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError("%s exited: %s" % (what, self.log(what.split("-")[1])))
            raise RuntimeError("%s sent no READY=1 within %d s" % (what, timeout))
        finally:
            sock.close()

    def start_control(self):
        sock, path = self._notify_socket("notify-control")
        self.control = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, CONTROL, "--config", self.conf],
            stdout=subprocess.DEVNULL, env=dict(os.environ, NOTIFY_SOCKET=path),
            stderr=open(os.path.join(self.site.work, "control.log"), "a"))
        self._wait_ready(sock, self.control, "pfs-control", 10)
        # Ready means serving: the control socket answers at once.
        if self.ctl("status").returncode != 0:
            raise RuntimeError("pfs-control said READY=1 before its socket answered")

    def start_dataplane(self):
        self.dp_starts += 1
        # A dataplane killed with SIGKILL leaves its XDP program attached;
        # the PMD will not replace it, so clear it first (as the unit does).
        cmd = ("ip link set dev eth0 xdp off; mount -t bpf bpf /sys/fs/bpf && "
               "exec %s --no-huge -m 512 --no-shconf --no-pci --file-prefix pfsapp%d_%d "
               "-l %d --log-level=*:warning --vdev net_af_xdp0,iface=eth0,xdp_prog=%s "
               "-- --segment %s --idle-sleep-us %d") % (
                   DATAPLANE, os.getpid(), self.dp_starts, self.lcore, XDP_OBJ, self.segment,
                   self.idle_sleep_us)
        sock, path = self._notify_socket("notify-dataplane")
        self.dataplane = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "sh", "-c", cmd],
            stdout=open(os.path.join(self.site.work, "dataplane.log"), "a"),
            stderr=subprocess.STDOUT, env=dict(os.environ, NOTIFY_SOCKET=path))
        self._wait_ready(sock, self.dataplane, "pfs-dataplane", 20)
        # Up when pfs-control sees its heartbeat for this incarnation.
        deadline = time.time() + 20
        while time.time() < deadline:
            st = self.status()
            dp = st.get("dataplane", {}) if st else {}
            if dp.get("alive") and dp.get("generation", 0) >= self.dp_starts and \
                    dp.get("pid") == self.dataplane.pid:
                return
            if self.dataplane.poll() is not None:
                raise RuntimeError("pfs-dataplane exited: %s" % self.log("dataplane"))
            time.sleep(0.1)
        raise RuntimeError("pfs-dataplane did not come up: %s" % self.log("dataplane"))

    def start(self):
        self.start_control()
        self.start_dataplane()

    def kill_dataplane(self, sig=signal.SIGKILL):
        if self.dataplane and self.dataplane.poll() is None:
            self.dataplane.send_signal(sig)
            self.dataplane.wait(15)

    def ctl(self, *args, as_json=False):
        cmd = ["ip", "netns", "exec", self.ns, PFSCTL, "--socket", self.socket]
        cmd += ["--json"] if as_json else []
        return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                              timeout=20)

    def ctl_json(self, *args):
        r = self.ctl(*args, as_json=True)
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def status(self):
        return self.ctl_json("status")

    def request(self, raw):
        """Send raw bytes on the control socket; the reply lines, decoded."""
        code = ("import socket,sys\n"
                "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10)\n"
                "s.sendall(sys.stdin.buffer.read()); s.shutdown(socket.SHUT_WR)\n"
                "b=b''\n"
                "while True:\n"
                "  try: d=s.recv(65536)\n"
                "  except ConnectionResetError: break\n"   # closed on an oversize line
                "  if not d: break\n"
                "  b+=d\n"
                "sys.stdout.write(b.decode())\n")
        r = subprocess.run(["python3", "-c", code, self.socket], input=raw, capture_output=True,
                           timeout=20)
        return [json.loads(line) for line in r.stdout.decode().splitlines() if line]

    def steer_stats(self):
        """The XDP program's counters, read inside the dataplane's mount namespace."""
        pid = self.dataplane_pid()
        r = subprocess.run(["nsenter", "-t", str(pid), "-m", "-n", STEER, "--json", "stats"],
                           capture_output=True, text=True, timeout=20)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def dataplane_pid(self):
        return self.dataplane.pid     # sh exec'd into the dataplane

    def log(self, which):
        try:
            with open(os.path.join(self.site.work, which + ".log")) as f:
                return f.read()[-3000:]
        except FileNotFoundError:
            return ""

    def close(self):
        for p in (self.dataplane, self.control):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for path in (self.segment, self.segment + ".bell"):     # and the doorbell FIFO
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        # EAL leaves a runtime directory per file prefix, even with --no-shconf.
        for n in range(1, self.dp_starts + 1):
            shutil.rmtree("/var/run/dpdk/pfsapp%d_%d" % (os.getpid(), n), ignore_errors=True)
