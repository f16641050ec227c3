/* engine_script.h - the script fuzz_engine reads, one event a record; also
 * what gen_corpus --engine writes its seed scripts with.
 *
 *   flags(1) random(4) { op(1) fields... }
 *
 * op = kind | peer << 3. A message record is op, type - 1, k (ES_K_*), the
 * hierarchy (u32) unless k says ours, then its type's fields in the order
 * fuzz_engine.c's build() reads them. Numbers are big-endian; an input that
 * runs out reads zeros.
 */
#ifndef PFS_ENGINE_SCRIPT_H
#define PFS_ENGINE_SCRIPT_H

#include <stdint.h>

#define ES_MODEL        "CP-7961G"
#define ES_PATH         "dnld/fuzz.loads"
#define ES_CHUNK        1408
#define ES_FILE_SIZE    5000            /* four chunks, the last short */
#define ES_PEERS        4
#define ES_PEER_IP(i)   (0x0a000010u + (i))
#define ES_SELF_IP      0x0a000001u

/* First byte: the node under test. */
#define ES_F_ONE_CHILD      0x01
#define ES_F_STORE_FORWARD  0x02
#define ES_F_APPLIANCE      0x04
#define ES_F_SIGNED         0x08        /* trusts the publisher's key, nothing unsigned */
#define ES_F_SITE_KEY       0x10        /* a site key: peers' messages carry tags */
#define ES_F_RELAY          0x20        /* a site relay (the appliance, protocol.md 4.4) */
#define ES_F_SOLO           0x40        /* alone, from the server (the load server's way) */

enum es_kind {
	ES_RAW = 0,             /* u32 length (mod 1600), then the datagram's bytes */
	ES_MSG = 1,             /* also 2, 3: messages weigh more */
	ES_TIME = 4,            /* u8: (n + 1) x 10 ms pass */
	ES_TIMER = 5,           /* to the engine's next deadline */
	ES_UPSTREAM = 6,        /* u8 k: the server's side of a fetch (ES_U_*) */
	ES_DISK = 7,            /* u8: 0xEE fails the store (ENOSPC) */
};

static inline uint8_t es_op(enum es_kind kind, unsigned peer)
{
	return (uint8_t)(kind | (peer % ES_PEERS) << 3);
}

/* A message's k byte. */
#define ES_K_OURS   0x01        /* the file's hierarchy (else a u32 follows) */
#define ES_K_TRUTH  0x02        /* DATA, MANIFEST: the publisher's bytes; MREQ: its length */
#define ES_K_FORGED 0x04        /* DATA: other bytes of the chunk's own length (over
				 * ES_K_TRUTH; neither: a u8 and a u32 give the
				 * first byte and the length) */
#define ES_K_UNTAGGED 0x08      /* with a site key: a zero tag, not the peer's */

/* A status block's k byte: these fields are the truth, the rest read. */
#define ES_S_CHUNK  0x01
#define ES_S_SIZE   0x02
#define ES_S_SHA    0x04
#define ES_S_MANLEN 0x08

/* ES_UPSTREAM's k: k & 7 is what (3 and up: the manifest), the bits above how. */
#define ES_U_WRITE      0       /* u32 n (1 + n % 3000 bytes), u8 junk unless ES_U_TRUTH */
#define ES_U_DONE       1
#define ES_U_FAIL       2       /* ES_U_REAL: not found, else an I/O error */
#define ES_U_MANIFEST   3       /* ES_U_REAL: the signed one; 0x20: another; else none */
#define ES_U_TRUTH      0x08
#define ES_U_REAL       0x10

#endif
