/* upstream.c - the peer's side of the upstream TFTP fetch: first the signed
 * manifest PATH.pfsm into memory (when the engine wants it), then the file
 * to its temporary name. The engine checks the manifest and each chunk of
 * the file against it, and forwards chunks to the children while the fetch
 * goes on (cut-through from the root). The fetching itself is
 * upstream/pfs_fetch.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peer.h"
#include "pfs_driver.h"

/* The URL of path (or of its manifest), for messages. */
static const char *url_of(struct peer *p, const char *path, const char *suffix)
{
	static char url[PFS_FILEPATH_MAX + 512];
	char name[PFS_FILEPATH_MAX + 8];

	snprintf(name, sizeof(name), "%s%s", path, suffix);
	if (pfs_fetch_url(p->a.server, name, url, sizeof(url)) < 0)
		snprintf(url, sizeof(url), "%s", name);
	return url;
}

/* The file itself: where an earlier try over HTTP stopped, or from the
 * start. */
static int start_file(struct peer *p, int hidx, const char *path)
{
	uint64_t from;

	if (pfs_fetch_resume(p->fetch, hidx, &from) == 0) {
		peer_log_json_kv(p, "upstream_resume", path, "server", p->a.server,
				 "from", (long long)from);
		return 0;
	}
	peer_log_json_kv(p, "upstream_start", path, "server", p->a.server, NULL, 0);
	return pfs_fetch_start(p->fetch, hidx, p->a.server, path);
}

struct store_ctx {
	struct peer *p;
	int hidx;
};

static int store_run(void *ctx, uint64_t off, const uint8_t *data, size_t len)
{
	struct store_ctx *s = ctx;

	return peer_store_write(s->p, s->hidx, off, data, len);
}

static int on_write(void *ctx, int hidx, uint64_t off, const void *data, size_t len)
{
	struct peer *p = ctx;
	struct peer_file *f = &p->files[hidx];
	struct store_ctx s = { p, hidx };
	int rc;

	if (f->fetching_manifest)
		return pfs_membuf_append(&f->man, data, len, PFS_MAN_MAX_LEN);
	/* Not over chunks held already: a fetch that started again from 0
	 * would put unchecked bytes where children are sent checked ones. */
	rc = pfs_upstream_store(p->e, hidx, off, data, len, store_run, &s);
	if (rc < 0) {
		f->store_err = rc;      /* ours, not the server's: see on_failed */
		return rc;
	}
	return pfs_engine_upstream_write(p->e, (pfs_time_t)peer_now(), hidx, off, data, len);
}

static void on_progress(void *ctx, int hidx, uint64_t bytes)
{
	struct peer *p = ctx;

	(void)hidx;
	(void)bytes;
	peer_drain(p);          /* chunks the engine took in on_write go out */
}

/* The manifest is in (or the server has none): the engine judges it; the
 * file is fetched only if it was accepted. */
static void manifest_fetched(struct peer *p, int hidx, bool found)
{
	struct peer_file *f = &p->files[hidx];
	struct pfs_hier_info info;
	pfs_time_t now = (pfs_time_t)peer_now();
	int rc;

	pfs_engine_hier_info(p->e, hidx, &info);
	f->fetching_manifest = false;
	rc = pfs_engine_upstream_manifest(p->e, now, hidx, found ? f->man.p : NULL,
					  found ? f->man.len : 0);
	pfs_membuf_free(&f->man);
	if (rc < 0 && !found) {
		snprintf(f->fail_reason, sizeof(f->fail_reason), "no signed manifest %s.pfsm on "
			 "the server: the file is missing or unsigned", info.path);
		peer_log(p, "ERR", "manifest_missing", "%s: %s", url_of(p, info.path, ".pfsm"),
			 pfs_fetch_strerror(-ENOENT));
	} else if (rc < 0) {
		snprintf(f->fail_reason, sizeof(f->fail_reason), "%s.pfsm: %s", info.path,
			 pfs_man_strerror(rc));
		peer_log(p, "ERR", "manifest_rejected", "%s: %s", url_of(p, info.path, ".pfsm"),
			 pfs_man_strerror(rc));
	} else if ((rc = start_file(p, hidx, info.path)) < 0) {
		pfs_engine_upstream_failed(p->e, now, hidx, rc);
	}
	peer_drain(p);
}

static void on_done(void *ctx, int hidx, uint64_t size, const uint8_t sha[32])
{
	struct peer *p = ctx;
	struct pfs_hier_info info;

	if (p->files[hidx].fetching_manifest) {
		manifest_fetched(p, hidx, true);
		return;
	}
	pfs_engine_hier_info(p->e, hidx, &info);
	peer_log_json_kv(p, "upstream_done", info.path, "server", p->a.server,
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
	if (f->fetching_manifest && err == -ENOENT) {
		manifest_fetched(p, hidx, false);       /* unsigned: allowed or not */
		return;
	}
	f->fetching_manifest = false;
	pfs_membuf_free(&f->man);
	if (f->store_err) {
		int rc = f->store_err;
		f->store_err = 0;
		peer_store_failed(p, hidx, rc);
		peer_drain(p);
		return;
	}
	snprintf(f->fail_reason, sizeof(f->fail_reason), "%s", why);
	peer_log(p, "ERR", "upstream_error", "cannot fetch %s: %s", url_of(p, info.path, ""), why);
	pfs_engine_upstream_failed(p->e, (pfs_time_t)peer_now(), hidx, err);
	peer_drain(p);
}

static void on_note(void *ctx, int hidx, const char *what)
{
	struct peer *p = ctx;
	struct pfs_hier_info info;

	pfs_engine_hier_info(p->e, hidx, &info);
	peer_log(p, "WARN", "upstream_retry", "%s: %s", url_of(p, info.path, ""), what);
}

static const struct pfs_fetch_ops fetch_ops = {
	.write = on_write, .progress = on_progress, .done = on_done, .failed = on_failed,
	.note = on_note,
};

int peer_upstream_init(struct peer *p)
{
	p->fetch = pfs_fetch_new(p->epfd, &fetch_ops, p);
	if (!p->fetch)
		return -ENOMEM;
	pfs_fetch_set_limits(p->fetch, &p->a.limits);
	return p->a.ca_file ? pfs_fetch_set_ca_file(p->fetch, p->a.ca_file) : 0;
}

int peer_upstream_start(struct peer *p, int hidx, const char *path, bool want_manifest)
{
	struct peer_file *f = &p->files[hidx];
	char mpath[PFS_FILEPATH_MAX + 8];

	f->fetching_manifest = want_manifest;
	pfs_membuf_free(&f->man);
	if (!want_manifest)
		return start_file(p, hidx, path);
	snprintf(mpath, sizeof(mpath), "%s.pfsm", path);
	peer_log_json_kv(p, "manifest_fetch", path, "server", p->a.server, NULL, 0);
	return pfs_fetch_start(p->fetch, hidx, p->a.server, mpath);
}

void peer_upstream_abort(struct peer *p, int hidx)
{
	p->files[hidx].fetching_manifest = false;
	pfs_fetch_abort(p->fetch, hidx);
}

void peer_upstream_cleanup(struct peer *p)
{
	pfs_fetch_free(p->fetch);
	p->fetch = NULL;
	for (int i = 0; i < PEER_MAX_WANTS; i++) {
		pfs_membuf_free(&p->files[i].man);
	}
}
