/* hash_bench.c - pfs-hash-bench: the chunk digests we could check at line
 * rate, timed side by side in one run (bench/RESULTS.md section 6).
 *
 *   pfs-hash-bench [--sizes 1408,8192] [--rounds N]
 *
 * For each chunk size, TSC cycles per chunk (median of 9 rounds of N
 * chunks) of: the dataplane's own digest (dataplane/verify.c: OpenSSL
 * SHA-256 on a context made once, SHA extensions where present), the
 * engine's pfs_chunk_digest (peers and pfs-control: SHA-256 fetched once,
 * a context per call), OpenSSL's one-shot EVP_Digest (a context and a
 * lookup per call), OpenSSL BLAKE2s-256 and
 * BLAKE2b-512, and libsodium's SHA-256 and keyless BLAKE2b with a 16-byte
 * output (crypto_generichash). The format signs SHA-256/128 digests
 * (docs/protocol.md 9); the others show what another choice would cost.
 * OpenSSL 3 has no multi-buffer SHA-256 in its public API and Debian 12
 * packages no ISA-L crypto, so "a whole burst at once" is not among them.
 */
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_manifest.h"
#include "verify.h"

typedef void (*hash_fn)(void *ctx, const uint8_t *p, size_t n, uint8_t *out);

static void f_dp(void *ctx, const uint8_t *p, size_t n, uint8_t *out) { dp_digest(ctx, p, n, out); }
static void f_evp_sha256(void *ctx, const uint8_t *p, size_t n, uint8_t *out)
{
	(void)ctx;
	EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL);
}
static void f_engine(void *ctx, const uint8_t *p, size_t n, uint8_t *out)
{
	(void)ctx;
	pfs_chunk_digest(p, n, out);
}
static void f_evp_ctx(void *ctx, const uint8_t *p, size_t n, uint8_t *out)
{
	EVP_MD_CTX *c = ((void **)ctx)[0];
	EVP_DigestInit_ex2(c, ((void **)ctx)[1], NULL);
	EVP_DigestUpdate(c, p, n);
	EVP_DigestFinal_ex(c, out, NULL);
}
static void f_na_sha256(void *ctx, const uint8_t *p, size_t n, uint8_t *out)
{
	(void)ctx;
	crypto_hash_sha256(out, p, n);
}
static void f_na_blake2b(void *ctx, const uint8_t *p, size_t n, uint8_t *out)
{
	(void)ctx;
	crypto_generichash(out, 16, p, n, NULL, 0);
}

static double cycles(hash_fn f, void *ctx, size_t len, int rounds)
{
	uint8_t *buf = calloc(1, len), out[64];
	double r[9];

	for (int k = 0; k < 9; k++) {
		uint64_t t0 = __builtin_ia32_rdtsc();
		for (int i = 0; i < rounds; i++) {
			buf[i % len] ^= 1;
			f(ctx, buf, len, out);
		}
		r[k] = (double)(__builtin_ia32_rdtsc() - t0) / rounds;
	}
	for (int i = 0; i < 9; i++)
		for (int j = i; j > 0 && r[j] < r[j - 1]; j--) {
			double t = r[j]; r[j] = r[j - 1]; r[j - 1] = t;
		}
	free(buf);
	return r[4];
}

int main(int argc, char **argv)
{
	size_t sizes[8] = { 1408, 8192 };
	int nsizes = 2, rounds = 2000;
	struct dp_verifier *v = dp_verifier_new();
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	void *b2s[2] = { c, EVP_MD_fetch(NULL, "BLAKE2S-256", NULL) };
	void *b2b[2] = { c, EVP_MD_fetch(NULL, "BLAKE2B-512", NULL) };

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--rounds")) {
			rounds = atoi(argv[i + 1]);
		} else if (!strcmp(argv[i], "--sizes")) {
			char *s = argv[i + 1];
			nsizes = 0;
			while (*s && nsizes < 8) {
				sizes[nsizes++] = strtoul(s, &s, 10);
				if (*s == ',')
					s++;
			}
		} else {
			fprintf(stderr, "usage: pfs-hash-bench [--sizes 1408,8192] [--rounds N]\n");
			return 2;
		}
	}
	if (!v || !c || !b2s[1] || !b2b[1] || sodium_init() < 0 || rounds < 1) {
		fprintf(stderr, "pfs-hash-bench: OpenSSL or libsodium unavailable\n");
		return 1;
	}
	struct { const char *name; hash_fn f; void *ctx; } impl[] = {
		{ "dataplane SHA-256/128 (OpenSSL, context reused)", f_dp, v },
		{ "peers and pfs-control SHA-256/128 (pfs_chunk_digest)", f_engine, NULL },
		{ "OpenSSL SHA-256, EVP_Digest one-shot", f_evp_sha256, NULL },
		{ "OpenSSL BLAKE2s-256", f_evp_ctx, b2s },
		{ "OpenSSL BLAKE2b-512", f_evp_ctx, b2b },
		{ "libsodium SHA-256", f_na_sha256, NULL },
		{ "libsodium BLAKE2b/128 (generichash)", f_na_blake2b, NULL },
	};
	printf("| implementation |");
	for (int s = 0; s < nsizes; s++)
		printf(" %zu B: cycles | bytes/cycle |", sizes[s]);
	printf("\n|---|");
	for (int s = 0; s < nsizes; s++)
		printf("---:|---:|");
	printf("\n");
	for (size_t i = 0; i < sizeof(impl) / sizeof(impl[0]); i++) {
		printf("| %s |", impl[i].name);
		for (int s = 0; s < nsizes; s++) {
			double cy = cycles(impl[i].f, impl[i].ctx, sizes[s], rounds);
			printf(" %.0f | %.2f |", cy, sizes[s] / cy);
		}
		printf("\n");
		fflush(stdout);
	}
	EVP_MD_free(b2s[1]);
	EVP_MD_free(b2b[1]);
	EVP_MD_CTX_free(c);
	dp_verifier_free(v);
	return 0;
}
