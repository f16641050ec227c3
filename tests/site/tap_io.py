#!/usr/bin/env python3
"""tap_io.py - the kernel's side of a DPDK net_tap port: send a trace's
frames into the port, capture what the port sends back.

  tap_io.py IFACE IN.pcap OUT.pcap WANT SECONDS

Frames written on IFACE reach the DPDK process as received; frames it sends
arrive on IFACE, where this captures the IPv4 UDP ones to the PFS port
(behind VLAN tags too) until it has WANT of them or SECONDS pass, and writes
them to OUT.pcap, with the outer VLAN tag the kernel took off as it received
them put back where it was (packet sockets report it apart, as auxdata).
Exit 0 with WANT frames, 1 short of them. Runs inside the
test's network namespace (ip netns exec); needs root.
"""
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
PFS_PORT = 4051


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    off, frames = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return frames


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(fr), len(fr)))
            f.write(fr)


def pfs_datagram(fr):
    off = 12
    while fr[off:off + 2] in (b"\x81\x00", b"\x88\xa8"):
        off += 4
    if fr[off:off + 2] != b"\x08\x00" or len(fr) < off + 2 + 28 or fr[off + 11] != 17:
        return False
    udp = off + 2 + (fr[off + 2] & 0x0F) * 4
    return struct.unpack("!H", fr[udp + 2:udp + 4])[0] == PFS_PORT


def with_tag(fr, anc):
    """The frame as it was on the wire: the kernel's stripped tag put back."""
    for level, kind, data in anc:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(data) >= 20:
            status, _, _, _, _, tci, tpid = struct.unpack_from("=IIIHHHH", data)
            if status & TP_STATUS_VLAN_VALID:
                if not status & TP_STATUS_VLAN_TPID_VALID:
                    tpid = 0x8100
                return fr[:12] + struct.pack("!HH", tpid, tci) + fr[12:]
    return fr


def main():
    iface, src, out, want, seconds = sys.argv[1:6]
    want, deadline = int(want), time.monotonic() + float(seconds)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    for fr in read_pcap(src):
        s.send(fr)
    got = []
    while len(got) < want and time.monotonic() < deadline:
        if not select.select([s], [], [], max(0.0, deadline - time.monotonic()))[0]:
            break
        fr, anc, _, addr = s.recvmsg(65535, socket.CMSG_SPACE(32))
        fr = with_tag(fr, anc)
        if addr[2] != PACKET_OUTGOING and pfs_datagram(fr):
            got.append(fr)
    write_pcap(out, got)
    print("%d of %d frames" % (len(got), want))
    return 0 if len(got) >= want else 1


if __name__ == "__main__":
    sys.exit(main())
