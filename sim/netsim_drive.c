/* netsim_drive.c - each simulated node's engine actions, carried out in
 * the simulated network and store: the simulator's ops table for
 * pfs_drive() (engine/pfs_driver.h), and the timer re-armed after. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "netsim_internal.h"
#include "pfs_driver.h"

static void upstream_start(struct netsim *ns, int node, const struct pfs_action *a)
{
	struct simfile *f = &ns->nodes[node].files[a->hidx];
	struct upstream_count *u = netsim_ups_slot(ns, a->model, a->path);

	if (u)
		u->starts++;
	/* The manifest first, in no time (it is small): the engine takes it
	 * or counts an upstream failure and retries. */
	if (a->want_manifest &&
	    pfs_engine_upstream_manifest(ns->nodes[node].e, ns->now, a->hidx,
					 f->ref ? f->ref->man : NULL,
					 f->ref ? f->ref->man_len : 0) < 0)
		return;
	f->up_gen++;
	f->up_off = 0;
	netsim_push(ns, (struct ev){ .t = ns->now + PFS_MSEC(1), .type = EV_UPSTREAM, .node = node,
			      .hidx = a->hidx, .gen = f->up_gen });
}

static void send_chunk(struct netsim *ns, int idx, const struct pfs_action *a)
{
	struct simfile *f = &ns->nodes[idx].files[a->hidx];
	const uint8_t *data = simfile_chunk(f, ns->p.verify, a->offset, a->len, a->index,
					    a->chunk_size);
	int len;

	if (!data) {
		ns->c.chunks_unheld++;  /* the engine only sends what it holds */
		return;
	}
	/* A hostile node with a server of its own may well hold the site's
	 * bytes (its own manifest refused, it joins the others): not counted. */
	if (!ns->nodes[idx].rogue && f->ref &&
	    (a->offset + a->len > f->ref->size || memcmp(data, f->ref->data + a->offset, a->len))) {
		ns->c.bad_forwards++;   /* holds bytes that are not the server's */
		if (ns->p.trace)
			printf("%10.3f n%-3d sends chunk %u, not the server's\n",
			       (double)ns->now / 1e9, idx, a->index);
	}
	if (ns->nodes[idx].corrupt && a->len <= sizeof(ns->forged)) {
		memcpy(ns->forged, data, a->len);
		ns->forged[a->len / 2] ^= 0x5a;
		data = ns->forged;
	}
	len = pfs_chunk_datagram(a, node_ip(idx), data, ns->chunk, sizeof(ns->chunk));
	if (len > 0) {
		ns->c.chunk_sends++;
		netsim_send_to(ns, idx, a, ns->chunk, (size_t)len,
			(uint64_t)len + a->len * (uint64_t)(ns->p.byte_scale - 1));
	}
}

void netsim_hash_file(struct netsim *ns, int idx, int hidx, uint64_t size)
{
	struct node *n = &ns->nodes[idx];
	struct pfs_hier_info info;
	uint8_t sha[32];

	if (pfs_engine_hier_info(n->e, hidx, &info) < 0)
		return;
	simfile_hash(&n->files[hidx], ns->p.verify, size, info.chunk_size, sha);
	pfs_engine_file_hashed(n->e, ns->now, hidx, sha);
}

/* --- the simulator's ops for pfs_drive (engine/pfs_driver.h) ----------- */

struct drive_ctx {
	struct netsim *ns;
	int idx;
};

/* The node's file for the action, or NULL (the action is not about one). */
static struct simfile *act_file(struct netsim *ns, int idx, const struct pfs_action *a)
{
	struct node *n = &ns->nodes[idx];

	return a->hidx >= 0 && a->hidx < n->nwants ? &n->files[a->hidx] : NULL;
}

static void do_send(void *ctx, const struct pfs_action *a)
{
	struct drive_ctx *x = ctx;

	netsim_send_to(x->ns, x->idx, a, a->msg, a->len, a->len);
}

static void do_send_chunk(void *ctx, const struct pfs_action *a)
{
	struct drive_ctx *x = ctx;

	if (act_file(x->ns, x->idx, a))
		send_chunk(x->ns, x->idx, a);
}

static void do_write_chunk(void *ctx, const struct pfs_action *a)
{
	struct drive_ctx *x = ctx;
	struct simfile *f = act_file(x->ns, x->idx, a);
	int rc = f ? simfile_write(f, x->ns->p.verify, a->offset, a->data, a->len, a->index) : 0;

	if (rc == -EILSEQ && !x->ns->nodes[x->idx].rogue)
		x->ns->c.chunks_mismatched++;   /* an honest node stored bad bytes */
	else if (rc == -ENOSPC)
		pfs_engine_store_failed(x->ns->nodes[x->idx].e, x->ns->now, a->hidx, rc);
}

static void do_upstream_start(void *ctx, const struct pfs_action *a)
{
	struct drive_ctx *x = ctx;

	if (act_file(x->ns, x->idx, a))
		upstream_start(x->ns, x->idx, a);
}

static void do_upstream_abort(void *ctx, const struct pfs_action *a)
{
	struct drive_ctx *x = ctx;
	struct simfile *f = act_file(x->ns, x->idx, a);

	if (f)
		f->up_gen++;
}

static void do_hash_file(void *ctx, const struct pfs_action *a)
{
	struct drive_ctx *x = ctx;

	if (!act_file(x->ns, x->idx, a))
		return;
	x->ns->c.files_hashed++;
	if (x->ns->p.hash_delay)        /* the engine goes on meanwhile */
		netsim_push(x->ns, (struct ev){ .t = x->ns->now + x->ns->p.hash_delay,
						.type = EV_HASH, .node = x->idx, .hidx = a->hidx,
						.gen = a->size });
	else
		netsim_hash_file(x->ns, x->idx, a->hidx, a->size);
}

static void do_file_done(void *ctx, const struct pfs_action *a)
{
	struct drive_ctx *x = ctx;
	struct simfile *f = act_file(x->ns, x->idx, a);

	if (f) {
		netsim_want_finished(x->ns, f, true);
		f->size = a->size;
		f->done_at = x->ns->now;
	}
}

static void do_file_failed(void *ctx, const struct pfs_action *a)
{
	struct drive_ctx *x = ctx;
	struct simfile *f = act_file(x->ns, x->idx, a);

	if (f)
		netsim_want_finished(x->ns, f, false);
}

static void do_event(void *ctx, const struct pfs_action *a)
{
	struct drive_ctx *x = ctx;
	struct netsim *ns = x->ns;
	struct simfile *f = act_file(ns, x->idx, a);

	ns->c.events++;
	ns->ev_counts[a->event]++;
	if (f && f->attached_at == PFS_TIME_NEVER &&
	    (a->event == PFS_EV_JOINED || a->event == PFS_EV_ROOT_CONFIRMED))
		f->attached_at = ns->now;
	if (ns->p.trace)
		printf("%10.3f n%-3d %-20s %s peer=%08x a=%u b=%u\n",
		       (double)ns->now / 1e9, x->idx, a->path, pfs_event_name(a->event),
		       a->peer_id, a->a, a->b);
}

static pfs_time_t sim_now(void *ctx)
{
	return ((struct drive_ctx *)ctx)->ns->now;
}

static const struct pfs_driver_ops sim_ops = {
	.now = sim_now, .send = do_send, .send_chunk = do_send_chunk,
	.write_chunk = do_write_chunk, .upstream_start = do_upstream_start,
	.upstream_abort = do_upstream_abort, .hash_file = do_hash_file,
	.file_done = do_file_done, .file_failed = do_file_failed, .event = do_event,
};
/* A node that is down polls its engine and carries out nothing. */
static const struct pfs_driver_ops sim_down_ops = { .now = sim_now };

/* Run a node's actions, then re-arm its timer. */
void netsim_drain(struct netsim *ns, int idx)
{
	struct node *n = &ns->nodes[idx];
	struct drive_ctx x = { ns, idx };

	pfs_drive(n->e, n->alive ? &sim_ops : &sim_down_ops, &x, ns->scratch, sizeof(ns->scratch));
	pfs_time_t d = pfs_engine_next_deadline(n->e);
	if (d != n->armed) {
		n->armed = d;
		n->timer_gen++;
		if (d != PFS_TIME_NEVER)
			netsim_push(ns, (struct ev){ .t = d < ns->now ? ns->now : d, .type = EV_TIMER,
					      .node = idx, .gen = n->timer_gen });
	}
}
