/* main.c - pfs-dataplane: command line, EAL, init chain and the poll loop.
 *
 *   pfs-dataplane [EAL options] -- [--segment PATH] [--port N]
 *                 [--child-rate MBIT] [--child-burst N] [--no-zero-copy]
 *                 [--no-crc-check] [--no-local-fanout] [--max-frame BYTES]
 *                 [--force-zero-copy] [--copybreak BYTES] [--no-rx-reuse]
 *                 [--idle-sleep-us US] [--no-csum-check] [--vlan VID[.VID]]
 *                 [--tx-retry-us US] [--no-tx-csum-offload] [--workers N]
 *                 [--log-json] [--log-level LEVEL]
 *
 * The port comes from EAL: on the appliance,
 *   --vdev net_af_xdp0,iface=IFACE,xdp_prog=.../pfs_steer.bpf.o
 * (docs/appliance.md 2). The shared segment is laid out by pfs-control; we
 * wait for it, and re-attach is just a restart of this process.
 */
#include <errno.h>
#include <getopt.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dp.h"
#include "pfs_clock.h"
#include "pfs_log.h"
#include "pfs_sd.h"
#include "verify.h"

volatile bool dp_stop;

static void on_signal(int sig)
{
	(void)sig;
	dp_stop = true;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: pfs-dataplane [EAL options] -- [--segment PATH] [--port N]\n"
		   "         [--child-rate MBIT] [--child-burst N] [--no-zero-copy]\n"
		   "         [--no-crc-check] [--no-local-fanout] [--max-frame BYTES]\n"
		   "         [--force-zero-copy] [--copybreak BYTES] [--no-rx-reuse] [--no-rx-keep]\n"
		   "         [--idle-sleep-us US] [--no-csum-check] [--vlan VID[.VID]]\n"
		   "         [--tx-retry-us US] [--no-tx-csum-offload] [--workers N]\n"
		   "         [--log-json] [--log-level LEVEL]\n"
		   "  --segment PATH    shared segment of pfs-control (default /dev/shm/pfs-relay)\n"
		   "  --port N          DPDK port to serve (default 0)\n"
		   "  --child-rate MBIT pace each child to this rate (default 0: the window only)\n"
		   "  --child-burst N   chunks per child per loop (default 8)\n"
		   "  --no-zero-copy    copy payloads even where the port chains mbufs\n"
		   "  --no-crc-check    do not check received chunks' CRC32C nor UDP checksums\n"
		   "                    (benchmarks)\n"
		   "  --no-csum-check   do not check received UDP checksums: for senders whose\n"
		   "                    virtual NICs leave partial ones (TX checksum offload on\n"
		   "                    veth or virtio: counted as rx_bad_csum otherwise)\n"
		   "  --no-local-fanout send every received chunk through pfs-control\n"
		   "  --max-frame BYTES largest frame, for chunks above 1408 bytes (default 1518)\n"
		   "  --force-zero-copy chain payloads even where the port does not announce\n"
		   "                    multi-segment TX (net_pcap linearises them; tests)\n"
		   "  --copybreak BYTES copy, not chain, a chunk's payloads when the copies\n"
		   "                    add up to at most BYTES (default 4096; 0: always chain)\n"
		   "  --no-rx-reuse     build every copy; by default a received chunk's frame\n"
		   "                    is sent on to the first child (not on net_af_xdp)\n"
		   "  --no-rx-keep      copy every chunk from a parent into the cache; by\n"
		   "                    default the port receives into the cache's frames and\n"
		   "                    a chunk stays in the frame it came in (not on net_af_xdp)\n"
		   "  --idle-sleep-us US after %d loops with nothing to do, sleep US\n"
		   "                    microseconds per loop until work comes (default 0:\n"
		   "                    busy-poll the core; for a host whose cores are shared)\n"
		   "  --vlan VID[.VID]  VLAN tags of broadcasts and of frames to devices not\n"
		   "                    heard yet: VID (802.1Q) or OUTER.INNER (802.1ad, 802.1Q);\n"
		   "                    frames to a device carry the tags its own came with\n"
		   "  --tx-retry-us US  how long a full TX ring is tried again before the\n"
		   "                    frames left are dropped, counted per child and repaired\n"
		   "                    by the protocol (default %d, 0..10000)\n"
		   "  --no-tx-csum-offload compute IPv4 and UDP checksums here even where\n"
		   "                    the port offers to (benchmarks, tests)\n"
		   "  --workers N       poll N lcores (the first N of -l), each with its own RX\n"
		   "                    and TX queue; hierarchies are shared out among them\n"
		   "                    (default 1, at most %d)\n"
		   "  --fault-drop-outbox N  tests: drop the first N messages the workers\n"
		   "                    other than 0 pass to worker 0, as a full ring would\n"
		   "  --log-json        log one JSON object a line (DPDK's and libbpf's\n"
		   "                    messages too)\n"
		   "  --log-level LEVEL err, warning, info (default) or debug\n",
		   DP_IDLE_LOOPS, DP_TX_RETRY_US, DP_MAX_WORKERS);
}

static int parse_args(struct dp_opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "segment", required_argument, NULL, 's' },
		{ "port", required_argument, NULL, 'p' },
		{ "child-rate", required_argument, NULL, 'r' },
		{ "child-burst", required_argument, NULL, 'b' },
		{ "no-zero-copy", no_argument, NULL, 'z' },
		{ "no-crc-check", no_argument, NULL, 'c' },
		{ "no-csum-check", no_argument, NULL, 'u' },
		{ "no-local-fanout", no_argument, NULL, 'f' },
		{ "max-frame", required_argument, NULL, 'M' },
		{ "force-zero-copy", no_argument, NULL, 'Z' },
		{ "copybreak", required_argument, NULL, 'C' },
		{ "no-rx-reuse", no_argument, NULL, 'R' },
		{ "no-rx-keep", no_argument, NULL, 'K' },
		{ "idle-sleep-us", required_argument, NULL, 'I' },
		{ "vlan", required_argument, NULL, 'V' },
		{ "tx-retry-us", required_argument, NULL, 'T' },
		{ "fault-drop-outbox", required_argument, NULL, 'F' },
		{ "no-tx-csum-offload", no_argument, NULL, 'O' },
		{ "workers", required_argument, NULL, 'W' },
		{ "log-json", no_argument, NULL, 'J' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	char *end;
	unsigned long v;

	o->segment = "/dev/shm/pfs-relay";
	o->child_burst = 8;
	o->max_frame = 1518;
	o->copybreak = DP_COPYBREAK;
	o->tx_retry_us = DP_TX_RETRY_US;
	o->workers = 1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's': o->segment = optarg; break;
		case 'z': o->no_zero_copy = true; break;
		case 'c': o->no_crc_check = true; break;
		case 'u': o->no_csum_check = true; break;
		case 'Z': o->force_zero_copy = true; break;
		case 'f': o->no_local_fanout = true; break;
		case 'R': o->no_rx_reuse = true; break;
		case 'K': o->no_rx_keep = true; break;
		case 'O': o->no_tx_csum = true; break;
		case 'J': o->log_json = true; break;
		case 'L':
			if ((o->log_level = pfs_log_level_parse(optarg)) < 0) {
				pfs_log(PFS_LOG_ERR, "bad value '%s' for --log-level (err, warning, "
					"info, debug)", optarg);
				return -1;
			}
			break;
		case 'V':
			if (dp_vlan_parse(optarg, &o->vlan) < 0) {
				pfs_log(PFS_LOG_ERR, "bad value '%s' for --vlan (VID or "
					"OUTER.INNER, VIDs 1..4094)", optarg);
				return -1;
			}
			break;
		case 'p': case 'r': case 'b': case 'M': case 'C': case 'I': case 'T': case 'W':
		case 'F':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg || (opt == 'p' && v >= RTE_MAX_ETHPORTS) ||
			    (opt == 'b' && (v == 0 || v > 64)) || (opt == 'r' && v > 1000000) ||
			    (opt == 'M' && (v < 1518 || v > 9728)) || (opt == 'C' && v > 1048576) ||
			    ((opt == 'I' || opt == 'T') && v > 10000) || (opt == 'F' && v > 1000000) ||
			    (opt == 'W' && (v == 0 || v > DP_MAX_WORKERS))) {
				pfs_log(PFS_LOG_ERR, "bad value '%s' for --%s", optarg,
					opt == 'p' ? "port" : opt == 'r' ? "child-rate" :
					opt == 'b' ? "child-burst" : opt == 'C' ? "copybreak (0..1048576)" :
					opt == 'I' ? "idle-sleep-us (0..10000)" :
					opt == 'T' ? "tx-retry-us (0..10000)" :
					opt == 'W' ? "workers (1..16)" :
					opt == 'F' ? "fault-drop-outbox (0..1000000)" :
					"max-frame (1518..9728)");
				return -1;
			}
			if (opt == 'p')
				o->port_id = (uint16_t)v;
			else if (opt == 'r')
				o->child_rate_bps = (uint64_t)v * 1000000;
			else if (opt == 'b')
				o->child_burst = (uint32_t)v;
			else if (opt == 'C')
				o->copybreak = (uint32_t)v;
			else if (opt == 'I')
				o->idle_sleep_us = (uint32_t)v;
			else if (opt == 'T')
				o->tx_retry_us = (uint32_t)v;
			else if (opt == 'W')
				o->workers = (uint32_t)v;
			else if (opt == 'F')
				o->fault_drop_outbox = (uint32_t)v;
			else
				o->max_frame = (uint32_t)v;
			break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (optind != argc) {
		pfs_log(PFS_LOG_ERR, "unexpected argument '%s'", argv[optind]);
		return -1;
	}
	return 0;
}

/* Adopt the layout pfs-control made; wait for it (bounded by signals). */
static int attach_segment(struct dp *d)
{
	const struct pfs_shm_params adopt = { 0 };
	uint64_t bytes;
	void *region;
	int rc, waited = 0;

	while ((rc = pfs_shm_attach(d->o.segment, PFS_SHM_DATAPLANE, &adopt, &d->shm)) == -ENOENT &&
	       !dp_stop) {
		if (waited++ == 0)
			pfs_log(PFS_LOG_INFO, "waiting for pfs-control to create %s", d->o.segment);
		usleep(100000);
	}
	if (rc < 0) {
		if (!dp_stop)
			pfs_log(PFS_LOG_ERR, "segment %s: %s", d->o.segment, strerror(-rc));
		return rc;
	}
	region = pfs_shm_cache(d->shm, &bytes);
	while ((rc = pfs_cache_open(region, bytes, 0, false, &d->cache)) == -ENODATA && !dp_stop)
		usleep(100000);
	if (rc < 0) {
		pfs_shm_detach(d->shm);
		d->shm = NULL;
		return rc;
	}
	d->st = d->page = pfs_shm_stats(d->shm);
	memset(d->st, 0, sizeof(*d->st));
	d->st->workers = 1;
	d->st->magic = PFS_DP_STATS_MAGIC;
	d->st->tsc_hz = d->tsc_hz;
	d->st->started_ns = (uint64_t)pfs_mono_ns();
	return 0;
}

void dp_control_msg(struct dp *d, const struct pfs_ring_msg *m)
{
	switch (m->type) {
	case PFS_RMSG_CONFIG:
		/* Another run of pfs-control: what the last one queued goes,
		 * and only that (its ranges came before this). */
		if (d->configured && m->hier != d->ctl_gen)
			dp_tx_reset_children(d);
		d->ctl_gen = m->hier;
		d->ip = m->ip;
		d->bcast = m->slot;
		d->node_id = (uint32_t)m->value;
		d->pfs_port = m->port;
		d->configured = true;
		d->hdr_gen++;           /* every frame template names the old address */
		dp_fanout_reset(d);     /* a new control pushes its tables again */
		if (d->wid == 0)
			pfs_log(PFS_LOG_INFO, "configured: node %08x, %u.%u.%u.%u", d->node_id,
			        d->ip >> 24, (d->ip >> 16) & 255, (d->ip >> 8) & 255, d->ip & 255);
		break;
	case PFS_RMSG_PFS_TX:
		dp_tx_datagram(d, m);
		break;
	case PFS_RMSG_SEND_CHUNKS:
		dp_tx_queue_range(d, m);
		break;
	case PFS_RMSG_FANOUT:
		dp_fanout_update(d, m);
		break;
	default:
		break;
	}
}

/* Worker 0: pfs-control's messages, applied here or routed to the worker
 * they belong to (workers.c), as far as every inbox has room. */
static unsigned from_control(struct dp *d)
{
	struct pfs_ring_msg m[8];
	unsigned room = d->nworkers > 1 ? RTE_MIN(dp_workers_room(d->all), 8u) : 8u;
	unsigned n = room ? pfs_shm_recv_burst(d->shm, m, room) : 0;

	for (unsigned i = 0; i < n; i++) {
		if (d->nworkers > 1)
			dp_workers_route(d->all, &m[i], d->nworkers);
		else
			dp_control_msg(d, &m[i]);
	}
	d->st->from_control += n;
	return n;
}

/* Housekeeping every 100 ms: liveness, the frames whose chunk is gone, and
 * a control process that restarted (its old ranges mean nothing now). */
static void housekeeping(struct dp *d)
{
	static unsigned n;

	pfs_shm_beat(d->shm, (uint64_t)pfs_mono_ns());
	if (n++ % 10 == 0)              /* every second */
		dp_xdp_stats(d);
	if (!d->bell) {                 /* pfs-control's doorbell: until it has made it */
		char path[4096];
		snprintf(path, sizeof(path), "%s.bell", d->o.segment);
		d->bell = pfs_shm_bell_open(d->shm, path, false) == 0;
	}
	d->page->bell_rings = pfs_shm_bell_rings(d->shm);
	/* Queued ranges and fan-out tables of an earlier pfs-control are
	 * dropped by the new one's CONFIG, which comes before its own in the
	 * ring: not here, where we may already hold the new ones. */
	if (pfs_shm_peer_restarted(d->shm))
		pfs_log(PFS_LOG_INFO, "pfs-control (re)attached");
	/* A file entry a writer's new layout zeroed gets its count back
	 * (pfs_cache_hold takes none on it meanwhile). */
	pfs_cache_refs_init(d->cache, (void *)(uintptr_t)dp_ext_free, true);
	dp_frames_release(d);           /* frames whose chunk is gone */
}

/* The loop polls without pause, as a DPDK lcore does. With
 * --idle-sleep-us, a loop that found nothing DP_IDLE_LOOPS times in a row
 * sleeps (as l3fwd-power backs off): at a site's WAN pace chunks come every
 * half millisecond, and a busy-polled core is taken from everything else on
 * a host whose cores are shared (bench/RESULTS.md 3: two cores, 64 devices).
 * Worker 0 also carries the control link, the other workers' messages and
 * their counters (workers.c), and housekeeping. */
int dp_worker_main(void *arg)
{
	struct dp *d = arg;
	uint64_t next_hk = 0, hk_period = d->tsc_hz / 10;
	uint64_t next_fold = 0, fold_period = d->tsc_hz / 1000;
	uint32_t idle = 0;

	while (!dp_stop) {
		uint64_t before = d->st->rx_pkts + d->st->tx_chunks;
		uint64_t now = rte_rdtsc();
		unsigned work = 0;

		if (d->configured)      /* until then frames wait in the port's queue */
			work += dp_rx_burst(d);
		if (d->nworkers > 1)
			work += dp_rx_handoff(d);
		if (d->wid == 0) {
			work += from_control(d);
			if (d->nworkers > 1)
				work += dp_workers_forward(d->all);
		} else {
			work += dp_workers_inbox(d);
		}
		dp_tx_pump(d);
		dp_tx_flush(d);
		d->st->loops++;
		if (work || d->st->rx_pkts + d->st->tx_chunks != before) {
			d->st->busy_loops++;
			idle = 0;
		} else if (d->o.idle_sleep_us && ++idle >= DP_IDLE_LOOPS) {
			rte_delay_us_sleep(d->o.idle_sleep_us);
		}
		if (d->wid != 0)
			continue;
		if (d->nworkers > 1 && now >= next_fold) {
			dp_workers_fold_stats(d->all);
			next_fold = now + fold_period;
		}
		if (now >= next_hk) {
			housekeeping(d);
			next_hk = now + hk_period;
		}
	}
	dp_tx_flush(d);
	dp_fanout_release(d);   /* our tables' holds: not until the next dataplane */
	return 0;
}

/* The logger as our options after "--" set it, before EAL speaks: its
 * messages take the same form. parse_args() checks the options later. */
static void early_log(int argc, char **argv)
{
	struct pfs_log_opts lo = { .program = "pfs-dataplane" };
	int i = 1;

	while (i < argc && strcmp(argv[i], "--"))
		i++;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--log-json"))
			lo.json = true;
		else if (!strcmp(argv[i], "--log-level") && i + 1 < argc &&
			 pfs_log_level_parse(argv[i + 1]) > 0)
			lo.min = (enum pfs_log_level)pfs_log_level_parse(argv[i + 1]);
	}
	pfs_log_init(&lo);
}

int main(int argc, char **argv)
{
	static struct dp dp;
	static struct dp *workers[DP_MAX_WORKERS];
	struct dp *d = &dp;
	int rc, eal_args, status = 1;

	early_log(argc, argv);
	if (dp_log_libraries() < 0)
		pfs_log(PFS_LOG_WARNING, "DPDK's messages cannot be routed to the logger");
	eal_args = rte_eal_init(argc, argv);
	if (eal_args < 0) {
		pfs_log(PFS_LOG_ERR, "EAL: %s", rte_strerror(rte_errno));
		return 1;
	}
	argv[eal_args] = argv[0];
	if (parse_args(&d->o, argc - eal_args, argv + eal_args) < 0) {
		usage(stderr);
		rte_eal_cleanup();
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);       /* the doorbell's reader may be gone: EPIPE, not death */
	d->tsc_hz = rte_get_tsc_hz();
	if (!(d->verifier = dp_verifier_new())) {
		pfs_log(PFS_LOG_ERR, "OpenSSL SHA-256 unavailable");
		goto out_eal;
	}
	if (rte_lcore_count() < d->o.workers) {
		pfs_log(PFS_LOG_ERR, "--workers %u needs %u lcores, EAL has %u (-l)",
			d->o.workers, d->o.workers, rte_lcore_count());
		goto out_eal;
	}
	if ((rc = attach_segment(d)) < 0)
		goto out_eal;
	if ((rc = dp_port_init(d)) < 0)
		goto out_port;
	if ((rc = dp_workers_start(d, workers)) < 0)
		goto out_workers;
	if (dp_telemetry_init(workers, d->o.workers) < 0)
		pfs_log(PFS_LOG_ERR, "telemetry commands unavailable");
	pfs_log(PFS_LOG_INFO, "running on lcore %u%s", rte_lcore_id(),
		d->o.workers > 1 ? " (worker 0)" : "");
	/* The port is up and the segment attached: a Type=notify unit is started. */
	if ((rc = pfs_sd_notify("READY=1")) < 0)
		pfs_log(PFS_LOG_WARNING, "cannot tell systemd we are ready: %s", strerror(-rc));
	dp_worker_main(d);
	pfs_sd_notify("STOPPING=1");
	pfs_log(PFS_LOG_INFO, "stopping");
	status = 0;
out_workers:
	dp_stop = true;
	dp_workers_stop(workers, d->o.workers);
out_port:
	dp_port_close(d);
	pfs_cache_close(d->cache);
	pfs_shm_detach(d->shm);
out_eal:
	dp_verifier_free(d->verifier);
	rte_eal_cleanup();
	return status;
}
