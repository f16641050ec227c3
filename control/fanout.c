/* fanout.c - pfs-control's side of local fan-out (docs/appliance.md 2.3).
 *
 * For each hierarchy the appliance is a member of (another node is root)
 * and has ready children, the dataplane holds a table: parent, cache file,
 * children by engine slot. It stores and replicates chunks as they arrive
 * and reports runs of them (CHUNKS_STORED). Here we
 *   - keep each table in step with the engine (sync, every loop), and keep
 *     cache room reserved ahead of the stream, since only we allocate;
 *   - hand each reported chunk to the engine as the DATA message it came
 *     in, its payload where the dataplane stored it (no encoding, no second
 *     CRC; the engine's WRITE_CHUNK finds the bytes in place and copies
 *     nothing): it then knows it holds it (ACKs, completion, its children);
 *   - remember, per chunk, which child slots the dataplane sent it to, and
 *     drop the engine's first send of it to such a child (consume). A later
 *     send of the same chunk to that child is a repair and goes out.
 * A report made with another generation of the table than ours is fed to
 * the engine, but its mask is not trusted: the children may have changed.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "control.h"

#define RESERVE_AHEAD_CHUNKS 4096       /* room kept ahead of the stream */

static int send_table(struct ctl *c, struct ctl_fanout *f, bool del)
{
	struct pfs_ring_msg m = {
		.type = PFS_RMSG_FANOUT,
		.flags = del ? PFS_RMSG_F_DELETE : 0,
		.slot = (uint32_t)f->fi,
		.hier = f->hier,
		.value = f->generation,
		.len = sizeof(f->tab),
	};

	memcpy(m.data, &f->tab, sizeof(f->tab));
	if (ctl_dplink_send(c, &m, true) < 0)
		return -ENOBUFS;
	c->st.fanout_tables++;
	return 0;
}

/* May the dataplane relay this hierarchy, and with which digests? Where no
 * file can be signed (allow_unsigned and no key), after the CRC alone; a
 * signed file only once its manifest is verified and in the cache, each
 * chunk checked against it there; anything else goes through the engine. */
static bool relay_allowed(struct ctl *c, struct ctl_engine *ce, const struct pfs_hier_info *info,
			  struct pfs_rmsg_fanout *t)
{
	char name[PFS_FILEPATH_MAX + 8];
	struct pfs_cache_file *mf;
	int mfi;

	if (!c->cfg.trust.nkeys && c->cfg.trust.allow_unsigned && !info->signed_ok)
		return true;
	if (!info->signed_ok || (size_t)snprintf(name, sizeof(name), "%s.pfsm", info->path) >=
	    sizeof(name) || (mfi = pfs_cache_find(c->cache, ce->model, name)) < 0 ||
	    !(mf = pfs_cache_file(c->cache, mfi)) || atomic_load(&mf->state) != PFS_CF_COMPLETE)
		return false;
	if (t) {
		t->flags = PFS_FANOUT_VERIFY;
		t->digests_fi = (uint32_t)mfi;
		t->digests_off = PFS_MAN_FIXED_LEN + (uint32_t)strlen(info->path);
		t->digests_gen = mf->gen;
	}
	return true;
}

/* The table this hierarchy should have: false when it should have none. */
static bool want_table(struct ctl *c, struct ctl_engine *ce, int hidx, int fi,
		       const struct pfs_hier_info *info, struct pfs_rmsg_fanout *t)
{
	bool any = false;

	memset(t, 0, sizeof(*t));
	if (!c->cfg.local_fanout || !c->dp_alive || c->cfg.mode != PFS_MODE_CUT_THROUGH ||
	    !relay_allowed(c, ce, info, t) ||
	    fi < 0 || info->is_root || info->complete || info->failed || !info->parent_id ||
	    !info->chunk_size || info->nchildren == 0)
		return false;
	t->parent_ip = info->parent.ip;
	t->parent_port = info->parent.port;
	t->chunk_size = info->chunk_size;
	for (unsigned s = 0; s < PFS_FANOUT_SLOTS; s++) {
		struct pfs_child_info ci;
		if (pfs_engine_child_info(ce->e, hidx, s, &ci) < 0 || !ci.id || !ci.ready)
			continue;
		t->child[s].ip = ci.addr.ip;
		t->child[s].port = ci.addr.port;
		any = true;
	}
	return any;
}

/* A slot now names another child (or none): its old marks mean nothing. */
static void forget_changed_slots(struct ctl_fanout *f, const struct pfs_rmsg_fanout *t)
{
	uint16_t clear = 0;

	for (unsigned s = 0; s < PFS_FANOUT_SLOTS; s++)
		if (f->tab.child[s].ip != t->child[s].ip || f->tab.child[s].port != t->child[s].port)
			clear |= (uint16_t)(1u << s);
	if (!clear)
		return;
	for (uint32_t i = 0; i < f->nsent; i++)
		f->sent[i] &= (uint16_t)~clear;
}

static void reserve_ahead(struct ctl *c, struct ctl_fanout *f, const struct pfs_hier_info *info)
{
	uint64_t upto = ((uint64_t)info->chunks_have + RESERVE_AHEAD_CHUNKS) * info->chunk_size;

	if (info->chunks_total && upto > info->size)
		upto = info->size;
	if (upto <= pfs_cache_reserved(c->cache, f->fi))
		return;
	if (pfs_cache_reserve(c->cache, f->fi, upto) < 0)
		c->st.cache_write_errors++;     /* the dataplane hands chunks to us */
}

/* false when the table could not be pushed (ring full). */
static bool sync_one(struct ctl *c, struct ctl_engine *ce, int hidx)
{
	struct ctl_hier *ch = ctl_hier(ce, hidx);
	struct ctl_fanout *f;
	struct pfs_hier_info info;
	struct pfs_rmsg_fanout t;
	int *fi;
	bool want;

	if (!ch || pfs_engine_hier_info(ce->e, hidx, &info) < 0)
		return true;
	f = ch->fan;
	fi = &ch->cache_fi;
	/* The cache entry is made on the first chunk; make it as soon as the
	 * manifest is known, so the first chunks can be relayed here too. */
	if (*fi < 0 && c->cfg.local_fanout && relay_allowed(c, ce, &info, NULL) &&
	    !info.is_root && info.chunk_size &&
	    !info.complete && info.nchildren)
		*fi = pfs_cache_create(c->cache, info.key, ce->model, info.path, info.chunk_size);
	want = want_table(c, ce, hidx, *fi, &info, &t);
	if (!want) {
		if (f && f->active) {
			if (send_table(c, f, true) < 0)
				return false;
			f->active = false;
		}
		return true;
	}
	if (!f) {
		f = ch->fan = calloc(1, sizeof(*f));
		if (!f)
			return true;    /* no table: the engine relays it */
	}
	if (f->fi != *fi || f->hier != info.key) {
		free(f->sent);
		memset(f, 0, sizeof(*f));
	}
	f->fi = *fi;
	f->hier = info.key;
	reserve_ahead(c, f, &info);
	t.generation = f->generation;
	if (f->active && !memcmp(&t, &f->tab, sizeof(t)))
		return true;
	forget_changed_slots(f, &t);
	t.generation = ++f->generation;
	f->tab = t;
	f->active = send_table(c, f, false) == 0;
	return f->active;
}

bool ctl_fanout_sync(struct ctl *c)
{
	bool all = true;

	for (int i = 0; i < c->neng; i++) {
		int n = pfs_engine_hier_count(c->eng[i].e);
		for (int h = 0; h < n; h++)
			all &= sync_one(c, &c->eng[i], h);
	}
	return all;
}

void ctl_fanout_lost(struct ctl *c)
{
	for (int i = 0; i < c->neng; i++)
		for (int h = 0; h < pfs_engine_hier_count(c->eng[i].e); h++) {
			struct ctl_hier *ch = ctl_hier(&c->eng[i], h);
			if (ch && ch->fan)
				ch->fan->active = false;        /* sync pushes it again */
		}
	c->fanout_behind = true;
}

static int mark_sent(struct ctl_fanout *f, uint32_t idx, uint16_t mask)
{
	if (idx >= f->nsent) {
		uint32_t n = f->nsent ? f->nsent : 1024;
		uint16_t *p;
		while (n <= idx)
			n *= 2;
		p = realloc(f->sent, n * sizeof(*p));
		if (!p)
			return -ENOMEM;
		memset(p + f->nsent, 0, (n - f->nsent) * sizeof(*p));
		f->sent = p;
		f->nsent = n;
	}
	f->sent[idx] |= mask;
	return 0;
}

static struct ctl_fanout *find(struct ctl *c, uint64_t hier, struct ctl_engine **ce, int *hidx)
{
	for (int i = 0; i < c->neng; i++)
		for (int h = 0; h < pfs_engine_hier_count(c->eng[i].e); h++) {
			struct ctl_hier *ch = ctl_hier(&c->eng[i], h);
			if (ch && ch->fan && ch->fan->hier == hier) {
				*ce = &c->eng[i];
				*hidx = h;
				return ch->fan;
			}
		}
	return NULL;
}

void ctl_fanout_stored(struct ctl *c, const struct pfs_ring_msg *m)
{
	const struct pfs_rmsg_stored *r = (const void *)m->data;
	uint32_t first = (uint32_t)(m->value >> 32), count = (uint32_t)m->value;
	struct pfs_addr src = { .ip = m->ip, .port = m->port };
	struct ctl_engine *ce;
	struct ctl_fanout *f;
	int hidx;

	if (m->len < sizeof(*r) || !(f = find(c, m->hier, &ce, &hidx)))
		return;         /* a table withdrawn meanwhile: the parent repairs */
	if (r->generation != f->generation)
		c->st.fanout_stale++;
	/* Each chunk as the DATA message it came in, its payload where the
	 * dataplane stored it: no encoding, no second CRC, and the engine's
	 * WRITE_CHUNK finds the bytes already in place (pfs_cache_write). A
	 * table with digests (relay_allowed: every table of a signed file)
	 * made the dataplane check each chunk before storing it: the engine
	 * need not hash it again. Not with a report of another generation. */
	bool checked = r->generation == f->generation && (f->tab.flags & PFS_FANOUT_VERIFY);

	for (uint32_t i = 0; i < count; i++) {
		struct pfs_msg msg = { .type = PFS_MSG_DATA, .sender = r->sender, .hier = m->hier };
		uint32_t room;
		const uint8_t *p = pfs_cache_chunk(c->cache, f->fi, first + i, &room);

		if (!p || r->chunk_len > room || r->chunk_len > PFS_CHUNK_MAX)
			continue;
		msg.u.data.index = first + i;
		msg.u.data.payload = p;
		msg.u.data.len = (uint16_t)r->chunk_len;
		if (r->generation == f->generation && r->mask)
			mark_sent(f, first + i, r->mask);
		c->st.fanout_chunks++;
		pfs_engine_recv_held(ce->e, (pfs_time_t)ctl_now(), &src, &msg, checked);
	}
	ctl_engine_drain(c, ce);
}

bool ctl_fanout_consume(const struct pfs_action *act)
{
	struct ctl_fanout *f = ((struct ctl_hier *)act->user)->fan;

	if (!f || act->index >= f->nsent || !f->sent[act->index])
		return false;
	for (unsigned s = 0; s < PFS_FANOUT_SLOTS; s++) {
		uint16_t bit = (uint16_t)(1u << s);
		if ((f->sent[act->index] & bit) && f->tab.child[s].ip == act->dst.ip &&
		    f->tab.child[s].port == act->dst.port) {
			f->sent[act->index] &= (uint16_t)~bit;
			return true;
		}
	}
	return false;
}

void ctl_fanout_free(struct ctl *c, struct ctl_engine *ce)
{
	for (int h = 0; h < pfs_engine_hier_count(ce->e); h++) {
		struct ctl_hier *ch = ctl_hier(ce, h);

		if (!ch || !ch->fan)
			continue;
		if (ch->fan->active && c->shm)
			send_table(c, ch->fan, true);   /* the engine is going */
		free(ch->fan->sent);
		free(ch->fan);
		ch->fan = NULL;
	}
}
