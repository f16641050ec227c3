/* cursor.h - what the script fuzzers (fuzz_engine, fuzz_site) read their
 * input with: big-endian numbers, one byte at a time, zeros once it runs
 * out (so every input is a whole script). Header-only. */
#ifndef PFS_FUZZ_CURSOR_H
#define PFS_FUZZ_CURSOR_H

#include <stddef.h>
#include <stdint.h>

struct cur {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t u8(struct cur *c)
{
	if (!c->n)
		return 0;
	c->n--;
	return *c->p++;
}

static inline uint16_t u16(struct cur *c)
{
	uint16_t hi = u8(c);            /* one call a statement: a fixed order */

	return (uint16_t)(hi << 8 | u8(c));
}

static inline uint32_t u32(struct cur *c)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 8 | u8(c);
	return v;
}

#endif /* PFS_FUZZ_CURSOR_H */
