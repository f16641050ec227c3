/* prefix_hash.h - a file's SHA-256, advanced as its contiguous prefix grows.
 *
 * The whole-file digest a member checks against its manifest used to be
 * computed in one go once the last chunk came: on a file of a few hundred
 * MB that held pfs-peer's and pfs-control's event loops for seconds, past
 * the parent timeout. Here the digest follows the file instead: bytes
 * written in order are folded in as they are written (pfs_prefix_hash_
 * written), and whatever the driver's storage holds beyond that is read
 * back in slices bounded in time (pfs_prefix_hash_catch_up), one slice per
 * turn of the loop, so that no turn waits for more than a slice. Used by
 * pfs-peer (peer/store.c, its file on disk) and pfs-control
 * (control/hashing.c, the cache entry).
 */
#ifndef PFS_PREFIX_HASH_H
#define PFS_PREFIX_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long one slice may hash (pfs_prefix_hash_catch_up's default). */
#define PFS_PREFIX_HASH_SLICE_NS 2000000        /* 2 ms */

struct evp_md_ctx_st;

struct pfs_prefix_hash {
	struct evp_md_ctx_st *ctx;      /* NULL until first used */
	uint64_t done;                  /* bytes [0, done) folded in */
};

/* Bytes [off, off + len) of the file were (re)written: folded in when they
 * extend the prefix; a write below it starts the digest over (the file is
 * being fetched again). */
void pfs_prefix_hash_written(struct pfs_prefix_hash *h, uint64_t off, const void *b,
			     size_t len);

/* Reads len bytes at off of the driver's storage: 0, or negative errno. */
typedef int pfs_prefix_hash_read_fn(void *ctx, uint64_t off, void *buf, size_t len);

/* Fold in [done, upto) read through rd, for at most budget_ns (0: the
 * default slice): bytes still missing up to upto (0: covered), or negative
 * errno (the digest then starts over at the next call). */
int64_t pfs_prefix_hash_catch_up(struct pfs_prefix_hash *h, uint64_t upto, int64_t budget_ns,
				 pfs_prefix_hash_read_fn *rd, void *ctx);

/* The digest of [0, size): 0, or -EAGAIN while done < size (catch up
 * first). It starts over afterwards: the next file, or this one again. */
int pfs_prefix_hash_final(struct pfs_prefix_hash *h, uint64_t size, uint8_t sha[32]);

void pfs_prefix_hash_reset(struct pfs_prefix_hash *h);
void pfs_prefix_hash_free(struct pfs_prefix_hash *h);

#endif /* PFS_PREFIX_HASH_H */
