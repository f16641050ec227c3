/* pfs_encode.c - the PFS v1 encoder (docs/protocol.md 3): the same cursor
 * and field rules as the decoder (codec_internal.h), so that what it writes
 * the decoder accepts, and every decoded message re-encodes to its bytes.
 */
#include "pfs_codec.h"
#include "codec_internal.h"

#include <string.h>

static int put_strings_hdr(struct cur *c, struct pfs_str model, struct pfs_str path)
{
	if (!pfs_model_valid(model.p, model.len) || !pfs_filepath_valid(path.p, path.len))
		return PFS_E_FIELD;
	if (!need(c, 3u + model.len + path.len))
		return PFS_E_NOSPACE;
	put8(c, (uint8_t)model.len);
	put16(c, path.len);
	putbytes(c, model.p, model.len);
	putbytes(c, path.p, path.len);
	return PFS_OK;
}

static int put_status(struct cur *c, const struct pfs_status *st)
{
	if (st->npath == 0 || st->npath > PFS_PATH_MAX || (st->mflags & ~PFS_MF_KNOWN) ||
	    st->chunk_size == 0 || st->chunk_size > PFS_CHUNK_MAX || !manifest_len_valid(st))
		return PFS_E_FIELD;
	if (!need(c, sizeof(struct pfs_wire_status) + 4u * st->npath))
		return PFS_E_NOSPACE;
	put8(c, st->mflags);
	put8(c, st->npath);
	put16(c, 0);
	put32(c, st->chunk_size);
	put64(c, st->size);
	putbytes(c, st->sha256, 32);
	put32(c, st->parent_prefix);
	put32(c, st->manifest_len);
	for (unsigned i = 0; i < st->npath; i++)
		put32(c, st->path[i]);
	return PFS_OK;
}

static int encode_body(const struct pfs_msg *m, struct cur *c)
{
	const struct pfs_msg_ack *a;

	switch (m->type) {
	case PFS_MSG_CLAIM:
		if (!need(c, 5))
			return PFS_E_NOSPACE;
		put32(c, m->u.claim.strength);
		put8(c, m->u.claim.ad);
		return put_strings_hdr(c, m->u.claim.model, m->u.claim.path);
	case PFS_MSG_ROOT:
		if (!need(c, 9))
			return PFS_E_NOSPACE;
		put32(c, m->u.root.strength);
		put32(c, m->u.root.tree_nodes);
		put8(c, m->u.root.flags);
		return put_strings_hdr(c, m->u.root.model, m->u.root.path);
	case PFS_MSG_JOIN:
		if (!need(c, 5))
			return PFS_E_NOSPACE;
		put32(c, m->u.join.subtree_nodes);
		put8(c, m->u.join.hops);
		return put_strings_hdr(c, m->u.join.model, m->u.join.path);
	case PFS_MSG_ACCEPT:
		if (!need(c, sizeof(struct pfs_wire_accept)))
			return PFS_E_NOSPACE;
		put8(c, m->u.accept.slot);
		put8(c, 0); put16(c, 0);
		return put_status(c, &m->u.accept.st);
	case PFS_MSG_HEARTBEAT:
		return put_status(c, &m->u.heartbeat);
	case PFS_MSG_REDIRECT:
		if (!need(c, sizeof(struct pfs_wire_redirect)))
			return PFS_E_NOSPACE;
		put32(c, m->u.redirect.target_id);
		put32(c, m->u.redirect.target_ip);
		put16(c, m->u.redirect.target_port);
		put16(c, 0);
		return PFS_OK;
	case PFS_MSG_REFUSE:
	case PFS_MSG_LEAVE:
		if (m->u.reason.reason > PFS_REASON_MAX ||
		    (m->type == PFS_MSG_REFUSE && !refuse_answers_ok(m->u.reason.answers)))
			return PFS_E_FIELD;
		if (!need(c, sizeof(struct pfs_wire_reason)))
			return PFS_E_NOSPACE;
		put8(c, m->u.reason.reason);
		put8(c, m->type == PFS_MSG_REFUSE ? m->u.reason.answers : 0);
		put16(c, 0);
		return PFS_OK;
	case PFS_MSG_DATA:
		if (m->u.data.len == 0 || m->u.data.len > PFS_CHUNK_MAX)
			return PFS_E_FIELD;
		if (!need(c, sizeof(struct pfs_wire_data) + m->u.data.len))
			return PFS_E_NOSPACE;
		put32(c, m->u.data.index);
		put32(c, pfs_crc32c(m->u.data.payload, m->u.data.len));
		putbytes(c, m->u.data.payload, m->u.data.len);
		return PFS_OK;
	case PFS_MSG_ACK:
		a = &m->u.ack;
		if (a->nranges > PFS_ACK_RANGES_MAX)
			return PFS_E_FIELD;
		if (!need(c, sizeof(struct pfs_wire_ack) + 8u * a->nranges))
			return PFS_E_NOSPACE;
		put32(c, a->cum);
		put32(c, a->highest);
		put32(c, a->limit);
		put32(c, a->subtree_nodes);
		put8(c, a->flags);
		put8(c, a->nranges);
		put16(c, 0);
		for (unsigned i = 0; i < a->nranges; i++) {
			put32(c, a->ranges[i].start);
			put32(c, a->ranges[i].count);
		}
		return PFS_OK;
	case PFS_MSG_MREQ:
		if (!m->u.mreq.total || m->u.mreq.total > PFS_MANIFEST_MAX ||
		    m->u.mreq.offset >= m->u.mreq.total || m->u.mreq.offset % PFS_MPIECE_LEN)
			return PFS_E_FIELD;
		if (!need(c, sizeof(struct pfs_wire_mreq)))
			return PFS_E_NOSPACE;
		put32(c, m->u.mreq.offset);
		put32(c, m->u.mreq.total);
		return PFS_OK;
	case PFS_MSG_MANIFEST:
		if (!mpiece_valid(m->u.mpiece.total, m->u.mpiece.offset, m->u.mpiece.len))
			return PFS_E_FIELD;
		if (!need(c, sizeof(struct pfs_wire_mpiece) + m->u.mpiece.len))
			return PFS_E_NOSPACE;
		put32(c, m->u.mpiece.total);
		put32(c, m->u.mpiece.offset);
		putbytes(c, m->u.mpiece.bytes, m->u.mpiece.len);
		return PFS_OK;
	case PFS_MSG_RELAY:
		if (!relay_valid(m))
			return PFS_E_FIELD;
		if (!need(c, sizeof(struct pfs_wire_relay) + m->u.relay.model.len))
			return PFS_E_NOSPACE;
		put32(c, m->u.relay.strength);
		put16(c, m->u.relay.hold_ms);
		put8(c, (uint8_t)m->u.relay.model.len);
		put8(c, 0);
		putbytes(c, (const uint8_t *)m->u.relay.model.p, m->u.relay.model.len);
		return PFS_OK;
	default:
		return PFS_E_TYPE;
	}
}

int pfs_encode(const struct pfs_msg *m, uint8_t *buf, size_t cap)
{
	struct cur c = { .p = buf, .left = cap };
	size_t body_len, total;
	int rc;

	if (m->auth_len > PFS_AUTH_MAX || !!(m->flags & PFS_HF_AUTH) != (m->auth_len != 0) ||
	    (m->flags & ~PFS_HF_KNOWN))
		return PFS_E_FLAGS;
	if (m->sender == 0 || m->hier == 0)
		return PFS_E_FIELD;
	if (!need(&c, PFS_HDR_LEN))
		return PFS_E_NOSPACE;
	put16(&c, PFS_MAGIC);
	put8(&c, PFS_VERSION);
	put8(&c, m->type);
	put8(&c, m->flags);
	put8(&c, m->auth_len);
	put16(&c, 0);           /* body_len, patched below */
	put32(&c, m->sender);
	put64(&c, m->hier);
	rc = encode_body(m, &c);
	if (rc < 0)
		return rc;
	body_len = (size_t)(c.p - buf) - PFS_HDR_LEN;
	if (body_len > UINT16_MAX)
		return PFS_E_FIELD;
	if (m->auth_len) {
		if (!need(&c, m->auth_len))
			return PFS_E_NOSPACE;
		if (m->auth)
			putbytes(&c, m->auth, m->auth_len);
		else {
			memset(c.p, 0, m->auth_len);
			c.p += m->auth_len; c.left -= m->auth_len;
		}
	}
	buf[6] = (uint8_t)(body_len >> 8);
	buf[7] = (uint8_t)body_len;
	total = (size_t)(c.p - buf);
	return (int)total;
}
