/* test_gso.c - pfs-peer's send plan (peer/gso.c): every rule the kernel
 * sets for a segmented UDP message is kept, each destination's datagrams
 * leave in the order queued, nothing is lost or sent twice, and runs are
 * as long as the rules allow (a plan of single datagrams would pass the
 * rest). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "gso.h"

#define DGRAM   1436            /* a default chunk's DATA datagram */
#define MAXSEG  1472            /* MTU 1500 */
#define A       0x0a000001u
#define B       0x0a000002u

static struct gso_dgram to(uint32_t ip, uint32_t len)
{
	return (struct gso_dgram){ .ip = ip, .port = 4051, .len = len };
}

static bool same_dest(const struct gso_dgram *a, const struct gso_dgram *b)
{
	return a->ip == b->ip && a->port == b->port && a->bcast == b->bcast;
}

/* Every rule, for any input: returns the number of messages. */
static unsigned check_plan(const struct gso_dgram *d, unsigned n, uint32_t max_seg)
{
	uint16_t order[GSO_BATCH_MAX];
	struct gso_msg m[GSO_BATCH_MAX];
	bool seen[GSO_BATCH_MAX] = { false };
	unsigned nm = gso_plan(d, n, max_seg, order, m), next = 0;

	cr_assert(nm >= 1 || n == 0);
	for (unsigned k = 0; k < n; k++) {     /* a permutation */
		cr_assert(order[k] < n && !seen[order[k]], "datagram %u twice", order[k]);
		seen[order[k]] = true;
	}
	for (unsigned k = 1; k < n; k++)        /* each destination in queue order */
		for (unsigned j = 0; j < k; j++)
			if (same_dest(&d[order[j]], &d[order[k]]))
				cr_assert(order[j] < order[k], "a destination's order changed");
	for (unsigned i = 0; i < nm; i++) {
		const struct gso_msg *g = &m[i];
		const struct gso_dgram *first = &d[order[g->first]];
		uint32_t total = 0;

		cr_assert_eq(g->first, next, "messages cover the order, in turn");
		cr_assert(g->count >= 1 && g->first + g->count <= n);
		next = g->first + g->count;
		cr_assert_eq(g->seg != 0, g->count > 1, "a segment size iff several datagrams");
		if (g->count == 1)
			continue;
		cr_assert(!first->bcast, "a broadcast segmented");
		cr_assert(g->seg <= max_seg, "segment %u over the path's %u", g->seg, max_seg);
		cr_assert(g->count <= GSO_MAX_SEGS);
		for (unsigned k = 0; k < g->count; k++) {
			const struct gso_dgram *x = &d[order[g->first + k]];

			cr_assert(same_dest(first, x), "two destinations in one message");
			if (k + 1 < g->count)
				cr_assert_eq(x->len, g->seg, "only the last may differ");
			else
				cr_assert(x->len <= g->seg && x->len > 0);
			total += x->len;
		}
		cr_assert(total <= GSO_MAX_BYTES, "%u bytes in one message", total);
	}
	cr_assert_eq(next, n, "datagrams left out");
	/* As long as allowed: the next datagram could not have joined. */
	for (unsigned i = 0; i + 1 < nm && max_seg; i++) {
		const struct gso_msg *g = &m[i];
		const struct gso_dgram *first = &d[order[g->first]], *last, *nx;
		uint32_t seg = first->len, total = 0;

		last = &d[order[g->first + g->count - 1]];
		nx = &d[order[g->first + g->count]];
		for (unsigned k = 0; k < g->count; k++)
			total += d[order[g->first + k]].len;
		if (same_dest(first, nx) && !first->bcast && seg <= max_seg && last->len == seg &&
		    nx->len && nx->len <= seg && g->count < GSO_MAX_SEGS &&
		    total + nx->len <= GSO_MAX_BYTES)
			cr_assert_fail("message %u stops before datagram %u, which fits", i,
				order[g->first + g->count]);
	}
	return nm;
}

Test(gso, two_children_interleaved_become_two_messages)
{
	struct gso_dgram d[43];
	uint16_t order[43];
	struct gso_msg m[43];
	unsigned n = 0, nm;

	for (int i = 0; i < 20; i++) {          /* chunk i to A, then to B */
		d[n++] = to(A, DGRAM);
		d[n++] = to(B, DGRAM);
	}
	d[n++] = to(A, 44);                     /* an ACK to A: a shorter last */
	d[n] = to(0xffffffffu, 60);
	d[n++].bcast = true;                    /* a ROOT broadcast */
	d[n++] = to(B, DGRAM);
	nm = gso_plan(d, n, MAXSEG, order, m);
	cr_assert_eq(nm, 3);
	cr_assert(m[0].count == 21 && m[0].seg == DGRAM, "A: %u x %u", m[0].count, m[0].seg);
	cr_assert(m[1].count == 21 && m[1].seg == DGRAM, "B: %u x %u", m[1].count, m[1].seg);
	cr_assert(m[2].count == 1 && m[2].seg == 0 && d[order[m[2].first]].bcast);
	for (unsigned k = 0; k < 20; k++)
		cr_assert_eq(order[k], 2 * k, "A's chunks in their order");
	cr_assert_eq(order[20], 40, "A's ACK after its chunks");
	check_plan(d, n, MAXSEG);
}

Test(gso, a_run_is_cut_at_the_largest_datagram)
{
	struct gso_dgram d[100];
	uint16_t order[100];
	struct gso_msg m[100];

	for (int i = 0; i < 100; i++)
		d[i] = to(A, DGRAM);
	cr_assert_eq(gso_plan(d, 100, MAXSEG, order, m), 3);
	cr_assert(m[0].count == GSO_MAX_BYTES / DGRAM && m[1].count == GSO_MAX_BYTES / DGRAM);
	cr_assert_eq(m[2].count, 100 - 2 * (GSO_MAX_BYTES / DGRAM));
	/* small datagrams stop at the segment count instead */
	for (int i = 0; i < 100; i++)
		d[i] = to(A, 100);
	cr_assert_eq(gso_plan(d, 100, MAXSEG, order, m), 2);
	cr_assert(m[0].count == GSO_MAX_SEGS && m[1].count == 100 - GSO_MAX_SEGS);
}

Test(gso, a_shorter_datagram_ends_a_run_and_a_longer_one_starts_one)
{
	uint32_t lens[] = { DGRAM, DGRAM, 500, DGRAM, DGRAM, 300, DGRAM };
	struct gso_dgram d[7];
	uint16_t order[7];
	struct gso_msg m[7];

	for (int i = 0; i < 7; i++)
		d[i] = to(A, lens[i]);
	cr_assert_eq(gso_plan(d, 7, MAXSEG, order, m), 3);
	cr_assert(m[0].count == 3 && m[0].seg == DGRAM);
	cr_assert(m[1].count == 3 && m[1].seg == DGRAM);
	cr_assert(m[2].count == 1 && m[2].seg == 0);
}

Test(gso, nothing_is_segmented_when_off_or_over_the_mtu)
{
	struct gso_dgram d[10];
	uint16_t order[10];
	struct gso_msg m[10];

	for (int i = 0; i < 10; i++)
		d[i] = to(A, DGRAM);
	cr_assert_eq(gso_plan(d, 10, 0, order, m), 10, "off: one datagram a message");
	for (int i = 0; i < 10; i++)
		d[i] = to(A, 8000);             /* --chunk-size 8000: IP fragments */
	cr_assert_eq(gso_plan(d, 10, MAXSEG, order, m), 10);
	check_plan(d, 10, MAXSEG);
}

Test(gso, random_batches_keep_every_rule)
{
	static const uint32_t lens[] = { DGRAM, DGRAM, DGRAM, DGRAM, 44, 60, 300, 1472, 1473,
					 8000, 1 };
	struct gso_dgram d[GSO_BATCH_MAX];
	unsigned segmented = 0;

	srand(14);
	for (int round = 0; round < 20000; round++) {
		unsigned n = (unsigned)(rand() % GSO_BATCH_MAX) + 1, nm;
		uint32_t max_seg = rand() % 8 ? MAXSEG : (rand() % 2 ? 0 : 576);

		for (unsigned i = 0; i < n; i++) {
			unsigned dest = (unsigned)rand() % 5;

			d[i] = to(A + dest % 3, lens[rand() % 11]);
			d[i].port = dest == 3 ? 4052 : 4051;
			d[i].bcast = dest == 4;
		}
		nm = check_plan(d, n, max_seg);
		segmented += nm < n;
	}
	cr_assert(segmented > 10000, "runs were planned in %u of 20000 batches", segmented);
}
