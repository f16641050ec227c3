/* test_manifest.c - signed manifests (docs/protocol.md 9): round trip, every
 * single-byte change refused, truncation, wrong and unknown keys, another
 * name, rollback; chunk digests; key and state files. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pfs_codec.h"
#include "pfs_keys.h"
#include "pfs_manifest.h"

#define CHUNK 100
#define SIZE  950               /* 10 chunks, the last one short */

static uint8_t file[SIZE];

/* A manifest of file[] signed by seed but naming key_id (normally seed's). */
static uint8_t *make(const uint8_t seed[32], uint64_t key_id, const char *name, uint64_t seq,
		     size_t *len)
{
	uint8_t *m;

	for (size_t i = 0; i < SIZE; i++)
		file[i] = (uint8_t)(i * 7 + 3);
	m = pfs_manifest_from_buffer(file, SIZE, name, CHUNK, seq, key_id, seed, len);
	cr_assert(m);
	return m;
}

static void keys(uint8_t seed[32], uint8_t pub[32], struct pfs_trust *t)
{
	cr_assert_eq(pfs_keypair_new(seed, pub), 0);
	memset(t, 0, sizeof(*t));
	cr_assert_eq(pfs_trust_add_key(t, pub), 0);
}

Test(manifest, round_trip)
{
	uint8_t seed[32], pub[32], *m;
	struct pfs_trust t;
	struct pfs_manifest pm;
	size_t len;

	keys(seed, pub, &t);
	m = make(seed, pfs_key_id(pub), "fw/a.bin", 7, &len);
	cr_assert_eq(len, PFS_MAN_FIXED_LEN + 8 + 10 * 16 + 64);
	cr_assert_eq(pfs_manifest_verify(&t, m, len, "fw/a.bin", 7, &pm), PFS_MAN_OK);
	cr_assert_eq(pm.size, SIZE);
	cr_assert_eq(pm.nchunks, 10);
	cr_assert_eq(pm.chunk_size, CHUNK);
	cr_assert_eq(pm.sequence, 7);
	cr_assert_eq(pfs_manifest_chunk_len(&pm, 9), 50);
	for (uint32_t i = 0; i < 10; i++)
		cr_assert(pfs_manifest_chunk_ok(&pm, i, file + i * CHUNK, i == 9 ? 50 : CHUNK));
	/* A chunk with one bit changed, at the wrong index, or cut short: refused. */
	file[5] ^= 1;
	cr_assert_not(pfs_manifest_chunk_ok(&pm, 0, file, CHUNK));
	file[5] ^= 1;
	cr_assert_not(pfs_manifest_chunk_ok(&pm, 1, file, CHUNK));
	cr_assert_not(pfs_manifest_chunk_ok(&pm, 0, file, CHUNK - 1));
	cr_assert_not(pfs_manifest_chunk_ok(&pm, 10, file, 50));
	free(m);
}

Test(manifest, every_byte_change_refused)
{
	uint8_t seed[32], pub[32], *m;
	struct pfs_trust t;
	struct pfs_manifest pm;
	size_t len;

	keys(seed, pub, &t);
	m = make(seed, pfs_key_id(pub), "fw/a.bin", 7, &len);
	for (size_t i = 0; i < len; i++)
		for (int x = 1; x < 256; x <<= 1) {
			m[i] ^= (uint8_t)x;
			cr_assert_lt(pfs_manifest_verify(&t, m, len, NULL, 0, &pm), 0,
				     "byte %zu ^ %#x accepted", i, x);
			m[i] ^= (uint8_t)x;
		}
	cr_assert_eq(pfs_manifest_verify(&t, m, len, NULL, 0, &pm), PFS_MAN_OK);
	free(m);
}

Test(manifest, truncated_and_extended)
{
	uint8_t seed[32], pub[32], *m, *big;
	struct pfs_trust t;
	struct pfs_manifest pm;
	size_t len;

	keys(seed, pub, &t);
	m = make(seed, pfs_key_id(pub), "fw/a.bin", 7, &len);
	for (size_t l = 0; l < len; l++) {
		int rc = pfs_manifest_verify(&t, m, l, NULL, 0, &pm);
		cr_assert(rc == PFS_MAN_E_SHORT, "length %zu: %s", l, pfs_man_strerror(rc));
	}
	big = calloc(1, len + 1);
	memcpy(big, m, len);
	cr_assert_eq(pfs_manifest_verify(&t, big, len + 1, NULL, 0, &pm), PFS_MAN_E_LENGTH);
	free(big);
	free(m);
}

Test(manifest, keys_names_and_rollback)
{
	uint8_t seed[32], pub[32], seed2[32], pub2[32], *m;
	struct pfs_trust t, t2;
	struct pfs_manifest pm;
	size_t len;

	keys(seed, pub, &t);
	keys(seed2, pub2, &t2);
	m = make(seed, pfs_key_id(pub), "fw/a.bin", 7, &len);
	cr_assert_eq(pfs_manifest_verify(&t2, m, len, NULL, 0, &pm), PFS_MAN_E_KEY);
	cr_assert_eq(pfs_manifest_verify(&t, m, len, "fw/b.bin", 0, &pm), PFS_MAN_E_NAME);
	cr_assert_eq(pfs_manifest_verify(&t, m, len, "fw/a.bin", 8, &pm), PFS_MAN_E_ROLLBACK);
	free(m);
	/* Claims a trusted key's id, signed by another key: the signature fails. */
	m = make(seed, pfs_key_id(pub2), "fw/a.bin", 7, &len);
	cr_assert_eq(pfs_manifest_verify(&t2, m, len, NULL, 0, &pm), PFS_MAN_E_SIG);
	/* Two trusted keys (a rotation): either signs. */
	cr_assert_eq(pfs_trust_add_key(&t2, pub), 0);
	free(m);
	m = make(seed, pfs_key_id(pub), "fw/a.bin", 7, &len);
	cr_assert_eq(pfs_manifest_verify(&t2, m, len, NULL, 0, &pm), PFS_MAN_OK);
	free(m);
	/* Every error has its own message. */
	for (int e = 1; e < PFS_MAN_E_COUNT; e++)
		for (int f = e + 1; f < PFS_MAN_E_COUNT; f++)
			cr_assert_str_neq(pfs_man_strerror(-e), pfs_man_strerror(-f));
}

Test(keyfile, round_trip_and_wrong_kind)
{
	char dir[] = "/tmp/pfs-keyXXXXXX", sec[64], pubf[64], err[256];
	uint8_t seed[32], pub[32], back[32];
	struct pfs_site_key sk;
	struct stat st;

	cr_assert(mkdtemp(dir));
	snprintf(sec, sizeof(sec), "%s/s", dir);
	snprintf(pubf, sizeof(pubf), "%s/p", dir);
	cr_assert_eq(pfs_keypair_new(seed, pub), 0);
	cr_assert_eq(pfs_keyfile_write(sec, PFS_KEYFILE_SECRET, -1, seed, 0600, err, 256), 0);
	cr_assert_eq(pfs_keyfile_write(pubf, PFS_KEYFILE_PUBLIC, -1, pub, 0644, err, 256), 0);
	cr_assert_eq(stat(sec, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(pfs_keyfile_write(sec, PFS_KEYFILE_SECRET, -1, seed, 0600, err, 256), -EEXIST);
	cr_assert_eq(pfs_keyfile_read_secret(sec, back, err, 256), 0);
	cr_assert_eq(memcmp(back, seed, 32), 0);
	cr_assert_eq(pfs_keyfile_read_public(pubf, back, err, 256), 0);
	cr_assert_eq(memcmp(back, pub, 32), 0);
	/* A secret key given where a public one is wanted is named as such. */
	cr_assert_eq(pfs_keyfile_read_public(sec, back, err, 256), -EINVAL);
	cr_assert(strstr(err, "not a pfs-ed25519-public file"), "%s", err);
	cr_assert_eq(pfs_keyfile_read_site(pubf, &sk, err, 256), -EINVAL);
	unlink(sec);
	unlink(pubf);
	rmdir(dir);
}

Test(seqstate, survives_reopen_and_only_rises)
{
	char dir[] = "/tmp/pfs-seqXXXXXX", path[64], err[256];
	struct pfs_seqstate *s;
	FILE *f;

	cr_assert(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/state", dir);
	s = pfs_seqstate_open(path, err, sizeof(err));
	cr_assert(s, "%s", err);
	cr_assert_eq(pfs_seqstate_get(s, "fw/a"), 0);
	cr_assert_eq(pfs_seqstate_raise(s, "fw/a", 9), 0);
	cr_assert_eq(pfs_seqstate_raise(s, "fw/a", 5), 0);
	cr_assert_eq(pfs_seqstate_raise(s, "fw/b", 3), 0);
	pfs_seqstate_free(s);
	s = pfs_seqstate_open(path, err, sizeof(err));
	cr_assert(s, "%s", err);
	cr_assert_eq(pfs_seqstate_get(s, "fw/a"), 9);
	cr_assert_eq(pfs_seqstate_get(s, "fw/b"), 3);
	pfs_seqstate_free(s);
	/* A damaged state file is refused, not read as "no floor". */
	f = fopen(path, "a");
	fputs("garbage\n", f);
	fclose(f);
	cr_assert_null(pfs_seqstate_open(path, err, sizeof(err)));
	cr_assert(strstr(err, ":3:"), "%s", err);
	unlink(path);
	rmdir(dir);
}

/* Found by fuzz_manifest: a size near 2^64 once wrapped (size + chunk - 1)
 * to a small chunk count, so "18 EB in 0 chunks" parsed. */
Test(manifest, huge_size_does_not_wrap_the_chunk_count)
{
	uint8_t seed[32], pub[32], *m;
	struct pfs_trust t;
	struct pfs_manifest pm;
	size_t len;

	keys(seed, pub, &t);
	m = make(seed, pfs_key_id(pub), "fw/a.bin", 7, &len);
	for (int i = 16; i < 24; i++)
		m[i] = 0xff;                    /* size = 2^64 - 1 */
	m[12] = m[13] = m[14] = m[15] = 0;      /* nchunks = 0 */
	cr_assert_lt(pfs_manifest_parse(m, len, &pm), 0);
	cr_assert_eq(pfs_chunk_count(UINT64_MAX, 1408), UINT64_MAX / 1408 + 1);
	cr_assert_eq(pfs_chunk_count(2816, 1408), 2);
	cr_assert_eq(pfs_chunk_count(0, 1408), 0);
	free(m);
}
