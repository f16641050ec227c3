/* gso.c - see gso.h. */
#include "gso.h"

static bool same_dest(const struct gso_dgram *a, const struct gso_dgram *b)
{
	return a->ip == b->ip && a->port == b->port && a->bcast == b->bcast;
}

/* Each destination's datagrams in the order queued, destinations in the
 * order first seen: O(n x destinations), a few children a batch. */
static void group(const struct gso_dgram *d, unsigned n, uint16_t *order)
{
	bool taken[GSO_BATCH_MAX] = { false };
	unsigned no = 0, from = 0;

	while (no < n) {
		while (taken[from])
			from++;
		for (unsigned j = from; j < n; j++) {
			if (!taken[j] && same_dest(&d[from], &d[j])) {
				taken[j] = true;
				order[no++] = (uint16_t)j;
			}
		}
	}
}

/* How many of order[k ..] one message takes, starting at the first. */
static unsigned run_length(const struct gso_dgram *d, unsigned n, uint32_t max_seg,
			   const uint16_t *order, unsigned k)
{
	const struct gso_dgram *a = &d[order[k]];
	uint32_t total = a->len;
	unsigned c = 1;

	if (!max_seg || a->bcast || !a->len || a->len > max_seg)
		return 1;
	while (k + c < n && c < GSO_MAX_SEGS) {
		const struct gso_dgram *b = &d[order[k + c]];

		if (!same_dest(a, b) || !b->len || b->len > a->len || total + b->len > GSO_MAX_BYTES)
			break;
		total += b->len;
		c++;
		if (b->len < a->len)
			break;          /* only the last may be shorter */
	}
	return c;
}

unsigned gso_plan(const struct gso_dgram *d, unsigned n, uint32_t max_seg, uint16_t *order,
		  struct gso_msg *msgs)
{
	unsigned nm = 0;

	if (n > GSO_BATCH_MAX)
		n = GSO_BATCH_MAX;
	group(d, n, order);
	for (unsigned k = 0; k < n;) {
		unsigned c = run_length(d, n, max_seg, order, k);

		msgs[nm++] = (struct gso_msg){ .first = (uint16_t)k, .count = (uint16_t)c,
					       .seg = c > 1 ? (uint16_t)d[order[k]].len : 0 };
		k += c;
	}
	return nm;
}
