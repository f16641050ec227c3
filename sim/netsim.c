/* netsim.c - a deterministic in-memory network of PFS engines (see netsim.h).
 *
 * Events live in evheap, ordered by (time, sequence). Each node's engine
 * timer is one heap entry tagged with a generation; re-arming bumps the
 * generation and stale entries are skipped when popped. A broadcast is one
 * event whose datagram every receiver decodes in turn, so a broadcast costs
 * one allocation, not one per node. A count of unfinished wants replaces any
 * scan of the nodes, so a step costs the same at 10 nodes and at 100,000.
 */
#include "netsim.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evheap.h"
#include "simrand.h"
#include "simstore.h"

#include "netsim_internal.h"

static bool lost(struct netsim *ns)
{
	return ns->p.loss > 0 && (!ns->p.loss_until || ns->now < ns->p.loss_until) &&
	       sim_unit(&ns->rng) < ns->p.loss;
}

void netsim_push(struct netsim *ns, struct ev ev)
{
	if (evheap_push(&ns->q, ev) < 0) {
		/* Out of memory mid-run: nothing sound can follow. */
		fprintf(stderr, "netsim: out of memory for events\n");
		abort();
	}
}

struct netsim *netsim_new(const struct netsim_params *p)
{
	struct netsim *ns = calloc(1, sizeof(*ns));

	if (!ns)
		return NULL;
	ns->p = *p;
	if (!ns->p.upstream_block)
		ns->p.upstream_block = 16384;
	if (!ns->p.upstream_rate)
		ns->p.upstream_rate = 1000000;
	if (!ns->p.byte_scale)
		ns->p.byte_scale = 1;
	ns->rng = p->seed;
	ns->digest = 0xcbf29ce484222325ull;
	return ns;
}

void netsim_free(struct netsim *ns)
{
	if (!ns)
		return;
	evheap_free(&ns->q);
	for (int i = 0; i < ns->nnodes; i++) {
		pfs_engine_free(ns->nodes[i].e);
		for (int f = 0; f < ns->nodes[i].nwants; f++)
			simfile_free(&ns->nodes[i].files[f]);
		free(ns->nodes[i].files);
		free(ns->nodes[i].wants);
	}
	free(ns->nodes);
	free(ns->ups);
	free(ns);
}

int netsim_add_file(struct netsim *ns, const char *path, const uint8_t *data, size_t size)
{
	struct sfile *f;

	if (ns->nfiles == MAX_FILES)
		return -ENOSPC;
	f = &ns->files[ns->nfiles];
	f->path = path;
	f->data = data;
	f->size = size;
	EVP_Digest(data, size, f->sha, NULL, EVP_sha256(), NULL);
	return ns->nfiles++;
}


static int node_by_ip(const struct netsim *ns, uint32_t ip)
{
	int64_t idx = (int64_t)ip - NODE_IP0;
	return idx >= 0 && idx < ns->nnodes ? (int)idx : -1;
}

static const struct sfile *server_file(const struct netsim *ns, const char *path)
{
	for (int i = 0; i < ns->nfiles; i++)
		if (!strcmp(ns->files[i].path, path))
			return &ns->files[i];
	return NULL;
}

int netsim_add_node(struct netsim *ns, const struct pfs_engine_config *cfg,
		    const char *const *wants, int nwants, pfs_time_t start)
{
	struct pfs_engine_config c = *cfg;
	struct node *n;
	uint64_t s;

	if (nwants > MAX_WANTS || nwants < 0)
		return -E2BIG;
	if (ns->nnodes == ns->capnodes) {
		int nc = ns->capnodes ? ns->capnodes * 2 : 64;
		struct node *nn = realloc(ns->nodes, (size_t)nc * sizeof(*nn));
		if (!nn)
			return -ENOMEM;
		ns->nodes = nn;
		ns->capnodes = nc;
	}
	n = &ns->nodes[ns->nnodes];
	memset(n, 0, sizeof(*n));
	c.node_id = node_ip(ns->nnodes);
	c.self = (struct pfs_addr){ c.node_id, PFS_PORT };
	s = ns->p.seed ^ (uint64_t)ns->nnodes * 0x632be59bd9b4e019ull;
	c.random = (uint32_t)sim_splitmix(&s);
	n->files = calloc((size_t)nwants + 1, sizeof(*n->files));
	n->wants = calloc((size_t)nwants + 1, sizeof(*n->wants));
	n->e = n->files && n->wants ? pfs_engine_new(&c) : NULL;
	if (!n->e) {
		int err = n->files && n->wants ? errno : ENOMEM;
		free(n->files);
		free(n->wants);
		return -err;
	}
	n->alive = true;
	n->armed = PFS_TIME_NEVER;
	n->nwants = (uint8_t)nwants;
	for (int i = 0; i < nwants; i++) {
		n->wants[i] = wants[i];
		n->files[i].attached_at = PFS_TIME_NEVER;
	}
	netsim_push(ns, (struct ev){ .t = start, .type = EV_START, .node = ns->nnodes });
	ns->pending += 1 + (uint64_t)nwants;
	return ns->nnodes++;
}

/* A want stops counting as pending once, whichever way it ends. */
void netsim_want_finished(struct netsim *ns, struct simfile *f, bool done)
{
	if (!f->done && !f->failed)
		ns->pending--;
	else
		ns->c.finished_twice++; /* a driver was told twice: never right */
	if (done)
		f->done = true;
	else
		f->failed = true;
}

void netsim_kill(struct netsim *ns, int node)
{
	struct node *n = &ns->nodes[node];

	if (!n->alive)
		return;
	n->alive = false;
	if (!n->started)
		ns->pending -= 1 + n->nwants;
	else
		for (int w = 0; w < n->nwants; w++)
			if (!n->files[w].done && !n->files[w].failed)
				ns->pending--;
}

/* Whoever is root then: the test of a tree losing its root mid-transfer
 * without knowing in advance which node the election picks. */
int netsim_kill_roots_at(struct netsim *ns, pfs_time_t t)
{
	netsim_push(ns, (struct ev){ .t = t, .type = EV_KILL_ROOTS, .node = 0 });
	return 0;
}

static void kill_roots(struct netsim *ns)
{
	for (int i = 0; i < ns->nnodes; i++) {
		struct pfs_hier_info info;
		if (ns->nodes[i].alive && ns->nodes[i].nwants &&
		    pfs_engine_hier_info(ns->nodes[i].e, 0, &info) == 0 && info.is_root) {
			ns->roots_killed++;
			netsim_kill(ns, i);
		}
	}
}

int netsim_kill_at(struct netsim *ns, int node, pfs_time_t t)
{
	if (node < 0 || node >= ns->nnodes)
		return -EINVAL;
	netsim_push(ns, (struct ev){ .t = t, .type = EV_KILL, .node = node });
	return 0;
}


void netsim_shutdown(struct netsim *ns, int node)
{
	pfs_engine_shutdown(ns->nodes[node].e, ns->now);
	netsim_drain(ns, node);
	netsim_kill(ns, node);
}

/* The sender's port serializes what it sends; the datagram arrives one
 * latency after its last bit left. */
static pfs_time_t departure(struct netsim *ns, int from, uint64_t link_bytes)
{
	struct node *n = &ns->nodes[from];

	uint64_t rate = n->lan_rate ? n->lan_rate : ns->p.lan_rate;

	ns->c.lan_bytes += link_bytes;
	if (!rate)
		return ns->now;
	pfs_time_t start = n->tx_free > ns->now ? n->tx_free : ns->now;
	n->tx_free = start + link_bytes * 1000000000ull / rate;
	return n->tx_free;
}

void netsim_send_to(struct netsim *ns, int from, const struct pfs_action *a,
		    const uint8_t *msg, size_t len, uint64_t link_bytes)
{
	struct ev ev = { .type = EV_DELIVER, .node = -1, .src_ip = node_ip(from),
			 .len = (uint16_t)len };

	if (!a->bcast) {
		ev.node = node_by_ip(ns, a->dst.ip);
		if (ev.node < 0)
			return;
	}
	ev.t = departure(ns, from, link_bytes + WIRE_OVERHEAD) + ns->p.latency;
	ns->c.datagrams_sent++;
	if (a->bcast) {
		ns->c.broadcasts++;
		ev.type = EV_BCAST;
		ev.node = from;
	} else if (lost(ns)) {
		ns->c.datagrams_lost++;
		return;
	}
	ev.dgram = malloc(len);
	if (!ev.dgram)
		return;
	memcpy(ev.dgram, msg, len);
	netsim_push(ns, ev);
}

struct upstream_count *netsim_ups_slot(struct netsim *ns, const char *model,
				       const char *path)
{
	for (int i = 0; i < ns->nups; i++)
		if (!strcmp(ns->ups[i].model, model) && !strcmp(ns->ups[i].path, path))
			return &ns->ups[i];
	struct upstream_count *nu = realloc(ns->ups, (size_t)(ns->nups + 1) * sizeof(*nu));
	if (!nu)
		return NULL;
	ns->ups = nu;
	memset(&nu[ns->nups], 0, sizeof(*nu));
	snprintf(nu[ns->nups].model, sizeof(nu->model), "%s", model);
	snprintf(nu[ns->nups].path, sizeof(nu->path), "%s", path);
	return &nu[ns->nups++];
}

int netsim_add_manifest(struct netsim *ns, const char *path, const uint8_t *man, size_t len)
{
	for (int i = 0; i < ns->nfiles; i++)
		if (!strcmp(ns->files[i].path, path)) {
			ns->files[i].man = man;
			ns->files[i].man_len = len;
			return 0;
		}
	return -ENOENT;
}

int netsim_rogue_server(struct netsim *ns, int node, const char *path, const uint8_t *data,
			size_t size, const uint8_t *man, size_t man_len)
{
	struct sfile *f;

	if (node < 0 || node >= ns->nnodes || ns->nrogue == MAX_FILES)
		return -EINVAL;
	f = &ns->rogue[ns->nrogue++];
	*f = (struct sfile){ .path = path, .data = data, .size = size, .man = man,
			     .man_len = man_len };
	EVP_Digest(data, size, f->sha, NULL, EVP_sha256(), NULL);
	ns->nodes[node].rogue = f;
	return 0;
}

void netsim_preload(struct netsim *ns, int node)
{
	if (node >= 0 && node < ns->nnodes)
		ns->nodes[node].preload = true;
}

void netsim_store_limit(struct netsim *ns, int node, uint64_t bytes)
{
	for (int i = 0; i < ns->nodes[node].nwants; i++)
		ns->nodes[node].files[i].store_limit = bytes;
}

void netsim_autojoin(struct netsim *ns, int node)
{
	ns->nodes[node].autojoin = true;
}

void netsim_want_at(struct netsim *ns, int node, pfs_time_t t)
{
	ns->nodes[node].want_at = t;
}

void netsim_lan_rate(struct netsim *ns, int node, uint64_t rate)
{
	ns->nodes[node].lan_rate = rate;
}

/* A warm copy: the bytes stored, the engine told it holds them. */
static void preload_file(struct netsim *ns, struct node *n, int hidx, struct simfile *f)
{
	uint32_t cs = pfs_engine_config(n->e)->chunk_size;
	struct pfs_manifest m;

	if (f->ref->man && pfs_manifest_parse(f->ref->man, f->ref->man_len, &m) == 0)
		cs = m.chunk_size;
	f->up_off = 0;
	if (simfile_upstream(f, ns->p.verify, f->ref->size, NULL, hidx) < 0)
		return;
	pfs_engine_have_file(n->e, ns->now, hidx, cs, f->ref->size, f->ref->sha, f->ref->man,
			     f->ref->man_len);
}

/* As pfs-control does: the first CLAIM, ROOT or JOIN naming a file the
 * node may serve makes it want that file. Wants are asked in the order
 * they are named, so files[] is kept in the engine's hierarchy order. */
static void autojoin_check(struct netsim *ns, int idx, const uint8_t *dgram, size_t len)
{
	struct node *n = &ns->nodes[idx];
	const struct pfs_str *path;
	struct pfs_msg m;

	/* Not before the node wants files at all (netsim_want_at). */
	if (!n->autojoin || !n->wanting || n->nwanted == n->nwants ||
	    pfs_decode(dgram, len, &m) < 0)
		return;
	if (m.type == PFS_MSG_CLAIM)
		path = &m.u.claim.path;
	else if (m.type == PFS_MSG_ROOT)
		path = &m.u.root.path;
	else if (m.type == PFS_MSG_JOIN)
		path = &m.u.join.path;
	else
		return;
	for (int w = n->nwanted; w < n->nwants; w++) {
		if (strlen(n->wants[w]) != path->len || memcmp(n->wants[w], path->p, path->len))
			continue;
		const char *wt = n->wants[w];
		struct simfile ft = n->files[w];
		n->wants[w] = n->wants[n->nwanted];
		n->files[w] = n->files[n->nwanted];
		n->wants[n->nwanted] = wt;
		n->files[n->nwanted++] = ft;
		int hidx = pfs_engine_want(n->e, ns->now, wt);
		if (n->preload && ft.ref && hidx >= 0)  /* a warm cache, as pfs-control's */
			preload_file(ns, n, hidx, &n->files[n->nwanted - 1]);
		return;
	}
}

void netsim_corrupt_sends(struct netsim *ns, int node)
{
	if (node >= 0 && node < ns->nnodes)
		ns->nodes[node].corrupt = true;
}

/* One block of a fetch: paced at upstream_rate for this fetch, and all
 * fetches in flight share the WAN's wan_rate. */
static void upstream_step(struct netsim *ns, const struct ev *ev)
{
	struct node *n = &ns->nodes[ev->node];
	struct simfile *f = &n->files[ev->hidx];
	size_t blk;

	if (ev->gen != f->up_gen)
		return;
	if (!f->ref) {
		pfs_engine_upstream_failed(n->e, ns->now, ev->hidx, -ENOENT);
		return;
	}
	if (ns->now >= ns->p.server_down_from && ns->now < ns->p.server_down_until) {
		pfs_engine_upstream_failed(n->e, ns->now, ev->hidx, -EHOSTUNREACH);
		return;
	}
	blk = f->ref->size - f->up_off < ns->p.upstream_block ? f->ref->size - f->up_off
							       : ns->p.upstream_block;
	int rc = simfile_upstream(f, ns->p.verify, blk, n->e, ev->hidx);
	if (rc == -ENOSPC)
		pfs_engine_store_failed(n->e, ns->now, ev->hidx, rc);
	if (rc < 0)
		return;
	ns->c.upstream_bytes += blk;
	if (pfs_engine_upstream_write(n->e, ns->now, ev->hidx, f->up_off - blk,
				      blk ? f->ref->data + f->up_off - blk : NULL, blk) < 0) {
		pfs_engine_upstream_failed(n->e, ns->now, ev->hidx, -EBADMSG);
		return;
	}
	if (f->up_off == f->ref->size) {
		pfs_engine_upstream_done(n->e, ns->now, ev->hidx, f->ref->size, f->ref->sha);
		return;
	}
	uint64_t next_bytes = (uint64_t)ns->p.upstream_block * ns->p.byte_scale;
	pfs_time_t next = ns->now + next_bytes * 1000000000ull / ns->p.upstream_rate;
	if (ns->p.wan_rate) {
		pfs_time_t start = ns->wan_free > ns->now ? ns->wan_free : ns->now;
		ns->wan_free = start + next_bytes * 1000000000ull / ns->p.wan_rate;
		if (ns->wan_free > next)
			next = ns->wan_free;
	}
	netsim_push(ns, (struct ev){ .t = next, .type = EV_UPSTREAM, .node = ev->node, .hidx = ev->hidx,
			      .gen = f->up_gen });
}

/* A broadcast reaches every started, live node but its sender, each copy
 * lost on its own. */
static void deliver_bcast(struct netsim *ns, const struct ev *ev)
{
	struct pfs_addr src = { ev->src_ip, PFS_PORT };

	for (int i = 0; i < ns->nnodes; i++) {
		struct node *n = &ns->nodes[i];
		if (i == ev->node || !n->alive || !n->started)
			continue;
		if (lost(ns)) {
			ns->c.datagrams_lost++;
			continue;
		}
		ns->c.datagrams_delivered++;
		autojoin_check(ns, i, ev->dgram, ev->len);
		pfs_engine_recv(n->e, ns->now, &src, ev->dgram, ev->len);
		netsim_drain(ns, i);
	}
}

static void start_node(struct netsim *ns, int idx)
{
	struct node *n = &ns->nodes[idx];

	if (!n->started) {
		n->started = true;
		ns->pending--;
		if (n->want_at > ns->now) {     /* up and listening; wants later */
			netsim_push(ns, (struct ev){ .t = n->want_at, .type = EV_WANT, .node = idx });
			return;
		}
	}
	n->wanting = true;
	for (int w = 0; w < n->nwants; w++) {
		const struct sfile *ref = n->rogue && !strcmp(n->rogue->path, n->wants[w]) ?
					  n->rogue : server_file(ns, n->wants[w]);
		int hidx;

		n->files[w].ref = ref;
		if (n->autojoin)
			continue;       /* autojoin_check() asks when one is named */
		hidx = pfs_engine_want(n->e, ns->now, n->wants[w]);
		if (n->preload && ref && hidx >= 0)
			preload_file(ns, n, hidx, &n->files[w]);
	}
}

static void digest_event(struct netsim *ns, const struct ev *ev)
{
	uint64_t words[3] = { ev->t, (uint64_t)ev->type << 32 | (uint32_t)ev->node, ev->len };

	for (int i = 0; i < 3; i++)
		ns->digest = (ns->digest ^ words[i]) * 0x100000001b3ull;
}

static void step(struct netsim *ns)
{
	struct ev ev = evheap_pop(&ns->q);
	struct node *n = &ns->nodes[ev.node];

	ns->now = ev.t;
	ns->c.sim_events++;
	digest_event(ns, &ev);
	if (ev.type == EV_BCAST) {
		deliver_bcast(ns, &ev);
		free(ev.dgram);
		return;
	}
	if (ev.type == EV_KILL_ROOTS) {
		kill_roots(ns);
		return;
	}
	if (!n->alive) {
		free(ev.dgram);
		return;
	}
	switch (ev.type) {
	case EV_START:
	case EV_WANT:
		start_node(ns, ev.node);
		break;
	case EV_DELIVER: {
		struct pfs_addr src = { ev.src_ip, PFS_PORT };
		ns->c.datagrams_delivered++;
		autojoin_check(ns, ev.node, ev.dgram, ev.len);
		pfs_engine_recv(n->e, ns->now, &src, ev.dgram, ev.len);
		break;
	}
	case EV_TIMER:
		if (ev.gen != n->timer_gen)
			return;
		n->armed = PFS_TIME_NEVER;
		pfs_engine_timeout(n->e, ns->now);
		break;
	case EV_UPSTREAM:
		upstream_step(ns, &ev);
		break;
	case EV_HASH:
		netsim_hash_file(ns, ev.node, ev.hidx, ev.gen);
		break;
	case EV_KILL:
		netsim_kill(ns, ev.node);
		return;
	}
	netsim_drain(ns, ev.node);
	free(ev.dgram);
}

bool netsim_run(struct netsim *ns, pfs_time_t t_end)
{
	while (ns->pending && evheap_top(&ns->q) && evheap_top(&ns->q)->t <= t_end)
		step(ns);
	return ns->pending == 0;
}

void netsim_run_until(struct netsim *ns, pfs_time_t t)
{
	while (evheap_top(&ns->q) && evheap_top(&ns->q)->t <= t)
		step(ns);
	if (ns->now < t)
		ns->now = t;
}

pfs_time_t netsim_now(const struct netsim *ns) { return ns->now; }
uint32_t netsim_roots_killed(const struct netsim *ns) { return ns->roots_killed; }
int netsim_nodes(const struct netsim *ns) { return ns->nnodes; }
bool netsim_alive(const struct netsim *ns, int node) { return ns->nodes[node].alive; }
struct pfs_engine *netsim_engine(struct netsim *ns, int node) { return ns->nodes[node].e; }
const struct netsim_counts *netsim_counts(const struct netsim *ns) { return &ns->c; }
uint64_t netsim_digest(const struct netsim *ns) { return ns->digest; }

uint64_t netsim_event_count(const struct netsim *ns, enum pfs_event_code ev)
{
	return (unsigned)ev < PFS_EV_COUNT ? ns->ev_counts[ev] : 0;
}

const uint8_t *netsim_file(const struct netsim *ns, int node, int hidx, size_t *size,
			   bool *done, bool *failed)
{
	const struct simfile *f = &ns->nodes[node].files[hidx];

	*size = f->size;
	*done = f->done;
	*failed = f->failed;
	return f->buf;
}

pfs_time_t netsim_done_at(const struct netsim *ns, int node, int hidx)
{
	return ns->nodes[node].files[hidx].done_at;
}

pfs_time_t netsim_attached_at(const struct netsim *ns, int node, int hidx)
{
	return ns->nodes[node].files[hidx].attached_at;
}

uint32_t netsim_upstream_starts(const struct netsim *ns, const char *model, const char *path)
{
	for (int i = 0; i < ns->nups; i++)
		if (!strcmp(ns->ups[i].model, model) && !strcmp(ns->ups[i].path, path))
			return ns->ups[i].starts;
	return 0;
}
