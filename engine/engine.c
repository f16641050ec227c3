/* engine.c - engine lifecycle, event dispatch, action queue and polling.
 *
 * Events are dispatched by message type to the election, tree and transfer
 * modules, which queue actions. pfs_engine_poll() drains that queue first
 * (control before data), encoding each message from the live state at that
 * moment, then asks the transfer pump for the next chunk to send.
 */
#include "engine_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void pfs_engine_config_defaults(struct pfs_engine_config *c)
{
	memset(c, 0, sizeof(*c));
	c->priority_class = PFS_CLASS_DEVICE;
	c->max_children = 2;
	c->mode = PFS_MODE_CUT_THROUGH;
	c->chunk_size = PFS_CHUNK_DEFAULT;
	c->max_chunks = 1u << 22;               /* 5.9 GB of 1408-byte chunks */
	c->listen_window = PFS_MSEC(250);
	c->claim_interval = PFS_MSEC(250);
	c->claim_count = 4;
	c->defer_timeout = PFS_MSEC(2000);
	c->announce_interval = PFS_MSEC(1000);
	c->join_timeout = PFS_MSEC(300);
	c->join_retries = 4;
	c->heartbeat_interval = PFS_MSEC(250);
	c->parent_timeout = PFS_MSEC(1500);
	c->child_timeout = PFS_MSEC(1500);
	c->ack_interval = PFS_MSEC(40);
	c->keepalive_interval = PFS_MSEC(500);
	c->repair_holdoff = PFS_MSEC(20);
	c->upstream_retry_delay = PFS_MSEC(1000);
	c->upstream_retries = 2;
	c->fallback_timeout = PFS_SEC(30);
	c->ack_every = 16;
	c->window = 128;
	c->bad_chunk_limit = 4;
	c->exclude_time = PFS_SEC(120);
}

static const char *const state_names[] = {
	[H_IDLE] = "idle", [H_CLAIMING] = "claiming", [H_DEFERRING] = "deferring",
	[H_JOINING] = "joining", [H_MEMBER] = "member", [H_ROOT] = "root",
	[H_SOLO] = "solo", [H_DETACHED] = "detached",
};

const char *eng_state_name(enum hier_state s) { return state_names[s]; }

static const char *const event_names[PFS_EV_COUNT] = {
	"claim_sent", "defer", "root_confirmed", "joined", "redirected",
	"child_added", "child_removed", "parent_lost", "yield", "manifest",
	"progress", "complete", "failed", "verify_failed", "fallback",
	"upstream_retry", "manifest_rejected", "distrust", "chunk_rejected", "reelect",
	"relay",
};

const char *pfs_event_name(enum pfs_event_code ev)
{
	return (unsigned)ev < PFS_EV_COUNT ? event_names[ev] : "?";
}

struct pfs_engine *pfs_engine_new(const struct pfs_engine_config *c)
{
	struct pfs_engine *e;

	bool beacon_only = c->relay == PFS_RELAY_ON && !c->model[0];

	if (!c->node_id || (!beacon_only && !pfs_model_valid(c->model, strlen(c->model))) ||
	    c->max_children == 0 || c->max_children > 256 || c->priority_class > 15 ||
	    c->chunk_size == 0 || c->chunk_size > PFS_CHUNK_MAX || c->claim_count == 0 ||
	    c->window == 0 || c->ack_every == 0 || c->bad_chunk_limit == 0) {
		errno = EINVAL;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->cfg = *c;
	e->rng = (uint64_t)c->random << 32 ^ c->node_id ^ 0x9e3779b97f4a7c15ull;
	e->qcap = 16;
	e->q = calloc(e->qcap, sizeof(*e->q));
	if (!e->q) {
		free(e);
		return NULL;
	}
	if (c->site) {
		int rc = auth_init(e);
		if (rc < 0) {
			free(e->q);
			free(e);
			errno = -rc;
			return NULL;
		}
	}
	return e;
}

void pfs_engine_free(struct pfs_engine *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->nhiers; i++) {
		free(e->hiers[i].children);
		pfs_bitmap_free(&e->hiers[i].f.have);
		integ_free(&e->hiers[i]);
	}
	free(e->hiers);
	free(e->q);
	auth_free(e);
	free(e);
}

/* xorshift64*: deterministic per node, so simulations replay exactly. */
uint32_t eng_random(struct pfs_engine *e)
{
	e->rng ^= e->rng >> 12;
	e->rng ^= e->rng << 25;
	e->rng ^= e->rng >> 27;
	return (uint32_t)((e->rng * 0x2545f4914f6cdd1dull) >> 32);
}

/* base +- 12.5%: keeps many nodes' periodic timers from firing in step. */
pfs_time_t eng_jitter(struct pfs_engine *e, pfs_time_t base)
{
	pfs_time_t span = base / 4;
	return span ? base - span / 2 + eng_random(e) % span : base;
}

int eng_hidx(const struct pfs_engine *e, const struct hier *h)
{
	return (int)(h - e->hiers);
}

struct qitem *eng_queue(struct pfs_engine *e, struct hier *h, enum pfs_action_type t)
{
	struct qitem *qi;

	if (e->qlen == e->qcap) {
		uint32_t ncap = e->qcap * 2;
		struct qitem *nq;

		if (ncap > 65536 || !(nq = calloc(ncap, sizeof(*nq)))) {
			e->st.queue_drops++;
			return NULL;
		}
		for (uint32_t i = 0; i < e->qlen; i++)
			nq[i] = e->q[(e->qhead + i) % e->qcap];
		free(e->q);
		e->q = nq;
		e->qcap = ncap;
		e->qhead = 0;
	}
	qi = &e->q[(e->qhead + e->qlen++) % e->qcap];
	memset(qi, 0, sizeof(*qi));
	qi->act.type = t;
	qi->act.hidx = h ? eng_hidx(e, h) : -1;
	return qi;
}

void eng_send(struct pfs_engine *e, struct hier *h, uint8_t msg, uint32_t peer_id,
	      const struct pfs_addr *dst)
{
	struct qitem *qi = eng_queue(e, h, PFS_ACT_SEND);

	if (!qi)
		return;
	qi->msg = msg;
	qi->act.dst = *dst;
	qi->act.peer_id = peer_id;
}

void eng_bcast(struct pfs_engine *e, struct hier *h, uint8_t msg)
{
	struct qitem *qi = eng_queue(e, h, PFS_ACT_SEND);

	if (!qi)
		return;
	qi->msg = msg;
	qi->act.bcast = true;
}

void eng_event(struct pfs_engine *e, struct hier *h, enum pfs_event_code ev,
	       uint32_t peer_id, const struct pfs_addr *peer, uint32_t a, uint32_t b)
{
	struct qitem *qi = eng_queue(e, h, PFS_ACT_EVENT);

	if (!qi)
		return;
	qi->act.event = ev;
	qi->act.peer_id = peer_id;
	if (peer)
		qi->act.peer = *peer;
	qi->act.a = a;
	qi->act.b = b;
	qi->act.size = h->f.size;
}

static struct hier *find_hier(struct pfs_engine *e, uint64_t key)
{
	for (int i = 0; i < e->nhiers; i++)
		if (e->hiers[i].key == key)
			return &e->hiers[i];
	return NULL;
}

void pfs_engine_set_priority(struct pfs_engine *e, uint8_t priority_class)
{
	if (priority_class <= 15)
		e->cfg.priority_class = priority_class;
}

int pfs_engine_want(struct pfs_engine *e, pfs_time_t now, const char *path)
{
	size_t plen = strlen(path);
	uint64_t key;
	struct hier *h, *nh;

	if (!pfs_filepath_valid(path, plen) || !e->cfg.model[0])
		return -EINVAL;
	key = pfs_hier_key(e->cfg.model, strlen(e->cfg.model), path, plen);
	if (find_hier(e, key))
		return -EEXIST;
	nh = realloc(e->hiers, (size_t)(e->nhiers + 1) * sizeof(*nh));
	if (!nh)
		return -ENOMEM;
	e->hiers = nh;
	h = &e->hiers[e->nhiers];
	memset(h, 0, sizeof(*h));
	h->children = calloc(e->cfg.max_children, sizeof(*h->children));
	if (!h->children)
		return -ENOMEM;
	e->nhiers++;
	h->nchildren_cap = e->cfg.max_children;
	h->key = key;
	memcpy(h->path, path, plen + 1);
	h->plen = (uint16_t)plen;
	h->f.short_index = UINT32_MAX;
	h->strength = (uint32_t)e->cfg.priority_class << PFS_STRENGTH_CLASS_SHIFT |
		      ((eng_random(e) & PFS_STRENGTH_RANDOM_MASK) | 1);
	h->last_progress = now;
	if (e->cfg.mode == PFS_MODE_TFTP_ONLY) {
		h->state = H_SOLO;
		h->f.manifest = true;
		h->f.chunk_size = e->cfg.chunk_size;
		xfer_upstream_start(e, h, now);
	} else {
		elect_start(e, h, now);
	}
	return eng_hidx(e, h);
}

/* Route a decoded message to the module that owns its state. */
static void dispatch(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		     const struct pfs_msg *m, const struct pfs_addr *src)
{
	struct child *c;

	if (!integ_source_ok(e, h, m, src))
		return;
	if (m->type != PFS_MSG_JOIN && m->type != PFS_MSG_ACK && m->type != PFS_MSG_MREQ &&
	    m->type != PFS_MSG_LEAVE && integ_excluded(h, m->sender, now)) {
		e->st.rx_excluded++;    /* it served us bad data: not our parent or root */
		return;
	}
	switch (m->type) {
	case PFS_MSG_CLAIM:     elect_on_claim(e, h, now, m, src); break;
	case PFS_MSG_ROOT:      elect_on_root(e, h, now, m, src); break;
	case PFS_MSG_JOIN:      tree_on_join(e, h, now, m, src); break;
	case PFS_MSG_ACCEPT:    tree_on_accept(e, h, now, m, src); break;
	case PFS_MSG_REDIRECT:  tree_on_redirect(e, h, now, m, src); break;
	case PFS_MSG_REFUSE:    tree_on_refuse(e, h, now, m, src); break;
	case PFS_MSG_LEAVE:     tree_on_leave(e, h, now, m, src); break;
	case PFS_MSG_HEARTBEAT: tree_on_heartbeat(e, h, now, m, src); break;
	case PFS_MSG_DATA:
		if (h->state != H_MEMBER || m->sender != h->parent_id) {
			e->st.rx_stray++;
			break;
		}
		h->parent_heard = now;
		xfer_on_data(e, h, now, m);
		break;
	case PFS_MSG_ACK:
		c = tree_child_by_id(h, m->sender);
		if (!c) {
			/* It thinks we are its parent; we dropped it. */
			e->st.rx_stray++;
			struct qitem *qi = eng_queue(e, h, PFS_ACT_SEND);
			if (qi) {
				qi->msg = PFS_MSG_REFUSE;
				qi->reason = PFS_REASON_NOT_MEMBER;
				qi->answers = PFS_MSG_ACK;
				qi->act.dst = *src;
				qi->act.peer_id = m->sender;
			}
			break;
		}
		c->last_heard = now;
		xfer_on_ack(e, h, now, c, &m->u.ack);
		break;
	case PFS_MSG_MREQ:
		if ((c = tree_child_by_id(h, m->sender))) {
			c->last_heard = now;
			integ_on_mreq(e, h, c, &m->u.mreq);
		} else {
			e->st.rx_stray++;
		}
		break;
	case PFS_MSG_MANIFEST:
		if (h->state != H_MEMBER || m->sender != h->parent_id) {
			e->st.rx_stray++;
			break;
		}
		h->parent_heard = now;
		integ_on_piece(e, h, now, &m->u.mpiece);
		break;
	}
}

int pfs_engine_accept(struct pfs_engine *e, const uint8_t *buf, size_t len, struct pfs_msg *m)
{
	int rc = pfs_decode(buf, len, m);

	if (rc < 0) {
		e->st.rx_bad[pfs_codec_err_index(rc)]++;      /* the codec's reason */
		return -EBADMSG;
	}
	return pfs_engine_accept_msg(e, buf, len, m);
}

int pfs_engine_accept_msg(struct pfs_engine *e, const uint8_t *buf, size_t len,
			  const struct pfs_msg *m)
{
	if (m->sender == e->cfg.node_id)
		return 1;       /* our own broadcast looped back */
	if (e->auth && m->type != PFS_MSG_DATA) {
		int why = auth_check(e, m, buf, len);
		if (why) {      /* an outsider, or a replay: nothing it says counts */
			e->st.auth_drops[why - 1]++;
			return 1;
		}
		e->st.auth_ok++;
	}
	return 0;
}

int pfs_engine_recv(struct pfs_engine *e, pfs_time_t now, const struct pfs_addr *src,
		    const uint8_t *buf, size_t len)
{
	struct pfs_msg m;
	int rc = pfs_engine_accept(e, buf, len, &m);

	if (rc == 0)
		pfs_engine_recv_msg(e, now, src, &m);
	return rc < 0 ? rc : 0;         /* -EBADMSG, or 0 (taken, or dropped as ours) */
}

void pfs_engine_recv_held(struct pfs_engine *e, pfs_time_t now, const struct pfs_addr *src,
			  const struct pfs_msg *m, bool digest_checked)
{
	e->rx_digest_checked = digest_checked && m->type == PFS_MSG_DATA;
	pfs_engine_recv_msg(e, now, src, m);
	e->rx_digest_checked = false;
}

void pfs_engine_recv_msg(struct pfs_engine *e, pfs_time_t now, const struct pfs_addr *src,
			 const struct pfs_msg *m)
{
	struct hier *h;

	e->st.rx_msgs[m->type]++;
	if (m->type == PFS_MSG_RELAY) {
		relay_on_beacon(e, now, m, src);
		return;
	}
	/* CLAIM, ROOT and JOIN name their model: another model's trees are
	 * none of our business (docs/protocol.md 4). */
	if (m->type == PFS_MSG_CLAIM || m->type == PFS_MSG_ROOT || m->type == PFS_MSG_JOIN) {
		const struct pfs_str *model = m->type == PFS_MSG_CLAIM ? &m->u.claim.model :
					      m->type == PFS_MSG_ROOT ? &m->u.root.model :
					      &m->u.join.model;
		if (model->len != strlen(e->cfg.model) ||
		    memcmp(model->p, e->cfg.model, model->len) != 0) {
			e->st.rx_foreign++;
			return;
		}
	}
	h = find_hier(e, m->hier);
	if (!h || h->state == H_IDLE || h->state == H_SOLO) {
		e->st.rx_unknown++;
		/* Not in that tree (any more: a node that gave a hierarchy
		 * up is IDLE in it): a joiner hears so at once, rather than
		 * after its retries (docs/protocol.md 5.1). */
		if (m->type == PFS_MSG_JOIN) {
			struct qitem *qi = eng_queue(e, NULL, PFS_ACT_SEND);
			if (qi) {   /* encoded at poll time without a hierarchy */
				qi->msg = PFS_MSG_REFUSE;
				qi->reason = PFS_REASON_NOT_MEMBER;
				qi->answers = PFS_MSG_JOIN;
				qi->act.dst = *src;
				qi->act.hier = m->hier;
			}
		}
		return;
	}
	dispatch(e, h, now, m, src);
}

void pfs_engine_timeout(struct pfs_engine *e, pfs_time_t now)
{
	relay_timers(e, now);
	for (int i = 0; i < e->nhiers; i++) {
		struct hier *h = &e->hiers[i];
		elect_timers(e, h, now);
		tree_timers(e, h, now);
		xfer_timers(e, h, now);
		integ_timers(e, h, now);
	}
}

pfs_time_t pfs_engine_next_deadline(const struct pfs_engine *e)
{
	pfs_time_t t = relay_deadline(e);

	for (int i = 0; i < e->nhiers; i++) {
		const struct hier *h = &e->hiers[i];
		t = tmin(t, elect_deadline(e, h));
		t = tmin(t, tree_deadline(e, h));
		t = tmin(t, xfer_deadline(e, h));
		t = tmin(t, integ_deadline(e, h));
	}
	return t;
}

/* Encode a queued SEND from the hierarchy's state as it is now. */
static int encode_queued(struct pfs_engine *e, struct qitem *qi, uint8_t *buf, size_t cap)
{
	struct hier *h = qi->act.hidx >= 0 ? &e->hiers[qi->act.hidx] : NULL;
	struct pfs_msg m;
	struct pfs_str model = { e->cfg.model, (uint16_t)strlen(e->cfg.model) };
	struct pfs_str path = { h ? h->path : NULL, h ? h->plen : 0 };

	memset(&m, 0, sizeof(m));
	m.type = qi->msg;
	m.sender = e->cfg.node_id;
	if (e->auth) {          /* a zeroed tag, filled by auth_sign() */
		m.flags = PFS_HF_AUTH;
		m.auth_len = PFS_TAG_LEN;
	}
	m.hier = h ? h->key : qi->act.hier;
	switch (qi->msg) {
	case PFS_MSG_CLAIM:
		m.u.claim = (struct pfs_msg_claim){ h->strength, qi->hops, model, path };
		break;
	case PFS_MSG_ROOT:
		m.u.root = (struct pfs_msg_root){ h->strength, tree_subtree(h),
			h->f.failed && h->f.fail_cause != PFS_FAIL_LOCAL ? PFS_RF_FAILED : 0,
			model, path };
		break;
	case PFS_MSG_JOIN:
		m.u.join = (struct pfs_msg_join){ tree_subtree(h), qi->hops, model, path };
		break;
	case PFS_MSG_ACCEPT:
		m.u.accept.slot = qi->slot;
		tree_fill_status(e, h, &m.u.accept.st);
		break;
	case PFS_MSG_HEARTBEAT:
		tree_fill_status(e, h, &m.u.heartbeat);
		break;
	case PFS_MSG_REDIRECT:
		m.u.redirect = (struct pfs_msg_redirect){ qi->target_id, qi->target.ip,
			qi->target.port };
		break;
	case PFS_MSG_REFUSE:
	case PFS_MSG_LEAVE:
		m.u.reason.reason = qi->reason;
		m.u.reason.answers = qi->answers;
		break;
	case PFS_MSG_ACK:
		xfer_fill_ack(e, h, &m.u.ack);
		m.u.ack.flags |= qi->reason;    /* STALL, decided when queued */
		break;
	case PFS_MSG_MREQ:
		if (!h->man.buf)
			return PFS_E_FIELD;     /* the fetch ended meanwhile */
		m.u.mreq = (struct pfs_msg_mreq){ (uint32_t)qi->act.offset, h->man.len };
		break;
	case PFS_MSG_MANIFEST:
		if (integ_encode_piece(h, (uint32_t)qi->act.offset, &m) < 0)
			return PFS_E_FIELD;
		break;
	case PFS_MSG_RELAY:
		relay_fill_beacon(e, &m.u.relay);
		break;
	default:
		return PFS_E_TYPE;
	}
	return pfs_encode(&m, buf, cap);
}

int pfs_engine_poll(struct pfs_engine *e, pfs_time_t now, struct pfs_action *act,
		    uint8_t *buf, size_t cap)
{
	while (e->qlen) {
		struct qitem *qi = &e->q[e->qhead];
		e->qhead = (e->qhead + 1) % e->qcap;
		e->qlen--;
		*act = qi->act;
		act->user = NULL;
		if (act->hidx >= 0) {
			struct hier *h = &e->hiers[act->hidx];
			act->user = h->user;
			act->hier = h->key;
			act->path = h->path;
			act->chunk_size = h->f.chunk_size;
		}
		act->model = e->cfg.model;
		if (act->type == PFS_ACT_SEND) {
			int len = encode_queued(e, qi, buf, cap);
			if (len < 0)
				continue;       /* state no longer encodable: drop */
			if (e->auth && auth_sign(e, buf, (size_t)len) < 0)
				continue;
			act->msg = buf;
			act->len = (size_t)len;
			e->st.tx_msgs[qi->msg]++;
		}
		return 1;
	}
	/* Data: one chunk per call, rotating over hierarchies and children so
	 * no child or file starves another (docs/protocol.md 6.3). */
	if (!e->pump_dirty)
		return 0;
	for (int n = 0; n < e->nhiers; n++) {
		struct hier *h = &e->hiers[e->pump_hier % e->nhiers];
		if (xfer_pump(e, h, now, act)) {
			act->hidx = eng_hidx(e, h);
			act->user = h->user;
			act->hier = h->key;
			act->model = e->cfg.model;
			act->path = h->path;
			act->chunk_size = h->f.chunk_size;
			return 1;
		}
		e->pump_hier = (e->pump_hier + 1) % e->nhiers;
	}
	e->pump_dirty = false;
	return 0;
}

void pfs_engine_shutdown(struct pfs_engine *e, pfs_time_t now)
{
	(void)now;
	for (int i = 0; i < e->nhiers; i++)
		tree_leave(e, &e->hiers[i]);
}

void pfs_engine_upstream_data(struct pfs_engine *e, pfs_time_t now, int hidx, uint64_t bytes)
{
	struct hier *h;

	if (hidx < 0 || hidx >= e->nhiers)
		return;
	h = &e->hiers[hidx];
	if (!h->upstream_active || !h->f.chunk_size)
		return;
	uint64_t full = bytes / h->f.chunk_size;
	if (full > e->cfg.max_chunks)
		full = e->cfg.max_chunks;
	if (full > h->f.have.prefix) {
		pfs_bitmap_set_prefix(&h->f.have, (uint32_t)full);
		h->last_progress = now;
		e->pump_dirty = true;
	}
}
