"""pfs_site.py - a firmware-upgrade site built from network namespaces.

    HQ ns (tftpd-hpa)  hq0 10.99.0.2/30 --tbf-- WAN --tbf-- wan0 10.99.0.1/30  site ns
                         (rtt_ms: WAN = da [wan-delay ns] db, rtt_ms/2 each way)
                                                             br0 10.88.0.1/24 (router)
                                              v0..vN-1 (bridge ports)
    device ns i: eth0 10.88.0.(10+i)/24, default route via 10.88.0.1, runs pfs-peer

Broadcasts stay on the site bridge, like a real subnet; the TFTP traffic
crosses the rate-limited WAN link, whose HQ-side byte counter is the "WAN
bytes" figure. Everything is torn down by close(), also on errors, signals
and interpreter exit. Only the project's own namespaces and addresses are used.
"""
import atexit
import ctypes
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PEER = os.path.join(ROOT, "build", "peer", "pfs-peer")
SIGN = os.path.join(ROOT, "build", "trust", "pfs-sign")
LOSS_OBJ = os.path.join(ROOT, "build", "tests", "loss.bpf.o")
FRAG_DROP_OBJ = os.path.join(ROOT, "build", "tests", "frag_drop.bpf.o")
WAN_DELAY = os.path.join(ROOT, "build", "tests", "wan-delay")
HQ_IP, SITE_WAN_IP = "10.99.0.2", "10.99.0.1"
HTTP_PORT = 8080
HTTP_URL = "http://%s:%d/" % (HQ_IP, HTTP_PORT)     # the same files as TFTP, by lighttpd
SUBNET, GATEWAY = "10.88.0", "10.88.0.1"

_live = []


def _cleanup_all(*_):
    for s in list(_live):
        s.close()


atexit.register(_cleanup_all)


def _on_signal(signum, _frame):
    _cleanup_all()
    raise SystemExit(128 + signum)


for _sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_sig, _on_signal)


_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def spawn_in(ns, cmd, **popen):
    """subprocess.Popen(cmd) in network namespace ns, for programs that need
    only its network (pfs-peer, curl): this thread enters it for the spawn
    alone (setns), where `ip netns exec` also runs ip and builds a mount
    namespace with the netns's /sys: 3 ms a process here against 10, CPU
    that 64 devices started during a rollout take from it."""
    target = os.open("/var/run/netns/" + ns, os.O_RDONLY | os.O_CLOEXEC)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(target, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns into %s: %s" % (ns, os.strerror(err)))
        try:
            return subprocess.Popen(cmd, **popen)
        finally:
            if _libc.setns(own, _CLONE_NEWNET) != 0:     # never run on in another netns
                os._exit(70)
    finally:
        os.close(target)
        os.close(own)


def sh(*args, check=True, ns=None, capture=False):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in args]
    r = subprocess.run(cmd, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    return r.stdout if capture else r.returncode


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()


def make_file(path, size, seed):
    """Deterministic pseudo-random content (not compressible, not all zero)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    h = hashlib.sha256(("pfs-%d" % seed).encode()).digest()
    with open(path, "wb") as f:
        left = size
        while left > 0:
            h = hashlib.sha256(h).digest()
            blk = (h * 2048)[:min(left, 65536)]
            f.write(blk)
            left -= len(blk)


class Device:
    def __init__(self, site, idx, model):
        self.site, self.idx, self.model = site, idx, model
        self.ns = "%s-d%d" % (site.prefix, idx)
        self.ip = "%s.%d" % (SUBNET, 10 + idx)
        self.out = os.path.join(site.storage, "d%d" % idx)
        self.log = os.path.join(site.work, "d%d.jsonl" % idx)
        self.err = os.path.join(site.work, "d%d.err" % idx)
        self.proc = None
        self.wants = []
        self._pos = 0
        self.events = []

    def start(self, wants, mode="cut-through", extra=(), site_key=True, upstream=None, env=None):
        """upstream: a URL (HTTP_URL); default the TFTP server. env: variables
        added to the process's environment."""
        self.wants = list(wants)
        os.makedirs(self.out, exist_ok=True)
        server = ["--upstream", upstream] if upstream else ["--tftp", HQ_IP]
        cmd = [PEER, "--iface", "eth0", "--model", self.model,
               *server, "--out", self.out, "--mode", mode, "--exit-when-done",
               "--log-json", "--linger", "20"]
        for w in wants:
            cmd += ["--want", w]
        cmd += list(self.site.trust_args) + list(extra)
        if site_key and self.site.site_key:
            cmd += ["--site-key", self.site.site_key]
        self.proc = spawn_in(self.ns, cmd, stdout=open(self.log, "w"),
                             stderr=open(self.err, "w"),
                             env=dict(os.environ, **env) if env else None)

    def poll_events(self):
        """Read the JSON lines logged since the last call."""
        new = []
        try:
            with open(self.log) as f:
                f.seek(self._pos)
                while True:
                    line = f.readline()
                    if not line.endswith("\n"):
                        break
                    self._pos = f.tell()
                    try:
                        new.append(json.loads(line))
                    except ValueError:
                        pass
        except FileNotFoundError:
            pass
        self.events += new
        return new

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def stderr_text(self):
        try:
            with open(self.err) as f:
                return f.read()
        except FileNotFoundError:
            return ""


class Site:
    """A site of n devices; models[i % len(models)] is device i's model.

    signed: the publisher's key pair is made in the work directory
    (publisher.sec, publisher.pub), every file is signed (FILE.pfsm beside it
    on the server, signed name = its path) and devices start with --trust;
    else they start with --allow-unsigned. site_key: a site key is made
    (site.key) and devices start with --site-key unless told otherwise.
    brd=False: device addresses are added without a broadcast address, as
    `ip addr add A/24 dev eth0` does. device_storage="tmpfs": the devices
    keep their files on a tmpfs of the site's (WORK/devices) instead of the
    work directory's disk, each fsync free, as each device in the field has
    storage of its own: on one disk, n devices' fsyncs at the end of a
    rollout wait for each other (one journal commit and cache flush each,
    bench/RESULTS.md 3.9)."""

    def __init__(self, n, models, files, wan_mbit=20, work=None, signed=True, site_key=False,
                 brd=True, tftpd_args=(), rtt_ms=0, device_storage="disk"):
        self.prefix = "pfs%d" % (os.getpid() % 100000)
        self.n, self.wan_mbit, self.brd = n, wan_mbit, brd
        self.rtt_ms, self.wan_delay = rtt_ms, None
        self.work = work or tempfile.mkdtemp(prefix="pfs-site-")
        self.own_work = work is None
        if device_storage not in ("disk", "tmpfs"):
            raise ValueError("device_storage: disk or tmpfs, not %r" % (device_storage,))
        # where the devices' out directories are; a tmpfs is mounted there by _build
        self.storage = self.work if device_storage == "disk" else os.path.join(self.work,
                                                                                "devices")
        self.storage_bytes = n * sum(files.values()) + (64 << 20)
        self.storage_mount = None       # mounted, to unmount in close()
        self.tftp_root = os.path.join(self.work, "tftproot")
        self.files = {}                 # path -> (size, sha256)
        for i, (path, size) in enumerate(sorted(files.items())):
            make_file(os.path.join(self.tftp_root, path), size, i)
            self.files[path] = (size, sha256(os.path.join(self.tftp_root, path)))
        self.signed = signed
        self.pubkey = os.path.join(self.work, "publisher.pub")
        self.seckey = os.path.join(self.work, "publisher.sec")
        self.trust_args = ["--allow-unsigned"]
        self.site_key = None
        if site_key:
            self.site_key = os.path.join(self.work, "site.key")
            subprocess.run([SIGN, "site-key", self.site_key], check=True,
                           stdout=subprocess.DEVNULL)
        if signed:
            self.sign_files(sorted(files))
            self.trust_args = ["--trust", self.pubkey]
        self.devices = [Device(self, i, models[i % len(models)]) for i in range(n)]
        self.namespaces = []
        self.extra_stop = []            # stopped first by close() (an appliance)
        self.tftpd = None
        self.httpd = None
        self.tftpd_args = list(tftpd_args)
        self.loss = False
        self.closed = False
        _live.append(self)
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def sign_files(self, paths, seckey=None, sequence=None):
        """Sign paths on the server (making the site's key pair if needed)."""
        seckey = seckey or self.seckey
        if not os.path.exists(seckey):
            subprocess.run([SIGN, "keygen", "--secret", seckey, "--public",
                            seckey[:-4] + ".pub"], check=True, stdout=subprocess.DEVNULL)
        for path in paths:
            cmd = [SIGN, "sign", "--secret", seckey, "--name", path]
            if sequence is not None:
                cmd += ["--sequence", str(sequence)]
            subprocess.run(cmd + [os.path.join(self.tftp_root, path)], check=True,
                           stdout=subprocess.DEVNULL)

    def _ns(self, name):
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "link", "set", "lo", "up", ns=name)

    def _build(self):
        if self.storage != self.work:
            os.makedirs(self.storage, exist_ok=True)
            sh("mount", "-t", "tmpfs", "-o", "size=%d,mode=0755" % self.storage_bytes,
               "pfs-site", self.storage)
            self.storage_mount = self.storage
        hq, site = self.prefix + "-hq", self.prefix + "-site"
        self._ns(hq)
        self._ns(site)
        if self.rtt_ms:
            self._wan_with_delay(hq, site)
        else:
            sh("ip", "link", "add", "hq0", "netns", hq, "type", "veth", "peer", "wan0",
               "netns", site)
        sh("ip", "addr", "add", HQ_IP + "/30", "dev", "hq0", ns=hq)
        sh("ip", "link", "set", "hq0", "up", ns=hq)
        sh("ip", "route", "add", "default", "via", SITE_WAN_IP, ns=hq)
        sh("ip", "addr", "add", SITE_WAN_IP + "/30", "dev", "wan0", ns=site)
        sh("ip", "link", "set", "wan0", "up", ns=site)
        for dev, n in (("hq0", hq), ("wan0", site)):
            sh("tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", "%dmbit" % self.wan_mbit,
               "burst", "32kb", "latency", "400ms", ns=n)
        sh("ip", "link", "add", "br0", "type", "bridge", ns=site)
        sh("ip", "addr", "add", GATEWAY + "/24", "dev", "br0", ns=site)
        sh("ip", "link", "set", "br0", "up", ns=site)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=site)
        for d in self.devices:
            self._ns(d.ns)
            port = "v%d" % d.idx
            sh("ip", "link", "add", "eth0", "netns", d.ns, "type", "veth", "peer", port,
               "netns", site)
            sh("ip", "link", "set", port, "master", "br0", ns=site)
            sh("ip", "link", "set", port, "up", ns=site)
            sh("ip", "addr", "add", d.ip + "/24", *(["brd", SUBNET + ".255"] if self.brd else []),
               "dev", "eth0", ns=d.ns)
            sh("ip", "link", "set", "eth0", "up", ns=d.ns)
            # Whole UDP checksums on the wire, as a device's NIC puts them:
            # a veth with TX checksum offload leaves a partial one that only
            # a kernel on the other end trusts, and the appliance's
            # dataplane, below the kernel (AF_XDP), checks it.
            sh("ethtool", "-K", "eth0", "tx", "off", ns=d.ns, capture=True)
            # Runs of datagrams from one sender coalesced on receipt, as a
            # NIC's driver does (GRO, on by default on hardware) for a socket
            # that asks (pfs-peer: UDP_GRO). A veth coalesces only with NAPI
            # on its receiving end, which a frame from the bridge gets only
            # through a port without TSO.
            sh("ethtool", "-K", "eth0", "gro", "on", ns=d.ns, capture=True)
            sh("ethtool", "-K", port, "tso", "off", ns=site, capture=True)
            sh("ip", "route", "add", "default", "via", GATEWAY, ns=d.ns)
        self.start_tftpd()

    def add_host(self, ns, ip, port):
        """Another host on the site bridge (an appliance, a proxy): namespace
        ns, eth0 at ip/24 on bridge port `port`, routed via the gateway."""
        self._ns(ns)
        site = self.prefix + "-site"
        sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", port, "netns", site)
        sh("ip", "link", "set", port, "master", "br0", ns=site)
        sh("ip", "link", "set", port, "up", ns=site)
        sh("ip", "addr", "add", ip + "/24", "brd", SUBNET + ".255", "dev", "eth0", ns=ns)
        sh("ip", "link", "set", "eth0", "up", ns=ns)
        sh("ip", "route", "add", "default", "via", GATEWAY, ns=ns)

    def _wan_with_delay(self, hq, site):
        """hq0 -- da [wan-delay] db -- wan0: tests/netem/wan_delay.c bridges
        da and db with rtt_ms / 2 of delay each way, below the tbf shapers."""
        wan = self.prefix + "-wan"
        self._ns(wan)
        sh("ip", "link", "add", "hq0", "netns", hq, "type", "veth", "peer", "da", "netns", wan)
        sh("ip", "link", "add", "wan0", "netns", site, "type", "veth", "peer", "db", "netns", wan)
        sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", ns=wan)
        for dev in ("da", "db"):
            sh("ip", "link", "set", dev, "promisc", "on", "up", ns=wan)
        self.wan_delay = subprocess.Popen(
            ["ip", "netns", "exec", wan, WAN_DELAY, "--a", "da", "--b", "db",
             "--delay-ms", "%g" % (self.rtt_ms / 2.0)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 10     # up once it has said so on stderr
        line = ""
        while time.time() < deadline and "each way" not in line:
            line = self.wan_delay.stderr.readline()
            if not line and self.wan_delay.poll() is not None:
                raise RuntimeError("wan-delay exited %s" % self.wan_delay.returncode)
        if "each way" not in line:
            raise RuntimeError("wan-delay did not start: %r" % line)

    def stop_wan_delay(self):
        """Stop the delay stage; its counters (frames, drops), or None."""
        p, self.wan_delay = self.wan_delay, None
        if not p or p.poll() is not None:
            return None
        p.terminate()
        try:
            out, _ = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            return None
        return json.loads(out) if out.strip() else None

    def start_tftpd(self):
        hq = self.prefix + "-hq"
        self.tftpd = subprocess.Popen(["ip", "netns", "exec", hq, "in.tftpd", "-L", "-s",
                                       self.tftp_root, "-a", HQ_IP + ":69"] + self.tftpd_args,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Ready when its socket is bound (a probe sent earlier would sit out
        # the tftp client's 5 s retransmit timer).
        deadline = time.time() + 10
        while time.time() < deadline:
            if sh("ss", "-Hunl", "sport = :69", ns=hq, capture=True).strip():
                return
            if self.tftpd.poll() is not None:
                raise RuntimeError("in.tftpd exited: %s" % self.tftpd.stderr.read())
            time.sleep(0.02)
        raise RuntimeError("in.tftpd did not answer within 10 s")

    def start_http(self):
        """lighttpd at HTTP_URL serving the TFTP root (Range included)."""
        conf = os.path.join(self.work, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write('server.document-root = "%s"\nserver.bind = "%s"\nserver.port = %d\n'
                    'server.errorlog = "%s"\nmimetype.assign = ( "" => '
                    '"application/octet-stream" )\n' % (self.tftp_root, HQ_IP, HTTP_PORT,
                                                        os.path.join(self.work, "http.err")))
        hq = self.prefix + "-hq"
        self.httpd = subprocess.Popen(["ip", "netns", "exec", hq, "lighttpd", "-D", "-f", conf],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            if sh("ss", "-Htln", "sport = :%d" % HTTP_PORT, ns=hq, capture=True).strip():
                return
            if self.httpd.poll() is not None:
                raise RuntimeError("lighttpd exited: %s" % self.httpd.stderr.read())
            time.sleep(0.02)
        raise RuntimeError("lighttpd did not listen within 10 s")

    def cut_http(self, after_bytes, outage_s=0.5, timeout=30):
        """Once the WAN has carried after_bytes, kill the HTTP server and
        start it again outage_s later (an outage mid-fetch)."""
        deadline = time.time() + timeout
        while self.wan_bytes() < after_bytes and time.time() < deadline:
            time.sleep(0.01)
        self.stop_http()
        time.sleep(outage_s)    # the outage itself, not a synchronisation
        self.start_http()

    def stop_http(self):
        if self.httpd and self.httpd.poll() is None:
            self.httpd.kill()
            self.httpd.wait()

    def stop_tftpd(self):
        """Kill the server and every transfer it forked, as a crash would."""
        for pid in subprocess.run(["ip", "netns", "pids", self.prefix + "-hq"],
                                  capture_output=True, text=True).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        if self.tftpd:
            self.tftpd.wait()

    def blackhole_server(self):
        """The site's router silently drops everything for the server."""
        sh("ip", "route", "add", "blackhole", HQ_IP + "/32", ns=self.prefix + "-site")

    def shape_devices(self, kbit, latency_ms=1000):
        """Each device's port sends at kbit/s (tbf on its eth0), queueing up
        to latency_ms of it before dropping, as a slow switch port would."""
        for d in self.devices:
            sh("tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "%dkbit" % kbit,
               "burst", "4kb", "latency", "%dms" % latency_ms, ns=d.ns)

    def shape_port(self, d, kbit, latency_ms=1000):
        """What reaches device d goes at kbit/s: tbf on the bridge's port
        toward it (its own traffic out, and everybody else's, untouched)."""
        sh("tc", "qdisc", "add", "dev", "v%d" % d.idx, "root", "tbf", "rate", "%dkbit" % kbit,
           "burst", "4kb", "latency", "%dms" % latency_ms, ns=self.prefix + "-site")

    def drop_wan_fragments(self):
        """The WAN drops every IP fragment on its way into the site, as a
        firewall that does not reassemble: tests/netem/frag_drop.bpf.c on
        wan0's ingress (the namespace goes with the site)."""
        ns = self.prefix + "-site"
        sh("tc", "qdisc", "add", "dev", "wan0", "clsact", ns=ns)
        sh("tc", "filter", "add", "dev", "wan0", "ingress", "bpf", "direct-action", "obj",
           FRAG_DROP_OBJ, "sec", "tc", ns=ns)

    def add_loss(self, ppm, devices=None):
        """Random loss (ppm per million) on every frame reaching the devices:
        loss.bpf.c on the bridge's port toward each (egress), frame by frame
        as on a wire, before the device's NIC coalesces a run of them (GRO;
        a drop at its ingress would lose a coalesced run whole). One rate
        for the whole site. Its map is pinned in a bpffs of the site's own
        (ip netns exec hides /sys/fs/bpf behind a fresh /sys; TC_BPF_MNT
        points tc elsewhere)."""
        self.bpffs = "/run/%s-bpf" % self.prefix
        os.makedirs(self.bpffs, exist_ok=True)
        sh("mount", "-t", "bpf", "bpf", self.bpffs)
        self.loss = True
        env = dict(os.environ, TC_BPF_MNT=self.bpffs)
        site = self.prefix + "-site"
        for d in devices if devices is not None else self.devices:
            port = "v%d" % d.idx
            sh("tc", "qdisc", "add", "dev", port, "clsact", ns=site)
            cmd = ["ip", "netns", "exec", site, "tc", "filter", "add", "dev", port, "egress",
                   "bpf", "direct-action", "obj", LOSS_OBJ, "sec", "tc"]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
        self._loss_slot(0, ppm)
        self._loss_slot(1, 0)

    def _loss_slot(self, key, value):
        hexes = lambda v: ["%02x" % b for b in v.to_bytes(4, "little")]
        sh("bpftool", "map", "update", "pinned", self.loss_pin(), "key", "hex", *hexes(key),
           "value", "hex", *hexes(value))

    def loss_pin(self):
        return os.path.join(self.bpffs, "tc", "globals", "pfs_loss_ppm")

    def loss_drops(self):
        out = sh("bpftool", "-j", "map", "lookup", "pinned", self.loss_pin(), "key", "hex",
                 "01", "00", "00", "00", capture=True)
        v = json.loads(out)
        return int.from_bytes(bytes(int(x, 16) for x in v["value"]), "little")

    def wan_bytes(self):
        """Bytes HQ sent over the WAN link (downloads), from the veth counter."""
        out = sh("cat", "/sys/class/net/hq0/statistics/tx_bytes", ns=self.prefix + "-hq",
                 capture=True)
        return int(out.strip())

    def lan_bytes(self):
        """Bytes that crossed the site bridge's device ports, both ways."""
        total = 0
        for d in self.devices:
            out = sh("cat", "/sys/class/net/v%d/statistics/tx_bytes" % d.idx,
                     ns=self.prefix + "-site", capture=True)
            total += int(out.strip())
        return total

    def send_garbage(self, from_idx, count=50):
        """Malformed datagrams to the site broadcast address, port 4051, TTL 255."""
        code = ("import socket,os\n"
                "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                "s.setsockopt(socket.SOL_SOCKET,socket.SO_BROADCAST,1)\n"
                "s.setsockopt(socket.IPPROTO_IP,socket.IP_TTL,255)\n"
                "for i in range(%d):\n"
                "  b=[os.urandom(i%%40+1), b'PF\\x01\\x08'+os.urandom(30), b'PF\\x09\\x01'+bytes(16),"
                " b'PF\\x01\\x01\\x00\\x00\\x00\\x08'+bytes(12)+b'\\xff'*8][i%%4]\n"
                "  s.sendto(b,('%s.255',4051))\n") % (count, SUBNET)
        sh("python3", "-c", code, ns=self.devices[from_idx].ns)

    def wait(self, timeout, on_tick=None, tick=0.5):
        """Wait for every started device to exit; returns True if all did."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for d in self.devices:
                d.poll_events()
            if on_tick:
                on_tick(self)
            if all(d.proc is None or d.proc.poll() is not None for d in self.devices):
                for d in self.devices:
                    d.poll_events()
                return True
            time.sleep(tick)
        return False

    def close(self):
        if self.closed:
            return
        self.closed = True
        for stop in self.extra_stop:
            try:
                stop()
            except Exception:       # cleanup goes on whatever happened
                pass
        for d in self.devices:
            if d.proc and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
        if self.tftpd and self.tftpd.poll() is None:
            self.tftpd.kill()
            self.tftpd.wait()
        self.stop_http()
        self.stop_wan_delay()
        for name in reversed(self.namespaces):
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                                  text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", name, check=False)
        if self.loss:           # the filters went with the namespaces; the pin goes too
            sh("umount", self.bpffs, check=False)
            try:
                os.rmdir(self.bpffs)
            except OSError:
                pass
        if self.storage_mount:
            sh("umount", self.storage_mount, check=False)
        if self.own_work:
            shutil.rmtree(self.work, ignore_errors=True)
        if self in _live:
            _live.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def events(site, name):
    """(device, event) for every logged event of that name, device by device."""
    for d in site.devices:
        for ev in d.events:
            if ev.get("event") == name:
                yield d, ev


def upstream_starts(site):
    """(model, file) -> how many times devices fetched it from the server."""
    counts = {}
    for _, ev in events(site, "upstream_start"):
        key = (ev["model"], ev["file"])
        counts[key] = counts.get(key, 0) + 1
    return counts


def upstream_bytes(site):
    """(model, file) -> payload bytes devices received from the server."""
    total = {}
    for _, ev in events(site, "upstream_done"):
        key = (ev["model"], ev["file"])
        total[key] = total.get(key, 0) + ev["bytes"]
    return total


def udp_gso_supported():
    """Does this kernel cut a UDP message into datagrams (UDP_SEGMENT, Linux
    4.18)? pfs-peer asks the same way before it uses it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.IPPROTO_UDP, 103, 0)
        return True
    except OSError:
        return False
    finally:
        s.close()


def done_times(site):
    """(model, file) -> seconds from start to the last device's verified copy."""
    last = {}
    for d, ev in events(site, "file_done"):
        key = (d.model, ev["file"])
        last[key] = max(last.get(key, 0.0), ev["t"])
    return last


def check_outputs(site, devices=None):
    """Every listed device holds byte-identical copies; returns problems."""
    problems = []
    for d in devices if devices is not None else site.devices:
        for w in d.wants:
            got = os.path.join(d.out, w.lstrip("/"))
            size, digest = site.files[w]
            if not os.path.exists(got):
                problems.append("d%d (%s) lacks %s" % (d.idx, d.model, w))
            elif os.path.getsize(got) != size or sha256(got) != digest:
                problems.append("d%d (%s) has a wrong %s" % (d.idx, d.model, w))
        leftovers = [f for _, _, fs in os.walk(d.out) for f in fs if f.endswith(".part")]
        if leftovers and d.proc and d.proc.returncode == 0:
            problems.append("d%d left partial files %s" % (d.idx, leftovers))
    return problems
