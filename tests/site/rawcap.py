#!/usr/bin/env python3
"""rawcap.py - capture PFS election frames on an interface and replay them
byte for byte later (the replay attack of issue "Trust" section 7 (c)).

  rawcap.py capture IFACE SECONDS OUT   CLAIM and ROOT frames seen, to OUT
  rawcap.py replay IFACE IN             send them again, unchanged

Runs inside a device's network namespace (ip netns exec); needs root."""
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PFS_PORT = 4051


def election_frame(fr):
    """An IPv4/UDP datagram to the PFS port carrying a CLAIM or a ROOT."""
    if len(fr) < 14 + 20 + 8 + 20 or fr[12:14] != b"\x08\x00" or fr[23] != 17:
        return False
    ihl = (fr[14] & 0x0F) * 4
    udp = 14 + ihl
    if len(fr) < udp + 8 + 20:
        return False
    dport = struct.unpack("!H", fr[udp + 2:udp + 4])[0]
    return dport == PFS_PORT and fr[udp + 8 + 3] in (1, 2)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def wire_checksums(fr):
    """The frame as a wire would carry it. Between veths a locally sent
    datagram keeps a partial UDP checksum (the offload never ran), so a
    capture here holds one that a receiver would refuse; an attacker on a
    real link captures finished checksums."""
    fr = bytearray(fr)
    ihl = (fr[14] & 0x0F) * 4
    udp = 14 + ihl
    ulen = struct.unpack("!H", fr[udp + 4:udp + 6])[0]
    fr[24:26] = b"\0\0"
    fr[24:26] = struct.pack("!H", csum(bytes(fr[14:udp])))
    fr[udp + 6:udp + 8] = b"\0\0"
    pseudo = bytes(fr[26:34]) + struct.pack("!BBH", 0, 17, ulen)
    c = csum(pseudo + bytes(fr[udp:udp + ulen])) or 0xFFFF
    fr[udp + 6:udp + 8] = struct.pack("!H", c)
    return bytes(fr)


def capture(iface, seconds, out):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.settimeout(0.1)
    frames, end = [], time.time() + seconds
    while time.time() < end:
        try:
            fr, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] != socket.PACKET_OUTGOING and election_frame(fr):
            frames.append(wire_checksums(fr))
    with open(out, "wb") as f:
        for fr in frames:
            f.write(struct.pack("!H", len(fr)) + fr)
    print(len(frames))


def replay(iface, path):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    data, n = open(path, "rb").read(), 0
    while data:
        ln = struct.unpack("!H", data[:2])[0]
        s.send(data[2:2 + ln])
        data, n = data[2 + ln:], n + 1
    print(n)


if __name__ == "__main__":
    if sys.argv[1] == "capture":
        capture(sys.argv[2], float(sys.argv[3]), sys.argv[4])
    else:
        replay(sys.argv[2], sys.argv[3])
