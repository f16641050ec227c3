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
    checking each copy. what names the server in errors."""
    size, digest = site.files[path]
    done, procs, errors = {}, [], []
    t0 = time.time()

    def wait(idx, out, p):
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
        elif os.path.getsize(out) != size or S.sha256(out) != digest:
            errors.append("d%d: the copy from %s differs from the server's" % (idx, what))

    for d in site.devices:
        os.makedirs(d.out, exist_ok=True)
        out = os.path.join(d.out, os.path.basename(path))
        p = S.spawn_in(d.ns, command(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
        t = threading.Thread(target=wait, args=(d.idx, out, p))
        t.start()
        procs.append(t)
    for t in procs:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors[:5]))
    return done
