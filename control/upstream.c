/* upstream.c - what a root hierarchy of the appliance takes from upstream,
 * and what it keeps: the signed manifest first, then the file, both into the
 * chunk cache (docs/appliance.md 4, docs/protocol.md 6.7).
 *
 *   UPSTREAM_START --want_manifest--> manifest cached? --yes--> engine checks it
 *        |                                 | no                    |
 *        |                      fetch PATH.pfsm into memory -------+
 *        v                                                         v ok
 *   file cached and complete? --yes--> every chunk through the engine's check
 *        | no                                   | a chunk fails: drop the entry
 *        v                                      v
 *   fetch PATH into the cache; each block through the engine's check
 *
 * A file fetch over HTTP that fails part-way keeps its slot and its partial
 * cache entry ("parked"): the engine's retry resumes it where its bytes
 * stopped (a Range request) instead of fetching the file again.
 *
 * One fetch per file, whatever asks for it: see upstream_share.c.
 *
 * A manifest is kept in the cache as its own entry (model, PATH.pfsm), so a
 * later wave of devices is served, signature and all, without a WAN byte.
 * A cached file is re-checked against the manifest at every hit (about 1 ms
 * per MB): the cache is a file on disk that anything could have changed.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "pfs_driver.h"

#define MAN_CHUNK 1024          /* cache chunk size of a manifest entry */

int ctl_fetch_slot_alloc(struct ctl *c, int eng, int hidx, bool manifest)
{
	for (int i = 0; i < PFS_FETCH_MAX; i++) {
		if (!c->fetch_slot[i].used) {
			c->fetch_slot[i] = (struct ctl_fetch_slot){ .used = true, .eng = eng,
								    .hidx = hidx,
								    .manifest = manifest };
			return i;
		}
	}
	return -EBUSY;
}

void ctl_fetch_slot_free(struct ctl_fetch_slot *s)
{
	pfs_membuf_free(&s->man);
	*s = (struct ctl_fetch_slot){ 0 };
}

/* The entry holding path: this model's first, else another model's (the
 * same path on the same server is the same bytes). complete: only a
 * complete one. -1 for none. */
int ctl_cache_lookup(const struct ctl *c, const char *model, const char *path, bool complete)
{
	int fi = model ? pfs_cache_find(c->cache, model, path) : -1, any = -1;
	struct pfs_cache_file *f = pfs_cache_file(c->cache, fi);

	if (f && (!complete || atomic_load(&f->state) == PFS_CF_COMPLETE))
		return fi;
	for (fi = 0; fi < PFS_CACHE_FILES && any < 0; fi++) {
		f = pfs_cache_file(c->cache, fi);
		if (f && atomic_load(&f->state) == PFS_CF_COMPLETE && !strcmp(f->path, path))
			any = fi;
	}
	return any;
}

/* "PATH.pfsm", the manifest's name on the server and in the cache. */
static int manifest_name(const char *path, char *out, size_t n)
{
	return (size_t)snprintf(out, n, "%s.pfsm", path) < n &&
	       pfs_filepath_valid(out, strlen(out)) ? 0 : -ENAMETOOLONG;
}

void ctl_manifest_keep(struct ctl *c, struct ctl_engine *ce, const struct pfs_action *act)
{
	char name[PFS_FILEPATH_MAX + 8];
	uint8_t sha[32];
	int rc, fi;

	rc = pfs_seqstate_raise(c->seqstate, act->path, act->sequence);
	if (rc < 0)
		ctl_log(c, "%s %s: cannot keep manifest sequence %llu: %s", ce->model, act->path,
			(unsigned long long)act->sequence, strerror(-rc));
	fi = manifest_name(act->path, name, sizeof(name)) < 0 ? -1 :
	     ctl_cache_lookup(c, ce->model, name, false);
	if (fi >= 0 || !act->data || !act->len)
		return;                 /* cached already (or nothing to keep) */
	fi = pfs_cache_create(c->cache, pfs_hier_key(ce->model, strlen(ce->model), name,
						     strlen(name)), ce->model, name, MAN_CHUNK);
	EVP_Digest(act->data, act->len, sha, NULL, EVP_sha256(), NULL);
	if (fi < 0 || pfs_cache_write(c->cache, fi, 0, act->data, act->len) < 0 ||
	    pfs_cache_complete(c->cache, fi, act->len, sha) < 0) {
		if (fi >= 0)
			pfs_cache_drop(c->cache, fi);
		c->st.cache_write_errors++;
		return;
	}
	c->st.manifests_cached++;
}

/* The cached manifest of a file, malloc'd, or NULL. */
static uint8_t *cached_manifest(struct ctl *c, const char *model, const char *path, size_t *len)
{
	char name[PFS_FILEPATH_MAX + 8];
	struct pfs_cache_file *f;
	uint8_t *buf;
	int fi;

	if (manifest_name(path, name, sizeof(name)) < 0 ||
	    (fi = ctl_cache_lookup(c, model, name, true)) < 0 ||
	    !(f = pfs_cache_file(c->cache, fi)) || atomic_load(&f->state) != PFS_CF_COMPLETE ||
	    f->size > PFS_MAN_MAX_LEN || !(buf = malloc(f->size ? f->size : 1)))
		return NULL;
	if (pfs_cache_read(c->cache, fi, 0, buf, f->size) < 0) {
		free(buf);
		return NULL;
	}
	*len = f->size;
	return buf;
}

/* Serve a complete cached file as the "fetch": every chunk goes through the
 * engine's check (against the signed manifest when there is one). False if
 * the cache cannot serve it; a copy that fails the check is dropped. */
static bool serve_from_cache(struct ctl *c, struct ctl_engine *ce, int hidx,
			     const struct pfs_hier_info *info)
{
	int fi = ctl_cache_lookup(c, ce->model, info->path, true);
	struct pfs_cache_file *f = pfs_cache_file(c->cache, fi);
	pfs_time_t now = (pfs_time_t)ctl_now();
	uint64_t off = 0;

	if (!f || atomic_load(&f->state) != PFS_CF_COMPLETE || f->chunk_size != info->chunk_size)
		return false;
	for (uint32_t idx = 0; off < f->size; idx++) {
		uint32_t len;
		const uint8_t *p = pfs_cache_chunk(c->cache, fi, idx, &len);
		if (len > f->size - off)
			len = (uint32_t)(f->size - off);
		if (!p || pfs_engine_upstream_write(ce->e, now, hidx, off, p, len) < 0) {
			ctl_warn(c, "%s %s: cached copy does not match the signed manifest; "
				"fetching it again", ce->model, info->path);
			c->st.cache_rejected++;
			pfs_cache_drop(c->cache, fi);
			return false;
		}
		off += len;
	}
	ctl_hier(ce, hidx)->cache_fi = fi;
	ctl_hier(ce, hidx)->from_cache = true;
	pfs_cache_count_hit(c->cache, fi);
	c->st.cache_hits++;
	ctl_log(c, "%s %s: from cache (%llu bytes, hit %llu)", ce->model, info->path,
		(unsigned long long)f->size, (unsigned long long)f->hits);
	pfs_engine_upstream_done(ce->e, now, hidx, f->size, f->sha256);
	return true;
}

void ctl_member_from_cache(struct ctl *c, struct ctl_engine *ce, int hidx, const char *path)
{
	int fi = ctl_cache_lookup(c, ce->model, path, true);
	struct pfs_cache_file *f = pfs_cache_file(c->cache, fi);
	struct pfs_manifest m;
	uint8_t *man = NULL;
	size_t mlen = 0;
	int rc = 0;

	if (!f || atomic_load(&f->state) != PFS_CF_COMPLETE)
		return;
	if ((man = cached_manifest(c, ce->model, path, &mlen))) {
		/* Every chunk against its digest: the cache is a file on disk. */
		rc = pfs_manifest_parse(man, mlen, &m) < 0 || m.size != f->size ||
		     m.chunk_size != f->chunk_size ? -EINVAL : 0;
		for (uint32_t i = 0; !rc && i < m.nchunks; i++) {
			uint32_t len;
			const uint8_t *p = pfs_cache_chunk(c->cache, fi, i, &len);
			if (!p || !pfs_manifest_chunk_ok(&m, i, p, len))
				rc = -EBADMSG;
		}
	}
	if (!rc)
		rc = pfs_engine_have_file(ce->e, (pfs_time_t)ctl_now(), hidx, f->chunk_size, f->size,
					  f->sha256, man, mlen);
	free(man);
	if (rc == -EALREADY)
		return;
	if (rc < 0) {
		if (rc == -EBADMSG) {
			c->st.cache_rejected++;
			pfs_cache_drop(c->cache, fi);
		}
		ctl_log(c, "%s %s: cached copy not used as a member: %s", ce->model, path,
			rc == -EBADMSG ? "it does not match its signed manifest" :
			rc == -EINVAL ? "it disagrees with its manifest" : pfs_man_strerror(rc));
		return;
	}
	ctl_hier(ce, hidx)->cache_fi = fi;
	ctl_hier(ce, hidx)->from_cache = true;
	pfs_cache_count_hit(c->cache, fi);
	c->st.cache_hits++;
	ctl_log(c, "%s %s: member with a complete cached copy (%llu bytes): takes nothing, "
		"serves its children from the cache", ce->model, path, (unsigned long long)f->size);
}

/* fi is a partial entry of this hierarchy's file (a failed attempt's). */
static bool partial_entry_of(struct ctl *c, int fi, const struct pfs_hier_info *info)
{
	const struct pfs_cache_file *f = pfs_cache_file(c->cache, fi);

	return f && atomic_load(&f->state) == PFS_CF_FILLING && f->hier == info->key &&
	       f->chunk_size == info->chunk_size && !strcmp(f->path, info->path);
}

/* The file itself, once the manifest (if any) is accepted. */
static void upstream_file(struct ctl *c, struct ctl_engine *ce, int hidx)
{
	pfs_time_t now = (pfs_time_t)ctl_now();
	struct pfs_hier_info info;
	int fi, id;

	if (pfs_engine_hier_info(ce->e, hidx, &info) < 0)
		return;
	if ((id = ctl_hier(ce, hidx)->fetch_id) >= 0 && c->fetch_slot[id].parked) {
		uint64_t from;
		if (pfs_fetch_resume(c->fetch, id, &from) == 0) {
			c->fetch_slot[id].parked = false;
			ctl_log(c, "%s %s: resuming the fetch at byte %llu", ce->model, info.path,
				(unsigned long long)from);
			return;
		}
		ctl_upstream_abort(c, ce, hidx);        /* cannot: start again */
	}
	if (serve_from_cache(c, ce, hidx, &info))
		return;
	if ((id = ctl_leader_for(c, info.path, info.chunk_size)) >= 0 && ctl_follow(c, ce, hidx, id))
		return;
	pfs_cache_count_miss(c->cache);
	c->st.cache_misses++;
	ctl_hier(ce, hidx)->from_cache = false;
	/* A retry goes on in the entry of the attempt before, whose checked
	 * chunks the engine holds (it stores nothing over them). */
	fi = ctl_hier(ce, hidx)->cache_fi;
	if (!partial_entry_of(c, fi, &info))
		fi = pfs_cache_create(c->cache, info.key, ce->model, info.path, info.chunk_size);
	if (fi < 0) {
		/* Our trouble, not the server's: the hierarchy goes to others. */
		ctl_warn(c, "%s %s: no room in the cache (%s): giving the hierarchy up to the "
			"devices", ce->model, info.path, strerror(-fi));
		pfs_engine_store_failed(ce->e, now, hidx, fi);
		return;
	}
	ctl_hier(ce, hidx)->cache_fi = fi;
	if (info.chunks_total)          /* a signed manifest told the size */
		pfs_cache_expect_size(c->cache, fi, info.size);
	id = ctl_fetch_slot_alloc(c, (int)(ce - c->eng), hidx, false);
	if (id < 0 || pfs_fetch_start(c->fetch, id, c->cfg.server, info.path) < 0) {
		if (id >= 0)
			ctl_fetch_slot_free(&c->fetch_slot[id]);
		pfs_engine_upstream_failed(ce->e, now, hidx, -EIO);
		return;
	}
	ctl_hier(ce, hidx)->fetch_id = id;
	ctl_log(c, "%s %s: fetching it from %s", ce->model, info.path, c->cfg.server);
}

/* The manifest is here (buf), or the server has none (NULL): the engine
 * judges it; the file follows only if it was accepted. */
static void manifest_ready(struct ctl *c, struct ctl_engine *ce, int hidx, const char *path,
			   const uint8_t *buf, size_t len)
{
	int rc = pfs_engine_upstream_manifest(ce->e, (pfs_time_t)ctl_now(), hidx, buf, len);

	if (rc < 0) {
		ctl_warn(c, "%s %s.pfsm refused: %s", ce->model, path, pfs_man_strerror(rc));
		return;         /* counted by the engine as an upstream failure */
	}
	upstream_file(c, ce, hidx);
}

void ctl_upstream_start(struct ctl *c, struct ctl_engine *ce, const struct pfs_action *act)
{
	char name[PFS_FILEPATH_MAX + 8];
	uint8_t *man;
	size_t len;
	int id;

	if (!act->want_manifest) {
		upstream_file(c, ce, act->hidx);
		return;
	}
	ctl_upstream_abort(c, ce, act->hidx);   /* a parked file fetch: the manifest first */
	if ((man = cached_manifest(c, ce->model, act->path, &len))) {
		manifest_ready(c, ce, act->hidx, act->path, man, len);
		free(man);
		return;
	}
	id = ctl_fetch_slot_alloc(c, (int)(ce - c->eng), act->hidx, true);
	if (id < 0 || manifest_name(act->path, name, sizeof(name)) < 0 ||
	    pfs_fetch_start(c->fetch, id, c->cfg.server, name) < 0) {
		if (id >= 0)
			ctl_fetch_slot_free(&c->fetch_slot[id]);
		pfs_engine_upstream_failed(ce->e, (pfs_time_t)ctl_now(), act->hidx, -EIO);
		return;
	}
	ctl_hier(ce, act->hidx)->fetch_id = id;
	c->st.manifests_fetched++;
}

/* A fetch ended (done, failed, aborted): free its slot and, unless it
 * completed, the partial cache entry nobody will finish. */
static void fetch_release(struct ctl *c, struct ctl_engine *ce, int hidx, bool drop_partial)
{
	struct ctl_hier *ch = ctl_hier(ce, hidx);

	if (ch->fetch_id >= 0)
		ctl_fetch_slot_free(&c->fetch_slot[ch->fetch_id]);
	ch->fetch_id = -1;
	if (drop_partial && ch->cache_fi >= 0) {
		pfs_cache_drop(c->cache, ch->cache_fi);
		ch->cache_fi = -1;
	}
}

void ctl_upstream_abort(struct ctl *c, struct ctl_engine *ce, int hidx)
{
	const struct ctl_hier *ch = ctl_hier(ce, hidx);
	int id = ch ? ch->fetch_id : -1;

	if (id < 0)
		return;
	if (c->fetch_slot[id].follows) {
		ctl_unfollow(c, ce, hidx);          /* the leader's fetch goes on */
		return;
	}
	if (!c->fetch_slot[id].manifest && !c->fetch_slot[id].parked && ctl_hand_over(c, ce, hidx, id))
		return;
	pfs_fetch_abort(c->fetch, id);
	fetch_release(c, ce, hidx, !c->fetch_slot[id].manifest);
}

static struct ctl_engine *slot_engine(struct ctl *c, int id, int *hidx)
{
	if (id < 0 || id >= PFS_FETCH_MAX || !c->fetch_slot[id].used)
		return NULL;
	*hidx = c->fetch_slot[id].hidx;
	return &c->eng[c->fetch_slot[id].eng];
}

struct cache_run {
	struct pfs_cache *cache;
	int fi;
};

static int cache_store_run(void *ctx, uint64_t off, const uint8_t *data, size_t len)
{
	const struct cache_run *r = ctx;

	return pfs_cache_write(r->cache, r->fi, off, data, len);
}

static int fetch_write(void *ctx, int id, uint64_t off, const void *data, size_t len)
{
	struct ctl *c = ctx;
	int hidx, rc, fi;
	struct ctl_engine *ce = slot_engine(c, id, &hidx);
	struct ctl_fetch_slot *s;
	struct cache_run run;

	if (!ce)
		return -ENOENT;
	s = &c->fetch_slot[id];
	c->st.wan_bytes += len;
	if (s->manifest)
		return pfs_membuf_append(&s->man, data, len, PFS_MAN_MAX_LEN);
	fi = ctl_hier(ce, hidx)->cache_fi;
	if (fi < 0)
		return -ENOENT;
	/* Not over chunks held already: a fetch that started again from 0
	 * would put unchecked bytes where the dataplane and the load server
	 * send checked ones. */
	run = (struct cache_run){ c->cache, fi };
	rc = pfs_upstream_store(ce->e, hidx, off, data, len, cache_store_run, &run);
	if (rc < 0) {
		c->st.cache_write_errors++;
		s->store_err = rc;
		return rc;
	}
	/* The engine checks each chunk as it completes; -EBADMSG fails the
	 * fetch ("the server's bytes do not match the signed manifest"). */
	rc = pfs_engine_upstream_write(ce->e, (pfs_time_t)ctl_now(), hidx, off, data, len);
	for (int j = 0; !rc && j < PFS_FETCH_MAX; j++) {
		int fh;
		struct ctl_engine *fe = ctl_follower(c, id, j, &fh);

		if (fe && pfs_engine_upstream_write(fe->e, (pfs_time_t)ctl_now(), fh, off, data,
						    len) < 0) {
			ctl_unfollow(c, fe, fh);
			pfs_engine_upstream_failed(fe->e, (pfs_time_t)ctl_now(), fh, -EBADMSG);
		}
	}
	return rc;
}

static void fetch_progress(void *ctx, int id, uint64_t bytes)
{
	struct ctl *c = ctx;
	int hidx;
	struct ctl_engine *ce = slot_engine(c, id, &hidx);

	(void)bytes;
	if (!ce)
		return;
	ctl_engine_drain(c, ce);        /* chunks the engine took in fetch_write */
	for (int j = 0; j < PFS_FETCH_MAX; j++) {
		struct ctl_engine *fe = ctl_follower(c, id, j, &hidx);

		if (fe)
			ctl_engine_drain(c, fe);
	}
}

static void fetch_done(void *ctx, int id, uint64_t size, const uint8_t sha[32])
{
	struct ctl *c = ctx;
	struct pfs_hier_info info;
	int hidx;
	struct ctl_engine *ce = slot_engine(c, id, &hidx);
	struct ctl_fetch_slot *s;

	if (!ce)
		return;
	s = &c->fetch_slot[id];
	if (s->manifest) {
		struct pfs_membuf man = s->man;         /* the slot goes, the bytes stay */

		s->man = (struct pfs_membuf){ 0 };
		fetch_release(c, ce, hidx, false);
		pfs_engine_hier_info(ce->e, hidx, &info);
		manifest_ready(c, ce, hidx, info.path, man.p, man.len);
		pfs_membuf_free(&man);
	} else {
		ctl_followers_end(c, id, true, size, sha, 0);
		fetch_release(c, ce, hidx, false);
		c->st.fetches_ok++;
		pfs_engine_upstream_done(ce->e, (pfs_time_t)ctl_now(), hidx, size, sha);
	}
	ctl_engine_drain(c, ce);
}

static void fetch_failed(void *ctx, int id, int err, const char *why)
{
	struct ctl *c = ctx;
	struct pfs_hier_info info;
	int hidx;
	struct ctl_engine *ce = slot_engine(c, id, &hidx);
	bool manifest;
	int store_err;

	if (!ce)
		return;
	manifest = c->fetch_slot[id].manifest;
	store_err = c->fetch_slot[id].store_err;
	if (!(manifest && err == -ENOENT))     /* no manifest: an unsigned file, not a failure */
		c->st.fetches_failed++;
	if (!manifest)
		ctl_followers_end(c, id, false, 0, NULL, store_err ? -EIO : err);
	if (!manifest && !store_err && pfs_fetch_resumable(c->fetch, id))
		c->fetch_slot[id].parked = true;        /* see the top of this file */
	else    /* the entry stays while it holds chunks the engine checked:
		 * they are sent and served from it during the retry */
		fetch_release(c, ce, hidx, !manifest &&
			      (store_err || !pfs_engine_checked_bytes(ce->e, hidx)));
	pfs_engine_hier_info(ce->e, hidx, &info);
	if (store_err) {
		ctl_warn(c, "%s %s: cannot store in the cache (%s): giving the hierarchy up to "
			"the devices", ce->model, info.path, strerror(-store_err));
		pfs_engine_store_failed(ce->e, (pfs_time_t)ctl_now(), hidx, store_err);
	} else if (manifest && err == -ENOENT) {
		manifest_ready(c, ce, hidx, info.path, NULL, 0);      /* unsigned */
	} else {
		char url[PFS_FILEPATH_MAX + 512], name[PFS_FILEPATH_MAX + 8];
		snprintf(name, sizeof(name), "%s%s", info.path, manifest ? ".pfsm" : "");
		if (pfs_fetch_url(c->cfg.server, name, url, sizeof(url)) < 0)
			snprintf(url, sizeof(url), "%s", name);
		ctl_warn(c, "cannot fetch %s: %s", url, why);
		pfs_engine_upstream_failed(ce->e, (pfs_time_t)ctl_now(), hidx, err);
	}
	ctl_engine_drain(c, ce);
}

static void fetch_note(void *ctx, int id, const char *what)
{
	struct ctl *c = ctx;
	struct pfs_hier_info info;
	int hidx;
	struct ctl_engine *ce = slot_engine(c, id, &hidx);

	if (!ce)
		return;
	pfs_engine_hier_info(ce->e, hidx, &info);
	ctl_warn(c, "%s %s%s: %s", ce->model, info.path, c->fetch_slot[id].manifest ? ".pfsm" : "",
		 what);
}

const struct pfs_fetch_ops ctl_fetch_ops = {
	.write = fetch_write, .progress = fetch_progress,
	.done = fetch_done, .failed = fetch_failed, .note = fetch_note,
};
