/* pfs_wire.h - the PFS v1 wire format: one truth for every component.
 *
 * Included by the engine's codec, the reference peer, the dataplane, the BPF
 * steering program and the benchmarks. Fixed-width kernel types only, so it
 * compiles both for user space and for clang -target bpf. Every layout here
 * is specified, with its rationale, in docs/protocol.md section 3; the size
 * and every field offset below are checked at compile time against its
 * tables (the end of this file).
 *
 * All multi-byte fields are big-endian on the wire. The codec reads fields
 * with explicit big-endian loads and never casts a datagram to a struct. The
 * dataplane does, on the fast path (dataplane/parse.c, fanout.c, tmpl.h):
 * only after the header validator has checked the datagram's lengths, and
 * always converting with rte_be_to_cpu_*; these structs are packed, so an
 * unaligned datagram reads correctly on any CPU.
 */
#ifndef PFS_WIRE_H
#define PFS_WIRE_H

#include <linux/types.h>

#define PFS_PORT            4051    /* UDP; docs/protocol.md 2 */
#define PFS_MAGIC           0x5046  /* "PF" */
#define PFS_VERSION         1
#define PFS_TTL             255     /* sent with TTL 255, link-local guard */

#define PFS_HDR_LEN         20
#define PFS_MODEL_MAX       32
#define PFS_FILEPATH_MAX    255
#define PFS_PATH_MAX        32      /* ancestors carried in a status block */
#define PFS_ACK_RANGES_MAX  16
#define PFS_AUTH_MAX        64      /* reserved authentication tag */
#define PFS_CHUNK_DEFAULT   1408    /* 20 hdr + 8 data + 1408 + 28 UDP/IP = 1464 <= 1500 */
#define PFS_CHUNK_MAX       60000   /* fits body_len with the DATA fields */
#define PFS_DGRAM_MAX       (PFS_HDR_LEN + 8 + PFS_CHUNK_MAX + PFS_AUTH_MAX)

/* Message types (docs/protocol.md 3.2). */
enum pfs_msg_type {
	PFS_MSG_CLAIM     = 1,  /* tentative root claim, broadcast */
	PFS_MSG_ROOT      = 2,  /* confirmed root announcement, broadcast */
	PFS_MSG_JOIN      = 3,  /* ask a node for a child slot */
	PFS_MSG_ACCEPT    = 4,  /* slot granted; carries the parent status block */
	PFS_MSG_REDIRECT  = 5,  /* no slot here: try this node */
	PFS_MSG_REFUSE    = 6,  /* will not take this joiner (loop, not a member) */
	PFS_MSG_HEARTBEAT = 7,  /* parent status to a child */
	PFS_MSG_DATA      = 8,  /* one chunk */
	PFS_MSG_ACK       = 9,  /* child state: cumulative ack + NACK ranges + window */
	PFS_MSG_LEAVE     = 10, /* a node leaves its parent or children */
	PFS_MSG_MREQ      = 11, /* child asks its parent for manifest bytes */
	PFS_MSG_MANIFEST  = 12, /* a piece of the signed manifest */
	PFS_MSG_RELAY     = 13, /* a site relay (appliance) announces itself, broadcast */
	PFS_MSG_TYPE_MAX  = PFS_MSG_RELAY,
};

/* Header flags. */
#define PFS_HF_AUTH         0x01    /* auth_len tag bytes follow the body */
#define PFS_HF_KNOWN        PFS_HF_AUTH

/* Status block flags (manifest state). */
#define PFS_MF_FINAL        0x01    /* size and sha256 are final */
#define PFS_MF_FAILED       0x02    /* the root could not fetch the file */
#define PFS_MF_SIGNED       0x04    /* the sender holds a verified signed manifest */
#define PFS_MF_NOT_FOUND    0x08    /* with FAILED: the server said it has no such file */
#define PFS_MF_KNOWN        (PFS_MF_FINAL | PFS_MF_FAILED | PFS_MF_SIGNED | PFS_MF_NOT_FOUND)

/* Site-key tag (docs/protocol.md 3.4): key id, sequence, truncated HMAC. */
#define PFS_TAG_LEN         25              /* 1 + 8 + 16 */
#define PFS_TAG_MAC_LEN     16

/* Signed manifests travel down the tree in pieces (docs/protocol.md 6.7). */
#define PFS_MPIECE_LEN      1024            /* bytes per MANIFEST piece */
#define PFS_MANIFEST_MAX    (16u << 20)     /* = PFS_MAN_MAX_LEN */

/* RELAY is about every hierarchy: its header's hier field is this. */
#define PFS_HIER_ALL        0xffffffffffffffffull

/* ROOT flags. */
#define PFS_RF_FAILED       0x01    /* the server could not give the file */
#define PFS_RF_KNOWN        PFS_RF_FAILED

/* ACK flags. */
#define PFS_AF_STALL        0x01    /* nothing arrived for an ack interval */
#define PFS_AF_COMPLETE     0x02    /* the child holds the verified file */
#define PFS_AF_MORE         0x04    /* more holes than ranges listed */
#define PFS_AF_KNOWN        (PFS_AF_STALL | PFS_AF_COMPLETE | PFS_AF_MORE)

/* REFUSE and LEAVE reasons. */
enum pfs_reason {
	PFS_REASON_NONE       = 0,
	PFS_REASON_LOOP       = 1,  /* the joiner is an ancestor of the target */
	PFS_REASON_NOT_MEMBER = 2,  /* the target is not in this hierarchy */
	PFS_REASON_FAILED     = 3,  /* the hierarchy failed upstream */
	PFS_REASON_SHUTDOWN   = 4,  /* the node is exiting */
	PFS_REASON_REPARENT   = 5,  /* the node joins another parent */
	PFS_REASON_ROOT_GONE  = 6,  /* the root left: elect another, do not join it */
	PFS_REASON_ROOT_FAILED = 7, /* the root failed or stalled: leave it too */
	PFS_REASON_MAX        = PFS_REASON_ROOT_FAILED,
};

/* Strength layout (docs/protocol.md 4.1): compared as an unsigned integer,
 * ties broken by the larger node id. */
#define PFS_STRENGTH_CLASS_SHIFT  28            /* 4-bit priority class */
#define PFS_STRENGTH_CONFIRMED    (1u << 27)    /* set by a confirmed root */
#define PFS_STRENGTH_RANDOM_MASK  ((1u << 27) - 1)
#define PFS_CLASS_DEVICE          1
#define PFS_CLASS_APPLIANCE       8

struct pfs_wire_hdr {
	__be16 magic;
	__u8   version;
	__u8   type;
	__u8   flags;
	__u8   auth_len;
	__be16 body_len;
	__be32 sender;
	__be64 hier;
} __attribute__((packed));

/* Fixed parts of the bodies; variable parts follow as documented. */
struct pfs_wire_claim {         /* + model[model_len] + path[path_len] */
	__be32 strength;
	__u8   ad;
	__u8   model_len;
	__be16 path_len;
} __attribute__((packed));

struct pfs_wire_root {          /* + model + path */
	__be32 strength;
	__be32 tree_nodes;
	__u8   flags;
	__u8   model_len;
	__be16 path_len;
} __attribute__((packed));

struct pfs_wire_join {          /* + model + path */
	__be32 subtree_nodes;
	__u8   hops;
	__u8   model_len;
	__be16 path_len;
} __attribute__((packed));

struct pfs_wire_relay {         /* + model[model_len]; model_len 0: every model */
	__be32 strength;        /* the relay's class, CONFIRMED set */
	__be16 hold_ms;         /* good for this long after receipt */
	__u8   model_len;
	__u8   flags;           /* none defined: 0 */
} __attribute__((packed));

struct pfs_wire_status {        /* + __be32 path[npath], root first */
	__u8   mflags;
	__u8   npath;
	__be16 reserved;
	__be32 chunk_size;
	__be64 size;
	__u8   sha256[32];
	__be32 parent_prefix;
	__be32 manifest_len;    /* bytes of the sender's signed manifest, 0: none */
} __attribute__((packed));

struct pfs_wire_accept {        /* + status block */
	__u8   slot;
	__u8   reserved[3];
} __attribute__((packed));

struct pfs_wire_redirect {
	__be32 target_id;
	__be32 target_ip;
	__be16 target_port;
	__be16 reserved;
} __attribute__((packed));

struct pfs_wire_reason {        /* REFUSE and LEAVE */
	__u8   reason;
	__u8   answers;         /* REFUSE: the type of what it answers; LEAVE: 0 */
	__u8   reserved[2];
} __attribute__((packed));

struct pfs_wire_data {          /* + payload (1 .. PFS_CHUNK_MAX bytes) */
	__be32 index;
	__be32 crc32c;
} __attribute__((packed));

struct pfs_wire_range {
	__be32 start;
	__be32 count;
} __attribute__((packed));

struct pfs_wire_mreq {          /* MREQ */
	__be32 offset;          /* first byte wanted, a multiple of PFS_MPIECE_LEN */
	__be32 total;           /* the manifest_len the child learnt */
} __attribute__((packed));

struct pfs_wire_mpiece {        /* MANIFEST: + bytes[min(PFS_MPIECE_LEN, total - offset)] */
	__be32 total;
	__be32 offset;
} __attribute__((packed));

struct pfs_wire_ack {           /* + struct pfs_wire_range[nranges] */
	__be32 cum;
	__be32 highest;
	__be32 limit;
	__be32 subtree_nodes;
	__u8   flags;
	__u8   nranges;
	__be16 reserved;
} __attribute__((packed));

#define PFS_WIRE_CHECK(t, sz) _Static_assert(sizeof(struct t) == (sz), #t " layout")
PFS_WIRE_CHECK(pfs_wire_hdr, 20);
PFS_WIRE_CHECK(pfs_wire_claim, 8);
PFS_WIRE_CHECK(pfs_wire_root, 12);
PFS_WIRE_CHECK(pfs_wire_join, 8);
PFS_WIRE_CHECK(pfs_wire_status, 56);
PFS_WIRE_CHECK(pfs_wire_accept, 4);
PFS_WIRE_CHECK(pfs_wire_redirect, 12);
PFS_WIRE_CHECK(pfs_wire_reason, 4);
PFS_WIRE_CHECK(pfs_wire_data, 8);
PFS_WIRE_CHECK(pfs_wire_range, 8);
PFS_WIRE_CHECK(pfs_wire_ack, 20);
PFS_WIRE_CHECK(pfs_wire_mreq, 8);
PFS_WIRE_CHECK(pfs_wire_mpiece, 8);
PFS_WIRE_CHECK(pfs_wire_relay, 8);
#undef PFS_WIRE_CHECK

/* Every field at the offset docs/protocol.md 3 gives it. */
#define PFS_WIRE_AT(t, f, off) \
	_Static_assert(__builtin_offsetof(struct t, f) == (off), #t "." #f " offset")
PFS_WIRE_AT(pfs_wire_hdr, magic, 0);
PFS_WIRE_AT(pfs_wire_hdr, version, 2);
PFS_WIRE_AT(pfs_wire_hdr, type, 3);
PFS_WIRE_AT(pfs_wire_hdr, flags, 4);
PFS_WIRE_AT(pfs_wire_hdr, auth_len, 5);
PFS_WIRE_AT(pfs_wire_hdr, body_len, 6);
PFS_WIRE_AT(pfs_wire_hdr, sender, 8);
PFS_WIRE_AT(pfs_wire_hdr, hier, 12);
PFS_WIRE_AT(pfs_wire_claim, strength, 0);
PFS_WIRE_AT(pfs_wire_claim, ad, 4);
PFS_WIRE_AT(pfs_wire_claim, model_len, 5);
PFS_WIRE_AT(pfs_wire_claim, path_len, 6);
PFS_WIRE_AT(pfs_wire_root, strength, 0);
PFS_WIRE_AT(pfs_wire_root, tree_nodes, 4);
PFS_WIRE_AT(pfs_wire_root, flags, 8);
PFS_WIRE_AT(pfs_wire_root, model_len, 9);
PFS_WIRE_AT(pfs_wire_root, path_len, 10);
PFS_WIRE_AT(pfs_wire_join, subtree_nodes, 0);
PFS_WIRE_AT(pfs_wire_join, hops, 4);
PFS_WIRE_AT(pfs_wire_join, model_len, 5);
PFS_WIRE_AT(pfs_wire_join, path_len, 6);
PFS_WIRE_AT(pfs_wire_relay, strength, 0);
PFS_WIRE_AT(pfs_wire_relay, hold_ms, 4);
PFS_WIRE_AT(pfs_wire_relay, model_len, 6);
PFS_WIRE_AT(pfs_wire_relay, flags, 7);
PFS_WIRE_AT(pfs_wire_status, mflags, 0);
PFS_WIRE_AT(pfs_wire_status, npath, 1);
PFS_WIRE_AT(pfs_wire_status, reserved, 2);
PFS_WIRE_AT(pfs_wire_status, chunk_size, 4);
PFS_WIRE_AT(pfs_wire_status, size, 8);
PFS_WIRE_AT(pfs_wire_status, sha256, 16);
PFS_WIRE_AT(pfs_wire_status, parent_prefix, 48);
PFS_WIRE_AT(pfs_wire_status, manifest_len, 52);
PFS_WIRE_AT(pfs_wire_accept, slot, 0);
PFS_WIRE_AT(pfs_wire_accept, reserved, 1);
PFS_WIRE_AT(pfs_wire_redirect, target_id, 0);
PFS_WIRE_AT(pfs_wire_redirect, target_ip, 4);
PFS_WIRE_AT(pfs_wire_redirect, target_port, 8);
PFS_WIRE_AT(pfs_wire_redirect, reserved, 10);
PFS_WIRE_AT(pfs_wire_reason, reason, 0);
PFS_WIRE_AT(pfs_wire_reason, answers, 1);
PFS_WIRE_AT(pfs_wire_reason, reserved, 2);
PFS_WIRE_AT(pfs_wire_data, index, 0);
PFS_WIRE_AT(pfs_wire_data, crc32c, 4);
PFS_WIRE_AT(pfs_wire_range, start, 0);
PFS_WIRE_AT(pfs_wire_range, count, 4);
PFS_WIRE_AT(pfs_wire_mreq, offset, 0);
PFS_WIRE_AT(pfs_wire_mreq, total, 4);
PFS_WIRE_AT(pfs_wire_mpiece, total, 0);
PFS_WIRE_AT(pfs_wire_mpiece, offset, 4);
PFS_WIRE_AT(pfs_wire_ack, cum, 0);
PFS_WIRE_AT(pfs_wire_ack, highest, 4);
PFS_WIRE_AT(pfs_wire_ack, limit, 8);
PFS_WIRE_AT(pfs_wire_ack, subtree_nodes, 12);
PFS_WIRE_AT(pfs_wire_ack, flags, 16);
PFS_WIRE_AT(pfs_wire_ack, nranges, 17);
PFS_WIRE_AT(pfs_wire_ack, reserved, 18);
#undef PFS_WIRE_AT

#endif /* PFS_WIRE_H */
