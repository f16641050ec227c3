/* netsim.h - a deterministic in-memory network of PFS engines.
 *
 * A discrete-event driver for the real engine: datagrams are encoded and
 * decoded by the real codec, serialized on each sender's LAN port at a given
 * rate, delivered after a fixed latency, and lost with a given probability; a
 * broadcast is one event that reaches every started node. An upstream "TFTP
 * server" streams files to whichever node asks, each fetch at a given rate,
 * all of them sharing one WAN link. Time is simulated, so a run with the same
 * seed replays event for event (netsim_digest() proves it). Used by the
 * engine tests and by pfs-sim.
 *
 * Scale: with byte_scale k, every byte of file data counts as k bytes on the
 * links and the WAN, so a simulation can move few, small real chunks while
 * timing the transfer of the file size it models. With verify, nodes keep one
 * bit per chunk instead of the file (simstore.h).
 */
#ifndef PFS_NETSIM_H
#define PFS_NETSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pfs_engine.h"

struct netsim_params {
	uint64_t seed;
	double loss;                    /* per datagram copy, 0..1 */
	pfs_time_t loss_until;          /* no loss from then on (0: loss all along) */
	pfs_time_t latency;             /* one way, after serialization */
	uint64_t upstream_rate;         /* bytes per second per fetch */
	uint32_t upstream_block;        /* real bytes per upstream step */
	uint64_t wan_rate;              /* bytes per second, all fetches; 0: no limit */
	uint64_t lan_rate;              /* bytes per second per node port; 0: no limit */
	uint32_t byte_scale;            /* link bytes per file byte; 0 or 1: real */
	bool verify;                    /* hold verified bits, not bytes (simstore.h) */
	pfs_time_t server_down_from;    /* fetches fail (unreachable) in [from, until) */
	pfs_time_t server_down_until;
	pfs_time_t hash_delay;          /* HASH_FILE answered this much later, as the
					 * real drivers hash in steps; 0: at once */
	bool trace;                     /* print every engine event */
};

struct netsim_counts {
	uint64_t datagrams_sent, datagrams_lost, datagrams_delivered;
	uint64_t broadcasts, chunk_sends;
	uint64_t events;                /* engine events (PFS_ACT_EVENT) */
	uint64_t upstream_bytes;        /* real bytes */
	uint64_t lan_bytes;             /* link bytes sent by nodes, scaled */
	uint64_t chunks_mismatched;     /* an honest node stored bytes not the server's */
	uint64_t chunks_unheld;         /* asked to send a chunk it does not hold */
	uint64_t bad_forwards;          /* chunks an honest node sent that are not the server's */
	uint64_t finished_twice;        /* FILE_DONE or FILE_FAILED for a file that had one */
	uint64_t files_hashed;          /* HASH_FILE actions: whole-file passes asked for */
	uint64_t sim_events;            /* events processed */
};

struct netsim;

struct netsim *netsim_new(const struct netsim_params *p);
void netsim_free(struct netsim *ns);

/* The upstream server's files; data must outlive the simulation. */
int netsim_add_file(struct netsim *ns, const char *path, const uint8_t *data, size_t size);

/* The server's signed manifest for a file added before; man must outlive
 * the simulation. 0 or -ENOENT. */
int netsim_add_manifest(struct netsim *ns, const char *path, const uint8_t *man, size_t len);

/* A hostile node with its own upstream server: its file (and manifest) for
 * path are these, not the site's. Call before the node starts. */
int netsim_rogue_server(struct netsim *ns, int node, const char *path, const uint8_t *data,
			size_t size, const uint8_t *man, size_t man_len);

/* The node already holds its files whole (pfs_engine_have_file at its
 * start), as an appliance with a warm cache does. */
void netsim_preload(struct netsim *ns, int node);

/* The node's disk holds only this many bytes of each file: past them its
 * writes fail with -ENOSPC (pfs_engine_store_failed). */
void netsim_store_limit(struct netsim *ns, int node, uint64_t bytes);

/* The node wants each of its files only once another node names it in a
 * CLAIM, ROOT or JOIN, as pfs-control's auto-join does. Call before start. */
void netsim_autojoin(struct netsim *ns, int node);

/* The node is up (hears broadcasts) from its start but wants its files
 * only at time t, as a device told of new firmware while running. */
void netsim_want_at(struct netsim *ns, int node, pfs_time_t t);

/* The node's own LAN port rate, bytes/s (an appliance's faster port). */
void netsim_lan_rate(struct netsim *ns, int node, uint64_t rate);

/* A hostile node: every chunk it sends has one byte changed (the CRC32C is
 * recomputed, so only a digest catches it). */
void netsim_corrupt_sends(struct netsim *ns, int node);

/* A node with the given engine config (node_id and self are assigned),
 * wanting the listed files from time start. Returns its index. */
int netsim_add_node(struct netsim *ns, const struct pfs_engine_config *cfg,
		    const char *const *wants, int nwants, pfs_time_t start);
void netsim_kill(struct netsim *ns, int node);
/* At time t, every node that is then root of its first hierarchy dies
 * silently (netsim_roots_killed counts them). */
int netsim_kill_roots_at(struct netsim *ns, pfs_time_t t);
uint32_t netsim_roots_killed(const struct netsim *ns);
/* The node dies silently at time t (no LEAVE). 0 or -ENOMEM. */
int netsim_kill_at(struct netsim *ns, int node, pfs_time_t t);
/* Leave gracefully (LEAVE to parent and children), then stop. */
void netsim_shutdown(struct netsim *ns, int node);

/* Run until every live node's files are complete or failed, or until t_end.
 * Returns true if everything finished. */
bool netsim_run(struct netsim *ns, pfs_time_t t_end);
/* Run until simulated time t (for scripted interventions). */
void netsim_run_until(struct netsim *ns, pfs_time_t t);

pfs_time_t netsim_now(const struct netsim *ns);
int netsim_nodes(const struct netsim *ns);
bool netsim_alive(const struct netsim *ns, int node);
struct pfs_engine *netsim_engine(struct netsim *ns, int node);
/* Stored bytes of a node's hierarchy (NULL with verify); *done set when
 * FILE_DONE came. */
const uint8_t *netsim_file(const struct netsim *ns, int node, int hidx, size_t *size,
			   bool *done, bool *failed);
pfs_time_t netsim_done_at(const struct netsim *ns, int node, int hidx);
/* First time the node was in a tree (joined, or confirmed root), or NEVER. */
pfs_time_t netsim_attached_at(const struct netsim *ns, int node, int hidx);
uint32_t netsim_upstream_starts(const struct netsim *ns, const char *model, const char *path);
const struct netsim_counts *netsim_counts(const struct netsim *ns);
uint64_t netsim_event_count(const struct netsim *ns, enum pfs_event_code ev);
/* A hash of every event processed (time, kind, node): equal digests mean
 * the two runs went the same way, event for event. */
uint64_t netsim_digest(const struct netsim *ns);

#endif /* PFS_NETSIM_H */
