/* election.c - root election per hierarchy (docs/protocol.md 4).
 *
 * A candidate first listens a random part of listen_window (silent, so that
 * N devices booting together do not cost N^2 deliveries), then, as in the
 * seed, broadcasts CLAIM (tentative) claim_count times, claim_interval apart. Hearing a stronger claim, it defers; hearing a
 * confirmed ROOT at least as strong, it joins that tree. If neither happens
 * by one interval after its last claim, it confirms: it sets the CONFIRMED
 * bit in its strength ("Confirmed root bumping strength"), announces ROOT,
 * and fetches the file. A confirmed root answers every weaker claim with a
 * ROOT, so latecomers join the existing tree instead of electing again.
 *
 *   state      event                          next       action
 *   IDLE       want                           CLAIMING   listen 0..listen_window
 *   CLAIMING   claim timer, ads < count       CLAIMING   bcast CLAIM(ad+1)
 *   CLAIMING   claim timer, ads == count      ROOT       bump, bcast ROOT, fetch
 *   CLAIMING   CLAIM stronger                 DEFERRING  -
 *   CLAIMING   ROOT stronger                  JOINING    JOIN root
 *   DEFERRING  ROOT (any)                     JOINING    JOIN root
 *   DEFERRING  defer timeout                  CLAIMING   restart ads
 *   JOINING,   ROOT stronger than our root    JOINING    JOIN the new root
 *    MEMBER
 *   ROOT       CLAIM or ROOT weaker           ROOT       bcast ROOT (rate-limited: at
 *                                                         the latest when it ends)
 *   ROOT       ROOT stronger                  JOINING    yield: abort fetch, JOIN
 *
 * With a site relay (relay.c, docs/protocol.md 4.4): a relay goes from IDLE
 * straight to ROOT, and a device that holds a relay's beacon from IDLE (or
 * CLAIMING, DEFERRING) straight to JOINING it.
 */
#include "engine_internal.h"

bool stronger(uint32_t s1, uint32_t id1, uint32_t s2, uint32_t id2)
{
	return s1 != s2 ? s1 > s2 : id1 > id2;
}

static void send_claim(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	struct qitem *qi = eng_queue(e, h, PFS_ACT_SEND);

	h->ads_sent++;
	if (qi) {
		qi->msg = PFS_MSG_CLAIM;
		qi->hops = h->ads_sent;
		qi->act.bcast = true;
	}
	eng_event(e, h, PFS_EV_CLAIM_SENT, 0, NULL, h->ads_sent, h->strength);
	h->t_claim = now + e->cfg.claim_interval;
}

/* Listen before the first claim (docs/protocol.md 4.2): a random wait in
 * [0, listen_window) spreads the claims of devices that boot together, and a
 * candidate that hears a stronger claim or a root meanwhile never claims. So
 * a site of N devices sends about ln N claims instead of N, each of which
 * every device receives: N^2 broadcast deliveries was the seed's cost. */
static void confirm(struct pfs_engine *e, struct hier *h, pfs_time_t now);

void elect_start(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	if (relay_follow(e, h, now))
		return;         /* a site relay takes every file: no contest (4.4) */
	h->state = H_CLAIMING;
	h->walks = 0;
	h->ads_sent = 0;
	h->best_id = 0;
	h->best_strength = 0;
	h->strength &= ~PFS_STRENGTH_CONFIRMED;
	if (relay_active(e))
		confirm(e, h, now);     /* the relay is root at once (4.4) */
	else if (e->cfg.listen_window)
		h->t_claim = now + eng_random(e) % e->cfg.listen_window;
	else
		send_claim(e, h, now);
}

static void announce(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	eng_bcast(e, h, PFS_MSG_ROOT);
	h->last_root_reply = now;
	h->t_announce = now + eng_jitter(e, e->cfg.announce_interval);
}

/* Tell a claimer (or a weaker root) that a tree exists. A rate limit keeps
 * a burst of claims from turning into a burst of announcements; a claim
 * inside it is answered when it ends, not left to its next claim 250 ms
 * later (pfs-sim: latecomers to an appliance's tree waited 300 ms so). */
static void answer_claim(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	pfs_time_t next = h->last_root_reply + e->cfg.claim_interval / 4;

	if (now >= next)
		announce(e, h, now);
	else if (next < h->t_announce)
		h->t_announce = next;
}

static void confirm(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	h->state = H_ROOT;
	h->strength |= PFS_STRENGTH_CONFIRMED;
	h->root_known = true;
	h->root_id = e->cfg.node_id;
	h->root_strength = h->strength;
	h->root_addr = e->cfg.self;
	h->nanc = 0;
	eng_event(e, h, PFS_EV_ROOT_CONFIRMED, 0, NULL, 0, h->strength);
	announce(e, h, now);
	h->t_heartbeat = now;
	xfer_start_root(e, h, now);
}

/* Remember the announced root and go and join it. */
static void follow_root(struct pfs_engine *e, struct hier *h, pfs_time_t now,
			uint32_t id, uint32_t strength, const struct pfs_addr *addr)
{
	h->root_known = true;
	h->root_id = id;
	h->root_strength = strength;
	h->root_addr = *addr;
	tree_join_root(e, h, now);
}

void elect_on_claim(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		    const struct pfs_msg *m, const struct pfs_addr *src)
{
	uint32_t s = m->u.claim.strength;

	(void)src;
	switch (h->state) {
	case H_CLAIMING:
		if (stronger(s, m->sender, h->strength, e->cfg.node_id)) {
			h->state = H_DEFERRING;
			h->best_id = m->sender;
			h->best_strength = s;
			h->t_defer = now + e->cfg.defer_timeout;
			eng_event(e, h, PFS_EV_DEFER, m->sender, src, 0, s);
		}
		break;
	case H_DEFERRING:
		if (stronger(s, m->sender, h->best_strength, h->best_id)) {
			h->best_id = m->sender;
			h->best_strength = s;
		}
		break;
	case H_ROOT:
		answer_claim(e, h, now);
		break;
	default:
		break;
	}
}

void elect_on_root(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		   const struct pfs_msg *m, const struct pfs_addr *src)
{
	uint32_t s = m->u.root.strength;
	bool is_stronger = stronger(s, m->sender, h->strength, e->cfg.node_id);

	switch (h->state) {
	case H_CLAIMING:
		if (is_stronger)
			follow_root(e, h, now, m->sender, s, src);
		break;
	case H_DEFERRING:
		follow_root(e, h, now, m->sender, s, src);
		break;
	case H_JOINING:
	case H_MEMBER:
		if (!h->root_known || m->sender == h->root_id) {
			h->root_known = true;
			h->root_id = m->sender;
			h->root_strength = s;
			h->root_addr = *src;
		} else if (stronger(s, m->sender, h->root_strength, h->root_id)) {
			/* Two trees met (a split election, or a stronger class
			 * arrived): the weaker tree's root yields, and its
			 * members re-join through it; a joiner heading for the
			 * weaker root switches now. */
			h->root_id = m->sender;
			h->root_strength = s;
			h->root_addr = *src;
			if (h->state == H_JOINING)
				tree_join_root(e, h, now);
		}
		break;
	case H_ROOT:
		if (is_stronger) {
			eng_event(e, h, PFS_EV_YIELD, m->sender, src, 0, s);
			xfer_upstream_stop(e, h);
			h->strength &= ~PFS_STRENGTH_CONFIRMED;
			tree_drop_children(e, h, PFS_REASON_REPARENT);
			/* A root whose file failed (the driver was told) takes
			 * no further part: as a member it would take no chunk
			 * and ask for them all again every ack_interval, for
			 * as long as it lived (found by fuzz_site). */
			if (h->f.failed) {
				h->state = H_IDLE;
				break;
			}
			follow_root(e, h, now, m->sender, s, src);
		} else {
			answer_claim(e, h, now);
		}
		break;
	default:
		break;
	}
}

void elect_timers(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	switch (h->state) {
	case H_CLAIMING:
		if (now < h->t_claim)
			break;
		if (h->ads_sent < e->cfg.claim_count)
			send_claim(e, h, now);
		else
			confirm(e, h, now);
		break;
	case H_DEFERRING:
		if (now >= h->t_defer)
			elect_start(e, h, now);   /* the stronger one never confirmed */
		break;
	case H_ROOT:
		if (now >= h->t_announce)
			announce(e, h, now);
		break;
	default:
		break;
	}
}

pfs_time_t elect_deadline(const struct pfs_engine *e, const struct hier *h)
{
	(void)e;
	switch (h->state) {
	case H_CLAIMING:  return h->t_claim;
	case H_DEFERRING: return h->t_defer;
	case H_ROOT:      return h->t_announce;
	default:          return PFS_TIME_NEVER;
	}
}
