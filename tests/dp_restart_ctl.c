/* dp_restart_ctl.c - a pfs-control that restarts while the dataplane still
 * sends what it asked for (tests/test_dataplane_frames.py control_restart).
 *
 *   dp_restart_ctl SEGMENT
 *
 * Lays out SEGMENT as control, puts a complete file of CHUNKS chunks in the
 * cache, sends CONFIG and one range of every chunk for child A, which the
 * dataplane paces (the test runs it with --child-rate). Once the dataplane
 * has sent a few, it detaches and attaches again, as a restarted pfs-control
 * does (its generation moves), and sends CONFIG again, then a range for
 * child B stamped with the old generation (a straggler: must be dropped)
 * and one for child C with the new one (must be sent whole). It waits until
 * the dataplane has dropped the straggler and has nothing left to send,
 * and, after a new version of the file is put in the same slot under the
 * same key, a range of it for child D (sent with its own CRCs, not the old
 * version's), and prints the dataplane's counters as one JSON line. Exit 1
 * on a timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pfs_cache.h"
#include "pfs_codec.h"
#include "pfs_dp_stats.h"
#include "pfs_shm.h"

#define CHUNK   1408
#define CHUNKS  400
#define SELF_IP 0x0a630002u
#define CHILD_A 0x0a630101u
#define CHILD_B 0x0a630102u
#define CHILD_C 0x0a630103u
#define CHILD_D 0x0a630104u
#define C_CHUNKS 20

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t generation(struct pfs_shm *s)
{
	struct pfs_shm_side_info self;

	pfs_shm_self(s, &self);
	return self.generation;
}

static int send_config(struct pfs_shm *s)
{
	struct pfs_ring_msg m = { .type = PFS_RMSG_CONFIG, .ip = SELF_IP, .slot = SELF_IP | 0xff,
				  .value = SELF_IP, .port = PFS_PORT, .hier = generation(s) };
	return pfs_shm_send(s, &m);
}

static int send_range(struct pfs_shm *s, uint64_t hier, int fi, uint32_t child, uint32_t count,
		      uint64_t gen)
{
	struct pfs_ring_msg m = { .type = PFS_RMSG_SEND_CHUNKS, .ip = child, .port = PFS_PORT,
				  .slot = (uint32_t)fi, .hier = hier, .value = count };
	struct pfs_rmsg_range body = { .entry = hier, .generation = gen };

	m.len = sizeof(body);
	memcpy(m.data, &body, sizeof(body));
	return pfs_shm_send(s, &m);
}

/* Beat (the dataplane watches our liveness) until cond holds or 20 s pass. */
#define WAIT_FOR(s, cond, what)                                                         \
	do {                                                                            \
		double until_ = now_s() + 20;                                           \
		while (!(cond)) {                                                       \
			if (now_s() > until_) {                                         \
				fprintf(stderr, "dp_restart_ctl: timed out waiting for %s\n", \
					what);                                          \
				goto out;                                               \
			}                                                               \
			pfs_shm_beat(s, (uint64_t)(now_s() * 1e9));                     \
			usleep(1000);                                                   \
		}                                                                       \
	} while (0)

static int attach(const char *seg, struct pfs_shm **s, struct pfs_cache **cache)
{
	struct pfs_shm_params p = { .ring_count = 1024, .cache_bytes = 16u << 20 };
	uint64_t bytes;
	int rc;

	if ((rc = pfs_shm_attach(seg, PFS_SHM_CONTROL, &p, s)) < 0) {
		fprintf(stderr, "dp_restart_ctl: %s: %s\n", seg, strerror(-rc));
		return -1;
	}
	void *region = pfs_shm_cache(*s, &bytes);       /* sets bytes: not in the call */

	if ((rc = pfs_cache_open(region, bytes, 0, true, cache)) < 0) {
		fprintf(stderr, "dp_restart_ctl: cache: %s\n", strerror(-rc));
		pfs_shm_detach(*s);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static uint8_t file[CHUNK * CHUNKS];
	const uint8_t sha[32] = { 0 };
	uint64_t hier = pfs_hier_key("CP-7961G", 8, "fw/restart.bin", 14), old_gen, tx0;
	struct pfs_shm *s = NULL;
	struct pfs_cache *cache = NULL;
	const struct pfs_dp_stats *st;
	int fi, status = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: dp_restart_ctl SEGMENT\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(file); i++)
		file[i] = (uint8_t)(i * 7 + i / CHUNK);
	if (attach(argv[1], &s, &cache) < 0) {
		fprintf(stderr, "dp_restart_ctl: cannot lay out %s\n", argv[1]);
		return 1;
	}
	fi = pfs_cache_create(cache, hier, "CP-7961G", "fw/restart.bin", CHUNK);
	if (fi < 0 || pfs_cache_write(cache, fi, 0, file, sizeof(file)) < 0 ||
	    pfs_cache_complete(cache, fi, sizeof(file), sha) < 0) {
		fprintf(stderr, "dp_restart_ctl: cannot cache the file\n");
		goto out;
	}
	st = pfs_shm_stats(s);
	old_gen = generation(s);
	if (send_config(s) < 0 || send_range(s, hier, fi, CHILD_A, CHUNKS, old_gen) < 0)
		goto out;
	WAIT_FOR(s, st->magic == PFS_DP_STATS_MAGIC && st->tx_chunks >= 5,
		 "the dataplane to send child A's first chunks");

	/* The restart: detach, attach again (the generation moves). */
	pfs_cache_close(cache);
	pfs_shm_detach(s);
	cache = NULL;
	if (attach(argv[1], &s, &cache) < 0) {
		s = NULL;
		fprintf(stderr, "dp_restart_ctl: cannot attach again\n");
		goto out;
	}
	st = pfs_shm_stats(s);
	if (generation(s) == old_gen || send_config(s) < 0 ||
	    send_range(s, hier, fi, CHILD_B, 10, old_gen) < 0 ||
	    send_range(s, hier, fi, CHILD_C, C_CHUNKS, generation(s)) < 0) {
		fprintf(stderr, "dp_restart_ctl: generation did not move, or ring full\n");
		goto out;
	}
	/* from_control moves once the dataplane has handled a whole batch:
	 * all five messages taken, then child C's range run out. */
	WAIT_FOR(s, st->from_control >= 5 && st->children == 0,
		 "the straggler dropped and child C served");

	/* A new version of the file under the same name: its entry takes the
	 * slot the old one left, under the same key; what the dataplane
	 * computed per chunk of the old one must not be used for it. */
	for (size_t i = 0; i < sizeof(file); i++)
		file[i] ^= 0xA5;
	tx0 = st->tx_chunks;
	if (pfs_cache_create(cache, hier, "CP-7961G", "fw/restart.bin", CHUNK) != fi ||
	    pfs_cache_write(cache, fi, 0, file, sizeof(file)) < 0 ||
	    pfs_cache_complete(cache, fi, sizeof(file), sha) < 0 ||
	    send_range(s, hier, fi, CHILD_D, C_CHUNKS, generation(s)) < 0) {
		fprintf(stderr, "dp_restart_ctl: the new version is not in the old one's slot\n");
		goto out;
	}
	WAIT_FOR(s, st->tx_chunks >= tx0 + C_CHUNKS && st->children == 0,
		 "child D served the new version");
	printf("{\"tx_chunks\": %llu, \"stale_ranges\": %llu, \"queue_drops\": %llu, "
	       "\"chunk_missing\": %llu}\n", (unsigned long long)st->tx_chunks,
	       (unsigned long long)st->stale_ranges, (unsigned long long)st->queue_drops,
	       (unsigned long long)st->chunk_missing);
	status = 0;
out:
	if (cache)
		pfs_cache_close(cache);
	if (s)
		pfs_shm_detach(s);
	return status;
}
