/* driver.c - see pfs_driver.h. */
#include "pfs_driver.h"

#include "pfs_codec.h"

unsigned pfs_drive(struct pfs_engine *e, const struct pfs_driver_ops *ops, void *ctx,
		   uint8_t *buf, size_t cap)
{
	struct pfs_action a;
	unsigned n = 0;

	while (pfs_engine_poll(e, ops->now(ctx), &a, buf, cap) > 0) {
		pfs_driver_op *op = NULL;

		n++;
		if (ops->need_user && a.hidx >= 0 && !a.user)
			continue;
		switch (a.type) {
		case PFS_ACT_SEND: op = ops->send; break;
		case PFS_ACT_SEND_CHUNK: op = ops->send_chunk; break;
		case PFS_ACT_WRITE_CHUNK: op = ops->write_chunk; break;
		case PFS_ACT_UPSTREAM_START: op = ops->upstream_start; break;
		case PFS_ACT_UPSTREAM_ABORT: op = ops->upstream_abort; break;
		case PFS_ACT_MANIFEST_OK: op = ops->manifest_ok; break;
		case PFS_ACT_HASH_FILE: op = ops->hash_file; break;
		case PFS_ACT_FILE_DONE: op = ops->file_done; break;
		case PFS_ACT_FILE_FAILED: op = ops->file_failed; break;
		case PFS_ACT_EVENT: op = ops->event; break;
		default: break;
		}
		if (op)
			op(ctx, &a);
	}
	return n;
}

int pfs_chunk_datagram(const struct pfs_action *a, uint32_t sender, const uint8_t *payload,
		       uint8_t *out, size_t cap)
{
	struct pfs_msg m = { .type = PFS_MSG_DATA, .sender = sender, .hier = a->hier };

	if (a->len > PFS_CHUNK_MAX)
		return PFS_E_FIELD;
	m.u.data = (struct pfs_msg_data){ a->index, 0, payload, (uint16_t)a->len };
	return pfs_encode(&m, out, cap);
}

int pfs_upstream_store(const struct pfs_engine *e, int hidx, uint64_t off, const uint8_t *data,
		       size_t len, pfs_store_fn *store, void *ctx)
{
	while (len) {
		bool held;
		size_t n = pfs_engine_held_run(e, hidx, off, len, &held);
		int rc = held ? 0 : store(ctx, off, data, n);

		if (rc < 0)
			return rc;
		off += n;
		data += n;
		len -= n;
	}
	return 0;
}
