/* upstream_share.c - one upstream fetch per file, whatever asks for it
 * (issue 12 section 2): a hierarchy that needs a file whose fetch another
 * hierarchy (another model's, or the load server's engine) has under way
 * follows that fetch instead of starting its own.
 *
 *   hierarchy needs PATH --a fetch of PATH under way?--no--> its own fetch
 *                                  | yes
 *                                  v
 *   the bytes already in the cache through our engine's check (fail: own fetch)
 *                                  v
 *   FOLLOWING: each write of the leader through our check as it comes
 *     leader done   -> done with its size and digest
 *     leader failed -> failed with its error (our engine retries, or fails)
 *     leader aborted (its hierarchy handed over) -> the first follower leads,
 *                      entry and fetch and all
 *     we abort      -> we stop following; the leader goes on
 *
 * The same path on the same server is the same bytes; each hierarchy still
 * checks every chunk against its own signed manifest.
 */
#include <stdio.h>
#include <string.h>

#include "control.h"

/* A follower stops following: its slot goes, and the entry it shared. */
void ctl_unfollow(struct ctl *c, struct ctl_engine *ce, int hidx)
{
	struct ctl_hier *ch = ctl_hier(ce, hidx);

	ctl_fetch_slot_free(&c->fetch_slot[ch->fetch_id]);
	ch->fetch_id = ch->cache_fi = -1;
}

struct ctl_engine *ctl_follower(struct ctl *c, int lead, int j, int *hidx)
{
	struct ctl_fetch_slot *s = &c->fetch_slot[j];

	if (!s->used || s->follows != lead + 1)
		return NULL;
	*hidx = s->hidx;
	return &c->eng[s->eng];
}

/* The fetch of path another hierarchy has under way into an entry of that
 * chunk size: its slot, or -1. */
int ctl_leader_for(struct ctl *c, const char *path, uint32_t chunk_size)
{
	for (int i = 0; i < PFS_FETCH_MAX; i++) {
		struct ctl_fetch_slot *s = &c->fetch_slot[i];
		struct pfs_cache_file *f;

		if (!s->used || s->manifest || s->parked || s->follows)
			continue;
		f = pfs_cache_file(c->cache, ctl_hier(&c->eng[s->eng], s->hidx)->cache_fi);
		if (f && atomic_load(&f->state) == PFS_CF_FILLING && f->chunk_size == chunk_size &&
		    !strcmp(f->path, path))
			return i;
	}
	return -1;
}

/* Follow fetch lead: what it has put in the cache so far goes through our
 * engine's check now, the rest as it comes (fetch_write). False when we
 * cannot (no slot, or its bytes fail our check): fetch it ourselves. */
bool ctl_follow(struct ctl *c, struct ctl_engine *ce, int hidx, int lead)
{
	struct ctl_fetch_slot *ls = &c->fetch_slot[lead];
	struct ctl_engine *le = &c->eng[ls->eng];
	int fi = ctl_hier(le, ls->hidx)->cache_fi, id = ctl_fetch_slot_alloc(c, (int)(ce - c->eng), hidx, false);
	struct pfs_cache_file *f = pfs_cache_file(c->cache, fi);
	uint64_t stored = atomic_load(&f->stored), off = 0;
	pfs_time_t now = (pfs_time_t)ctl_now();

	if (id < 0)
		return false;
	c->fetch_slot[id].follows = lead + 1;
	ctl_hier(ce, hidx)->fetch_id = id;
	ctl_hier(ce, hidx)->cache_fi = fi;
	for (uint32_t idx = 0; off < stored; idx++) {
		uint32_t len;
		const uint8_t *p = pfs_cache_chunk(c->cache, fi, idx, &len);

		if (len > stored - off)
			len = (uint32_t)(stored - off);
		if (!p || pfs_engine_upstream_write(ce->e, now, hidx, off, p, len) < 0) {
			ctl_unfollow(c, ce, hidx);
			return false;
		}
		off += len;
	}
	ctl_log(c, "%s %s: following the fetch that %s has under way (%llu bytes in): one WAN "
		"copy", ce->model, f->path, le->model, (unsigned long long)stored);
	return true;
}

/* The leader's fetch ended: its followers end with it (done with its size
 * and digest, or failed with its error), each hierarchy through its own
 * engine. */
void ctl_followers_end(struct ctl *c, int lead, bool ok, uint64_t size,
			  const uint8_t sha[32], int err)
{
	pfs_time_t now = (pfs_time_t)ctl_now();

	for (int j = 0; j < PFS_FETCH_MAX; j++) {
		int hidx;
		struct ctl_engine *fe = ctl_follower(c, lead, j, &hidx);

		if (!fe)
			continue;
		ctl_fetch_slot_free(&c->fetch_slot[j]);
		ctl_hier(fe, hidx)->fetch_id = -1;
		if (ok) {
			pfs_engine_upstream_done(fe->e, now, hidx, size, sha);
		} else {
			ctl_hier(fe, hidx)->cache_fi = -1;      /* the leader drops or parks it */
			pfs_engine_upstream_failed(fe->e, now, hidx, err);
		}
		ctl_engine_drain(c, fe);
	}
}

/* A leader aborted (its hierarchy handed over, or gone) with followers:
 * the first of them takes the fetch over, entry and all. */
bool ctl_hand_over(struct ctl *c, struct ctl_engine *ce, int hidx, int id)
{
	for (int j = 0; j < PFS_FETCH_MAX; j++) {
		int fh;
		struct ctl_engine *fe = ctl_follower(c, id, j, &fh);

		if (!fe)
			continue;
		ctl_fetch_slot_free(&c->fetch_slot[j]);
		c->fetch_slot[id].eng = (int)(fe - c->eng);
		c->fetch_slot[id].hidx = fh;
		ctl_hier(fe, fh)->fetch_id = id;
		for (int k = 0; k < PFS_FETCH_MAX; k++)
			if (c->fetch_slot[k].used && c->fetch_slot[k].follows == id + 1 &&
			    c->fetch_slot[k].eng == (int)(fe - c->eng) && c->fetch_slot[k].hidx == fh)
				c->fetch_slot[k].follows = 0;   /* cannot follow itself */
		ctl_hier(ce, hidx)->fetch_id = ctl_hier(ce, hidx)->cache_fi = -1;
		ctl_log(c, "%s %s: its fetch goes on for %s", ce->model,
			pfs_cache_file(c->cache, ctl_hier(fe, fh)->cache_fi)->path, fe->model);
		return true;
	}
	return false;
}
