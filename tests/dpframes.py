"""dpframes.py - frames for the dataplane's frame-by-frame tests.

What tests/test_dataplane_frames.py builds its cases from: the build's
programs, CRC32C and the Internet checksum, pcap files in and out, frames
mangled (bad CRC, TTL, port, UDP checksum) or tagged (802.1Q, QinQ), one
relay run (pfs-dataplane on net_pcap with pfs-relayctl as its control), and
the byte-for-byte check of what it sent.
"""
import json
import os
import struct
import subprocess

from caserun import expect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
GEN = os.path.join(BUILD, "bench", "pfs-gen")
RELAYCTL = os.path.join(BUILD, "bench", "pfs-relayctl")
DATAPLANE = os.path.join(BUILD, "dataplane", "pfs-dataplane")
RESTART_CTL = os.path.join(BUILD, "tests", "dp_restart_ctl")
TESTPMD = "dpdk-testpmd"
CHILDREN = 3
LAST_LOG = [""]                 # the last relay()'s dataplane output
SELF_IP = 0x0A630002            # pfs-relayctl's defaults (node id = address)
PARENT_IP = 0x0A630001


def crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_T = crc32c_table()


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = CRC_T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off, frames = 24, []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack_from(endian + "IIII", data, off)
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return data[:24], frames


def write_pcap(path, header, frames):
    with open(path, "wb") as f:
        f.write(header)
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(fr), len(fr)))
            f.write(fr)


def fix_ip_checksum(fr):
    fr[24:26] = b"\0\0"
    fr[24:26] = struct.pack("!H", ~csum(bytes(fr[14:34])) & 0xFFFF)


def fix_udp_checksum(fr):
    """As a sender computes it, over whatever the datagram holds."""
    ip = bytes(fr[14:34])
    ulen = struct.unpack("!H", fr[38:40])[0]
    fr[40:42] = b"\0\0"
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, ulen)
    fr[40:42] = struct.pack("!H", (~csum(pseudo + bytes(fr[34:34 + ulen])) & 0xFFFF) or 0xFFFF)


def add_bad_frames(frames):
    """A bad CRC (a payload byte wrong under a UDP checksum computed over
    it: the CRC32C is what catches it), a TTL of 64, a datagram to another
    port, a DATA header whose AUTH tag length does not add up (it once made
    the payload length wrap): never relayed, each counted."""
    bad_crc = bytearray(frames[1])
    bad_crc[-1] ^= 0xFF
    fix_udp_checksum(bad_crc)
    ttl = bytearray(frames[2])
    ttl[22] = 64
    fix_ip_checksum(ttl)
    port = bytearray(frames[3])
    port[36:38] = struct.pack("!H", 53)
    auth = bytearray(frames[4])
    auth[46:48] = bytes([1, 4])     # PFS flags AUTH, auth_len 4: not in the length
    return frames + [bytes(bad_crc), bytes(ttl), bytes(port), bytes(auth)]


def relay(work, tag, chunk, size, nframes, dp_args, ctl_args=(), queues=1, segment=None,
          keep_segment=False):
    """One run; with queues > 1, a worker per queue (--workers), each queue
    its own trace (in-Q.pcap) and capture: the captures' frames, a list.
    segment/keep_segment: a run that leaves its segment to the next."""
    seg = segment or "/dev/shm/pfs-frames-%d-%s" % (os.getpid(), tag)
    out = os.path.join(work, tag + ".pcap")
    vdev = "net_pcap0,rx_pcap=%s,tx_pcap=%s" % (os.path.join(work, "in.pcap"), out)
    if queues > 1:
        outs = [os.path.join(work, "%s-%d.pcap" % (tag, q)) for q in range(queues)]
        vdev = "net_pcap0," + ",".join(
            ["rx_pcap=%s" % os.path.join(work, "in-%d.pcap" % q) for q in range(queues)] +
            ["tx_pcap=%s" % o for o in outs])
        dp_args = list(dp_args) + ["--workers", str(queues)]
    ctl = subprocess.Popen([RELAYCTL, "--segment", seg, "--chunk-size", str(chunk),
                            "--file-size", str(size), "--children", str(CHILDREN),
                            "--until-chunks", str(nframes), "--timeout", "30"] + list(ctl_args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dp = subprocess.Popen([DATAPLANE, "--no-huge", "-m", "256", "--no-pci", "--no-shconf",
                           "--file-prefix", "pfsframes%d" % os.getpid(),
                           "-l", "1" if queues == 1 else "0-%d" % (queues - 1),
                           "--log-level=lib.eal:error", "--vdev", vdev,
                           "--", "--segment", seg] + dp_args,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        cout, cerr = ctl.communicate(timeout=60)
    finally:
        dp.send_signal(2)
        try:
            dlog = dp.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            dp.kill()
            dlog = dp.communicate()[0]
        if os.path.exists(seg) and not keep_segment:
            os.unlink(seg)
    expect(ctl.returncode == 0, "%s: pfs-relayctl: %s %s" % (tag, cerr.strip(), dlog[-500:]))
    expect(dp.returncode == 0, "%s: pfs-dataplane exited %s: %s" % (tag, dp.returncode,
                                                                  dlog[-500:]))
    LAST_LOG[0] = dlog
    mode = "zero-copy" if "zero-copy" in dlog else "copied"
    totals = json.loads(cout)
    # Chained payloads point into the cache: registered with DPDK (IOVA = VA
    # here, --no-huge on virtual devices), every one with a valid IOVA.
    if mode == "zero-copy":
        expect("cache registered with DPDK, IOVA = VA" in dlog and totals["tx_bad_iova"] == 0,
               "%s: chained payloads without a valid IOVA (%d): %s" % (
                   tag, totals["tx_bad_iova"], dlog[-400:]))
    if queues > 1:
        return totals, [read_pcap(o)[1] for o in outs], mode
    return totals, read_pcap(out)[1], mode


def zero_udp_checksums(frames):
    """As a sender that leaves the UDP checksum out (0): legal on IPv4."""
    out = []
    for fr in frames:
        fr = bytearray(fr)
        fr[40:42] = b"\0\0"
        out.append(bytes(fr))
    return out


def break_udp_checksum(frames, n):
    """Frame n's UDP checksum made wrong; its payload and CRC stay good."""
    fr = bytearray(frames[n])
    fr[40] ^= 0x5A
    return frames[:n] + [bytes(fr)] + frames[n + 1:]


# VLANs (dataplane/vlan.h): the parent's chunks come tagged; two children
# are heard first, each with its own tags (one as the parent's, so the
# received frame can go on to it; one QinQ); the third is never heard and
# gets --vlan's tag, as broadcasts do.
TAG_PARENT = [(0x8100, (5 << 13) | 100)]                # PCP 5, VID 100
VLAN_KIDS = {0x0A630101: (bytes.fromhex("020000000101"), TAG_PARENT),
             0x0A630102: (bytes.fromhex("020000000102"), [(0x88A8, 10), (0x8100, 200)])}
VLAN_DEFAULT = "300"
TAG_DEFAULT = [(0x8100, 300)]
BCAST_MAC = b"\xff" * 6


def tag_frame(fr, tags):
    return fr[:12] + b"".join(struct.pack("!HH", tp, tci) for tp, tci in tags) + fr[12:]


def untag_frame(fr):
    """(tags, the frame without them)."""
    off, tags = 12, []
    while struct.unpack_from("!H", fr, off)[0] in (0x8100, 0x88A8):
        tags.append(struct.unpack_from("!HH", fr, off))
        off += 4
    return tags, fr[:12] + fr[off:]


def heard_from(frame, ip, mac, tags):
    """A datagram from a child (frame's, with its addresses and PFS sender):
    the dataplane learns its MAC and tags, and hands it to control."""
    fr = bytearray(frame)
    fr[6:12] = mac
    fr[26:30] = struct.pack("!I", ip)
    fr[50:54] = struct.pack("!I", ip)        # PFS sender
    fix_ip_checksum(fr)
    fix_udp_checksum(fr)
    return tag_frame(bytes(fr), tags)


def vlan_frames(frames):
    """Two children heard, then the parent's frames (bad ones too), tagged."""
    kids = [heard_from(frames[0], ip, mac, tags) for ip, (mac, tags) in VLAN_KIDS.items()]
    return kids + [tag_frame(fr, TAG_PARENT) for fr in frames]


def check_echoes(echoes):
    """pfs-relayctl --echo sent each heard datagram back and broadcast it:
    back with the child's own MAC and tags, broadcast with --vlan's."""
    want = sorted([(mac, tags, ip) for ip, (mac, tags) in VLAN_KIDS.items()] +
                  [(BCAST_MAC, TAG_DEFAULT, ip) for ip in VLAN_KIDS])
    got = sorted((fr[:6], tags, struct.unpack("!I", fr[50:54])[0]) for tags, fr in echoes)
    expect(got == want, "datagrams sent: %s, want %s" % (got, want))


def check_frames(frames, content, chunk, hier, bad_csum_idx=None, vlan=False, children=None):
    """Every frame right, and every chunk to every child but bad_csum_idx,
    whose frame came with a wrong UDP checksum: dropped on receipt. vlan:
    each child's copies carry its tags and MAC (VLAN_KIDS), or --vlan's tag
    and the broadcast MAC; the echoed datagrams are checked apart. children:
    the numbers (x in 10.99.1.x) of the children sent to, default 1..CHILDREN."""
    nchunks = (len(content) + chunk - 1) // chunk
    seen, echoes = {}, []
    for n, fr in enumerate(frames):
        where = "frame %d" % n
        tags, fr = untag_frame(fr)
        expect(vlan or not tags, where + ": tagged %s" % tags)
        if vlan and struct.unpack("!I", fr[50:54])[0] in VLAN_KIDS:
            echoes.append((tags, fr))
            continue
        expect(fr[12:14] == b"\x08\x00", where + ": not IPv4")
        ip = fr[14:34]
        expect(ip[0] == 0x45 and ip[8] == 255 and ip[9] == 17, where + ": IP header")
        expect(csum(ip) == 0xFFFF, where + ": IP header checksum")
        tot = struct.unpack("!H", ip[2:4])[0]
        expect(len(fr) == 14 + tot, where + ": IP length")
        src, dst = struct.unpack("!II", ip[12:20])
        expect(src == SELF_IP, where + ": source %08x" % src)
        if vlan:
            mac, kid_tags = VLAN_KIDS.get(dst, (BCAST_MAC, TAG_DEFAULT))
            expect(tags == kid_tags and fr[:6] == mac,
                   where + ": to %08x with tags %s, MAC %s" % (dst, tags, fr[:6].hex()))
        udp = fr[34:14 + tot]
        sport, dport, ulen, _ = struct.unpack("!HHHH", udp[:8])
        expect(sport == 4051 and dport == 4051 and ulen == len(udp), where + ": UDP header")
        pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, ulen)
        pfs = udp[8:]
        expect(struct.unpack("!H", udp[6:8])[0] != 0, where + ": UDP checksum left out")
        expect(csum(pseudo + udp) == 0xFFFF, where + ": UDP checksum")
        magic, ver, typ, flags, alen, blen, sender, h = struct.unpack("!HBBBBHIQ", pfs[:20])
        expect(magic == 0x5046 and ver == 1 and flags == 0 and alen == 0, where + ": PFS header")
        expect(sender == SELF_IP and h == hier, where + ": sender/hierarchy")
        idx, crc = struct.unpack("!II", pfs[20:28])
        payload = pfs[28:]
        expect(blen == 8 + len(payload), where + ": body_len")
        expect(idx < nchunks, where + ": index %d" % idx)
        expect(payload == content[idx * chunk:(idx + 1) * chunk], where + ": payload of %d" % idx)
        expect(crc == crc32c(payload), where + ": CRC32C of %d" % idx)
        key = (dst, idx)
        expect(key not in seen, where + ": chunk %d sent twice to %08x" % (idx, dst))
        seen[key] = True
    kids = {0x0A630100 + i for i in (children or range(1, CHILDREN + 1))}
    want = {(k, i) for k in kids for i in range(nchunks) if i != bad_csum_idx}
    expect(set(seen) == want, "%d of %d (child, chunk) pairs sent" % (len(seen), len(want)))
    if vlan:
        check_echoes(echoes)

