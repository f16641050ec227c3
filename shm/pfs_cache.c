/* pfs_cache.c - the chunk cache in the shared segment (see pfs_cache.h).
 *
 * The allocator is a table of extent owners (file index + 1, 0 = free); a
 * file's extents are listed in its entry in chunk order. Only the writer
 * touches either, so they need no lock; the reader (dataplane) finds a
 * file once the writer published it (state store) and the engine told it
 * which chunks exist (through the ring, which orders), and holds it while
 * it reads: a dropped file's extents wait for its references (pfs_cache.h).
 */
#include "cache_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_MAGIC 0x3430304843534650ull      /* "PFSCH004" */

static uint64_t align64(uint64_t v) { return (v + 63) & ~63ull; }

/* The layout of bytes with frames frames at the end (-EINVAL if it leaves
 * fewer than two extents). */
static int layout(uint64_t bytes, uint32_t frames, struct cache_hdr *want)
{
	uint64_t fixed = align64(sizeof(struct cache_hdr)) +
			 align64(sizeof(struct pfs_cache_file) * PFS_CACHE_FILES);
	uint64_t fbytes = (uint64_t)frames * PFS_CACHE_FRAME, n;

	memset(want, 0, sizeof(*want));
	if (frames >= 1u << (32 - PFS_CACHE_MAP_OFF_BITS) ||
	    bytes < fixed + fbytes + 2ull * PFS_CACHE_EXTENT + 8192)
		return -EINVAL;
	/* Each extent costs its bytes and a 2-byte owner word; data stays
	 * page-aligned so a chunk never straddles more pages than it must. */
	n = (bytes - fixed - fbytes - 8192) / (PFS_CACHE_EXTENT + 2);
	if (n > UINT16_MAX - 1)
		n = UINT16_MAX - 1;
	if (n < 2)
		return -EINVAL;
	want->magic = CACHE_MAGIC;
	want->bytes = bytes;
	want->extent_size = PFS_CACHE_EXTENT;
	want->nextents = (uint32_t)n;
	want->data_off = (fixed + align64(n * 2) + 4095) & ~4095ull;
	want->nframes = frames;
	want->frames_off = frames ? want->data_off + n * PFS_CACHE_EXTENT : 0;
	return 0;
}

static bool same_layout(const struct cache_hdr *h, const struct cache_hdr *want)
{
	return h->magic == CACHE_MAGIC && h->bytes == want->bytes &&
	       h->extent_size == want->extent_size && h->nextents == want->nextents &&
	       h->data_off == want->data_off && h->nframes == want->nframes &&
	       h->frames_off == want->frames_off;
}

bool pfs_cache_relayout_needed(const void *region, uint64_t bytes, uint32_t frames)
{
	struct cache_hdr want;

	return layout(bytes, frames, &want) == 0 &&
	       (__atomic_load_n(&((const struct cache_hdr *)region)->magic, __ATOMIC_ACQUIRE) !=
		CACHE_MAGIC || !same_layout(region, &want));
}

int pfs_cache_open(void *region, uint64_t bytes, uint32_t frames, bool writer,
		   struct pfs_cache **out)
{
	const struct cache_hdr *h = region;
	struct pfs_cache *c;
	struct cache_hdr want;
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	/* A reader takes the frame count the writer laid out. */
	if (!writer && __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) == CACHE_MAGIC)
		frames = h->nframes;
	if ((rc = layout(bytes, frames, &want)) < 0)
		goto err;
	c->base = region;
	c->h = region;
	c->writer = writer;
	if (!same_layout(c->h, &want)) {
		if (!writer) {
			rc = -ENODATA;
			goto err;
		}
		memset(region, 0, want.data_off);
		*c->h = want;
		c->h->magic = 0;
		__atomic_store_n(&c->h->magic, CACHE_MAGIC, __ATOMIC_RELEASE);
	}
	c->files = (struct pfs_cache_file *)(c->base + align64(sizeof(struct cache_hdr)));
	c->owner = (uint16_t *)((uint8_t *)c->files +
				align64(sizeof(struct pfs_cache_file) * PFS_CACHE_FILES));
	c->data = c->base + c->h->data_off;
	c->frames = c->h->nframes ? c->base + c->h->frames_off : NULL;
	*out = c;
	return 0;
err:
	free(c);
	return rc;
}

void pfs_cache_close(struct pfs_cache *c)
{
	free(c);
}

struct pfs_cache_file *pfs_cache_file(const struct pfs_cache *c, int fi)
{
	if (fi < 0 || fi >= PFS_CACHE_FILES)
		return NULL;
	return &c->files[fi];
}

static void free_extent(struct pfs_cache *c, int fi, uint32_t e)
{
	if (e < c->h->nextents && c->owner[e] == fi + 1)
		c->owner[e] = 0;
}

static void free_extents(struct pfs_cache *c, int fi)
{
	struct pfs_cache_file *f = &c->files[fi];

	for (uint32_t i = 0; i < f->nexts; i++)
		free_extent(c, fi, f->ext[i]);
	for (uint32_t i = 0; i < f->nmap && i < PFS_CACHE_MAP_EXTENTS; i++)
		free_extent(c, fi, f->map_ext[i]);
	f->nexts = 0;
	f->nmap = 0;
}

bool cache_live(const struct pfs_cache_file *f)
{
	uint32_t st = atomic_load(&f->state);

	return st == PFS_CF_FILLING || st == PFS_CF_COMPLETE;
}

uint32_t pfs_cache_held(const struct pfs_cache_file *f)
{
	uint16_t r = atomic_load(&f->refs.refcnt);     /* seq_cst: see pfs_cache_drop */

	return r > 1 ? r - 1u : 0;
}

/* A RETIRING file nobody holds: its extents back, its slot free. */
static bool reclaim_one(struct pfs_cache *c, int fi)
{
	struct pfs_cache_file *f = &c->files[fi];

	if (atomic_load(&f->state) != PFS_CF_RETIRING || pfs_cache_held(f))
		return false;
	free_extents(c, fi);
	atomic_store(&f->state, PFS_CF_FREE);
	return true;
}

int pfs_cache_reclaim(struct pfs_cache *c)
{
	int n = 0;

	for (int i = 0; i < PFS_CACHE_FILES && c->writer; i++)
		n += reclaim_one(c, i);
	return n;
}

/* Unpublish first (sequentially consistent), then count the references:
 * a reader takes its reference before it checks the state (hold), so one
 * of the two sees the other. The slot and its extents stay the file's
 * until the count is zero. */
void pfs_cache_drop(struct pfs_cache *c, int fi)
{
	struct pfs_cache_file *f = pfs_cache_file(c, fi);

	if (!f || !c->writer || !cache_live(f))
		return;
	atomic_store(&f->state, PFS_CF_RETIRING);
	f->hier = 0;
	f->model[0] = f->path[0] = '\0';
	reclaim_one(c, fi);
}

static bool evictable(const struct pfs_cache_file *f)
{
	return atomic_load(&f->state) == PFS_CF_COMPLETE && !f->pinned && !pfs_cache_held(f);
}

/* Least recently used evictable file other than keep, or -1. */
static int lru_victim(const struct pfs_cache *c, int keep)
{
	int best = -1;

	for (int i = 0; i < PFS_CACHE_FILES; i++) {
		if (i == keep || !evictable(&c->files[i]))
			continue;
		if (best < 0 || c->files[i].last_used < c->files[best].last_used)
			best = i;
	}
	return best;
}

int cache_alloc_extent(struct pfs_cache *c, int fi)
{
	for (;;) {
		for (uint32_t n = 0; n < c->h->nextents; n++) {
			uint32_t e = (c->free_hint + n) % c->h->nextents;
			if (c->owner[e] == 0) {
				c->owner[e] = (uint16_t)(fi + 1);
				c->free_hint = e + 1;
				return (int)e;
			}
		}
		if (pfs_cache_reclaim(c))
			continue;
		int v = lru_victim(c, fi);
		if (v < 0)
			return -ENOSPC;
		pfs_cache_drop(c, v);   /* held since it was chosen: retires later */
		c->h->evictions++;
	}
}

int pfs_cache_find(const struct pfs_cache *c, const char *model, const char *path)
{
	for (int i = 0; i < PFS_CACHE_FILES; i++) {
		const struct pfs_cache_file *f = &c->files[i];
		if (cache_live(f) && !strcmp(f->model, model) &&
		    !strcmp(f->path, path))
			return i;
	}
	return -ENOENT;
}

int pfs_cache_find_hier(const struct pfs_cache *c, uint64_t hier)
{
	for (int i = 0; i < PFS_CACHE_FILES; i++) {
		if (cache_live(&c->files[i]) && c->files[i].hier == hier)
			return i;
	}
	return -ENOENT;
}

int pfs_cache_create(struct pfs_cache *c, uint64_t hier, const char *model, const char *path,
		     uint32_t chunk_size)
{
	struct pfs_cache_file *f;
	uint32_t gen;
	int fi, old;

	if (!c->writer)
		return -EPERM;
	if (chunk_size == 0 || chunk_size > c->h->extent_size ||
	    strlen(model) >= sizeof(f->model) || strlen(path) >= sizeof(f->path))
		return -EINVAL;
	if ((old = pfs_cache_find(c, model, path)) >= 0)
		pfs_cache_drop(c, old);
	pfs_cache_reclaim(c);
	for (;;) {
		for (fi = 0; fi < PFS_CACHE_FILES; fi++) {
			if (atomic_load(&c->files[fi].state) == PFS_CF_FREE)
				break;
		}
		if (fi < PFS_CACHE_FILES)
			break;
		int v = lru_victim(c, -1);
		if (v < 0)
			return -ENOSPC;
		pfs_cache_drop(c, v);   /* free now, unless held since it was chosen */
		c->h->evictions++;
	}
	f = &c->files[fi];
	gen = f->gen + 1;
	memset((uint8_t *)f + sizeof(f->state), 0, offsetof(struct pfs_cache_file, ext) -
	       sizeof(f->state));
	f->gen = gen;
	f->chunk_size = chunk_size;
	f->chunks_per_ext = c->h->extent_size / chunk_size;
	f->hier = hier;
	f->last_used = ++c->h->clock;
	strcpy(f->model, model);
	strcpy(f->path, path);
	atomic_store(&f->state, PFS_CF_FILLING);
	return fi;
}

bool cache_geom(const struct pfs_cache *c, const struct pfs_cache_file *f, struct cache_geom *g)
{
	g->cs = __atomic_load_n(&f->chunk_size, __ATOMIC_RELAXED);
	g->per = __atomic_load_n(&f->chunks_per_ext, __ATOMIC_RELAXED);
	return g->cs && g->per && (uint64_t)g->cs * g->per <= c->h->extent_size;
}

/* Where byte off of file fi lives (geometry g), allocating its extent if
 * asked. Whatever a reader loads here, the chunk it gets lies inside one
 * extent of the data region. */
static uint8_t *locate(struct pfs_cache *c, int fi, const struct cache_geom *g, uint64_t off,
		       bool alloc)
{
	struct pfs_cache_file *f = &c->files[fi];
	uint64_t chunk = off / g->cs;
	uint64_t e = chunk / g->per;
	uint32_t x;

	if (e >= PFS_CACHE_FILE_EXTENTS)
		return NULL;
	while (alloc && f->nexts <= e) {
		int n = cache_alloc_extent(c, fi);
		if (n < 0)
			return NULL;
		/* The dataplane may read nexts concurrently: publish ext[] first. */
		f->ext[f->nexts] = (uint32_t)n;
		__atomic_store_n(&f->nexts, f->nexts + 1, __ATOMIC_RELEASE);
	}
	if (e >= __atomic_load_n(&f->nexts, __ATOMIC_ACQUIRE) ||
	    (x = __atomic_load_n(&f->ext[e], __ATOMIC_RELAXED)) >= c->h->nextents)
		return NULL;
	return c->data + (uint64_t)x * c->h->extent_size + (chunk % g->per) * g->cs + off % g->cs;
}

int pfs_cache_write(struct pfs_cache *c, int fi, uint64_t off, const void *data, size_t len)
{
	struct pfs_cache_file *f = pfs_cache_file(c, fi);
	const uint8_t *p = data;
	uint64_t end = off + len;
	struct cache_geom g;

	if (!f || !c->writer || atomic_load(&f->state) != PFS_CF_FILLING || !cache_geom(c, f, &g))
		return -EINVAL;
	if ((off + len) / f->chunk_size / f->chunks_per_ext >= PFS_CACHE_FILE_EXTENTS)
		return -EFBIG;
	while (len) {
		/* One piece per chunk: chunks are contiguous, extents are not. */
		size_t room = f->chunk_size - off % f->chunk_size;
		size_t n = len < room ? len : room;
		uint8_t *dst;

		/* Not over the dataplane's copy in the frame it came in. */
		if (cache_map_overwrite(c, f, (uint32_t)(off / f->chunk_size), p,
					(uint32_t)(off % f->chunk_size))) {
			if (!(dst = locate(c, fi, &g, off, true)))
				return -ENOSPC;
			if (dst != p)   /* the bytes are there already: a chunk the
					 * dataplane stored, reported as held */
				memcpy(dst, p, n);
		}
		p += n;
		off += n;
		len -= n;
	}
	if (end - (p - (const uint8_t *)data) <= atomic_load(&f->stored) &&
	    end > atomic_load(&f->stored))
		atomic_store_explicit(&f->stored, end, memory_order_release);
	return 0;
}

int pfs_cache_complete(struct pfs_cache *c, int fi, uint64_t size, const uint8_t sha256[32])
{
	struct pfs_cache_file *f = pfs_cache_file(c, fi);
	struct cache_geom g;

	if (!f || !c->writer || atomic_load(&f->state) != PFS_CF_FILLING || !cache_geom(c, f, &g))
		return -EINVAL;
	if (size && !locate(c, fi, &g, size - 1, false))
		return -ENODATA;
	f->size = size;
	memcpy(f->sha256, sha256, 32);
	atomic_store(&f->stored, size);
	f->last_used = ++c->h->clock;
	atomic_store(&f->state, PFS_CF_COMPLETE);
	return 0;
}

int pfs_cache_evict_idle(struct pfs_cache *c)
{
	int n = 0;

	for (int i = 0; i < PFS_CACHE_FILES; i++) {
		if (evictable(&c->files[i])) {
			pfs_cache_drop(c, i);
			c->h->evictions++;
			n++;
		}
	}
	return n;
}

int pfs_cache_drop_partial(struct pfs_cache *c)
{
	int n = 0;

	for (int i = 0; i < PFS_CACHE_FILES; i++) {
		if (atomic_load(&c->files[i].state) == PFS_CF_FILLING) {
			pfs_cache_drop(c, i);
			n++;
		}
	}
	return n;
}

int pfs_cache_reserve(struct pfs_cache *c, int fi, uint64_t upto)
{
	struct pfs_cache_file *f = pfs_cache_file(c, fi);
	struct cache_geom g;

	if (!f || !c->writer || atomic_load(&f->state) != PFS_CF_FILLING || !cache_geom(c, f, &g))
		return -EINVAL;
	if (!upto)
		return 0;
	if ((upto - 1) / f->chunk_size / f->chunks_per_ext >= PFS_CACHE_FILE_EXTENTS)
		return -EFBIG;
	if (!locate(c, fi, &g, upto - 1, true))
		return -ENOSPC;
	return c->h->nframes ? cache_map_reserve(c, fi, (upto - 1) / f->chunk_size + 1) : 0;
}

uint64_t pfs_cache_reserved(const struct pfs_cache *c, int fi)
{
	const struct pfs_cache_file *f = pfs_cache_file(c, fi);

	if (!f || !cache_live(f))
		return 0;
	return (uint64_t)__atomic_load_n(&f->nexts, __ATOMIC_ACQUIRE) * f->chunks_per_ext *
	       f->chunk_size;
}

void pfs_cache_touch(struct pfs_cache *c, int fi)
{
	struct pfs_cache_file *f = pfs_cache_file(c, fi);
	if (f && c->writer)
		f->last_used = ++c->h->clock;
}

void pfs_cache_pin(struct pfs_cache *c, int fi, bool pinned)
{
	struct pfs_cache_file *f = pfs_cache_file(c, fi);
	if (f && c->writer)
		f->pinned = pinned;
}

const uint8_t *pfs_cache_chunk(const struct pfs_cache *c, int fi, uint32_t idx, uint32_t *len)
{
	struct pfs_cache_file *f = pfs_cache_file(c, fi);
	struct cache_geom g;
	uint64_t off, size;

	if (!f || !cache_live(f) || !cache_geom(c, f, &g))
		return NULL;
	off = (uint64_t)idx * g.cs;
	*len = g.cs;
	size = __atomic_load_n(&f->size, __ATOMIC_RELAXED);
	if (atomic_load(&f->state) == PFS_CF_COMPLETE || size) {
		if (off >= size)
			return NULL;
		if (size - off < g.cs)
			*len = (uint32_t)(size - off);
	}
	const uint8_t *kept = cache_mapped(c, f, g.cs, idx);
	return kept ? kept : locate((struct pfs_cache *)c, fi, &g, off, false);
}

void pfs_cache_expect_size(struct pfs_cache *c, int fi, uint64_t size)
{
	struct pfs_cache_file *f = pfs_cache_file(c, fi);

	if (f && atomic_load(&f->state) == PFS_CF_FILLING)
		f->size = size;
}

int pfs_cache_read(const struct pfs_cache *c, int fi, uint64_t off, void *buf, size_t len)
{
	struct pfs_cache_file *f = pfs_cache_file(c, fi);
	struct cache_geom g;
	uint8_t *p = buf;

	if (!f || !cache_live(f) || !cache_geom(c, f, &g))
		return -ENOENT;
	while (len) {
		size_t room = g.cs - off % g.cs;
		size_t n = len < room ? len : room;
		const uint8_t *src = cache_mapped(c, f, g.cs, (uint32_t)(off / g.cs));

		src = src ? src + off % g.cs : locate((struct pfs_cache *)c, fi, &g, off, false);
		if (!src)
			return -ENODATA;
		memcpy(p, src, n);
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

void pfs_cache_stats(const struct pfs_cache *c, struct pfs_cache_stats *o)
{
	memset(o, 0, sizeof(*o));
	o->bytes = (uint64_t)c->h->nextents * c->h->extent_size;
	o->extents = c->h->nextents;
	o->frames = c->h->nframes;
	for (uint32_t e = 0; e < c->h->nextents; e++)
		o->extents_used += c->owner[e] != 0;
	o->used_bytes = (uint64_t)o->extents_used * c->h->extent_size;
	for (int i = 0; i < PFS_CACHE_FILES; i++) {
		uint32_t st = atomic_load(&c->files[i].state);
		o->files += st == PFS_CF_FILLING || st == PFS_CF_COMPLETE;
		o->files_complete += st == PFS_CF_COMPLETE;
		o->files_retiring += st == PFS_CF_RETIRING;
	}
	o->evictions = c->h->evictions;
	o->hits = c->h->hits;
	o->misses = c->h->misses;
}

void pfs_cache_count_hit(struct pfs_cache *c, int fi)
{
	struct pfs_cache_file *f = pfs_cache_file(c, fi);
	if (!f || !c->writer)
		return;
	f->hits++;
	c->h->hits++;
	f->last_used = ++c->h->clock;
}

void pfs_cache_refs_init(const struct pfs_cache *c, void *free_cb, bool only_unset)
{
	for (int i = 0; i < PFS_CACHE_FILES; i++) {
		struct pfs_cache_refs *r = &c->files[i].refs;

		if (only_unset && r->free_cb)
			continue;
		r->free_cb = free_cb;
		r->fcb_opaque = NULL;
		atomic_store(&r->refcnt, 1);
	}
}

/* Take, then look (see pfs_cache_drop): the file must still be live and
 * the same generation, or the references go back. A count nobody set up
 * (no free callback: a writer's new layout zeroed it) is not taken: DPDK
 * would call a null callback when it came back to 0. */
bool pfs_cache_hold(const struct pfs_cache *c, int fi, uint32_t gen, uint16_t n)
{
	struct pfs_cache_file *f = pfs_cache_file(c, fi);

	if (!f || !f->refs.free_cb)
		return false;
	atomic_fetch_add(&f->refs.refcnt, n);
	if (cache_live(f) && f->gen == gen)
		return true;
	atomic_fetch_sub(&f->refs.refcnt, n);
	return false;
}

void pfs_cache_unhold(const struct pfs_cache *c, int fi, uint16_t n)
{
	struct pfs_cache_file *f = pfs_cache_file(c, fi);

	if (f)
		atomic_fetch_sub(&f->refs.refcnt, n);
}

void pfs_cache_count_miss(struct pfs_cache *c)
{
	if (c->writer)
		c->h->misses++;
}
