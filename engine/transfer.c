/* transfer.c - chunks, manifest, acks, repair and flow control (docs/protocol.md 6).
 *
 * Parent side: per child, a cursor `next` for new chunks and a list of
 * NACKed ranges to repair. The child's window (`limit` in its ACK) bounds
 * what may be in flight, so a fast parent cannot overrun it; each child has
 * its own cursor, so a slow child does not hold back its siblings.
 * Cut-through: a chunk may go to the children as soon as it is held and
 * checked (the contiguous prefix). Store-and-forward: only once the whole
 * file is verified, as in the seed.
 *
 * Child side: chunks go straight to storage (WRITE_CHUNK); an ACK every
 * ack_every chunks and every ack_interval reports the cumulative point, the
 * holes (NACK ranges) and the window; an interval with no data sets STALL,
 * telling the parent to resend from what the child holds. The file is
 * complete only when every chunk is held and its SHA-256 matches the final
 * manifest.
 */
#include "engine_internal.h"

#include <errno.h>
#include <string.h>

#define BAD_FILES_MAX 2         /* whole-file failures in a row before the parent is left */

void xfer_reset_child(struct child *c)
{
	c->acked = false;
	c->complete = false;
	c->next = 0;
	c->limit = 0;
	c->nrepair = 0;
	c->repair_cur = 0;
	pace_reset(c);
}

static uint32_t chunk_len(const struct pfs_file *f, uint32_t idx)
{
	if (f->final)
		return idx + 1 == f->nchunks ? (uint32_t)(f->size - (uint64_t)idx * f->chunk_size)
					     : f->chunk_size;
	return idx == f->short_index ? f->short_len : f->chunk_size;
}

static void reset_file(struct pfs_file *f)
{
	pfs_bitmap_clear(&f->have);
	f->short_index = UINT32_MAX;
	f->short_len = 0;
	f->progress_step = 0;
	f->hashing = false;
}

static void file_verified(struct pfs_engine *e, struct hier *h, pfs_time_t now);

/* A member's file is whole: verify it (docs/protocol.md 6.6). A signed file
 * already is: each chunk joined the prefix only once checked against the
 * signed manifest's digest (6.7), so a second pass over every byte, the
 * driver's SHA-256 of the whole file, would prove nothing more and cost a
 * device as much CPU again as the chunk checks. An unsigned file's chunks
 * only passed their CRC: the driver hashes it (HASH_FILE). */
void xfer_check_complete(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	struct qitem *qi;

	if (!h->f.final || h->f.complete || h->f.hashing || h->f.failed ||
	    h->f.have.prefix < h->f.nchunks)
		return;
	if (h->man.verified) {
		file_verified(e, h, now);
		return;
	}
	h->f.hashing = true;
	qi = eng_queue(e, h, PFS_ACT_HASH_FILE);
	if (qi) {
		qi->act.sha256 = h->f.sha256;
		qi->act.size = h->f.size;
	}
}


/* A member's progress clock (docs/protocol.md 6.5): with min_parent_rate
 * set, it moves only once the chunks we hold have grown by what that rate
 * brings in a fallback_timeout, so a parent that creeps (a root crawling
 * through a lossy WAN) is left as one that stalls is; else any new chunk
 * moves it. */
static void note_progress(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	uint32_t held = h->f.have.count;
	uint64_t need;

	if (held < h->progress_mark)
		h->progress_mark = held;        /* the file was reset */
	if (!e->cfg.min_parent_rate || !h->f.chunk_size) {
		h->last_progress = now;
		h->progress_mark = held;
		return;
	}
	need = ((uint64_t)e->cfg.min_parent_rate * (uint64_t)(e->cfg.fallback_timeout / PFS_MSEC(1)) /
		1000 + h->f.chunk_size - 1) / h->f.chunk_size;
	if (held >= (uint64_t)h->progress_mark + (need ? need : 1)) {
		h->last_progress = now;
		h->progress_mark = held;
	}
}

void xfer_apply_status(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		       const struct pfs_status *st)
{
	struct pfs_file *f = &h->f;

	if (st->parent_prefix != h->parent_prefix) {
		h->parent_prefix = st->parent_prefix;
		if (!e->cfg.min_parent_rate)
			h->last_progress = now; /* the tree above us moves */
	}
	if (st->mflags & PFS_MF_FAILED) {
		if (h->state != H_MEMBER || f->complete || f->failed)
			return;
		/* The root says it cannot fetch the file. That is its word,
		 * not a fact (a forged or broken root says it too): leave it
		 * (docs/protocol.md 6.5, failure.c). */
		xfer_leave_tree(e, h, now, st->mflags & PFS_MF_NOT_FOUND, false);
		return;
	}
	if (!integ_on_status(e, h, now, st))
		return;                 /* a signed manifest decides, not this status */
	if (!f->manifest || (f->chunk_size != st->chunk_size && !f->complete)) {
		/* A new root with another chunk size: our map no longer lines up. */
		if (f->manifest && f->chunk_size != st->chunk_size) {
			reset_file(f);
			f->final = false;
		}
		f->manifest = true;
		f->chunk_size = st->chunk_size;
	}
	if (!(st->mflags & PFS_MF_FINAL))
		return;
	if (f->final && (f->size != st->size || memcmp(f->sha256, st->sha256, 32))) {
		if (f->complete)
			return;         /* ours is verified; theirs is another tree's */
		reset_file(f);          /* the file changed under us */
		f->final = false;
	}
	if (f->final)
		return;
	uint64_t n = pfs_chunk_count(st->size, f->chunk_size);
	if (n > e->cfg.max_chunks) {
		xfer_fail(e, h, PFS_FAIL_INVALID, EFBIG);
		return;
	}
	f->final = true;
	f->size = st->size;
	f->nchunks = (uint32_t)n;
	memcpy(f->sha256, st->sha256, 32);
	if (f->have.highest > f->nchunks ||
	    (f->short_index != UINT32_MAX && f->short_len != chunk_len(f, f->short_index)))
		reset_file(f);          /* what we hold contradicts the manifest */
	eng_event(e, h, PFS_EV_MANIFEST, 0, NULL, f->nchunks, 0);
	h->t_heartbeat = 0;             /* pass it down now */
	xfer_check_complete(e, h, now);
}

void xfer_on_data(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		  const struct pfs_msg *m)
{
	struct pfs_file *f = &h->f;
	const struct pfs_msg_data *d = &m->u.data;
	struct qitem *qi;
	int rc;

	h->rx_since_tick = true;
	if (h->last_rx) {
		pfs_time_t gap = now - h->last_rx < e->cfg.ack_interval ? now - h->last_rx
									  : e->cfg.ack_interval;
		h->rx_gap = h->rx_gap - h->rx_gap / 8 + gap / 8;
	}
	h->last_rx = now;
	if (!f->manifest || f->complete || f->failed) {
		e->st.chunks_dup++;
		return;
	}
	if (e->rx_digest_checked && h->man.verified)
		e->st.chunks_prechecked++;      /* the dataplane checked it, before it stored it */
	else if (!integ_chunk_ok(e, h, now, d))
		return;                 /* never stored, acknowledged or forwarded */
	/* Every chunk but the last is full; only one may be short. */
	if (d->len > f->chunk_size || d->index >= e->cfg.max_chunks ||
	    (f->final && (d->index >= f->nchunks || d->len != chunk_len(f, d->index))) ||
	    (!f->final && d->len < f->chunk_size && f->short_index != UINT32_MAX &&
	     f->short_index != d->index) ||
	    (!f->final && f->short_index != UINT32_MAX && d->index > f->short_index)) {
		e->st.chunks_bad++;
		return;
	}
	if (pfs_bitmap_test(&f->have, d->index)) {
		e->st.chunks_dup++;
		return;
	}
	rc = pfs_bitmap_set(&f->have, d->index);
	if (rc < 0) {
		e->st.chunks_bad++;
		return;
	}
	if (d->len < f->chunk_size) {
		f->short_index = d->index;
		f->short_len = d->len;
	}
	e->st.chunks_rx++;
	note_progress(e, h, now);
	qi = eng_queue(e, h, PFS_ACT_WRITE_CHUNK);
	if (qi) {
		qi->act.index = d->index;
		qi->act.offset = (uint64_t)d->index * f->chunk_size;
		qi->act.data = d->payload;
		qi->act.len = d->len;
	}
	e->pump_dirty = true;
	if (f->final && f->nchunks) {
		uint32_t step = (uint32_t)((uint64_t)f->have.count * 10 / f->nchunks);
		if (step > f->progress_step) {
			f->progress_step = step;
			eng_event(e, h, PFS_EV_PROGRESS, 0, NULL, f->have.count, f->nchunks);
		}
	}
	if (++h->since_ack >= e->cfg.ack_every)
		xfer_send_ack(e, h, now);
	xfer_check_complete(e, h, now);
}

void xfer_fill_ack(const struct pfs_engine *e, const struct hier *h, struct pfs_msg_ack *a)
{
	const struct pfs_file *f = &h->f;
	uint32_t i;

	memset(a, 0, sizeof(*a));
	a->subtree_nodes = tree_subtree(h);
	if (f->complete) {
		a->cum = a->highest = a->limit = f->nchunks;
		a->flags = PFS_AF_COMPLETE;
		return;
	}
	a->cum = f->have.prefix;
	a->highest = f->have.highest > a->cum ? f->have.highest : a->cum;
	if (!integ_accepts_data(e, h)) {
		a->limit = a->cum;      /* zero window until our manifest verifies */
		return;
	}
	a->limit = a->highest + e->cfg.window;
	if (a->limit < a->highest)
		a->limit = UINT32_MAX;
	for (i = a->cum; i < a->highest;) {
		uint32_t end = pfs_bitmap_next_set(&f->have, i);
		if (end > a->highest)
			end = a->highest;
		if (a->nranges == PFS_ACK_RANGES_MAX) {
			a->flags |= PFS_AF_MORE;
			break;
		}
		a->ranges[a->nranges++] = (struct pfs_range){ i, end - i };
		i = pfs_bitmap_next_clear(&f->have, end);
	}
}

/* Our subtree grew or shrank: tell the parent now, or, if we told it less
 * than ack_interval/4 ago, with an ACK at the end of that holdoff. One join
 * anywhere below would otherwise cost an ACK on every hop up to the root:
 * N x depth ACKs when a whole site joins (pfs-sim saw the root's children
 * send 50,000 each). Balance needs the reports soon, not each one. */
void xfer_subtree_changed(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	pfs_time_t next = h->last_ack_sent + e->cfg.ack_interval / 4;

	if (h->state != H_MEMBER)
		return;
	if (now >= next)
		xfer_send_ack(e, h, now);
	else if (h->t_ack > next)
		h->t_ack = next;
}

void xfer_send_ack(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	if (h->state != H_MEMBER)
		return;
	eng_send(e, h, PFS_MSG_ACK, h->parent_id, &h->parent);
	h->last_ack_sent = now;
	h->since_ack = 0;
	h->t_ack = now + (h->f.complete ? e->cfg.keepalive_interval : e->cfg.ack_interval);
}

/* Does a STALL from this child send everything after what it holds again?
 * (Only a STALL: an ACK without one is late news of a child still
 * receiving, and rewinding on it sent again what was on its way: 10-25 %
 * more chunks at 64 devices with an HTTP upstream's bursts.)
 * Only if we stopped sending to it an ack_interval ago, or its measured
 * round trip if longer (a STALL while we still send means our chunks queue
 * on the way, at a busy port: sending them twice would lengthen that
 * queue), and, like a retransmission timer, with a backoff that doubles
 * up to 2 s while STALLs keep coming: else a queue longer than ack_interval
 * turns every chunk into many (pfs-sim saw 37 copies per chunk at 100,000
 * devices). Listed holes are repaired as repair_pace.c allows. */
static bool stall_rewinds(const struct pfs_engine *e, struct child *c, pfs_time_t now)
{
	pfs_time_t quiet = e->cfg.ack_interval > c->srtt ? e->cfg.ack_interval : c->srtt;

	if (now < c->stall_until || c->last_sent + quiet > now)
		return false;
	c->stall_backoff = c->stall_backoff ? c->stall_backoff * 2 : 2 * e->cfg.ack_interval;
	if (c->stall_backoff > PFS_SEC(2))
		c->stall_backoff = PFS_SEC(2);
	c->stall_until = now + c->stall_backoff;
	return true;
}

void xfer_on_ack(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		 struct child *c, const struct pfs_msg_ack *a)
{
	bool stall = a->flags & PFS_AF_STALL;
	uint32_t old_subtree = c->subtree;

	c->subtree = a->subtree_nodes;
	/* Joiners we sent its way count until its reports show them, or
	 * until they had time to get there (the ones that did not went
	 * elsewhere): reports arrive late and in bursts (subtree holdoff). */
	if (c->subtree > old_subtree)
		c->pending -= c->subtree - old_subtree < c->pending ? c->subtree - old_subtree
								     : c->pending;
	if (now - c->pending_at >= e->cfg.join_timeout)
		c->pending = 0;
	c->complete = a->flags & PFS_AF_COMPLETE;
	c->limit = a->limit;
	if (old_subtree != c->subtree)
		xfer_subtree_changed(e, h, now);        /* ours changed too */
	if (c->complete) {
		c->nrepair = 0;
		return;
	}
	pace_on_ack(c, a, now);
	if (!c->acked || (stall && stall_rewinds(e, c, now))) {
		/* Resume point: after what it holds, or after the last hole it
		 * could list; everything listed is repaired below. */
		c->next = (a->flags & PFS_AF_MORE) && a->nranges ?
			a->ranges[a->nranges - 1].start + a->ranges[a->nranges - 1].count :
			a->highest;
	} else if (c->next < a->cum) {
		c->next = a->cum;
	}
	if (!stall)
		c->stall_backoff = 0;   /* data reaches it again */
	if (a->nranges && (!c->acked || pace_repair_due(e, c, a, now))) {
		memcpy(c->repair, a->ranges, a->nranges * sizeof(a->ranges[0]));
		c->nrepair = a->nranges;
		c->repair_cur = a->ranges[0].start;
		pace_repair_taken(e, c, a, now);
	}
	c->acked = true;
	e->pump_dirty = true;
}

/* Chunks below this index may go to children now. */
static uint32_t sendable_end(const struct pfs_engine *e, const struct hier *h)
{
	const struct pfs_file *f = &h->f;

	if (e->cfg.mode == PFS_MODE_STORE_FORWARD)
		return f->complete ? f->nchunks : 0;
	if (f->final && f->have.prefix > f->nchunks)
		return f->nchunks;
	return f->have.prefix;
}

static void fill_chunk(const struct hier *h, const struct child *c, uint32_t idx,
		       struct pfs_action *act)
{
	memset(act, 0, sizeof(*act));
	act->type = PFS_ACT_SEND_CHUNK;
	act->dst = c->addr;
	act->peer_id = c->id;
	act->index = idx;
	act->offset = (uint64_t)idx * h->f.chunk_size;
	act->len = chunk_len(&h->f, idx);
}

/* Next chunk for one child: repairs first, then new data in its window. */
static bool child_next_chunk(struct pfs_engine *e, struct hier *h, struct child *c,
			     uint32_t end, pfs_time_t now, struct pfs_action *act)
{
	while (c->nrepair) {
		struct pfs_range *r = &c->repair[0];
		uint32_t idx = c->repair_cur;

		if (idx >= r->start + r->count || idx >= end) {
			memmove(c->repair, c->repair + 1, --c->nrepair * sizeof(*r));
			if (c->nrepair)
				c->repair_cur = c->repair[0].start;
			continue;
		}
		c->repair_cur++;
		if (pfs_bitmap_test(&h->f.have, idx)) {
			fill_chunk(h, c, idx, act);
			pace_on_send(c, idx, true, now);
			e->st.chunks_tx++;
			e->st.chunks_retx++;
			return true;
		}
	}
	if (c->next < c->limit && c->next < end) {
		pace_on_send(c, c->next, false, now);
		fill_chunk(h, c, c->next++, act);
		e->st.chunks_tx++;
		return true;
	}
	return false;
}

int xfer_pump(struct pfs_engine *e, struct hier *h, pfs_time_t now, struct pfs_action *act)
{
	uint32_t end;

	if (!serves_children(h) || !h->nchildren ||
	    !h->f.manifest || h->f.failed)
		return 0;
	end = sendable_end(e, h);
	for (unsigned n = 0; n < h->nchildren_cap; n++) {
		unsigned s = (h->pump_child + n) % h->nchildren_cap;
		struct child *c = &h->children[s];

		if (!c->used || !c->acked || c->complete)
			continue;
		if (child_next_chunk(e, h, c, end, now, act)) {
			c->last_sent = now;
			h->pump_child = (uint16_t)((s + 1) % h->nchildren_cap);
			return 1;
		}
	}
	return 0;
}

void pfs_engine_file_hashed(struct pfs_engine *e, pfs_time_t now, int hidx,
			    const uint8_t sha256[32])
{
	struct hier *h;
	struct qitem *qi;

	if (hidx < 0 || hidx >= e->nhiers || !e->hiers[hidx].f.hashing)
		return;
	h = &e->hiers[hidx];
	h->f.hashing = false;
	if (memcmp(sha256, h->f.sha256, 32) != 0) {
		/* A chunk passed its CRC but the file is wrong; v1 cannot tell
		 * which one, so fetch it all again (docs/protocol.md 6.6). A
		 * second time in a row, the copy we are fed is bad (or its
		 * sender lies): that parent is left like a forger (6.7), or the
		 * node fetched the same bad bytes from it at LAN speed for as
		 * long as it lived (fuzz_site: 3,900 times in 300 s). */
		e->st.verify_failures++;
		eng_event(e, h, PFS_EV_VERIFY_FAILED, 0, NULL, 0, 0);
		reset_file(&h->f);
		if (h->state == H_MEMBER && ++h->bad_files >= BAD_FILES_MAX) {
			h->bad_files = 0;
			integ_distrust(e, h, now, h->parent_id, PFS_DISTRUST_BAD_FILE);
			return;
		}
		if (h->state == H_MEMBER && (qi = eng_queue(e, h, PFS_ACT_SEND))) {
			qi->msg = PFS_MSG_ACK;      /* STALL: resend from 0 */
			qi->reason = PFS_AF_STALL;
			qi->act.dst = h->parent;
			qi->act.peer_id = h->parent_id;
		}
		return;
	}
	file_verified(e, h, now);
}

static void file_verified(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	struct qitem *qi;

	h->f.complete = true;
	eng_event(e, h, PFS_EV_COMPLETE, 0, NULL, h->f.nchunks, 0);
	qi = eng_queue(e, h, PFS_ACT_FILE_DONE);
	if (qi) {
		qi->act.size = h->f.size;
		qi->act.sha256 = h->f.sha256;
	}
	xfer_send_ack(e, h, now);       /* COMPLETE: the parent stops sending */
	e->pump_dirty = true;
}

/* Has the parent's data stopped (an ACK with STALL)? Nothing came during
 * the last ack_interval, nor for four of the usual gaps between chunks:
 * on a slow port (40 kB/s: a chunk every 36 ms) one lost chunk is a
 * silence of an ack_interval, and each such STALL sent the parent back
 * over what was still queued at its port (docs/protocol.md 6.3). Each gap
 * counts up to an ack_interval, so a parent that paused (its upstream)
 * delays the next STALL by 4 of them at most. */
static bool stall_due(const struct hier *h, pfs_time_t now)
{
	return !h->rx_since_tick && now - h->last_rx >= 4 * h->rx_gap;
}

void xfer_timers(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	if (h->t_upstream_retry && now >= h->t_upstream_retry) {
		h->t_upstream_retry = 0;
		if (h->state == H_ROOT || h->state == H_SOLO)   /* else xfer_upstream_stop missed */
			xfer_upstream_start(e, h, now);
	}
	if (h->state == H_MEMBER && now >= h->t_ack) {
		struct qitem *qi;
		if (!h->f.complete && stall_due(h, now) &&
		    (qi = eng_queue(e, h, PFS_ACT_SEND))) {
			qi->msg = PFS_MSG_ACK;
			qi->reason = PFS_AF_STALL;
			qi->act.dst = h->parent;
			qi->act.peer_id = h->parent_id;
			h->since_ack = 0;
			h->last_ack_sent = now;
			h->t_ack = now + e->cfg.ack_interval;
		} else {
			xfer_send_ack(e, h, now);
		}
		h->rx_since_tick = false;
	}
	if (h->state != H_ROOT && h->state != H_SOLO && h->state != H_IDLE &&
	    !h->f.complete && !h->f.failed && e->cfg.fallback_timeout &&
	    now - h->last_progress >= e->cfg.fallback_timeout)
		xfer_leave_tree(e, h, now, false, true);
}

pfs_time_t xfer_deadline(const struct pfs_engine *e, const struct hier *h)
{
	pfs_time_t t = PFS_TIME_NEVER;

	if (h->t_upstream_retry)
		t = h->t_upstream_retry;
	if (h->state == H_MEMBER)
		t = tmin(t, h->t_ack);
	if (h->state != H_ROOT && h->state != H_SOLO && h->state != H_IDLE &&
	    !h->f.complete && !h->f.failed && e->cfg.fallback_timeout)
		t = tmin(t, h->last_progress + e->cfg.fallback_timeout);
	return t;
}
