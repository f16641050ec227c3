/* netsim.c - a deterministic in-memory network of PFS engines (see netsim.h).
 *
 * Events live in a binary heap ordered by (time, sequence), so ties resolve
 * in insertion order and a run replays exactly. Each node's engine timer is
 * one heap entry tagged with a generation; re-arming bumps the generation and
 * stale entries are skipped when popped.
 */
#include "netsim.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILES  64
#define MAX_WANTS  16

enum ev_type { EV_START, EV_DELIVER, EV_TIMER, EV_UPSTREAM };

struct ev {
	pfs_time_t t;
	uint64_t seq;
	uint8_t type;
	int node, hidx;
	uint64_t gen;
	struct pfs_addr src;
	uint16_t len;
	uint8_t *dgram;
};

struct nfile {                          /* one hierarchy's storage on a node */
	uint8_t *buf;
	size_t cap, size;
	bool done, failed;
	pfs_time_t done_at;
	uint64_t up_gen;
	size_t up_off;
	int server_file;                /* -1: not on the server */
};

struct node {
	struct pfs_engine *e;
	bool alive, started;
	uint64_t timer_gen;
	pfs_time_t armed;
	const char *wants[MAX_WANTS];
	int nwants;
	struct nfile files[MAX_WANTS];
};

struct sfile {
	const char *path;
	const uint8_t *data;
	size_t size;
	uint8_t sha[32];
};

struct upstream_count {
	char model[PFS_MODEL_MAX + 1];
	char path[PFS_FILEPATH_MAX + 1];
	uint32_t starts;
};

struct netsim {
	struct netsim_params p;
	pfs_time_t now;
	uint64_t rng, seq;
	struct ev *heap;
	size_t nheap, capheap;
	struct node *nodes;
	int nnodes, capnodes;
	struct sfile files[MAX_FILES];
	int nfiles;
	struct upstream_count *ups;
	int nups;
	struct netsim_counts c;
	uint64_t ev_counts[PFS_EV_COUNT];
	uint8_t scratch[PFS_DGRAM_MAX], chunk[PFS_DGRAM_MAX];
};

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static bool lost(struct netsim *ns)
{
	return ns->p.loss > 0 && (double)(splitmix(&ns->rng) >> 11) / 9007199254740992.0 < ns->p.loss;
}

static bool ev_less(const struct ev *a, const struct ev *b)
{
	return a->t != b->t ? a->t < b->t : a->seq < b->seq;
}

static int push(struct netsim *ns, struct ev ev)
{
	size_t i;

	if (ns->nheap == ns->capheap) {
		size_t nc = ns->capheap ? ns->capheap * 2 : 1024;
		struct ev *nh = realloc(ns->heap, nc * sizeof(*nh));
		if (!nh)
			return -ENOMEM;
		ns->heap = nh;
		ns->capheap = nc;
	}
	ev.seq = ns->seq++;
	i = ns->nheap++;
	while (i > 0 && ev_less(&ev, &ns->heap[(i - 1) / 2])) {
		ns->heap[i] = ns->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	ns->heap[i] = ev;
	return 0;
}

static struct ev pop(struct netsim *ns)
{
	struct ev top = ns->heap[0], last = ns->heap[--ns->nheap];
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct ev *mv = &last;
		if (l < ns->nheap && ev_less(&ns->heap[l], mv)) { m = l; mv = &ns->heap[l]; }
		if (r < ns->nheap && ev_less(&ns->heap[r], mv)) { m = r; }
		if (m == i)
			break;
		ns->heap[i] = ns->heap[m];
		i = m;
	}
	if (ns->nheap)
		ns->heap[i] = last;
	return top;
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
	ns->rng = p->seed;
	return ns;
}

void netsim_free(struct netsim *ns)
{
	if (!ns)
		return;
	for (size_t i = 0; i < ns->nheap; i++)
		free(ns->heap[i].dgram);
	for (int i = 0; i < ns->nnodes; i++) {
		pfs_engine_free(ns->nodes[i].e);
		for (int f = 0; f < MAX_WANTS; f++)
			free(ns->nodes[i].files[f].buf);
	}
	free(ns->nodes);
	free(ns->heap);
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

static uint32_t node_ip(int idx) { return 0x0a000001u + (uint32_t)idx; }

int netsim_add_node(struct netsim *ns, const struct pfs_engine_config *cfg,
		    const char *const *wants, int nwants, pfs_time_t start)
{
	struct pfs_engine_config c = *cfg;
	struct node *n;
	uint64_t s;

	if (nwants > MAX_WANTS)
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
	c.random = (uint32_t)splitmix(&s);
	n->e = pfs_engine_new(&c);
	if (!n->e)
		return -errno;
	n->alive = true;
	n->armed = PFS_TIME_NEVER;
	n->nwants = nwants;
	for (int i = 0; i < nwants; i++) {
		n->wants[i] = wants[i];
		n->files[i].server_file = -1;
	}
	if (push(ns, (struct ev){ .t = start, .type = EV_START, .node = ns->nnodes }) < 0)
		return -ENOMEM;
	return ns->nnodes++;
}

void netsim_kill(struct netsim *ns, int node)
{
	ns->nodes[node].alive = false;
}

static void drain(struct netsim *ns, int idx);

void netsim_shutdown(struct netsim *ns, int node)
{
	pfs_engine_shutdown(ns->nodes[node].e, ns->now);
	drain(ns, node);
	ns->nodes[node].alive = false;
}

static int node_by_ip(const struct netsim *ns, uint32_t ip)
{
	int idx = (int)(ip - 0x0a000001u);
	return idx >= 0 && idx < ns->nnodes ? idx : -1;
}

static void deliver(struct netsim *ns, int from, int to, const uint8_t *msg, size_t len)
{
	struct ev ev = { .t = ns->now + ns->p.latency, .type = EV_DELIVER, .node = to,
			 .src = { node_ip(from), PFS_PORT }, .len = (uint16_t)len };

	ns->c.datagrams_sent++;
	if (lost(ns)) {
		ns->c.datagrams_lost++;
		return;
	}
	ev.dgram = malloc(len);
	if (!ev.dgram)
		return;
	memcpy(ev.dgram, msg, len);
	if (push(ns, ev) < 0)
		free(ev.dgram);
}

static void send_to(struct netsim *ns, int from, const struct pfs_action *a,
		    const uint8_t *msg, size_t len)
{
	if (a->bcast) {
		ns->c.broadcasts++;
		for (int i = 0; i < ns->nnodes; i++)
			if (i != from && ns->nodes[i].alive && ns->nodes[i].started)
				deliver(ns, from, i, msg, len);
		return;
	}
	int to = node_by_ip(ns, a->dst.ip);
	if (to >= 0)
		deliver(ns, from, to, msg, len);
}

static int file_grow(struct nfile *f, size_t need)
{
	if (need <= f->cap)
		return 0;
	size_t nc = f->cap ? f->cap : 4096;
	while (nc < need)
		nc *= 2;
	uint8_t *nb = realloc(f->buf, nc);
	if (!nb)
		return -ENOMEM;
	memset(nb + f->cap, 0, nc - f->cap);
	f->buf = nb;
	f->cap = nc;
	return 0;
}

static struct upstream_count *ups_slot(struct netsim *ns, const char *model, const char *path)
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

static void upstream_start(struct netsim *ns, int node, const struct pfs_action *a)
{
	struct nfile *f = &ns->nodes[node].files[a->hidx];
	struct upstream_count *u = ups_slot(ns, a->model, a->path);

	if (u)
		u->starts++;
	f->server_file = -1;
	for (int i = 0; i < ns->nfiles; i++)
		if (!strcmp(ns->files[i].path, a->path))
			f->server_file = i;
	f->up_gen++;
	f->up_off = 0;
	push(ns, (struct ev){ .t = ns->now + PFS_MSEC(1), .type = EV_UPSTREAM, .node = node,
			      .hidx = a->hidx, .gen = f->up_gen });
}

static void do_action(struct netsim *ns, int idx, const struct pfs_action *a)
{
	struct node *n = &ns->nodes[idx];
	struct nfile *f = a->hidx >= 0 ? &n->files[a->hidx] : NULL;
	uint8_t sha[32];

	switch (a->type) {
	case PFS_ACT_SEND:
		send_to(ns, idx, a, a->msg, a->len);
		break;
	case PFS_ACT_SEND_CHUNK: {
		struct pfs_msg m = { .type = PFS_MSG_DATA, .sender = node_ip(idx), .hier = a->hier };
		if (a->offset + a->len > f->cap)
			break;  /* cannot happen: the engine only sends what it holds */
		m.u.data = (struct pfs_msg_data){ a->index, 0, f->buf + a->offset, (uint16_t)a->len };
		int len = pfs_encode(&m, ns->chunk, sizeof(ns->chunk));
		if (len > 0) {
			ns->c.chunk_sends++;
			send_to(ns, idx, a, ns->chunk, (size_t)len);
		}
		break;
	}
	case PFS_ACT_WRITE_CHUNK:
		if (file_grow(f, a->offset + a->len) == 0)
			memcpy(f->buf + a->offset, a->data, a->len);
		break;
	case PFS_ACT_UPSTREAM_START:
		upstream_start(ns, idx, a);
		break;
	case PFS_ACT_UPSTREAM_ABORT:
		f->up_gen++;
		break;
	case PFS_ACT_HASH_FILE:
		if (file_grow(f, a->size) == 0) {
			EVP_Digest(f->buf, a->size, sha, NULL, EVP_sha256(), NULL);
			pfs_engine_file_hashed(n->e, ns->now, a->hidx, sha);
		}
		break;
	case PFS_ACT_FILE_DONE:
		f->done = true;
		f->size = a->size;
		f->done_at = ns->now;
		break;
	case PFS_ACT_FILE_FAILED:
		f->failed = true;
		break;
	case PFS_ACT_EVENT:
		ns->c.events++;
		ns->ev_counts[a->event]++;
		if (ns->p.trace)
			printf("%10.3f n%-3d %-20s %s peer=%08x a=%u b=%u\n",
			       (double)ns->now / 1e9, idx, a->path, pfs_event_name(a->event),
			       a->peer_id, a->a, a->b);
		break;
	default:
		break;
	}
}

/* Run a node's actions, then re-arm its timer. */
static void drain(struct netsim *ns, int idx)
{
	struct node *n = &ns->nodes[idx];
	struct pfs_action a;

	while (pfs_engine_poll(n->e, ns->now, &a, ns->scratch, sizeof(ns->scratch)) > 0)
		if (n->alive)
			do_action(ns, idx, &a);
	pfs_time_t d = pfs_engine_next_deadline(n->e);
	if (d != n->armed) {
		n->armed = d;
		n->timer_gen++;
		if (d != PFS_TIME_NEVER)
			push(ns, (struct ev){ .t = d < ns->now ? ns->now : d, .type = EV_TIMER,
					      .node = idx, .gen = n->timer_gen });
	}
}

static void upstream_step(struct netsim *ns, const struct ev *ev)
{
	struct node *n = &ns->nodes[ev->node];
	struct nfile *f = &n->files[ev->hidx];
	const struct sfile *s;
	size_t blk;

	if (ev->gen != f->up_gen)
		return;
	if (f->server_file < 0) {
		pfs_engine_upstream_failed(n->e, ns->now, ev->hidx, -ENOENT);
		return;
	}
	s = &ns->files[f->server_file];
	blk = s->size - f->up_off < ns->p.upstream_block ? s->size - f->up_off : ns->p.upstream_block;
	if (file_grow(f, f->up_off + blk) < 0)
		return;
	if (blk)
		memcpy(f->buf + f->up_off, s->data + f->up_off, blk);
	f->up_off += blk;
	ns->c.upstream_bytes += blk;
	pfs_engine_upstream_data(n->e, ns->now, ev->hidx, f->up_off);
	if (f->up_off == s->size) {
		pfs_engine_upstream_done(n->e, ns->now, ev->hidx, s->size, s->sha);
		return;
	}
	push(ns, (struct ev){ .t = ns->now + PFS_SEC(1) * ns->p.upstream_block / ns->p.upstream_rate,
			      .type = EV_UPSTREAM, .node = ev->node, .hidx = ev->hidx,
			      .gen = f->up_gen });
}

static bool all_done(const struct netsim *ns)
{
	for (int i = 0; i < ns->nnodes; i++) {
		const struct node *n = &ns->nodes[i];
		if (!n->alive)
			continue;
		if (!n->started)
			return false;
		for (int w = 0; w < n->nwants; w++)
			if (!n->files[w].done && !n->files[w].failed)
				return false;
	}
	return true;
}

static void step(struct netsim *ns)
{
	struct ev ev = pop(ns);
	struct node *n = &ns->nodes[ev.node];

	ns->now = ev.t;
	if (!n->alive) {
		free(ev.dgram);
		return;
	}
	switch (ev.type) {
	case EV_START:
		n->started = true;
		for (int w = 0; w < n->nwants; w++)
			pfs_engine_want(n->e, ns->now, n->wants[w]);
		break;
	case EV_DELIVER:
		ns->c.datagrams_delivered++;
		pfs_engine_recv(n->e, ns->now, &ev.src, ev.dgram, ev.len);
		break;
	case EV_TIMER:
		if (ev.gen != n->timer_gen)
			return;
		n->armed = PFS_TIME_NEVER;
		pfs_engine_timeout(n->e, ns->now);
		break;
	case EV_UPSTREAM:
		upstream_step(ns, &ev);
		break;
	}
	drain(ns, ev.node);
	free(ev.dgram);
}

bool netsim_run(struct netsim *ns, pfs_time_t t_end)
{
	while (ns->nheap && ns->heap[0].t <= t_end) {
		step(ns);
		if (all_done(ns))
			return true;
	}
	return all_done(ns);
}

void netsim_run_until(struct netsim *ns, pfs_time_t t)
{
	while (ns->nheap && ns->heap[0].t <= t)
		step(ns);
	if (ns->now < t)
		ns->now = t;
}

pfs_time_t netsim_now(const struct netsim *ns) { return ns->now; }
int netsim_nodes(const struct netsim *ns) { return ns->nnodes; }
bool netsim_alive(const struct netsim *ns, int node) { return ns->nodes[node].alive; }
struct pfs_engine *netsim_engine(struct netsim *ns, int node) { return ns->nodes[node].e; }
const struct netsim_counts *netsim_counts(const struct netsim *ns) { return &ns->c; }

uint64_t netsim_event_count(const struct netsim *ns, enum pfs_event_code ev)
{
	return (unsigned)ev < PFS_EV_COUNT ? ns->ev_counts[ev] : 0;
}

const uint8_t *netsim_file(const struct netsim *ns, int node, int hidx, size_t *size,
			   bool *done, bool *failed)
{
	const struct nfile *f = &ns->nodes[node].files[hidx];

	*size = f->size;
	*done = f->done;
	*failed = f->failed;
	return f->buf;
}

pfs_time_t netsim_done_at(const struct netsim *ns, int node, int hidx)
{
	return ns->nodes[node].files[hidx].done_at;
}

uint32_t netsim_upstream_starts(const struct netsim *ns, const char *model, const char *path)
{
	for (int i = 0; i < ns->nups; i++)
		if (!strcmp(ns->ups[i].model, model) && !strcmp(ns->ups[i].path, path))
			return ns->ups[i].starts;
	return 0;
}
