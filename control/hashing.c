/* hashing.c - the whole-file digests of pfs-control's hierarchies, advanced
 * as their cache entries fill (common/prefix_hash.h).
 *
 * A member checks an unsigned file it received against its SHA-256 when the
 * engine asks (PFS_ACT_HASH_FILE; a signed file was checked chunk by chunk
 * and is not asked for, docs/protocol.md 6.6). Computed then in one go, the digest
 * of a large file held the event loop (heartbeats, the dataplane's ring,
 * the control socket) for as long as it took. Instead each loop turn folds
 * in, for at most PFS_PREFIX_HASH_SLICE_NS in all, what the entries filled
 * by a parent (not by our own upstream fetch, which hashes as it receives)
 * hold contiguously beyond what is hashed; the engine's request then finds
 * most of the work done, and the rest is answered a slice a turn.
 *
 *   entry filling, no fetch of ours ──(stored grows)──> fold in [done, stored)
 *   HASH_FILE(size) ──> pending ──(done == size)──> final ──> file_hashed()
 *   entry changed (another file, or it shrank) ──> start over
 */
#include <stdatomic.h>
#include <string.h>

#include "control.h"
#include "pfs_clock.h"

static int read_cache(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct ctl_hash_ctx *x = ctx;

	return pfs_cache_read(x->c->cache, x->fi, off, buf, len);
}

void ctl_hash_start(const struct pfs_action *act)
{
	struct ctl_hier *ch = act->user;

	ch->hash_pending = true;
	ch->hash_size = act->size;
}

/* What of hierarchy h's entry can be hashed now. Asked for (HASH_FILE):
 * the whole file, every chunk of it written. Before: the prefix the cache
 * knows to be contiguous (`stored`, which only in-order writes move: a
 * lower bound), of an entry filled by a parent, not by our own fetch (it
 * hashes what it receives), and only while the engine will ask: a signed
 * file is verified chunk by chunk instead. */
static uint64_t hashable(struct ctl *c, struct ctl_engine *ce, int h, const struct ctl_hier *ch)
{
	int fi = ch->cache_fi;
	struct pfs_cache_file *f = fi >= 0 ? pfs_cache_file(c->cache, fi) : NULL;

	if (ch->hash_pending)
		return ch->hash_size;
	if (!f || atomic_load(&f->state) != PFS_CF_FILLING || ch->fetch_id >= 0 ||
	    !pfs_engine_needs_file_hash(ce->e, h))
		return 0;
	return atomic_load(&f->stored);
}

bool ctl_hash_step(struct ctl *c)
{
	int64_t deadline = pfs_mono_ns() + PFS_PREFIX_HASH_SLICE_NS;
	bool pending = false;

	for (int i = 0; i < c->neng; i++) {
		struct ctl_engine *ce = &c->eng[i];

		for (int h = 0; h < pfs_engine_hier_count(ce->e); h++) {
			struct ctl_hier *ch = ctl_hier(ce, h);
			if (!ch)
				continue;
			struct pfs_prefix_hash *ph = &ch->hash;
			uint64_t upto = hashable(c, ce, h, ch);
			struct ctl_hash_ctx x = { c, ch->cache_fi };
			uint8_t sha[32] = { 0 };        /* zeros: a mismatch */
			int64_t left, budget = deadline - pfs_mono_ns();

			if (ch->hash_fi != ch->cache_fi || ph->done > upto) {
				pfs_prefix_hash_reset(ph);      /* another entry, or it shrank */
				ch->hash_fi = ch->cache_fi;
			}
			if (budget <= 0 || (ph->done == upto && !ch->hash_pending)) {
				pending |= ch->hash_pending;
				continue;
			}
			left = pfs_prefix_hash_catch_up(ph, upto, budget, read_cache, &x);
			if (!ch->hash_pending)
				continue;
			if (left > 0) {
				pending = true;
				continue;
			}
			if (left < 0 || x.fi < 0 || pfs_prefix_hash_final(ph, ch->hash_size, sha) < 0)
				memset(sha, 0, sizeof(sha));
			pfs_prefix_hash_reset(ph);      /* a refetch after a mismatch starts over */
			ch->hash_pending = false;
			pfs_engine_file_hashed(ce->e, (pfs_time_t)ctl_now(), h, sha);
			ctl_engine_drain(c, ce);
		}
	}
	return pending;
}

void ctl_hash_free(struct ctl_engine *ce)
{
	for (int h = 0; h < pfs_engine_hier_count(ce->e); h++) {
		struct ctl_hier *ch = ctl_hier(ce, h);

		if (!ch)
			continue;
		pfs_prefix_hash_free(&ch->hash);
		ch->hash_pending = false;
	}
}
