/* cache_internal.h - the cache's layout, shared by pfs_cache.c (files,
 * extents, eviction) and cache_frames.c (frames and chunk maps). Not for
 * users of pfs_cache.h. */
#ifndef PFS_CACHE_INTERNAL_H
#define PFS_CACHE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "pfs_cache.h"

struct cache_hdr {
	uint64_t magic;
	uint64_t bytes;
	uint32_t extent_size, nextents;
	uint64_t data_off;
	uint64_t clock;
	uint64_t evictions, hits, misses;
	uint64_t frames_off;            /* 0: no frames */
	uint32_t nframes;
	uint8_t pad[4];
};

struct pfs_cache {
	uint8_t *base;
	struct cache_hdr *h;
	uint16_t *owner;                        /* [nextents] */
	struct pfs_cache_file *files;           /* [PFS_CACHE_FILES] */
	uint8_t *data;
	uint8_t *frames;                        /* [nframes][PFS_CACHE_FRAME], or NULL */
	bool writer;
	uint32_t free_hint;
};

/* FILLING or COMPLETE: readers may use it (not FREE, not RETIRING). */
bool cache_live(const struct pfs_cache_file *f);
/* An extent for file fi (evicting as needed): its number, or -ENOSPC. */
int cache_alloc_extent(struct pfs_cache *c, int fi);
/* A file's chunk size and chunks per extent, loaded once: a reader may find
 * the slot being set up for another file under it (its hold then fails),
 * so every address it computes comes from one consistent pair, checked to
 * keep a chunk inside its extent. false: no such pair (yet). */
struct cache_geom {
	uint32_t cs, per;
};
bool cache_geom(const struct pfs_cache *c, const struct pfs_cache_file *f, struct cache_geom *g);
/* Where chunk idx of file f (chunks of cs bytes) is kept in a frame, or NULL. */
const uint8_t *cache_mapped(const struct pfs_cache *c, const struct pfs_cache_file *f,
			    uint32_t cs, uint32_t idx);
/* Allocate (zeroed) the map extents for chunks [0, nchunks) of file fi. */
int cache_map_reserve(struct pfs_cache *c, int fi, uint64_t nchunks);
/* Control writes data at byte at of chunk idx: false if the chunk is kept
 * in a frame and data is that frame's own bytes there (nothing to write);
 * else true, and a frame that kept the chunk is let go (its map entry
 * cleared: the dataplane gives it back) since the extents hold it now. */
bool cache_map_overwrite(struct pfs_cache *c, struct pfs_cache_file *f, uint32_t idx,
			 const uint8_t *data, uint32_t at);

#endif /* PFS_CACHE_INTERNAL_H */
