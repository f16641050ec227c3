/* simstore.h - what a simulated node holds of a file.
 *
 * Two ways to hold it. STORE keeps the bytes, so tests can compare every
 * node's copy with the server's. VERIFY keeps one bit per chunk: a WRITE_CHUNK
 * is checked against the server's bytes at that offset when it happens and
 * only a matching chunk counts as held; SEND_CHUNK reads the server's bytes,
 * and only for a chunk held; HASH_FILE yields the server's digest only when
 * every chunk is held. Same verdicts, a few bytes per node instead of the
 * file: that is what lets pfs-sim run 100,000 nodes.
 */
#ifndef PFS_SIMSTORE_H
#define PFS_SIMSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bitmap.h"
#include "pfs_engine.h"

struct sfile {                          /* a file on the upstream server */
	const char *path;
	const uint8_t *data;
	size_t size;
	uint8_t sha[32];
	const uint8_t *man;             /* its signed manifest (path.pfsm), or NULL */
	size_t man_len;
};

struct simfile {
	const struct sfile *ref;        /* the server's copy, NULL if it has none */
	uint8_t *buf;                   /* STORE */
	size_t cap;
	struct pfs_bitmap held;         /* VERIFY: chunks that matched */
	size_t up_off;                  /* bytes fetched upstream so far */
	size_t size;                    /* FILE_DONE's size */
	bool done, failed;
	pfs_time_t done_at, attached_at;
	uint64_t up_gen;
	uint64_t store_limit;           /* a full disk: no byte stored past it; 0: none */
};

/* Store a received chunk. 0, -EILSEQ (differs from the server: VERIFY),
 * -ENOSPC (past store_limit) or -ENOMEM. */
int simfile_write(struct simfile *f, bool verify, uint64_t off, const uint8_t *d,
		  size_t len, uint32_t index);
/* The next blk bytes of the upstream fetch arrived. Stored as the real
 * drivers store them (pfs_upstream_store): not over chunks engine e holds
 * for hierarchy hidx (e NULL: all of them). 0, -ENOSPC or -ENOMEM. */
int simfile_upstream(struct simfile *f, bool verify, size_t blk, const struct pfs_engine *e,
		     int hidx);
/* Bytes of a chunk to send, or NULL if the node does not hold it. */
const uint8_t *simfile_chunk(const struct simfile *f, bool verify, uint64_t off, size_t len,
			     uint32_t index, uint32_t chunk_size);
/* SHA-256 of what the node holds as a file of size bytes. */
void simfile_hash(struct simfile *f, bool verify, uint64_t size, uint32_t chunk_size,
		  uint8_t sha[32]);
void simfile_free(struct simfile *f);

#endif
