/* pfs_manifest.c - parse, verify, build and sign firmware manifests
 * (docs/protocol.md 9). Every primitive is OpenSSL's: SHA-256 (with the
 * CPU's SHA extensions where present) and Ed25519 (PureEdDSA over the whole
 * manifest). Nothing here allocates but OpenSSL's own contexts.
 */
#include "pfs_manifest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_codec.h"

static const char *const err_names[PFS_MAN_E_COUNT] = {
	"ok",
	"truncated manifest",
	"not a PFS manifest (bad magic)",
	"unsupported manifest version or digest algorithm",
	"manifest field out of range",
	"manifest length does not match its chunk count",
	"signed by a key that is not trusted",
	"signature does not verify",
	"manifest is for another file name",
	"sequence lower than one already verified (rollback)",
	"file is not signed and unsigned files are refused",
	"out of memory",
};

const char *pfs_man_strerror(int err)
{
	unsigned i = (unsigned)-err;
	return err <= 0 && i < PFS_MAN_E_COUNT ? err_names[i] : "unknown manifest error";
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }

uint64_t pfs_key_id(const uint8_t pub[PFS_KEY_LEN])
{
	uint8_t md[EVP_MAX_MD_SIZE];

	EVP_Digest(pub, PFS_KEY_LEN, md, NULL, EVP_sha256(), NULL);
	return be64(md);
}

int pfs_trust_add_key(struct pfs_trust *t, const uint8_t pub[PFS_KEY_LEN])
{
	uint64_t id = pfs_key_id(pub);

	for (int i = 0; i < t->nkeys; i++)
		if (t->key_ids[i] == id)
			return 0;       /* the same key given twice */
	if (t->nkeys == PFS_TRUST_MAX_KEYS)
		return -ENOSPC;
	memcpy(t->keys[t->nkeys], pub, PFS_KEY_LEN);
	t->key_ids[t->nkeys++] = id;
	return 0;
}

size_t pfs_manifest_len(size_t name_len, uint64_t nchunks)
{
	uint64_t n = PFS_MAN_FIXED_LEN + name_len + nchunks * PFS_MAN_DIGEST_LEN + PFS_MAN_SIG_LEN;

	return nchunks > PFS_MAN_MAX_LEN || n > PFS_MAN_MAX_LEN ? 0 : (size_t)n;
}

int pfs_manifest_parse(const uint8_t *b, size_t len, struct pfs_manifest *m)
{
	uint64_t want;

	memset(m, 0, sizeof(*m));
	if (len < PFS_MAN_FIXED_LEN + 1 + PFS_MAN_SIG_LEN)
		return PFS_MAN_E_SHORT;
	if (be32(b) != PFS_MAN_MAGIC)
		return PFS_MAN_E_MAGIC;
	if (b[4] != PFS_MAN_VERSION || b[5] != PFS_MAN_ALG_SHA256_128)
		return PFS_MAN_E_VERSION;
	if (b[6] != PFS_MAN_DIGEST_LEN || b[7] == 0)
		return PFS_MAN_E_FIELD;
	m->name_len = b[7];
	m->chunk_size = be32(b + 8);
	m->nchunks = be32(b + 12);
	m->size = be64(b + 16);
	m->sequence = be64(b + 24);
	m->signed_at = be64(b + 32);
	m->key_id = be64(b + 40);
	memcpy(m->sha256, b + 48, 32);
	m->name = (const char *)b + PFS_MAN_FIXED_LEN;
	if (len > PFS_MAN_MAX_LEN)
		return PFS_MAN_E_LENGTH;
	if (m->chunk_size == 0 || m->chunk_size > PFS_CHUNK_MAX ||
	    pfs_chunk_count(m->size, m->chunk_size) != m->nchunks)
		return PFS_MAN_E_FIELD;
	want = PFS_MAN_FIXED_LEN + (uint64_t)m->name_len +
	       (uint64_t)m->nchunks * PFS_MAN_DIGEST_LEN + PFS_MAN_SIG_LEN;
	if (want != len)
		return len < want ? PFS_MAN_E_SHORT : PFS_MAN_E_LENGTH;
	if (!pfs_filepath_valid(m->name, m->name_len))
		return PFS_MAN_E_FIELD;
	m->digests = b + PFS_MAN_FIXED_LEN + m->name_len;
	m->sig = b + len - PFS_MAN_SIG_LEN;
	m->len = len;
	return PFS_MAN_OK;
}

static int ed25519_verify(const uint8_t pub[PFS_KEY_LEN], const uint8_t *msg, size_t len,
			  const uint8_t *sig)
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, PFS_KEY_LEN);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = 0;

	if (pk && ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1)
		ok = EVP_DigestVerify(ctx, sig, PFS_MAN_SIG_LEN, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return ok;
}

int pfs_manifest_verify(const struct pfs_trust *t, const uint8_t *buf, size_t len,
			const char *name, uint64_t min_sequence, struct pfs_manifest *m)
{
	int rc = pfs_manifest_parse(buf, len, m), k;

	if (rc < 0)
		return rc;
	for (k = 0; k < t->nkeys; k++)
		if (t->key_ids[k] == m->key_id)
			break;
	if (k == t->nkeys)
		return PFS_MAN_E_KEY;
	if (!ed25519_verify(t->keys[k], buf, len - PFS_MAN_SIG_LEN, m->sig))
		return PFS_MAN_E_SIG;
	/* Only signed fields are judged from here on. */
	if (name && (strlen(name) != m->name_len || memcmp(name, m->name, m->name_len)))
		return PFS_MAN_E_NAME;
	if (m->sequence < min_sequence)
		return PFS_MAN_E_ROLLBACK;
	return PFS_MAN_OK;
}

/* SHA-256 fetched from the provider once per process, not at every chunk:
 * EVP_sha256() in a call makes OpenSSL 3 look the implementation up again
 * under its store's lock, a third of a 1408-byte digest's time
 * (pfs-hash-bench, bench/RESULTS.md 3.7). Threads that race to fetch keep
 * the first; the loser frees its own. Never freed: it lives as long as the
 * process, as OpenSSL's own EVP_sha256() does. */
static const EVP_MD *sha256_md(void)
{
	static _Atomic(EVP_MD *) md;
	EVP_MD *m = atomic_load_explicit(&md, memory_order_acquire), *none = NULL;

	if (m)
		return m;
	if (!(m = EVP_MD_fetch(NULL, "SHA256", NULL)))
		return EVP_sha256();    /* the one-shot lookup still works */
	if (!atomic_compare_exchange_strong(&md, &none, m)) {
		EVP_MD_free(m);
		m = none;
	}
	return m;
}

void pfs_chunk_digest(const void *data, size_t len, uint8_t out[PFS_MAN_DIGEST_LEN])
{
	uint8_t md[EVP_MAX_MD_SIZE];

	EVP_Digest(data, len, md, NULL, sha256_md(), NULL);
	memcpy(out, md, PFS_MAN_DIGEST_LEN);
}

uint32_t pfs_manifest_chunk_len(const struct pfs_manifest *m, uint32_t idx)
{
	if (idx >= m->nchunks)
		return 0;
	return idx + 1 == m->nchunks ? (uint32_t)(m->size - (uint64_t)idx * m->chunk_size)
				     : m->chunk_size;
}

bool pfs_manifest_chunk_ok(const struct pfs_manifest *m, uint32_t idx, const void *data,
			   size_t len)
{
	uint8_t d[PFS_MAN_DIGEST_LEN];

	if (idx >= m->nchunks || len != pfs_manifest_chunk_len(m, idx))
		return false;
	pfs_chunk_digest(data, len, d);
	return memcmp(d, m->digests + (size_t)idx * PFS_MAN_DIGEST_LEN, sizeof(d)) == 0;
}

int pfs_manifest_write_head(uint8_t *b, size_t cap, const char *name, uint32_t chunk_size,
			    uint64_t size, uint64_t sequence, uint64_t signed_at,
			    uint64_t key_id, const uint8_t sha256[32])
{
	size_t nlen = strlen(name);
	uint64_t nchunks;

	if (!pfs_filepath_valid(name, nlen) || chunk_size == 0 || chunk_size > PFS_CHUNK_MAX)
		return -EINVAL;
	nchunks = pfs_chunk_count(size, chunk_size);
	if (nchunks > UINT32_MAX || pfs_manifest_len(nlen, nchunks) == 0)
		return -EFBIG;
	if (cap < pfs_manifest_len(nlen, nchunks))
		return -ENOSPC;
	put32(b, PFS_MAN_MAGIC);
	b[4] = PFS_MAN_VERSION;
	b[5] = PFS_MAN_ALG_SHA256_128;
	b[6] = PFS_MAN_DIGEST_LEN;
	b[7] = (uint8_t)nlen;
	put32(b + 8, chunk_size);
	put32(b + 12, (uint32_t)nchunks);
	put64(b + 16, size);
	put64(b + 24, sequence);
	put64(b + 32, signed_at);
	put64(b + 40, key_id);
	memcpy(b + 48, sha256, 32);
	memcpy(b + PFS_MAN_FIXED_LEN, name, nlen);
	return 0;
}

uint8_t *pfs_manifest_digest_at(uint8_t *buf, size_t name_len, uint32_t idx)
{
	return buf + PFS_MAN_FIXED_LEN + name_len + (size_t)idx * PFS_MAN_DIGEST_LEN;
}

int pfs_manifest_sign(uint8_t *buf, size_t len, const uint8_t seed[PFS_KEY_LEN])
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, PFS_KEY_LEN);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t siglen = PFS_MAN_SIG_LEN;
	int rc = -EIO;

	if (len > PFS_MAN_SIG_LEN && pk && ctx &&
	    EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) == 1 &&
	    EVP_DigestSign(ctx, buf + len - PFS_MAN_SIG_LEN, &siglen, buf,
			   len - PFS_MAN_SIG_LEN) == 1 && siglen == PFS_MAN_SIG_LEN)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return rc;
}

uint8_t *pfs_manifest_from_buffer(const uint8_t *data, uint64_t size, const char *name,
				  uint32_t chunk_size, uint64_t sequence, uint64_t key_id,
				  const uint8_t seed[PFS_KEY_LEN], size_t *len)
{
	size_t nlen = strlen(name);
	uint64_t n = chunk_size ? pfs_chunk_count(size, chunk_size) : 0;
	uint8_t sha[EVP_MAX_MD_SIZE], *m;
	int rc;

	*len = pfs_manifest_len(nlen, n);
	if (!*len || !(m = calloc(1, *len))) {
		errno = *len ? ENOMEM : EFBIG;
		return NULL;
	}
	EVP_Digest(data, size, sha, NULL, EVP_sha256(), NULL);
	rc = pfs_manifest_write_head(m, *len, name, chunk_size, size, sequence, 0, key_id, sha);
	for (uint64_t i = 0; rc == 0 && i < n; i++)
		pfs_chunk_digest(data + i * chunk_size,
				 i + 1 == n ? size - i * chunk_size : chunk_size,
				 pfs_manifest_digest_at(m, nlen, (uint32_t)i));
	if (rc == 0)
		rc = pfs_manifest_sign(m, *len, seed);
	if (rc < 0) {
		free(m);
		errno = -rc;
		return NULL;
	}
	return m;
}

int pfs_keypair_public(const uint8_t seed[PFS_KEY_LEN], uint8_t pub[PFS_KEY_LEN])
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, PFS_KEY_LEN);
	size_t n = PFS_KEY_LEN;
	int rc = pk && EVP_PKEY_get_raw_public_key(pk, pub, &n) == 1 && n == PFS_KEY_LEN ? 0 : -EIO;

	EVP_PKEY_free(pk);
	return rc;
}

int pfs_random_bytes(uint8_t *buf, size_t n)
{
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -EIO;
}

int pfs_keypair_new(uint8_t seed[PFS_KEY_LEN], uint8_t pub[PFS_KEY_LEN])
{
	int rc = pfs_random_bytes(seed, PFS_KEY_LEN);

	return rc < 0 ? rc : pfs_keypair_public(seed, pub);
}
