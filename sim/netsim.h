/* netsim.h - a deterministic in-memory network of PFS engines.
 *
 * A discrete-event driver for the real engine: datagrams are encoded and
 * decoded by the real codec, delivered after a fixed latency, and lost with a
 * given probability; an upstream "TFTP server" streams files at a given rate
 * to whichever node asks. Time is simulated, so a run with the same seed
 * replays event for event. Used by the engine tests and by pfs-sim.
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
	pfs_time_t latency;             /* one way */
	uint64_t upstream_rate;         /* bytes per second per fetch */
	uint32_t upstream_block;        /* bytes per upstream step */
	bool trace;                     /* print every engine event */
};

struct netsim_counts {
	uint64_t datagrams_sent, datagrams_lost, datagrams_delivered;
	uint64_t broadcasts, chunk_sends;
	uint64_t events;                /* engine events (PFS_ACT_EVENT) */
	uint64_t upstream_bytes;
};

struct netsim;

struct netsim *netsim_new(const struct netsim_params *p);
void netsim_free(struct netsim *ns);

/* The upstream server's files; data must outlive the simulation. */
int netsim_add_file(struct netsim *ns, const char *path, const uint8_t *data, size_t size);

/* A node with the given engine config (node_id and self are assigned),
 * wanting the listed files from time start. Returns its index. */
int netsim_add_node(struct netsim *ns, const struct pfs_engine_config *cfg,
		    const char *const *wants, int nwants, pfs_time_t start);
void netsim_kill(struct netsim *ns, int node);
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
/* Stored bytes of a node's hierarchy; *done set when FILE_DONE came. */
const uint8_t *netsim_file(const struct netsim *ns, int node, int hidx, size_t *size,
			   bool *done, bool *failed);
pfs_time_t netsim_done_at(const struct netsim *ns, int node, int hidx);
uint32_t netsim_upstream_starts(const struct netsim *ns, const char *model, const char *path);
const struct netsim_counts *netsim_counts(const struct netsim *ns);
uint64_t netsim_event_count(const struct netsim *ns, enum pfs_event_code ev);

#endif /* PFS_NETSIM_H */
