/* serve_src.c - what a load-server transfer reads (issue 12 section 2): a
 * complete cache entry, or one still filling up to the bytes its hierarchy
 * has checked against the signed manifest; on a miss, the one upstream fetch
 * of the file, made by the load server's own engine (a solo hierarchy: no
 * election, no datagram on the LAN) or followed from the fetch a PFS
 * hierarchy already has under way (upstream_share.c). TFTP and HTTP both
 * read through here, so both kinds of device share one WAN copy with the
 * PFS devices.
 *
 *   resolve(path)
 *     complete entry, any model          -> READY, all of it
 *     filling entry a hierarchy fills    -> READY up to its checked bytes,
 *                                           once its size is known; else WAIT
 *     the load server's hierarchy failed,
 *       and this transfer saw it try     -> NOT_FOUND or FAILED, its cause
 *     else                               -> start (or restart) the load
 *                                           server's hierarchy; WAIT
 *
 * The last byte of a file is held until its entry is complete (the whole
 * file checked, SHA-256 and all): a transfer never ends as whole on a copy
 * that was not. Without a signed manifest nothing is checked before that, so
 * an unsigned file is served once complete.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control.h"

static bool entry_is(const struct ctl *c, int fi, const char *path)
{
	struct pfs_cache_file *f = pfs_cache_file(c->cache, fi);

	return f && atomic_load(&f->state) != PFS_CF_FREE && !strcmp(f->path, path) &&
	       (!strcmp(f->model, CTL_SERVE_MODEL) || ctl_model_allowed(c, f->model));
}

/* The most any hierarchy filling entry fi has checked; false when no
 * hierarchy fills it (left behind: not to be read). */
static bool checked_bytes(const struct ctl *c, int fi, uint64_t *n)
{
	bool owned = false;

	*n = 0;
	for (int i = 0; i < c->neng; i++) {
		const struct ctl_engine *ce = &c->eng[i];
		for (int h = 0; h < pfs_engine_hier_count(ce->e); h++) {
			const struct ctl_hier *ch = ctl_hier(ce, h);
			if (!ch || ch->cache_fi != fi)
				continue;
			uint64_t b = pfs_engine_checked_bytes(ce->e, h);
			owned = true;
			if (b > *n)
				*n = b;
		}
	}
	return owned;
}

/* A filling entry of path that a hierarchy fills, or -1. */
static int filling_entry(const struct ctl *c, const char *path)
{
	uint64_t n;

	for (int fi = 0; fi < PFS_CACHE_FILES; fi++) {
		struct pfs_cache_file *f = pfs_cache_file(c->cache, fi);
		if (f && atomic_load(&f->state) == PFS_CF_FILLING && entry_is(c, fi, path) &&
		    checked_bytes(c, fi, &n))
			return fi;
	}
	return -1;
}

/* Why a file cannot be had, in words: the fetch's own error where there is
 * one ("file not found on the server", "the server's TLS certificate is not
 * trusted", ...), else its cause. */
static const char *fail_words(const struct pfs_hier_info *info)
{
	if (info->fail_err)
		return pfs_fetch_strerror(-(int)info->fail_err);
	switch (info->fail_cause) {
	case PFS_FAIL_LOCAL:     return "the appliance cannot store it";
	case PFS_FAIL_INVALID:   return "larger than the appliance accepts";
	default:                 return "the server could not send it whole and verified";
	}
}

/* Nothing holds or fills path: the load server's hierarchy fetches it, or
 * says why it cannot. */
static enum ctl_src_state fetch(struct ctl *c, struct ctl_src *s)
{
	struct ctl_engine *ce = ctl_engine_serve(c);
	struct pfs_hier_info info;
	bool started = false;
	int h;

	if (!ce) {
		s->why = "no room for another fetch";
		return CTL_SRC_FAILED;
	}
	h = pfs_engine_find(ce->e, s->path);
	if (h >= 0 && pfs_engine_hier_info(ce->e, h, &info) == 0) {
		if (info.failed && s->asked) {
			s->why = fail_words(&info);
			return info.fail_cause == PFS_FAIL_NOT_FOUND ? CTL_SRC_NOT_FOUND :
			       CTL_SRC_FAILED;
		}
		/* Failed before we asked, or complete but its copy is gone
		 * (evicted): fetch again. Else it is at work (manifest, retry). */
		if ((info.failed || info.complete) &&
		    pfs_engine_solo_restart(ce->e, (pfs_time_t)ctl_now(), h) == 0) {
			ctl_log(c, "load server: fetching %s again", s->path);
			started = true;
		}
	} else {
		if ((h = ctl_engine_want(c, ce, s->path)) < 0) {
			s->why = "too many files fetched for the load server";
			return CTL_SRC_FAILED;
		}
		c->st.cache_misses++;
		ctl_log(c, "load server: %s is not cached: fetching it", s->path);
		started = true;
	}
	s->asked = true;
	/* Only when we gave it work: a drain moves fill_gen, which kicks every
	 * transfer again (main.c); a wait that drained would never settle. */
	if (started)
		ctl_engine_drain(c, ce);
	return CTL_SRC_WAIT;
}

enum ctl_src_state ctl_src_update(struct ctl *c, struct ctl_src *s)
{
	struct pfs_cache_file *f;
	uint64_t n;

	if (s->fi >= 0 && s->gen == c->fill_gen)
		return s->state;                /* nothing moved since */
	s->gen = c->fill_gen;
	if (s->fi < 0 || !entry_is(c, s->fi, s->path) ||
	    (atomic_load(&pfs_cache_file(c->cache, s->fi)->state) == PFS_CF_FILLING &&
	     !checked_bytes(c, s->fi, &n))) {
		s->fi = ctl_cache_lookup(c, NULL, s->path, true);
		if (s->fi >= 0 && !entry_is(c, s->fi, s->path))
			s->fi = -1;             /* a model we do not serve */
		if (s->fi < 0)
			s->fi = filling_entry(c, s->path);
		if (s->fi < 0)
			return s->state = fetch(c, s);
	}
	f = pfs_cache_file(c->cache, s->fi);
	if (atomic_load(&f->state) == PFS_CF_COMPLETE) {
		s->size = s->avail = f->size;
		s->complete = true;
		return s->state = CTL_SRC_READY;
	}
	checked_bytes(c, s->fi, &n);
	if (!f->size)
		return s->state = CTL_SRC_WAIT;        /* unsigned: its size comes at the end */
	s->size = f->size;
	s->avail = n < f->size ? n : f->size - 1;
	return s->state = CTL_SRC_READY;
}

enum ctl_src_state ctl_src_open(struct ctl *c, struct ctl_src *s, const char *path)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->fi = -1;
	if (ctl_src_update(c, s) == CTL_SRC_READY && s->complete)
		pfs_cache_count_hit(c->cache, s->fi);   /* no WAN byte for this one */
	if (s->fi >= 0)
		pfs_cache_pin(c->cache, s->fi, true);   /* until the next ctl_engines_pin */
	return s->state;
}

int ctl_src_read(struct ctl *c, struct ctl_src *s, uint64_t off, void *buf, size_t len)
{
	if (s->fi >= 0 && !entry_is(c, s->fi, s->path))
		s->gen = 0;                     /* evicted under us: resolve again */
	if ((off + len > s->avail || !s->gen) && ctl_src_update(c, s) != CTL_SRC_READY)
		return s->state == CTL_SRC_WAIT ? -EAGAIN : -EIO;
	if (off >= s->avail && !(off == s->size && s->complete))
		return -EAGAIN;
	if (len > s->avail - off)
		len = (size_t)(s->avail - off);
	if (len && pfs_cache_read(c->cache, s->fi, off, buf, len) < 0)
		return -EIO;
	return (int)len;
}
