/* gen_corpus.c - write one encoded sample of every message type into DIR,
 * the seed corpus for the fuzz_decode target; with --manifest, a signed
 * manifest, the seed corpus for fuzz_manifest; with --frames, each sample
 * in an Ethernet/IPv4/UDP frame to port 4051 (and one DATA frame with the
 * AUTH flag and a tag too short for it, and DATA behind one and two VLAN
 * tags), the corpus for fuzz_dp_rx; with
 * --tftp, requests with and without options, an ACK and an ERROR, the
 * corpus for fuzz_tftp; with --http, Range headers and paths for fuzz_http;
 * with --engine, scripts of a rollout for fuzz_engine (fuzz/engine_seeds.c);
 * with --site, sites for fuzz_site (fuzz/site_seeds.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_samples.h"

int engine_seeds(const char *dir);     /* fuzz/engine_seeds.c */
int site_seeds(const char *dir);       /* fuzz/site_seeds.c */

static int write_file(const char *dir, const char *name, const uint8_t *b, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(b, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		return -1;
	}
	return 0;
}

/* msg in Ethernet + IPv4 (TTL 255) + UDP to 4051; the IP checksum is not
 * filled (the parser does not check it: the NIC or kernel did). */
static size_t frame(uint8_t *out, const uint8_t *msg, size_t len, uint8_t ttl)
{
	size_t ulen = 8 + len, tot = 20 + ulen;

	memset(out, 0, 42);
	memset(out, 0xff, 6);
	out[6] = 2;
	out[12] = 0x08;                 /* IPv4 */
	out[14] = 0x45;
	out[16] = (uint8_t)(tot >> 8); out[17] = (uint8_t)tot;
	out[22] = ttl;
	out[23] = 17;                   /* UDP */
	out[26] = 10; out[29] = 5; out[30] = 10; out[33] = 255;
	out[34] = PFS_PORT >> 8; out[35] = PFS_PORT & 0xff;
	out[36] = PFS_PORT >> 8; out[37] = PFS_PORT & 0xff;
	out[38] = (uint8_t)(ulen >> 8); out[39] = (uint8_t)ulen;
	memcpy(out + 42, msg, len);
	return 42 + len;
}

/* The frame of n bytes at fr behind one VLAN tag (802.1Q), then behind
 * two (802.1ad + 802.1Q): the parser's tag paths (dataplane/vlan.h). */
static int write_tagged(const char *dir, uint8_t *fr, size_t n)
{
	static const uint8_t q[] = { 0x81, 0x00, 0xa0, 100 },
			     qinq[] = { 0x88, 0xa8, 0x00, 10, 0x81, 0x00, 0x00, 200 };
	static uint8_t out[PFS_DGRAM_MAX + 96];

	memcpy(out, fr, 12);
	memcpy(out + 12, q, sizeof(q));
	memcpy(out + 12 + sizeof(q), fr + 12, n - 12);
	if (write_file(dir, "frame-data-8021q", out, n + sizeof(q)) < 0)
		return -1;
	memcpy(out + 12, qinq, sizeof(qinq));
	memcpy(out + 12 + sizeof(qinq), fr + 12, n - 12);
	return write_file(dir, "frame-data-qinq", out, n + sizeof(qinq));
}

static int frames(const char *dir)
{
	static uint8_t buf[PFS_DGRAM_MAX], fr[PFS_DGRAM_MAX + 64];
	char name[64];

	for (unsigned t = 1; t <= PFS_MSG_TYPE_MAX; t++) {
		struct pfs_msg m;
		int len;

		if (msg_sample(t, &m) < 0 || (len = pfs_encode(&m, buf, sizeof(buf))) < 0)
			return 1;
		snprintf(name, sizeof(name), "frame-%s", pfs_msg_type_name(t));
		if (write_file(dir, name, fr, frame(fr, buf, (size_t)len, 255)) < 0)
			return 1;
		if (t == PFS_MSG_DATA) {
			if (write_file(dir, "frame-ttl64", fr, frame(fr, buf, (size_t)len, 64)) < 0)
				return 1;
			if (write_tagged(dir, fr, frame(fr, buf, (size_t)len, 255)) < 0)
				return 1;
			buf[4] = PFS_HF_AUTH;   /* AUTH with a 4-byte tag the length lacks */
			buf[5] = 4;
			if (write_file(dir, "frame-data-auth", fr,
				       frame(fr, buf, (size_t)len, 255)) < 0)
				return 1;
		}
	}
	return 0;
}

static int tftp_seeds(const char *dir)
{
	static const uint8_t rrq[] = "\0\1dnld/SCCP41.loads\0octet";
	static const uint8_t rrq_opts[] = "\0\1fw/a.bin\0octet\0blksize\0001468\0tsize\0000"
					  "\0timeout\0003\0windowsize\00016";
	static const uint8_t wrq[] = "\0\2up.bin\0netascii";
	static const uint8_t ack[] = { 0, 4, 0, 1 }, err[] = "\0\5\0\10refused";

	return write_file(dir, "rrq", rrq, sizeof(rrq)) || write_file(dir, "rrq_opts", rrq_opts,
		sizeof(rrq_opts)) || write_file(dir, "wrq", wrq, sizeof(wrq)) ||
	       write_file(dir, "ack", ack, sizeof(ack)) || write_file(dir, "error", err, sizeof(err));
}

/* fuzz_http: an 8-byte file size (1000, little-endian), then a header or
 * a path. */
static int http_seeds(const char *dir)
{
	static const char *const seeds[] = { "bytes=100-199", "bytes=-50", "bytes=990-",
					     "bytes=1-2,5-6", "fw/%2e%2e/a%00.bin", "fw/a%20b.bin" };
	uint8_t buf[64] = { 0xe8, 0x03 };
	char name[16];

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		size_t n = strlen(seeds[i]);
		memcpy(buf + 8, seeds[i], n);
		snprintf(name, sizeof(name), "http%zu", i);
		if (write_file(dir, name, buf, 8 + n))
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t buf[PFS_DGRAM_MAX];
	char name[4096];

	if (argc == 3 && !strcmp(argv[1], "--frames"))
		return frames(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "--tftp"))
		return tftp_seeds(argv[2]) ? 1 : 0;
	if (argc == 3 && !strcmp(argv[1], "--http"))
		return http_seeds(argv[2]) ? 1 : 0;
	if (argc == 3 && !strcmp(argv[1], "--engine"))
		return engine_seeds(argv[2]) ? 1 : 0;
	if (argc == 3 && !strcmp(argv[1], "--site"))
		return site_seeds(argv[2]) ? 1 : 0;
	if (argc == 3 && !strcmp(argv[1], "--manifest")) {
		size_t len;
		uint8_t *m = manifest_sample(&len);
		FILE *f;

		snprintf(name, sizeof(name), "%s/manifest", argv[2]);
		f = fopen(name, "wb");
		if (!m || !f || fwrite(m, 1, len, f) != len || fclose(f) != 0) {
			perror(name);
			return 1;
		}
		free(m);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus [--manifest | --frames | --tftp | --http | --engine | --site] "
			"DIR\n");
		return 2;
	}
	for (unsigned t = 1; t <= PFS_MSG_TYPE_MAX; t++) {
		struct pfs_msg m;
		int len;
		FILE *f;

		if (msg_sample(t, &m) < 0 || (len = pfs_encode(&m, buf, sizeof(buf))) < 0) {
			fprintf(stderr, "gen_corpus: cannot encode type %u\n", t);
			return 1;
		}
		snprintf(name, sizeof(name), "%s/%s", argv[1], pfs_msg_type_name(t));
		f = fopen(name, "wb");
		if (!f || fwrite(buf, 1, (size_t)len, f) != (size_t)len || fclose(f) != 0) {
			perror(name);
			return 1;
		}
	}
	return 0;
}
