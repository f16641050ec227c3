/* cache_frames.c - chunks kept in the frames they were received in: the
 * per-file chunk maps (see pfs_cache.h, docs/appliance.md 3.3).
 *
 * A file's map is an array of 32-bit entries, one per chunk, in extents of
 * its own (allocated and zeroed by the writer with the file's reservation,
 * published by nmap with release). Entry 0: the chunk is in the file's
 * extents, as always; else frame << 11 | offset of the payload in that
 * frame. The dataplane stores an entry (release) once the frame's bytes are
 * checked; readers load it (acquire) before reading the frame.
 */
#include "cache_internal.h"

#include <errno.h>
#include <string.h>

static _Atomic uint32_t *map_slot(const struct pfs_cache *c, const struct pfs_cache_file *f,
				  uint32_t idx)
{
	uint32_t e = idx / PFS_CACHE_MAP_PER_EXT;

	if (!c->frames || e >= PFS_CACHE_MAP_EXTENTS ||
	    e >= __atomic_load_n(&f->nmap, __ATOMIC_ACQUIRE) || f->map_ext[e] >= c->h->nextents)
		return NULL;
	return (_Atomic uint32_t *)(c->data + (uint64_t)f->map_ext[e] * c->h->extent_size) +
	       idx % PFS_CACHE_MAP_PER_EXT;
}

/* Where an entry says a chunk is, or NULL if it says nothing sound: an
 * entry is written by the other process, so it is checked like input. */
static const uint8_t *entry_addr(const struct pfs_cache *c, uint32_t cs, uint32_t e)
{
	uint32_t frame = e >> PFS_CACHE_MAP_OFF_BITS, off = e & ((1u << PFS_CACHE_MAP_OFF_BITS) - 1);

	if (!e || frame >= c->h->nframes || !off || off + cs > PFS_CACHE_FRAME)
		return NULL;
	return c->frames + (uint64_t)frame * PFS_CACHE_FRAME + off;
}

const uint8_t *cache_mapped(const struct pfs_cache *c, const struct pfs_cache_file *f,
			    uint32_t cs, uint32_t idx)
{
	_Atomic uint32_t *slot = map_slot(c, f, idx);

	return slot ? entry_addr(c, cs, atomic_load_explicit(slot, memory_order_acquire)) : NULL;
}

_Atomic uint32_t *pfs_cache_map_slot(const struct pfs_cache *c, int fi, uint32_t idx)
{
	const struct pfs_cache_file *f = pfs_cache_file(c, fi);

	if (!f || atomic_load_explicit(&f->state, memory_order_acquire) != PFS_CF_FILLING)
		return NULL;
	return map_slot(c, f, idx);
}

int cache_map_reserve(struct pfs_cache *c, int fi, uint64_t nchunks)
{
	struct pfs_cache_file *f = &c->files[fi];
	uint64_t need = (nchunks + PFS_CACHE_MAP_PER_EXT - 1) / PFS_CACHE_MAP_PER_EXT;

	if (need > PFS_CACHE_MAP_EXTENTS)
		need = PFS_CACHE_MAP_EXTENTS;   /* chunks past it are never kept */
	while (f->nmap < need) {
		int x = cache_alloc_extent(c, fi);

		if (x < 0)
			return x;
		/* Zeroed (an extent keeps what its last file left), then
		 * published: the dataplane may look at nmap at any time. */
		memset(c->data + (uint64_t)x * c->h->extent_size, 0, c->h->extent_size);
		f->map_ext[f->nmap] = (uint32_t)x;
		__atomic_store_n(&f->nmap, f->nmap + 1, __ATOMIC_RELEASE);
	}
	return 0;
}

bool cache_map_overwrite(struct pfs_cache *c, struct pfs_cache_file *f, uint32_t idx,
			 const uint8_t *data, uint32_t at)
{
	_Atomic uint32_t *slot = map_slot(c, f, idx);
	const uint8_t *kept;

	if (!slot ||
	    !(kept = entry_addr(c, f->chunk_size, atomic_load_explicit(slot, memory_order_acquire))))
		return true;
	if (data == kept + at)
		return false;
	/* Sequentially consistent: the dataplane gives the frame back only
	 * once no copy reads it, and a sender takes its reference before it
	 * checks the entry (dataplane/frames.c). */
	atomic_store(slot, 0);
	return true;
}

uint8_t *pfs_cache_frames(const struct pfs_cache *c, uint32_t *n)
{
	*n = c->frames ? c->h->nframes : 0;
	return c->frames;
}

bool pfs_cache_keeps(const struct pfs_cache *c, int fi, uint32_t gen, uint32_t idx,
		     uint32_t entry)
{
	const struct pfs_cache_file *f = pfs_cache_file(c, fi);
	_Atomic uint32_t *slot;

	if (!f || !cache_live(f) || f->gen != gen || !(slot = map_slot(c, f, idx)))
		return false;
	return atomic_load(slot) == entry;     /* seq_cst: see cache_map_overwrite */
}

void pfs_cache_each_kept(const struct pfs_cache *c, pfs_cache_kept_fn *fn, void *ctx)
{
	for (int fi = 0; fi < PFS_CACHE_FILES && c->frames; fi++) {
		const struct pfs_cache_file *f = &c->files[fi];
		uint32_t nmap = __atomic_load_n(&f->nmap, __ATOMIC_ACQUIRE);

		if (!cache_live(f))
			continue;
		for (uint32_t e = 0; e < nmap && e < PFS_CACHE_MAP_EXTENTS; e++) {
			for (uint32_t i = 0; i < PFS_CACHE_MAP_PER_EXT; i++) {
				uint32_t idx = e * PFS_CACHE_MAP_PER_EXT + i;
				_Atomic uint32_t *slot = map_slot(c, f, idx);
				uint32_t entry = slot ? atomic_load(slot) : 0;

				if (entry && entry_addr(c, f->chunk_size, entry))
					fn(ctx, fi, f->gen, idx, entry);
			}
		}
	}
}
