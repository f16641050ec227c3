/* shard.h - which worker of a dataplane owns a hierarchy (workers.c).
 *
 * A hash, not a table, so that every worker computes it alone, and so do
 * the tools that build traces for a given worker (bench/pfs_relayctl.c).
 */
#ifndef PFS_DP_SHARD_H
#define PFS_DP_SHARD_H

#include <stdint.h>

/* The worker of n that owns hierarchy hier: its fan-out table, its
 * children's ranges, its chunks' relay. Fibonacci hashing: hierarchy keys
 * are hashes already, but nothing promises their low bits are spread. */
static inline unsigned dp_shard(uint64_t hier, unsigned n)
{
	return n <= 1 ? 0 : (unsigned)(((hier * 0x9e3779b97f4a7c15ull) >> 32) % n);
}

#endif /* PFS_DP_SHARD_H */
