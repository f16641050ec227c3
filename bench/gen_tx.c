/* gen_tx.c - pfs-gen's DPDK transmitter (see gen_tx.h).
 *
 * Every frame of the trace is built once into its own mbuf. Sending takes a
 * reference on it first (rte_mbuf_refcnt_update), so the PMD's free after
 * transmission drops that reference and the frame stays for the next round:
 * no copy and no allocation per packet on our side, as pktgen does for its
 * pcap replay. Pacing, when a rate is given, spaces bursts on the TSC.
 */
#include "gen_tx.h"

#include <errno.h>
#include <signal.h>
#include <rte_alarm.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BURST     32
#define TX_DESC   1024
#define RX_DESC   512
#define PEER_WAIT_S 5.0         /* for the peer to connect, or to leave */

static volatile sig_atomic_t gen_stop;

static void on_signal(int sig)
{
	(void)sig;
	gen_stop = 1;           /* SIGINT/SIGTERM: stop sending, report as usual */
}

static void intr_thread_reached(void *arg)
{
	*(volatile bool *)arg = true;
}

/* Wait (bounded) until EAL's interrupt thread has finished what it was
 * doing. memif's control channel runs there, and its disconnect handler
 * marks the link down first and only then unmaps the rings and frees the
 * queues' resources; rte_eth_dev_stop() runs the same teardown on our
 * thread, so stopping the port as soon as the link reads down crashed
 * pfs-gen now and then (a double teardown). An alarm's callback runs on
 * that same thread, after the handler in progress has returned: when it
 * has run, the handler is done. */
static bool intr_thread_drain(double seconds)
{
	volatile bool reached = false;
	uint64_t end = rte_rdtsc() + (uint64_t)(seconds * (double)rte_get_tsc_hz());

	if (rte_eal_alarm_set(1, intr_thread_reached, (void *)&reached) < 0)
		return false;
	while (!reached) {
		if (rte_rdtsc() >= end) {
			rte_eal_alarm_cancel(intr_thread_reached, (void *)&reached);
			return reached;
		}
		rte_delay_us_sleep(100);
	}
	return true;
}

static bool link_up(uint16_t port)
{
	struct rte_eth_link l;

	return rte_eth_link_get_nowait(port, &l) == 0 && l.link_status == RTE_ETH_LINK_UP;
}

/* Wait (bounded, interruptible) until the port's link is up, or down. On
 * a memif pair the PMD's control thread maps and unmaps the peer's rings
 * while the link comes and goes, and DPDK 22.11 does not fence that from
 * rx/tx bursts on the same port: polling through a connect or a disconnect
 * crashed pfs-gen. So it sends only once the peer is there, and after a
 * stop it keeps the port open, not polled, until the peer has left; the
 * GEN_TX_STOPPED line tells whoever runs the peer that it may stop it now
 * (stopping it on the signal alone still crashed one run in ten). */
static bool link_wait(uint16_t port, bool up, double seconds, bool interruptible)
{
	uint64_t end = rte_rdtsc() + (uint64_t)(seconds * (double)rte_get_tsc_hz());

	while (link_up(port) != up) {
		if (rte_rdtsc() >= end || (interruptible && gen_stop))
			return false;
		rte_delay_us_sleep(1000);
	}
	return true;
}

static int port_start(uint16_t port, struct rte_mempool *pool)
{
	struct rte_eth_conf conf = { 0 };
	int socket = rte_eth_dev_socket_id(port), rc;

	if (socket < 0)
		socket = (int)rte_socket_id();
	/* One RX queue: what comes back is counted (send_loop). */
	if ((rc = rte_eth_dev_configure(port, 1, 1, &conf)) < 0 ||
	    (rc = rte_eth_rx_queue_setup(port, 0, RX_DESC, (unsigned)socket, NULL, pool)) < 0 ||
	    (rc = rte_eth_tx_queue_setup(port, 0, TX_DESC, (unsigned)socket, NULL)) < 0 ||
	    (rc = rte_eth_dev_start(port)) < 0) {
		fprintf(stderr, "pfs-gen: port %u: %s\n", port, rte_strerror(-rc));
		return rc;
	}
	return 0;
}

/* The trace's frames, one mbuf each, kept for the whole run. */
static int frames_load(struct rte_mempool *pool, const uint8_t *const *frames,
		       const uint16_t *lens, uint32_t n, struct rte_mbuf **m)
{
	for (uint32_t i = 0; i < n; i++) {
		m[i] = rte_pktmbuf_alloc(pool);
		if (!m[i] || rte_pktmbuf_tailroom(m[i]) < lens[i]) {
			fprintf(stderr, "pfs-gen: frame %u (%u bytes) does not fit an mbuf\n", i, lens[i]);
			return -ENOMEM;
		}
		memcpy(rte_pktmbuf_append(m[i], lens[i]), frames[i], lens[i]);
	}
	return 0;
}

static void send_loop(uint16_t port, struct rte_mbuf **m, uint32_t n, const struct gen_tx_opts *o,
		      struct gen_tx_stats *st)
{
	uint64_t hz = rte_get_tsc_hz(), t0 = rte_rdtsc();
	uint64_t end = o->seconds > 0 ? t0 + (uint64_t)(o->seconds * (double)hz) : UINT64_MAX;
	uint64_t gap = o->rate > 0 ? (uint64_t)((double)hz * BURST / o->rate) : 0, next = t0;
	uint32_t cur = 0;
	struct rte_mbuf *burst[BURST], *back[BURST];

	for (;;) {
		uint64_t now = rte_rdtsc();
		uint16_t want = BURST, sent, got;

		/* What the device under test sends back: counted and freed, so
		 * a port it shares with us (memif) never backs up, unless told
		 * to stall (--no-rx). */
		got = o->no_rx ? 0 : rte_eth_rx_burst(port, 0, back, BURST);
		st->rx_frames += got;
		rte_pktmbuf_free_bulk(back, got);

		if (now >= end || gen_stop || (o->count && st->frames >= o->count))
			break;
		if (gap && now < next)
			continue;
		if (o->count && o->count - st->frames < want)
			want = (uint16_t)(o->count - st->frames);
		for (uint16_t i = 0; i < want; i++) {
			burst[i] = m[(cur + i) % n];
			rte_mbuf_refcnt_update(burst[i], 1);    /* the PMD frees this one */
		}
		sent = rte_eth_tx_burst(port, 0, burst, want);
		for (uint16_t i = sent; i < want; i++)
			rte_mbuf_refcnt_update(burst[i], -1);
		if (sent < want)
			st->full++;
		for (uint16_t i = 0; i < sent; i++)
			st->bytes += burst[i]->pkt_len;
		st->frames += sent;
		cur = (cur + sent) % n;
		if (gap)
			next += gap * sent / BURST ? gap * sent / BURST : 1;
	}
	st->elapsed_s = (double)(rte_rdtsc() - t0) / (double)hz;
}

int gen_tx_run(int eal_argc, char **eal_argv, const uint8_t *const *frames,
	       const uint16_t *lens, uint32_t nframes, const struct gen_tx_opts *o,
	       struct gen_tx_stats *st)
{
	struct rte_mempool *pool = NULL;
	struct rte_mbuf **m = NULL;
	struct rte_eth_stats es;
	uint16_t maxlen = 0;
	bool port_set_up = false;
	int rc;

	memset(st, 0, sizeof(*st));
	if (rte_eal_init(eal_argc, eal_argv) < 0) {
		fprintf(stderr, "pfs-gen: EAL: %s\n", rte_strerror(rte_errno));
		return -EINVAL;
	}
	if (!rte_eth_dev_is_valid_port(o->port)) {
		fprintf(stderr, "pfs-gen: no DPDK port %u (give one with --eal \"--vdev ...\")\n",
			o->port);
		rc = -ENODEV;
		goto out_eal;
	}
	for (uint32_t i = 0; i < nframes; i++)
		maxlen = lens[i] > maxlen ? lens[i] : maxlen;
	pool = rte_pktmbuf_pool_create("gen_pool", nframes + 2 * TX_DESC + RX_DESC + 1024, 0, 0,
				       (uint16_t)(RTE_PKTMBUF_HEADROOM +
						  RTE_MAX(maxlen, (uint16_t)RTE_MBUF_DEFAULT_DATAROOM)),
				       (int)rte_socket_id());
	m = calloc(nframes, sizeof(*m));
	if (!pool || !m) {
		fprintf(stderr, "pfs-gen: mbufs for %u frames: %s\n", nframes, rte_strerror(rte_errno));
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = frames_load(pool, frames, lens, nframes, m)) < 0)
		goto out;
	port_set_up = true;     /* even a failed start may have opened the PMD's sockets */
	if ((rc = port_start(o->port, pool)) < 0)
		goto out;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!link_wait(o->port, true, o->seconds > 0 ? o->seconds : PEER_WAIT_S, true)) {
		fprintf(stderr, "pfs-gen: port %u: link never came up (no peer?)\n", o->port);
		rc = -ENOTCONN;
		goto out_port;
	}
	intr_thread_drain(PEER_WAIT_S);        /* the connect handler too has returned */
	fprintf(stderr, "%s\n", GEN_TX_SENDING);
	fflush(stderr);
	send_loop(o->port, m, nframes, o, st);
	/* A peer that goes away now (memif) must find us not polling; links
	 * that never go down (net_pcap) just wait the bound out, so only when
	 * told to stop, which is what a harness does before stopping the peer. */
	if (gen_stop) {
		/* The harness waits for this line before it stops the peer. */
		fprintf(stderr, "%s\n%s %llu\n", GEN_TX_STOPPED, GEN_TX_SENT,
			(unsigned long long)st->frames);
		fflush(stderr);
		if (link_wait(o->port, false, PEER_WAIT_S, false) && !intr_thread_drain(PEER_WAIT_S))
			fprintf(stderr, "pfs-gen: EAL's interrupt thread did not answer; "
				"stopping the port anyway\n");
	}
	if (rte_eth_stats_get(o->port, &es) == 0)
		st->port_opackets = es.opackets;
	rc = 0;
out_port:
	rte_eth_dev_stop(o->port);
	rte_eth_dev_close(o->port);
out:
	if (m)
		for (uint32_t i = 0; i < nframes; i++)
			rte_pktmbuf_free(m[i]);
	free(m);
	rte_mempool_free(pool);
out_eal:
	/* Once a port was set up, EAL is left to the process exit that
	 * follows: DPDK 22.11's rte_eal_cleanup() unmaps EAL memory while the
	 * interrupt thread still runs, and memif's close frees its listener's
	 * interrupt handle without unregistering it, so a wake-up of that
	 * thread during cleanup read unmapped memory (crashed pfs-gen at exit,
	 * about one run in 20 under load). Close above already removed the
	 * listener's socket file and flushed any pcap. */
	if (!port_set_up)
		rte_eal_cleanup();
	return rc;
}
