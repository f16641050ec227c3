/* bitmap.h - growable chunk bitmap with a contiguous-prefix cursor.
 *
 * Tracks which chunks of a file a node holds. The file size may be unknown
 * until the root's final manifest, so the map grows on demand (bounded by the
 * caller). prefix is the first chunk not held: everything below it is.
 */
#ifndef PFS_BITMAP_H
#define PFS_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

struct pfs_bitmap {
	uint64_t *words;
	uint32_t nbits;         /* capacity in bits */
	uint32_t count;         /* bits set */
	uint32_t prefix;        /* first clear bit */
	uint32_t highest;       /* 1 + highest set bit, 0 if none */
};

/* Returns 1 if newly set, 0 if it was set, -ENOMEM. */
int pfs_bitmap_set(struct pfs_bitmap *b, uint32_t i);
bool pfs_bitmap_test(const struct pfs_bitmap *b, uint32_t i);
/* Set every bit in [0, n). */
int pfs_bitmap_set_prefix(struct pfs_bitmap *b, uint32_t n);
void pfs_bitmap_clear(struct pfs_bitmap *b);
void pfs_bitmap_free(struct pfs_bitmap *b);
/* First clear bit at or after i (may be >= nbits, meaning clear). */
uint32_t pfs_bitmap_next_clear(const struct pfs_bitmap *b, uint32_t i);
/* First set bit at or after i, or UINT32_MAX. */
uint32_t pfs_bitmap_next_set(const struct pfs_bitmap *b, uint32_t i);

#endif
