/* integrity.c - signed manifests in the tree, chunks checked against them,
 * and neighbours that fail the checks left and excluded
 * (docs/protocol.md 6.7, docs/security.md).
 *
 * A root fetches FILE.pfsm with the file and verifies it before it sends a
 * byte; every other node fetches the manifest from its parent (MREQ, answered
 * by MANIFEST pieces) and verifies it before it accepts a chunk. Until then
 * its ACKs advertise a zero window, so its parent sends it nothing. Each
 * chunk is checked against its digest before it is stored, acknowledged or
 * forwarded; a root checks the server's bytes the same way.
 *
 * Manifest fetch, child side:
 *
 *     none --status SIGNED--> FETCHING --all pieces--> verify --ok--> VERIFIED
 *                              |  ^ new piece: tries = 0,       |
 *                              |  |   MREQ ahead (4 bursts)     | bad
 *                              |  + no piece for req_wait:      |
 *                              |      MREQ from the first hole  |
 *                              v                                v
 *                 MREQ_TRIES without a piece --------> distrust the parent
 *
 *   event                                 action
 *   chunk fails its digest                drop, count; bad_chunk_limit: distrust
 *   parent offers unsigned, signed needed distrust
 *   distrust(n)                           exclude n for exclude_time; LEAVE it;
 *                                         re-join via the root, or elect anew
 *                                         if n was the root
 */
#include "engine_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MREQ_BURST 32           /* pieces a parent sends per MREQ */
#define MREQ_TRIES 8            /* MREQs without progress before we give up */
#define MREQ_WINDOW 4           /* bursts asked for ahead of the pieces held */
#define DISTRUST_SOLO 3         /* neighbours left for bad data before we fetch ourselves */

bool integ_required(const struct pfs_engine *e)
{
	return e->cfg.trust && !e->cfg.trust->allow_unsigned;
}

/* May chunks be taken now? Never while a manifest is being fetched, and
 * never without one where signed files are required. */
bool integ_accepts_data(const struct pfs_engine *e, const struct hier *h)
{
	if (h->man.verified)
		return true;
	return !integ_required(e) && !h->man.buf;
}

bool integ_excluded(const struct hier *h, uint32_t id, pfs_time_t now)
{
	for (unsigned i = 0; i < EXCLUDE_MAX; i++)
		if (h->excl[i].id == id && now < h->excl[i].until)
			return true;
	return false;
}

void integ_exclude(struct pfs_engine *e, struct hier *h, uint32_t id, pfs_time_t now)
{
	struct exclusion *x = &h->excl[0];

	for (unsigned i = 0; i < EXCLUDE_MAX; i++) {
		if (h->excl[i].id == id) {
			x = &h->excl[i];
			break;
		}
		if (h->excl[i].until < x->until)
			x = &h->excl[i];        /* the oldest (or a free) entry */
	}
	x->id = id;
	x->until = now + e->cfg.exclude_time;
}

static void fetch_reset(struct hier *h)
{
	free(h->man.buf);
	h->man.buf = NULL;
	h->man.len = 0;
	h->man.verified = false;
	h->man.from = 0;
	h->man.tries = 0;
	pfs_bitmap_free(&h->man.pieces);
	memset(&h->man.pieces, 0, sizeof(h->man.pieces));
}

void integ_free(struct hier *h)
{
	fetch_reset(h);
	free(h->man.up_chunk);
	h->man.up_chunk = NULL;
}

static bool same_addr(const struct pfs_addr *a, const struct pfs_addr *b)
{
	return a->ip == b->ip && a->port == b->port;
}

/* The sender field proves nothing: a message is taken from our parent or a
 * child only if it comes from the address that neighbour has. Messages that
 * only a parent sends, claiming our parent's id from elsewhere, are forged
 * or stale; so are a child's from another address. */
bool integ_source_ok(struct pfs_engine *e, struct hier *h, const struct pfs_msg *m,
		      const struct pfs_addr *src)
{
	struct child *c;

	switch (m->type) {
	case PFS_MSG_HEARTBEAT:
	case PFS_MSG_DATA:
	case PFS_MSG_MANIFEST:
	case PFS_MSG_REFUSE:
	case PFS_MSG_LEAVE:
		if (h->state == H_MEMBER && m->sender == h->parent_id &&
		    !same_addr(src, &h->parent))
			goto wrong;
		if (m->type != PFS_MSG_LEAVE || !(c = tree_child_by_id(h, m->sender)))
			return true;
		return same_addr(src, &c->addr) ? true : (e->st.rx_wrong_source++, false);
	case PFS_MSG_ACK:
	case PFS_MSG_MREQ:
		c = tree_child_by_id(h, m->sender);
		if (c && !same_addr(src, &c->addr))
			goto wrong;
		return true;
	default:
		return true;
	}
wrong:
	e->st.rx_wrong_source++;
	return false;
}

void integ_distrust(struct pfs_engine *e, struct hier *h, pfs_time_t now, uint32_t id,
		    enum pfs_distrust_reason why)
{
	struct qitem *qi;

	integ_exclude(e, h, id, now);
	e->st.distrusted++;
	eng_event(e, h, PFS_EV_DISTRUST, id, NULL, why, 0);
	h->bad_chunks = 0;
	if (!h->man.verified && h->man.from == id)
		fetch_reset(h);
	if (id == h->root_id && h->state == H_MEMBER && h->parent_id == id)
		h->root_known = false;
	/* A third neighbour left for bad data: the nodes around us cannot be
	 * told apart from the ones we exclude (a node remembers EXCLUDE_MAX),
	 * so the server, the file's authority, is asked once instead: else a
	 * member among more forgers than that cycled through them for good,
	 * each costing it the file again (fuzz_site: 1,286 whole-file failures
	 * in 300 s among seven; docs/protocol.md 6.7). */
	if (++h->distrusts >= DISTRUST_SOLO && !h->f.complete && !h->f.failed &&
	    h->state != H_ROOT && h->state != H_SOLO && h->state != H_IDLE) {
		xfer_fallback(e, h, now);       /* LEAVE to the parent, our children told */
		return;
	}
	if (h->state == H_MEMBER && h->parent_id == id) {
		if ((qi = eng_queue(e, h, PFS_ACT_SEND))) {
			qi->msg = PFS_MSG_LEAVE;
			qi->reason = PFS_REASON_REPARENT;
			qi->act.dst = h->parent;
			qi->act.peer_id = id;
		}
		tree_parent_lost(e, h, now, PFS_REASON_REPARENT);
	}
}

static uint32_t npieces(uint32_t len) { return (len + PFS_MPIECE_LEN - 1) / PFS_MPIECE_LEN; }

/* No new piece this long: ask again from the first we lack. */
static pfs_time_t mreq_wait(const struct pfs_engine *e)
{
	return tmin(e->cfg.parent_timeout, 4 * e->cfg.ack_interval);
}

/* Ask our parent for the burst of pieces from `first` on. */
static void send_mreq(struct pfs_engine *e, struct hier *h, pfs_time_t now, uint32_t first)
{
	struct qitem *qi = eng_queue(e, h, PFS_ACT_SEND);

	if (qi) {
		qi->msg = PFS_MSG_MREQ;
		qi->act.offset = (uint64_t)first * PFS_MPIECE_LEN;
		qi->act.dst = h->parent;
		qi->act.peer_id = h->parent_id;
	}
	h->man.req_end = first + MREQ_BURST;
	h->man.t_req = now + mreq_wait(e);
}

/* Keep MREQ_WINDOW bursts asked for beyond the pieces we hold in order: the
 * next is asked for as soon as a burst's worth has come. One burst asked
 * for only once the last had all come cost a round trip through the
 * parent's loop per 32 KiB: 366 of them for a 1 GB file's 12 MB manifest,
 * seconds on a busy parent, with the member's window shut meanwhile. Held
 * pieces are skipped, and a hole is asked for again by the timer. */
static void mreq_ahead(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	uint32_t total = npieces(h->man.len), held = h->man.pieces.prefix;
	uint32_t next = h->man.req_end > held ? h->man.req_end : held;

	while (next < total && next - held <= (MREQ_WINDOW - 1) * MREQ_BURST) {
		next = pfs_bitmap_next_clear(&h->man.pieces, next);
		if (next >= total)
			break;
		send_mreq(e, h, now, next);
		next = h->man.req_end;
	}
}

static void fetch_start(struct pfs_engine *e, struct hier *h, pfs_time_t now, uint32_t len)
{
	fetch_reset(h);
	h->man.buf = malloc(len);
	if (!h->man.buf) {
		e->st.manifests_rejected[-PFS_MAN_E_NOMEM]++;
		return;
	}
	h->man.len = len;
	h->man.from = h->parent_id;
	h->man.req_end = 0;
	mreq_ahead(e, h, now);
}

/* The manifest in h->man.buf is verified: it now defines the file. */
static void adopt(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	struct pfs_file *f = &h->f;
	const struct pfs_manifest *m = &h->man.m;
	struct qitem *qi;

	h->man.verified = true;
	pfs_bitmap_free(&h->man.pieces);
	memset(&h->man.pieces, 0, sizeof(h->man.pieces));
	e->st.manifests_ok++;
	if (f->have.count && !f->complete) {
		/* Chunks taken before (an unsigned tree we were allowed to
		 * use) were never checked against these digests. */
		pfs_bitmap_clear(&f->have);
		f->short_index = UINT32_MAX;
		f->progress_step = 0;
	}
	f->manifest = true;
	f->final = true;
	f->chunk_size = m->chunk_size;
	f->size = m->size;
	f->nchunks = m->nchunks;
	memcpy(f->sha256, m->sha256, 32);
	eng_event(e, h, PFS_EV_MANIFEST, 0, NULL, f->nchunks, 0);
	if ((qi = eng_queue(e, h, PFS_ACT_MANIFEST_OK))) {
		qi->act.sequence = m->sequence;
		qi->act.data = h->man.buf;      /* lives as long as the hierarchy */
		qi->act.len = h->man.len;
	}
	h->t_heartbeat = 0;             /* children hear of it now */
	h->last_progress = now;
	if (h->state == H_MEMBER)
		xfer_send_ack(e, h, now);       /* opens our window */
	xfer_check_complete(e, h, now);        /* an empty file: nothing to wait for */
}

/* Check buf as h's manifest; keys may be absent only where unsigned files
 * are allowed (then the structure is checked, and the digests used). */
static int check(struct pfs_engine *e, struct hier *h, const uint8_t *buf, size_t len)
{
	const struct pfs_trust *t = e->cfg.trust;
	int rc;

	if (t && t->nkeys)
		rc = pfs_manifest_verify(t, buf, len, h->path, h->man.floor, &h->man.m);
	else if ((rc = pfs_manifest_parse(buf, len, &h->man.m)) == 0 &&
		 (h->man.m.name_len != h->plen || memcmp(h->man.m.name, h->path, h->plen)))
		rc = PFS_MAN_E_NAME;
	if (rc == 0 && (uint64_t)h->man.m.nchunks > e->cfg.max_chunks)
		rc = PFS_MAN_E_FIELD;
	if (rc < 0)
		e->st.manifests_rejected[-rc]++;
	return rc;
}

bool integ_on_status(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		     const struct pfs_status *st)
{
	if (!e->cfg.trust)
		return true;            /* v1: the status is the manifest */
	if (h->man.verified)
		return false;           /* ours is signed: it alone defines the file */
	if (st->mflags & PFS_MF_SIGNED) {
		if (!h->man.buf || h->man.from != h->parent_id || h->man.len != st->manifest_len)
			fetch_start(e, h, now, st->manifest_len);
		return false;
	}
	if (integ_required(e)) {
		if (st->mflags & PFS_MF_FINAL)
			integ_distrust(e, h, now, h->parent_id, PFS_DISTRUST_UNSIGNED);
		return false;           /* not final: its root is still fetching */
	}
	return true;
}

void integ_on_mreq(struct pfs_engine *e, struct hier *h, struct child *c,
		   const struct pfs_msg_mreq *r)
{
	if (!h->man.verified || r->total != h->man.len)
		return;                 /* it asks for another manifest than ours */
	for (uint32_t off = r->offset, n = 0; off < h->man.len && n < MREQ_BURST;
	     off += PFS_MPIECE_LEN, n++) {
		struct qitem *qi = eng_queue(e, h, PFS_ACT_SEND);
		if (!qi)
			break;
		qi->msg = PFS_MSG_MANIFEST;
		qi->act.offset = off;
		qi->act.dst = c->addr;
		qi->act.peer_id = c->id;
	}
}

int integ_encode_piece(const struct hier *h, uint32_t offset, struct pfs_msg *m)
{
	if (!h->man.verified || offset >= h->man.len)
		return PFS_E_FIELD;
	m->u.mpiece.total = h->man.len;
	m->u.mpiece.offset = offset;
	m->u.mpiece.bytes = h->man.buf + offset;
	m->u.mpiece.len = (uint16_t)(h->man.len - offset < PFS_MPIECE_LEN ? h->man.len - offset
									   : PFS_MPIECE_LEN);
	return 0;
}

void integ_on_piece(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		    const struct pfs_msg_mpiece *p)
{
	uint32_t idx = p->offset / PFS_MPIECE_LEN;
	int rc;

	if (!h->man.buf || h->man.verified || p->total != h->man.len ||
	    h->man.from != h->parent_id || pfs_bitmap_test(&h->man.pieces, idx))
		return;
	if (pfs_bitmap_set(&h->man.pieces, idx) < 0)
		return;
	memcpy(h->man.buf + p->offset, p->bytes, p->len);
	h->man.tries = 0;
	h->man.t_req = now + mreq_wait(e);
	if (h->man.pieces.count < npieces(h->man.len)) {
		mreq_ahead(e, h, now);
		return;
	}
	rc = check(e, h, h->man.buf, h->man.len);
	if (rc < 0) {
		eng_event(e, h, PFS_EV_MANIFEST_REJECTED, h->parent_id, &h->parent, (uint32_t)-rc, 0);
		integ_distrust(e, h, now, h->parent_id, PFS_DISTRUST_BAD_MANIFEST);
		return;
	}
	adopt(e, h, now);
}

bool integ_chunk_ok(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		    const struct pfs_msg_data *d)
{
	if (!h->man.verified) {
		if (integ_accepts_data(e, h))
			return true;
		e->st.chunks_unverified++;
		return false;
	}
	if (pfs_manifest_chunk_ok(&h->man.m, d->index, d->payload, d->len))
		return true;
	e->st.chunks_forged++;
	eng_event(e, h, PFS_EV_CHUNK_REJECTED, h->parent_id, &h->parent, d->index, 0);
	if (++h->bad_chunks >= e->cfg.bad_chunk_limit)
		integ_distrust(e, h, now, h->parent_id, PFS_DISTRUST_BAD_CHUNKS);
	return false;
}

void integ_timers(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	if (h->state != H_MEMBER || !h->man.buf || h->man.verified || now < h->man.t_req)
		return;
	if (++h->man.tries >= MREQ_TRIES)
		integ_distrust(e, h, now, h->parent_id, PFS_DISTRUST_NO_MANIFEST);
	else
		send_mreq(e, h, now, pfs_bitmap_next_clear(&h->man.pieces, 0));
}

pfs_time_t integ_deadline(const struct pfs_engine *e, const struct hier *h)
{
	(void)e;
	return h->state == H_MEMBER && h->man.buf && !h->man.verified ? h->man.t_req
								       : PFS_TIME_NEVER;
}

int pfs_engine_have_file(struct pfs_engine *e, pfs_time_t now, int hidx, uint32_t chunk_size,
			 uint64_t size, const uint8_t sha256[32], const uint8_t *man,
			 size_t man_len)
{
	struct pfs_file *f;
	struct hier *h;
	struct qitem *qi;
	uint64_t n;
	int rc;

	if (hidx < 0 || hidx >= e->nhiers)
		return -EINVAL;
	h = &e->hiers[hidx];
	f = &h->f;
	if (f->complete || f->have.count || h->upstream_active)
		return -EALREADY;
	if (!chunk_size || chunk_size > PFS_CHUNK_MAX ||
	    (n = pfs_chunk_count(size, chunk_size)) > e->cfg.max_chunks)
		return -EINVAL;
	if (man) {
		uint8_t *copy = malloc(man_len);
		if (!copy)
			return PFS_MAN_E_NOMEM;
		memcpy(copy, man, man_len);
		fetch_reset(h);         /* a fetch from a parent, if one began */
		h->man.buf = copy;
		h->man.len = (uint32_t)man_len;
		if ((rc = check(e, h, copy, man_len)) < 0 || h->man.m.size != size ||
		    h->man.m.chunk_size != chunk_size || memcmp(h->man.m.sha256, sha256, 32)) {
			fetch_reset(h);
			return rc < 0 ? rc : -EINVAL;
		}
		adopt(e, h, now);
		if (f->complete)
			return 0;       /* an empty file: adopt() finished it */
	} else if (integ_required(e)) {
		return PFS_MAN_E_UNSIGNED;
	} else {
		f->manifest = f->final = true;
		f->chunk_size = chunk_size;
		f->size = size;
		f->nchunks = (uint32_t)n;
		memcpy(f->sha256, sha256, 32);
	}
	if (pfs_bitmap_set_prefix(&f->have, f->nchunks) < 0)
		return -ENOMEM;
	f->short_index = UINT32_MAX;
	f->complete = true;
	f->hashing = false;
	h->last_progress = now;
	eng_event(e, h, PFS_EV_COMPLETE, 0, NULL, f->nchunks, 0);
	if ((qi = eng_queue(e, h, PFS_ACT_FILE_DONE))) {
		qi->act.size = f->size;
		qi->act.sha256 = f->sha256;
	}
	if (h->state == H_MEMBER)
		xfer_send_ack(e, h, now);       /* COMPLETE: the parent sends nothing */
	h->t_heartbeat = 0;
	e->pump_dirty = true;
	return 0;
}

/* ---- the root's upstream copy ------------------------------------------ */

void pfs_engine_seq_floor(struct pfs_engine *e, int hidx, uint64_t sequence)
{
	if (hidx >= 0 && hidx < e->nhiers && sequence > e->hiers[hidx].man.floor)
		e->hiers[hidx].man.floor = sequence;
}

int pfs_engine_upstream_manifest(struct pfs_engine *e, pfs_time_t now, int hidx,
				 const uint8_t *buf, size_t len)
{
	struct hier *h;
	int rc;

	if (hidx < 0 || hidx >= e->nhiers || !e->hiers[hidx].upstream_active)
		return -EINVAL;
	h = &e->hiers[hidx];
	if (!buf || !len) {
		if (!integ_required(e))
			return 0;       /* an unsigned file, as allowed */
		rc = PFS_MAN_E_UNSIGNED;
		e->st.manifests_rejected[-rc]++;
	} else if (h->man.verified && len == h->man.len && !memcmp(buf, h->man.buf, len)) {
		return 0;               /* a retry: the same manifest */
	} else {
		uint8_t *copy = len <= PFS_MAN_MAX_LEN ? malloc(len) : NULL;
		if (!copy)
			return PFS_MAN_E_NOMEM;
		memcpy(copy, buf, len);
		fetch_reset(h);
		h->man.buf = copy;
		h->man.len = (uint32_t)len;
		rc = check(e, h, copy, len);
		if (rc == 0) {
			adopt(e, h, now);
			return 0;
		}
		fetch_reset(h);
	}
	eng_event(e, h, PFS_EV_MANIFEST_REJECTED, 0, NULL, (uint32_t)-rc, 0);
	/* No manifest where one is required is the server's answer, as a
	 * missing file is: not asked again. A bad one may be a bad copy. */
	pfs_engine_upstream_failed(e, now, hidx, rc == PFS_MAN_E_UNSIGNED ? -ENOENT : -EBADMSG);
	return rc;
}

int pfs_engine_upstream_write(struct pfs_engine *e, pfs_time_t now, int hidx, uint64_t off,
			      const uint8_t *data, size_t len)
{
	struct man_state *ms;
	struct hier *h;

	if (hidx < 0 || hidx >= e->nhiers)
		return -EINVAL;
	h = &e->hiers[hidx];
	ms = &h->man;
	if (!ms->verified) {
		pfs_engine_upstream_data(e, now, hidx, off + len);
		return 0;
	}
	if (off == 0) {
		ms->up_index = 0;       /* a fetch (re)starts */
		ms->up_fill = 0;
	}
	if (!ms->up_chunk && !(ms->up_chunk = malloc(ms->m.chunk_size)))
		return -ENOMEM;
	while (len) {
		uint32_t clen = pfs_manifest_chunk_len(&ms->m, ms->up_index);
		size_t take = clen - ms->up_fill < len ? clen - ms->up_fill : len;

		if (clen == 0) {
			e->st.upstream_bad_chunks++;
			return -EBADMSG;        /* longer than signed */
		}
		memcpy(ms->up_chunk + ms->up_fill, data, take);
		ms->up_fill += (uint32_t)take;
		data += take;
		len -= take;
		if (ms->up_fill < clen)
			break;
		if (!pfs_manifest_chunk_ok(&ms->m, ms->up_index, ms->up_chunk, clen)) {
			e->st.upstream_bad_chunks++;
			eng_event(e, h, PFS_EV_CHUNK_REJECTED, 0, NULL, ms->up_index, 0);
			return -EBADMSG;
		}
		if (pfs_bitmap_set(&h->f.have, ms->up_index) > 0) {
			h->last_progress = now;
			e->pump_dirty = true;
		}
		ms->up_index++;
		ms->up_fill = 0;
	}
	return 0;
}
