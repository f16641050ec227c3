/* tree.c - joining, child slots, heartbeats and re-parenting (docs/protocol.md 5).
 *
 * A joiner sends JOIN to the root. A node with a free slot ACCEPTs; a full
 * node REDIRECTs to the child whose subtree is smallest (counting joiners it
 * already sent there), so joiners walk down one level per hop and the tree
 * stays balanced by size. A size-balanced tree with k slots per node has the
 * minimum height, ceil(log_k(N(k-1)+1)): ceil(log2(N+1)) for the seed's 2.
 *
 * A child that loses its parent (silence or LEAVE) keeps every chunk it holds,
 * releases its own children (they re-join one by one, which keeps the tree
 * balanced where grafting a whole subtree would deepen it) and joins again
 * through the root.
 *
 *   state    event                          next      action
 *   JOINING  ACCEPT from target             MEMBER    ACK (resume point)
 *   JOINING  REDIRECT from target           JOINING   JOIN next target
 *   JOINING  REFUSE / timeout x 2 (not root) JOINING   JOIN root again
 *   JOINING  HEARTBEAT from target          JOINING   JOIN again (ACCEPT lost)
 *   JOINING  REFUSE of an ACK               JOINING   none (an old ACK's answer)
 *   JOINING  root silent x retries          CLAIMING  new election
 *   MEMBER   parent silent / LEAVE / REFUSE JOINING   LEAVE children, JOIN root
 *            (not of a JOIN)
 *   MEMBER   root silent / LEAVE(SHUTDOWN, CLAIMING  LEAVE(ROOT_GONE) children,
 *            ROOT_GONE) from parent                   new election
 */
#include "engine_internal.h"

#include <string.h>

#define JOIN_REDIRECT_TRIES 2   /* JOINs to a redirect target before the root again */
#define JOIN_REDIRECT_DIV 3     /* its timeout: join_timeout / this */
#define WALK_FREE 2             /* walks from the root again at once */
#define WALK_WAIT_DIV 12        /* then the first wait: join_timeout / this (25 ms) */
#define WALK_BACKOFF_MAX 4      /* a walk again waits at most 16 times the first wait */

struct child *tree_child_by_id(struct hier *h, uint32_t id)
{
	for (unsigned s = 0; s < h->nchildren_cap; s++)
		if (h->children[s].used && h->children[s].id == id)
			return &h->children[s];
	return NULL;
}

uint32_t tree_subtree(const struct hier *h)
{
	uint32_t n = 1;

	for (unsigned s = 0; s < h->nchildren_cap; s++)
		if (h->children[s].used)
			n += h->children[s].subtree;
	return n;
}

void tree_fill_status(const struct pfs_engine *e, const struct hier *h, struct pfs_status *st)
{
	memset(st, 0, sizeof(*st));
	/* FAILED tells what the server did, never what this node could not
	 * do (docs/protocol.md 6.5): a local failure is not passed on. */
	bool server_failed = h->f.failed && (h->f.fail_cause == PFS_FAIL_SERVER ||
					     h->f.fail_cause == PFS_FAIL_NOT_FOUND);
	st->mflags = (h->f.final ? PFS_MF_FINAL : 0) | (server_failed ? PFS_MF_FAILED : 0) |
		     (server_failed && h->f.fail_cause == PFS_FAIL_NOT_FOUND ? PFS_MF_NOT_FOUND : 0) |
		     (h->man.verified ? PFS_MF_SIGNED : 0);
	st->manifest_len = h->man.verified ? h->man.len : 0;
	st->chunk_size = h->f.chunk_size ? h->f.chunk_size : e->cfg.chunk_size;
	st->size = h->f.final ? h->f.size : 0;
	if (h->f.final)
		memcpy(st->sha256, h->f.sha256, 32);
	st->parent_prefix = h->f.have.prefix;
	/* Our path is our ancestors plus ourselves; a path longer than the
	 * wire allows keeps its newest part (loop checks look at the top). */
	unsigned n = h->state == H_MEMBER || h->state == H_DETACHED ? h->nanc : 0;
	unsigned skip = n + 1 > PFS_PATH_MAX ? n + 1 - PFS_PATH_MAX : 0;
	for (unsigned i = skip; i < n; i++)
		st->path[st->npath++] = h->anc[i];
	st->path[st->npath++] = e->cfg.node_id;
}

static void send_join(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	struct qitem *qi = eng_queue(e, h, PFS_ACT_SEND);

	if (qi) {
		qi->msg = PFS_MSG_JOIN;
		qi->hops = h->hops;
		qi->act.dst = h->target;
		qi->act.peer_id = h->target_id;
	}
	/* Backoff, as for any request that may be queued behind a burst: a
	 * root that 100,000 joiners reach at once answers the last ones late,
	 * and retrying at a fixed interval would double its load. A member we
	 * were redirected to has no such burst (its answer waits behind at
	 * most a window of chunks, ~15 ms at 100 Mbit/s), so a third of the
	 * wait: under 2 % loss a lost JOIN or REDIRECT on a 17-hop walk cost
	 * 300 ms each; pfs-sim, 10k with loss and churn, seeds 2-4: last
	 * first attach 4.9-6.8 s -> 2.5-3.5 s. */
	pfs_time_t wait = h->target_id == h->root_id ? e->cfg.join_timeout
						     : e->cfg.join_timeout / JOIN_REDIRECT_DIV;

	h->t_join = now + eng_jitter(e, wait << (h->tries < 4 ? h->tries : 4));
}

void tree_join_root(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	h->state = H_JOINING;
	h->parent_id = 0;
	h->target_id = h->root_id;
	h->target = h->root_addr;
	h->hops = 0;
	h->tries = 0;
	send_join(e, h, now);
}

/* Back to the root after a walk that found no parent: a REFUSE on the way,
 * a redirect loop, a redirect to a node we exclude. Twice at once (churn
 * refuses a walk now and then: pfs-sim, 10,000 devices, 2 % loss, 5 %
 * churn, about 1 walk in 10 is a second one and 1 in 200 a third); then after
 * 25 ms, doubling to sixteen times that: a subtree that refuses every joiner
 * (a child entry its parent still keeps for a member that left, one we
 * exclude) would otherwise send each joiner round root -> member -> REFUSE
 * at the speed of the LAN (fuzz_site found three joiners doing 40,000 walks
 * a second for 24 s; docs/protocol.md 5.1). */
static void tree_walk_again(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	unsigned k;

	if (h->walks < UINT8_MAX)
		h->walks++;
	if (h->walks <= WALK_FREE) {
		tree_join_root(e, h, now);
		return;
	}
	k = h->walks - WALK_FREE - 1u;
	if (k > WALK_BACKOFF_MAX)
		k = WALK_BACKOFF_MAX;
	h->state = H_JOINING;
	h->parent_id = 0;
	h->target_id = h->root_id;
	h->target = h->root_addr;
	h->hops = 0;
	h->tries = 0;           /* the timer's JOIN is the first of join_retries */
	h->t_join = now + eng_jitter(e, (e->cfg.join_timeout / WALK_WAIT_DIV) << k);
}

static struct qitem *send_reason(struct pfs_engine *e, struct hier *h, uint8_t type,
				 uint8_t reason, uint32_t id, const struct pfs_addr *dst)
{
	struct qitem *qi = eng_queue(e, h, PFS_ACT_SEND);

	if (qi) {
		qi->msg = type;
		qi->reason = reason;
		qi->act.dst = *dst;
		qi->act.peer_id = id;
	}
	return qi;
}

/* REFUSE a JOIN: it says so (docs/protocol.md 3.2), so a joiner can tell
 * it from our answers to the ACKs it sent as our child before. */
static void refuse_join(struct pfs_engine *e, struct hier *h, uint8_t reason, uint32_t id,
			const struct pfs_addr *dst)
{
	struct qitem *qi = send_reason(e, h, PFS_MSG_REFUSE, reason, id, dst);

	if (qi)
		qi->answers = PFS_MSG_JOIN;
}

static void remove_child(struct pfs_engine *e, struct hier *h, struct child *c, uint8_t reason)
{
	eng_event(e, h, PFS_EV_CHILD_REMOVED, c->id, &c->addr,
		  (uint32_t)(c - h->children), reason);
	memset(c, 0, sizeof(*c));
	h->nchildren--;
}

void tree_drop_children(struct pfs_engine *e, struct hier *h, uint8_t reason)
{
	for (unsigned s = 0; s < h->nchildren_cap; s++) {
		struct child *c = &h->children[s];
		if (!c->used)
			continue;
		send_reason(e, h, PFS_MSG_LEAVE, reason, c->id, &c->addr);
		remove_child(e, h, c, reason);
	}
}

/* The subtree to send a joiner into: smallest by reported size plus what we
 * already redirected there, so a burst of joiners spreads evenly. */
static struct child *pick_subtree(struct hier *h)
{
	struct child *best = NULL;
	uint64_t best_load = UINT64_MAX;

	for (unsigned s = 0; s < h->nchildren_cap; s++) {
		struct child *c = &h->children[s];
		uint64_t load = (uint64_t)c->subtree + c->pending;
		if (c->used && load < best_load) {
			best = c;
			best_load = load;
		}
	}
	return best;
}

static bool in_path(const struct hier *h, uint32_t id)
{
	for (unsigned i = 0; i < h->nanc; i++)
		if (h->anc[i] == id)
			return true;
	return false;
}

void tree_on_join(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		  const struct pfs_msg *m, const struct pfs_addr *src)
{
	struct child *c;
	struct qitem *qi;

	if (!serves_children(h)) {
		refuse_join(e, h, PFS_REASON_NOT_MEMBER, m->sender, src);
		return;
	}
	if (h->state != H_ROOT && in_path(h, m->sender)) {
		refuse_join(e, h, PFS_REASON_LOOP, m->sender, src);
		return;
	}
	c = tree_child_by_id(h, m->sender);
	if (!c) {
		for (unsigned s = 0; s < h->nchildren_cap && !c; s++)
			if (!h->children[s].used)
				c = &h->children[s];
		if (c) {
			memset(c, 0, sizeof(*c));
			c->used = true;
			c->id = m->sender;
			c->subtree = m->u.join.subtree_nodes;
			h->nchildren++;
			eng_event(e, h, PFS_EV_CHILD_ADDED, m->sender, src,
				  (uint32_t)(c - h->children), 0);
		}
	}
	if (c) {
		/* New, or our ACCEPT was lost and it asks again. */
		c->addr = *src;
		c->last_heard = now;
		xfer_reset_child(c);
		qi = eng_queue(e, h, PFS_ACT_SEND);
		if (qi) {
			qi->msg = PFS_MSG_ACCEPT;
			qi->slot = (uint8_t)(c - h->children);
			qi->act.dst = *src;
			qi->act.peer_id = c->id;
		}
		xfer_subtree_changed(e, h, now);        /* report the new size up */
		return;
	}
	c = pick_subtree(h);
	c->pending += m->u.join.subtree_nodes;
	c->pending_at = now;
	qi = eng_queue(e, h, PFS_ACT_SEND);
	if (qi) {
		qi->msg = PFS_MSG_REDIRECT;
		qi->target_id = c->id;
		qi->target = c->addr;
		qi->act.dst = *src;
		qi->act.peer_id = m->sender;
	}
}

static bool path_has_loop(const struct pfs_engine *e, const struct pfs_status *st)
{
	for (unsigned i = 0; i < st->npath; i++)
		if (st->path[i] == e->cfg.node_id)
			return true;
	return false;
}

static void set_path(struct hier *h, const struct pfs_status *st)
{
	h->nanc = st->npath;
	memcpy(h->anc, st->path, st->npath * sizeof(uint32_t));
}

void tree_on_accept(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		    const struct pfs_msg *m, const struct pfs_addr *src)
{
	const struct pfs_status *st = &m->u.accept.st;

	if (h->state == H_MEMBER && m->sender == h->parent_id) {
		h->parent_heard = now;          /* a repeated ACCEPT */
		return;
	}
	if (h->state != H_JOINING || m->sender != h->target_id || path_has_loop(e, st)) {
		/* A stale answer: give the slot back. */
		e->st.rx_stray++;
		send_reason(e, h, PFS_MSG_LEAVE, PFS_REASON_REPARENT, m->sender, src);
		return;
	}
	h->state = H_MEMBER;
	h->walks = 0;
	h->bad_files = 0;               /* counted per parent */
	h->parent_id = m->sender;
	h->parent = *src;
	h->parent_heard = now;
	h->slot = m->u.accept.slot;
	set_path(h, st);
	if (!h->root_known || st->path[0] != h->root_id) {
		h->root_known = true;
		h->root_id = st->path[0];
	}
	eng_event(e, h, PFS_EV_JOINED, m->sender, src, h->nanc + 1u, h->slot);
	h->last_progress = now;
	h->progress_mark = h->f.have.count;
	xfer_apply_status(e, h, now, st);
	xfer_send_ack(e, h, now);               /* tells the parent where to resume */
}

void tree_on_redirect(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		      const struct pfs_msg *m, const struct pfs_addr *src)
{
	const struct pfs_msg_redirect *r = &m->u.redirect;

	if (h->state != H_JOINING || m->sender != h->target_id) {
		e->st.rx_stray++;
		return;
	}
	/* A stale map led us astray, or into a subtree under a node that
	 * served us bad data: its ACCEPT would be dropped unheard (and hold
	 * a slot there for us), so it is not asked. */
	if (r->target_id == e->cfg.node_id || ++h->hops > 2 * PFS_PATH_MAX ||
	    integ_excluded(h, r->target_id, now)) {
		tree_walk_again(e, h, now);
		return;
	}
	h->target_id = r->target_id;
	h->target = (struct pfs_addr){ r->target_ip, r->target_port };
	h->tries = 0;
	eng_event(e, h, PFS_EV_REDIRECTED, r->target_id, &h->target, h->hops, 0);
	(void)src;
	send_join(e, h, now);
}

void tree_leave_parent(struct pfs_engine *e, struct hier *h, uint8_t reason)
{
	if (h->state == H_MEMBER)
		send_reason(e, h, PFS_MSG_LEAVE, reason, h->parent_id, &h->parent);
}

void tree_leave(struct pfs_engine *e, struct hier *h)
{
	xfer_upstream_stop(e, h);
	tree_drop_children(e, h, PFS_REASON_SHUTDOWN);
	tree_leave_parent(e, h, PFS_REASON_SHUTDOWN);
	h->state = H_IDLE;
}

void tree_parent_lost(struct pfs_engine *e, struct hier *h, pfs_time_t now, uint8_t reason)
{
	eng_event(e, h, PFS_EV_PARENT_LOST, h->parent_id, &h->parent, 0, reason);
	if (h->f.complete) {
		/* A finished node needs no parent. Dropping its children now
		 * would send them to a root that may be gone (the tree winds
		 * down from the top as nodes finish) and start a second fetch;
		 * it keeps feeding them instead. */
		h->state = H_DETACHED;
		h->parent_id = 0;
		return;
	}
	/* The root itself left (it exited or gave the file up) or fell
	 * silent: the whole tree must elect another, and our children hear
	 * so now instead of trying to join a root that is gone. */
	bool root_gone = reason == PFS_REASON_ROOT_GONE ||
			 (h->parent_id == h->root_id &&
			  (reason == PFS_REASON_SHUTDOWN || reason == PFS_REASON_NONE));
	tree_drop_children(e, h, root_gone ? PFS_REASON_ROOT_GONE : PFS_REASON_REPARENT);
	if (root_gone) {
		relay_forget(e, h);     /* the relay left this tree: elect */
		h->root_known = false;
	}
	if (h->root_known && h->root_id != h->parent_id)
		tree_join_root(e, h, now);
	else
		elect_start(e, h, now);
}

/* A REFUSE is taken only in the state whose message it answers: a parent
 * that dropped us answers every ACK we had on the way to it, and the ones
 * that come once we are joining it again are no word on that JOIN. Taken
 * as one, they made a device under load leave its appliance as a silent
 * root, elect itself and fetch the file over the WAN a second time. An
 * older sender says nothing (0): taken in either state, as before. */
void tree_on_refuse(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		    const struct pfs_msg *m, const struct pfs_addr *src)
{
	uint8_t answers = m->u.reason.answers;

	(void)src;
	if (h->state == H_MEMBER && m->sender == h->parent_id && answers != PFS_MSG_JOIN) {
		tree_parent_lost(e, h, now, m->u.reason.reason);
	} else if (h->state == H_JOINING && m->sender == h->target_id &&
		   answers != PFS_MSG_ACK) {
		if (m->sender == h->root_id) {
			relay_forget(e, h);
			/* The "root" is not one: where nodes may be hostile, it
			 * is not followed again (its ROOTs would loop us). */
			if (e->cfg.trust) {
				integ_distrust(e, h, now, h->root_id, PFS_DISTRUST_SILENT_ROOT);
				h->root_known = false;
			}
			elect_start(e, h, now);
		} else
			tree_walk_again(e, h, now);
	} else {
		e->st.rx_stray++;
	}
}

void tree_on_leave(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		   const struct pfs_msg *m, const struct pfs_addr *src)
{
	struct child *c = tree_child_by_id(h, m->sender);

	(void)src;
	if (c) {
		remove_child(e, h, c, m->u.reason.reason);
		if (h->state == H_MEMBER)
			xfer_send_ack(e, h, now);
	} else if (h->state == H_MEMBER && m->sender == h->parent_id) {
		if ((m->u.reason.reason == PFS_REASON_ROOT_FAILED ||
		     m->u.reason.reason == PFS_REASON_FAILED) && !h->f.complete)
			xfer_leave_tree(e, h, now,      /* its root is ours (failure.c) */
					m->u.reason.reason == PFS_REASON_FAILED, false);
		else
			tree_parent_lost(e, h, now, m->u.reason.reason);
	} else {
		e->st.rx_stray++;
	}
}

void tree_on_heartbeat(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		       const struct pfs_msg *m, const struct pfs_addr *src)
{
	const struct pfs_status *st = &m->u.heartbeat;

	if (h->state == H_JOINING && m->sender == h->target_id) {
		/* The node we are joining counts us as its child: it took
		 * our JOIN and its ACCEPT was lost. Ask again now for the
		 * ACCEPT; a LEAVE here freed the slot its next ACCEPT
		 * answered from, and the ACKs that followed were refused. */
		e->st.rx_stray++;
		send_join(e, h, now);
		return;
	}
	if (h->state != H_MEMBER || m->sender != h->parent_id) {
		/* It still counts us as its child: free that slot. */
		e->st.rx_stray++;
		send_reason(e, h, PFS_MSG_LEAVE, PFS_REASON_REPARENT, m->sender, src);
		return;
	}
	if (path_has_loop(e, st)) {
		send_reason(e, h, PFS_MSG_LEAVE, PFS_REASON_LOOP, m->sender, src);
		tree_parent_lost(e, h, now, PFS_REASON_LOOP);
		return;
	}
	h->parent_heard = now;
	set_path(h, st);
	if (st->path[0] != h->root_id)
		h->root_id = st->path[0];
	xfer_apply_status(e, h, now, st);
}

void tree_timers(struct pfs_engine *e, struct hier *h, pfs_time_t now)
{
	if (h->state == H_JOINING && now >= h->t_join) {
		/* The root may answer a site-wide burst late, so it gets every
		 * retry; a node we were redirected to was heard by its parent
		 * within child_timeout and has no such backlog: silent twice,
		 * it most likely died, and the walk is cheaper started again
		 * from the root (which by then counts our last try against
		 * that subtree) than 4.5 s of retries into it (pfs-sim found
		 * joiners at 5% churn waiting so, docs/protocol.md 5.1). */
		unsigned tries = h->target_id == h->root_id ? e->cfg.join_retries
							    : JOIN_REDIRECT_TRIES;
		if (++h->tries < tries) {
			send_join(e, h, now);
		} else if (h->target_id != h->root_id) {
			tree_join_root(e, h, now);
		} else {
			/* The root does not answer. Where nodes may be hostile
			 * (trust configured), a root that announces itself and
			 * answers no JOIN is excluded from the next election:
			 * else it would hold every joiner until the fallback
			 * (docs/protocol.md 6.7). */
			relay_forget(e, h);
			if (e->cfg.trust && h->root_known) {
				integ_distrust(e, h, now, h->root_id, PFS_DISTRUST_SILENT_ROOT);
				h->root_known = false;
			}
			elect_start(e, h, now);
		}
	}
	if (h->state == H_MEMBER && now - h->parent_heard >= e->cfg.parent_timeout)
		tree_parent_lost(e, h, now, PFS_REASON_NONE);
	if (!serves_children(h))
		return;
	for (unsigned s = 0; s < h->nchildren_cap; s++) {
		struct child *c = &h->children[s];
		if (c->used && now - c->last_heard >= e->cfg.child_timeout) {
			remove_child(e, h, c, PFS_REASON_NONE);
			if (h->state == H_MEMBER)
				xfer_send_ack(e, h, now);
		}
	}
	if (h->nchildren && now >= h->t_heartbeat) {
		for (unsigned s = 0; s < h->nchildren_cap; s++)
			if (h->children[s].used)
				eng_send(e, h, PFS_MSG_HEARTBEAT, h->children[s].id,
					 &h->children[s].addr);
		h->t_heartbeat = now + e->cfg.heartbeat_interval;
	}
}

pfs_time_t tree_deadline(const struct pfs_engine *e, const struct hier *h)
{
	pfs_time_t t = PFS_TIME_NEVER;

	if (h->state == H_JOINING)
		t = h->t_join;
	if (h->state == H_MEMBER)
		t = tmin(t, h->parent_heard + e->cfg.parent_timeout);
	if (!serves_children(h))
		return t;
	for (unsigned s = 0; s < h->nchildren_cap; s++)
		if (h->children[s].used)
			t = tmin(t, h->children[s].last_heard + e->cfg.child_timeout);
	if (h->nchildren)
		t = tmin(t, h->t_heartbeat);
	return t;
}
