/* actions.c - carry out the engine's actions with sockets and files.
 *
 * Called after every event given to the engine, so actions that point into
 * the receive buffer (WRITE_CHUNK) are used before the buffer is reused.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "peer.h"

static void send_chunk(struct peer *p, const struct pfs_action *act)
{
	struct pfs_msg m = { .type = PFS_MSG_DATA, .sender = ntohl(p->ip.s_addr),
			     .hier = act->hier };
	int len;

	if (act->len > sizeof(p->chunkbuf) ||
	    peer_store_read(p, act->hidx, act->offset, p->chunkbuf, act->len) < 0) {
		p->tx_errors++;
		return;
	}
	m.u.data = (struct pfs_msg_data){ act->index, 0, p->chunkbuf, (uint16_t)act->len };
	len = pfs_encode(&m, p->txbuf, sizeof(p->txbuf));
	if (len > 0)
		peer_udp_send(p, act, p->txbuf, (size_t)len);
}

static void do_action(struct peer *p, const struct pfs_action *act)
{
	struct peer_file *f = act->hidx >= 0 ? &p->files[act->hidx] : NULL;
	int rc;

	switch (act->type) {
	case PFS_ACT_SEND:
		peer_udp_send(p, act, act->msg, act->len);
		break;
	case PFS_ACT_SEND_CHUNK:
		send_chunk(p, act);
		break;
	case PFS_ACT_WRITE_CHUNK:
		rc = peer_store_write(p, act->hidx, act->offset, act->data, act->len);
		if (rc < 0)
			peer_store_failed(p, act->hidx, rc);
		break;
	case PFS_ACT_UPSTREAM_START:
		rc = peer_upstream_start(p, act->hidx, act->path, act->want_manifest);
		if (rc < 0)
			pfs_engine_upstream_failed(p->e, (pfs_time_t)peer_now(), act->hidx, rc);
		break;
	case PFS_ACT_UPSTREAM_ABORT:
		peer_upstream_abort(p, act->hidx);
		break;
	case PFS_ACT_HASH_FILE:
		/* Answered from the loop, a slice a turn (store.c): never
		 * from inside this drain. */
		peer_store_hash_start(p, act->hidx, act->size);
		break;
	case PFS_ACT_FILE_DONE:
		rc = peer_store_publish(p, act->hidx, act->size);
		if (rc < 0) {
			/* Verified, but not kept: a local failure like any other
			 * (children already served keep being served from it). */
			f->failed = f->local_failure = true;
			peer_store_strerror(p, act->hidx, rc, f->fail_reason, sizeof(f->fail_reason));
			peer_log(p, "ERR", "store_error", "cannot publish %s: %s", f->final_path,
				 f->fail_reason);
			break;
		}
		{
			char hex[65];
			for (int i = 0; i < 32; i++)
				snprintf(hex + 2 * i, 3, "%02x", act->sha256[i]);
			peer_log_json_kv(p, "file_done", act->path, "sha256", hex,
					 "size", (long long)act->size);
			if (!p->a.log_json)
				peer_log(p, "NOT", "file_done", "%s complete: %llu bytes sha256=%.16s...",
					 f->final_path, (unsigned long long)act->size, hex);
		}
		break;
	case PFS_ACT_FILE_FAILED:
		f->failed = true;
		if (act->b == PFS_FAIL_SERVER && act->a == 0)
			snprintf(f->fail_reason, sizeof(f->fail_reason), "three roots in turn could "
				 "not get it from the server (not reachable, stalled or cut short)");
		else if (act->b == PFS_FAIL_INVALID)
			snprintf(f->fail_reason, sizeof(f->fail_reason), "larger than this node "
				 "accepts");
		else if (!f->fail_reason[0])
			snprintf(f->fail_reason, sizeof(f->fail_reason), "%s",
				 pfs_fetch_strerror(-(int)act->a));
		peer_log_json_kv(p, "file_failed", act->path, "reason", f->fail_reason,
				 "cause", (long long)act->b);
		break;
	case PFS_ACT_EVENT:
		peer_log_event(p, act);
		break;
	case PFS_ACT_MANIFEST_OK:
		rc = pfs_seqstate_raise(p->seqstate, act->path, act->sequence);
		if (rc < 0)     /* the protection is weaker after a restart: say so */
			peer_log(p, "ERR", "state_error", "cannot keep sequence %llu of %s: %s",
				 (unsigned long long)act->sequence, act->path, strerror(-rc));
		peer_log_json_kv(p, "manifest_verified", act->path, "state", "ok",
				 "sequence", (long long)act->sequence);
		break;
	default:
		break;
	}
}

void peer_store_failed(struct peer *p, int hidx, int err)
{
	struct peer_file *f = &p->files[hidx];

	if (f->failed || f->published)
		return;
	peer_store_strerror(p, hidx, err, f->fail_reason, sizeof(f->fail_reason));
	f->local_failure = true;
	peer_log(p, "ERR", "store_error", "%s: %s: this node gives the file up and hands its "
		 "place in the tree to the others", p->a.wants[hidx], f->fail_reason);
	pfs_engine_store_failed(p->e, (pfs_time_t)peer_now(), hidx, err);
}

void peer_drain(struct peer *p)
{
	struct pfs_action act;

	while (pfs_engine_poll(p->e, (pfs_time_t)peer_now(), &act, p->txbuf, sizeof(p->txbuf)) > 0)
		do_action(p, &act);
}
