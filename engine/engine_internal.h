/* engine_internal.h - state shared by the engine's modules.
 *
 * One struct hier per (model, file) this node takes part in. Its role state
 * machine (docs/protocol.md 4-6):
 *
 *              want()
 *     IDLE ------------> CLAIMING --(claim_count ads, none stronger)--> ROOT
 *                         |  ^  |                                       |
 *       stronger CLAIM    |  |  | ROOT heard (stronger)   stronger ROOT |
 *                         v  |  v                          heard: yield |
 *                   DEFERRING +-> JOINING <------------------------------+
 *                  (timeout ^)    |  ^ REDIRECT: next target
 *                                 |  | parent silent / LEAVE / REFUSE
 *                          ACCEPT v  |
 *                                MEMBER
 *
 *     MEMBER --parent lost, file complete--> DETACHED: needs no parent any
 *     more, keeps serving its children (docs/protocol.md 5.4).
 *     SOLO: tftp-only mode or fallback; fetches upstream, no tree.
 *
 * The transfer state (struct pfs_file) is independent of the role: a node
 * keeps every chunk it holds across re-parenting and yields (resume).
 */
#ifndef PFS_ENGINE_INTERNAL_H
#define PFS_ENGINE_INTERNAL_H

#include "bitmap.h"
#include "pfs_engine.h"
#include "pfs_manifest.h"

enum hier_state {
	H_IDLE,
	H_CLAIMING,
	H_DEFERRING,
	H_JOINING,
	H_MEMBER,
	H_ROOT,
	H_SOLO,
	H_DETACHED,
};

struct hier;
/* States in which a node holds child slots and feeds them. */
#define serves_children(h) ((h)->state == H_ROOT || (h)->state == H_MEMBER || \
			    (h)->state == H_DETACHED)

struct child {
	bool used;
	bool acked;             /* first ACK seen: we know what it holds */
	bool complete;
	uint32_t id;
	struct pfs_addr addr;
	pfs_time_t last_heard;
	pfs_time_t last_sent;   /* last chunk handed to the driver for it */
	pfs_time_t stall_until; /* STALLs before this do not rewind (backoff) */
	pfs_time_t stall_backoff;
	uint32_t next;          /* next new chunk to send */
	uint32_t limit;         /* may send index < limit (its window) */
	uint32_t subtree;       /* nodes in its subtree, as it reported */
	uint32_t pending;       /* joiners redirected to it, not yet in its reports */
	pfs_time_t pending_at;  /* last of them */
	struct pfs_range repair[PFS_ACK_RANGES_MAX];
	uint8_t nrepair;
	uint32_t repair_cur;    /* next index inside repair[0] */
	bool repaired;          /* a repair pass was made (repair_pace.c) */
	bool repair_sent;       /* and it resent a chunk */
	pfs_time_t repair_at;   /* the last one */
	uint8_t repair_shift;   /* its holdoff doubled this many times */
	uint32_t repair_mark;   /* chunks it held at that pass */
	uint32_t repair_marker; /* first new chunk sent after it; UINT32_MAX: none yet */
	uint32_t sent_end;      /* every chunk below was sent to it once */
	uint32_t probe;         /* new chunk being timed to its ACK; UINT32_MAX: none */
	pfs_time_t probe_at;
	pfs_time_t srtt, rttvar;        /* chunk to its ACK, smoothed; 0: no sample */
};

struct pfs_file {
	bool manifest;          /* chunk_size known */
	bool final;             /* size and sha256 known */
	bool failed;
	uint8_t fail_cause;     /* enum pfs_fail_cause, once failed */
	uint16_t fail_err;      /* positive errno behind it */
	bool hashing;           /* HASH_FILE outstanding */
	bool complete;          /* verified */
	uint32_t chunk_size;
	uint64_t size;
	uint8_t sha256[32];
	uint32_t nchunks;       /* valid when final */
	uint32_t short_index;   /* a chunk shorter than chunk_size, or UINT32_MAX */
	uint32_t short_len;
	struct pfs_bitmap have;
	uint32_t progress_step; /* last PROGRESS decile reported */
};

/* The signed manifest of a hierarchy (docs/protocol.md 6.7): fetched from
 * the parent in pieces (or from upstream by a root), then verified. */
struct man_state {
	uint8_t *buf;           /* len bytes, as fetched */
	uint32_t len;
	struct pfs_bitmap pieces;       /* pieces held while fetching */
	bool verified;
	struct pfs_manifest m;  /* parsed view into buf, once verified */
	uint32_t from;          /* the node we fetch it from */
	uint8_t tries;          /* MREQs without a new piece */
	uint32_t req_end;       /* piece after the burst last asked for */
	pfs_time_t t_req;
	uint64_t floor;         /* lowest sequence accepted for this name */
	/* a root's upstream copy, checked a chunk at a time */
	uint8_t *up_chunk;
	uint32_t up_fill;
	uint32_t up_index;
};

#define EXCLUDE_MAX 4

/* Nodes this hierarchy will not take a manifest, chunk or root role from. */
struct exclusion {
	uint32_t id;
	pfs_time_t until;
};

struct hier {
	uint64_t key;
	void *user;                     /* the driver's (pfs_engine_hier_set_user) */
	char path[PFS_FILEPATH_MAX + 1];
	uint16_t plen;
	enum hier_state state;
	uint32_t strength;

	/* election (docs/protocol.md 4) */
	uint8_t ads_sent;
	pfs_time_t t_claim;
	uint32_t best_id, best_strength;
	pfs_time_t t_defer;
	pfs_time_t t_announce;
	pfs_time_t last_root_reply;

	/* the root as last announced */
	bool root_known;
	uint32_t root_id, root_strength;
	struct pfs_addr root_addr;

	/* joining (docs/protocol.md 5.1) */
	uint32_t target_id;
	struct pfs_addr target;
	uint8_t hops, tries;
	uint8_t walks;                  /* walks from the root that found no parent */
	pfs_time_t t_join;

	/* parent side of the link (we are a child) */
	uint32_t parent_id;
	struct pfs_addr parent;
	pfs_time_t parent_heard;
	uint8_t slot;
	uint8_t nanc;
	uint32_t anc[PFS_PATH_MAX];     /* ancestors: root .. parent */
	uint32_t since_ack;
	uint32_t parent_prefix;         /* parent's progress, for fallback */
	uint8_t roots_left;             /* roots left for failing or stalling (failure.c) */
	bool rx_since_tick;
	pfs_time_t last_rx;             /* last DATA from the parent */
	pfs_time_t rx_gap;              /* between DATA, smoothed (transfer.c stall_due) */
	pfs_time_t t_ack;
	pfs_time_t last_ack_sent;
	pfs_time_t last_progress;
	uint32_t progress_mark;         /* chunks held when last_progress was set */

	/* our children */
	struct child *children;
	uint16_t nchildren_cap;         /* config max_children */
	uint16_t nchildren;
	pfs_time_t t_heartbeat;
	uint16_t pump_child;            /* round-robin cursor */

	/* upstream */
	bool upstream_active;
	bool relay_failed;              /* the site relay did not take us in this one */
	uint8_t upstream_tries;
	uint32_t upstream_starts;
	pfs_time_t t_upstream_retry;

	struct pfs_file f;
	struct man_state man;
	struct exclusion excl[EXCLUDE_MAX];
	uint16_t bad_chunks;            /* from the current parent */
	uint8_t bad_files;              /* files from the current parent that failed their SHA-256 */
	uint8_t distrusts;              /* neighbours left for bad data (integ_distrust) */
};

/* Queued action; SEND messages are encoded at poll time from live state. */
struct qitem {
	struct pfs_action act;
	uint8_t msg;            /* message type for SEND */
	uint8_t reason;         /* REFUSE, LEAVE */
	uint8_t answers;        /* REFUSE: JOIN or ACK */
	uint8_t slot;           /* ACCEPT */
	uint8_t hops;           /* JOIN */
	uint32_t target_id;     /* REDIRECT */
	struct pfs_addr target;
};

struct auth_state;

/* The strongest site relay heard (relay.c). */
struct relay_seen {
	uint32_t id, strength;
	struct pfs_addr addr;
	pfs_time_t until;               /* its beacon's hold; 0: none */
};

struct pfs_engine {
	bool rx_digest_checked;         /* during pfs_engine_recv_held() only: the
					 * DATA chunk was checked against its signed
					 * digest by the driver (the dataplane) */
	struct pfs_engine_config cfg;
	struct auth_state *auth;        /* with cfg.site */
	struct hier *hiers;
	int nhiers;
	uint64_t rng;
	struct qitem *q;
	uint32_t qcap, qhead, qlen;
	bool pump_dirty;
	int pump_hier;
	struct relay_seen relay;
	pfs_time_t t_beacon;            /* next RELAY we send, as a relay */
	struct pfs_engine_stats st;
};

/* engine.c */
uint32_t eng_random(struct pfs_engine *e);
pfs_time_t eng_jitter(struct pfs_engine *e, pfs_time_t base);
struct qitem *eng_queue(struct pfs_engine *e, struct hier *h, enum pfs_action_type t);
void eng_send(struct pfs_engine *e, struct hier *h, uint8_t msg, uint32_t peer_id,
	      const struct pfs_addr *dst);
void eng_bcast(struct pfs_engine *e, struct hier *h, uint8_t msg);
void eng_event(struct pfs_engine *e, struct hier *h, enum pfs_event_code ev,
	       uint32_t peer_id, const struct pfs_addr *peer, uint32_t a, uint32_t b);
int eng_hidx(const struct pfs_engine *e, const struct hier *h);
const char *eng_state_name(enum hier_state s);

/* election.c */
void elect_start(struct pfs_engine *e, struct hier *h, pfs_time_t now);
void elect_on_claim(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		    const struct pfs_msg *m, const struct pfs_addr *src);
void elect_on_root(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		   const struct pfs_msg *m, const struct pfs_addr *src);
void elect_timers(struct pfs_engine *e, struct hier *h, pfs_time_t now);
pfs_time_t elect_deadline(const struct pfs_engine *e, const struct hier *h);
bool stronger(uint32_t s1, uint32_t id1, uint32_t s2, uint32_t id2);

/* tree.c */
void tree_join_root(struct pfs_engine *e, struct hier *h, pfs_time_t now);
void tree_on_join(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		  const struct pfs_msg *m, const struct pfs_addr *src);
void tree_on_accept(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		    const struct pfs_msg *m, const struct pfs_addr *src);
void tree_on_redirect(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		      const struct pfs_msg *m, const struct pfs_addr *src);
void tree_on_refuse(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		    const struct pfs_msg *m, const struct pfs_addr *src);
void tree_on_leave(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		   const struct pfs_msg *m, const struct pfs_addr *src);
void tree_on_heartbeat(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		       const struct pfs_msg *m, const struct pfs_addr *src);
void tree_parent_lost(struct pfs_engine *e, struct hier *h, pfs_time_t now, uint8_t reason);
void tree_drop_children(struct pfs_engine *e, struct hier *h, uint8_t reason);
/* Leave one hierarchy for good: abort the fetch, LEAVE(shutdown) to children
 * and parent, IDLE (shutdown, or a node that cannot store the file). */
void tree_leave(struct pfs_engine *e, struct hier *h);
/* LEAVE(reason) to our parent, if we are a member. */
void tree_leave_parent(struct pfs_engine *e, struct hier *h, uint8_t reason);
void tree_timers(struct pfs_engine *e, struct hier *h, pfs_time_t now);
pfs_time_t tree_deadline(const struct pfs_engine *e, const struct hier *h);
struct child *tree_child_by_id(struct hier *h, uint32_t id);
uint32_t tree_subtree(const struct hier *h);
void tree_fill_status(const struct pfs_engine *e, const struct hier *h, struct pfs_status *st);

/* transfer.c */
void xfer_apply_status(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		       const struct pfs_status *st);
void xfer_on_data(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		  const struct pfs_msg *m);
void xfer_on_ack(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		 struct child *c, const struct pfs_msg_ack *a);
void xfer_fill_ack(const struct pfs_engine *e, const struct hier *h, struct pfs_msg_ack *a);
void xfer_send_ack(struct pfs_engine *e, struct hier *h, pfs_time_t now);
void xfer_start_root(struct pfs_engine *e, struct hier *h, pfs_time_t now);
void xfer_upstream_start(struct pfs_engine *e, struct hier *h, pfs_time_t now);
void xfer_upstream_stop(struct pfs_engine *e, struct hier *h);
void xfer_fail(struct pfs_engine *e, struct hier *h, enum pfs_fail_cause cause, int err);
/* Leave the tree and fetch from the server ourselves, once. */
void xfer_fallback(struct pfs_engine *e, struct hier *h, pfs_time_t now);
void xfer_leave_tree(struct pfs_engine *e, struct hier *h, pfs_time_t now, bool server_said_no,
		     bool stalled);
void xfer_timers(struct pfs_engine *e, struct hier *h, pfs_time_t now);
pfs_time_t xfer_deadline(const struct pfs_engine *e, const struct hier *h);
int xfer_pump(struct pfs_engine *e, struct hier *h, pfs_time_t now, struct pfs_action *act);
void xfer_subtree_changed(struct pfs_engine *e, struct hier *h, pfs_time_t now);
void xfer_reset_child(struct child *c);
void xfer_check_complete(struct pfs_engine *e, struct hier *h, pfs_time_t now);

/* repair_pace.c */
void pace_reset(struct child *c);
void pace_on_send(struct child *c, uint32_t idx, bool repair, pfs_time_t now);
void pace_on_ack(struct child *c, const struct pfs_msg_ack *a, pfs_time_t now);
bool pace_repair_due(const struct pfs_engine *e, const struct child *c,
		     const struct pfs_msg_ack *a, pfs_time_t now);
void pace_repair_taken(const struct pfs_engine *e, struct child *c,
		       const struct pfs_msg_ack *a, pfs_time_t now);

/* relay.c */
bool relay_active(const struct pfs_engine *e);
bool relay_follow(struct pfs_engine *e, struct hier *h, pfs_time_t now);
void relay_forget(struct pfs_engine *e, struct hier *h);
void relay_on_beacon(struct pfs_engine *e, pfs_time_t now, const struct pfs_msg *m,
		     const struct pfs_addr *src);
void relay_fill_beacon(struct pfs_engine *e, struct pfs_msg_relay *r);
void relay_timers(struct pfs_engine *e, pfs_time_t now);
pfs_time_t relay_deadline(const struct pfs_engine *e);

/* auth.c */
int auth_init(struct pfs_engine *e);
void auth_free(struct pfs_engine *e);
int auth_sign(struct pfs_engine *e, uint8_t *buf, size_t len);
int auth_check(struct pfs_engine *e, const struct pfs_msg *m, const uint8_t *buf, size_t len);

/* integrity.c */
bool integ_required(const struct pfs_engine *e);
bool integ_accepts_data(const struct pfs_engine *e, const struct hier *h);
bool integ_excluded(const struct hier *h, uint32_t id, pfs_time_t now);
void integ_exclude(struct pfs_engine *e, struct hier *h, uint32_t id, pfs_time_t now);
bool integ_source_ok(struct pfs_engine *e, struct hier *h, const struct pfs_msg *m,
		     const struct pfs_addr *src);
void integ_distrust(struct pfs_engine *e, struct hier *h, pfs_time_t now, uint32_t id,
		    enum pfs_distrust_reason why);
bool integ_on_status(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		     const struct pfs_status *st);
bool integ_chunk_ok(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		    const struct pfs_msg_data *d);
void integ_on_mreq(struct pfs_engine *e, struct hier *h, struct child *c,
		   const struct pfs_msg_mreq *r);
void integ_on_piece(struct pfs_engine *e, struct hier *h, pfs_time_t now,
		    const struct pfs_msg_mpiece *p);
void integ_timers(struct pfs_engine *e, struct hier *h, pfs_time_t now);
pfs_time_t integ_deadline(const struct pfs_engine *e, const struct hier *h);
int integ_encode_piece(const struct hier *h, uint32_t offset, struct pfs_msg *m);
void integ_free(struct hier *h);

static inline pfs_time_t tmin(pfs_time_t a, pfs_time_t b) { return a < b ? a : b; }

#endif /* PFS_ENGINE_INTERNAL_H */
