/* relayctl_cache.c - pfs-relayctl's dealings with the cache beyond the
 * fan-out table: the signed digests a verified manifest leaves there
 * (--verify), reading a file back as pfs-control does (--check-cache), and
 * dropping the relayed files to see the dataplane give their frames back
 * (--drop-wait). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pfs_codec.h"
#include "pfs_manifest.h"
#include "pfs_wire.h"
#include "relayctl.h"

/* The digests of CONTENT's chunks, as a complete cache entry: what pfs-control
 * keeps of a verified manifest (there the list starts after its header). */
int rc_put_digests(const struct rc_opts *o, struct pfs_cache *cache, int *out_fi)
{
	uint64_t n = (o->file_size + o->chunk_size - 1) / o->chunk_size;
	uint8_t *data = malloc(o->file_size), *dig = malloc(n * PFS_MAN_DIGEST_LEN), sha[32] = { 0 };
	FILE *f = fopen(o->verify, "rb");
	char name[PFS_FILEPATH_MAX + 8];
	int fi = -1, rc = -1;

	if (!data || !dig || !f || fread(data, 1, o->file_size, f) != o->file_size) {
		fprintf(stderr, "pfs-relayctl: --verify %s: cannot read %llu bytes\n", o->verify,
			(unsigned long long)o->file_size);
		goto out;
	}
	for (uint64_t i = 0; i < n; i++) {
		uint64_t off = i * o->chunk_size;
		pfs_chunk_digest(data + off, o->file_size - off < o->chunk_size ?
				 o->file_size - off : o->chunk_size, dig + i * PFS_MAN_DIGEST_LEN);
	}
	snprintf(name, sizeof(name), "%s.pfsm", o->path);
	fi = pfs_cache_create(cache, pfs_hier_key(o->model, strlen(o->model), name, strlen(name)),
			      o->model, name, 1024);
	if (fi < 0 || pfs_cache_write(cache, fi, 0, dig, n * PFS_MAN_DIGEST_LEN) < 0 ||
	    pfs_cache_complete(cache, fi, n * PFS_MAN_DIGEST_LEN, sha) < 0) {
		fprintf(stderr, "pfs-relayctl: cache: cannot hold the digests\n");
		goto out;
	}
	*out_fi = fi;
	rc = 0;
out:
	if (f)
		fclose(f);
	free(data);
	free(dig);
	return rc;
}

uint64_t rc_digests_held(const struct rc_opts *o, const struct pfs_cache *cache)
{
	char name[PFS_FILEPATH_MAX + 8];
	int fi;

	snprintf(name, sizeof(name), "%s.pfsm", o->path);
	fi = pfs_cache_find(cache, o->model, name);
	return fi < 0 ? 0 : pfs_cache_held(pfs_cache_file(cache, fi));
}

/* --check-cache: every chunk of the first path's file that the cache holds,
 * read back as pfs-control reads it (through the chunk map: frames or
 * extents), against the file's bytes; and how many are kept in frames. A
 * chunk never stored reads as zeros in its reserved room: neither. */
int rc_check_cache(const struct rc_opts *o, const struct pfs_cache *cache,
		   struct rc_counts *n)
{
	FILE *f = fopen(o->check_cache, "rb");
	int fi = pfs_cache_find(cache, o->model, o->check_path ? o->check_path : o->path);
	uint8_t *want = malloc(o->chunk_size), *got = malloc(o->chunk_size);
	int rc = -1;

	if (!f || fi < 0 || !want || !got) {
		fprintf(stderr, "pfs-relayctl: --check-cache %s: %s\n", o->check_cache,
			!f ? strerror(errno) : "no cache file");
		goto out;
	}
	for (uint32_t idx = 0;; idx++) {       /* CONTENT's chunks, to its end */
		uint64_t off = (uint64_t)idx * o->chunk_size;
		size_t len = fread(want, 1, o->chunk_size, f);
		_Atomic uint32_t *slot = pfs_cache_map_slot(cache, fi, idx);
		bool zeros = true;

		if (!len)
			break;
		if (pfs_cache_read(cache, fi, off, got, len) < 0)
			goto out;
		for (size_t i = 0; i < len && zeros; i++)
			zeros = !got[i];
		n->cache_same += !memcmp(want, got, len);
		n->cache_differ += memcmp(want, got, len) && !zeros;
		n->cache_kept += slot && atomic_load(slot);
	}
	rc = 0;
out:
	if (f)
		fclose(f);
	free(want);
	free(got);
	return rc;
}

/* --drop-wait: the relayed files dropped, as pfs-control drops or evicts
 * one; the dataplane must give their frames back to its pool (frames.c),
 * which its frames_held gauge shows within a few housekeeping rounds. */
void rc_drop_wait(const struct rc_opts *o, struct pfs_cache *cache,
		  const struct pfs_dp_stats *st, struct rc_counts *n)
{
	double deadline = rc_now_s() + 3;

	/* The gauge first shows the frames kept (it moves every 100 ms). */
	while (st->frames_held < st->fanout_kept && rc_now_s() < deadline && !rc_stop)
		usleep(10000);
	deadline = rc_now_s() + 3;
	for (unsigned i = 0; i < o->npaths; i++) {
		int fi = pfs_cache_find(cache, o->model, o->paths[i]);
		if (fi >= 0)
			pfs_cache_drop(cache, fi);
	}
	while (st->frames_held && rc_now_s() < deadline && !rc_stop)
		usleep(10000);
	n->frames_after_drop = st->frames_held;
}
