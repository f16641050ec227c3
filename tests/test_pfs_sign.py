#!/usr/bin/env python3
"""test_pfs_sign.py - pfs-sign as a publisher uses it: keygen, sign, verify;
each way a file or manifest can be wrong exits 1 with its own message, and a
bad command line exits 2."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caserun import expect, run_cases  # noqa: E402

SIGN = os.path.abspath(sys.argv[1])
D = tempfile.mkdtemp(prefix="pfs-sign-")


def run(*args):
    return subprocess.run([SIGN, *args], capture_output=True, text=True, timeout=60, cwd=D)


def path(name):
    return os.path.join(D, name)


def setup():
    for who in ("a", "b"):
        r = run("keygen", "--secret", who + ".sec", "--public", who + ".pub")
        expect(r.returncode == 0, "keygen: " + r.stderr)
    with open(path("fw.bin"), "wb") as f:
        f.write(os.urandom(300000))
    r = run("sign", "--secret", "a.sec", "--prefix", "fw/", "--sequence", "5", "fw.bin")
    expect(r.returncode == 0, "sign: " + r.stderr)


def verify(*extra, pub="a.pub"):
    return run("verify", "--public", pub, "--prefix", "fw/", *extra, "fw.bin")


def refused(r, words):
    expect(r.returncode == 1, "exit %d, want 1 (%s)" % (r.returncode, r.stderr.strip()))
    expect(words in r.stderr, "message %r lacks %r" % (r.stderr.strip(), words))
    return r.stderr.strip()


def with_manifest(change, fn):
    """Run fn with the manifest changed by change(bytes), then restore it."""
    m = open(path("fw.bin.pfsm"), "rb").read()
    open(path("fw.bin.pfsm"), "wb").write(change(m))
    try:
        return fn()
    finally:
        open(path("fw.bin.pfsm"), "wb").write(m)


def case_keygen_modes():
    expect(os.stat(path("a.sec")).st_mode & 0o777 == 0o600, "secret key not 0600")
    r = run("keygen", "--secret", "a.sec", "--public", "c.pub")
    return refused(r, "never overwritten")


def case_round_trip():
    r = verify()
    expect(r.returncode == 0, "verify: " + r.stderr)
    expect("sequence 5" in r.stdout, r.stdout)
    return r.stdout.strip()


def case_file_changed():
    data = bytearray(open(path("fw.bin"), "rb").read())
    orig = bytes(data)
    data[1408 * 17 + 3] ^= 0x40
    open(path("fw.bin"), "wb").write(data)
    try:
        return refused(verify(), "chunk 17 does not match its digest")
    finally:
        open(path("fw.bin"), "wb").write(orig)


def case_manifest_byte_changed():
    def flip(m):
        b = bytearray(m)
        b[len(b) // 2] ^= 1
        return bytes(b)
    return with_manifest(flip, lambda: refused(verify(), "signature does not verify"))


def case_truncated():
    return with_manifest(lambda m: m[:-10], lambda: refused(verify(), "truncated manifest"))


def case_untrusted_key():
    return refused(verify(pub="b.pub"), "signed by a key that is not trusted")


def case_two_keys():
    r = run("verify", "--public", "b.pub", "--public", "a.pub", "--prefix", "fw/", "fw.bin")
    expect(r.returncode == 0, "rotation: " + r.stderr)
    return "either of two trusted keys verifies"


def case_other_name():
    r = run("verify", "--public", "a.pub", "--name", "fw/other.bin", "fw.bin")
    return refused(r, "manifest is for another file name")


def case_not_a_key():
    return refused(verify(pub="a.sec"), "not a pfs-ed25519-public file")


def case_usage():
    for args in ([], ["sign", "fw.bin"], ["verify", "fw.bin"], ["frobnicate"],
                 ["sign", "--secret", "a.sec", "--chunk-size", "0", "fw.bin"]):
        r = run(*args)
        expect(r.returncode == 2, "%s: exit %d, want 2" % (args, r.returncode))
        expect(r.stderr.strip(), "%s: no message" % args)
    return "bad command lines exit 2 with a message"


def case_site_key():
    r = run("site-key", "--id", "7", "site.key")
    expect(r.returncode == 0, r.stderr)
    text = open(path("site.key")).read().split()
    expect(text[0] == "pfs-site-key" and text[1] == "7" and len(text[2]) == 64, str(text))
    expect(os.stat(path("site.key")).st_mode & 0o777 == 0o600, "site key not 0600")
    return "site key written 0600"


setup()
rc = run_cases("pfs-sign", [
    ("keygen_modes", case_keygen_modes), ("round_trip", case_round_trip),
    ("file_changed", case_file_changed), ("manifest_byte_changed", case_manifest_byte_changed),
    ("truncated", case_truncated), ("untrusted_key", case_untrusted_key),
    ("two_keys", case_two_keys), ("other_name", case_other_name),
    ("not_a_key", case_not_a_key), ("usage", case_usage), ("site_key", case_site_key),
])
subprocess.run(["rm", "-rf", D])
sys.exit(rc)
