/* gen_tx.h - pfs-gen's DPDK transmitter: sends a trace's frames out of a
 * DPDK port, for machines without pktgen-dpdk (bench/pktgen/README.md).
 */
#ifndef PFS_GEN_TX_H
#define PFS_GEN_TX_H

#include <stdbool.h>
#include <stdint.h>

struct gen_tx_opts {
	double seconds;                 /* stop after this long (0: no limit) */
	uint64_t count;                 /* stop after this many frames (0: no limit) */
	double rate;                    /* frames per second, 0: as fast as the port takes */
	uint16_t port;
	bool no_rx;                     /* never read the port: a stalled receiver */
};

struct gen_tx_stats {
	uint64_t frames, bytes;         /* accepted by the PMD */
	uint64_t full;                  /* bursts the PMD took only in part */
	uint64_t rx_frames;             /* received back on the port, and freed */
	uint64_t port_opackets;         /* the port's own count, rte_eth_stats */
	double elapsed_s;
};

/* Printed on stderr, on a line of its own, once the link is up and
 * sending starts. */
#define GEN_TX_SENDING "pfs-gen: link up; sending"

/* Printed on stderr, on a line of its own, once a stop signal (SIGINT,
 * SIGTERM) has ended sending: from then on the port is not polled, and the
 * peer may leave (on memif it must not leave earlier: gen_tx.c). */
#define GEN_TX_STOPPED "pfs-gen: stopped sending; the peer may leave"
/* The line after it: how many frames went out, so that a harness can wait
 * until the peer has received them all before it reads the peer's counters. */
#define GEN_TX_SENT "pfs-gen: frames sent:"

/* Initialise EAL with eal_argv, send frames[i] (lens[i] bytes) in order,
 * round and round, until a limit; the frames must fit one mbuf each.
 * Returns 0 or a negative errno, after printing what failed. */
int gen_tx_run(int eal_argc, char **eal_argv, const uint8_t *const *frames,
	       const uint16_t *lens, uint32_t nframes, const struct gen_tx_opts *o,
	       struct gen_tx_stats *st);

#endif
