#!/usr/bin/env python3
"""test_package.py - the Debian package (issue 13 section 5): built from a
clean copy of the tree with dpkg-buildpackage and checked by lintian
(scripts/package.sh: no lintian error), then its contents checked (every
program, the BPF object, the configuration as conffiles, the systemd units
with the installed paths, the man pages, the dissector, the group of the
control socket), and its files installed into a throwaway root (dpkg -x)
whose pfs-control checks the configuration it installed, in a private mount
namespace where that root's /etc/pfs-relay is /etc/pfs-relay, with a
publisher key made by the installed pfs-sign. Needs root (apt, unshare).
"""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = "usr/lib/x86_64-linux-gnu"
WANT = ["usr/bin/" + p for p in ("pfs-peer", "pfs-control", "pfsctl", "pfs-dataplane",
                                 "pfs-steer", "pfs-sign", "pfs-sim", "pfs-gen")] + [
    LIB + "/pfs-relay/pfs_steer.bpf.o", LIB + "/wireshark/plugins/pfs.lua",
    "etc/pfs-relay/pfs-relay.conf", "etc/pfs-relay/pfs-relay.env",
    "usr/lib/systemd/system/pfs-control.service", "usr/lib/systemd/system/pfs-dataplane.service",
    "usr/lib/sysusers.d/pfs-relay.conf", "usr/share/doc/pfs-relay/copyright"] + [
    "usr/share/man/man%s/%s.gz" % (p.rsplit(".", 1)[1], p) for p in (
        "pfs-peer.1", "pfs-sign.1", "pfs-sim.1", "pfs-gen.1", "pfs-relay.conf.5",
        "pfs-control.8", "pfs-dataplane.8", "pfsctl.8", "pfs-steer.8")]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("not ok: " + what)


def main():
    with tempfile.TemporaryDirectory(prefix="pfs-package-") as tmp:
        out = os.path.join(tmp, "out")
        r = subprocess.run([os.path.join(ROOT, "scripts", "package.sh"), out],
                           capture_output=True, text=True, timeout=1500)
        check(r.returncode == 0, "package.sh: %s" % (r.stdout + r.stderr)[-1500:])
        if r.returncode:
            return 1
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        deb = os.path.join(out, debs[0])
        root = os.path.join(tmp, "root")
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
        missing = [p for p in WANT if not os.path.isfile(os.path.join(root, p))]
        check(not missing, "not in the package: %s" % missing)
        conffiles = subprocess.run(["dpkg-deb", "-I", deb, "conffiles"], capture_output=True,
                                   text=True).stdout.split()
        check("/etc/pfs-relay/pfs-relay.conf" in conffiles, "conffiles: %s" % conffiles)
        unit = open(os.path.join(root, "usr/lib/systemd/system/pfs-control.service")).read()
        check("ExecStart=/usr/bin/pfs-control --config /etc/pfs-relay/pfs-relay.conf" in unit
              and "Type=notify" in unit and "Group=pfs-relay" in unit,
              "pfs-control.service: %s" % unit)
        dp_unit = open(os.path.join(root, "usr/lib/systemd/system/pfs-dataplane.service")).read()
        check("xdp_prog=/%s/pfs-relay/pfs_steer.bpf.o" % LIB in dp_unit,
              "pfs-dataplane.service does not point at the installed BPF object")
        info = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True,
                              text=True).stdout
        # libcurl4 too: loaded with dlopen (upstream/curl_dl.h), so only
        # debian/control can name it.
        check("librte-net-af-xdp23" in info and "libmicrohttpd" in info and "libcurl4" in info,
              "Depends: %s" % info)
        postinst = subprocess.run(["dpkg-deb", "-I", deb, "postinst"], capture_output=True,
                                  text=True).stdout
        check("systemd-sysusers pfs-relay.conf" in postinst, "postinst: %s" % postinst)
        # The installed pfs-control checks the installed configuration.
        made_etc = not os.path.exists("/etc/pfs-relay")
        if made_etc:
            os.makedirs("/etc/pfs-relay")
        try:
            script = (
                "set -e; mount --bind %(r)s/etc/pfs-relay /etc/pfs-relay; "
                "%(r)s/usr/bin/pfs-sign keygen --secret %(t)s/publisher.sec "
                "--public /etc/pfs-relay/publisher.pub >/dev/null; "
                "%(r)s/usr/bin/pfs-control --config /etc/pfs-relay/pfs-relay.conf --check"
            ) % {"r": root, "t": tmp}
            r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                script], capture_output=True, text=True, timeout=60)
            check(r.returncode == 0, "installed pfs-control --check: %s" % (
                r.stdout + r.stderr).strip()[-800:])
        finally:
            if made_etc:
                shutil.rmtree("/etc/pfs-relay", ignore_errors=True)
        print("package: %s, %d files checked, lintian clean of errors, --check ok" % (
            os.path.basename(deb), len(WANT)))
    print("package: %s" % ("ok" if not failures else "%d failure(s)" % len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
