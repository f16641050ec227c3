#!/usr/bin/env python3
"""forge.py - a hostile node on the site (issue "Trust" section 6): for a
while, it sends what the protocol's neighbours would believe if they went by
the sender field alone.

  forge.py MODEL PATH BCAST SECONDS SELF_IP DEVICE_IP...

Every 100 ms: a ROOT of class 15 with the FAILED flag (broadcast; it answers
no JOIN: a silent root), and to each device a HEARTBEAT with FAILED, a DATA
chunk of wrong bytes with a valid CRC32C and a LEAVE, each claiming to come
from every other device in turn (its possible parent). TTL 255, port 4051,
no site key. Runs in a device's namespace (ip netns exec); prints what it
sent."""
import hashlib
import socket
import struct
import sys
import time

PORT = 4051


def crc32c(data, _table=[]):
    if not _table:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _table.append(c)
    c = 0xFFFFFFFF
    for b in data:
        c = _table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def hier_key(model, path):
    k = int.from_bytes(hashlib.sha256(model.encode() + b"\0" + path.encode()).digest()[:8],
                       "big")
    return k or 1


def ip_id(ip):
    return struct.unpack("!I", socket.inet_aton(ip))[0]


def msg(mtype, sender, hier, body):
    return struct.pack("!HBBBBHIQ", 0x5046, 1, mtype, 0, 0, len(body), sender, hier) + body


def root(model, path, sender, hier):
    body = struct.pack("!IIBBH", (15 << 28) | (1 << 27) | 12345, 1, 1, len(model), len(path))
    return msg(2, sender, hier, body + model.encode() + path.encode())


def heartbeat_failed(sender, hier):
    # mflags FAILED, npath 1, chunk 1408, size 0, sha 0, prefix 0, manifest_len 0
    body = struct.pack("!BBHIQ32sII", 0x02, 1, 0, 1408, 0, b"\0" * 32, 0, 0)
    return msg(7, sender, hier, body + struct.pack("!I", sender))


def data(sender, hier, index):
    payload = bytes((index * 7 + i) & 0xFF for i in range(1408))
    return msg(8, sender, hier, struct.pack("!II", index, crc32c(payload)) + payload)


def leave(sender, hier):
    return msg(10, sender, hier, struct.pack("!B3x", 5))


def main():
    model, path, bcast, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    own, devices = ip_id(sys.argv[5]), sys.argv[6:]
    me = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    me.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    me.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
    me.bind(("", PORT))
    hier = hier_key(model, path)
    sent, end, k = 0, time.time() + seconds, 0
    while time.time() < end:
        me.sendto(root(model, path, own, hier), (bcast, PORT))
        sent += 1
        for dst in devices:
            claimed = ip_id(devices[k % len(devices)])     # someone's parent, maybe
            for m in (heartbeat_failed(claimed, hier), data(claimed, hier, k % 64),
                      leave(claimed, hier)):
                me.sendto(m, (dst, PORT))
                sent += 1
        k += 1
        time.sleep(0.1)
    print(sent)


if __name__ == "__main__":
    main()
