/* codec_internal.h - what the PFS decoder (pfs_codec.c) and encoder
 * (pfs_encode.c) share: the bounds-checked cursor and the field rules both
 * apply, so that a field is valid on the way in exactly when it is on the
 * way out (docs/protocol.md 3).
 */
#ifndef PFS_CODEC_INTERNAL_H
#define PFS_CODEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pfs_codec.h"

struct cur {
	uint8_t *p;             /* NULL while decoding */
	const uint8_t *r;
	size_t left;
};

static inline int need(struct cur *c, size_t n) { return c->left >= n; }

static inline uint8_t get8(struct cur *c) { c->left -= 1; return *c->r++; }
static inline uint16_t get16(struct cur *c)
{
	uint16_t v = (uint16_t)(c->r[0] << 8 | c->r[1]);
	c->r += 2; c->left -= 2;
	return v;
}
static inline uint32_t get32(struct cur *c)
{
	uint32_t v = (uint32_t)c->r[0] << 24 | (uint32_t)c->r[1] << 16 |
		     (uint32_t)c->r[2] << 8 | c->r[3];
	c->r += 4; c->left -= 4;
	return v;
}
static inline uint64_t get64(struct cur *c)
{
	uint64_t hi = get32(c);
	return hi << 32 | get32(c);
}

static inline void put8(struct cur *c, uint8_t v) { *c->p++ = v; c->left -= 1; }
static inline void put16(struct cur *c, uint16_t v) { put8(c, v >> 8); put8(c, v & 0xff); }
static inline void put32(struct cur *c, uint32_t v) { put16(c, v >> 16); put16(c, v & 0xffff); }
static inline void put64(struct cur *c, uint64_t v) { put32(c, v >> 32); put32(c, (uint32_t)v); }
static inline void putbytes(struct cur *c, const void *b, size_t n)
{
	if (n)
		memcpy(c->p, b, n);
	c->p += n; c->left -= n;
}

/* SIGNED and a manifest length come together, within bounds. */
static inline int manifest_len_valid(const struct pfs_status *st)
{
	if (!(st->mflags & PFS_MF_SIGNED))
		return st->manifest_len == 0;
	return (st->mflags & PFS_MF_FINAL) && st->manifest_len &&
	       st->manifest_len <= PFS_MANIFEST_MAX;
}

/* A manifest in transit: pieces of PFS_MPIECE_LEN at multiples of it, the
 * last one shorter; offset inside the manifest. */
static inline int mpiece_valid(uint32_t total, uint32_t offset, size_t len)
{
	return total && total <= PFS_MANIFEST_MAX && offset < total &&
	       offset % PFS_MPIECE_LEN == 0 &&
	       len == (total - offset < PFS_MPIECE_LEN ? total - offset : PFS_MPIECE_LEN);
}

/* What a REFUSE answers: a JOIN, an ACK, or unsaid (0, an older sender). */
static inline int refuse_answers_ok(uint8_t t)
{
	return t == 0 || t == PFS_MSG_JOIN || t == PFS_MSG_ACK;
}

/* A relay speaks for every hierarchy (PFS_HIER_ALL) of one model or of
 * all (model_len 0), with a class and CONFIRMED in its strength. */
static inline int relay_valid(const struct pfs_msg *m)
{
	const struct pfs_msg_relay *r = &m->u.relay;

	return m->hier == PFS_HIER_ALL && (r->strength >> PFS_STRENGTH_CLASS_SHIFT) &&
	       (r->strength & PFS_STRENGTH_CONFIRMED) && r->hold_ms &&
	       r->model.len <= PFS_MODEL_MAX &&
	       (r->model.len == 0 || pfs_model_valid(r->model.p, r->model.len));
}

#endif /* PFS_CODEC_INTERNAL_H */
