/* pfs_cache.h - the appliance's chunk cache, inside the shared segment
 * (docs/appliance.md 3.3).
 *
 * Files, one entry each, stored in fixed-size extents of the segment's cache
 * region. Each file's extents hold a whole number of its chunks, so a chunk
 * is always contiguous: the dataplane sends it straight from the segment.
 *
 *   header | file table | extent owners | extent 0 | extent 1 | ... | frames
 *
 * Frames (docs/appliance.md 3.3): buffers the dataplane receives frames
 * into (its RX mbuf pool's memory). A chunk received from a parent may
 * stay in the frame it came in, kept as the cache's copy, instead of being
 * copied into the file's extents: the file's chunk map (extents of 32-bit
 * entries, allocated with its reservation) says in which frame and where.
 * Every reader goes through pfs_cache_chunk()/pfs_cache_read(), which look
 * in the map first. The dataplane writes map entries (release) and gives a
 * frame back to its pool once the entry no longer names it (the file was
 * dropped, or control wrote other bytes over that chunk) and no copy of the
 * chunk still reads it.
 *
 * Ownership: the control process is the only writer of the table and the
 * allocator (it fetches from upstream and stores received chunks); the
 * dataplane reads chunks and holds a reference on a file for every copy
 * that reads its bytes after the call that made it (pfs_cache_hold). A
 * complete file outlives the processes that wrote it (the segment is a
 * file), and is evicted least-recently-used when space is needed, never
 * while pinned or held.
 *
 * Dropping a file is two steps (docs/appliance.md 3.3): it is unpublished
 * (RETIRING: no reader takes a new reference on it), and its extents are
 * freed once no reference is left, at once if none is. A reader takes its
 * reference before it looks at the file again, the writer unpublishes
 * before it counts them, both sequentially consistent: either the reader
 * sees the drop and lets go, or the writer sees the reference and waits.
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
#define PFS_CACHE_FRAME         2048    /* a frame's buffer: headroom, headers, payload */
#define PFS_CACHE_MAP_EXTENTS   8       /* a file's map: 8 x 256 Ki chunks */
#define PFS_CACHE_MAP_PER_EXT   (PFS_CACHE_EXTENT / 4)
#define PFS_CACHE_MAP_OFF_BITS  11      /* a map entry: frame << 11 | payload offset */

/* The map entry of a chunk kept in frame at byte off of it (off != 0). */
static inline uint32_t pfs_cache_map_entry(uint32_t frame, uint32_t off)
{
	return frame << PFS_CACHE_MAP_OFF_BITS | off;
}

enum pfs_cache_state {
	PFS_CF_FREE = 0,
	PFS_CF_FILLING = 1,     /* being fetched or received */
	PFS_CF_COMPLETE = 2,    /* size and sha256 final and checked */
	PFS_CF_RETIRING = 3,    /* dropped: its extents wait for the dataplane's
				 * references to come back (pfs_cache_reclaim) */
};

/* The dataplane's references on a file's bytes, laid out as DPDK's
 * struct rte_mbuf_ext_shared_info (dataplane/port.c asserts it): the
 * payload mbufs it attaches to a file count here, and pfs-control reads
 * the count when it drops the file. 1 + the references once a dataplane has
 * set it up (pfs_cache_refs_init); 0 before. A cache line of its own. */
struct pfs_cache_refs {
	void *free_cb;          /* the dataplane's, in its address space */
	void *fcb_opaque;
	_Atomic uint16_t refcnt;
} __attribute__((aligned(64)));

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
	uint32_t pinned;                /* control: an active hierarchy uses it */
	uint32_t gen;                   /* files this slot has held: a new version
					 * of a file in the same slot has other
					 * bytes under the same key (the dataplane
					 * keys what it computes per chunk on it) */
	uint32_t nmap;                  /* map extents allocated (release-published) */
	uint32_t map_ext[PFS_CACHE_MAP_EXTENTS];
	uint8_t sha256[32];
	char model[33];
	char path[PFS_CACHE_NAME_MAX + 1];
	uint32_t ext[PFS_CACHE_FILE_EXTENTS];
	struct pfs_cache_refs refs;     /* the dataplane's; never cleared by the writer */
};

struct pfs_cache_stats {
	uint64_t bytes, used_bytes;
	uint32_t extents, extents_used;
	uint32_t frames;
	uint32_t files, files_complete, files_retiring;
	uint64_t evictions, hits, misses;
};

struct pfs_cache;

/* Open the cache laid out in region[bytes]; the writer (control process)
 * formats it, with frames frames, when it is new or was laid out for
 * another size or frame count; a reader (dataplane) takes the writer's
 * layout (frames ignored) and never formats: -ENODATA until the writer has. */
int pfs_cache_open(void *region, uint64_t bytes, uint32_t frames, bool writer,
		   struct pfs_cache **out);
void pfs_cache_close(struct pfs_cache *c);
/* Would a writer opening region[bytes] with frames frames lay it out anew
 * (its files dropped, and under a dataplane that reads it as it is)?
 * false too when no layout fits (pfs_cache_open says so). */
bool pfs_cache_relayout_needed(const void *region, uint64_t bytes, uint32_t frames);

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
/* Unpublish the file; its extents are freed now if the dataplane holds no
 * reference on it, else by pfs_cache_reclaim once it holds none. */
void pfs_cache_drop(struct pfs_cache *c, int fi);
/* Free the extents of every RETIRING file the dataplane no longer holds
 * (also done whenever room is needed); how many. */
int pfs_cache_reclaim(struct pfs_cache *c);
/* Evict every complete file not pinned and not held; how many. */
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
/* The frames (NULL if none), *n of PFS_CACHE_FRAME bytes each. */
uint8_t *pfs_cache_frames(const struct pfs_cache *c, uint32_t *n);
/* Dataplane: the map entry of chunk idx of file fi, to store a frame in
 * (release), or NULL if the file is not filling or has no map that far. */
_Atomic uint32_t *pfs_cache_map_slot(const struct pfs_cache *c, int fi, uint32_t idx);
/* Does chunk idx of file fi, generation gen, still keep entry? (A frame
 * whose chunk is gone goes back to the dataplane's pool.) */
bool pfs_cache_keeps(const struct pfs_cache *c, int fi, uint32_t gen, uint32_t idx,
		     uint32_t entry);
/* Dataplane, at start (and for an entry a writer's new layout zeroed):
 * every file's reference count to 1, its callback to free_cb (DPDK calls it
 * only when a count reaches 0, which the 1 prevents). Old references died
 * with the process that held them. only_unset: just entries with none. */
void pfs_cache_refs_init(const struct pfs_cache *c, void *free_cb, bool only_unset);
/* Dataplane: take n references on file fi as generation gen, for copies
 * that read its bytes after this returns (attached or copied); false, and
 * none taken, if the file is no longer that one (dropped, or another in the
 * slot): its bytes may be another file's by now. */
bool pfs_cache_hold(const struct pfs_cache *c, int fi, uint32_t gen, uint16_t n);
void pfs_cache_unhold(const struct pfs_cache *c, int fi, uint16_t n);
/* References the dataplane holds on the file. */
uint32_t pfs_cache_held(const struct pfs_cache_file *f);
/* Every chunk kept in a frame, to fn (a restarted dataplane must not
 * receive into them): its file, generation, index and map entry. */
typedef void pfs_cache_kept_fn(void *ctx, int fi, uint32_t gen, uint32_t idx, uint32_t entry);
void pfs_cache_each_kept(const struct pfs_cache *c, pfs_cache_kept_fn *fn, void *ctx);
void pfs_cache_stats(const struct pfs_cache *c, struct pfs_cache_stats *out);
void pfs_cache_count_hit(struct pfs_cache *c, int fi);
void pfs_cache_count_miss(struct pfs_cache *c);

#endif /* PFS_CACHE_H */
