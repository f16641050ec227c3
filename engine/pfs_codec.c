/* pfs_codec.c - bounds-checked PFS v1 codec (docs/protocol.md 3).
 *
 * Reads and writes go through a cursor that checks the remaining length
 * before every access, so a hostile datagram can at worst produce an error.
 * Decoding is strict: the body must be exactly as long as its type says,
 * unknown flag bits are rejected, and strings must be valid, so that every
 * accepted message re-encodes to the same bytes. Encoding is in
 * pfs_encode.c; the cursor and the field rules both apply, in
 * codec_internal.h.
 */
#include "pfs_codec.h"
#include "codec_internal.h"

#include <isa-l/crc.h>
#include <openssl/evp.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* ISA-L 2.30 (Debian 12) picks crc32_iscsi_by16_10 on AVX-512 machines, and
 * it returns with the upper halves of the vector registers dirty (no
 * vzeroupper). Every legacy-SSE instruction the compiler emits afterwards
 * (struct copies, memcpy of small sizes) then pays a state-transition
 * penalty or a false dependency: on one Xeon that made a 1408-byte CRC cost
 * ~600 cycles of the dataplane's time instead of ~100 (bench/RESULTS.md 1).
 * Clearing them is one instruction, legal wherever AVX is. */
__attribute__((target("avx"))) static void vector_upper_clear(void)
{
	_mm256_zeroupper();
}

static void crc_after(void)
{
	if (__builtin_cpu_supports("avx"))
		vector_upper_clear();
}
#else
static void crc_after(void) { }
#endif

uint32_t pfs_crc32c(const void *buf, size_t len)
{
	uint32_t crc = ~crc32_iscsi((unsigned char *)buf, (int)len, 0xffffffffu);

	crc_after();
	return crc;
}

uint64_t pfs_hier_key(const char *model, size_t mlen, const char *path, size_t plen)
{
	uint8_t in[PFS_MODEL_MAX + 1 + PFS_FILEPATH_MAX];
	uint8_t md[EVP_MAX_MD_SIZE];
	uint64_t k = 0;

	if (mlen > PFS_MODEL_MAX)
		mlen = PFS_MODEL_MAX;
	if (plen > PFS_FILEPATH_MAX)
		plen = PFS_FILEPATH_MAX;
	memcpy(in, model, mlen);
	in[mlen] = 0;
	memcpy(in + mlen + 1, path, plen);
	EVP_Digest(in, mlen + 1 + plen, md, NULL, EVP_sha256(), NULL);
	for (int i = 0; i < 8; i++)
		k = k << 8 | md[i];
	return k ? k : 1;
}

/* Models name a device family: short, [A-Za-z0-9._-], as the seed's CP-7961G. */
int pfs_model_valid(const char *s, size_t len)
{
	if (len == 0 || len > PFS_MODEL_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}

/* File paths are TFTP paths; printable, no "..", no backslash, so a peer
 * can map them under its output directory without escaping it. */
int pfs_filepath_valid(const char *s, size_t len)
{
	if (len == 0 || len > PFS_FILEPATH_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (ch < 0x21 || ch > 0x7e || ch == '\\')
			return 0;
		if (ch == '.' && i + 1 < len && s[i + 1] == '.' &&
		    (i == 0 || s[i - 1] == '/') && (i + 2 == len || s[i + 2] == '/'))
			return 0;
	}
	/* at least one non-slash character */
	for (size_t i = 0; i < len; i++)
		if (s[i] != '/')
			return 1;
	return 0;
}

static const char *const err_names[PFS_E_ERR_COUNT] = {
	"ok", "truncated header", "bad magic", "unsupported version",
	"unknown message type", "bad header flags", "length mismatch",
	"bad body size", "field out of range", "chunk CRC32C mismatch",
	"buffer too small",
};

const char *pfs_codec_strerror(int err)
{
	unsigned i = (unsigned)-err;
	return err <= 0 && i < PFS_E_ERR_COUNT ? err_names[i] : "unknown error";
}

static const char *const type_names[PFS_MSG_TYPE_MAX + 1] = {
	"?", "CLAIM", "ROOT", "JOIN", "ACCEPT", "REDIRECT", "REFUSE",
	"HEARTBEAT", "DATA", "ACK", "LEAVE", "MREQ", "MANIFEST", "RELAY",
};

const char *pfs_msg_type_name(unsigned type)
{
	return type <= PFS_MSG_TYPE_MAX ? type_names[type] : "?";
}

/* ---- decode ---------------------------------------------------------- */

/* model_len and path_len already read; the strings end the body. */
static int get_strings(struct cur *c, unsigned mlen, unsigned plen,
		       struct pfs_str *model, struct pfs_str *path)
{
	if (c->left != (size_t)mlen + plen)
		return PFS_E_BODY;
	model->p = (const char *)c->r; model->len = (uint16_t)mlen;
	path->p = (const char *)c->r + mlen; path->len = (uint16_t)plen;
	c->r += mlen + plen; c->left = 0;
	if (!pfs_model_valid(model->p, mlen) || !pfs_filepath_valid(path->p, plen))
		return PFS_E_FIELD;
	return PFS_OK;
}

static int get_status(struct cur *c, struct pfs_status *st)
{
	if (!need(c, sizeof(struct pfs_wire_status)))
		return PFS_E_BODY;
	st->mflags = get8(c);
	st->npath = get8(c);
	(void)get16(c);
	st->chunk_size = get32(c);
	st->size = get64(c);
	memcpy(st->sha256, c->r, 32); c->r += 32; c->left -= 32;
	st->parent_prefix = get32(c);
	st->manifest_len = get32(c);
	if (st->npath > PFS_PATH_MAX || c->left != (size_t)st->npath * 4)
		return st->npath > PFS_PATH_MAX ? PFS_E_FIELD : PFS_E_BODY;
	for (unsigned i = 0; i < st->npath; i++)
		st->path[i] = get32(c);
	if ((st->mflags & ~PFS_MF_KNOWN) || st->npath == 0 ||
	    st->chunk_size == 0 || st->chunk_size > PFS_CHUNK_MAX)
		return PFS_E_FIELD;
	/* A final manifest must describe a chunk count that fits 32 bits. */
	if ((st->mflags & PFS_MF_FINAL) &&
	    pfs_chunk_count(st->size, st->chunk_size) > UINT32_MAX)
		return PFS_E_FIELD;
	for (unsigned i = 0; i < st->npath; i++)
		if (st->path[i] == 0)
			return PFS_E_FIELD;
	return manifest_len_valid(st) ? PFS_OK : PFS_E_FIELD;
}

static int get_ack(struct cur *c, struct pfs_msg_ack *a)
{
	uint32_t prev_end;

	if (!need(c, sizeof(struct pfs_wire_ack)))
		return PFS_E_BODY;
	a->cum = get32(c);
	a->highest = get32(c);
	a->limit = get32(c);
	a->subtree_nodes = get32(c);
	a->flags = get8(c);
	a->nranges = get8(c);
	(void)get16(c);
	if (a->nranges > PFS_ACK_RANGES_MAX)
		return PFS_E_FIELD;
	if (c->left != (size_t)a->nranges * sizeof(struct pfs_wire_range))
		return PFS_E_BODY;
	if ((a->flags & ~PFS_AF_KNOWN) || a->cum > a->highest ||
	    a->limit < a->cum || a->subtree_nodes == 0)
		return PFS_E_FIELD;
	prev_end = a->cum;
	for (unsigned i = 0; i < a->nranges; i++) {
		struct pfs_range *r = &a->ranges[i];
		r->start = get32(c);
		r->count = get32(c);
		/* ascending, disjoint, non-empty, inside [cum, highest) */
		if (r->count == 0 || r->start < prev_end ||
		    r->start > a->highest || a->highest - r->start < r->count)
			return PFS_E_FIELD;
		if (i > 0 && r->start == prev_end)
			return PFS_E_FIELD; /* adjacent ranges must be merged */
		prev_end = r->start + r->count;
	}
	return PFS_OK;
}

static int get_relay(struct cur *c, struct pfs_msg *m)
{
	struct pfs_msg_relay *r = &m->u.relay;
	uint8_t flags;

	if (!need(c, sizeof(struct pfs_wire_relay)))
		return PFS_E_BODY;
	r->strength = get32(c);
	r->hold_ms = get16(c);
	r->model.len = get8(c);
	flags = get8(c);
	if (c->left != r->model.len)
		return PFS_E_BODY;
	r->model.p = (const char *)c->r;
	c->r += c->left; c->left = 0;
	return !flags && relay_valid(m) ? PFS_OK : PFS_E_FIELD;
}

static int decode_body(struct cur *c, struct pfs_msg *m)
{
	unsigned mlen, plen;
	int rc;

	switch (m->type) {
	case PFS_MSG_CLAIM:
		if (!need(c, sizeof(struct pfs_wire_claim)))
			return PFS_E_BODY;
		m->u.claim.strength = get32(c);
		m->u.claim.ad = get8(c);
		mlen = get8(c);
		plen = get16(c);
		rc = get_strings(c, mlen, plen, &m->u.claim.model, &m->u.claim.path);
		if (rc == PFS_OK && m->u.claim.strength == 0)
			rc = PFS_E_FIELD;
		return rc;
	case PFS_MSG_ROOT:
		if (!need(c, sizeof(struct pfs_wire_root)))
			return PFS_E_BODY;
		m->u.root.strength = get32(c);
		m->u.root.tree_nodes = get32(c);
		m->u.root.flags = get8(c);
		mlen = get8(c);
		plen = get16(c);
		rc = get_strings(c, mlen, plen, &m->u.root.model, &m->u.root.path);
		if (rc == PFS_OK && ((m->u.root.flags & ~PFS_RF_KNOWN) ||
				     m->u.root.strength == 0 || m->u.root.tree_nodes == 0))
			rc = PFS_E_FIELD;
		return rc;
	case PFS_MSG_JOIN:
		if (!need(c, sizeof(struct pfs_wire_join)))
			return PFS_E_BODY;
		m->u.join.subtree_nodes = get32(c);
		m->u.join.hops = get8(c);
		mlen = get8(c);
		plen = get16(c);
		rc = get_strings(c, mlen, plen, &m->u.join.model, &m->u.join.path);
		if (rc == PFS_OK && m->u.join.subtree_nodes == 0)
			rc = PFS_E_FIELD;
		return rc;
	case PFS_MSG_ACCEPT:
		if (!need(c, sizeof(struct pfs_wire_accept)))
			return PFS_E_BODY;
		m->u.accept.slot = get8(c);
		c->r += 3; c->left -= 3;
		return get_status(c, &m->u.accept.st);
	case PFS_MSG_HEARTBEAT:
		return get_status(c, &m->u.heartbeat);
	case PFS_MSG_REDIRECT:
		if (c->left != sizeof(struct pfs_wire_redirect))
			return PFS_E_BODY;
		m->u.redirect.target_id = get32(c);
		m->u.redirect.target_ip = get32(c);
		m->u.redirect.target_port = get16(c);
		(void)get16(c);
		if (!m->u.redirect.target_id || !m->u.redirect.target_ip ||
		    !m->u.redirect.target_port)
			return PFS_E_FIELD;
		return PFS_OK;
	case PFS_MSG_REFUSE:
	case PFS_MSG_LEAVE:
		if (c->left != sizeof(struct pfs_wire_reason))
			return PFS_E_BODY;
		m->u.reason.reason = get8(c);
		m->u.reason.answers = get8(c);
		c->r += 2; c->left -= 2;
		if (m->type == PFS_MSG_LEAVE)
			m->u.reason.answers = 0;        /* reserved there */
		return m->u.reason.reason <= PFS_REASON_MAX && refuse_answers_ok(m->u.reason.answers)
		       ? PFS_OK : PFS_E_FIELD;
	case PFS_MSG_DATA:         /* payload bounds: pfs_hdr_check() */
		m->u.data.index = get32(c);
		m->u.data.crc32c = get32(c);
		m->u.data.payload = c->r;
		m->u.data.len = (uint16_t)c->left;
		c->r += c->left; c->left = 0;
		if (pfs_crc32c(m->u.data.payload, m->u.data.len) != m->u.data.crc32c)
			return PFS_E_CRC;
		return PFS_OK;
	case PFS_MSG_ACK:
		return get_ack(c, &m->u.ack);
	case PFS_MSG_MREQ:
		if (c->left != sizeof(struct pfs_wire_mreq))
			return PFS_E_BODY;
		m->u.mreq.offset = get32(c);
		m->u.mreq.total = get32(c);
		return m->u.mreq.total && m->u.mreq.total <= PFS_MANIFEST_MAX &&
		       m->u.mreq.offset < m->u.mreq.total &&
		       m->u.mreq.offset % PFS_MPIECE_LEN == 0 ? PFS_OK : PFS_E_FIELD;
	case PFS_MSG_MANIFEST:
		if (c->left < sizeof(struct pfs_wire_mpiece) + 1 ||
		    c->left > sizeof(struct pfs_wire_mpiece) + PFS_MPIECE_LEN)
			return PFS_E_BODY;
		m->u.mpiece.total = get32(c);
		m->u.mpiece.offset = get32(c);
		m->u.mpiece.bytes = c->r;
		m->u.mpiece.len = (uint16_t)c->left;
		c->r += c->left; c->left = 0;
		return mpiece_valid(m->u.mpiece.total, m->u.mpiece.offset, m->u.mpiece.len) ?
		       PFS_OK : PFS_E_FIELD;
	case PFS_MSG_RELAY:
		return get_relay(c, m);
	default:
		return PFS_E_TYPE;
	}
}

int pfs_hdr_check(const uint8_t *buf, size_t len, struct pfs_hdr_view *v)
{
	struct cur c = { .r = buf, .left = len };

	memset(v, 0, sizeof(*v));
	if (len < PFS_HDR_LEN)
		return PFS_E_SHORT;
	if (get16(&c) != PFS_MAGIC)
		return PFS_E_MAGIC;
	if (get8(&c) != PFS_VERSION)
		return PFS_E_VERSION;
	v->type = get8(&c);
	if (v->type == 0 || v->type > PFS_MSG_TYPE_MAX)
		return PFS_E_TYPE;
	v->flags = get8(&c);
	v->auth_len = get8(&c);
	v->body_len = get16(&c);
	v->sender = get32(&c);
	v->hier = get64(&c);
	if ((v->flags & ~PFS_HF_KNOWN) ||
	    !!(v->flags & PFS_HF_AUTH) != (v->auth_len != 0) ||
	    v->auth_len > PFS_AUTH_MAX)
		return PFS_E_FLAGS;
	/* Exact: a tag or body length that does not add up to the datagram
	 * is refused here, before anyone computes a length from it. */
	if ((size_t)v->body_len + v->auth_len != c.left)
		return PFS_E_LENGTH;
	if (v->sender == 0 || v->hier == 0)
		return PFS_E_FIELD;
	if (v->type == PFS_MSG_DATA) {
		if (v->body_len < sizeof(struct pfs_wire_data) + 1)
			return PFS_E_BODY;
		if (v->body_len - sizeof(struct pfs_wire_data) > PFS_CHUNK_MAX)
			return PFS_E_FIELD;
	}
	v->body = buf + PFS_HDR_LEN;
	if (v->auth_len)
		v->auth = v->body + v->body_len;
	return PFS_OK;
}

int pfs_decode(const uint8_t *buf, size_t len, struct pfs_msg *m)
{
	struct pfs_hdr_view v;
	struct cur c;
	int rc;

	memset(m, 0, sizeof(*m));
	rc = pfs_hdr_check(buf, len, &v);
	m->type = v.type;
	if (rc < 0)
		return rc;
	m->flags = v.flags;
	m->auth_len = v.auth_len;
	m->sender = v.sender;
	m->hier = v.hier;
	m->auth = v.auth;
	c = (struct cur){ .r = v.body, .left = v.body_len };    /* the body alone */
	return decode_body(&c, m);
}
