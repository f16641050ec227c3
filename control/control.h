/* control.h - pfs-control: the appliance's control process.
 *
 * It runs the PFS engine (one per device model, all with the appliance's
 * priority class, so it wins every election it joins) and reaches the site
 * only through pfs-dataplane, over the shared segment's rings. As root it
 * fetches from the upstream TFTP server into the chunk cache and has the
 * dataplane send chunks from there. Each file owns one resource:
 * config.c (the configuration file), dplink.c (the rings and the dataplane's
 * liveness), engines.c (engines and their actions), upstream.c (manifests
 * and files fetched into the cache), fanout.c (the dataplane's local
 * relay), ctlsock.c (the operator
 * socket and its commands), main.c (init chain and event loop).
 */
#ifndef PFS_CONTROL_H
#define PFS_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include <stdarg.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <microhttpd.h>

#include "pfs_cache.h"
#include "pfs_engine.h"
#include "pfs_fetch.h"
#include "pfs_txq.h"
#include "pfs_keys.h"
#include "pfs_shm.h"
#include "pfs_log.h"
#include "prefix_hash.h"

#define CTL_MAX_MODELS   16
#define CTL_MAX_CLIENTS  64     /* control.max_clients: at most this */
#define CTL_REQ_MAX      4096
#define CTL_SERVE_GLOBS  16

struct ctl_config {
	char path[4096];                /* of the file itself, for messages */
	/* [site] */
	char site_address[16], site_broadcast[16];
	uint32_t ip, bcast;             /* host order */
	/* [upstream] */
	char server[256];               /* tftp: HOST[:PORT]; else the URL */
	char ca_file[256];              /* HTTPS: CA certificates, "" the system's */
	struct pfs_fetch_limits limits; /* connect/stall timeouts, low speed, min rate */
	int upstream_retries;
	/* [appliance] */
	uint32_t node_id;               /* 0: derived from the address */
	int priority;                   /* 0..15 */
	int max_children;
	uint32_t chunk_size;
	enum pfs_mode mode;
	bool local_fanout;              /* the dataplane relays member hierarchies */
	bool relay;                     /* site relay: beacon, root at once (protocol.md 4.4) */
	char models[CTL_MAX_MODELS][PFS_MODEL_MAX + 1];
	int nmodels;                    /* 0: serve any model */
	bool enabled;
	/* [segment] */
	char segment[4096];
	uint32_t ring_slots;
	uint64_t cache_bytes;
	int64_t rx_frames;              /* frames in the cache; -1: an eighth of it */
	/* [control] */
	char socket[4096];
	int socket_mode;
	char ro_socket[4096];           /* read-only commands only; "" none */
	int ro_socket_mode;
	double heartbeat_timeout_s;
	int max_clients;                /* operator connections at once */
	double client_idle_s;           /* a connection silent this long is closed */
	/* [serve] (issue 12): the load server for TFTP-only devices */
	bool serve_tftp;
	uint32_t serve_http_ip;         /* host order; with a port, HTTP is served */
	uint16_t serve_http_port;
	/* [metrics] (issue 13): Prometheus text on ADDRESS:PORT */
	uint32_t metrics_ip;
	uint16_t metrics_port;
	char serve_globs[CTL_SERVE_GLOBS][PFS_FILEPATH_MAX + 1];
	int serve_nglobs;               /* 0: every cached file */
	int serve_max_clients;          /* transfers (TFTP) and requests (HTTP) at once */
	int serve_max_per_client;       /* of them from one address */
	int64_t serve_wait_ns;          /* longest wait for a file's next byte */
	/* [trust] (docs/security.md): keys loaded at parse time */
	struct pfs_trust trust;
	struct pfs_site_auth site;      /* nkeys 0: no site key */
	char state_dir[4096];           /* rollback floors and the boot count */
};

#define CTL_MAX_HIERS 64                /* per model */

/* Local fan-out of one hierarchy we are a member of (fanout.c). */
struct ctl_fanout {
	bool active;                    /* the dataplane holds our table */
	uint32_t generation;
	int fi;
	uint64_t hier;
	struct pfs_rmsg_fanout tab;     /* as last sent */
	uint16_t *sent;                 /* per chunk: slots the dataplane sent it to */
	uint32_t nsent;
};

/* The model name of the load server's own engine (serve_src.c): valid, so
 * the engine takes it, but never routed a datagram (ctl_engine_for). */
#define CTL_SERVE_MODEL "load-server"

/* What pfs-control keeps of one hierarchy of an engine: made with it
 * (ctl_engine_want) as the engine's user pointer, so every action of it
 * carries it (act->user) and ctl_hier() finds it by index. */
struct ctl_hier {
	int cache_fi;                   /* cache file, -1 none */
	int fetch_id;                   /* upstream fetch in progress, -1 none */
	bool from_cache;                /* served without the WAN */
	struct ctl_fanout *fan;         /* NULL until relayed locally */
	/* hashing.c: the whole-file digest, as its entry fills */
	struct pfs_prefix_hash hash;
	int hash_fi;                    /* the entry hash is of */
	bool hash_pending;              /* the engine asked (HASH_FILE) */
	uint64_t hash_size;
};

struct ctl_engine {
	char model[PFS_MODEL_MAX + 1];
	bool solo;                      /* the load server's: fetches alone */
	struct pfs_engine *e;
};

/* Hierarchy hidx of ce as pfs-control made it; NULL for none. */
static inline struct ctl_hier *ctl_hier(const struct ctl_engine *ce, int hidx)
{
	return pfs_engine_hier_user(ce->e, hidx);
}

struct ctl_fetch_slot {
	bool used;
	int eng, hidx;
	bool manifest;                  /* fetching PATH.pfsm into man */
	struct pfs_membuf man;
	int store_err;                  /* the cache refused a write: ours, not the server's */
	bool parked;                    /* failed part-way over HTTP: kept to resume */
	int follows;                    /* 1 + the slot whose fetch this hierarchy
					 * follows (upstream.c); 0: its own fetch */
};

struct ctl_client {
	int fd;
	bool subscribed;                /* `pfsctl events`: events are pushed to it */
	bool read_only;                 /* came in on control.ro_socket */
	int64_t last_active;            /* ctl_now() of its last request or connect */
	size_t len;
	char buf[CTL_REQ_MAX];
};

struct ctl_stats {
	uint64_t rx_datagrams, rx_undecodable, rx_model_refused, auto_joins;
	uint64_t rx_bad[PFS_E_ERR_COUNT];       /* undecodable, by the codec's reason
						 * (decoded here once, not by the engines) */
	uint64_t tx_datagrams, chunk_ranges, chunks_queued;
	uint64_t tx_ring_full;          /* dropped: the ring full and no room to wait */
	uint64_t ranges_deferred;       /* ranges kept back for a full ring (runs.c) */
	uint64_t chunk_sends;           /* the engines' chunk sends from the cache: in
					 * ranges (chunks_queued) unless dropped */
	uint64_t wan_bytes, cache_hits, cache_misses, cache_write_errors;
	uint64_t dataplane_restarts, ctl_requests, ctl_errors;
	uint64_t events_sent, subscribers_dropped;
	uint64_t loops, bell_wakes;     /* main loop turns; doorbell wake-ups */
	uint64_t fanout_tables, fanout_chunks, fanout_skipped, fanout_stale;
	uint64_t manifests_fetched, manifests_cached, cache_rejected;
	uint64_t fetches_ok, fetches_failed;
	uint64_t events[PFS_EV_COUNT];  /* the engines' events, by code */
};

/* A libmicrohttpd daemon run from our epoll loop (mhd_loop.c). */
struct ctl_mhd {
	struct MHD_Daemon *d;
	int efd;                        /* its epoll fd, nested in ours */
};

/* The load server's counters (serve.c), in `pfsctl stats`. */
struct ctl_serve_stats {
	uint64_t tftp_requests, tftp_done, tftp_failed, tftp_bytes;
	uint64_t tftp_bad_requests, tftp_refused, tftp_not_found, tftp_busy;
	uint64_t tftp_bad_replies, tftp_send_errors, tftp_duplicates, tftp_unavailable;
	uint64_t http_requests, http_bytes, http_refused, http_not_found, http_not_modified;
	uint64_t http_ranges, http_bad_ranges, http_errors, http_unavailable, http_busy;
	uint64_t waited;                /* requests that waited for the file to arrive */
};

struct ctl_serve;
struct ctl_http;

struct ctl {
	struct ctl_config cfg;
	struct ctl_serve *serve;        /* NULL: not serving TFTP */
	struct ctl_http *http;          /* NULL: not serving HTTP */
	struct ctl_serve_stats serve_st;
	struct ctl_mhd metrics;         /* GET /metrics (d NULL: off) */
	struct pfs_shm *shm;
	struct pfs_txq txq;             /* what the ring had no room for (dplink.c) */
	struct pfs_cache *cache;
	struct pfs_fetch *fetch;
	struct ctl_engine eng[CTL_MAX_MODELS];
	int neng;
	struct ctl_engine beacon;       /* RELAY for every model (e NULL: none) */
	int epfd, sigfd, lsock, lsock_ro;
	int bell_fd;                    /* the dataplane's doorbell (dplink.c), -1 none */
	struct ctl_fetch_slot fetch_slot[PFS_FETCH_MAX];
	struct ctl_client clients[CTL_MAX_CLIENTS];
	struct ctl_stats st;
	int64_t t0, last_beat;
	bool stop, dp_alive;
	struct pfs_seqstate *seqstate;
	uint64_t tx_seq;                /* site key: boot count << 32 | messages */
	uint8_t txbuf[PFS_DGRAM_MAX];
	uint64_t fill_gen;              /* bumped by every engine drain: cache
					 * entries may have grown (serve_src.c) */
	uint64_t seen_gen;              /* fill_gen the main loop last acted on */
	bool fanout_behind;             /* a fan-out table waits for ring room */
};

int64_t ctl_now(void);

/* config.c: 0, or -1 after printing "FILE:LINE: key: problem" to stderr. */
int ctl_config_load(struct ctl_config *c, const char *path);

/* dplink.c */
int ctl_dplink_open(struct ctl *c);
void ctl_dplink_close(struct ctl *c);
/* Beat, notice a dataplane (re)start, move received datagrams to engines. */
void ctl_dplink_poll(struct ctl *c);
/* An epoll event on the doorbell (true: it was ours). */
bool ctl_dplink_event(struct ctl *c, int fd);
/* Everything for the dataplane goes through here, in order: 0 on the
 * ring, 1 waiting behind it (may_wait), -ENOBUFS not sent (counted as
 * dropped if it could have waited). */
int ctl_dplink_send(struct ctl *c, const struct pfs_ring_msg *m, bool may_wait);
/* Messages wait for ring room: the main loop polls instead of sleeping. */
bool ctl_dplink_backlogged(const struct ctl *c);
int ctl_dplink_send_datagram(struct ctl *c, const struct pfs_action *act, const uint8_t *msg,
			     size_t len);
/* A range of chunks: -ENOBUFS when the ring has no room now (the caller
 * keeps the range and may extend it, runs.c). */
int ctl_dplink_send_chunks(struct ctl *c, uint64_t hier, int cache_fi, struct pfs_addr dst,
			   uint32_t first, uint32_t count);

/* engines.c */
struct ctl_engine *ctl_engine_for(struct ctl *c, const char *model, bool create);
/* Take part in path's hierarchy, with its struct ctl_hier: its index, or
 * -ENOSPC (CTL_MAX_HIERS), -ENOMEM, or the engine's -EEXIST... */
int ctl_engine_want(struct ctl *c, struct ctl_engine *ce, const char *path);
/* The load server's engine, made on first need (NULL: no room). */
struct ctl_engine *ctl_engine_serve(struct ctl *c);
void ctl_engines_rx(struct ctl *c, const struct pfs_addr *src, const uint8_t *buf, size_t len);
/* serve.c: the load server (issue 12). */
int ctl_serve_open(struct ctl *c);
void ctl_serve_close(struct ctl *c);
bool ctl_serve_event(struct ctl *c, int fd);
void ctl_serve_timeout(struct ctl *c);
int64_t ctl_serve_deadline(const struct ctl *c);
void ctl_serve_pins(const struct ctl *c, bool *pin);
int ctl_serve_clients(const struct ctl *c);
const struct ctl_serve_stats *ctl_serve_stats(const struct ctl *c);
bool ctl_model_allowed(const struct ctl *c, const char *model);
/* mhd_loop.c: a libmicrohttpd daemon in our epoll loop (struct ctl_mhd
 * above). unescape: MHD_OPTION_UNESCAPE_CALLBACK's function, or NULL;
 * done: MHD_OPTION_NOTIFY_COMPLETED's, or NULL. */
typedef size_t (*ctl_unescape_fn)(void *cls, struct MHD_Connection *conn, char *s);
int ctl_mhd_start(struct ctl *c, struct ctl_mhd *m, const char *what, uint32_t ip,
		  uint16_t port, unsigned max_conns, MHD_AccessHandlerCallback handler,
		  ctl_unescape_fn unescape, MHD_RequestCompletedCallback done);
bool ctl_mhd_event(struct ctl_mhd *m, int fd);
int64_t ctl_mhd_deadline(const struct ctl_mhd *m);
void ctl_mhd_run_due(struct ctl_mhd *m);
void ctl_mhd_stop(struct ctl_mhd *m);

/* metrics.c: GET /metrics, the Prometheus text format (issue 13). */
int ctl_metrics_open(struct ctl *c);
void ctl_metrics_close(struct ctl *c);

/* serve_http.c: the same over HTTP/1.1 (libmicrohttpd). */
int ctl_http_open(struct ctl *c);
void ctl_http_close(struct ctl *c);
bool ctl_http_event(struct ctl *c, int fd);
void ctl_http_timeout(struct ctl *c);
int64_t ctl_http_deadline(const struct ctl *c);
void ctl_http_pins(const struct ctl *c, bool *pin);
void ctl_http_clients(const struct ctl *c, void *json_array);
/* pfsctl clients: a json_t * reply listing the transfers in progress. */
void *ctl_serve_clients_json(const struct ctl *c);
/* A requested name as a served path (NULL: refused); shared by TFTP and
 * HTTP. */
const char *ctl_serve_confine(const struct ctl *c, const char *name);
/* Transfers may have more to send (cache entries grew, fetches ended). */
void ctl_serve_kick(struct ctl *c);
void ctl_http_kick(struct ctl *c);

/* serve_src.c: what a load-server transfer reads, fetched once on a miss. */
enum ctl_src_state { CTL_SRC_WAIT, CTL_SRC_READY, CTL_SRC_NOT_FOUND, CTL_SRC_FAILED };
struct ctl_src {
	char path[PFS_FILEPATH_MAX + 1];
	int fi;                         /* the entry read, -1 none yet */
	uint64_t size;                  /* READY: the file's size */
	uint64_t avail;                 /* READY: bytes [0, avail) may be sent */
	bool complete;                  /* the entry is whole and verified */
	bool asked;                     /* the load server's fetch ran for us */
	enum ctl_src_state state;
	const char *why;                /* NOT_FOUND, FAILED: in words */
	uint64_t gen;                   /* c->fill_gen when last resolved */
};
enum ctl_src_state ctl_src_open(struct ctl *c, struct ctl_src *s, const char *path);
enum ctl_src_state ctl_src_update(struct ctl *c, struct ctl_src *s);
/* Up to len bytes at off: how many (fewer only past avail), -EAGAIN when
 * none is there yet, -EIO when the file cannot be had or read. */
int ctl_src_read(struct ctl *c, struct ctl_src *s, uint64_t off, void *buf, size_t len);

/* As a site relay, start announcing (at start, and when enabled). */
int ctl_engines_start(struct ctl *c);
void ctl_engines_timeout(struct ctl *c);
void ctl_engines_pin(struct ctl *c);
int64_t ctl_engines_deadline(const struct ctl *c);
void ctl_engines_stats(const struct ctl *c, struct pfs_engine_stats *sum);
void ctl_engines_drain(struct ctl *c);
int ctl_engines_prefetch(struct ctl *c, const char *model, const char *path);
void ctl_engines_set_enabled(struct ctl *c, bool on);
void ctl_engines_free(struct ctl *c);
/* Carry out an engine's pending actions. */
void ctl_engine_drain(struct ctl *c, struct ctl_engine *ce);

/* hashing.c: HASH_FILE answered from the loop; one slice of every digest
 * per turn (true while one the engine asked for is unfinished: the loop
 * must not sleep). */
struct ctl_hash_ctx {
	struct ctl *c;
	int fi;
};
void ctl_hash_start(const struct pfs_action *act);
bool ctl_hash_step(struct ctl *c);
void ctl_hash_free(struct ctl_engine *ce);

/* runs.c: chunk sends batched into SEND_CHUNKS ranges. A run at a filling
 * file's frontier is held a little (it grows as chunks arrive); the main
 * loop sends held runs when due and wakes for the earliest. */
void ctl_runs_add(struct ctl *c, uint64_t hier, int fi, struct pfs_addr dst, uint32_t index);
void ctl_runs_end_drain(struct ctl *c);
void ctl_runs_flush_due(struct ctl *c, int64_t now);
void ctl_runs_flush_all(struct ctl *c);
int64_t ctl_runs_deadline(void);

/* upstream.c: manifests and files from upstream into the cache, or from it */
void ctl_upstream_start(struct ctl *c, struct ctl_engine *ce, const struct pfs_action *act);
void ctl_upstream_abort(struct ctl *c, struct ctl_engine *ce, int hidx);
/* Joined as a member: a complete cached copy (checked against its signed
 * manifest) makes the hierarchy complete at once, kept and served. */
void ctl_member_from_cache(struct ctl *c, struct ctl_engine *ce, int hidx, const char *path);
/* A verified manifest (MANIFEST_OK): into the cache and the rollback state. */
void ctl_manifest_keep(struct ctl *c, struct ctl_engine *ce, const struct pfs_action *act);
extern const struct pfs_fetch_ops ctl_fetch_ops;
int ctl_fetch_slot_alloc(struct ctl *c, int eng, int hidx, bool manifest);
void ctl_fetch_slot_free(struct ctl_fetch_slot *s);
/* The entry holding path, this model's first, else another's (model NULL:
 * any); complete: only a complete one. -1 for none. */
int ctl_cache_lookup(const struct ctl *c, const char *model, const char *path, bool complete);

/* upstream_share.c: one fetch per file, followed by other hierarchies. */
int ctl_leader_for(struct ctl *c, const char *path, uint32_t chunk_size);
bool ctl_follow(struct ctl *c, struct ctl_engine *ce, int hidx, int lead);
void ctl_unfollow(struct ctl *c, struct ctl_engine *ce, int hidx);
/* Follower j of fetch lead (its engine and hierarchy), or NULL. */
struct ctl_engine *ctl_follower(struct ctl *c, int lead, int j, int *hidx);
void ctl_followers_end(struct ctl *c, int lead, bool ok, uint64_t size, const uint8_t sha[32],
		       int err);
bool ctl_hand_over(struct ctl *c, struct ctl_engine *ce, int hidx, int id);

/* fanout.c */
/* Push, update or withdraw the dataplane's tables; reserve cache room. */
/* false while a table could not be pushed (ring full): call again. */
bool ctl_fanout_sync(struct ctl *c);
/* The dataplane restarted: it holds no table. */
void ctl_fanout_lost(struct ctl *c);
/* A CHUNKS_STORED report: feed the chunks to the engine, note the sends. */
void ctl_fanout_stored(struct ctl *c, const struct pfs_ring_msg *m);
/* True (and forgotten) if the dataplane already sent this chunk there. */
bool ctl_fanout_consume(const struct pfs_action *act);
void ctl_fanout_free(struct ctl *c, struct ctl_engine *ce);

/* ctlsock.c */
int ctl_sock_open(struct ctl *c);
void ctl_sock_close(struct ctl *c);
/* An epoll event for fd: true if it was the socket's or a client's. */
bool ctl_sock_event(struct ctl *c, int fd, uint32_t events);
/* Close connections idle for control.client_idle_timeout. */
void ctl_sock_sweep(struct ctl *c, int64_t now);
void ctl_sock_drop(struct ctl *c, struct ctl_client *cl);

/* events.c: the event stream of `pfsctl events`. An engine's event, or one
 * of our own (name, and a detail for humans), to every subscriber. */
void ctl_sock_event_out(struct ctl *c, const struct ctl_engine *ce,
			const struct pfs_action *act);
void ctl_sock_notice(struct ctl *c, const char *event, const char *detail);

void ctl_log(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same at warning level (the journal shows it as such): something went
 * wrong that the appliance works around or an operator should know. */
void ctl_warn(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* PFS_CONTROL_H */
