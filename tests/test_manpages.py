#!/usr/bin/env python3
"""test_manpages.py - every program's man page against its own --help
(issue 13 section 4): the options a page documents (its SYNOPSIS and the
terms of its OPTIONS and COMMANDS lists) are exactly those the program's
usage names, so neither can gain or lose one alone; pfs-relay.conf(5) names
every group and key pfs-control accepts (control/config.c's table); the
README's usage blocks name no option their program lacks; and every page
was built (meson, scdoc) into the build directory.

    test_manpages.py BUILD_DIR
"""
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPT = re.compile(r"--[a-z][a-z0-9-]*")
PAGES = {   # page -> how to get the program's usage
    "pfs-peer.1": ["peer/pfs-peer", "--help"],
    "pfs-sign.1": ["trust/pfs-sign", "--help"],
    "pfs-sim.1": ["sim/pfs-sim", "--help"],
    "pfs-gen.1": ["bench/pfs-gen", "--help"],
    "pfs-control.8": ["control/pfs-control", "--help"],
    "pfsctl.8": ["control/pfsctl", "--help"],
    "pfs-steer.8": ["bpf/pfs-steer", "--help"],
    "pfs-dataplane.8": ["dataplane/pfs-dataplane", "--no-huge", "--no-pci", "-l", "0",
                        "--log-level=lib.eal:error", "--file-prefix",
                        "pfsman%d" % os.getpid(), "--", "--help"],
}
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("not ok: " + what)


def page_options(text):
    """Options in the SYNOPSIS, and in the terms (lines starting '*') of the
    OPTIONS and COMMANDS sections: not those a description mentions."""
    opts, section = set(), None
    for line in text.splitlines():
        if line.startswith("# "):
            section = line[2:].strip()
        elif section == "SYNOPSIS" or (section in ("OPTIONS", "COMMANDS") and
                                       line.startswith("*")):
            opts |= set(OPT.findall(line))
    return opts - {"--help"}


def main():
    build = os.path.abspath(sys.argv[1])
    for page, cmd in PAGES.items():
        src = open(os.path.join(ROOT, "man", page + ".scd")).read()
        check(os.path.getsize(os.path.join(build, "man", page)) > 500,
              "%s was not built" % page)
        r = subprocess.run([os.path.join(build, cmd[0])] + cmd[1:], capture_output=True,
                           text=True, timeout=60)
        # (quoted examples, as pfs-gen's "--no-huge --vdev ..." for --eal, are
        # another program's options)
        usage = OPT.findall(re.sub(r'"[^"\n]*"', "", r.stdout + r.stderr))
        check(usage, "%s: no usage from %s" % (page, cmd[0]))
        want, have = set(usage) - {"--help"}, page_options(src)
        check(want == have, "%s: only in --help %s, only in the page %s" % (
            page, sorted(want - have), sorted(have - want)))
        print("%s: %d options, as in --help" % (page, len(have)))
    # pfs-relay.conf(5): every group and key of config.c's table.
    table = open(os.path.join(ROOT, "control", "config.c")).read()
    table = table[table.index("known[][12]"):table.index("};", table.index("known[][12]"))]
    conf = open(os.path.join(ROOT, "man", "pfs-relay.conf.5.scd")).read()
    keys = 0
    for row in re.findall(r"\{([^}]*)\}", table):
        names = re.findall(r'"([a-z_]+)"', row)
        group, members = names[0], names[1:]
        check("*%s*" % group in conf, "pfs-relay.conf(5) lacks the group %s" % group)
        body = conf[conf.index("*%s*" % group):] if "*%s*" % group in conf else ""
        body = body[:body.find("\n*", 1)] if "\n*" in body[1:] else body
        for k in members:
            keys += 1
            check(re.search(r"\*%s\*" % re.escape(k), body),
                  "pfs-relay.conf(5): %s.%s is not documented" % (group, k))
    print("pfs-relay.conf.5: %d keys documented" % keys)
    # The README's usage blocks: a line that starts with a program's name,
    # and the lines indented under it, name only options of that program.
    readme = open(os.path.join(ROOT, "README.md")).read()
    helps = {}
    for page, cmd in PAGES.items():
        r = subprocess.run([os.path.join(build, cmd[0])] + cmd[1:], capture_output=True,
                           text=True, timeout=60)
        helps[os.path.basename(cmd[0])] = set(OPT.findall(r.stdout + r.stderr)) | {"--help"}
    blocks, seen = re.findall(r"```[a-z]*\n(.*?)```", readme, re.S), 0
    for block in blocks:
        prog = None
        for line in block.splitlines():
            word = line.split(" ", 1)[0]
            if word in helps:
                prog = word
            elif not line.startswith(" "):
                prog = None
            if prog:
                text = line.split("#", 1)[0]
                if prog == "pfs-dataplane":     # DPDK's EAL options come before --
                    text = text.split(" -- ", 1)[1] if " -- " in text else ""
                extra = set(OPT.findall(text)) - helps[prog]
                seen += 1
                check(not extra, "README: %s has no %s (%r)" % (prog, sorted(extra), line))
    check(seen >= 5, "README: only %d usage lines found" % seen)
    print("README: %d usage lines agree with --help" % seen)
    print("manpages: %s" % ("ok" if not failures else "%d failure(s)" % len(failures)))
    return 1 if failures else 0


def dpdk_runtime_dir(prefix):
    """The directory DPDK's EAL makes for a process of that file prefix, even
    with --no-shconf: /var/run/dpdk/PREFIX as root, else under
    $XDG_RUNTIME_DIR (or /tmp)/dpdk. pfs-dataplane --help leaves it."""
    base = "/var/run/dpdk" if os.geteuid() == 0 else os.path.join(
        os.environ.get("XDG_RUNTIME_DIR", "/tmp"), "dpdk")
    return os.path.join(base, prefix)


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        shutil.rmtree(dpdk_runtime_dir("pfsman%d" % os.getpid()), ignore_errors=True)
    sys.exit(rc)
