/* pfs_txq.c - the backlog in front of a ring (see pfs_txq.h). */
#include "pfs_txq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int pfs_txq_init(struct pfs_txq *q, uint32_t cap)
{
	memset(q, 0, sizeof(*q));
	if (cap == 0)
		return -EINVAL;
	q->slots = calloc(cap, sizeof(*q->slots));
	if (!q->slots)
		return -ENOMEM;
	q->cap = cap;
	return 0;
}

void pfs_txq_fini(struct pfs_txq *q)
{
	free(q->slots);
	memset(q, 0, sizeof(*q));
}

/* Burst the waiting messages onto the ring: the FIFO wraps at most once,
 * so two bursts move everything the ring has room for. */
uint32_t pfs_txq_flush(struct pfs_txq *q, struct pfs_shm *s)
{
	while (q->count) {
		uint32_t run = q->cap - q->head < q->count ? q->cap - q->head : q->count;
		unsigned sent = pfs_shm_send_burst(s, &q->slots[q->head], run);

		q->head = (q->head + sent) % q->cap;
		q->count -= sent;
		if (sent < run)
			break;          /* the ring is full */
	}
	return q->count;
}

int pfs_txq_send(struct pfs_txq *q, struct pfs_shm *s, const struct pfs_ring_msg *m,
		 bool may_wait)
{
	if ((!q->count || pfs_txq_flush(q, s) == 0) && pfs_shm_send(s, m) == 0)
		return 0;
	if (!may_wait || q->count == q->cap)
		return -ENOBUFS;
	q->slots[(q->head + q->count) % q->cap] = *m;
	q->count++;
	q->waited++;
	if (q->count > q->high)
		q->high = q->count;
	return 1;
}
