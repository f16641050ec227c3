/* evheap.h - the simulator's event queue: a binary min-heap on (time, seq).
 *
 * The sequence number is assigned at push, so events due at the same time pop
 * in the order they were pushed: that is what makes a seeded run replay event
 * for event.
 */
#ifndef PFS_EVHEAP_H
#define PFS_EVHEAP_H

#include <stddef.h>
#include <stdint.h>

#include "pfs_engine.h"

enum ev_type {
	EV_START,       /* node boots and wants its files */
	EV_DELIVER,     /* unicast datagram reaches node */
	EV_BCAST,       /* broadcast reaches every started node but src */
	EV_KILL_ROOTS,  /* every node then root of its first hierarchy dies */
	EV_TIMER,       /* node's engine deadline (gen: stale if re-armed) */
	EV_UPSTREAM,    /* next block of node's upstream fetch (gen) */
	EV_KILL,        /* node dies silently */
	EV_WANT,        /* a started node wants its files (netsim_want_at) */
	EV_HASH,        /* node's digest of a file is ready (hidx; gen: its size) */
};

struct ev {
	pfs_time_t t;
	uint64_t seq;
	uint64_t gen;
	uint8_t *dgram;         /* owned by the event */
	int32_t node, hidx;     /* EV_BCAST: node is the sender */
	uint32_t src_ip;
	uint16_t len;
	uint8_t type;
};

struct evheap {
	struct ev *v;
	size_t n, cap;
	uint64_t seq;
};

/* 0 or -ENOMEM (the heap is unchanged then). */
int evheap_push(struct evheap *h, struct ev ev);
/* The earliest event; the heap must not be empty. */
struct ev evheap_pop(struct evheap *h);
static inline const struct ev *evheap_top(const struct evheap *h) { return h->n ? &h->v[0] : NULL; }
/* Frees the queue and every datagram still in it. */
void evheap_free(struct evheap *h);

#endif
