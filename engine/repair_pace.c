/* repair_pace.c - when a parent may repair a child's holes again
 * (docs/protocol.md 6.3).
 *
 * A repair resent before the last one had time to arrive only lengthens
 * the queue it waits in. On a slow or busy port that queue grows faster
 * than it drains and the child sees its repairs later and later: fuzz_site
 * found a parent sending 9,594 chunks for 46 at 40 kB/s with 16 % loss.
 * So, per child, as TCP does for a connection:
 *
 *  - its round trip is timed on new chunks only (Karn: a repair's ACK
 *    could answer an earlier copy): one chunk at a time, from its first
 *    send to the first ACK that shows it held. A rewind may send it again;
 *    that only makes the sample longer, never shorter. The queue at our
 *    port is in the sample, which is the point (transfer.c's rewind on
 *    STALL waits for srtt too);
 *  - a repair pass waits for the round-trip timeout (srtt + 4 rttvar, RFC
 *    6298 section 2, at least repair_holdoff) after the last one, doubled
 *    for every pass in a row that resent chunks and brought the child
 *    none, up to 2 s;
 *  - or less, once a new chunk sent after that pass is held: everything
 *    sent before it had its chance, so holes still listed were lost again
 *    (RACK's rule, RFC 8985, on the order we send in).
 *
 *   ACK lists holes ──> due? ──no──> keep the current repair list
 *                        │yes
 *                        v
 *                 take the new list, repair_at = now; shift++ if the
 *                 last pass resent chunks and the child holds no more
 */
#include "engine_internal.h"

#define PACE_MAX PFS_SEC(2)     /* longest wait between repair passes */
#define NONE UINT32_MAX

void pace_reset(struct child *c)
{
	c->repaired = false;
	c->repair_sent = false;
	c->repair_at = 0;
	c->repair_shift = 0;
	c->repair_mark = 0;
	c->repair_marker = NONE;
	c->sent_end = 0;
	c->probe = NONE;
	c->probe_at = 0;
	c->srtt = 0;
	c->rttvar = 0;
}

/* Does the child hold chunk idx, by its ACK? 1 yes, 0 it lists it as a
 * hole, -1 not known yet (at or past what it reports). */
static int ack_holds(const struct pfs_msg_ack *a, uint32_t idx)
{
	if (idx < a->cum)
		return 1;
	if (idx >= a->highest)
		return -1;
	for (unsigned i = 0; i < a->nranges; i++)
		if (idx >= a->ranges[i].start && idx - a->ranges[i].start < a->ranges[i].count)
			return 0;
	if ((a->flags & PFS_AF_MORE) && a->nranges &&
	    idx >= a->ranges[a->nranges - 1].start + a->ranges[a->nranges - 1].count)
		return -1;      /* past the holes it could list */
	return 1;
}

/* Chunks the child holds, as far as its ACK tells (a lower bound when it
 * could not list every hole). */
static uint32_t ack_held(const struct pfs_msg_ack *a)
{
	uint32_t held = a->highest;

	for (unsigned i = 0; i < a->nranges; i++)
		held -= a->ranges[i].count < held ? a->ranges[i].count : held;
	return held;
}

void pace_on_send(struct child *c, uint32_t idx, bool repair, pfs_time_t now)
{
	if (repair)
		c->repair_sent = true;
	if (repair || idx < c->sent_end)
		return;         /* sent before: its ACK would time either copy */
	c->sent_end = idx + 1;
	if (c->repair_marker == NONE && c->repaired)
		c->repair_marker = idx;
	if (c->probe == NONE) {
		c->probe = idx;
		c->probe_at = now;
	}
}

/* RFC 6298 section 2, with its gains of 1/8 and 1/4. */
static void rtt_sample(struct child *c, pfs_time_t r)
{
	if (!c->srtt) {
		c->srtt = r ? r : 1;
		c->rttvar = r / 2;
		return;
	}
	pfs_time_t err = c->srtt > r ? c->srtt - r : r - c->srtt;
	c->rttvar = c->rttvar - c->rttvar / 4 + err / 4;
	c->srtt = c->srtt - c->srtt / 8 + r / 8;
	if (!c->srtt)
		c->srtt = 1;
}

void pace_on_ack(struct child *c, const struct pfs_msg_ack *a, pfs_time_t now)
{
	if (c->probe != NONE) {
		int held = ack_holds(a, c->probe);
		if (held == 1)
			rtt_sample(c, now - c->probe_at);
		if (held >= 0)
			c->probe = NONE;        /* timed, or lost: time the next one */
	}
	if (ack_held(a) > c->repair_mark)
		c->repair_shift = 0;    /* repairs bring it chunks again */
}

static pfs_time_t repair_wait(const struct pfs_engine *e, const struct child *c)
{
	pfs_time_t wait = c->srtt + 4 * c->rttvar;

	if (wait < e->cfg.repair_holdoff)
		wait = e->cfg.repair_holdoff;
	for (unsigned i = 0; i < c->repair_shift && wait < PACE_MAX; i++)
		wait *= 2;
	return wait < PACE_MAX ? wait : PACE_MAX;
}

bool pace_repair_due(const struct pfs_engine *e, const struct child *c,
		     const struct pfs_msg_ack *a, pfs_time_t now)
{
	if (!c->repaired)
		return true;
	if (now - c->repair_at < e->cfg.repair_holdoff)
		return false;   /* one hole is not resent once per ACK in flight */
	if (c->repair_marker != NONE && ack_holds(a, c->repair_marker) == 1)
		return true;    /* sent after the last pass, and it arrived */
	return now - c->repair_at >= repair_wait(e, c);
}

void pace_repair_taken(const struct pfs_engine *e, struct child *c,
		       const struct pfs_msg_ack *a, pfs_time_t now)
{
	uint32_t held = ack_held(a);

	/* A pass that found none of the holes here to resend (the parent
	 * waits for them itself) says nothing about the path to the child. */
	if (c->repaired && c->repair_sent && held <= c->repair_mark &&
	    repair_wait(e, c) < PACE_MAX)
		c->repair_shift++;
	c->repair_mark = held;
	c->repaired = true;
	c->repair_sent = false;
	c->repair_at = now;
	c->repair_marker = NONE;
}
