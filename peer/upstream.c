/* upstream.c - the peer's side of the upstream TFTP fetch: bytes go to the
 * file's temporary name, progress and the result go to the engine, which
 * forwards chunks to the children while the fetch goes on (cut-through from
 * the root). The fetching itself is upstream/pfs_fetch.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "peer.h"

static int on_write(void *ctx, int hidx, uint64_t off, const void *data, size_t len)
{
	return peer_store_write(ctx, hidx, off, data, len);
}

static void on_progress(void *ctx, int hidx, uint64_t bytes)
{
	struct peer *p = ctx;

	pfs_engine_upstream_data(p->e, (pfs_time_t)peer_now(), hidx, bytes);
	peer_drain(p);
}

static void on_done(void *ctx, int hidx, uint64_t size, const uint8_t sha[32])
{
	struct peer *p = ctx;
	struct pfs_hier_info info;

	pfs_engine_hier_info(p->e, hidx, &info);
	peer_log_json_kv(p, "upstream_done", info.path, "server", p->a.tftp,
			 "bytes", (long long)size);
	pfs_engine_upstream_done(p->e, (pfs_time_t)peer_now(), hidx, size, sha);
	peer_drain(p);
}

static void on_failed(void *ctx, int hidx, int err, const char *why)
{
	struct peer *p = ctx;
	struct peer_file *f = &p->files[hidx];
	struct pfs_hier_info info;

	pfs_engine_hier_info(p->e, hidx, &info);
	snprintf(f->fail_reason, sizeof(f->fail_reason), "%s", why);
	peer_log(p, "ERR", "upstream_error", "cannot fetch tftp://%s/%s: %s",
		 p->a.tftp, info.path, why);
	pfs_engine_upstream_failed(p->e, (pfs_time_t)peer_now(), hidx, err);
	peer_drain(p);
}

static const struct pfs_fetch_ops fetch_ops = {
	.write = on_write, .progress = on_progress, .done = on_done, .failed = on_failed,
};

int peer_upstream_init(struct peer *p)
{
	p->fetch = pfs_fetch_new(p->epfd, &fetch_ops, p);
	return p->fetch ? 0 : -ENOMEM;
}

int peer_upstream_start(struct peer *p, int hidx, const char *path)
{
	peer_log_json_kv(p, "upstream_start", path, "server", p->a.tftp, NULL, 0);
	return pfs_fetch_start(p->fetch, hidx, p->a.tftp, path);
}

void peer_upstream_abort(struct peer *p, int hidx)
{
	pfs_fetch_abort(p->fetch, hidx);
}

void peer_upstream_cleanup(struct peer *p)
{
	pfs_fetch_free(p->fetch);
	p->fetch = NULL;
}
