/* pfs_dp_stats.h - the counters pfs-dataplane publishes in the shared
 * segment's stats page, for pfs-control, pfsctl and the benchmarks.
 * Written by the dataplane only (plain stores, one writer: with several
 * workers, each counts in its own copy and the main lcore writes their sum
 * here every millisecond); readers may see a counter a moment old, never a
 * torn one (aligned 64-bit words).
 */
#ifndef PFS_DP_STATS_H
#define PFS_DP_STATS_H

#include <stdint.h>

#define PFS_DP_STATS_MAGIC 0x5354415450445046ull   /* "PFDPTATS" */
#define PFS_DP_XDP_STATS   8                        /* >= PFS_STEER_STAT_MAX */

struct pfs_dp_stats {
	uint64_t magic;
	uint64_t rx_pkts, rx_bytes;
	uint64_t rx_pfs;                /* datagrams to the PFS port */
	uint64_t rx_not_pfs;            /* anything else that reached the socket */
	uint64_t rx_malformed;          /* bad Ethernet/IP/UDP/PFS header */
	uint64_t rx_bad_crc;            /* DATA whose payload fails its CRC32C */
	uint64_t rx_bad_csum;           /* a wrong UDP checksum (the NIC's verdict or ours) */
	uint64_t rx_ttl;                /* PFS datagrams without TTL 255 */
	uint64_t to_control, to_control_drops;  /* ring d2c */
	uint64_t from_control;          /* ring c2d messages handled */
	uint64_t tx_ctrl, tx_chunks, tx_bytes;
	uint64_t tx_pkts;               /* frames the port accepted */
	uint64_t tx_drops;              /* the port refused them, retries spent */
	uint64_t tx_retries;            /* TX bursts tried again on a full ring */
	uint64_t mbuf_drops;            /* pool empty */
	uint64_t chunk_missing;         /* asked to send a chunk not in the cache */
	uint64_t queue_drops;           /* a child's send queue was full */
	uint64_t stale_ranges;          /* ranges of an earlier pfs-control, dropped */
	uint64_t children;              /* send queues in use */
	uint64_t neighbours;            /* MAC addresses learned */
	uint64_t loops, busy_loops;
	uint64_t tsc_hz;
	uint64_t started_ns;
	/* local fan-out (docs/appliance.md 2.3) */
	uint64_t fanout_tables;         /* hierarchies relayed locally now */
	uint64_t fanout_chunks;         /* chunks stored and replicated here */
	uint64_t fanout_tx;             /* copies sent to children */
	uint64_t fanout_stray;          /* DATA of such a hierarchy not from the parent */
	uint64_t fanout_no_room;        /* no reserved cache room: left to pfs-control */
	uint64_t fanout_verified;       /* chunks checked against their signed digest */
	uint64_t fanout_bad_digest;     /* failed it: not stored, not relayed, to pfs-control */
	uint64_t fanout_notices;        /* CHUNKS_STORED messages (runs of chunks) */
	uint64_t crc_skipped;           /* chunks not checked (--no-crc-check) */
	uint64_t rx_oversize;           /* above a ring message, not relayed here */
	uint64_t tx_chained;            /* chunk frames sent zero-copy (of tx_chunks) */
	uint64_t fanout_reused;         /* received frames sent on as a child's copy */
	/* the XDP steering program's counters (enum pfs_steer_stat), summed
	 * over CPUs, once a second; valid while xdp_maps is 1 */
	uint64_t bell_rings;            /* doorbell writes: pfs-control woken */
	uint64_t tx_bad_iova;           /* chained payloads without a valid IOVA (must be 0) */
	uint64_t rx_tagged;             /* PFS frames that came with VLAN tags */
	uint64_t rx_handoff;            /* checked chunks handed to the worker owning
					 * their hierarchy (--workers) */
	uint64_t handoff_drops;         /* ... or a neighbour's address: its ring was full */
	uint64_t fanout_kept;           /* of fanout_chunks: kept in the frame they came
					 * in (no copy into the cache) */
	uint64_t frames_held;           /* frames the cache keeps chunks in (gauge) */
	uint64_t workers;               /* polling lcores (gauge) */
	uint64_t xdp_maps;
	uint64_t xdp[PFS_DP_XDP_STATS];
};

#endif /* PFS_DP_STATS_H */
