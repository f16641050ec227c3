/* pfs_codec.h - encode and decode PFS v1 messages (docs/protocol.md 3).
 *
 * pfs_decode() turns any byte string into either a valid message or a named
 * error; it never reads outside [buf, buf + len). Decoded strings, the DATA
 * payload and the auth tag point into the caller's buffer and live as long as
 * it does. pfs_encode() writes a message into a caller buffer and returns its
 * length. Both return negative enum pfs_codec_err values on failure.
 */
#ifndef PFS_CODEC_H
#define PFS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "pfs_wire.h"

enum pfs_codec_err {
	PFS_OK        = 0,
	PFS_E_SHORT   = -1,  /* shorter than the header */
	PFS_E_MAGIC   = -2,  /* not a PFS datagram */
	PFS_E_VERSION = -3,  /* a version this build does not speak */
	PFS_E_TYPE    = -4,  /* unknown message type */
	PFS_E_FLAGS   = -5,  /* unknown header flag, or auth flag/length disagree */
	PFS_E_LENGTH  = -6,  /* body_len + auth_len does not match the datagram */
	PFS_E_BODY    = -7,  /* body size wrong for its type */
	PFS_E_FIELD   = -8,  /* a field out of range (string, count, flag, id) */
	PFS_E_CRC     = -9,  /* DATA payload does not match its CRC32C */
	PFS_E_NOSPACE = -10, /* encode: buffer too small */
	PFS_E_ERR_COUNT = 11,
};

const char *pfs_codec_strerror(int err);
/* Index 0..PFS_E_ERR_COUNT-1 for per-error counters. */
static inline unsigned pfs_codec_err_index(int err) { return (unsigned)-err; }

struct pfs_str {
	const char *p;
	uint16_t len;
};

struct pfs_msg_claim {
	uint32_t strength;
	uint8_t ad;
	struct pfs_str model, path;
};

struct pfs_msg_root {
	uint32_t strength;
	uint32_t tree_nodes;
	uint8_t flags;
	struct pfs_str model, path;
};

struct pfs_msg_join {
	uint32_t subtree_nodes;
	uint8_t hops;
	struct pfs_str model, path;
};

/* Parent status block: the manifest as the parent knows it plus its path. */
struct pfs_status {
	uint8_t mflags;
	uint8_t npath;
	uint32_t chunk_size;
	uint64_t size;
	uint8_t sha256[32];
	uint32_t parent_prefix;
	uint32_t manifest_len;        /* with PFS_MF_SIGNED */
	uint32_t path[PFS_PATH_MAX];  /* root first, the sender last */
};

struct pfs_msg_accept {
	uint8_t slot;
	struct pfs_status st;
};

struct pfs_msg_redirect {
	uint32_t target_id;
	uint32_t target_ip;     /* host order */
	uint16_t target_port;
};

struct pfs_msg_reason {
	uint8_t reason;
	uint8_t answers;        /* REFUSE: the type it answers, JOIN or ACK; 0 unsaid */
};

struct pfs_msg_data {
	uint32_t index;
	uint32_t crc32c;        /* filled by pfs_encode, checked by pfs_decode */
	const uint8_t *payload;
	uint16_t len;
};

struct pfs_range {
	uint32_t start;
	uint32_t count;
};

struct pfs_msg_ack {
	uint32_t cum;
	uint32_t highest;
	uint32_t limit;
	uint32_t subtree_nodes;
	uint8_t flags;
	uint8_t nranges;
	struct pfs_range ranges[PFS_ACK_RANGES_MAX];
};

struct pfs_msg_mreq {
	uint32_t offset;
	uint32_t total;
};

struct pfs_msg_mpiece {
	uint32_t total;
	uint32_t offset;
	const uint8_t *bytes;
	uint16_t len;
};

struct pfs_msg_relay {
	uint32_t strength;
	uint16_t hold_ms;
	struct pfs_str model;   /* len 0: every model */
};

struct pfs_msg {
	uint8_t type;
	uint8_t flags;
	uint8_t auth_len;
	uint32_t sender;
	uint64_t hier;
	const uint8_t *auth;    /* reserved tag, NULL unless PFS_HF_AUTH */
	union {
		struct pfs_msg_claim claim;
		struct pfs_msg_root root;
		struct pfs_msg_join join;
		struct pfs_msg_accept accept;
		struct pfs_msg_redirect redirect;
		struct pfs_msg_reason reason;   /* REFUSE, LEAVE */
		struct pfs_status heartbeat;
		struct pfs_msg_data data;
		struct pfs_msg_ack ack;
		struct pfs_msg_mreq mreq;
		struct pfs_msg_mpiece mpiece;
		struct pfs_msg_relay relay;
	} u;
};

/* What the header says, once pfs_hdr_check() accepted it. */
struct pfs_hdr_view {
	uint8_t type, flags, auth_len;
	uint16_t body_len;
	uint32_t sender;
	uint64_t hier;
	const uint8_t *body;            /* body_len bytes */
	const uint8_t *auth;            /* auth_len bytes, NULL without PFS_HF_AUTH */
};

/* The one header validator (docs/protocol.md 3.1, 3.3): magic, version,
 * type, flags and auth_len, the exact datagram length, non-zero sender and
 * hier, and for DATA the payload bounds (1..PFS_CHUNK_MAX bytes). pfs_decode()
 * starts with it and the dataplane's receive path uses it alone, so both
 * refuse the same datagrams for the same reasons. PFS_OK or an error. */
int pfs_hdr_check(const uint8_t *buf, size_t len, struct pfs_hdr_view *v);
/* DATA payload of a checked header. */
static inline const uint8_t *pfs_hdr_data_payload(const struct pfs_hdr_view *v, uint32_t *len)
{
	*len = (uint32_t)v->body_len - (uint32_t)sizeof(struct pfs_wire_data);
	return v->body + sizeof(struct pfs_wire_data);
}

int pfs_decode(const uint8_t *buf, size_t len, struct pfs_msg *out);
int pfs_encode(const struct pfs_msg *m, uint8_t *buf, size_t cap);

/* Chunks in a file of size bytes: ceil(size / chunk_size), without the
 * overflow of (size + chunk_size - 1) / chunk_size for sizes near 2^64 (a
 * hostile size would wrap to a small count). chunk_size must be non-zero. */
static inline uint64_t pfs_chunk_count(uint64_t size, uint32_t chunk_size)
{
	return size / chunk_size + (size % chunk_size != 0);
}

/* Standard CRC32C (Castagnoli); check value of "123456789" is 0xe3069283. */
uint32_t pfs_crc32c(const void *buf, size_t len);

/* Hierarchy key: first 8 bytes of SHA-256(model || 0x00 || path), never 0. */
uint64_t pfs_hier_key(const char *model, size_t mlen, const char *path, size_t plen);

/* Validation shared with the command line and config parsers. */
int pfs_model_valid(const char *s, size_t len);
int pfs_filepath_valid(const char *s, size_t len);

const char *pfs_msg_type_name(unsigned type);

#endif /* PFS_CODEC_H */
