/* pfs_txq.h - a backlog in front of a shared-segment ring: what the ring
 * has no room for waits here, in order, and goes before anything newer.
 *
 * pfs-control can produce faster than a descheduled dataplane consumes: 64
 * children's ranges in one burst of WAN data filled the 1,023 slots of the
 * control->dataplane ring, and 2,866 messages of one rollout were dropped
 * (each repaired by the protocol a round trip later, some never: a dropped
 * fan-out table or CONFIG). The backlog is a FIFO of ring messages, made
 * once with a fixed capacity: nothing is allocated on the send path, and a
 * full backlog refuses (the caller counts it) instead of growing.
 *
 * A message that must go in order or not at all (a CONFIG, a datagram)
 * may wait; one its sender can keep and merge with what follows (a range of
 * chunks, control/runs.c) is sent only when it can go now, and otherwise
 * stays with its sender, where later chunks extend it.
 */
#ifndef PFS_TXQ_H
#define PFS_TXQ_H

#include <stdbool.h>
#include <stdint.h>

#include "pfs_shm.h"

struct pfs_txq {
	struct pfs_ring_msg *slots;     /* cap of them, a FIFO from head */
	uint32_t cap, head, count;
	uint64_t waited;                /* messages that went through the backlog */
	uint32_t high;                  /* most held at once */
};

/* Make a backlog of cap messages (cap >= 1): 0 or -ENOMEM. */
int pfs_txq_init(struct pfs_txq *q, uint32_t cap);
void pfs_txq_fini(struct pfs_txq *q);

/* Send m on s's outgoing ring after everything already waiting. Returns 0
 * when it is on the ring, 1 when it waits in the backlog (only if
 * may_wait), -ENOBUFS when it went nowhere: the backlog is full, or it could
 * not go now and may not wait. */
int pfs_txq_send(struct pfs_txq *q, struct pfs_shm *s, const struct pfs_ring_msg *m,
		 bool may_wait);

/* Move what waits onto the ring, oldest first, as far as it has room:
 * how many still wait. */
uint32_t pfs_txq_flush(struct pfs_txq *q, struct pfs_shm *s);

static inline uint32_t pfs_txq_waiting(const struct pfs_txq *q)
{
	return q->count;
}

#endif /* PFS_TXQ_H */
