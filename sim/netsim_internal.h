/* netsim_internal.h - what netsim.c (the network, its events and its
 * nodes) and netsim_drive.c (each node's engine actions, carried out in
 * the simulated network) share. Not for users of netsim.h. */
#ifndef PFS_NETSIM_INTERNAL_H
#define PFS_NETSIM_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "evheap.h"
#include "netsim.h"
#include "simstore.h"

#define MAX_FILES  64
#define MAX_WANTS  16
#define NODE_IP0   0x0a000001u          /* 10.0.0.1: node 0 */
#define WIRE_OVERHEAD 42u               /* Ethernet 14 + IPv4 20 + UDP 8 */

struct node {
	struct pfs_engine *e;
	bool alive, started;
	bool corrupt;                   /* hostile: alters every chunk it sends */
	bool preload;                   /* holds its files from the start */
	bool autojoin;                  /* wants a file once a node names it (appliance) */
	uint8_t nwanted;                /* autojoin: wants[0..nwanted) asked of the engine */
	bool wanting;                   /* started, and its want time has come */
	uint64_t lan_rate;              /* its port, bytes/s; 0: the network's */
	pfs_time_t want_at;             /* wants its files then, not at start (0: start) */
	const struct sfile *rogue;      /* hostile: its own server's file */
	uint8_t nwants;
	uint64_t timer_gen;
	pfs_time_t armed;
	pfs_time_t tx_free;             /* its LAN port is busy until then */
	const char **wants;
	struct simfile *files;
};

struct upstream_count {
	char model[PFS_MODEL_MAX + 1];
	char path[PFS_FILEPATH_MAX + 1];
	uint32_t starts;
};

struct netsim {
	struct netsim_params p;
	pfs_time_t now;
	uint64_t rng, digest;
	uint32_t roots_killed;
	struct evheap q;
	struct node *nodes;
	int nnodes, capnodes;
	uint64_t pending;               /* unstarted nodes + unfinished wants of live ones */
	pfs_time_t wan_free;            /* the WAN is busy until then */
	struct sfile files[MAX_FILES];
	int nfiles;
	struct sfile rogue[MAX_FILES];
	int nrogue;
	struct upstream_count *ups;
	int nups;
	struct netsim_counts c;
	uint64_t ev_counts[PFS_EV_COUNT];
	uint8_t scratch[PFS_DGRAM_MAX], chunk[PFS_DGRAM_MAX], forged[PFS_CHUNK_MAX];
};

static inline uint32_t node_ip(int idx) { return NODE_IP0 + (uint32_t)idx; }

void netsim_push(struct netsim *ns, struct ev ev);
/* A datagram from node from, link_bytes on its port, to act's destination
 * (or every node). */
void netsim_send_to(struct netsim *ns, int from, const struct pfs_action *a,
		    const uint8_t *msg, size_t len, uint64_t link_bytes);
void netsim_want_finished(struct netsim *ns, struct simfile *f, bool done);
struct upstream_count *netsim_ups_slot(struct netsim *ns, const char *model,
				       const char *path);
/* netsim_drive.c: run node idx's actions, then re-arm its timer. */
void netsim_drain(struct netsim *ns, int idx);
/* netsim_drive.c: the digest of node idx's copy of file hidx, its first
 * size bytes as stored now, handed to its engine. */
void netsim_hash_file(struct netsim *ns, int idx, int hidx, uint64_t size);

#endif /* PFS_NETSIM_INTERNAL_H */
