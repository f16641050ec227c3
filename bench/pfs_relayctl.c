/* pfs_relayctl.c - pfs-relayctl: drive a pfs-dataplane with a fixed fan-out
 * table instead of pfs-control, and measure it (bench/RESULTS.md).
 *
 *   pfs-relayctl --segment PATH [--model M] [--path P] [--chunk-size N]
 *                [--file-size BYTES] [--children N] [--from IP] [--self IP]
 *                [--warmup S] [--seconds S] [--until-chunks N] [--timeout S]
 *                [--verify CONTENT] [--hash-cycles] [--echo]
 *   pfs-relayctl --shard-paths W [--model M]
 *
 * It plays the control process's part for one hierarchy the dataplane is a
 * member of: lays out the segment, makes the cache entry and reserves the
 * whole file, sends CONFIG and a FANOUT table with N children (10.99.1.1..N,
 * port 4051), and drains what the dataplane reports. pfs-gen's defaults
 * match its own, so a trace of pfs-gen is relayed as is. --path may be
 * given up to 8 times: one hierarchy each, the same children (a dataplane
 * with several workers, one trace per RX queue).
 *
 * --shard-paths W prints W file paths, one per line, the first whose
 * hierarchy worker w of a W-worker dataplane owns (dataplane/shard.h):
 * traces that keep every worker busy, or none on its own queue.
 *
 * Measuring: --seconds S after --warmup W takes two snapshots of the
 * dataplane's counters and prints the rates between them as one JSON line:
 * chunks in and packets out per second, payload Gbit/s, TSC cycles per chunk
 * (cycles = TSC Hz x seconds x the dataplane's polling workers). With
 * --until-chunks it waits until that many chunks were relayed and prints the
 * totals instead (tests). Exits 1 if the dataplane never came or the time
 * ran out.
 *
 * --verify CONTENT: the chunks are signed (CONTENT holds the file's bytes,
 * pfs-gen --content): their digests go into the cache as control would put
 * a verified manifest's, and the table asks the dataplane to check every
 * chunk against them. --hash-cycles: also time the digest of one chunk
 * alone, with the dataplane's own code (dataplane/verify.c), in the same
 * run, as TSC cycles ("hash_cycles").
 *
 * --check-cache CONTENT: once the chunks are relayed, read the first path's
 * file back from the cache as pfs-control does and count its chunks that
 * are CONTENT's (cache_same), that are not (cache_differ), and that are kept
 * in the frames they came in (cache_kept). --check-path P: the file of path
 * P instead, which this run does not relay (one an earlier run left in the
 * cache: a restarted dataplane must not receive into its frames).
 *
 * --drop-wait: then drop the relayed files and report the frames the
 * dataplane still holds 3 s later at most (frames_after_drop: 0).
 *
 * --echo: every datagram the dataplane hands to "control" is sent back to
 * its sender, and once to the broadcast address, through the dataplane's
 * own path for control's datagrams (tests: the VLAN tags they go out with).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pfs_cache.h"
#include "pfs_codec.h"
#include "pfs_dp_stats.h"
#include "pfs_shm.h"
#include "pfs_wire.h"
#include "shard.h"
#include "verify.h"
#include "relayctl.h"

volatile sig_atomic_t rc_stop;

static void on_signal(int sig) { (void)sig; rc_stop = 1; }

double rc_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: pfs-relayctl --segment PATH [--model M] [--path P] [--chunk-size N]\n"
		   "         [--file-size BYTES] [--children N] [--from IP] [--self IP]\n"
		   "         [--warmup S] [--seconds S] [--until-chunks N] [--timeout S]\n"
		   "         [--verify CONTENT] [--hash-cycles] [--echo] [--frames N]\n"
		   "         [--check-cache CONTENT [--check-path P]] [--drop-wait]\n"
		   "       pfs-relayctl --shard-paths W [--model M]\n");
}

static int num(const char *s, const char *name, double lo, double hi, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	if (errno || *end || end == s || *v < lo || *v > hi) {
		fprintf(stderr, "pfs-relayctl: --%s: '%s' is not a number in %g..%g\n", name, s, lo,
			hi);
		return -1;
	}
	return 0;
}

static int ip(const char *s, const char *name, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1) {
		fprintf(stderr, "pfs-relayctl: --%s: '%s' is not an IPv4 address\n", name, s);
		return -1;
	}
	*out = ntohl(a.s_addr);
	return 0;
}

static int parse_args(struct rc_opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "segment", required_argument, NULL, 'g' }, { "model", required_argument, NULL, 'm' },
		{ "path", required_argument, NULL, 'p' }, { "chunk-size", required_argument, NULL, 'c' },
		{ "file-size", required_argument, NULL, 'f' }, { "children", required_argument, NULL, 'n' },
		{ "from", required_argument, NULL, 'F' }, { "self", required_argument, NULL, 'S' },
		{ "warmup", required_argument, NULL, 'w' }, { "seconds", required_argument, NULL, 's' },
		{ "until-chunks", required_argument, NULL, 'u' },
		{ "timeout", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
		{ "verify", required_argument, NULL, 'V' }, { "hash-cycles", no_argument, NULL, 'H' },
		{ "echo", no_argument, NULL, 'E' }, { "frames", required_argument, NULL, 'R' },
		{ "check-cache", required_argument, NULL, 'K' },
		{ "check-path", required_argument, NULL, 'P' },
		{ "drop-wait", no_argument, NULL, 'D' },
		{ "shard-paths", required_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 },
	};
	double v;
	int opt;

	*o = (struct rc_opts){ .model = "CP-7961G", .path = "fw/bench.bin",
			       .chunk_size = PFS_CHUNK_DEFAULT, .children = 2, .from = 0x0a630001,
			       .self = 0x0a630002, .file_size = 1 << 20, .warmup = 1, .seconds = 3,
			       .timeout = 60, .frames = -1 };
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'g': o->segment = optarg; break;
		case 'm': o->model = optarg; break;
		case 'p':
			if (o->npaths == RC_PATHS) {
				fprintf(stderr, "pfs-relayctl: at most %d --path\n", RC_PATHS);
				return -1;
			}
			o->path = o->paths[o->npaths++] = optarg;
			break;
		case 'W': if (num(optarg, "shard-paths", 1, 64, &v) < 0) return -1;
			o->shard_paths = (unsigned)v; break;
		case 'F': if (ip(optarg, "from", &o->from) < 0) return -1; break;
		case 'S': if (ip(optarg, "self", &o->self) < 0) return -1; break;
		case 'c': if (num(optarg, "chunk-size", 1, PFS_CHUNK_MAX, &v) < 0) return -1;
			o->chunk_size = (uint32_t)v; break;
		case 'f': if (num(optarg, "file-size", 1, 1e10, &v) < 0) return -1;
			o->file_size = (uint64_t)v; break;
		case 'n': if (num(optarg, "children", 1, PFS_FANOUT_SLOTS, &v) < 0) return -1;
			o->children = (uint32_t)v; break;
		case 'u': if (num(optarg, "until-chunks", 1, 1e12, &v) < 0) return -1;
			o->until_chunks = (uint64_t)v; break;
		case 'w': if (num(optarg, "warmup", 0, 3600, &o->warmup) < 0) return -1; break;
		case 's': if (num(optarg, "seconds", 0.1, 3600, &o->seconds) < 0) return -1; break;
		case 't': if (num(optarg, "timeout", 0.1, 3600, &o->timeout) < 0) return -1; break;
		case 'V': o->verify = optarg; break;
		case 'K': o->check_cache = optarg; break;
		case 'P': o->check_path = optarg; break;
		case 'D': o->drop_wait = true; break;
		case 'H': o->hash_cycles = true; break;
		case 'E': o->echo = true; break;
		case 'R': if (num(optarg, "frames", 0, 1 << 20, &v) < 0) return -1;
			o->frames = (int64_t)v; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (!o->npaths)
		o->paths[o->npaths++] = o->path;
	o->path = o->paths[0];
	if (o->verify && o->npaths > 1) {
		fprintf(stderr, "pfs-relayctl: --verify takes one --path\n");
		return -1;
	}
	if (o->shard_paths)
		return 0;
	if (!o->segment || optind != argc) {
		fprintf(stderr, "pfs-relayctl: %s\n", o->segment ? "unexpected argument" :
							       "--segment is required");
		return -1;
	}
	return 0;
}

/* A datagram handed to us back to its sender, and once broadcast. */
static void echo(struct pfs_shm *s, const struct pfs_ring_msg *rx, struct rc_counts *n)
{
	struct pfs_ring_msg m = *rx;

	m.type = PFS_RMSG_PFS_TX;
	for (int bcast = 0; bcast < 2; bcast++) {
		m.flags = bcast ? PFS_RMSG_F_BCAST : 0;
		if (pfs_shm_send(s, &m) < 0)
			fprintf(stderr, "pfs-relayctl: ring full, echo lost\n");
		else
			n->echoes++;
	}
}

static void drain(const struct rc_opts *o, struct pfs_shm *s, struct rc_counts *n)
{
	struct pfs_ring_msg m[32];
	unsigned k;

	while ((k = pfs_shm_recv_burst(s, m, 32)) > 0) {
		for (unsigned i = 0; i < k; i++) {
			if (m[i].type == PFS_RMSG_CHUNKS_STORED) {
				n->reports++;
				n->reported_chunks += (uint32_t)m[i].value;
			} else {
				n->to_control++;
				if (o->echo && m[i].type == PFS_RMSG_PFS_RX)
					echo(s, &m[i], n);
			}
		}
	}
}

/* TSC cycles of one chunk's digest, the dataplane's code, median of 9. */
static double hash_cycles(uint32_t len)
{
	struct dp_verifier *v = dp_verifier_new();
	uint8_t *buf = calloc(1, len), out[PFS_MAN_DIGEST_LEN];
	double best[9];

	if (!v || !buf) {
		dp_verifier_free(v);
		free(buf);
		return 0;
	}
	for (int r = 0; r < 9; r++) {
		uint64_t t0 = __builtin_ia32_rdtsc();
		for (int i = 0; i < 2000; i++) {
			buf[0] = (uint8_t)i;
			dp_digest(v, buf, len, out);
		}
		best[r] = (double)(__builtin_ia32_rdtsc() - t0) / 2000;
	}
	for (int i = 0; i < 9; i++)             /* insertion sort, 9 values */
		for (int j = i; j > 0 && best[j] < best[j - 1]; j--) {
			double t = best[j]; best[j] = best[j - 1]; best[j - 1] = t;
		}
	dp_verifier_free(v);
	free(buf);
	return best[4];
}

/* One hierarchy: its cache file, its digests, its fan-out table. */
static int setup_hier(const struct rc_opts *o, const char *path, struct pfs_shm *s,
		      struct pfs_cache *cache)
{
	uint64_t hier = pfs_hier_key(o->model, strlen(o->model), path, strlen(path));
	struct pfs_ring_msg fan = { .type = PFS_RMSG_FANOUT, .hier = hier, .value = 1 };
	struct pfs_rmsg_fanout *t = (void *)fan.data;
	int fi, rc;

	fi = pfs_cache_create(cache, hier, o->model, path, o->chunk_size);
	if (fi < 0 || (rc = pfs_cache_reserve(cache, fi, o->file_size)) < 0) {
		fprintf(stderr, "pfs-relayctl: cache: cannot hold %llu bytes: %s\n",
			(unsigned long long)o->file_size, strerror(fi < 0 ? -fi : -rc));
		return -1;
	}
	fan.slot = (uint32_t)fi;
	fan.len = sizeof(*t);
	if (o->verify) {
		int dfi;
		if (rc_put_digests(o, cache, &dfi) < 0)
			return -1;
		t->flags = PFS_FANOUT_VERIFY;
		t->digests_fi = (uint32_t)dfi;
		t->digests_off = 0;
		t->digests_gen = pfs_cache_file(cache, dfi)->gen;
	}
	t->parent_ip = o->from;
	t->parent_port = PFS_PORT;
	t->chunk_size = o->chunk_size;
	t->generation = 1;
	for (uint32_t i = 0; i < o->children; i++) {
		t->child[i].ip = 0x0a630100 + i + 1;    /* 10.99.1.(i+1) */
		t->child[i].port = PFS_PORT;
	}
	if (pfs_shm_send(s, &fan) < 0) {
		fprintf(stderr, "pfs-relayctl: ring full\n");
		return -1;
	}
	return 0;
}

static int setup(const struct rc_opts *o, struct pfs_shm *s, struct pfs_cache *cache)
{
	struct pfs_ring_msg cfg = { .type = PFS_RMSG_CONFIG, .ip = o->self,
				    .slot = o->self | 0xff, .value = o->self, .port = PFS_PORT };

	if (pfs_shm_send(s, &cfg) < 0) {
		fprintf(stderr, "pfs-relayctl: ring full\n");
		return -1;
	}
	for (unsigned i = 0; i < o->npaths; i++)
		if (setup_hier(o, o->paths[i], s, cache) < 0)
			return -1;
	return 0;
}

/* W paths, the first of "fw/bench-K.bin" that worker w owns, for each w. */
static int print_shard_paths(const struct rc_opts *o)
{
	for (unsigned w = 0; w < o->shard_paths; w++)
		for (unsigned k = 0;; k++) {
			char path[64];
			snprintf(path, sizeof(path), "fw/bench-%u.bin", k);
			if (dp_shard(pfs_hier_key(o->model, strlen(o->model), path, strlen(path)),
				  o->shard_paths) == w) {
				printf("%s\n", path);
				break;
			}
		}
	return 0;
}

static int wait_dataplane(const struct rc_opts *o, struct pfs_shm *s,
			  const struct pfs_dp_stats *st, double deadline)
{
	while (!rc_stop && rc_now_s() < deadline) {
		struct pfs_shm_side_info p;
		pfs_shm_peer(s, &p);
		if (p.pid && st->magic == PFS_DP_STATS_MAGIC && st->from_control >= 1 + o->npaths)
			return 0;
		pfs_shm_beat(s, (uint64_t)(rc_now_s() * 1e9));
		usleep(10000);
	}
	fprintf(stderr, "pfs-relayctl: no dataplane took the configuration\n");
	return -1;
}

static void print_totals(const struct pfs_dp_stats *st, const struct rc_counts *n)
{
	const struct { const char *name; uint64_t v; } f[] = {
#define S(k) { #k, st->k }
		S(fanout_chunks), S(fanout_tx), S(tx_chunks), S(tx_chained), S(tx_bad_iova),
		S(fanout_reused), S(rx_pkts), S(rx_bad_crc), S(rx_bad_csum), S(rx_ttl),
		S(rx_not_pfs), S(rx_malformed), S(rx_tagged), S(neighbours), S(mbuf_drops),
		S(tx_drops), S(tx_pkts), S(tx_retries), S(fanout_verified), S(fanout_bad_digest),
		S(rx_handoff), S(handoff_drops), S(workers), S(fanout_tables), S(fanout_kept),
		S(frames_held),
#undef S
		{ "reports", n->reports }, { "reported_chunks", n->reported_chunks },
		{ "to_control", n->to_control }, { "echoes", n->echoes }, { "tx_ctrl", st->tx_ctrl },
		{ "cache_same", n->cache_same }, { "cache_differ", n->cache_differ },
		{ "cache_kept", n->cache_kept }, { "frames_after_drop", n->frames_after_drop },
		{ "digests_held", n->digests_held },
		{ "digests_held_after_delete", n->digests_held_after_delete },
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		printf("%s\"%s\": %llu", i ? ", " : "{", f[i].name, (unsigned long long)f[i].v);
	printf("}\n");
}

/* Sleep in short steps, beating and draining, until t or a stop. */
static void tend_until(const struct rc_opts *o, struct pfs_shm *s, struct rc_counts *n,
		       double t)
{
	while (!rc_stop && rc_now_s() < t) {
		pfs_shm_beat(s, (uint64_t)(rc_now_s() * 1e9));
		drain(o, s, n);
		usleep(2000);
	}
}

/* --verify, one path: its table deleted, what the dataplane still holds on
 * the digests once it has taken the deletion (0: given back). */
static uint64_t digests_after_delete(const struct rc_opts *o, struct pfs_shm *s,
				     struct pfs_cache *cache, const struct pfs_dp_stats *st,
				     struct rc_counts *n)
{
	struct pfs_ring_msg del = {
		.type = PFS_RMSG_FANOUT, .flags = PFS_RMSG_F_DELETE,
		.hier = pfs_hier_key(o->model, strlen(o->model), o->path, strlen(o->path)),
	};
	double deadline = rc_now_s() + o->timeout;

	if (o->npaths != 1 || pfs_shm_send(s, &del) < 0)
		return UINT64_MAX;
	while (!rc_stop && st->fanout_tables && rc_now_s() < deadline)
		tend_until(o, s, n, rc_now_s() + 0.002);
	return st->fanout_tables ? UINT64_MAX : rc_digests_held(o, cache);
}

static int measure(const struct rc_opts *o, struct pfs_shm *s, const struct pfs_dp_stats *st,
		   struct rc_counts *n)
{
	struct pfs_dp_stats a, b;
	double t0, t1, dt;

	tend_until(o, s, n, rc_now_s() + o->warmup);
	a = *st;
	t0 = rc_now_s();
	tend_until(o, s, n, t0 + o->seconds);
	b = *st;
	t1 = rc_now_s();
	dt = t1 - t0;
	if (rc_stop || b.fanout_chunks == a.fanout_chunks) {
		fprintf(stderr, "pfs-relayctl: no chunk relayed while measuring\n");
		return -1;
	}
	double in = (double)(b.fanout_chunks - a.fanout_chunks) / dt;
	double out = (double)(b.tx_chunks - a.tx_chunks) / dt;
	uint64_t workers = b.workers ? b.workers : 1;
	printf("{\"children\": %u, \"chunk_size\": %u, \"seconds\": %.3f, \"workers\": %llu, "
	       "\"hierarchies\": %u, \"rx_handoff\": %llu, \"chunks_in_per_s\": %.0f, \"pkts_out_per_s\": %.0f, \"payload_gbit_s\": %.3f, "
	       "\"cycles_per_chunk\": %.0f, \"mbuf_drops\": %llu, \"tx_drops\": %llu, "
	       "\"rx_bad_crc\": %llu, \"reports\": %llu, \"reported_chunks\": %llu, "
	       "\"verified\": %llu, \"bad_digest\": %llu, \"hash_cycles\": %.0f, "
	       "\"kept\": %llu}\n",
	       o->children, o->chunk_size, dt, (unsigned long long)workers, o->npaths,
	       (unsigned long long)(b.rx_handoff - a.rx_handoff), in, out,
	       out * o->chunk_size * 8 / 1e9, in > 0 ? (double)(b.tsc_hz * workers) / in : 0.0,
	       (unsigned long long)(b.mbuf_drops - a.mbuf_drops),
	       (unsigned long long)(b.tx_drops - a.tx_drops),
	       (unsigned long long)(b.rx_bad_crc - a.rx_bad_crc),
	       (unsigned long long)n->reports, (unsigned long long)n->reported_chunks,
	       (unsigned long long)(b.fanout_verified - a.fanout_verified),
	       (unsigned long long)(b.fanout_bad_digest - a.fanout_bad_digest),
	       o->hash_cycles ? hash_cycles(o->chunk_size) : 0.0,
	       (unsigned long long)b.fanout_kept);      /* since the start: chunks kept */
	return 0;
}

int main(int argc, char **argv)
{
	struct rc_opts o;
	struct pfs_shm_params p = { .ring_count = 4096 };
	struct pfs_shm *s = NULL;
	struct pfs_cache *cache = NULL;
	struct rc_counts n = { 0 };
	const struct pfs_dp_stats *st;
	uint64_t bytes;
	int rc, status = 1;

	if (parse_args(&o, argc, argv) < 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (o.shard_paths)
		return print_shard_paths(&o);
	/* Room for the files, rounded to extents (and their chunk maps), plus
	 * the cache's own tables; and frames for the dataplane to receive into,
	 * enough to keep every chunk (each worker's RX ring, one per path when
	 * there are several, takes 4096 more at most). */
	if (o.frames < 0)
		o.frames = (int64_t)((o.file_size + o.chunk_size - 1) / o.chunk_size * o.npaths) +
			   4096 * (int64_t)o.npaths;
	p.cache_bytes = (o.file_size / PFS_CACHE_EXTENT + 5) * PFS_CACHE_EXTENT * o.npaths +
			(8u << 20) + (uint64_t)o.frames * PFS_CACHE_FRAME;
	if ((rc = pfs_shm_attach(o.segment, PFS_SHM_CONTROL, &p, &s)) < 0) {
		fprintf(stderr, "pfs-relayctl: segment %s: %s\n", o.segment, strerror(-rc));
		return 1;
	}
	void *region = pfs_shm_cache(s, &bytes);
	if ((rc = pfs_cache_open(region, bytes, (uint32_t)o.frames, true, &cache)) < 0) {
		fprintf(stderr, "pfs-relayctl: cache: %s\n", strerror(-rc));
		goto out;
	}
	st = pfs_shm_stats(s);
	pfs_shm_beat(s, (uint64_t)(rc_now_s() * 1e9));
	if (setup(&o, s, cache) < 0 || wait_dataplane(&o, s, st, rc_now_s() + o.timeout) < 0)
		goto out;
	if (o.until_chunks) {
		double deadline = rc_now_s() + o.timeout;
		/* Until the chunks are relayed, their reports read, and the
		 * echoes sent: each is an event the counters show. */
		while (!rc_stop && (st->fanout_chunks < o.until_chunks ||
				 n.reported_chunks < st->fanout_chunks || st->tx_ctrl < n.echoes) &&
		       rc_now_s() < deadline)
			tend_until(&o, s, &n, rc_now_s() + 0.002);
		if (o.check_cache && rc_check_cache(&o, cache, &n) < 0)
			goto out;
		n.frames_after_drop = UINT64_MAX;
		n.digests_held = o.verify ? rc_digests_held(&o, cache) : UINT64_MAX;
		n.digests_held_after_delete = o.verify ? digests_after_delete(&o, s, cache, st, &n)
						       : UINT64_MAX;
		if (o.drop_wait)
			rc_drop_wait(&o, cache, st, &n);
		print_totals(st, &n);
		status = st->fanout_chunks >= o.until_chunks && st->tx_ctrl >= n.echoes ? 0 : 1;
		if (status)
			fprintf(stderr, "pfs-relayctl: %llu of %llu chunks relayed, %llu of %llu "
				"datagrams sent\n", (unsigned long long)st->fanout_chunks,
				(unsigned long long)o.until_chunks, (unsigned long long)st->tx_ctrl,
				(unsigned long long)n.echoes);
	} else {
		status = measure(&o, s, st, &n) < 0 ? 1 : 0;
	}
out:
	pfs_cache_close(cache);
	pfs_shm_detach(s);
	return status;
}
