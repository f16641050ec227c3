/* test_simstore.c - the simulator's verified-bits store gives the verdicts a
 * byte store would: wrong bytes are not held, a chunk not held cannot be
 * sent, and only a file held whole hashes to the server's digest. */
#include <criterion/criterion.h>
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "simstore.h"

#define CHUNK 64
#define SIZE (CHUNK * 5 + 17)   /* a short last chunk */

static uint8_t data[SIZE];
static struct sfile ref;

static void setup(void)
{
	for (size_t i = 0; i < SIZE; i++)
		data[i] = (uint8_t)(i * 131 + 7);
	ref = (struct sfile){ .path = "fw.bin", .data = data, .size = SIZE };
	EVP_Digest(data, SIZE, ref.sha, NULL, EVP_sha256(), NULL);
}

TestSuite(simstore, .init = setup);

static uint32_t nchunks(void) { return (SIZE + CHUNK - 1) / CHUNK; }
static size_t clen(uint32_t i) { return i + 1 < nchunks() ? CHUNK : SIZE - (size_t)i * CHUNK; }

Test(simstore, verify_holds_only_the_servers_bytes)
{
	struct simfile f = { .ref = &ref };
	uint8_t bad[CHUNK], sha[32];

	memcpy(bad, data + CHUNK, CHUNK);
	bad[10] ^= 1;
	cr_assert_eq(simfile_write(&f, true, CHUNK, bad, CHUNK, 1), -EILSEQ);
	cr_assert_null(simfile_chunk(&f, true, CHUNK, CHUNK, 1, CHUNK), "a bad chunk is not held");
	cr_assert_eq(simfile_write(&f, true, SIZE - 3, data, 8, 9), -EILSEQ, "past the end");
	for (uint32_t i = 0; i < nchunks(); i++) {
		simfile_hash(&f, true, SIZE, CHUNK, sha);
		cr_assert_neq(memcmp(sha, ref.sha, 32), 0, "digest matches with %u of %u chunks",
			      i, nchunks());
		cr_assert_eq(simfile_write(&f, true, (uint64_t)i * CHUNK, data + i * CHUNK, clen(i), i), 0);
		cr_assert_eq(simfile_chunk(&f, true, (uint64_t)i * CHUNK, clen(i), i, CHUNK),
			     data + i * CHUNK);
	}
	simfile_hash(&f, true, SIZE, CHUNK, sha);
	cr_assert_eq(memcmp(sha, ref.sha, 32), 0);
	simfile_hash(&f, true, SIZE - 1, CHUNK, sha);
	cr_assert_neq(memcmp(sha, ref.sha, 32), 0, "another size is another file");
	simfile_free(&f);
}

Test(simstore, upstream_prefix_counts_as_held)
{
	struct simfile f = { .ref = &ref };
	uint8_t sha[32];

	cr_assert_eq(simfile_upstream(&f, true, CHUNK * 2 + 5, NULL, 0), 0);
	cr_assert_not_null(simfile_chunk(&f, true, CHUNK, CHUNK, 1, CHUNK));
	cr_assert_null(simfile_chunk(&f, true, 2 * CHUNK, CHUNK, 2, CHUNK), "only 5 bytes of it");
	simfile_hash(&f, true, SIZE, CHUNK, sha);
	cr_assert_neq(memcmp(sha, ref.sha, 32), 0);
	cr_assert_eq(simfile_upstream(&f, true, SIZE - (CHUNK * 2 + 5), NULL, 0), 0);
	simfile_hash(&f, true, SIZE, CHUNK, sha);
	cr_assert_eq(memcmp(sha, ref.sha, 32), 0);
	simfile_free(&f);
}

Test(simstore, store_mode_keeps_bytes)
{
	struct simfile f = { .ref = &ref };
	uint8_t sha[32], junk[CHUNK];

	memset(junk, 0xee, sizeof(junk));
	cr_assert_eq(simfile_write(&f, false, 0, junk, CHUNK, 0), 0, "stored as received");
	cr_assert_eq(memcmp(simfile_chunk(&f, false, 0, CHUNK, 0, CHUNK), junk, CHUNK), 0);
	for (uint32_t i = 0; i < nchunks(); i++)
		simfile_write(&f, false, (uint64_t)i * CHUNK, data + i * CHUNK, clen(i), i);
	simfile_hash(&f, false, SIZE, CHUNK, sha);
	cr_assert_eq(memcmp(sha, ref.sha, 32), 0);
	simfile_free(&f);
}
