/* failure.c - the root's upstream fetch and what a failure does (docs/protocol.md 6.5).
 *
 * Whose failure it is decides what follows:
 *
 *   failure                          root                          member
 *   server: no such file / denied    FAILED (NOT_FOUND) at once,   one try of its own
 *                                    no retry                      within 4 s
 *   server: unreachable, stalled,    retry after 1 s, 2 s          re-elect (up to three
 *     cut short, bad bytes           (jittered), then FAILED       roots), then give up
 *   this node cannot store           hand over: LEAVE(shutdown),   LEAVE parent and
 *                                    IDLE; children elect anew     children, IDLE
 *
 * FAILED in ROOT and status blocks therefore only ever means "the server
 * could not give it". A member never trusts it as a fact (a forged root can
 * say it): it leaves that root and elects another (xfer_leave_tree).
 */
#include "engine_internal.h"

#include <errno.h>
#include <string.h>

#define REELECT_MAX     2               /* roots a member leaves before it gives up */
#define FALLBACK_SPREAD PFS_SEC(4)      /* its own fetch starts within this */

void xfer_fail(struct pfs_engine *e, struct hier *h, enum pfs_fail_cause cause, int err)
{
	struct qitem *qi;

	if (h->f.failed || h->f.complete)
		return;
	h->f.failed = true;
	h->f.hashing = false;   /* a digest still to come is no second verdict */
	h->f.fail_cause = (uint8_t)cause;
	h->f.fail_err = (uint16_t)(err < 0 ? -err : err);
	eng_event(e, h, PFS_EV_FAILED, 0, NULL, h->f.fail_err, cause);
	qi = eng_queue(e, h, PFS_ACT_FILE_FAILED);
	if (qi) {
		qi->act.a = h->f.fail_err;
		qi->act.b = cause;
	}
	h->t_heartbeat = 0;     /* children hear of it at once */
	h->t_announce = 0;
}

void xfer_upstream_start(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	struct qitem *qi;

	h->upstream_active = true;
	h->upstream_starts++;
	h->t_upstream_retry = 0;
	h->last_progress = now;
	qi = eng_queue(e, h, PFS_ACT_UPSTREAM_START);
	if (qi)         /* the manifest first, unless it is already verified */
		qi->act.want_manifest = e->cfg.trust && !h->man.verified;
}

/* This node no longer fetches the file (it yielded, left, gave up): the
 * fetch in flight is aborted and a retry due later forgotten. A retry left
 * armed fired in whatever state the node was in by then: a member fetched
 * beside its parent's chunks (found by fuzz_site). */
void xfer_upstream_stop(struct pfs_engine *e, struct hier *h)
{
	if (h->upstream_active) {
		eng_queue(e, h, PFS_ACT_UPSTREAM_ABORT);
		h->upstream_active = false;
	}
	h->t_upstream_retry = 0;
}

void xfer_start_root(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	if (!h->f.manifest) {
		h->f.manifest = true;
		h->f.chunk_size = e->cfg.chunk_size;
	}
	if (h->f.complete || h->f.failed)
		return;                 /* already holds the verified file */
	xfer_upstream_start(e, h, now);
}

void pfs_engine_upstream_done(struct pfs_engine *e, pfs_time_t now, int hidx,
			      uint64_t size, const uint8_t sha256[32])
{
	struct hier *h;
	struct pfs_file *f;
	struct qitem *qi;
	uint64_t n;

	if (hidx < 0 || hidx >= e->nhiers || !e->hiers[hidx].upstream_active)
		return;
	h = &e->hiers[hidx];
	f = &h->f;
	if (f->complete) {
		/* Signed and empty: whole, and verified, the moment its
		 * manifest verified (docs/protocol.md 6.6). The driver was
		 * told FILE_DONE then, not again now. */
		h->upstream_active = false;
		return;
	}
	if (h->man.verified && (size != f->size || memcmp(sha256, f->sha256, 32) ||
				h->f.have.prefix < f->nchunks)) {
		/* Every chunk was checked as it came, so only a short or
		 * overlong copy gets here: not what was signed. */
		e->st.upstream_bad_chunks++;
		pfs_engine_upstream_failed(e, now, hidx, -EBADMSG);
		return;
	}
	h->upstream_active = false;
	n = pfs_chunk_count(size, f->chunk_size);
	if (n > e->cfg.max_chunks) {
		xfer_fail(e, h, PFS_FAIL_INVALID, EFBIG);
		return;
	}
	/* The upstream copy is the source of truth (until signed manifests). */
	f->final = true;
	f->size = size;
	f->nchunks = (uint32_t)n;
	memcpy(f->sha256, sha256, 32);
	f->short_index = UINT32_MAX;
	pfs_bitmap_set_prefix(&f->have, f->nchunks);
	f->complete = true;
	f->hashing = false;
	h->last_progress = now;
	eng_event(e, h, PFS_EV_MANIFEST, 0, NULL, f->nchunks, 0);
	eng_event(e, h, PFS_EV_COMPLETE, 0, NULL, f->nchunks, 0);
	qi = eng_queue(e, h, PFS_ACT_FILE_DONE);
	if (qi) {
		qi->act.size = size;
		qi->act.sha256 = f->sha256;
	}
	h->t_heartbeat = 0;
	e->pump_dirty = true;
}

void pfs_engine_upstream_failed(struct pfs_engine *e, pfs_time_t now, int hidx, int err)
{
	struct hier *h;

	if (hidx < 0 || hidx >= e->nhiers || !e->hiers[hidx].upstream_active)
		return;
	h = &e->hiers[hidx];
	h->upstream_active = false;
	if (err == -ENOENT || err == -EACCES) {
		/* The server's answer, not a fault of the path to it: asking
		 * again gets the same answer (docs/protocol.md 6.5). */
		xfer_fail(e, h, PFS_FAIL_NOT_FOUND, err);
		return;
	}
	if (err == -EKEYREJECTED) {
		/* A certificate we do not trust is not trusted on a retry. */
		xfer_fail(e, h, PFS_FAIL_SERVER, err);
		return;
	}
	if (h->upstream_tries < e->cfg.upstream_retries) {
		/* Back-off doubling from upstream_retry_delay, jittered so that
		 * the roots of a site's files do not return to a recovering
		 * server in step. */
		pfs_time_t delay = e->cfg.upstream_retry_delay << h->upstream_tries;
		h->upstream_tries++;
		h->t_upstream_retry = now + eng_jitter(e, delay);
		eng_event(e, h, PFS_EV_UPSTREAM_RETRY, 0, NULL, h->upstream_tries, (uint32_t)-err);
		return;
	}
	xfer_fail(e, h, PFS_FAIL_SERVER, err);
}

void pfs_engine_store_failed(struct pfs_engine *e, pfs_time_t now, int hidx, int err)
{
	struct hier *h;

	(void)now;
	if (hidx < 0 || hidx >= e->nhiers)
		return;
	h = &e->hiers[hidx];
	if (h->f.failed || h->f.complete)
		return;
	h->t_upstream_retry = 0;
	/* Our children lose their parent: below a root they elect another
	 * one (a LEAVE(shutdown) from the root is a lost root), below a
	 * member they re-join through the root. We take no further part
	 * (IDLE), so we are neither elected nor joined again
	 * (docs/protocol.md 6.5). */
	tree_leave(e, h);
	xfer_fail(e, h, PFS_FAIL_LOCAL, err);
}

/* Fetch by ourselves: once, no retries (the roots before us retried; N
 * members retrying a server that is down would cost N x 3 requests), after
 * a random delay in [0, FALLBACK_SPREAD) so that the members of a tree
 * that gave up do not reach the server in the same instant. Our children
 * are told why: LEAVE(failed) when the server said it has no such file
 * (they try once too, no second root asks), else LEAVE(re-parent). */
static void fallback(struct pfs_engine *e, struct hier *h, pfs_time_t now, bool server_said_no)
{
	eng_event(e, h, PFS_EV_FALLBACK, 0, NULL, 0, 0);
	h->upstream_tries = e->cfg.upstream_retries;
	tree_drop_children(e, h, server_said_no ? PFS_REASON_FAILED : PFS_REASON_REPARENT);
	tree_leave_parent(e, h, PFS_REASON_REPARENT);
	h->state = H_SOLO;
	if (!h->f.manifest) {
		h->f.manifest = true;
		h->f.chunk_size = e->cfg.chunk_size;
	}
	if (!h->man.verified)
		h->f.final = false;
	h->t_upstream_retry = now + 1 + eng_random(e) % FALLBACK_SPREAD;
}

void xfer_fallback(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	fallback(e, h, now, false);
}

/* A member leaves a tree whose root said FAILED or that made no progress
 * for fallback_timeout (or whose parent left it so: LEAVE(root failed)).
 * Re-elect first: that root is excluded, our children are told to leave it
 * as well (so they count it too), and the rest elect another among them,
 * which fetches while the others join it: one fetch per (model, file), not
 * one per member, whenever the server comes back. After REELECT_MAX such
 * roots (three in all have tried, each independently, each with its own
 * retries) the member gives the file up if they said FAILED, or tries the
 * server itself, once, if they only stalled: members never all go to the
 * server at once, which pfs-sim showed costing a WAN copy per member when
 * the server came back just then (docs/protocol.md 6.5). When the server
 * said it has no such file (FAILED with NOT_FOUND, or LEAVE(failed) from
 * our parent), no second root asks it again: each member asks once for
 * itself, a request answered at once, which also shows a root that lied. */
void xfer_leave_tree(struct pfs_engine *e, struct hier *h, pfs_time_t now, bool server_said_no,
		     bool stalled)
{
	uint32_t root = h->root_known ? h->root_id : 0;

	if (server_said_no || !root || root == e->cfg.node_id) {
		fallback(e, h, now, server_said_no);
		return;
	}
	if (h->roots_left >= REELECT_MAX && stalled) {
		fallback(e, h, now, false);     /* no root said FAILED: try the server */
		return;
	}
	if (h->roots_left >= REELECT_MAX) {
		tree_drop_children(e, h, PFS_REASON_ROOT_FAILED);
		tree_leave_parent(e, h, PFS_REASON_REPARENT);
		h->state = H_IDLE;                      /* out of this tree for good */
		xfer_fail(e, h, PFS_FAIL_SERVER, 0);    /* 0: the roots' word, 3 of them */
		return;
	}
	h->roots_left++;
	eng_event(e, h, PFS_EV_REELECT, root, NULL, h->roots_left, 0);
	integ_exclude(e, h, root, now);
	tree_drop_children(e, h, PFS_REASON_ROOT_FAILED);
	tree_leave_parent(e, h, PFS_REASON_REPARENT);
	h->root_known = false;
	h->last_progress = now;
	h->progress_mark = h->f.have.count;
	elect_start(e, h, now);
}

int pfs_engine_solo_restart(struct pfs_engine *e, pfs_time_t now, int hidx)
{
	struct hier *h;
	struct pfs_file *f;

	if (hidx < 0 || hidx >= e->nhiers || e->hiers[hidx].state != H_SOLO)
		return -EINVAL;
	h = &e->hiers[hidx];
	f = &h->f;
	if (h->upstream_active || h->t_upstream_retry || (!f->failed && !f->complete))
		return -EBUSY;
	pfs_bitmap_clear(&f->have);
	f->complete = f->failed = f->hashing = false;
	f->fail_cause = PFS_FAIL_NONE;
	f->fail_err = 0;
	f->progress_step = 0;
	if (!h->man.verified) {         /* unsigned: the next copy defines it */
		f->final = false;
		f->size = 0;
		f->nchunks = 0;
		f->short_index = UINT32_MAX;
		memset(f->sha256, 0, sizeof(f->sha256));
	}
	h->man.up_index = h->man.up_fill = 0;
	h->upstream_tries = 0;
	xfer_upstream_start(e, h, now);
	return 0;
}
