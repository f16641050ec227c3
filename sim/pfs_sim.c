/* pfs_sim.c - pfs-sim: the real engine at site scale (bench/RESULTS.md, issue 4).
 *
 *   pfs-sim --devices N [--file-mb M] [--seed S] [--loss P] [--churn P] [--json]
 *           [--models K] [--wan-mbps R] [--lan-mbps R] [--latency-us U]
 *           [--chunk-kb C] [--listen-ms L] [--mode cut|store] [--limit-s T]
 *           [--appliance] [--appliance-mbps R] [--appliance-children K]
 *           [--appliance-quiet]
 *
 * N devices boot together on one broadcast domain, each wanting its model's
 * firmware file of M MB (K models, devices spread over them round-robin),
 * with their real PFS engines on netsim: every datagram is encoded and decoded
 * by the real codec, every decision is the engine's. The WAN to the TFTP
 * server is shared by all fetches; each device's LAN port serializes what it
 * sends. The simulation ends when every live device holds a verified file.
 *
 * Chunk granularity is coarser than on the wire: a simulated chunk stands for
 * --chunk-kb KiB (64 by default, 1408 bytes on the wire) and is timed as such
 * on links and WAN, but carries 64 real bytes, checked against the server's at
 * every write (simstore.h). Timers are the engine's defaults; the window and
 * ack spacing, which the engine counts in chunks, are scaled to the same bytes
 * as its defaults with 1408-byte chunks (180 KB in flight per child: 4 chunks
 * of 64 KiB), so that a sender queues no more ahead of its control messages
 * than a real one. Per-chunk overheads (acks, repairs) are still fewer than a
 * real run's; link time and the tree's pipeline are not.
 *
 * --churn P: each device independently joins late with probability P (boot at
 * a uniform time in [0, horizon)), and dies silently with probability P (at a
 * uniform time in [0, horizon)), horizon being the election plus the bound.
 * Dead devices do not count towards completion.
 *
 * --appliance: the site has a pfs-relay appliance as well (one per model
 * here, each with its own port; the real one serves every model from one):
 * class 8, a site relay (docs/protocol.md 4.4), with K child slots and an
 * R Mbit/s port, joining a hierarchy when a device first names it, as
 * pfs-control does. It is not counted among the devices. It beacons from
 * time 0, so the devices hold its beacon when they want the file (devices
 * told of new firmware while running); --appliance-quiet: no beacon, as
 * for devices that want the file the moment they boot (they claim, and
 * the appliance answers the first claim at once).
 *
 * Exit status: 0 when every live device completed, 2 when the time limit hit
 * first, 1 on bad arguments.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "netsim.h"
#include "simrand.h"

#define REAL_CHUNK 64u                  /* real payload bytes per simulated chunk */

struct sim_opts {
	uint64_t devices, file_mb, seed, models, chunk_kb, latency_us, listen_ms, limit_s;
	double loss, churn, wan_mbps, lan_mbps;
	double kill_root;               /* 0: no; else the roots die at that share of the bound */
	double down_from, down_s;       /* the server fails every fetch in [from, from + s) */
	enum pfs_mode mode;
	bool json, trace, appliance, appliance_quiet;
	double appliance_mbps;
	uint64_t appliance_children;
};

struct sim_result {
	uint64_t alive, completed, failed, late, killed;
	unsigned depth;
	double convergence_s, completion_s, bound_s, wall_s;
	uint64_t rss_delta;
	uint64_t chunks_retx, chunks_dup, queue_drops, parent_lost;
	double completion_p50_s;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pfs-sim --devices N [--file-mb M] [--seed S] [--loss P] [--churn P] [--json]\n"
		"               [--models K] [--wan-mbps R] [--lan-mbps R] [--latency-us U]\n"
		"               [--chunk-kb C] [--listen-ms L] [--mode cut|store] [--limit-s T]\n"
		"               [--trace] [--kill-root F] [--server-down AT,SECONDS]\n"
		"               [--appliance] [--appliance-mbps R] [--appliance-children K]\n"
		"               [--appliance-quiet]\n"
		"  --devices N      devices on the site, 1..1000000\n"
		"  --file-mb M      firmware file per model, MiB (default 8)\n"
		"  --seed S         seed of everything random (default 1)\n"
		"  --loss P         loss per datagram copy, 0..0.5 (default 0)\n"
		"  --churn P        share of devices joining late, and of devices dying (default 0)\n"
		"  --models K       models, one hierarchy and file each (default 1)\n"
		"  --wan-mbps R     WAN to the TFTP server, shared (default 20)\n"
		"  --lan-mbps R     each device's LAN port (default 100)\n"
		"  --latency-us U   one-way LAN latency (default 200)\n"
		"  --chunk-kb C     size a simulated chunk stands for, KiB (default 64)\n"
		"  --listen-ms L    engine's listen_window, 0 = the seed's claim-at-boot (default 250)\n"
		"  --mode M         cut (cut-through, default) or store (the seed's store-and-forward)\n"
		"  --limit-s T      simulated time limit (default 3600)\n"
		"  --trace          print every engine event (time, node, event) on stdout\n"
		"  --kill-root F    every root dies silently at 1.5 s + F x the bound (0..1)\n"
		"  --server-down AT,S  every fetch fails (unreachable) from AT s for S s\n"
		"  --appliance      a pfs-relay appliance on the site too (a site relay)\n"
		"  --appliance-mbps R      its LAN port (default 1000)\n"
		"  --appliance-children K  its child slots (default 16, as pfs-control)\n"
		"  --appliance-quiet       it sends no beacon: the devices, just booted, have\n"
		"                          not heard one (they claim; it answers at once)\n"
		"  --json           one JSON object on stdout\n");
}

static int parse_u64(const char *s, const char *name, uint64_t lo, uint64_t hi, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	if (errno || *end || end == s || *s == '-' || *v < lo || *v > hi) {
		fprintf(stderr, "pfs-sim: --%s: '%s' is not a whole number in %llu..%llu\n", name, s,
			(unsigned long long)lo, (unsigned long long)hi);
		return -EINVAL;
	}
	return 0;
}

static int parse_dbl(const char *s, const char *name, double lo, double hi, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	if (errno || *end || end == s || !(*v >= lo && *v <= hi)) {
		fprintf(stderr, "pfs-sim: --%s: '%s' is not a number in %g..%g\n", name, s, lo, hi);
		return -EINVAL;
	}
	return 0;
}

static int parse_opts(int argc, char **argv, struct sim_opts *o)
{
	static const struct option lo[] = {
		{ "devices", 1, 0, 'n' }, { "file-mb", 1, 0, 'm' }, { "seed", 1, 0, 's' },
		{ "loss", 1, 0, 'l' }, { "churn", 1, 0, 'c' }, { "json", 0, 0, 'j' },
		{ "models", 1, 0, 'k' }, { "wan-mbps", 1, 0, 'w' }, { "lan-mbps", 1, 0, 'L' },
		{ "latency-us", 1, 0, 'u' }, { "chunk-kb", 1, 0, 'C' }, { "listen-ms", 1, 0, 'i' },
		{ "mode", 1, 0, 'M' }, { "limit-s", 1, 0, 't' }, { "help", 0, 0, 'h' },
		{ "trace", 0, 0, 'T' }, { "kill-root", 1, 0, 'K' }, { "server-down", 1, 0, 'D' },
		{ "appliance", 0, 0, 'A' }, { "appliance-mbps", 1, 0, 'R' },
		{ "appliance-children", 1, 0, 'S' }, { "appliance-quiet", 0, 0, 'Q' },
		{ 0, 0, 0, 0 }
	};
	int c, rc = 0;

	*o = (struct sim_opts){ .file_mb = 8, .seed = 1, .models = 1, .chunk_kb = 64,
				.latency_us = 200, .listen_ms = 250, .limit_s = 3600,
				.wan_mbps = 20, .lan_mbps = 100, .mode = PFS_MODE_CUT_THROUGH,
				.appliance_mbps = 1000, .appliance_children = 16 };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1 && rc == 0) {
		switch (c) {
		case 'n': rc = parse_u64(optarg, "devices", 1, 1000000, &o->devices); break;
		case 'm': rc = parse_u64(optarg, "file-mb", 1, 4096, &o->file_mb); break;
		case 's': rc = parse_u64(optarg, "seed", 0, UINT64_MAX, &o->seed); break;
		case 'l': rc = parse_dbl(optarg, "loss", 0, 0.5, &o->loss); break;
		case 'c': rc = parse_dbl(optarg, "churn", 0, 0.5, &o->churn); break;
		case 'j': o->json = true; break;
		case 'T': o->trace = true; break;
		case 'A': o->appliance = true; break;
		case 'Q': o->appliance = o->appliance_quiet = true; break;
		case 'R': rc = parse_dbl(optarg, "appliance-mbps", 0.01, 1e6, &o->appliance_mbps); break;
		case 'S': rc = parse_u64(optarg, "appliance-children", 1, 255, &o->appliance_children); break;
		case 'k': rc = parse_u64(optarg, "models", 1, 64, &o->models); break;
		case 'w': rc = parse_dbl(optarg, "wan-mbps", 0.01, 1e6, &o->wan_mbps); break;
		case 'L': rc = parse_dbl(optarg, "lan-mbps", 0.01, 1e6, &o->lan_mbps); break;
		case 'u': rc = parse_u64(optarg, "latency-us", 1, 1000000, &o->latency_us); break;
		case 'C': rc = parse_u64(optarg, "chunk-kb", 1, 1024, &o->chunk_kb); break;
		case 'i': rc = parse_u64(optarg, "listen-ms", 0, 10000, &o->listen_ms); break;
		case 't': rc = parse_u64(optarg, "limit-s", 1, 86400, &o->limit_s); break;
		case 'K': rc = parse_dbl(optarg, "kill-root", 0, 1, &o->kill_root); break;
		case 'D': {
			char *comma = strchr(optarg, ',');
			if (!comma) {
				fprintf(stderr, "pfs-sim: --server-down: '%s' is not AT,SECONDS\n", optarg);
				rc = -EINVAL;
				break;
			}
			*comma = '\0';
			rc = parse_dbl(optarg, "server-down", 0, 86400, &o->down_from);
			if (rc == 0)
				rc = parse_dbl(comma + 1, "server-down", 0.001, 86400, &o->down_s);
			break;
		}
		case 'M':
			if (!strcmp(optarg, "cut")) {
				o->mode = PFS_MODE_CUT_THROUGH;
			} else if (!strcmp(optarg, "store")) {
				o->mode = PFS_MODE_STORE_FORWARD;
			} else {
				fprintf(stderr, "pfs-sim: --mode: '%s' is neither cut nor store\n", optarg);
				rc = -EINVAL;
			}
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (rc == 0 && optind < argc) {
		fprintf(stderr, "pfs-sim: unexpected argument '%s'\n", argv[optind]);
		rc = -EINVAL;
	}
	if (rc == 0 && !o->devices) {
		fprintf(stderr, "pfs-sim: --devices is required\n");
		rc = -EINVAL;
	}
	return rc;
}

static uint64_t rss_bytes(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Per model: a file of real bytes, REAL_CHUNK per simulated chunk. */
struct model_file {
	char model[PFS_MODEL_MAX + 1];
	char path[64];
	uint8_t *data;
	size_t size;
};

static int make_files(const struct sim_opts *o, uint32_t scale, struct model_file *mf)
{
	uint64_t file_bytes = o->file_mb << 20;

	for (uint64_t k = 0; k < o->models; k++) {
		uint64_t x = o->seed * 0x2545f4914f6cdd1dull + k + 1;
		snprintf(mf[k].model, sizeof(mf[k].model), "SIM-%02u", (unsigned)k);
		snprintf(mf[k].path, sizeof(mf[k].path), "firmware/sim-%02u.bin", (unsigned)k);
		mf[k].size = (file_bytes + scale - 1) / scale;
		mf[k].data = malloc(mf[k].size);
		if (!mf[k].data)
			return -ENOMEM;
		for (size_t i = 0; i < mf[k].size; i++)
			mf[k].data[i] = (uint8_t)(sim_splitmix(&x) >> 56);
	}
	return 0;
}

/* Seconds from the start of the rollout, or -1 for never. */
static double secs(pfs_time_t t) { return t == PFS_TIME_NEVER ? -1 : (double)t / 1e9; }

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The figures, from every node's engine and file at the end of the run. */
static int collect(struct netsim *ns, int ndev, const bool *late, struct sim_result *r)
{
	double *done_s = calloc((size_t)ndev + 1, sizeof(*done_s));

	if (!done_s)
		return -ENOMEM;
	for (int i = 0; i < ndev; i++) {       /* the devices: appliances come after */
		const struct pfs_engine_stats *st = pfs_engine_stats(netsim_engine(ns, i));
		struct pfs_hier_info info;
		size_t size;
		bool done, failed;

		r->chunks_retx += st->chunks_retx;
		r->chunks_dup += st->chunks_dup;
		r->queue_drops += st->queue_drops;
		if (!netsim_alive(ns, i)) {
			r->killed++;
			continue;
		}
		r->alive++;
		netsim_file(ns, i, 0, &size, &done, &failed);
		if (done)
			done_s[r->completed++] = secs(netsim_done_at(ns, i, 0));
		r->failed += failed;
		if (pfs_engine_hier_info(netsim_engine(ns, i), 0, &info) == 0 && info.depth > r->depth)
			r->depth = info.depth;
		if (!late[i]) {
			double a = secs(netsim_attached_at(ns, i, 0));
			if (a < 0 || r->convergence_s < 0)
				r->convergence_s = -1;
			else if (a > r->convergence_s)
				r->convergence_s = a;
		}
	}
	qsort(done_s, r->completed, sizeof(*done_s), cmp_dbl);
	if (r->completed) {
		r->completion_s = done_s[r->completed - 1];
		r->completion_p50_s = done_s[(r->completed - 1) / 2];
	}
	r->parent_lost = netsim_event_count(ns, PFS_EV_PARENT_LOST);
	free(done_s);
	return 0;
}

static json_t *result_json(const struct sim_opts *o, struct netsim *ns, const struct sim_result *r,
			   uint32_t scale, const struct model_file *mf)
{
	const struct netsim_counts *c = netsim_counts(ns);
	double n = (double)o->devices;
	char digest[24];
	uint32_t starts = 0;

	for (uint64_t k = 0; k < o->models; k++)
		starts += netsim_upstream_starts(ns, mf[k].model, mf[k].path);
	snprintf(digest, sizeof(digest), "%016llx", (unsigned long long)netsim_digest(ns));
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:i, s:o, s:f, s:f, s:o, s:f, s:f, s:f,"
			 " s:f, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:f, s:I, s:s,"
			 " s:I, s:I, s:f, s:f, s:I, s:s, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:I}",
		"devices", (json_int_t)o->devices,
		"completed", (json_int_t)r->completed,
		"alive", (json_int_t)r->alive,
		"failed", (json_int_t)r->failed,
		"killed", (json_int_t)r->killed,
		"depth", (int)r->depth,
		"convergence_s", r->convergence_s < 0 ? json_null() : json_real(r->convergence_s),
		"completion_s", r->completion_s,
		"bound_s", r->bound_s,
		"completion_over_bound", r->completed ? json_real(r->completion_s / r->bound_s) : json_null(),
		"messages_per_device", (double)c->datagrams_sent / n,
		"control_messages_per_device", (double)(c->datagrams_sent - c->chunk_sends) / n,
		"deliveries_per_device", (double)c->datagrams_delivered / n,
		"memory_per_device_bytes", (double)r->rss_delta / n,
		"claims", (json_int_t)netsim_event_count(ns, PFS_EV_CLAIM_SENT),
		"roots_confirmed", (json_int_t)netsim_event_count(ns, PFS_EV_ROOT_CONFIRMED),
		"yields", (json_int_t)netsim_event_count(ns, PFS_EV_YIELD),
		"upstream_fetches", (json_int_t)starts,
		"wan_copies", (double)c->upstream_bytes / (double)(mf[0].size * o->models),
		"late_joiners", (json_int_t)r->late,
		"chunks_mismatched", (json_int_t)c->chunks_mismatched,
		"chunks_unheld", (json_int_t)c->chunks_unheld,
		"sim_events", (json_int_t)c->sim_events,
		"wall_s", r->wall_s,
		"seed", (json_int_t)o->seed,
		"digest", digest,
		"models", (json_int_t)o->models,
		"chunks_per_file", (json_int_t)((mf[0].size + REAL_CHUNK - 1) / REAL_CHUNK),
		"chunk_kb", (double)REAL_CHUNK * scale / 1024.0,
		"file_mb", (double)o->file_mb,
		"byte_scale", (json_int_t)scale,
		"mode", o->mode == PFS_MODE_CUT_THROUGH ? "cut-through" : "store-and-forward",
		"loss", o->loss,
		"churn", o->churn,
		"completion_p50_s", r->completion_p50_s,
		"chunks_retx", (json_int_t)r->chunks_retx,
		"chunks_dup", (json_int_t)r->chunks_dup,
		"queue_drops", (json_int_t)r->queue_drops,
		"parent_lost", (json_int_t)r->parent_lost,
		"roots_killed", (json_int_t)netsim_roots_killed(ns),
		"fallbacks", (json_int_t)netsim_event_count(ns, PFS_EV_FALLBACK),
		"reelects", (json_int_t)netsim_event_count(ns, PFS_EV_REELECT),
		"appliance", o->appliance,
		"relay_joins", (json_int_t)netsim_event_count(ns, PFS_EV_RELAY));
}

static void print_text(const json_t *j)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)j, key, v) {
		if (json_is_integer(v))
			printf("%-28s %lld\n", key, (long long)json_integer_value(v));
		else if (json_is_real(v))
			printf("%-28s %.4g\n", key, json_real_value(v));
		else if (json_is_string(v))
			printf("%-28s %s\n", key, json_string_value(v));
		else
			printf("%-28s -\n", key);
	}
}

int main(int argc, char **argv)
{
	struct sim_opts o;
	struct sim_result r = { .convergence_s = 0 };
	struct model_file *mf = NULL;
	struct netsim *ns = NULL;
	bool *late = NULL;
	json_t *j = NULL;
	int rc = 1;

	if (parse_opts(argc, argv, &o) < 0)
		return 1;
	uint32_t scale = (uint32_t)(o.chunk_kb * 1024 / REAL_CHUNK);
	double wan_Bps = o.wan_mbps * 1e6 / 8, lan_Bps = o.lan_mbps * 1e6 / 8;
	r.bound_s = (double)(o.file_mb << 20) * (double)o.models / wan_Bps;
	struct netsim_params p = {
		.seed = o.seed, .loss = o.loss, .latency = o.latency_us * 1000ull,
		.upstream_rate = (uint64_t)wan_Bps, .wan_rate = (uint64_t)wan_Bps,
		.lan_rate = (uint64_t)lan_Bps, .upstream_block = REAL_CHUNK,
		.byte_scale = scale, .verify = true, .trace = o.trace,
		.server_down_from = (pfs_time_t)(o.down_from * 1e9),
		.server_down_until = (pfs_time_t)((o.down_from + o.down_s) * 1e9),
	};
	/* The engine's window and ack spacing are counted in chunks, sized for
	 * 1408-byte chunks; in bytes they bound how much a sender queues ahead of
	 * its control messages (a JOIN's answer, an ACK). Keep the bytes: with
	 * 64 KiB simulated chunks, 128 chunks would be a whole 8 MiB file queued
	 * in front of every REDIRECT, 1.3 s at 100 Mbit/s per child. */
	struct pfs_engine_config dflt;
	pfs_engine_config_defaults(&dflt);
	double chunk_bytes = (double)o.chunk_kb * 1024, real_bytes = PFS_CHUNK_DEFAULT;
	uint32_t window = (uint32_t)fmax(4, round(dflt.window * real_bytes / chunk_bytes));
	uint32_t ack_every = (uint32_t)fmax(1, round(dflt.ack_every * real_bytes / chunk_bytes));
	if (window > dflt.window)
		window = dflt.window;
	if (ack_every > dflt.ack_every)
		ack_every = dflt.ack_every;
	uint64_t rng = o.seed ^ 0x5eed5eed5eed5eedull;
	/* Churn happens while the rollout runs: the election (about 1.5 s)
	 * and the bound. */
	pfs_time_t horizon = PFS_MSEC(1500) + (pfs_time_t)(r.bound_s * 1e9);

	mf = calloc(o.models, sizeof(*mf));
	late = calloc(o.devices, sizeof(*late));
	if (!mf || !late || make_files(&o, scale, mf) < 0 || !(ns = netsim_new(&p))) {
		fprintf(stderr, "pfs-sim: out of memory\n");
		goto out;
	}
	for (uint64_t k = 0; k < o.models; k++)
		netsim_add_file(ns, mf[k].path, mf[k].data, mf[k].size);
	uint64_t rss0 = rss_bytes();
	double t0 = mono_s();
	for (uint64_t i = 0; i < o.devices; i++) {
		struct pfs_engine_config c;
		const struct model_file *m = &mf[i % o.models];
		const char *wants[] = { m->path };
		pfs_time_t start = 0;

		pfs_engine_config_defaults(&c);
		snprintf(c.model, sizeof(c.model), "%s", m->model);
		c.mode = o.mode;
		c.chunk_size = REAL_CHUNK;
		c.window = window;
		c.ack_every = ack_every;
		c.listen_window = PFS_MSEC(o.listen_ms);
		if (o.churn > 0 && sim_unit(&rng) < o.churn) {
			late[i] = true;
			r.late++;
			start = (pfs_time_t)(sim_unit(&rng) * (double)horizon);
		}
		int idx = netsim_add_node(ns, &c, wants, 1, start);
		if (idx < 0) {
			fprintf(stderr, "pfs-sim: device %llu: %s\n", (unsigned long long)i,
				strerror(-idx));
			goto out;
		}
		if (o.churn > 0 && sim_unit(&rng) < o.churn &&
		    netsim_kill_at(ns, idx, (pfs_time_t)(sim_unit(&rng) * (double)horizon)) < 0)
			goto out;
	}
	for (uint64_t k = 0; o.appliance && k < o.models; k++) {
		struct pfs_engine_config c;
		const char *wants[] = { mf[k].path };

		pfs_engine_config_defaults(&c);
		snprintf(c.model, sizeof(c.model), "%s", mf[k].model);
		c.priority_class = PFS_CLASS_APPLIANCE;
		c.relay = o.appliance_quiet ? PFS_RELAY_QUIET : PFS_RELAY_ON;
		c.max_children = (uint16_t)o.appliance_children;
		c.mode = o.mode;
		c.chunk_size = REAL_CHUNK;
		c.window = window;
		c.ack_every = ack_every;
		int idx = netsim_add_node(ns, &c, wants, 1, 0);
		if (idx < 0) {
			fprintf(stderr, "pfs-sim: appliance: %s\n", strerror(-idx));
			goto out;
		}
		netsim_autojoin(ns, idx);
		netsim_lan_rate(ns, idx, (uint64_t)(o.appliance_mbps * 1e6 / 8));
	}
	if (o.kill_root > 0)
		netsim_kill_roots_at(ns, PFS_MSEC(1500) + (pfs_time_t)(o.kill_root * r.bound_s * 1e9));
	bool finished = netsim_run(ns, PFS_SEC(o.limit_s));
	r.wall_s = mono_s() - t0;
	uint64_t rss1 = rss_bytes();
	r.rss_delta = rss1 > rss0 ? rss1 - rss0 : 0;
	if (collect(ns, (int)o.devices, late, &r) < 0) {
		fprintf(stderr, "pfs-sim: out of memory\n");
		goto out;
	}
	j = result_json(&o, ns, &r, scale, mf);
	if (!j) {
		fprintf(stderr, "pfs-sim: cannot build the result\n");
		goto out;
	}
	if (o.json) {
		char *s = json_dumps(j, JSON_COMPACT);
		if (!s)
			goto out;
		puts(s);
		free(s);
	} else {
		print_text(j);
	}
	if (!finished)
		fprintf(stderr, "pfs-sim: %llu of %llu live devices complete at the %llu s limit\n",
			(unsigned long long)r.completed, (unsigned long long)r.alive,
			(unsigned long long)o.limit_s);
	rc = finished ? 0 : 2;
out:
	json_decref(j);
	netsim_free(ns);
	for (uint64_t k = 0; mf && k < o.models; k++)
		free(mf[k].data);
	free(mf);
	free(late);
	return rc;
}
