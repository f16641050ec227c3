/* pfs_manifest.h - the signed firmware manifest (.pfsm), docs/protocol.md 9.
 *
 * A publisher signs, offline, one manifest per firmware file: its name, size,
 * chunk size, whole-file SHA-256, one 128-bit digest per chunk, a sequence
 * number against rollback, and an Ed25519 signature over all of it. Every
 * node checks the signature against the keys it trusts before it accepts a
 * single chunk of the file, then checks each chunk against its digest before
 * it stores or forwards it.
 *
 * Pure computation (OpenSSL libcrypto), no I/O: the engine, pfs-sign and the
 * dataplane share it. Key files are read by trust/keyfile.c.
 */
#ifndef PFS_MANIFEST_H
#define PFS_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PFS_MAN_MAGIC           0x5046534du     /* "PFSM" */
#define PFS_MAN_VERSION         1
#define PFS_MAN_ALG_SHA256_128  1               /* SHA-256 truncated to 16 bytes */
#define PFS_MAN_DIGEST_LEN      16
#define PFS_MAN_FIXED_LEN       80              /* fields before the name */
#define PFS_MAN_SIG_LEN         64              /* Ed25519 */
#define PFS_MAN_MAX_LEN         (16u << 20)     /* about a million chunks */
#define PFS_KEY_LEN             32
#define PFS_TRUST_MAX_KEYS      8

/* Why a manifest was refused: each has its own message. */
enum pfs_man_err {
	PFS_MAN_OK         = 0,
	PFS_MAN_E_SHORT    = -1,  /* shorter than its fixed fields, name and signature */
	PFS_MAN_E_MAGIC    = -2,  /* not a PFS manifest */
	PFS_MAN_E_VERSION  = -3,  /* format version or digest algorithm unknown */
	PFS_MAN_E_FIELD    = -4,  /* a field out of range (name, chunk size, counts) */
	PFS_MAN_E_LENGTH   = -5,  /* length disagrees with the chunk count */
	PFS_MAN_E_KEY      = -6,  /* signed by a key id that is not trusted */
	PFS_MAN_E_SIG      = -7,  /* signature does not verify */
	PFS_MAN_E_NAME     = -8,  /* signed for another file name */
	PFS_MAN_E_ROLLBACK = -9,  /* lower sequence than one already verified */
	PFS_MAN_E_UNSIGNED = -10, /* no manifest, and unsigned files are refused */
	PFS_MAN_E_NOMEM    = -11,
	PFS_MAN_E_COUNT    = 12,
};

const char *pfs_man_strerror(int err);

/* A parsed manifest; pointers point into the buffer it was parsed from. */
struct pfs_manifest {
	uint32_t chunk_size;
	uint32_t nchunks;
	uint64_t size;
	uint64_t sequence;
	uint64_t signed_at;             /* Unix seconds */
	uint64_t key_id;
	uint8_t sha256[32];             /* the whole file */
	const char *name;               /* not NUL-terminated */
	uint16_t name_len;
	const uint8_t *digests;         /* nchunks x PFS_MAN_DIGEST_LEN */
	const uint8_t *sig;
	size_t len;                     /* the whole manifest */
};

/* The keys a node trusts (publishers, or old and new during a rotation). */
struct pfs_trust {
	int nkeys;
	uint8_t keys[PFS_TRUST_MAX_KEYS][PFS_KEY_LEN];
	uint64_t key_ids[PFS_TRUST_MAX_KEYS];
	bool allow_unsigned;            /* accept files without a signed manifest */
};

/* Key id: the first 8 bytes (big-endian) of SHA-256(public key). */
uint64_t pfs_key_id(const uint8_t pub[PFS_KEY_LEN]);
int pfs_trust_add_key(struct pfs_trust *t, const uint8_t pub[PFS_KEY_LEN]);

/* Structure only: every field in range, lengths consistent. */
int pfs_manifest_parse(const uint8_t *buf, size_t len, struct pfs_manifest *m);

/* Parse, then check the signature against t's keys and that the manifest is
 * for name (exactly) with a sequence >= min_sequence. name may be NULL. */
int pfs_manifest_verify(const struct pfs_trust *t, const uint8_t *buf, size_t len,
			const char *name, uint64_t min_sequence, struct pfs_manifest *m);

/* Digest of one chunk: the first 16 bytes of its SHA-256. */
void pfs_chunk_digest(const void *data, size_t len, uint8_t out[PFS_MAN_DIGEST_LEN]);
/* Does chunk idx (len bytes) match the manifest? Checks the length too. */
bool pfs_manifest_chunk_ok(const struct pfs_manifest *m, uint32_t idx,
			   const void *data, size_t len);
/* Length of chunk idx by the manifest. */
uint32_t pfs_manifest_chunk_len(const struct pfs_manifest *m, uint32_t idx);

/* Size of a manifest for this name length and chunk count (0: too large). */
size_t pfs_manifest_len(size_t name_len, uint64_t nchunks);
/* Write the unsigned fields of a manifest: buf holds pfs_manifest_len()
 * bytes; digests are filled by the caller at pfs_manifest_digest_at(). */
int pfs_manifest_write_head(uint8_t *buf, size_t cap, const char *name, uint32_t chunk_size,
			    uint64_t size, uint64_t sequence, uint64_t signed_at,
			    uint64_t key_id, const uint8_t sha256[32]);
uint8_t *pfs_manifest_digest_at(uint8_t *buf, size_t name_len, uint32_t idx);
/* Sign bytes [0, len - 64) with an Ed25519 secret seed into the last 64. */
int pfs_manifest_sign(uint8_t *buf, size_t len, const uint8_t seed[PFS_KEY_LEN]);

/* A whole signed manifest of a file held in memory (tests, simulations;
 * pfs-sign streams files through the calls above). key_id is normally
 * pfs_key_id() of seed's public key. malloc'd, *len set; NULL + errno. */
uint8_t *pfs_manifest_from_buffer(const uint8_t *data, uint64_t size, const char *name,
				  uint32_t chunk_size, uint64_t sequence, uint64_t key_id,
				  const uint8_t seed[PFS_KEY_LEN], size_t *len);

/* Ed25519 key pair from 32 random bytes (OpenSSL); 0 or -EIO. */
int pfs_keypair_new(uint8_t seed[PFS_KEY_LEN], uint8_t pub[PFS_KEY_LEN]);
int pfs_keypair_public(const uint8_t seed[PFS_KEY_LEN], uint8_t pub[PFS_KEY_LEN]);
/* n bytes from OpenSSL's CSPRNG; 0 or -EIO. */
int pfs_random_bytes(uint8_t *buf, size_t n);

#endif /* PFS_MANIFEST_H */
