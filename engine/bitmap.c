/* bitmap.c - growable chunk bitmap (see bitmap.h). */
#include "bitmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int grow(struct pfs_bitmap *b, uint32_t need_bits)
{
	uint64_t nb = b->nbits ? b->nbits : 1024;
	uint64_t *w;

	while (nb <= need_bits)
		nb *= 2;
	if (nb > (uint64_t)UINT32_MAX + 1)
		nb = (uint64_t)UINT32_MAX + 1;
	w = realloc(b->words, (size_t)(nb / 64) * sizeof(*w));
	if (!w)
		return -ENOMEM;
	memset(w + b->nbits / 64, 0, (size_t)(nb - b->nbits) / 64 * sizeof(*w));
	b->words = w;
	b->nbits = nb > UINT32_MAX ? UINT32_MAX - 63 : (uint32_t)nb;
	return 0;
}

bool pfs_bitmap_test(const struct pfs_bitmap *b, uint32_t i)
{
	return i < b->nbits && (b->words[i / 64] >> (i % 64) & 1);
}

uint32_t pfs_bitmap_next_clear(const struct pfs_bitmap *b, uint32_t i)
{
	while (i < b->nbits) {
		uint64_t w = ~b->words[i / 64] >> (i % 64);
		if (w)
			return i + (uint32_t)__builtin_ctzll(w);
		i = (i | 63) + 1;
	}
	return i;
}

uint32_t pfs_bitmap_next_set(const struct pfs_bitmap *b, uint32_t i)
{
	while (i < b->nbits) {
		uint64_t w = b->words[i / 64] >> (i % 64);
		if (w)
			return i + (uint32_t)__builtin_ctzll(w);
		i = (i | 63) + 1;
	}
	return UINT32_MAX;
}

int pfs_bitmap_set(struct pfs_bitmap *b, uint32_t i)
{
	if (i >= b->nbits) {
		int rc = grow(b, i);
		if (rc < 0)
			return rc;
	}
	if (b->words[i / 64] >> (i % 64) & 1)
		return 0;
	b->words[i / 64] |= 1ull << (i % 64);
	b->count++;
	if (i + 1 > b->highest)
		b->highest = i + 1;
	if (i == b->prefix)
		b->prefix = pfs_bitmap_next_clear(b, i);
	return 1;
}

int pfs_bitmap_set_prefix(struct pfs_bitmap *b, uint32_t n)
{
	/* Chunks arrive in order from upstream: set them one by one from the
	 * current prefix; cheap, since each bit is set once. */
	for (uint32_t i = b->prefix; i < n; i++) {
		int rc = pfs_bitmap_set(b, i);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void pfs_bitmap_clear(struct pfs_bitmap *b)
{
	if (b->words)
		memset(b->words, 0, (size_t)(b->nbits / 64) * sizeof(*b->words));
	b->count = b->prefix = b->highest = 0;
}

void pfs_bitmap_free(struct pfs_bitmap *b)
{
	free(b->words);
	memset(b, 0, sizeof(*b));
}
