/* test_txq.c - the backlog in front of a shared-segment ring (pfs_txq.h):
 * nothing accepted is lost or reordered, a full backlog refuses, and a
 * message that may not wait never overtakes one that waits. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pfs_txq.h"

static char path[128];
static struct pfs_shm *ctl, *dp;
/* capacity 7: the ring fills after 7 messages */
static const struct pfs_shm_params small = { .ring_count = 8, .cache_bytes = 1 << 16 };

static void setup(void)
{
	static int n;

	snprintf(path, sizeof(path), "/dev/shm/pfs-txq-test-%d-%d", getpid(), n++);
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_CONTROL, &small, &ctl), 0);
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_DATAPLANE, &small, &dp), 0);
}

static void teardown(void)
{
	pfs_shm_detach(dp);
	pfs_shm_detach(ctl);
	unlink(path);
}

TestSuite(txq, .init = setup, .fini = teardown);

static struct pfs_ring_msg msg(uint64_t seq)
{
	struct pfs_ring_msg m = { .type = PFS_RMSG_TEST, .value = seq, .len = 8 };

	memcpy(m.data, &seq, sizeof(seq));
	m.data[8] = (uint8_t)(seq * 7);
	return m;
}

/* The dataplane takes one message: its sequence number, or -1 if none. */
static int64_t take(void)
{
	struct pfs_ring_msg m;
	uint64_t seq;

	if (pfs_shm_recv(dp, &m) != 1)
		return -1;
	memcpy(&seq, m.data, sizeof(seq));
	cr_assert_eq(m.value, seq, "message %llu arrived corrupted", (unsigned long long)seq);
	cr_assert_eq(m.data[8], (uint8_t)(seq * 7), "message %llu arrived corrupted",
		     (unsigned long long)seq);
	return (int64_t)seq;
}

/* Take everything, flushing the backlog as the ring empties: each message
 * must be the next of *want. Returns how many arrived. */
static int64_t drain_in_order(struct pfs_txq *q, int64_t want)
{
	int64_t got;

	for (;;) {
		if ((got = take()) < 0 && pfs_txq_flush(q, ctl) == 0 && (got = take()) < 0)
			return want;
		if (got >= 0)
			cr_assert_eq(got, want++, "got message %lld, want %lld", (long long)got,
				     (long long)(want - 1));
	}
}

Test(txq, a_full_ring_makes_messages_wait_in_order)
{
	struct pfs_txq q;
	struct pfs_ring_msg m;
	int64_t want = 0;

	cr_assert_eq(pfs_txq_init(&q, 16), 0);
	for (uint64_t i = 0; i < 20; i++) {
		m = msg(i);
		cr_assert_eq(pfs_txq_send(&q, ctl, &m, true), i < 7 ? 0 : 1, "message %llu",
			     (unsigned long long)i);
	}
	cr_assert_eq(pfs_txq_waiting(&q), 13);
	cr_assert_eq(q.waited, 13);
	cr_assert_eq(q.high, 13);
	/* The dataplane takes a few, we flush, and a newer message still
	 * goes after every older one. */
	for (int i = 0; i < 3; i++)
		cr_assert_eq(take(), want++);
	cr_assert_eq(pfs_txq_flush(&q, ctl), 10);
	m = msg(20);
	cr_assert_eq(pfs_txq_send(&q, ctl, &m, true), 1);
	want = drain_in_order(&q, want);
	cr_assert_eq(want, 21, "%lld of 21 messages arrived", (long long)want);
	pfs_txq_fini(&q);
}

Test(txq, a_full_backlog_refuses_and_keeps_what_it_holds)
{
	struct pfs_txq q;
	struct pfs_ring_msg m;

	cr_assert_eq(pfs_txq_init(&q, 4), 0);
	for (uint64_t i = 0; i < 11; i++) {
		m = msg(i);
		cr_assert_eq(pfs_txq_send(&q, ctl, &m, true), 0 + (i >= 7));
	}
	m = msg(99);
	cr_assert_eq(pfs_txq_send(&q, ctl, &m, true), -ENOBUFS);
	cr_assert_eq(pfs_txq_waiting(&q), 4);
	cr_assert_eq(drain_in_order(&q, 0), 11, "the refused one (99) arrived, or one was lost");
	pfs_txq_fini(&q);
}

Test(txq, a_message_that_may_not_wait_never_overtakes)
{
	struct pfs_txq q;
	struct pfs_ring_msg m;

	cr_assert_eq(pfs_txq_init(&q, 8), 0);
	for (uint64_t i = 0; i < 9; i++) {            /* 7 on the ring, 7 and 8 wait */
		m = msg(i);
		cr_assert_geq(pfs_txq_send(&q, ctl, &m, true), 0);
	}
	cr_assert_eq(take(), 0);                        /* room for one */
	m = msg(100);
	cr_assert_eq(pfs_txq_send(&q, ctl, &m, false), -ENOBUFS,
		     "it would have gone before message 8");
	cr_assert_eq(pfs_txq_waiting(&q), 1, "the flush moved message 7");
	for (int i = 1; i < 4; i++)
		cr_assert_eq(take(), i);                 /* room for three */
	m = msg(9);
	cr_assert_eq(pfs_txq_send(&q, ctl, &m, false), 0, "8 goes first, then 9 has room");
	for (int i = 4; i < 10; i++)
		cr_assert_eq(take(), i);
	cr_assert_eq(take(), -1, "message 100 was refused, not kept");
	pfs_txq_fini(&q);
}

/* A seeded random mix of sends (waiting or not), takes and flushes, long
 * enough to wrap the backlog many times: what arrives is exactly what was
 * accepted, in the order it was accepted. */
Test(txq, random_traffic_matches_a_model)
{
	struct pfs_txq q;
	uint64_t *accepted = calloc(20000, sizeof(*accepted));
	size_t nacc = 0, ntaken = 0, waits = 0;
	uint64_t seq = 0;
	unsigned r = 12345;

	cr_assert_not_null(accepted);
	cr_assert_eq(pfs_txq_init(&q, 5), 0);
	for (int step = 0; step < 20000; step++) {
		r = r * 1103515245u + 12345u;
		unsigned pick = (r >> 16) % 10;
		if (pick < 5) {
			struct pfs_ring_msg m = msg(seq);
			int rc = pfs_txq_send(&q, ctl, &m, pick < 3);
			cr_assert(rc == 0 || rc == 1 || rc == -ENOBUFS);
			cr_assert(rc != 1 || pick < 3, "a message that may not wait waits");
			if (rc >= 0)
				accepted[nacc++] = seq;
			waits += rc == 1;
			seq++;
		} else if (pick < 9) {
			int64_t got = take();
			if (got >= 0) {
				cr_assert_lt(ntaken, nacc);
				cr_assert_eq((uint64_t)got, accepted[ntaken], "step %d: got %lld, want %llu",
					     step, (long long)got, (unsigned long long)accepted[ntaken]);
				ntaken++;
			}
		} else {
			pfs_txq_flush(&q, ctl);
		}
		cr_assert_leq(pfs_txq_waiting(&q), 5);
	}
	while (pfs_txq_flush(&q, ctl) || ntaken < nacc) {
		int64_t got = take();
		cr_assert_geq(got, 0, "%zu accepted messages never arrived", nacc - ntaken);
		cr_assert_eq((uint64_t)got, accepted[ntaken]);
		ntaken++;
	}
	cr_assert_eq(take(), -1);
	cr_assert_eq(q.waited, waits);
	cr_assert_gt(waits, 100, "the backlog was used (%zu)", waits);
	cr_assert_lt(nacc, seq, "some sends were refused");
	cr_assert_eq(q.high, 5, "the backlog filled");
	pfs_txq_fini(&q);
	free(accepted);
}
