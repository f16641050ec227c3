"""legacy_clients.py - devices that only speak TFTP or HTTP, all asking at
once, for bench/site_rollout.py: plain TFTP clients (tftp-hpa, RFC 1350's
512-byte lock-step blocks, as older phones and cameras) and HTTP clients
(curl). Each runs in its device's namespace; each copy is checked against
the server's.
"""
import os
import subprocess
import threading
import time

import pfs_site as S


def tftp_cmd(host, path, out):
    return ["tftp", "-m", "binary", host, "-c", "get", path, out]


def curl_cmd(url, out, timeout):
    return ["curl", "-sS", "--fail", "-m", str(timeout), "-o", out, url]


def fetch_all(site, path, command, timeout, what):
    """Every device runs command(out) at once; returns {device index:
    seconds from the start of all requests to that client's exit}, after
    checking each copy. what names the server in errors. The copies are
    checked once every client has exited: hashing the first ones while the
    rest still download took the shared CPU from them (0.5 GB of SHA-256
    at 64 devices), which pfs-peer's devices, checked after the rollout,
    were not charged."""
    size, digest = site.files[path]
    done, procs, errors, outs, exited_ok = {}, [], [], {}, []
    t0 = time.time()

    def wait(idx, p):
        try:
            _, err = p.communicate(timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            errors.append("d%d: no copy within %d s" % (idx, timeout))
            return
        done[idx] = time.time() - t0
        if p.returncode != 0:
            errors.append("d%d: exit %d: %s" % (idx, p.returncode, err.strip()[-200:]))
        else:
            exited_ok.append(idx)

    for d in site.devices:
        os.makedirs(d.out, exist_ok=True)
        outs[d.idx] = os.path.join(d.out, os.path.basename(path))
        p = S.spawn_in(d.ns, command(outs[d.idx]), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
        t = threading.Thread(target=wait, args=(d.idx, p))
        t.start()
        procs.append(t)
    for t in procs:
        t.join()
    for idx in sorted(exited_ok):
        out = outs[idx]
        if not os.path.exists(out) or os.path.getsize(out) != size or S.sha256(out) != digest:
            errors.append("d%d: the copy from %s differs from the server's" % (idx, what))
    if errors:
        raise RuntimeError("; ".join(errors[:5]))
    return done
