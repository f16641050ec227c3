/* query.c - read-only views of an engine for its drivers: whether it is
 * done, each hierarchy and child slot as logs, pfsctl and tests show them,
 * and its counters. Nothing here changes state. */
#include "engine_internal.h"

#include <errno.h>
#include <string.h>

bool pfs_engine_done(const struct pfs_engine *e)
{
	for (int i = 0; i < e->nhiers; i++)
		if (!e->hiers[i].f.complete && !e->hiers[i].f.failed)
			return false;
	return true;
}

bool pfs_engine_all_ok(const struct pfs_engine *e)
{
	for (int i = 0; i < e->nhiers; i++)
		if (!e->hiers[i].f.complete)
			return false;
	return true;
}

bool pfs_engine_needs_file_hash(const struct pfs_engine *e, int hidx)
{
	return hidx >= 0 && hidx < e->nhiers && !e->hiers[hidx].man.verified;
}

bool pfs_engine_children_served(const struct pfs_engine *e)
{
	for (int i = 0; i < e->nhiers; i++) {
		const struct hier *h = &e->hiers[i];
		for (unsigned s = 0; s < h->nchildren_cap; s++)
			if (h->children[s].used && !h->children[s].complete && !h->f.failed)
				return false;
	}
	return true;
}

uint64_t pfs_engine_children_progress(const struct pfs_engine *e)
{
	uint64_t sum = 0;

	for (int i = 0; i < e->nhiers; i++) {
		const struct hier *h = &e->hiers[i];
		for (unsigned s = 0; s < h->nchildren_cap; s++)
			if (h->children[s].used)
				sum += h->children[s].limit;
	}
	return sum;
}

int pfs_engine_hier_count(const struct pfs_engine *e) { return e->nhiers; }

int pfs_engine_hier_set_user(struct pfs_engine *e, int hidx, void *user)
{
	if (hidx < 0 || hidx >= e->nhiers)
		return -ENOENT;
	e->hiers[hidx].user = user;
	return 0;
}

void *pfs_engine_hier_user(const struct pfs_engine *e, int hidx)
{
	return hidx >= 0 && hidx < e->nhiers ? e->hiers[hidx].user : NULL;
}

int pfs_engine_hier_info(const struct pfs_engine *e, int hidx, struct pfs_hier_info *o)
{
	const struct hier *h;

	if (hidx < 0 || hidx >= e->nhiers)
		return -ENOENT;
	h = &e->hiers[hidx];
	memset(o, 0, sizeof(*o));
	o->key = h->key;
	o->path = h->path;
	o->state = eng_state_name(h->state);
	o->is_root = h->state == H_ROOT;
	o->complete = h->f.complete;
	o->failed = h->f.failed;
	o->fail_cause = h->f.fail_cause;
	o->fail_err = h->f.fail_err;
	o->root_id = h->state == H_ROOT ? e->cfg.node_id : h->root_id;
	o->parent_id = h->state == H_MEMBER ? h->parent_id : 0;
	o->parent = h->parent;
	o->depth = h->state == H_ROOT ? 1 :
		   h->state == H_MEMBER || h->state == H_DETACHED ? h->nanc + 1 : 0;
	o->max_children = e->cfg.max_children;
	for (unsigned s = 0; s < h->nchildren_cap; s++) {
		o->children[s] = h->children[s].used ? h->children[s].id : 0;
		o->nchildren += h->children[s].used;
	}
	o->subtree = tree_subtree(h);
	o->chunks_have = h->f.have.count;
	o->chunks_total = h->f.final ? h->f.nchunks : 0;
	o->chunk_size = h->f.manifest ? h->f.chunk_size : 0;
	o->size = h->f.size;
	o->upstream_active = h->upstream_active;
	o->upstream_starts = h->upstream_starts;
	o->signed_ok = h->man.verified;
	o->sequence = h->man.verified ? h->man.m.sequence : 0;
	return 0;
}

int pfs_engine_child_info(const struct pfs_engine *e, int hidx, unsigned slot,
			  struct pfs_child_info *o)
{
	const struct child *c;

	if (hidx < 0 || hidx >= e->nhiers)
		return -ENOENT;
	memset(o, 0, sizeof(*o));
	if (slot >= e->hiers[hidx].nchildren_cap)
		return 0;
	c = &e->hiers[hidx].children[slot];
	if (!c->used)
		return 0;
	o->id = c->id;
	o->addr = c->addr;
	o->ready = c->acked && !c->complete;
	return 0;
}

const struct pfs_engine_stats *pfs_engine_stats(const struct pfs_engine *e) { return &e->st; }
const struct pfs_engine_config *pfs_engine_config(const struct pfs_engine *e) { return &e->cfg; }

int pfs_engine_find(const struct pfs_engine *e, const char *path)
{
	for (int i = 0; i < e->nhiers; i++)
		if (!strcmp(e->hiers[i].path, path))
			return i;
	return -ENOENT;
}

size_t pfs_engine_held_run(const struct pfs_engine *e, int hidx, uint64_t off, size_t len,
			   bool *held)
{
	const struct hier *h;
	uint32_t cs;
	uint64_t idx, end;

	*held = false;
	if (hidx < 0 || hidx >= e->nhiers || !len)
		return len;
	h = &e->hiers[hidx];
	cs = h->f.chunk_size;
	/* Unsigned, a chunk held is not a chunk checked: the file is what the
	 * last fetch brought, all of it (its digest is that fetch's). */
	if (!h->man.verified || !cs || off / cs > UINT32_MAX)
		return len;
	idx = off / cs;
	*held = pfs_bitmap_test(&h->f.have, (uint32_t)idx);
	/* To the end of the first chunk whose state differs. */
	for (end = (idx + 1) * cs; end < off + len; end += cs) {
		if (++idx > UINT32_MAX || pfs_bitmap_test(&h->f.have, (uint32_t)idx) != *held)
			break;
	}
	return end - off < len ? (size_t)(end - off) : len;
}

/* Signed: the chunks below the held prefix were each checked against their
 * digest before they were stored, so they may go out before the file is
 * whole. Unsigned: nothing is checked until the whole-file SHA-256, so
 * nothing counts until then. */
uint64_t pfs_engine_checked_bytes(const struct pfs_engine *e, int hidx)
{
	const struct hier *h;
	uint64_t n;

	if (hidx < 0 || hidx >= e->nhiers)
		return 0;
	h = &e->hiers[hidx];
	if (h->f.complete)
		return h->f.size;
	if (!h->man.verified || !h->f.chunk_size)
		return 0;
	n = (uint64_t)h->f.have.prefix * h->f.chunk_size;
	return h->f.final && n > h->f.size ? h->f.size : n;
}
