/* dp.h - pfs-dataplane: the appliance's DPDK packet path (docs/appliance.md 2).
 *
 * Polling lcores (workers, one by default): RX burst -> parse (rx.c) -> PFS
 * datagrams to pfs-control over the shared ring; from the ring: datagrams to
 * send, configuration, and ranges of chunks to send to a child, which tx.c
 * sends from the chunk cache with per-child pacing. Chunks of a hierarchy
 * whose parent is another node are stored and replicated to its children
 * right here (fanout.c), and only reported to pfs-control. port.c owns the
 * port and the mbuf pools, telemetry.c the /pfs/... telemetry commands,
 * main.c the loop, workers.c the sharding of hierarchies across workers.
 *
 * One struct dp per worker: everything a worker writes on its fast path
 * (queues, children, templates, memo, fan-out tables, counters) is its own;
 * what all share (port, pools, segment, cache) is only read, or atomic
 * (mbuf pools, the cache's shared-info counts).
 *
 * Fast path rules: no locks, no allocation outside the mbuf pools, every
 * drop counted in struct pfs_dp_stats (published in the shared segment).
 */
#ifndef PFS_DP_H
#define PFS_DP_H

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <stdbool.h>
#include <stdint.h>

#include "pfs_cache.h"
#include "pfs_dp_stats.h"
#include "pfs_log.h"
#include "pfs_shm.h"
#include "pfs_wire.h"
#include "shard.h"
#include "tmpl.h"
#include "vlan.h"

#define DP_BURST        32
#define DP_IDLE_LOOPS   256     /* empty loops before --idle-sleep-us applies */
#define DP_CHILDREN     256     /* send queues (children being fed) */
#define DP_CHILD_RANGES 32      /* pending ranges per child */
#define DP_NEIGH        1024    /* learned IPv4 -> MAC, power of two */
#define DP_MEMO         4096    /* chunk CRC/checksum memo, power of two */
/* Below this many bytes of copies per chunk, copying the payload into each
 * frame costs less than chaining it: a chained copy's reference on the cache
 * is an atomic add and, at free, an atomic sub, and each waits for the
 * core's pending stores (the chunk's own copy into the cache) to drain.
 * Measured (bench/RESULTS.md 1): 512 B x 2 and x 8, 1408 B x 2 copy faster;
 * 1408 B x 8 and 8192 B chain faster. */
#define DP_COPYBREAK    4096
/* A full TX ring is tried again this long (--tx-retry-us): long enough for
 * a consumer polling its ring to come round, short against the ~1 ms an RX
 * ring of 1024 takes to fill at 1 Mpps while we spin. */
#define DP_TX_RETRY_US  50
#define DP_MAX_WORKERS  16      /* --workers: an RX and a TX queue each */

struct dp_range {
	uint64_t hier;                  /* in the DATA headers */
	uint64_t entry;                 /* the cache file's own key (it may be
					 * another hierarchy's: one copy, two models) */
	int32_t fi;
	uint32_t next, end;
};

struct dp_child {
	bool used;
	uint32_t ip;
	uint16_t port;
	uint16_t head, len;             /* ring of pending ranges */
	struct dp_range q[DP_CHILD_RANGES];
	uint64_t tokens, last_tsc;      /* pacing: bytes allowed, refilled by TSC */
	uint64_t sent, dropped;         /* dropped: the port's TX ring stayed full */
	struct dp_tmpl tmpl;            /* headers of the last chunk sent to it */
};

struct dp_neigh {
	uint32_t ip;                    /* 0: empty */
	struct rte_ether_addr mac;
	struct dp_vlan vlan;            /* the tags its frames come with (vlan.h) */
	bool owed;                      /* learned here, and a full ring kept it from
					 * the other workers: told again when next heard */
};

#define DP_IMSG_NEIGH   0x8001  /* between workers only: ip's MAC and tags */

struct dp_memo {                        /* per chunk: computed once, sent N times */
	int32_t fi;
	uint32_t gen;                   /* the slot's file (pfs_cache_file.gen) */
	uint32_t idx;
	uint64_t hier;
	uint32_t len;                   /* a file's last chunk changes length once its size is known */
	uint32_t crc;
	uint16_t sum;                   /* raw 16-bit one's complement sum of the payload */
	bool valid;
};

/* A hierarchy relayed locally: pushed by pfs-control (PFS_RMSG_FANOUT). */
struct dp_fanout {
	uint64_t hier;                  /* 0: entry unused */
	int32_t fi;                     /* cache file the chunks go to */
	uint32_t generation, chunk_size;
	uint32_t parent_ip;
	uint16_t parent_port;
	uint16_t live;                  /* mask of child slots in use */
	bool verify;                    /* chunks checked against signed digests */
	bool held;                      /* we hold fi (pfs_cache_hold) from a chunk
					 * until the table goes: one reference a
					 * table, not two atomics a chunk; and
					 * digests_fi with it when verifying */
	int32_t digests_fi;
	uint32_t digests_off, digests_gen;
	struct {
		uint32_t ip;
		uint16_t port;
		uint64_t sent, dropped; /* copies queued; of them, refused by the port */
		struct dp_tmpl tmpl;    /* built at the first chunk, kept while it fits */
	} child[PFS_FANOUT_SLOTS];
};

/* The run of chunks stored and relayed since the last report to control. */
struct dp_notice {
	bool open;
	uint64_t hier;
	uint32_t generation, sender, first, count, len;
	uint32_t src_ip;
	uint16_t src_port, mask;
};

#define DP_FANOUT PFS_CACHE_FILES

struct dp_opts {
	const char *segment;
	uint16_t port_id;
	uint64_t child_rate_bps;        /* 0: unpaced (the engine's window still limits) */
	uint32_t child_burst;           /* chunks per child per loop */
	bool no_zero_copy;              /* copy payloads even if the port chains mbufs */
	bool force_zero_copy;           /* chain even where the port does not say it can */
	uint32_t copybreak;             /* copy when a chunk's copies add up to no more */
	uint32_t max_frame;             /* bytes of the largest frame (jumbo chunks) */
	bool no_crc_check;              /* trust chunk CRCs (benchmarks: the cost of checking) */
	bool no_csum_check;             /* trust UDP checksums (partial ones from virtual NICs) */
	bool no_local_fanout;           /* every chunk goes through pfs-control */
	bool no_rx_reuse;               /* never send a received frame on as a copy */
	bool no_rx_keep;                /* copy chunks into the cache, never keep frames */
	bool no_tx_csum;                /* sum checksums here even if the port can */
	uint32_t idle_sleep_us;         /* sleep this long when idle (0: busy-poll) */
	uint32_t tx_retry_us;           /* how long a full TX ring is retried */
	uint32_t workers;               /* polling lcores, each an RX and a TX queue */
	uint32_t fault_drop_outbox;     /* tests: drop the first N messages of workers
					 * other than 0 to worker 0, as a full outbox */
	bool log_json;                  /* --log-json: one JSON object a line */
	int log_level;                  /* --log-level: enum pfs_log_level */
	struct dp_vlan vlan;            /* --vlan: tags of broadcasts and of frames to
					 * neighbours not learned yet */
};

struct dp_verifier;
struct rte_ring;

/* The cache's frames, which the RX queues receive into (frames.c): a chunk
 * from a parent may stay in the frame it came in as the cache's copy.
 * Shared by every worker; held[] and owner[] are written by the worker that
 * keeps a frame (it alone has it: it came from the pool) and cleared by
 * worker 0's release scan. */
struct dp_frame_owner {
	int32_t fi;
	uint32_t gen, idx, entry;       /* the chunk and its map entry */
	uint32_t wid;                   /* the worker that kept it */
};

struct dp_frames {
	struct rte_mempool *pool;       /* the RX queues' */
	uint8_t *base;
	uint32_t n;
	uint32_t budget;                /* frames the cache may hold; the rest feed RX */
	uint32_t share;                 /* of them, each worker's (budget / workers) */
	uint32_t adopted;               /* held from before this dataplane started */
	struct rte_mbuf *_Atomic *held; /* [n]: a frame's mbuf while the cache holds it */
	struct dp_frame_owner *owner;   /* [n] */
	/* [n]: a frame's copies in flight (chained to its chunk), + 1: a
	 * frame goes back to the pool only once its count is back to 1 */
	struct rte_mbuf_ext_shared_info *refs;
};

struct dp {
	struct dp_opts o;
	/* this worker (workers.c); worker 0 runs on the main lcore and alone
	 * talks to pfs-control over the shared rings */
	unsigned wid, nworkers;
	uint16_t queue;                 /* its RX and TX queue */
	struct rte_ring *inbox;         /* worker 0 -> it: control's messages (not worker 0's) */
	struct rte_ring *outbox;        /* it -> worker 0: messages for control (not worker 0's) */
	struct rte_ring *handoff;       /* any worker -> it: DATA of hierarchies it owns */
	struct rte_ring *handoff_to[DP_MAX_WORKERS];    /* every worker's handoff */
	struct dp **all;                /* every worker, by wid */
	uint64_t inbox_msgs;            /* messages taken from inbox (its idle test) */
	struct dp_verifier *verifier;   /* signed chunk digests (verify.c) */
	struct pfs_shm *shm;
	struct pfs_cache *cache;
	struct pfs_dp_stats *st;        /* where this worker counts: the stats page
					 * itself with one worker; else own_stats,
					 * summed into the page by worker 0 */
	struct pfs_dp_stats *page;      /* the stats page (written by worker 0 only) */
	struct pfs_dp_stats own_stats;
	struct rte_mempool *pool;       /* packets and header mbufs */
	struct rte_mempool *ext_pool;   /* payload mbufs attached to the cache */
	struct dp_frames *frames;       /* NULL: chunks are copied into the cache */
	/* frames this worker kept (it alone counts them), and of them, those
	 * worker 0's scan let go: no line all workers write per chunk */
	uint32_t frames_kept;
	_Atomic uint32_t frames_released;
	uint16_t port;
	bool chain;                     /* the port sends multi-segment mbufs */
	bool bell;                      /* pfs-control's doorbell is open */
	bool iova_va;                   /* the cache is registered: IOVA = address */
	bool dma_mapped;                /* ... and DMA-mapped for the port's device */
	void *dma_region;
	uint64_t dma_bytes;
	bool rx_reuse;                  /* a received frame may go out again (port.c) */
	bool tx_csum;                   /* the port computes IPv4 and UDP checksums */
	int owner_off;                  /* mbuf dynfield: whose copy a frame is (DP_OWNER_*) */
	uint64_t tx_retry_tsc;          /* o.tx_retry_us in TSC ticks */
	struct rte_ether_addr mac;
	/* from pfs-control's CONFIG */
	bool configured;
	uint64_t ctl_gen;               /* of the last CONFIG: ranges follow it */
	uint32_t ip, bcast, node_id;
	uint16_t pfs_port;
	uint16_t ip_id;
	uint32_t hdr_gen;               /* moves when a frame template goes stale (tmpl.h) */
	struct rte_mbuf *txq[DP_BURST * 4];
	unsigned ntx;
	struct pfs_ring_msg tocontrol[DP_BURST];
	unsigned ntocontrol;
	struct dp_child children[DP_CHILDREN];
	unsigned pump_next;
	unsigned nchildren;             /* children[] slots in use */
	struct dp_neigh neigh[DP_NEIGH];
	struct dp_memo memo[DP_MEMO];
	struct dp_fanout fanout[DP_FANOUT];
	unsigned nfanout;               /* entries in use */
	unsigned fanout_last;           /* entry of the last chunk: streams repeat */
	struct dp_notice notice;
	uint64_t tsc_hz;
};

extern volatile bool dp_stop;

/* Whose copy a frame is, in an mbuf dynfield, so that a frame the port
 * refuses is counted against its child (dp_child.dropped, or a fan-out
 * slot's). 0: nobody's (control's datagrams). */
#define DP_OWNER_CHILD  (1u << 31)      /* | index in children[] */
#define DP_OWNER_FANOUT (1u << 30)      /* | fanout[] index << 4 | slot */
#define DP_OWNER_MASK   0x3fffffffu

/* port.c */
int dp_port_init(struct dp *d);
void dp_port_close(struct dp *d);
void dp_ext_free(void *addr, void *opaque);
void dp_tx_flush(struct dp *d);
static inline void dp_tx(struct dp *d, struct rte_mbuf *m, uint32_t owner)
{
	if (d->ntx == sizeof(d->txq) / sizeof(d->txq[0]))
		dp_tx_flush(d);
	*RTE_MBUF_DYNFIELD(m, d->owner_off, uint32_t *) = owner;
	d->txq[d->ntx++] = m;
}

/* rx.c */
unsigned dp_rx_burst(struct dp *d);
unsigned dp_rx_handoff(struct dp *d);
void dp_to_control_flush(struct dp *d);
struct pfs_ring_msg *dp_to_control_slot(struct dp *d);
/* Returns true when the other workers must learn ip: the table changed, or
 * an earlier message about it was lost to a full ring (dp_neigh.owed). */
bool dp_neigh_learn(struct dp *d, uint32_t ip, const struct rte_ether_addr *mac,
		    const struct dp_vlan *vlan);
const struct dp_neigh *dp_neigh_find(const struct dp *d, uint32_t ip);

/* tx.c */
void dp_tx_datagram(struct dp *d, const struct pfs_ring_msg *m);
int dp_tx_queue_range(struct dp *d, const struct pfs_ring_msg *m);
/* xdpstats.c: the XDP filter's counters into the stats page. */
void dp_xdp_stats(struct dp *d);
void dp_tx_pump(struct dp *d);
void dp_tx_reset_children(struct dp *d);
/* A chunk to send from the cache: chunk idx of cache file fi, generation
 * gen as the caller found it (read before payload), len bytes at payload,
 * its CRC32C and raw one's complement sum (as dp_csum() gives it); held:
 * the caller holds the file meanwhile (pfs_cache_hold). */
struct dp_chunk {
	int fi;
	uint32_t gen, idx;
	const uint8_t *payload;
	uint32_t len, crc;
	uint16_t psum;
	bool held;
};
int dp_tx_chunk(struct dp *d, const struct dp_tmpl *const *t, unsigned n, const struct dp_chunk *c,
		struct rte_mbuf *in);

/* frames.c */
int dp_frames_init(struct dp *d, const char *driver, uint32_t need, int socket);
bool dp_frames_keep(struct dp *d, int fi, uint32_t gen, uint32_t idx, struct rte_mbuf *m,
		    const uint8_t *payload, uint32_t len);
void dp_frames_release(struct dp *d);
int dp_frames_ref(struct dp *d, int fi, uint32_t gen, uint32_t idx, const uint8_t *payload,
		  uint16_t n, struct rte_mbuf_ext_shared_info **si);
void dp_frames_close(struct dp *d);
struct rte_mempool *dp_frames_pool(const struct dp *d);  /* the RX queues', or NULL */
/* Is p in a frame (a chunk kept there, when the cache gave p as its room)? */
static inline bool dp_frames_kept(const struct dp *d, const uint8_t *p)
{
	return d->frames && p >= d->frames->base &&
	       p < d->frames->base + (uint64_t)d->frames->n * PFS_CACHE_FRAME;
}

/* fanout.c */
void dp_fanout_update(struct dp *d, const struct pfs_ring_msg *m);
void dp_fanout_reset(struct dp *d);
/* The tables' holds on their files given back (the tables stay). */
void dp_fanout_release(struct dp *d);
/* What became of a checked DATA datagram (fanout.c). */
enum dp_fanout_verdict {
	DP_FANOUT_PASS,         /* not relayed here: hand it to control whole */
	DP_FANOUT_DONE,         /* stored, relayed, reported; the frame is the caller's */
	DP_FANOUT_SENT,         /* the same, and the frame itself went to a child */
};
/* frame m (one segment) holds the datagram at ip/udp, plen bytes of PFS. */
enum dp_fanout_verdict dp_fanout_chunk(struct dp *d, struct rte_mbuf *m,
				       const struct rte_ipv4_hdr *ip,
				       const struct rte_udp_hdr *udp, uint32_t plen);
/* Queue the open run's report before anything else goes to control. */
void dp_fanout_close(struct dp *d);

/* log.c: DPDK's log stream and libbpf's print function into pfs_log. */
int dp_log_libraries(void);

/* telemetry.c */
int dp_telemetry_init(struct dp *const *w, unsigned n);

/* main.c: one message of pfs-control's, applied to worker d. */
void dp_control_msg(struct dp *d, const struct pfs_ring_msg *m);

/* workers.c */
int dp_workers_start(struct dp *d, struct dp **w);
void dp_workers_stop(struct dp **w, unsigned n);
unsigned dp_workers_route(struct dp **w, const struct pfs_ring_msg *m, unsigned n);
unsigned dp_workers_forward(struct dp **w);
unsigned dp_workers_inbox(struct dp *d);
void dp_workers_learned(struct dp *d, uint32_t ip);
void dp_workers_fold_stats(struct dp **w);
unsigned dp_workers_room(struct dp **w);
/* main.c: a worker's poll loop (rte_eal_remote_launch). */
int dp_worker_main(void *arg);

#endif /* PFS_DP_H */
