/* pfs_gen.c - pfs-gen: write a pcap trace of valid PFS chunk traffic
 * (bench/RESULTS.md), the input of the relay benchmark and of pktgen-dpdk.
 *
 *   pfs-gen --out FILE.pcap [--file-size BYTES] [--chunk-size N] [--model M]
 *           [--path P] [--from IP] [--to IP] [--sender ID] [--rate PPS]
 *           [--seed S] [--content FILE]
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_codec.h"
#include "pfs_wire.h"

struct gen_opts {
	const char *out, *content, *model, *path;
	uint64_t file_size, seed;
	uint32_t chunk_size, from, to, sender;
	double rate;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pfs-gen --out FILE.pcap [--file-size BYTES] [--chunk-size N]\n"
		"               [--model M] [--path P] [--from IP] [--to IP] [--sender ID]\n"
		"               [--rate PPS] [--seed S] [--content FILE]\n"
		"  --file-size BYTES  size of the file sent (default 1048576)\n"
		"  --chunk-size N     payload bytes per chunk, 1..%d (default %d)\n"
		"  --model, --path    the hierarchy (default CP-7961G, fw/bench.bin)\n"
		"  --from, --to       parent and receiver IPv4 (default 10.99.0.1, 10.99.0.2)\n"
		"  --sender ID        parent's node id (default 0x0a630001)\n"
		"  --rate PPS         timestamp spacing (default 1000000)\n"
		"  --seed S           content seed (default 1)\n"
		"  --content FILE     also write the file's bytes there\n",
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
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (!o->out) {
		fprintf(stderr, "pfs-gen: --out is required\n");
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

int main(int argc, char **argv)
{
	struct gen_opts o;
	uint8_t *content = NULL, *dg = NULL, *frame = NULL;
	pcap_t *pd = NULL;
	pcap_dumper_t *dump = NULL;
	uint64_t nchunks, hier;
	int status = 1;

	if (parse_args(&o, argc, argv) < 0) {
		usage(stderr);
		return 2;
	}
	nchunks = (o.file_size + o.chunk_size - 1) / o.chunk_size;
	hier = pfs_hier_key(o.model, strlen(o.model), o.path, strlen(o.path));
	content = malloc(o.file_size);
	dg = malloc(PFS_DGRAM_MAX);
	frame = malloc(PFS_DGRAM_MAX + 64);
	if (!content || !dg || !frame) {
		fprintf(stderr, "pfs-gen: out of memory for a %llu-byte file\n",
			(unsigned long long)o.file_size);
		goto out;
	}
	fill_content(content, o.file_size, o.seed);
	if (o.content && write_content(o.content, content, o.file_size) < 0)
		goto out;
	pd = pcap_open_dead(DLT_EN10MB, 65535);
	if (!pd || !(dump = pcap_dump_open(pd, o.out))) {
		fprintf(stderr, "pfs-gen: %s: %s\n", o.out, pd ? pcap_geterr(pd) : "pcap");
		goto out;
	}
	for (uint64_t i = 0; i < nchunks; i++) {
		uint64_t off = i * o.chunk_size;
		struct pfs_msg m = { .type = PFS_MSG_DATA, .sender = o.sender, .hier = hier };
		struct pcap_pkthdr ph;
		double t = (double)i / o.rate;
		int n;

		m.u.data.index = (uint32_t)i;
		m.u.data.payload = content + off;
		m.u.data.len = (uint16_t)(o.file_size - off < o.chunk_size ? o.file_size - off :
									     o.chunk_size);
		n = pfs_encode(&m, dg, PFS_DGRAM_MAX);
		if (n < 0) {
			fprintf(stderr, "pfs-gen: cannot encode chunk %llu (%d)\n",
				(unsigned long long)i, n);
			goto out;
		}
		ph.ts.tv_sec = (time_t)t;
		ph.ts.tv_usec = (suseconds_t)((t - (double)(time_t)t) * 1e6);
		ph.caplen = ph.len = (bpf_u_int32)build_frame(&o, (uint16_t)i, dg, (size_t)n, frame);
		pcap_dump((u_char *)dump, &ph, frame);
	}
	if (pcap_dump_flush(dump) < 0) {
		fprintf(stderr, "pfs-gen: %s: write failed\n", o.out);
		goto out;
	}
	printf("pfs-gen: %s: %llu chunks of %u bytes, hierarchy %016llx, frame %u bytes\n", o.out,
	       (unsigned long long)nchunks, o.chunk_size, (unsigned long long)hier,
	       (unsigned)(14 + 20 + 8 + PFS_HDR_LEN + 8 + o.chunk_size));
	status = 0;
out:
	if (dump)
		pcap_dump_close(dump);
	if (pd)
		pcap_close(pd);
	free(content);
	free(dg);
	free(frame);
	return status;
}
