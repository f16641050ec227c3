/* pfs_gen.c - pfs-gen: write a pcap trace of valid PFS chunk traffic
 * (bench/RESULTS.md), the input of the relay benchmark and of pktgen-dpdk.
 *
 *   pfs-gen --out FILE.pcap [--file-size BYTES] [--chunk-size N] [--model M]
 *           [--path P] [--from IP] [--to IP] [--sender ID] [--rate PPS]
 *           [--seed S] [--content FILE]
 *   pfs-gen --transmit --eal "EAL ARGS" [--port N] [--seconds S] [--count N]
 *           [--tx-rate PPS] [--no-rx] [trace options as above]
 *
 * With --transmit the trace goes out of a DPDK port instead of (or as well
 * as) into a file, round and round until --seconds or --count (gen_tx.c):
 * the load generator for machines without pktgen-dpdk.
 *
 * The trace is one file sent by a parent (--from, node --sender) to the node
 * under test (--to) as DATA datagrams, in chunk order: the stream a member
 * of a hierarchy receives from its parent. Frames are exactly what pfs-peer
 * and pfs-dataplane send: TTL 255, UDP 4051 -> 4051, CRC32C over the payload,
 * valid IP and UDP checksums. Timestamps are spaced for --rate packets per
 * second, so a replay at recorded speed has that rate. The file's bytes are
 * a xorshift stream of --seed; --content writes them out for checking.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_tx.h"
#include "pfs_codec.h"
#include "pfs_wire.h"

#define GEN_MAX_PORT 1023

struct gen_opts {
	const char *out, *content, *model, *path, *eal;
	uint64_t file_size, seed;
	uint32_t chunk_size, from, to, sender;
	double rate;
	bool transmit;
	struct gen_tx_opts tx;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pfs-gen --out FILE.pcap [--file-size BYTES] [--chunk-size N]\n"
		"               [--model M] [--path P] [--from IP] [--to IP] [--sender ID]\n"
		"               [--rate PPS] [--seed S] [--content FILE]\n"
		"       pfs-gen --transmit --eal \"ARGS\" [--port N] [--seconds S] [--count N]\n"
		"               [--tx-rate PPS] [--no-rx] [trace options]\n"
		"  --file-size BYTES  size of the file sent (default 1048576)\n"
		"  --chunk-size N     payload bytes per chunk, 1..%d (default %d)\n"
		"  --model, --path    the hierarchy (default CP-7961G, fw/bench.bin)\n"
		"  --from, --to       parent and receiver IPv4 (default 10.99.0.1, 10.99.0.2)\n"
		"  --sender ID        parent's node id (default 0x0a630001)\n"
		"  --rate PPS         timestamp spacing (default 1000000)\n"
		"  --seed S           content seed (default 1)\n"
		"  --content FILE     also write the file's bytes there\n"
		"  --transmit         send the trace out of a DPDK port (needs --seconds or --count)\n"
		"  --eal \"ARGS\"       EAL arguments for --transmit, e.g. \"--no-huge --vdev net_memif0\"\n"
		"  --port N           DPDK port to send from (default 0)\n"
		"  --seconds S        stop sending after S seconds\n"
		"  --count N          stop sending after N frames\n"
		"  --tx-rate PPS      pace sending to PPS frames per second (default: as fast as it goes)\n"
		"  --no-rx            leave what comes back unread: a receiver that stalls, so\n"
		"                     the device under test finds its TX ring full\n",
		PFS_CHUNK_MAX, PFS_CHUNK_DEFAULT);
}

static int parse_u64(const char *s, const char *name, uint64_t lo, uint64_t hi, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	if (errno || *end || end == s || *v < lo || *v > hi) {
		fprintf(stderr, "pfs-gen: --%s: '%s' is not a number in %llu..%llu\n", name, s,
			(unsigned long long)lo, (unsigned long long)hi);
		return -1;
	}
	return 0;
}

static int parse_seconds(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	if (errno || *end || end == s || !(*v >= 0.001 && *v <= 86400)) {
		fprintf(stderr, "pfs-gen: --seconds: '%s' is not a number of seconds in 0.001..86400\n",
			s);
		return -1;
	}
	return 0;
}

static int parse_ip(const char *s, const char *name, uint32_t *ip)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1) {
		fprintf(stderr, "pfs-gen: --%s: '%s' is not an IPv4 address\n", name, s);
		return -1;
	}
	*ip = ntohl(a.s_addr);
	return 0;
}

static int parse_args(struct gen_opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' }, { "file-size", required_argument, NULL, 'f' },
		{ "chunk-size", required_argument, NULL, 'c' }, { "model", required_argument, NULL, 'm' },
		{ "path", required_argument, NULL, 'p' }, { "from", required_argument, NULL, 'F' },
		{ "to", required_argument, NULL, 'T' }, { "sender", required_argument, NULL, 's' },
		{ "rate", required_argument, NULL, 'r' }, { "seed", required_argument, NULL, 'S' },
		{ "content", required_argument, NULL, 'C' }, { "help", no_argument, NULL, 'h' },
		{ "transmit", no_argument, NULL, 'X' }, { "eal", required_argument, NULL, 'E' },
		{ "port", required_argument, NULL, 'P' }, { "seconds", required_argument, NULL, 'D' },
		{ "count", required_argument, NULL, 'N' }, { "tx-rate", required_argument, NULL, 'R' },
		{ "no-rx", no_argument, NULL, 'Q' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int opt;

	*o = (struct gen_opts){ .model = "CP-7961G", .path = "fw/bench.bin", .file_size = 1 << 20,
				.seed = 1, .chunk_size = PFS_CHUNK_DEFAULT, .from = 0x0a630001,
				.to = 0x0a630002, .sender = 0x0a630001, .rate = 1e6 };
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'o': o->out = optarg; break;
		case 'C': o->content = optarg; break;
		case 'm': o->model = optarg; break;
		case 'p': o->path = optarg; break;
		case 'F': if (parse_ip(optarg, "from", &o->from) < 0) return -1; break;
		case 'T': if (parse_ip(optarg, "to", &o->to) < 0) return -1; break;
		case 'f':
			if (parse_u64(optarg, "file-size", 1, 1ull << 34, &o->file_size) < 0)
				return -1;
			break;
		case 'c':
			if (parse_u64(optarg, "chunk-size", 1, PFS_CHUNK_MAX, &v) < 0)
				return -1;
			o->chunk_size = (uint32_t)v;
			break;
		case 's':
			if (parse_u64(optarg, "sender", 1, UINT32_MAX, &v) < 0)
				return -1;
			o->sender = (uint32_t)v;
			break;
		case 'r':
			if (parse_u64(optarg, "rate", 1, 1000000000, &v) < 0)
				return -1;
			o->rate = (double)v;
			break;
		case 'S': if (parse_u64(optarg, "seed", 0, UINT64_MAX, &o->seed) < 0) return -1; break;
		case 'X': o->transmit = true; break;
		case 'E': o->eal = optarg; break;
		case 'P':
			if (parse_u64(optarg, "port", 0, GEN_MAX_PORT, &v) < 0)
				return -1;
			o->tx.port = (uint16_t)v;
			break;
		case 'D':
			if (parse_seconds(optarg, &o->tx.seconds) < 0)
				return -1;
			break;
		case 'N': if (parse_u64(optarg, "count", 1, UINT64_MAX, &o->tx.count) < 0) return -1; break;
		case 'R':
			if (parse_u64(optarg, "tx-rate", 1, 1000000000, &v) < 0)
				return -1;
			o->tx.rate = (double)v;
			break;
		case 'Q': o->tx.no_rx = true; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (!o->out && !o->transmit) {
		fprintf(stderr, "pfs-gen: --out or --transmit is required\n");
		return -1;
	}
	if (o->transmit && (!o->eal || (!o->tx.seconds && !o->tx.count))) {
		fprintf(stderr, "pfs-gen: --transmit needs --eal and a bound, --seconds or --count\n");
		return -1;
	}
	if (!pfs_model_valid(o->model, strlen(o->model)) ||
	    !pfs_filepath_valid(o->path, strlen(o->path))) {
		fprintf(stderr, "pfs-gen: '%s' '%s' is not a valid model and file path\n", o->model,
			o->path);
		return -1;
	}
	if (optind != argc) {
		fprintf(stderr, "pfs-gen: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
}

static void fill_content(uint8_t *p, uint64_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (uint64_t i = 0; i < n; i++) {
		if (i % 8 == 0) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
		p[i] = (uint8_t)(x >> (8 * (i % 8)));
	}
}

static uint16_t csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static uint32_t csum_add(uint32_t s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

/* One Ethernet/IPv4/UDP frame carrying the PFS datagram dg[dlen]. */
static size_t build_frame(const struct gen_opts *o, uint16_t ip_id, const uint8_t *dg,
			  size_t dlen, uint8_t *f)
{
	static const uint8_t dst_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	static const uint8_t src_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	uint8_t *ip = f + 14, *udp = ip + 20;
	uint32_t s;
	uint16_t c;

	memcpy(f, dst_mac, 6);
	memcpy(f + 6, src_mac, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t)((20 + 8 + dlen) >> 8);
	ip[3] = (uint8_t)(20 + 8 + dlen);
	ip[4] = (uint8_t)(ip_id >> 8);
	ip[5] = (uint8_t)ip_id;
	ip[6] = 0x40;                   /* DF */
	ip[8] = PFS_TTL;
	ip[9] = 17;
	for (int i = 0; i < 4; i++) {
		ip[12 + i] = (uint8_t)(o->from >> (24 - 8 * i));
		ip[16 + i] = (uint8_t)(o->to >> (24 - 8 * i));
	}
	c = (uint16_t)~csum_fold(csum_add(0, ip, 20));
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	udp[0] = udp[2] = PFS_PORT >> 8;
	udp[1] = udp[3] = PFS_PORT & 0xff;
	udp[4] = (uint8_t)((8 + dlen) >> 8);
	udp[5] = (uint8_t)(8 + dlen);
	udp[6] = udp[7] = 0;
	memcpy(udp + 8, dg, dlen);
	s = csum_add(0, ip + 12, 8) + 17 + (uint32_t)(8 + dlen);
	s = csum_add(s, udp, 8 + dlen);
	c = (uint16_t)~csum_fold(s);
	if (!c)
		c = 0xffff;
	udp[6] = (uint8_t)(c >> 8);
	udp[7] = (uint8_t)c;
	return 14 + 20 + 8 + dlen;
}

static int write_content(const char *path, const uint8_t *p, uint64_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "pfs-gen: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The whole trace in memory: frame i is chunk i. */
struct trace {
	uint8_t *buf;
	const uint8_t **frames;
	uint16_t *lens;
	uint64_t n;
};

static int trace_build(const struct gen_opts *o, const uint8_t *content, struct trace *t)
{
	uint64_t hier = pfs_hier_key(o->model, strlen(o->model), o->path, strlen(o->path));
	size_t stride = 14 + 20 + 8 + PFS_DGRAM_MAX;
	uint8_t *dg = malloc(PFS_DGRAM_MAX);

	t->n = (o->file_size + o->chunk_size - 1) / o->chunk_size;
	t->buf = malloc(t->n * (14 + 20 + 8 + PFS_HDR_LEN + 8 + (size_t)o->chunk_size) + stride);
	t->frames = calloc(t->n, sizeof(*t->frames));
	t->lens = calloc(t->n, sizeof(*t->lens));
	if (!dg || !t->buf || !t->frames || !t->lens) {
		free(dg);
		fprintf(stderr, "pfs-gen: out of memory for %llu frames\n", (unsigned long long)t->n);
		return -1;
	}
	uint8_t *at = t->buf;
	for (uint64_t i = 0; i < t->n; i++) {
		uint64_t off = i * o->chunk_size;
		struct pfs_msg m = { .type = PFS_MSG_DATA, .sender = o->sender, .hier = hier };
		int n;

		m.u.data.index = (uint32_t)i;
		m.u.data.payload = content + off;
		m.u.data.len = (uint16_t)(o->file_size - off < o->chunk_size ? o->file_size - off :
									       o->chunk_size);
		n = pfs_encode(&m, dg, PFS_DGRAM_MAX);
		if (n < 0) {
			fprintf(stderr, "pfs-gen: cannot encode chunk %llu (%d)\n",
				(unsigned long long)i, n);
			free(dg);
			return -1;
		}
		t->frames[i] = at;
		t->lens[i] = (uint16_t)build_frame(o, (uint16_t)i, dg, (size_t)n, at);
		at += t->lens[i];
	}
	free(dg);
	return 0;
}

static int trace_write(const struct gen_opts *o, const struct trace *t)
{
	pcap_t *pd = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *dump = pd ? pcap_dump_open(pd, o->out) : NULL;
	int rc = -1;

	if (!dump) {
		fprintf(stderr, "pfs-gen: %s: %s\n", o->out, pd ? pcap_geterr(pd) : "pcap");
		goto out;
	}
	for (uint64_t i = 0; i < t->n; i++) {
		struct pcap_pkthdr ph;
		double ts = (double)i / o->rate;

		ph.ts.tv_sec = (time_t)ts;
		ph.ts.tv_usec = (suseconds_t)((ts - (double)(time_t)ts) * 1e6);
		ph.caplen = ph.len = t->lens[i];
		pcap_dump((u_char *)dump, &ph, t->frames[i]);
	}
	if (pcap_dump_flush(dump) < 0) {
		fprintf(stderr, "pfs-gen: %s: write failed\n", o->out);
		goto out;
	}
	rc = 0;
out:
	if (dump)
		pcap_dump_close(dump);
	if (pd)
		pcap_close(pd);
	return rc;
}

/* EAL's argv from --eal's words (split on blanks, no quoting). */
static int transmit(const struct gen_opts *o, const struct trace *t)
{
	char *words = strdup(o->eal), *save = NULL;
	char *argv[64] = { "pfs-gen" };
	int argc = 1, rc;
	struct gen_tx_stats st;

	if (!words)
		return -1;
	for (char *w = strtok_r(words, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (argc == 63) {
			fprintf(stderr, "pfs-gen: --eal: more than 62 words\n");
			free(words);
			return -1;
		}
		argv[argc++] = w;
	}
	rc = gen_tx_run(argc, argv, t->frames, t->lens, (uint32_t)t->n, &o->tx, &st);
	free(words);
	if (rc < 0)
		return -1;
	printf("{\"frames\":%llu,\"bytes\":%llu,\"seconds\":%.6f,\"pps\":%.0f,\"gbps\":%.3f,"
	       "\"port_opackets\":%llu,\"partial_bursts\":%llu,\"rx_frames\":%llu}\n",
	       (unsigned long long)st.frames, (unsigned long long)st.bytes, st.elapsed_s,
	       st.elapsed_s > 0 ? (double)st.frames / st.elapsed_s : 0,
	       st.elapsed_s > 0 ? (double)st.bytes * 8 / st.elapsed_s / 1e9 : 0,
	       (unsigned long long)st.port_opackets, (unsigned long long)st.full,
	       (unsigned long long)st.rx_frames);
	return 0;
}

int main(int argc, char **argv)
{
	struct gen_opts o;
	struct trace t = { 0 };
	uint8_t *content = NULL;
	int status = 1;

	if (parse_args(&o, argc, argv) < 0) {
		usage(stderr);
		return 2;
	}
	content = malloc(o.file_size);
	if (!content) {
		fprintf(stderr, "pfs-gen: out of memory for a %llu-byte file\n",
			(unsigned long long)o.file_size);
		goto out;
	}
	fill_content(content, o.file_size, o.seed);
	if (o.content && write_content(o.content, content, o.file_size) < 0)
		goto out;
	if (trace_build(&o, content, &t) < 0)
		goto out;
	if (o.out) {
		if (trace_write(&o, &t) < 0)
			goto out;
		fprintf(o.transmit ? stderr : stdout,
			"pfs-gen: %s: %llu chunks of %u bytes, hierarchy %016llx, frame %u bytes\n",
			o.out, (unsigned long long)t.n, o.chunk_size,
			(unsigned long long)pfs_hier_key(o.model, strlen(o.model), o.path,
							 strlen(o.path)),
			(unsigned)(14 + 20 + 8 + PFS_HDR_LEN + 8 + o.chunk_size));
	}
	if (o.transmit && transmit(&o, &t) < 0)
		goto out;
	status = 0;
out:
	free(content);
	free(t.buf);
	free(t.frames);
	free(t.lens);
	return status;
}
