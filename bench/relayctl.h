/* relayctl.h - what pfs-relayctl's files share: its options, its counts,
 * and the cache helpers of relayctl_cache.c. */
#ifndef PFS_RELAYCTL_H
#define PFS_RELAYCTL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "pfs_cache.h"
#include "pfs_dp_stats.h"

#define RC_PATHS 8

struct rc_opts {
	const char *segment, *model, *path, *verify, *check_cache, *check_path;
	const char *paths[RC_PATHS];
	unsigned npaths, shard_paths;
	bool hash_cycles, echo, drop_wait;
	uint32_t chunk_size, children, from, self;
	uint64_t file_size, until_chunks;
	int64_t frames;                 /* -1: room to keep every chunk of the files */
	double warmup, seconds, timeout;
};

struct rc_counts {
	uint64_t reports, reported_chunks, to_control;
	uint64_t echoes;                /* datagrams queued for the dataplane to send */
	/* --check-cache: the first path's chunks read back from the cache */
	uint64_t cache_same, cache_differ, cache_kept;
	/* --drop-wait: frames the dataplane still held a while after the
	 * relayed file was dropped (UINT64_MAX: not asked) */
	uint64_t frames_after_drop;
	/* --verify: the dataplane's references on the digests' cache file
	 * while its table stands (it must hold them), and once the table is
	 * deleted (it must give them back); UINT64_MAX: not asked */
	uint64_t digests_held, digests_held_after_delete;
};

extern volatile sig_atomic_t rc_stop;   /* SIGINT or SIGTERM came */
double rc_now_s(void);

/* relayctl_cache.c */
/* --verify: CONTENT's chunk digests as a complete cache entry: its index. */
int rc_put_digests(const struct rc_opts *o, struct pfs_cache *cache, int *out_fi);
/* --verify: the dataplane's references on the digests' entry, now. */
uint64_t rc_digests_held(const struct rc_opts *o, const struct pfs_cache *cache);
/* --check-cache: count the file's chunks as read back from the cache. */
int rc_check_cache(const struct rc_opts *o, const struct pfs_cache *cache,
		   struct rc_counts *n);
/* --drop-wait: drop the relayed files, wait for their frames back. */
void rc_drop_wait(const struct rc_opts *o, struct pfs_cache *cache,
		  const struct pfs_dp_stats *st, struct rc_counts *n);

#endif /* PFS_RELAYCTL_H */
