/* verify.h - chunk digests on the dataplane's fast path (docs/appliance.md
 * 2.3): the SHA-256/128 of a payload, checked against the signed digest
 * pfs-control placed in the cache, before the chunk is stored or relayed.
 * OpenSSL's SHA-256 (SHA extensions where the CPU has them) on a context made
 * once: no allocation per chunk. Shared with pfs-relayctl, which times the
 * hash alone in the same run as the relay (bench/relay_bench.py). */
#ifndef DP_VERIFY_H
#define DP_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pfs_manifest.h"

struct dp_verifier;

struct dp_verifier *dp_verifier_new(void);
void dp_verifier_free(struct dp_verifier *v);
/* out = first 16 bytes of SHA-256(p[0..n)); 0 or -EIO. */
int dp_digest(struct dp_verifier *v, const void *p, size_t n, uint8_t out[PFS_MAN_DIGEST_LEN]);

#endif /* DP_VERIFY_H */
