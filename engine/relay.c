/* relay.c - a site relay announces itself, and devices skip the election
 * for it (docs/protocol.md 4.4).
 *
 * An appliance on the site is stronger than any device, so every election
 * it takes part in ends with it as root: holding one (listening, four
 * claims 250 ms apart, confirming) only delays the first byte by about a
 * second. A relay therefore
 *   - takes the root of a hierarchy as soon as it is in it (no claims), and
 *     pfs-control puts it in one at the first CLAIM, ROOT or JOIN it hears;
 *   - broadcasts RELAY every announce_interval, for its model or for every
 *     model, good for three intervals;
 * and a device that holds a RELAY stronger than its own class joins the
 * relay at once (JOIN names model and file) instead of electing, for any
 * file of that model. What the relay cannot take (it does not answer, or
 * refuses, or left the tree) falls back to the election for that file only.
 *
 *   node     event                                 action
 *   relay    want                                  ROOT at once: announce, fetch
 *   relay    beacon timer                          bcast RELAY (hold 3 intervals)
 *   device   RELAY, class above ours, our model    remember it until the hold ends;
 *                                                  CLAIMING/DEFERRING: JOIN it now
 *   device   want (or a new election), relay held  JOIN it (no listen, no claim)
 *   device   the relay refuses, is silent, leaves  that file elects as usual
 */
#include "engine_internal.h"

#include <string.h>

#define RELAY_HOLD_INTERVALS 3  /* a beacon holds this many intervals */

/* A relay acts as one only while it outranks the devices: an operator who
 * lowered its class below theirs made it an ordinary member (issue 14 5). */
bool relay_active(const struct pfs_engine *e)
{
	return e->cfg.relay != PFS_RELAY_OFF && e->cfg.priority_class > PFS_CLASS_DEVICE;
}

static bool relay_held(const struct pfs_engine *e, pfs_time_t now)
{
	return e->cfg.relay == PFS_RELAY_OFF && e->relay.until > now;
}

/* Join the relay for this hierarchy instead of electing, if one is held
 * and has not failed this hierarchy already. */
bool relay_follow(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	if (!relay_held(e, now) || h->relay_failed || integ_excluded(h, e->relay.id, now))
		return false;
	h->root_known = true;
	h->root_id = e->relay.id;
	h->root_strength = e->relay.strength;
	h->root_addr = e->relay.addr;
	eng_event(e, h, PFS_EV_RELAY, e->relay.id, &e->relay.addr, 0, e->relay.strength);
	tree_join_root(e, h, now);
	return true;
}

/* The relay did not take us for this hierarchy: it is elected for from now
 * on, like a site without one. */
void relay_forget(struct pfs_engine *e, struct hier *h)
{
	if (h->root_known && e->relay.until && h->root_id == e->relay.id)
		h->relay_failed = true;
}

void relay_on_beacon(struct pfs_engine *e, pfs_time_t now, const struct pfs_msg *m,
		     const struct pfs_addr *src)
{
	const struct pfs_msg_relay *r = &m->u.relay;

	if (e->cfg.relay != PFS_RELAY_OFF)
		return;         /* relays meet through their ROOTs, as roots do */
	if (r->model.len && (r->model.len != strlen(e->cfg.model) ||
			     memcmp(r->model.p, e->cfg.model, r->model.len))) {
		e->st.rx_foreign++;
		return;
	}
	if (r->strength >> PFS_STRENGTH_CLASS_SHIFT <= e->cfg.priority_class)
		return;         /* not above us: an election decides */
	if (relay_held(e, now) && e->relay.id != m->sender &&
	    stronger(e->relay.strength, e->relay.id, r->strength, m->sender))
		return;         /* two relays: keep the stronger */
	e->st.relay_heard++;
	e->relay = (struct relay_seen){ m->sender, r->strength, *src,
					now + PFS_MSEC(r->hold_ms) };
	for (int i = 0; i < e->nhiers; i++) {
		struct hier *h = &e->hiers[i];
		if (h->state == H_CLAIMING ||
		    (h->state == H_DEFERRING &&
		     stronger(r->strength, m->sender, h->best_strength, h->best_id)))
			relay_follow(e, h, now);
	}
}

void relay_fill_beacon(struct pfs_engine *e, struct pfs_msg_relay *r)
{
	uint64_t hold = RELAY_HOLD_INTERVALS * e->cfg.announce_interval / PFS_MSEC(1);

	r->strength = (uint32_t)e->cfg.priority_class << PFS_STRENGTH_CLASS_SHIFT |
		      PFS_STRENGTH_CONFIRMED | ((e->cfg.random & PFS_STRENGTH_RANDOM_MASK) | 1);
	r->hold_ms = (uint16_t)(hold > UINT16_MAX ? UINT16_MAX : hold ? hold : 1);
	r->model = (struct pfs_str){ e->cfg.model, (uint16_t)strlen(e->cfg.model) };
}

void relay_timers(struct pfs_engine *e, pfs_time_t now)
{
	struct qitem *qi;

	if (e->cfg.relay != PFS_RELAY_ON || !relay_active(e) || now < e->t_beacon)
		return;
	qi = eng_queue(e, NULL, PFS_ACT_SEND);
	if (qi) {
		qi->msg = PFS_MSG_RELAY;
		qi->act.bcast = true;
		qi->act.hier = PFS_HIER_ALL;
	}
	e->t_beacon = now + eng_jitter(e, e->cfg.announce_interval);
}

pfs_time_t relay_deadline(const struct pfs_engine *e)
{
	return e->cfg.relay == PFS_RELAY_ON && relay_active(e) ? e->t_beacon : PFS_TIME_NEVER;
}
