/* pfs_cache.h - the appliance's chunk cache, inside the shared segment
 * (docs/appliance.md 3.3).
 *
 * Files, one entry each, stored in fixed-size extents of the segment's cache
 * region. Each file's extents hold a whole number of its chunks, so a chunk
 * is always contiguous: the dataplane sends it straight from the segment.
 *
 *   header | extent owners | file table | extent 0 | extent 1 | ...
 *
 * Ownership: the control process is the only writer of the table and the
 * allocator (it fetches from upstream and stores received chunks); the
 * dataplane reads chunks and bumps each file's in-flight count while its
 * mbufs point into the file. A complete file outlives the processes that
 * wrote it (the segment is a file), and is evicted least-recently-used when
 * space is needed, never while pinned or in flight.
 *
 * Functions return 0 or a negative errno.
 */
#ifndef PFS_CACHE_H
#define PFS_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PFS_CACHE_FILES         64
#define PFS_CACHE_FILE_EXTENTS  2048
#define PFS_CACHE_EXTENT        (1u << 20)
#define PFS_CACHE_NAME_MAX      255

enum pfs_cache_state {
	PFS_CF_FREE = 0,
	PFS_CF_FILLING = 1,     /* being fetched or received */
	PFS_CF_COMPLETE = 2,    /* size and sha256 final and checked */
};

struct pfs_cache_file {
	_Atomic uint32_t state;
	uint32_t chunk_size;
	uint32_t chunks_per_ext;
	uint32_t nexts;                 /* extents allocated */
	uint64_t hier;
	uint64_t size;                  /* final size once complete; or, while filling,
					 * the size a signed manifest promised (0: unknown) */
	_Atomic uint64_t stored;        /* bytes held contiguously from 0 */
	uint64_t last_used;             /* the table's clock at last use */
	uint64_t hits;                  /* times served without the WAN */
	_Atomic uint32_t inflight;      /* dataplane mbufs pointing into it */
	uint32_t pinned;                /* control: an active hierarchy uses it */
	uint32_t gen;                   /* files this slot has held: a new version
					 * of a file in the same slot has other
					 * bytes under the same key (the dataplane
					 * keys what it computes per chunk on it) */
	uint32_t pad;
	uint8_t sha256[32];
	char model[33];
	char path[PFS_CACHE_NAME_MAX + 1];
	uint32_t ext[PFS_CACHE_FILE_EXTENTS];
};

struct pfs_cache_stats {
	uint64_t bytes, used_bytes;
	uint32_t extents, extents_used;
	uint32_t files, files_complete;
	uint64_t evictions, hits, misses;
};

struct pfs_cache;

/* Open the cache laid out in region[bytes]; the writer (control process)
 * formats it when it is new or was laid out for another size, a reader
 * (dataplane) never formats: -ENODATA until the writer has. */
int pfs_cache_open(void *region, uint64_t bytes, bool writer, struct pfs_cache **out);
void pfs_cache_close(struct pfs_cache *c);

/* Writer side. */
/* A new, empty file entry (any earlier entry for the same model and path is
 * dropped first). Returns its index. */
int pfs_cache_create(struct pfs_cache *c, uint64_t hier, const char *model, const char *path,
		     uint32_t chunk_size);
/* Store data at offset, allocating (and evicting) as needed: -ENOSPC when
 * nothing can be evicted, -EFBIG past the per-file limit. */
int pfs_cache_write(struct pfs_cache *c, int fi, uint64_t off, const void *data, size_t len);
int pfs_cache_complete(struct pfs_cache *c, int fi, uint64_t size, const uint8_t sha256[32]);
/* The size a filling file will have (a signed manifest says so before the
 * last byte arrives): its last chunk is then sent at its true length. */
void pfs_cache_expect_size(struct pfs_cache *c, int fi, uint64_t size);
void pfs_cache_drop(struct pfs_cache *c, int fi);
/* Evict every complete file not pinned and not in flight; how many. */
int pfs_cache_evict_idle(struct pfs_cache *c);
/* Drop every entry still FILLING: after a control restart nobody owns them. */
int pfs_cache_drop_partial(struct pfs_cache *c);
/* Allocate the extents that hold bytes [0, upto) of a filling file, so the
 * dataplane can store chunks received from a parent there (local fan-out).
 * -ENOSPC when nothing can be evicted, -EFBIG past the per-file limit. */
int pfs_cache_reserve(struct pfs_cache *c, int fi, uint64_t upto);
/* Bytes [0, n) of the file are allocated: what a reservation reached. */
uint64_t pfs_cache_reserved(const struct pfs_cache *c, int fi);
void pfs_cache_touch(struct pfs_cache *c, int fi);
void pfs_cache_pin(struct pfs_cache *c, int fi, bool pinned);

/* Both sides. */
int pfs_cache_find(const struct pfs_cache *c, const char *model, const char *path);
int pfs_cache_find_hier(const struct pfs_cache *c, uint64_t hier);
struct pfs_cache_file *pfs_cache_file(const struct pfs_cache *c, int fi);
/* Address of chunk idx of file fi, and its length; NULL if its extent is not
 * allocated or idx is past the (expected) size. Of a filling file of unknown
 * size, the length is the chunk size and the bytes are whatever was stored
 * (the engine knows which chunks are held). */
const uint8_t *pfs_cache_chunk(const struct pfs_cache *c, int fi, uint32_t idx, uint32_t *len);
/* Read len bytes at off (they must be stored). */
int pfs_cache_read(const struct pfs_cache *c, int fi, uint64_t off, void *buf, size_t len);
void pfs_cache_stats(const struct pfs_cache *c, struct pfs_cache_stats *out);
void pfs_cache_count_hit(struct pfs_cache *c, int fi);
void pfs_cache_count_miss(struct pfs_cache *c);

#endif /* PFS_CACHE_H */
