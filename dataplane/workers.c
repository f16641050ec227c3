/* workers.c - the relay on several lcores (--workers N): hierarchies
 * sharded across workers, each with its own queues, state and counters.
 *
 *              RX queue q (RSS, or the port's one queue)
 *                   |
 *   worker q: check (header, UDP checksum, CRC32C), learn the sender
 *                   |
 *      DATA of a hierarchy worker o owns (dp_shard(hier)), o != q
 *         ---> o's handoff ring (MP/SC, mbuf pointers) ---> worker o
 *                   |
 *   owner: local fan-out from its own tables, templates and TX queue;
 *          anything for pfs-control into its outbox (worker 0: the shared ring)
 *
 *   pfs-control <== shared rings ==> worker 0 (the main lcore)
 *      c2d: CONFIG to every worker; SEND_CHUNKS and FANOUT to the owner of
 *           their hierarchy; datagrams to send, worker 0 itself
 *      d2c: worker 0's own, then each worker's outbox, in order
 *
 * Every ring here is DPDK's lock-free rte_ring; nothing on a worker's fast
 * path is written by another worker. What every worker needs to know that
 * one of them learned (a neighbour's MAC and tags) travels as a message,
 * ordered before the datagram it came with, so that control's answer to a
 * JOIN finds the child's address on the worker that will feed it. Counters:
 * each worker its own struct; worker 0 alone writes the stats page, their
 * sum, every millisecond and at exit.
 *
 * With one worker none of this runs: worker 0 writes the page and the shared
 * rings directly, as before.
 */
#include <errno.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "dp.h"
#include "verify.h"

#define INBOX_SLOTS     1024    /* messages: 1.5 MB per worker */
#define OUTBOX_SLOTS    1024
#define HANDOFF_SLOTS   1024    /* frames: about one RX ring */

static const size_t msg_size = sizeof(struct pfs_ring_msg);

/* Sums into the page; what is not a count is set by worker 0 itself. */
static bool folded(size_t off)
{
	return off != offsetof(struct pfs_dp_stats, tsc_hz) &&
	       off != offsetof(struct pfs_dp_stats, started_ns) &&
	       off != offsetof(struct pfs_dp_stats, bell_rings) &&
	       off != offsetof(struct pfs_dp_stats, neighbours) &&
	       off != offsetof(struct pfs_dp_stats, frames_held) &&
	       off != offsetof(struct pfs_dp_stats, workers);
}

void dp_workers_fold_stats(struct dp **w)
{
	struct pfs_dp_stats *page = w[0]->page;
	unsigned n = w[0]->nworkers;
	uint64_t neigh = 0;

	for (size_t off = offsetof(struct pfs_dp_stats, rx_pkts);
	     off < offsetof(struct pfs_dp_stats, xdp_maps); off += sizeof(uint64_t)) {
		uint64_t sum = 0;

		if (!folded(off))
			continue;
		for (unsigned i = 0; i < n; i++)
			sum += *(volatile const uint64_t *)((const char *)w[i]->st + off);
		*(volatile uint64_t *)((char *)page + off) = sum;
	}
	for (unsigned i = 0; i < n; i++)        /* every table learns every neighbour */
		neigh = RTE_MAX(neigh, *(volatile const uint64_t *)&w[i]->st->neighbours);
	page->neighbours = neigh;
}

static struct rte_ring *ring(const char *what, unsigned wid, unsigned count, ssize_t esize,
			     unsigned flags)
{
	char name[RTE_RING_NAMESIZE];
	struct rte_ring *r;

	snprintf(name, sizeof(name), "pfs_%s%u", what, wid);
	r = esize < 0 ? rte_ring_create(name, count, (int)rte_socket_id(), flags)
		      : rte_ring_create_elem(name, (unsigned)esize, count, (int)rte_socket_id(),
					     flags);
	if (!r)
		pfs_log(PFS_LOG_ERR, "ring %s: %s", name, rte_strerror(rte_errno));
	return r;
}

/* Worker 0 is d, already initialised (port up, segment attached); the
 * others are its copies with their own queue, counters, verifier and
 * rings, launched on the next lcores. w[] gets all of them. */
int dp_workers_start(struct dp *d, struct dp **w)
{
	unsigned n = d->o.workers, lcore = rte_get_main_lcore();

	w[0] = d;
	d->nworkers = n;
	d->all = w;
	if (n == 1)
		return 0;
	d->st = &d->own_stats;
	memset(d->st, 0, sizeof(*d->st));
	for (unsigned i = 0; i < n; i++) {
		if (i > 0) {
			w[i] = rte_zmalloc("pfs_worker", sizeof(struct dp), RTE_CACHE_LINE_SIZE);
			if (!w[i])
				goto fail;
			memcpy(w[i], d, sizeof(*d));
			w[i]->wid = i;
			w[i]->frames_kept = 0;          /* the adopted ones are worker 0's */
			atomic_store(&w[i]->frames_released, 0);
			w[i]->queue = (uint16_t)i;
			w[i]->st = &w[i]->own_stats;
			w[i]->verifier = dp_verifier_new();
			w[i]->inbox = ring("in", i, INBOX_SLOTS, (ssize_t)msg_size,
					   RING_F_SP_ENQ | RING_F_SC_DEQ);
			w[i]->outbox = ring("out", i, OUTBOX_SLOTS, (ssize_t)msg_size,
					    RING_F_SP_ENQ | RING_F_SC_DEQ);
			if (!w[i]->verifier || !w[i]->inbox || !w[i]->outbox)
				goto fail;
		}
		/* many producers (every other worker), one consumer */
		if (!(w[i]->handoff = ring("handoff", i, HANDOFF_SLOTS, -1, RING_F_SC_DEQ)))
			goto fail;
	}
	for (unsigned i = 0; i < n; i++) {
		w[i]->all = w;
		for (unsigned j = 0; j < n; j++)
			w[i]->handoff_to[j] = w[j]->handoff;
	}
	d->page->workers = n;
	for (unsigned i = 1; i < n; i++) {
		lcore = rte_get_next_lcore(lcore, 1, 0);
		if (rte_eal_remote_launch(dp_worker_main, w[i], lcore) < 0) {
			pfs_log(PFS_LOG_ERR, "cannot launch worker %u on lcore %u", i,
				lcore);
			dp_stop = true;
			return -EBUSY;
		}
		pfs_log(PFS_LOG_INFO, "worker %u on lcore %u, queue %u", i, lcore, i);
	}
	return 0;
fail:
	pfs_log(PFS_LOG_ERR, "cannot set up %u workers", n);
	return -ENOMEM;
}

/* After dp_stop: wait for the workers, count their last, free theirs. */
void dp_workers_stop(struct dp **w, unsigned n)
{
	struct rte_mbuf *m;

	if (n <= 1)
		return;
	rte_eal_mp_wait_lcore();
	dp_workers_fold_stats(w);
	for (unsigned i = 0; i < n; i++) {
		if (!w[i])
			break;
		while (w[i]->handoff && rte_ring_sc_dequeue(w[i]->handoff, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(w[i]->handoff);
		if (i == 0)
			continue;
		rte_ring_free(w[i]->inbox);
		rte_ring_free(w[i]->outbox);
		dp_verifier_free(w[i]->verifier);
		rte_free(w[i]);
	}
}

/* Free slots of the fullest inbox: how many control messages worker 0 may
 * take from the shared ring now (one can go to every inbox: CONFIG). A
 * full inbox leaves them in the shared ring: pfs-control waits, nothing is
 * dropped. */
unsigned dp_workers_room(struct dp **w)
{
	unsigned room = ~0u;

	for (unsigned i = 1; i < w[0]->nworkers; i++)
		room = RTE_MIN(room, rte_ring_free_count(w[i]->inbox));
	return room;
}

static bool post(struct dp *to, struct dp *from, const struct pfs_ring_msg *m)
{
	if (rte_ring_sp_enqueue_elem(to->inbox, (void *)(uintptr_t)m, (unsigned)msg_size) < 0) {
		from->st->handoff_drops++;      /* dp_workers_room() keeps this from happening */
		return false;
	}
	return true;
}

/* One control message, on worker 0: applied where it belongs. */
unsigned dp_workers_route(struct dp **w, const struct pfs_ring_msg *m, unsigned n)
{
	unsigned owner;

	switch (m->type) {
	case PFS_RMSG_CONFIG:
		for (unsigned i = 1; i < n; i++)
			post(w[i], w[0], m);
		owner = 0;
		break;
	case PFS_RMSG_SEND_CHUNKS:
	case PFS_RMSG_FANOUT:
		owner = dp_shard(m->hier, n);
		break;
	default:
		owner = 0;              /* datagrams go out on worker 0's queue */
		break;
	}
	if (owner == 0)
		dp_control_msg(w[0], m);
	else
		post(w[owner], w[0], m);
	return owner;
}

static void neigh_msg(struct pfs_ring_msg *m, const struct dp_neigh *nb, unsigned from)
{
	m->type = DP_IMSG_NEIGH;
	m->ip = nb->ip;
	m->slot = from;
	m->len = sizeof(nb->mac) + sizeof(nb->vlan);
	memcpy(m->data, &nb->mac, sizeof(nb->mac));
	memcpy(m->data + sizeof(nb->mac), &nb->vlan, sizeof(nb->vlan));
}

static bool neigh_apply(struct dp *d, const struct pfs_ring_msg *m)
{
	struct rte_ether_addr mac;
	struct dp_vlan vlan;

	memcpy(&mac, m->data, sizeof(mac));
	memcpy(&vlan, m->data + sizeof(mac), sizeof(vlan));
	return dp_neigh_learn(d, m->ip, &mac, &vlan);
}

/* d's neighbour table changed for ip, or a full ring kept the change from
 * the others: they learn it now. From worker 0 straight to their inboxes;
 * from another, through its outbox, ahead of the datagram it came with
 * (worker 0 passes it on). A message that finds its ring full leaves the
 * entry owed (dp_to_control_flush() for the outbox): without that, the
 * others would send to the device's broadcast MAC until its MAC changed.
 * Rare: once a device. */
void dp_workers_learned(struct dp *d, uint32_t ip)
{
	struct dp_neigh *nb = (struct dp_neigh *)dp_neigh_find(d, ip);
	struct pfs_ring_msg m;

	if (!nb)
		return;
	nb->owed = false;
	if (d->wid != 0) {
		neigh_msg(dp_to_control_slot(d), nb, d->wid);
		return;
	}
	neigh_msg(&m, nb, 0);
	for (unsigned i = 1; i < d->nworkers; i++)
		if (!post(d->all[i], d, &m))
			nb->owed = true;        /* those that had it learn nothing new */
}

static void to_shm(struct dp *w0, const struct pfs_ring_msg *m, unsigned n)
{
	unsigned sent = n ? pfs_shm_send_burst(w0->shm, m, n) : 0;

	w0->st->to_control += sent;
	w0->st->to_control_drops += n - sent;   /* ring full: the protocol repairs */
}

/* On worker 0: every worker's messages for control, into the shared ring
 * in their order; neighbours learned, into the other workers' tables. */
unsigned dp_workers_forward(struct dp **w)
{
	struct pfs_ring_msg m[DP_BURST];
	unsigned total = 0, n = w[0]->nworkers;

	for (unsigned i = 1; i < n; i++) {
		unsigned room = RTE_MIN(dp_workers_room(w), (unsigned)DP_BURST);
		unsigned k = rte_ring_sc_dequeue_burst_elem(w[i]->outbox, m, (unsigned)msg_size, room,
							    NULL);
		unsigned run = 0;               /* first message not yet sent */

		for (unsigned j = 0; j < k; j++) {
			if (m[j].type != DP_IMSG_NEIGH)
				continue;
			to_shm(w[0], &m[run], j - run);
			run = j + 1;
			neigh_apply(w[0], &m[j]);
			for (unsigned o = 1; o < n; o++)
				if (o != m[j].slot)
					post(w[o], w[0], &m[j]);
		}
		to_shm(w[0], &m[run], k - run);
		total += k;
	}
	return total;
}

/* On a worker other than 0: what worker 0 routed to it. */
unsigned dp_workers_inbox(struct dp *d)
{
	struct pfs_ring_msg m[8];
	unsigned k = rte_ring_sc_dequeue_burst_elem(d->inbox, m, (unsigned)msg_size, 8, NULL);

	for (unsigned i = 0; i < k; i++) {
		if (m[i].type == DP_IMSG_NEIGH)
			neigh_apply(d, &m[i]);
		else
			dp_control_msg(d, &m[i]);
	}
	d->inbox_msgs += k;
	return k;
}
