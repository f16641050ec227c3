#!/usr/bin/env python3
"""test_dissector.py - the Wireshark dissector (tools/wireshark/pfs.lua)
against the project's own codec, datagram by datagram (issue 13 section 2).

Two captures, each decoded twice: by tshark with the dissector (-T fields)
and by tests/pcap_decode.c (pfs_decode); for every PFS frame the two must
agree on every field both print, and on the error name of a malformed one.

  synthetic  one sample of every message type (tests/gen_corpus), then
             datagrams broken one way each: truncated, bad magic, version,
             type, flags, length, body size, a field, a CRC32C; then 40
             copies of each sample with one random byte changed (seeded):
             whatever the codec calls them, the dissector must too
  site       dumpcap on the site bridge while 6 devices with a site key and
             signed firmware roll out behind the appliance (2 child slots,
             so there are redirects): real tags, manifests, relays

Between them every one of the 13 message types must appear. Also checked:
the CRC32C mismatch is an expert item, and DATA of the site capture is
shown with the model and path of its hierarchy.

    test_dissector.py BUILD_DIR [--no-site]     (the site part needs root)
"""
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LUA = os.path.join(ROOT, "tools", "wireshark", "pfs.lua")
FIELDS = ["pfs.type", "pfs.sender", "pfs.hier", "pfs.error", "pfs.model", "pfs.path",
          "pfs.claim.strength", "pfs.root.strength", "pfs.root.tree_nodes", "pfs.join.subtree",
          "pfs.accept.slot", "pfs.status.size", "pfs.status.npath", "pfs.status.chunk_size",
          "pfs.status.manifest_len", "pfs.redirect.target_id", "pfs.redirect.target_port",
          "pfs.reason", "pfs.refuse.answers", "pfs.data.index", "pfs.data.len", "pfs.ack.cum", "pfs.ack.limit",
          "pfs.ack.nranges", "pfs.ack.ranges", "pfs.mreq.offset", "pfs.mreq.total",
          "pfs.manifest.offset", "pfs.manifest.total", "pfs.relay.strength",
          "pfs.relay.hold_ms", "pfs.tag.key_id", "pfs.tag.seq"]
TYPES = ["CLAIM", "ROOT", "JOIN", "ACCEPT", "REDIRECT", "REFUSE", "HEARTBEAT", "DATA", "ACK",
         "LEAVE", "MREQ", "MANIFEST", "RELAY"]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("not ok: " + what, flush=True)


def frame(dgram, src=0x0a58000b, dst=0x0a5800ff):
    """An Ethernet/IPv4/UDP frame to port 4051 around dgram."""
    udp = struct.pack("!HHHH", 4051, 4051, 8 + len(dgram), 0) + dgram
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(udp), 0, 0, 255, 17, 0, src, dst)
    return b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(fr), len(fr)) + fr)


def broken(samples):
    """(what, datagram) broken one way each, from valid samples."""
    claim, data = bytearray(samples["CLAIM"]), bytearray(samples["DATA"])

    def with_(b, off, val):
        b = bytearray(b)
        b[off] = val
        return bytes(b)
    short_body = bytearray(claim[:26])
    struct.pack_into("!H", short_body, 6, len(short_body) - 20)
    bad_crc = bytearray(data)
    bad_crc[-1] ^= 0x40
    return [("truncated header", bytes(claim[:10])),
            ("bad magic", with_(claim, 0, 0x51)),
            ("unsupported version", with_(claim, 2, 2)),
            ("unknown message type", with_(claim, 3, 14)),
            ("unknown message type", with_(claim, 3, 0)),
            ("bad header flags", with_(claim, 4, 0x02)),
            ("length mismatch", bytes(claim) + b"\0"),
            ("bad body size", bytes(short_body)),
            ("field out of range", bytes(claim[:8]) + b"\0\0\0\0" + bytes(claim[12:])),
            ("chunk CRC32C mismatch", bytes(bad_crc))]


def tshark(pcap):
    """{frame number: {field: value}} as the dissector reads pcap."""
    cmd = ["tshark", "-X", "lua_script:" + LUA, "-r", pcap, "-Y", "pfs", "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=a", "-e", "frame.number"]
    for fld in FIELDS:
        cmd += ["-e", fld]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0 or "Lua" in r.stderr:
        raise SystemExit("tshark failed: %s" % r.stderr[-2000:])
    out = {}
    for line in r.stdout.splitlines():
        cols = line.split("\t")
        out[int(cols[0])] = {k: v for k, v in zip(FIELDS, cols[1:]) if v != ""}
    return out


def codec(build, pcap):
    """The same, as pfs_decode reads it."""
    r = subprocess.run([os.path.join(build, "tests", "pcap_decode"), pcap], capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0:
        raise SystemExit("pcap_decode failed: %s" % r.stderr)
    out = {}
    for line in r.stdout.splitlines():
        kv = dict(p.split("=", 1) for p in line.split("\t"))
        out[int(kv.pop("frame"))] = kv
    return out


def norm(v):
    try:
        return int(v, 0)
    except ValueError:
        return v


def compare(name, build, pcap):
    """Frame by frame; returns the dissector's reading."""
    ws, cd = tshark(pcap), codec(build, pcap)
    check(set(ws) == set(cd), "%s: frames differ: dissector %d, codec %d (only dissector %s, "
          "only codec %s)" % (name, len(ws), len(cd), sorted(set(ws) - set(cd))[:5],
                              sorted(set(cd) - set(ws))[:5]))
    bad = 0
    for n in sorted(set(ws) & set(cd)):
        w, c = ws[n], cd[n]
        if "pfs.error" in c or "pfs.error" in w:
            same = w.get("pfs.error") == c.get("pfs.error")
        else:
            same = all(k in w and norm(w[k]) == norm(v) for k, v in c.items())
        if not same and bad < 5:
            check(False, "%s frame %d: dissector %s, codec %s" % (name, n, w, c))
        bad += not same
    check(bad == 0, "%s: %d of %d frames disagree" % (name, bad, len(cd)))
    print("%s: %d PFS frames, %d agree" % (name, len(cd), len(cd) - bad), flush=True)
    return ws


def types_in(ws):
    return {int(v["pfs.type"]) for v in ws.values() if "pfs.type" in v and "pfs.error" not in v}


def synthetic(build, tmp):
    corpus = os.path.join(tmp, "corpus")
    os.makedirs(corpus)
    subprocess.run([os.path.join(build, "tests", "gen_corpus"), corpus], check=True)
    samples = {t: open(os.path.join(corpus, t), "rb").read() for t in TYPES}
    cases = broken(samples)
    rng, flipped = random.Random(4051), []
    for t in TYPES:
        for _ in range(40):
            d = bytearray(samples[t])
            d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
            flipped.append(bytes(d))
    pcap = os.path.join(tmp, "synthetic.pcap")
    write_pcap(pcap, [frame(samples[t]) for t in TYPES] + [frame(d) for _, d in cases] +
               [frame(d) for d in flipped])
    ws = compare("synthetic", build, pcap)
    names = {v.get("pfs.error") for n, v in ws.items() if n > len(TYPES) + len(cases)}
    check(len(names - {None}) >= 5 and None in names,
          "synthetic: the flipped datagrams are not varied enough: %s" % names)
    print("synthetic: flipped bytes gave %s" % sorted(n or "valid" for n in names))
    for i, (what, _) in enumerate(cases):
        got = ws.get(len(TYPES) + 1 + i, {}).get("pfs.error")
        check(got == what, "synthetic: %r named %r" % (what, got))
    # The CRC mismatch is an expert item, with its own text.
    r = subprocess.run(["tshark", "-X", "lua_script:" + LUA, "-r", pcap, "-z", "expert,error",
                        "-q"], capture_output=True, text=True, timeout=120)
    check("does not match its CRC32C" in r.stdout and "Malformed: bad magic" in r.stdout,
          "expert info: %s" % r.stdout[-800:])
    return types_in(ws)


def site_capture(build, tmp):
    sys.path.insert(0, os.path.join(HERE, "site"))
    import pfs_site as S
    from appliance import Appliance
    pcap = os.path.join(tmp, "site.pcap")
    with S.Site(6, ["CP-8845"], {"fw/cap.bin": 120 * 1024 + 7}, site_key=True) as site:
        app = Appliance(site, max_children=2)
        app.start()
        cap = subprocess.Popen(["ip", "netns", "exec", site.prefix + "-site", "dumpcap", "-i",
                                "br0", "-f", "udp port 4051", "-P", "-w", pcap],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            line = ""
            while "Capturing on" not in line:       # dumpcap says so once it listens
                line = cap.stderr.readline()
                if not line:
                    raise SystemExit("dumpcap did not start")
            for d in site.devices:
                d.start(["fw/cap.bin"])
            check(site.wait(90), "site: devices did not finish")
            check(not S.check_outputs(site), "site: %s" % S.check_outputs(site))
        finally:
            cap.send_signal(signal.SIGINT)          # dumpcap flushes and exits
            cap.wait(30)
    ws = compare("site", build, pcap)
    check(any("pfs.tag.seq" in v for v in ws.values()), "site: no site-key tag decoded")
    # DATA frames named with the hierarchy's model and path (learnt from JOIN).
    r = subprocess.run(["tshark", "-X", "lua_script:" + LUA, "-r", pcap, "-Y", "pfs.type == 8",
                        "-T", "fields", "-e", "pfs.hier.model", "-e", "pfs.hier.path"],
                       capture_output=True, text=True, timeout=300)
    named = [ln for ln in r.stdout.splitlines() if ln == "CP-8845\tfw/cap.bin"]
    check(named and len(named) >= len(r.stdout.splitlines()) // 2,
          "site: DATA not shown with its model and path: %s" % r.stdout[:300])
    return types_in(ws)


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: test_dissector.py BUILD_DIR [--no-site]")
    build = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="pfs-dissector-") as tmp:
        seen = synthetic(build, tmp)
        if "--no-site" not in sys.argv:
            site_types = site_capture(build, tmp)
            print("site capture types: %s" % sorted(TYPES[t - 1] for t in site_types))
            seen |= site_types
    missing = [TYPES[t - 1] for t in range(1, 14) if t not in seen]
    check(not missing, "message types never decoded: %s" % missing)
    print("dissector: %s" % ("ok" if not failures else "%d failure(s)" % len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
