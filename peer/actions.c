/* actions.c - the engine's actions with sockets and files: pfs-peer's ops
 * table for pfs_drive() (engine/pfs_driver.h).
 *
 * Driven after every event given to the engine, so actions that point into
 * the receive buffer (WRITE_CHUNK) are used before the buffer is reused.
 * Datagrams are queued, not sent: udp.c sends them in batches when the
 * loop turn ends or the batch is full.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "peer.h"
#include "pfs_driver.h"

/* A chunk to a child: the same chunk to its sibling reuses the bytes
 * already encoded; a chunk just received is sent from the receive buffer;
 * only a repair or a late child's catch-up reads the file. */
static void do_send_chunk(void *ctx, const struct pfs_action *act)
{
	struct peer *p = ctx;
	const uint8_t *payload = p->chunkbuf;

	if (peer_udp_chunk_queued(p, act))
		return;
	if (p->wrote.data && p->wrote.hidx == act->hidx && p->wrote.offset == act->offset &&
	    p->wrote.len == act->len) {
		payload = p->wrote.data;
	} else if (act->len > sizeof(p->chunkbuf) ||
		   peer_store_read(p, act->hidx, act->offset, p->chunkbuf, act->len) < 0) {
		p->tx_errors++;
		return;
	} else {
		p->chunks_read_back++;
	}
	peer_udp_send_chunk(p, act, payload);
}

static void do_send(void *ctx, const struct pfs_action *act)
{
	peer_udp_send(ctx, act, act->msg, act->len);
}

static void do_write_chunk(void *ctx, const struct pfs_action *act)
{
	struct peer *p = ctx;
	int rc = peer_store_write(p, act->hidx, act->offset, act->data, act->len);

	if (rc < 0) {
		peer_store_failed(p, act->hidx, rc);
		return;
	}
	p->wrote.hidx = act->hidx;
	p->wrote.offset = act->offset;
	p->wrote.len = act->len;
	p->wrote.data = act->data;
}

static void do_upstream_start(void *ctx, const struct pfs_action *act)
{
	struct peer *p = ctx;
	int rc = peer_upstream_start(p, act->hidx, act->path, act->want_manifest);

	if (rc < 0)
		pfs_engine_upstream_failed(p->e, (pfs_time_t)peer_now(), act->hidx, rc);
}

static void do_upstream_abort(void *ctx, const struct pfs_action *act)
{
	peer_upstream_abort(ctx, act->hidx);
}

/* Answered from the loop, a slice a turn (store.c): never from inside the
 * drain. */
static void do_hash_file(void *ctx, const struct pfs_action *act)
{
	peer_store_hash_start(ctx, act->hidx, act->size);
}

static void do_file_done(void *ctx, const struct pfs_action *act)
{
	struct peer *p = ctx;
	struct peer_file *f = &p->files[act->hidx];
	char hex[65];
	int rc = peer_store_publish(p, act->hidx, act->size);

	if (rc < 0) {
		/* Verified, but not kept: a local failure like any other
		 * (children already served keep being served from it). */
		f->failed = f->local_failure = true;
		peer_store_strerror(p, act->hidx, rc, f->fail_reason, sizeof(f->fail_reason));
		peer_log(p, "ERR", "store_error", "cannot publish %s: %s", f->final_path,
			 f->fail_reason);
		return;
	}
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", act->sha256[i]);
	peer_log_json_kv(p, "file_done", act->path, "sha256", hex, "size", (long long)act->size);
	if (!p->a.log_json)
		peer_log(p, "NOT", "file_done", "%s complete: %llu bytes sha256=%.16s...",
			 f->final_path, (unsigned long long)act->size, hex);
}

static void do_file_failed(void *ctx, const struct pfs_action *act)
{
	struct peer *p = ctx;
	struct peer_file *f = &p->files[act->hidx];

	f->failed = true;
	if (act->b == PFS_FAIL_SERVER && act->a == 0)
		snprintf(f->fail_reason, sizeof(f->fail_reason), "three roots in turn could "
			 "not get it from the server (not reachable, stalled or cut short)");
	else if (act->b == PFS_FAIL_INVALID)
		snprintf(f->fail_reason, sizeof(f->fail_reason), "larger than this node accepts");
	else if (!f->fail_reason[0])
		snprintf(f->fail_reason, sizeof(f->fail_reason), "%s",
			 pfs_fetch_strerror(-(int)act->a));
	peer_log_json_kv(p, "file_failed", act->path, "reason", f->fail_reason,
			 "cause", (long long)act->b);
}

static void do_event(void *ctx, const struct pfs_action *act)
{
	peer_log_event(ctx, act);
}

static void do_manifest_ok(void *ctx, const struct pfs_action *act)
{
	struct peer *p = ctx;
	int rc = pfs_seqstate_raise(p->seqstate, act->path, act->sequence);

	if (rc < 0)     /* the protection is weaker after a restart: say so */
		peer_log(p, "ERR", "state_error", "cannot keep sequence %llu of %s: %s",
			 (unsigned long long)act->sequence, act->path, strerror(-rc));
	peer_log_json_kv(p, "manifest_verified", act->path, "state", "ok",
			 "sequence", (long long)act->sequence);
}

static pfs_time_t do_now(void *ctx)
{
	(void)ctx;
	return (pfs_time_t)peer_now();
}

static const struct pfs_driver_ops ops = {
	.now = do_now, .send = do_send, .send_chunk = do_send_chunk,
	.write_chunk = do_write_chunk, .upstream_start = do_upstream_start,
	.upstream_abort = do_upstream_abort, .manifest_ok = do_manifest_ok,
	.hash_file = do_hash_file, .file_done = do_file_done, .file_failed = do_file_failed,
	.event = do_event,
};

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
	pfs_drive(p->e, &ops, p, p->encbuf, sizeof(p->encbuf));
	p->wrote.data = NULL;           /* its receive buffer is reused next */
}
