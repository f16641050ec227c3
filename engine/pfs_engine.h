/* pfs_engine.h - the I/O-free PFS protocol engine (docs/protocol.md 4-7).
 *
 * The engine never touches a socket, a file or a clock. A driver (pfs-peer,
 * pfs-control, the simulator, the tests) feeds it events with the current
 * time, then drains actions with pfs_engine_poll() until it returns 0, and
 * sleeps until pfs_engine_next_deadline() or the next datagram:
 *
 *     pfs_engine_recv(e, now, &src, buf, len);      // or _timeout, _upstream_*
 *     while (pfs_engine_poll(e, now, &act, scratch, sizeof scratch) > 0)
 *             do_action(&act);
 *
 * Actions that point into the last received datagram (WRITE_CHUNK) stay valid
 * until the next call into the engine other than pfs_engine_poll(), so drain
 * before reusing the receive buffer. Chunk payloads never pass through the
 * engine on the send side: SEND_CHUNK names a chunk the driver reads from its
 * own storage, which is what lets a device stream files of any size.
 *
 * Errors: negative errno from functions returning int, NULL + errno from
 * constructors. The codec's own reasons (enum pfs_err in pfs_codec.h) stay
 * in the codec and in the per-reason counters; the engine returns -EBADMSG.
 */
#ifndef PFS_ENGINE_H
#define PFS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pfs_codec.h"
#include "pfs_manifest.h"

typedef uint64_t pfs_time_t;            /* nanoseconds, monotonic */
#define PFS_TIME_NEVER  UINT64_MAX
#define PFS_MSEC(x)     ((pfs_time_t)(x) * 1000000ull)
#define PFS_SEC(x)      ((pfs_time_t)(x) * 1000000000ull)

struct pfs_addr {
	uint32_t ip;                    /* host order */
	uint16_t port;
};

/* A site relay (the appliance; docs/protocol.md 4.4). */
enum pfs_relay_mode {
	PFS_RELAY_OFF,          /* a device: elects, and joins a relay it hears */
	PFS_RELAY_ON,           /* takes the root of a hierarchy at once, beacons RELAY */
	PFS_RELAY_QUIET,        /* the same, another engine of this node beacons */
};

enum pfs_mode {
	PFS_MODE_CUT_THROUGH,   /* forward each chunk as it is checked */
	PFS_MODE_STORE_FORWARD, /* the seed's way: forward a verified file */
	PFS_MODE_TFTP_ONLY,     /* traditional: fetch from the server, no peers */
};

struct pfs_engine_config {
	uint32_t node_id;               /* unique on the subnet, never 0 */
	struct pfs_addr self;           /* how peers reach this node */
	char model[PFS_MODEL_MAX + 1];
	uint8_t priority_class;         /* 0..15, PFS_CLASS_DEVICE by default */
	uint32_t random;                /* seed for strength and jitter */
	uint16_t max_children;          /* child slots, 2 like the seed */
	enum pfs_mode mode;
	/* A relay with an empty model beacons for every model and wants no
	 * file itself (pfs-control's beacon engine). */
	enum pfs_relay_mode relay;
	uint32_t chunk_size;            /* used when this node is root */
	uint32_t max_chunks;            /* bound on a file's chunk count */

	/* timers (docs/protocol.md 7) */
	pfs_time_t listen_window;       /* silent 0..this before the first claim; 0: seed */
	pfs_time_t claim_interval;      /* 250 ms between tentative claims */
	uint8_t claim_count;            /* 4 claims, then confirm */
	pfs_time_t defer_timeout;       /* wait for a stronger claimer */
	pfs_time_t announce_interval;   /* confirmed root re-announces */
	pfs_time_t join_timeout;
	uint8_t join_retries;
	pfs_time_t heartbeat_interval;  /* parent -> child */
	pfs_time_t parent_timeout;      /* child declares its parent gone */
	pfs_time_t child_timeout;       /* parent frees a silent child's slot */
	pfs_time_t ack_interval;        /* child ack/NACK period while receiving */
	pfs_time_t keepalive_interval;  /* complete child -> parent */
	pfs_time_t repair_holdoff;      /* min gap between repairs of one child */
	pfs_time_t upstream_retry_delay;
	uint8_t upstream_retries;
	pfs_time_t fallback_timeout;    /* no progress this long: fetch directly */
	uint32_t min_parent_rate;       /* bytes/s a member must receive, averaged over
					 * fallback_timeout, to count as progress;
					 * 0: any chunk counts (docs/protocol.md 6.5) */
	uint16_t ack_every;             /* chunks between acks */
	uint16_t window;                /* chunks in flight per child */

	/* integrity (docs/protocol.md 6.7, docs/security.md). NULL: v1
	 * behaviour, no manifests. Else the keys signed manifests are checked
	 * against; with allow_unsigned clear, no unsigned file is accepted. */
	const struct pfs_trust *trust;
	const struct pfs_site_auth *site;       /* NULL: no site key */
	uint16_t bad_chunk_limit;       /* bad chunks before a parent is left */
	pfs_time_t exclude_time;        /* how long a distrusted node stays excluded */
};

/* A site key (docs/protocol.md 3.4): every message but DATA carries an
 * HMAC-SHA-256/128 tag, a key id and a per-sender sequence number. Two keys
 * may be live during a rotation: keys[0] signs, both verify. tx_seq is the
 * sequence source shared by every engine of one process; the driver starts
 * it at (persisted boot count << 32), so a restarted node is accepted. */
struct pfs_site_auth {
	uint8_t nkeys;                  /* 1 or 2 */
	uint8_t key_id[2];              /* 1..255 */
	uint8_t key[2][32];
	uint64_t *tx_seq;
};

/* Why an unauthenticated message was dropped (stats auth_drops). */
enum pfs_auth_drop {
	PFS_AUTH_NO_TAG,                /* no tag, or not a tag of ours */
	PFS_AUTH_UNKNOWN_KEY,           /* a key id we do not hold */
	PFS_AUTH_BAD_TAG,               /* the MAC does not verify */
	PFS_AUTH_REPLAYED,              /* sequence already seen or too old */
	PFS_AUTH_DROP_COUNT,
};

/* Why a node stopped trusting a neighbour for a hierarchy (EVENT DISTRUST). */
enum pfs_distrust_reason {
	PFS_DISTRUST_BAD_CHUNKS = 1,    /* bad_chunk_limit chunks failed their digests */
	PFS_DISTRUST_BAD_MANIFEST,      /* its manifest failed verification */
	PFS_DISTRUST_UNSIGNED,          /* offers an unsigned file where signed is required */
	PFS_DISTRUST_NO_MANIFEST,       /* did not deliver its manifest */
	PFS_DISTRUST_SILENT_ROOT,       /* a confirmed root that answered no JOIN */
	PFS_DISTRUST_BAD_FILE,          /* its file failed the whole-file SHA-256 twice */
};

/* Why a file failed (EVENT FAILED b, FILE_FAILED b; docs/protocol.md 6.5).
 * Only SERVER and NOT_FOUND are told to the children: a root's FAILED mark
 * means "the server could not give it", never "this node could not". */
enum pfs_fail_cause {
	PFS_FAIL_NONE = 0,
	PFS_FAIL_SERVER,        /* unreachable, stalled, bad bytes: after the retries */
	PFS_FAIL_NOT_FOUND,     /* the server has no such file (or denies it): no retry */
	PFS_FAIL_LOCAL,         /* this node cannot store it: the hierarchy is handed over */
	PFS_FAIL_INVALID,       /* larger than this node accepts */
};

enum pfs_action_type {
	PFS_ACT_NONE = 0,
	PFS_ACT_SEND,           /* send msg[len] to dst (or broadcast) */
	PFS_ACT_SEND_CHUNK,     /* read chunk index of hier, send DATA to dst */
	PFS_ACT_WRITE_CHUNK,    /* store data[len] at offset of hier's file */
	PFS_ACT_UPSTREAM_START, /* fetch path from the server into hier's file */
	PFS_ACT_UPSTREAM_ABORT,
	PFS_ACT_HASH_FILE,      /* SHA-256 the stored file: pfs_engine_file_hashed,
				 * now or from a later turn of the loop (the
				 * drivers answer a slice at a time:
				 * common/prefix_hash.h) */
	PFS_ACT_FILE_DONE,      /* verified: publish the file */
	PFS_ACT_FILE_FAILED,    /* the file cannot be had: a = errno (0: the roots
				 * the site elected in turn all said FAILED),
				 * b = pfs_fail_cause */
	PFS_ACT_EVENT,          /* something an operator wants to see */
	PFS_ACT_MANIFEST_OK,    /* a manifest verified (data, len): keep `sequence` as path's floor */
};

enum pfs_event_code {
	PFS_EV_CLAIM_SENT,      /* a = ad number, b = strength */
	PFS_EV_DEFER,           /* peer = stronger claimer */
	PFS_EV_ROOT_CONFIRMED,  /* b = bumped strength */
	PFS_EV_JOINED,          /* peer = parent, a = depth, b = slot */
	PFS_EV_REDIRECTED,      /* peer = next target */
	PFS_EV_CHILD_ADDED,     /* peer = child, a = slot */
	PFS_EV_CHILD_REMOVED,   /* peer = child, a = slot, b = reason */
	PFS_EV_PARENT_LOST,     /* peer = parent, b = reason */
	PFS_EV_YIELD,           /* peer = stronger root */
	PFS_EV_MANIFEST,        /* size = final size */
	PFS_EV_PROGRESS,        /* a = chunks held, b = chunks in file (0: unknown) */
	PFS_EV_COMPLETE,
	PFS_EV_FAILED,          /* a = errno, b = enum pfs_fail_cause */
	PFS_EV_VERIFY_FAILED,
	PFS_EV_FALLBACK,
	PFS_EV_UPSTREAM_RETRY,  /* a = attempt */
	PFS_EV_MANIFEST_REJECTED, /* peer = sender (0: upstream), a = -pfs_man_err */
	PFS_EV_DISTRUST,        /* peer = node left and excluded, a = enum pfs_distrust_reason */
	PFS_EV_CHUNK_REJECTED,  /* peer = sender, a = chunk index: digest mismatch */
	PFS_EV_REELECT,         /* peer = root left (FAILED or stalled), a = roots left so far */
	PFS_EV_RELAY,           /* peer = the site relay joined without an election */
	PFS_EV_COUNT,
};

struct pfs_action {
	enum pfs_action_type type;
	int hidx;                       /* engine's index of the hierarchy */
	void *user;                     /* its pfs_engine_hier_set_user pointer */
	uint64_t hier;
	const char *model, *path;       /* of the hierarchy */
	struct pfs_addr dst;
	bool bcast;
	const uint8_t *msg;             /* SEND */
	size_t len;                     /* SEND, SEND_CHUNK, WRITE_CHUNK */
	uint32_t index;                 /* SEND_CHUNK, WRITE_CHUNK */
	uint64_t offset;                /* SEND_CHUNK, WRITE_CHUNK */
	uint32_t chunk_size;
	const uint8_t *data;            /* WRITE_CHUNK */
	uint64_t size;                  /* FILE_DONE, EVENT MANIFEST */
	const uint8_t *sha256;          /* FILE_DONE, HASH_FILE (expected) */
	uint64_t sequence;              /* MANIFEST_OK */
	bool want_manifest;             /* UPSTREAM_START: fetch path.pfsm first */
	enum pfs_event_code event;      /* EVENT */
	uint32_t peer_id;               /* EVENT */
	struct pfs_addr peer;
	uint32_t a, b;
};

struct pfs_engine_stats {
	uint64_t rx_msgs[PFS_MSG_TYPE_MAX + 1];
	uint64_t tx_msgs[PFS_MSG_TYPE_MAX + 1];
	uint64_t rx_bad[PFS_E_ERR_COUNT];     /* by codec error */
	uint64_t rx_foreign;    /* another model's hierarchy */
	uint64_t rx_unknown;    /* a hierarchy this node does not take part in */
	uint64_t rx_stray;      /* from a node that is not our parent/child */
	uint64_t chunks_rx, chunks_dup, chunks_bad, chunks_tx, chunks_retx;
	uint64_t queue_drops;
	uint64_t verify_failures;
	/* integrity */
	uint64_t chunks_forged;         /* failed their signed digest */
	uint64_t chunks_prechecked;     /* signed chunks the driver had checked (recv_held) */
	uint64_t chunks_unverified;     /* arrived before a verified manifest */
	uint64_t manifests_ok, manifests_rejected[PFS_MAN_E_COUNT];
	uint64_t distrusted;            /* neighbours left for bad data */
	uint64_t rx_excluded;           /* from a node we excluded */
	uint64_t rx_wrong_source;       /* a neighbour's id from another address */
	uint64_t upstream_bad_chunks;   /* the server's bytes failed their digest */
	uint64_t auth_drops[PFS_AUTH_DROP_COUNT];
	uint64_t auth_ok;
	uint64_t relay_heard;           /* RELAY beacons taken (ours, stronger) */
};

/* Read-only view of one hierarchy, for logs, pfsctl and tests. */
struct pfs_hier_info {
	uint64_t key;
	const char *path;
	const char *state;
	bool is_root, complete, failed;
	uint8_t fail_cause;             /* enum pfs_fail_cause, when failed */
	uint16_t fail_err;              /* the positive errno behind it (0: the roots' word) */
	uint32_t root_id, parent_id;
	struct pfs_addr parent;
	uint8_t depth;                  /* 1 = root */
	uint16_t max_children, nchildren;
	uint32_t children[256];         /* by slot; 0 = free */
	uint32_t subtree;
	uint32_t chunks_have, chunks_total;     /* total 0 until final */
	uint32_t chunk_size;            /* 0 until the manifest is known */
	uint64_t size;
	bool upstream_active;
	uint32_t upstream_starts;
	bool signed_ok;                 /* a verified signed manifest defines it */
	uint64_t sequence;              /* its sequence */
};

/* One child slot of a hierarchy we serve, for a driver that relays chunks
 * itself (the appliance's dataplane): `ready` once its first ACK told us what
 * it holds, until it is complete. */
struct pfs_child_info {
	uint32_t id;                    /* 0: slot free */
	struct pfs_addr addr;
	bool ready;
};

void pfs_engine_config_defaults(struct pfs_engine_config *c);
struct pfs_engine *pfs_engine_new(const struct pfs_engine_config *c);
void pfs_engine_free(struct pfs_engine *e);

/* Start taking part in the hierarchy (our model, path). Returns its index. */
int pfs_engine_want(struct pfs_engine *e, pfs_time_t now, const char *path);

/* A datagram arrived. Returns 0, or -EBADMSG when it did not decode (the
 * codec's reason, enum pfs_err, is counted in stats.rx_bad: the codec's
 * codes are their own enum and never returned as errno values). */
int pfs_engine_recv(struct pfs_engine *e, pfs_time_t now, const struct pfs_addr *src,
		    const uint8_t *buf, size_t len);
/* pfs_engine_recv() in two steps, for a driver that must know a message is
 * authentic before it acts on it (pfs-control joins a hierarchy on a CLAIM):
 * accept decodes, drops our own and authenticates (recording the sequence:
 * accept a datagram once); 0 when m should be given to recv_msg, 1 when it
 * was dropped (ours, or not authentic), -EBADMSG when it did not decode
 * (counted by reason in stats.rx_bad). m points into buf. */
int pfs_engine_accept(struct pfs_engine *e, const uint8_t *buf, size_t len, struct pfs_msg *m);
/* pfs_engine_accept() for a message the driver decoded itself (pfs-control
 * decodes each datagram once and hands it to every engine): drops our own
 * and authenticates against buf, the datagram m was decoded from. 0 or 1
 * as accept. */
int pfs_engine_accept_msg(struct pfs_engine *e, const uint8_t *buf, size_t len,
			  const struct pfs_msg *m);
void pfs_engine_recv_msg(struct pfs_engine *e, pfs_time_t now, const struct pfs_addr *src,
			 const struct pfs_msg *m);
/* A DATA chunk the driver's store already holds (pfs-control: one the
 * dataplane stored and relayed), its payload pointing at it. digest_checked:
 * the driver checked it against the hierarchy's signed digest before it
 * stored it, so the engine does not hash it again (counted in
 * stats.chunks_prechecked); only then, and only once the engine has a
 * verified manifest, is the check skipped. */
void pfs_engine_recv_held(struct pfs_engine *e, pfs_time_t now, const struct pfs_addr *src,
			  const struct pfs_msg *m, bool digest_checked);
void pfs_engine_timeout(struct pfs_engine *e, pfs_time_t now);
pfs_time_t pfs_engine_next_deadline(const struct pfs_engine *e);

/* Drivers take the actions through pfs_drive() (pfs_driver.h), which polls
 * and hands each to the driver's op. While draining, an op may call the
 * engine's entry points (store_failed, upstream_failed, file_hashed...);
 * what they queue comes out of the same drain. It must not drain again. */
/* Next action: 1 and *act filled, or 0 when there is nothing to do now.
 * Messages are encoded into buf, which must hold PFS_DGRAM_MAX bytes. */
int pfs_engine_poll(struct pfs_engine *e, pfs_time_t now, struct pfs_action *act,
		    uint8_t *buf, size_t cap);

/* Upstream (TFTP) progress of a hierarchy this node is root of. */
void pfs_engine_upstream_data(struct pfs_engine *e, pfs_time_t now, int hidx, uint64_t bytes);
/* The manifest fetched for an UPSTREAM_START with want_manifest (NULL, 0:
 * the server has none). 0: go on and fetch the file; negative
 * enum pfs_man_err: do not (the engine counts it as an upstream failure). */
int pfs_engine_upstream_manifest(struct pfs_engine *e, pfs_time_t now, int hidx,
				 const uint8_t *buf, size_t len);
/* Bytes of the file as they arrive from upstream (sequential), once the
 * driver stored them with pfs_upstream_store() (never over a chunk this
 * node holds). With a signed manifest each chunk is checked before anyone
 * is sent it; returns -EBADMSG when the server's bytes fail their digest
 * (fail the fetch). */
int pfs_engine_upstream_write(struct pfs_engine *e, pfs_time_t now, int hidx,
			      uint64_t off, const uint8_t *data, size_t len);
/* The driver already holds this file whole and checked (the appliance's
 * cache): the hierarchy takes it as complete instead of receiving it, as a
 * root or as a member. man: its signed manifest (required where files must
 * be signed; checked like any other); without one, size, sha256 and
 * chunk_size describe it. Only before any chunk of it is held. 0, or
 * -EALREADY, -EINVAL (disagrees with the manifest), or a pfs_man_err. */
int pfs_engine_have_file(struct pfs_engine *e, pfs_time_t now, int hidx, uint32_t chunk_size,
			 uint64_t size, const uint8_t sha256[32], const uint8_t *man,
			 size_t man_len);
/* Lowest manifest sequence to accept for a hierarchy (rollback state). */
void pfs_engine_seq_floor(struct pfs_engine *e, int hidx, uint64_t sequence);
void pfs_engine_upstream_done(struct pfs_engine *e, pfs_time_t now, int hidx,
			      uint64_t size, const uint8_t sha256[32]);
/* The fetch failed; err as pfs_fetch's (-ENOENT and -EACCES are the
 * server's last word, -EKEYREJECTED an untrusted certificate: no retry;
 * others are retried with back-off). */
void pfs_engine_upstream_failed(struct pfs_engine *e, pfs_time_t now, int hidx, int err);
/* This node cannot store the file (err: -ENOSPC, -EIO, ...): it gives the
 * hierarchy up without failing it for anyone else. A root stops its fetch
 * and lets its children elect another root; a member leaves its parent and
 * its children re-join elsewhere. The file fails here with PFS_FAIL_LOCAL. */
void pfs_engine_store_failed(struct pfs_engine *e, pfs_time_t now, int hidx, int err);
/* Fetch a solo hierarchy (PFS_MODE_TFTP_ONLY) again: it failed, or the
 * driver lost the copy it completed. Its verified manifest is kept (a
 * rollback stays refused). 0, -EBUSY while a fetch is under way or retries
 * are pending, -EINVAL for another kind of hierarchy. */
int pfs_engine_solo_restart(struct pfs_engine *e, pfs_time_t now, int hidx);
/* Result of a HASH_FILE action; ignored when the file failed (or was
 * started again) since it was asked for. */
void pfs_engine_file_hashed(struct pfs_engine *e, pfs_time_t now, int hidx,
			    const uint8_t sha256[32]);
/* Will this file's completion wait for a HASH_FILE? Not once a verified
 * signed manifest defines it: each chunk is checked against its signed
 * digest as it arrives, and the whole file is verified when the last one is
 * (docs/protocol.md 6.6). A driver that hashes as it writes, to answer
 * HASH_FILE sooner, skips that work while this is false; if a HASH_FILE
 * comes after all it reads back what it did not hash. */
bool pfs_engine_needs_file_hash(const struct pfs_engine *e, int hidx);
/* Priority class for hierarchies joined from now on (the strength of a
 * running election or a confirmed root does not change under it). */
void pfs_engine_set_priority(struct pfs_engine *e, uint8_t priority_class);
/* Leave every hierarchy (LEAVE to parent and children). */
void pfs_engine_shutdown(struct pfs_engine *e, pfs_time_t now);

bool pfs_engine_done(const struct pfs_engine *e);        /* all complete or failed */
bool pfs_engine_all_ok(const struct pfs_engine *e);      /* all complete */
bool pfs_engine_children_served(const struct pfs_engine *e);
/* How far our children have got, summed over every child of every
 * hierarchy (the edge of each one's window, which moves with what it
 * holds): it changes while they are being served. */
uint64_t pfs_engine_children_progress(const struct pfs_engine *e);
int pfs_engine_hier_count(const struct pfs_engine *e);
/* A driver's own state for a hierarchy, handed back in each of its actions
 * (act->user), in place of tables indexed by hidx beside the engine's
 * (pfs-control's struct ctl_hier). The engine never looks at it. 0, or
 * -ENOENT for no such hierarchy. */
int pfs_engine_hier_set_user(struct pfs_engine *e, int hidx, void *user);
void *pfs_engine_hier_user(const struct pfs_engine *e, int hidx);
/* The index of the hierarchy of path, or -ENOENT. */
int pfs_engine_find(const struct pfs_engine *e, const char *path);
/* Bytes [0, n) of hidx's file that this node holds and has checked: chunk
 * by chunk against a signed manifest, or, unsigned, only the whole file once
 * verified. What a driver may hand on while the rest still arrives (the
 * appliance's load server). */
uint64_t pfs_engine_checked_bytes(const struct pfs_engine *e, int hidx);
/* Of bytes [off, off + len) of hidx's file, how many from off lie in chunks
 * that are all held and checked against a signed manifest, or all not
 * (*held says which): at least 1 when len is not 0. Of an unsigned file,
 * none. What pfs_upstream_store() (pfs_driver.h) stores by. */
size_t pfs_engine_held_run(const struct pfs_engine *e, int hidx, uint64_t off, size_t len,
			   bool *held);
int pfs_engine_hier_info(const struct pfs_engine *e, int hidx, struct pfs_hier_info *out);
int pfs_engine_child_info(const struct pfs_engine *e, int hidx, unsigned slot,
			  struct pfs_child_info *out);
const struct pfs_engine_stats *pfs_engine_stats(const struct pfs_engine *e);
const struct pfs_engine_config *pfs_engine_config(const struct pfs_engine *e);

const char *pfs_event_name(enum pfs_event_code ev);
const char *pfs_auth_drop_name(enum pfs_auth_drop why);

#endif /* PFS_ENGINE_H */
