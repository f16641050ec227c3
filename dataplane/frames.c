/* frames.c - the cache's frames as the port's receive buffers: a chunk from
 * a parent stays in the frame it came in, as the cache's copy
 * (docs/appliance.md 2.3).
 *
 * The RX queues take their mbufs from a pool whose buffers are the cache's
 * frames (rte_pktmbuf_pool_create_extbuf: each mbuf has its own frame for
 * good). Once fanout.c has checked a chunk, it may keep its frame: the
 * chunk's map entry in its file (pfs_cache.h) names the frame, and the
 * cache takes a reference on the mbuf, so neither the RX path freeing it
 * nor a child's send completing gives the frame back to the pool. Nothing
 * is copied; every reader of the cache finds the chunk through the map.
 *
 * Worker 0 looks at the held frames every 100 ms and lets go of those whose
 * chunk is gone (its file dropped or evicted, another file in the slot, or
 * pfs-control's bytes written over it) once no copy chained to the chunk is
 * in flight (each frame's own count, dp_frames_ref): the frame returns to
 * the pool when its last send completes. A dataplane that starts finds the
 * frames the cache keeps chunks in (pfs_cache_each_kept) and takes them out
 * of its pool before the port gets any.
 *
 * Bounded: the cache holds at most `budget` frames, all but what the RX
 * rings, the pool's caches and the bursts in flight need, each worker its
 * share (counted in its own struct dp: no line every worker writes per
 * chunk); past it, chunks are copied into the file's extents, as without
 * frames.
 */
/* rte_pktmbuf_pool_create_extbuf() is still marked experimental in DPDK 22.11 */
#define ALLOW_EXPERIMENTAL_API
#include <errno.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <stdlib.h>
#include <string.h>

#include "dp.h"

#define POOL_CACHE 256

struct adopt {
	struct dp_frames *fr;
	uint32_t found, clashes;
};

/* A chunk the cache keeps in a frame, found at start: that frame is not
 * the port's. Two entries naming one frame cannot both be right; the first
 * holds it (the other chunk's bytes are wherever that frame says). */
static void mark_kept(void *ctx, int fi, uint32_t gen, uint32_t idx, uint32_t entry)
{
	struct adopt *a = ctx;
	uint32_t frame = entry >> PFS_CACHE_MAP_OFF_BITS;

	if (frame >= a->fr->n)
		return;
	if (a->fr->owner[frame].entry) {
		a->clashes++;
		return;
	}
	a->fr->owner[frame] = (struct dp_frame_owner){ fi, gen, idx, entry, 0 };
	a->found++;
}

/* Every mbuf of the new pool, once: those whose frame the cache keeps a
 * chunk in are held, the rest go back. */
static int adopt(struct dp *d, struct dp_frames *fr)
{
	struct adopt a = { .fr = fr };
	struct rte_mbuf **all;
	unsigned nfree = 0;

	pfs_cache_each_kept(d->cache, mark_kept, &a);
	if (!a.found)
		return 0;
	all = malloc(sizeof(*all) * fr->n);
	if (!all)
		return -ENOMEM;
	if (rte_pktmbuf_alloc_bulk(fr->pool, all, fr->n) < 0) {
		free(all);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < fr->n; i++) {
		uint32_t frame = (uint32_t)(((uint8_t *)all[i]->buf_addr - fr->base) /
					    PFS_CACHE_FRAME);

		if (frame < fr->n && fr->owner[frame].entry) {
			atomic_store(&fr->held[frame], all[i]);
			fr->adopted++;
		} else {
			all[nfree++] = all[i];
		}
	}
	rte_pktmbuf_free_bulk(all, nfree);
	free(all);
	pfs_log(PFS_LOG_INFO, "%u chunks kept in frames from before%s", a.found,
		a.clashes ? " (and map entries naming a frame twice, ignored)" : "");
	if (fr->adopted > fr->budget)
		pfs_log(PFS_LOG_WARNING, "%u frames hold chunks, more than the %u the RX rings "
			"leave (fewer workers before?): they stay the cache's", fr->adopted,
			fr->budget);
	d->frames_kept = fr->adopted;   /* worker 0's: its scan lets them go */
	return 0;
}

static void frames_free(struct dp_frames *fr)
{
	if (!fr)
		return;
	rte_mempool_free(fr->pool);
	rte_free(fr->refs);
	rte_free(fr->held);
	rte_free(fr->owner);
	rte_free(fr);
}

/* need: the mbufs the RX rings and bursts take (port.c). 0 and no frames
 * when they cannot be used: the log says why. */
int dp_frames_init(struct dp *d, const char *driver, uint32_t need, int socket)
{
	struct rte_pktmbuf_extmem ext;
	struct dp_frames *fr;
	uint32_t n;
	uint8_t *base = pfs_cache_frames(d->cache, &n);
	const char *why = NULL;
	int rc;

	need += POOL_CACHE * (d->o.workers + 1);
	if (d->o.no_rx_keep)
		return 0;
	if (!n)
		why = "the cache has no frames (segment.rx_frames)";
	else if (!strcmp(driver, "net_af_xdp"))
		why = "net_af_xdp receives into its own umem";
	else if (!d->iova_va)
		why = "frames have no DMA address (IOVA as PA)";
	else if (RTE_PKTMBUF_HEADROOM + d->o.max_frame > PFS_CACHE_FRAME)
		why = "--max-frame does not fit a frame";
	else if (n < 2 * need)
		why = "too few frames for the RX rings";
	if (why) {
		pfs_log(PFS_LOG_INFO, "chunks from a parent are copied into the cache: %s "
			"(%u frames, %u wanted at least)", why, n, 2 * need);
		return 0;
	}
	fr = rte_zmalloc("pfs_frames", sizeof(*fr), RTE_CACHE_LINE_SIZE);
	if (!fr)
		return -ENOMEM;
	fr->held = rte_zmalloc("pfs_frames_held", sizeof(*fr->held) * n, RTE_CACHE_LINE_SIZE);
	fr->owner = rte_zmalloc("pfs_frames_owner", sizeof(*fr->owner) * n, RTE_CACHE_LINE_SIZE);
	fr->refs = rte_zmalloc("pfs_frames_refs", sizeof(*fr->refs) * n, RTE_CACHE_LINE_SIZE);
	if (!fr->held || !fr->owner || !fr->refs) {
		frames_free(fr);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		fr->refs[i].free_cb = dp_ext_free;
		rte_mbuf_ext_refcnt_set(&fr->refs[i], 1);
	}
	ext = (struct rte_pktmbuf_extmem){ .buf_ptr = base, .buf_iova = (rte_iova_t)(uintptr_t)base,
					   .buf_len = (size_t)n * PFS_CACHE_FRAME,
					   .elt_size = PFS_CACHE_FRAME };
	fr->pool = rte_pktmbuf_pool_create_extbuf("pfs_rx", n, POOL_CACHE, 0, PFS_CACHE_FRAME,
						  socket, &ext, 1);
	if (!fr->pool) {
		pfs_log(PFS_LOG_INFO, "chunks from a parent are copied into the cache: no mbuf "
			"pool on its frames (%s)", rte_strerror(rte_errno));
		frames_free(fr);
		return 0;
	}
	fr->base = base;
	fr->n = n;
	fr->budget = n - need;
	fr->share = fr->budget / d->o.workers;  /* not divided per chunk */
	if ((rc = adopt(d, fr)) < 0) {
		frames_free(fr);
		return rc;
	}
	d->frames = fr;
	pfs_log(PFS_LOG_INFO, "the port receives into the cache's %u frames: up to %u chunks "
		"from a parent stay where they came in", n, fr->budget);
	return 0;
}

/* m (one segment, payload at payload, from the frames pool) holds chunk idx
 * of cache file fi, generation gen, checked: keep it there. false: copy it
 * (not a frame of ours, shared, budget spent, no map entry, or kept
 * already). */
bool dp_frames_keep(struct dp *d, int fi, uint32_t gen, uint32_t idx, struct rte_mbuf *m,
		    const uint8_t *payload, uint32_t len)
{
	struct dp_frames *fr = d->frames;
	_Atomic uint32_t *slot;
	uint32_t frame, off, entry;

	if (!fr || m->pool != fr->pool || m->nb_segs != 1 || rte_mbuf_refcnt_read(m) != 1 ||
	    d->frames_kept - atomic_load_explicit(&d->frames_released, memory_order_relaxed) >=
	    fr->share)
		return false;
	frame = (uint32_t)(((uint8_t *)m->buf_addr - fr->base) / PFS_CACHE_FRAME);
	off = (uint32_t)(payload - (fr->base + (uint64_t)frame * PFS_CACHE_FRAME));
	if (frame >= fr->n || !off || off + len > PFS_CACHE_FRAME ||
	    !(slot = pfs_cache_map_slot(d->cache, fi, idx)) ||
	    atomic_load_explicit(slot, memory_order_relaxed))
		return false;
	entry = pfs_cache_map_entry(frame, off);
	/* The owner and the reference before the entry, the entry before
	 * held[]: worker 0's scan, seeing held[], finds the entry naming it. */
	fr->owner[frame] = (struct dp_frame_owner){ fi, gen, idx, entry, d->wid };
	rte_mbuf_refcnt_update(m, 1);
	d->frames_kept++;
	atomic_store_explicit(slot, entry, memory_order_release);
	atomic_store_explicit(&fr->held[frame], m, memory_order_release);
	d->st->fanout_kept++;
	return true;
}

/* n references on the frame that holds payload, chunk idx of file fi
 * (generation gen), for chained copies: the frame then stays out of the
 * pool until the port has freed them, whatever becomes of the chunk. Taken
 * before the chunk's map entry is looked at again (as pfs_cache_hold does
 * for files, and with the caller holding the file, so its map is its own):
 * -ESTALE, and none taken, if it no longer names this frame. */
int dp_frames_ref(struct dp *d, int fi, uint32_t gen, uint32_t idx, const uint8_t *payload,
		  uint16_t n, struct rte_mbuf_ext_shared_info **si)
{
	struct dp_frames *fr = d->frames;
	uint32_t frame = (uint32_t)((payload - fr->base) / PFS_CACHE_FRAME);
	uint32_t off = (uint32_t)(payload - (fr->base + (uint64_t)frame * PFS_CACHE_FRAME));
	struct rte_mbuf_ext_shared_info *r = &fr->refs[frame];

	__atomic_fetch_add(&r->refcnt, n, __ATOMIC_SEQ_CST);
	if (!pfs_cache_keeps(d->cache, fi, gen, idx, pfs_cache_map_entry(frame, off))) {
		__atomic_fetch_sub(&r->refcnt, n, __ATOMIC_SEQ_CST);
		return -ESTALE;
	}
	*si = r;
	return 0;
}

void dp_frames_release(struct dp *d)
{
	struct dp_frames *fr = d->frames;
	uint64_t held = 0;

	if (!fr)
		return;
	for (uint32_t f = 0; f < fr->n; f++) {
		struct rte_mbuf *m = atomic_load_explicit(&fr->held[f], memory_order_acquire);
		const struct dp_frame_owner *o = &fr->owner[f];

		if (!m || pfs_cache_keeps(d->cache, o->fi, o->gen, o->idx, o->entry))
			continue;
		/* Copies chained to it still read it: next time. Loaded after
		 * the entry (sequentially consistent: see dp_frames_ref). */
		if (__atomic_load_n(&fr->refs[f].refcnt, __ATOMIC_SEQ_CST) > 1)
			continue;
		fr->owner[f].entry = 0;
		atomic_store_explicit(&fr->held[f], NULL, memory_order_relaxed);
		if (o->wid < d->nworkers)
			atomic_fetch_add_explicit(&d->all[o->wid]->frames_released, 1,
						  memory_order_relaxed);
		rte_pktmbuf_free(m);    /* back to the pool once its sends are done */
	}
	for (unsigned w = 0; w < d->nworkers; w++)
		held += __atomic_load_n(&d->all[w]->frames_kept, __ATOMIC_RELAXED) -
			atomic_load_explicit(&d->all[w]->frames_released, memory_order_relaxed);
	d->page->frames_held = held;
}

/* After the port stopped: the frames keep their bytes (the cache's). */
void dp_frames_close(struct dp *d)
{
	frames_free(d->frames);
	d->frames = NULL;
}

struct rte_mempool *dp_frames_pool(const struct dp *d)
{
	return d->frames ? d->frames->pool : NULL;
}
