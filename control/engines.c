/* engines.c - pfs-control's engines: one per device model, all with the
 * appliance's priority class, and what their actions mean on the appliance
 * (docs/appliance.md 4).
 *
 * The appliance does not know in advance which files devices will ask for:
 * it joins a hierarchy when it first hears a claim or root announcement for
 * it (auto-join), and, being stronger than any device, ends up its root. As
 * root it serves the file from the chunk cache when it holds it (no WAN
 * bytes), else fetches it upstream into the cache. Chunk sends are not done
 * here: consecutive chunks for one child become one SEND_CHUNKS range for the
 * dataplane (runs.c), which sends them from the cache.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "control.h"
#include "pfs_driver.h"

static void drain(struct ctl *c, struct ctl_engine *ce);

bool ctl_model_allowed(const struct ctl *c, const char *model)
{
	if (!c->cfg.nmodels)
		return true;
	for (int i = 0; i < c->cfg.nmodels; i++)
		if (!strcmp(c->cfg.models[i], model))
			return true;
	return false;
}

/* An engine of the appliance: its class, slots and timers; a relay unless
 * the operator turned that off (docs/protocol.md 4.4). */
static struct pfs_engine *engine_new(struct ctl *c, const char *model, enum pfs_relay_mode relay,
				     bool solo)
{
	struct pfs_engine_config ec;

	pfs_engine_config_defaults(&ec);
	ec.node_id = c->cfg.node_id;
	ec.self = (struct pfs_addr){ .ip = c->cfg.ip, .port = PFS_PORT };
	snprintf(ec.model, sizeof(ec.model), "%s", model);
	ec.priority_class = (uint8_t)c->cfg.priority;
	ec.max_children = (uint16_t)c->cfg.max_children;
	ec.mode = solo ? PFS_MODE_TFTP_ONLY : c->cfg.mode;
	ec.relay = solo ? PFS_RELAY_OFF : relay;
	ec.chunk_size = c->cfg.chunk_size;
	ec.upstream_retries = (uint8_t)c->cfg.upstream_retries;
	ec.trust = &c->cfg.trust;
	ec.site = c->cfg.site.nkeys ? &c->cfg.site : NULL;
	if (getrandom(&ec.random, sizeof(ec.random), 0) != sizeof(ec.random))
		ec.random = (uint32_t)ctl_now() ^ c->cfg.node_id;
	return pfs_engine_new(&ec);
}

struct ctl_engine *ctl_engine_for(struct ctl *c, const char *model, bool create)
{
	struct ctl_engine *ce;

	for (int i = 0; i < c->neng; i++)
		if (!c->eng[i].solo && !strcmp(c->eng[i].model, model))
			return &c->eng[i];
	if (!create || !ctl_model_allowed(c, model) || c->neng == CTL_MAX_MODELS ||
	    !pfs_model_valid(model, strlen(model)))
		return NULL;
	ce = &c->eng[c->neng];
	memset(ce, 0, sizeof(*ce));
	/* The beacon engine speaks for every model; else each model's own. */
	ce->e = engine_new(c, model, !c->cfg.relay ? PFS_RELAY_OFF :
			   c->beacon.e ? PFS_RELAY_QUIET : PFS_RELAY_ON, false);
	if (!ce->e)
		return NULL;
	snprintf(ce->model, sizeof(ce->model), "%s", model);
	c->neng++;
	ctl_log(c, "serving model %s (priority class %d, %d child slots)", model,
		c->cfg.priority, c->cfg.max_children);
	return ce;
}

/* The load server's own engine: a solo hierarchy for each file a legacy
 * device asked for that no hierarchy was fetching (serve_src.c). Never a
 * datagram in or out: it fetches, checks and completes, nothing else. */
struct ctl_engine *ctl_engine_serve(struct ctl *c)
{
	struct ctl_engine *ce;

	for (int i = 0; i < c->neng; i++)
		if (c->eng[i].solo)
			return &c->eng[i];
	if (c->neng == CTL_MAX_MODELS)
		return NULL;
	ce = &c->eng[c->neng];
	memset(ce, 0, sizeof(*ce));
	if (!(ce->e = engine_new(c, CTL_SERVE_MODEL, PFS_RELAY_OFF, true)))
		return NULL;
	ce->solo = true;
	snprintf(ce->model, sizeof(ce->model), "%s", CTL_SERVE_MODEL);
	c->neng++;
	return ce;
}

/* As a relay, announce ourselves from the start: a beacon for every model
 * when any model is served, else an engine per listed model now, each
 * beaconing for its own. */
int ctl_engines_start(struct ctl *c)
{
	if (!c->cfg.relay || !c->cfg.enabled)
		return 0;
	if (!c->cfg.nmodels) {
		if (!c->beacon.e && !(c->beacon.e = engine_new(c, "", PFS_RELAY_ON, false)))
			return -errno;
		ctl_log(c, "site relay: announcing for every model");
		return 0;
	}
	for (int i = 0; i < c->cfg.nmodels; i++)
		if (!ctl_engine_for(c, c->cfg.models[i], true))
			return -ENOMEM;
	ctl_log(c, "site relay: announcing for %d model(s)", c->cfg.nmodels);
	return 0;
}

int ctl_engine_want(struct ctl *c, struct ctl_engine *ce, const char *path)
{
	struct ctl_hier *ch;
	int hidx;

	if (pfs_engine_hier_count(ce->e) >= CTL_MAX_HIERS)
		return -ENOSPC;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->cache_fi = ch->fetch_id = ch->hash_fi = -1;
	hidx = pfs_engine_want(ce->e, (pfs_time_t)ctl_now(), path);
	if (hidx < 0) {
		free(ch);
		return hidx;
	}
	/* Before the drain that carries out its first actions. */
	pfs_engine_hier_set_user(ce->e, hidx, ch);
	pfs_engine_seq_floor(ce->e, hidx, pfs_seqstate_get(c->seqstate, path));
	return hidx;
}

static int want(struct ctl *c, struct ctl_engine *ce, const char *path)
{
	int hidx = ctl_engine_want(c, ce, path);

	if (hidx >= 0) {
		c->st.auto_joins++;
		ctl_log(c, "joining hierarchy %s %s", ce->model, path);
	}
	return hidx;
}

/* The engine a CLAIM, ROOT or JOIN of a model we serve goes to (made on
 * first sight), and the hierarchy it names joined: devices start
 * hierarchies and the appliance, being stronger, ends up their root
 * (auto-join); as a relay, a device that heard our beacon JOINs us
 * directly, and that first JOIN starts the fetch. */
static struct ctl_engine *model_engine(struct ctl *c, const struct pfs_msg *m, char *path)
{
	const struct pfs_str *model = m->type == PFS_MSG_CLAIM ? &m->u.claim.model :
				      m->type == PFS_MSG_ROOT ? &m->u.root.model :
				      &m->u.join.model;
	const struct pfs_str *p = m->type == PFS_MSG_CLAIM ? &m->u.claim.path :
				  m->type == PFS_MSG_ROOT ? &m->u.root.path : &m->u.join.path;
	char mod[PFS_MODEL_MAX + 1];
	struct ctl_engine *ce;

	if (model->len > PFS_MODEL_MAX || p->len > PFS_FILEPATH_MAX)
		return NULL;
	memcpy(mod, model->p, model->len);
	mod[model->len] = '\0';
	memcpy(path, p->p, p->len);
	path[p->len] = '\0';
	ce = ctl_engine_for(c, mod, true);
	if (!ce)
		c->st.rx_model_refused++;
	return ce;
}

/* A datagram from the dataplane: decoded once (and a DATA chunk's CRC
 * checked once), then handed to every engine as a message; each
 * authenticates it against its own replay window. */
void ctl_engines_rx(struct ctl *c, const struct pfs_addr *src, const uint8_t *buf, size_t len)
{
	struct ctl_engine *first = NULL;
	char path[PFS_FILEPATH_MAX + 1];
	struct pfs_msg m;
	int rc = pfs_decode(buf, len, &m);

	if (rc < 0) {
		c->st.rx_undecodable++;
		c->st.rx_bad[pfs_codec_err_index(rc)]++;
		return;
	}
	/* A claim joins us to its hierarchy only once its engine has
	 * authenticated it (with a site key): an outsider must not make the
	 * appliance join anything. That engine takes the message first. */
	if (c->cfg.enabled && (m.type == PFS_MSG_CLAIM || m.type == PFS_MSG_ROOT ||
			       (m.type == PFS_MSG_JOIN && c->cfg.relay)) &&
	    m.sender != c->cfg.node_id && (first = model_engine(c, &m, path))) {
		if (pfs_engine_accept_msg(first->e, buf, len, &m) == 0) {
			want(c, first, path);   /* -EEXIST: already in it */
			pfs_engine_recv_msg(first->e, (pfs_time_t)ctl_now(), src, &m);
		}
		drain(c, first);
	}
	for (int i = 0; i < c->neng; i++) {
		struct ctl_engine *ce = &c->eng[i];

		if (ce == first || ce->solo)
			continue;
		if (pfs_engine_accept_msg(ce->e, buf, len, &m) == 0)
			pfs_engine_recv_msg(ce->e, (pfs_time_t)ctl_now(), src, &m);
		drain(c, ce);           /* WRITE_CHUNK points into buf */
	}
}

int ctl_engines_prefetch(struct ctl *c, const char *model, const char *path)
{
	struct ctl_engine *ce;
	int rc;

	if (!c->cfg.enabled)
		return -EAGAIN;
	ce = ctl_engine_for(c, model, true);
	if (!ce)
		return ctl_model_allowed(c, model) ? -ENOSPC : -EPERM;
	if (!pfs_filepath_valid(path, strlen(path)))
		return -EINVAL;
	rc = want(c, ce, path);
	drain(c, ce);
	return rc < 0 ? rc : 0;
}

void ctl_engines_set_enabled(struct ctl *c, bool on)
{
	if (c->cfg.enabled == on)
		return;
	c->cfg.enabled = on;
	if (on) {
		if (ctl_engines_start(c) < 0)
			ctl_log(c, "site relay: cannot start announcing: %s", strerror(errno));
		return;
	}
	/* Leave every tree; devices re-elect among themselves. The engines go
	 * too, so enabling again starts clean elections. */
	for (int i = 0; i < c->neng; i++) {
		pfs_engine_shutdown(c->eng[i].e, (pfs_time_t)ctl_now());
		drain(c, &c->eng[i]);
	}
	ctl_engines_free(c);
	pfs_cache_drop_partial(c->cache);
}

/* Pin the cache files that active hierarchies and load-server transfers
 * use, so LRU eviction never takes a file from under a rollout. Run when
 * engines moved (main.c): nothing else changes what they use, and a
 * transfer pins its entry itself when it opens one (serve_src.c). */
void ctl_engines_pin(struct ctl *c)
{
	bool pin[PFS_CACHE_FILES] = { false };

	for (int i = 0; i < c->neng; i++) {
		for (int h = 0; h < pfs_engine_hier_count(c->eng[i].e); h++) {
			struct ctl_hier *ch = ctl_hier(&c->eng[i], h);
			struct pfs_hier_info info;
			int fi = ch ? ch->cache_fi : -1;
			if (fi < 0 || pfs_engine_hier_info(c->eng[i].e, h, &info) < 0)
				continue;
			if (info.nchildren || info.upstream_active || !info.complete)
				pin[fi] = true;
		}
	}
	ctl_serve_pins(c, pin);
	ctl_http_pins(c, pin);
	for (int fi = 0; fi < PFS_CACHE_FILES; fi++)
		pfs_cache_pin(c->cache, fi, pin[fi]);
}

void ctl_engines_timeout(struct ctl *c)
{
	pfs_time_t now = (pfs_time_t)ctl_now();

	if (c->beacon.e && pfs_engine_next_deadline(c->beacon.e) <= now) {
		pfs_engine_timeout(c->beacon.e, now);
		drain(c, &c->beacon);
	}
	for (int i = 0; i < c->neng; i++) {
		if (pfs_engine_next_deadline(c->eng[i].e) <= now) {
			pfs_engine_timeout(c->eng[i].e, now);
			drain(c, &c->eng[i]);
		}
	}
}

/* Every engine's counters added up (pfsctl stats, /metrics). */
void ctl_engines_stats(const struct ctl *c, struct pfs_engine_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (int i = 0; i < c->neng; i++) {
		const struct pfs_engine_stats *s = pfs_engine_stats(c->eng[i].e);
		sum->chunks_rx += s->chunks_rx;
		sum->chunks_tx += s->chunks_tx;
		sum->chunks_retx += s->chunks_retx;
		sum->chunks_bad += s->chunks_bad;
		sum->rx_foreign += s->rx_foreign;
		sum->rx_unknown += s->rx_unknown;
		sum->rx_stray += s->rx_stray;
		sum->queue_drops += s->queue_drops;
		sum->verify_failures += s->verify_failures;
		sum->chunks_forged += s->chunks_forged;
		sum->chunks_prechecked += s->chunks_prechecked;
		sum->manifests_ok += s->manifests_ok;
		sum->distrusted += s->distrusted;
		sum->rx_wrong_source += s->rx_wrong_source;
		sum->upstream_bad_chunks += s->upstream_bad_chunks;
		sum->auth_ok += s->auth_ok;
		for (int k = 0; k < PFS_MAN_E_COUNT; k++)
			sum->manifests_rejected[k] += s->manifests_rejected[k];
		for (int k = 0; k < PFS_AUTH_DROP_COUNT; k++)
			sum->auth_drops[k] += s->auth_drops[k];
		for (int k = 0; k < PFS_E_ERR_COUNT; k++)
			sum->rx_bad[k] += s->rx_bad[k];
	}
}

int64_t ctl_engines_deadline(const struct ctl *c)
{
	pfs_time_t t = c->beacon.e ? pfs_engine_next_deadline(c->beacon.e) : PFS_TIME_NEVER;

	for (int i = 0; i < c->neng; i++) {
		pfs_time_t d = pfs_engine_next_deadline(c->eng[i].e);
		if (d < t)
			t = d;
	}
	return t == PFS_TIME_NEVER ? INT64_MAX : (int64_t)t;
}

void ctl_engines_drain(struct ctl *c)
{
	for (int i = 0; i < c->neng; i++)
		drain(c, &c->eng[i]);
	ctl_runs_flush_all(c);          /* stopping: nothing is held back */
}

void ctl_engines_free(struct ctl *c)
{
	for (int i = 0; i < c->neng; i++) {
		struct ctl_engine *ce = &c->eng[i];

		for (int h = 0; h < pfs_engine_hier_count(ce->e); h++)
			ctl_upstream_abort(c, ce, h);
		ctl_fanout_free(c, ce);
		ctl_hash_free(ce);
		for (int h = 0; h < pfs_engine_hier_count(ce->e); h++)
			free(ctl_hier(ce, h));
		pfs_engine_free(ce->e);
	}
	c->neng = 0;
	pfs_engine_free(c->beacon.e);   /* silent from now: devices' holds run out */
	c->beacon.e = NULL;
}

/* --- chunk ranges ------------------------------------------------------ */

/* A chunk the engine sends a child: into a range (runs.c), unless the
 * dataplane already sent it as it arrived (local fan-out). */
static void add_chunk(struct ctl *c, const struct pfs_action *act)
{
	int fi = ((struct ctl_hier *)act->user)->cache_fi;

	if (fi < 0)
		return;         /* nothing cached: the child's NACK will retry */
	if (ctl_fanout_consume(act)) {
		c->st.fanout_skipped++;
		return;         /* the dataplane sent it as it arrived */
	}
	ctl_runs_add(c, act->hier, fi, act->dst, act->index);
}

/* A chunk received from our parent (we are not root of this one). */
static void store_chunk(struct ctl *c, struct ctl_engine *ce, const struct pfs_action *act)
{
	int *fi = &((struct ctl_hier *)act->user)->cache_fi;

	if (*fi < 0) {
		struct pfs_hier_info info;

		*fi = pfs_cache_create(c->cache, act->hier, ce->model, act->path, act->chunk_size);
		if (*fi < 0) {
			c->st.cache_write_errors++;
			return;
		}
		if (pfs_engine_hier_info(ce->e, act->hidx, &info) == 0 && info.chunks_total)
			pfs_cache_expect_size(c->cache, *fi, info.size);
	}
	if (pfs_cache_write(c->cache, *fi, act->offset, act->data, act->len) < 0)
		c->st.cache_write_errors++;
}

static void file_done(struct ctl *c, struct ctl_engine *ce, const struct pfs_action *act)
{
	const struct ctl_hier *ch = act->user;
	struct pfs_cache_file *f = pfs_cache_file(c->cache, ch->cache_fi);

	if (f && atomic_load(&f->state) == PFS_CF_FILLING &&
	    pfs_cache_complete(c->cache, ch->cache_fi, act->size, act->sha256) < 0)
		ctl_warn(c, "%s %s: cannot complete cache entry", ce->model, act->path);
	ctl_log(c, "%s %s complete: %llu bytes%s", ce->model, act->path,
		(unsigned long long)act->size, ch->from_cache ? " (from cache)" : "");
}

static void log_event(struct ctl *c, struct ctl_engine *ce, const struct pfs_action *act)
{
	char ip[16];
	uint32_t a = act->peer.ip;

	snprintf(ip, sizeof(ip), "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
	switch (act->event) {
	case PFS_EV_ROOT_CONFIRMED:
		ctl_log(c, "@@@HROOT H=%08X m=%s ROOT=%s %s (strength %08x)",
			(unsigned)(act->hier >> 32), ce->model, c->cfg.site_address, act->path, act->b);
		break;
	case PFS_EV_CHILD_ADDED:
	case PFS_EV_CHILD_REMOVED:
	case PFS_EV_YIELD:
	case PFS_EV_JOINED:
	case PFS_EV_PARENT_LOST:
	case PFS_EV_FAILED:
	case PFS_EV_VERIFY_FAILED:
		ctl_log(c, "%s %s %s: %s slot %u", pfs_event_name(act->event), ce->model, act->path,
			ip, act->a);
		break;
	default:
		break;
	}
}

static void file_failed(struct ctl *c, struct ctl_engine *ce, const struct pfs_action *act)
{
	struct ctl_hier *ch = act->user;
	struct pfs_cache_file *f;

	ctl_upstream_abort(c, ce, act->hidx);   /* a parked fetch and its partial entry */
	/* or the entry a failed attempt left for its retry */
	f = pfs_cache_file(c->cache, ch->cache_fi);
	if (f && atomic_load(&f->state) == PFS_CF_FILLING) {
		pfs_cache_drop(c->cache, ch->cache_fi);
		ch->cache_fi = -1;
	}
	ctl_warn(c, "%s %s failed: %s%s", ce->model, act->path,
		 act->b == PFS_FAIL_LOCAL ? "cannot store it here: " : "",
		 pfs_fetch_strerror(-(int)act->a));
}

static void on_event(struct ctl *c, struct ctl_engine *ce, const struct pfs_action *act)
{
	const struct ctl_hier *ch = act->user;

	if (act->event < PFS_EV_COUNT)
		c->st.events[act->event]++;
	ctl_sock_event_out(c, ce, act);
	/* The size is final: the file's last chunk goes out at its true
	 * length while the rest still arrives (cut-through). */
	if (act->event == PFS_EV_MANIFEST && ch && ch->cache_fi >= 0)
		pfs_cache_expect_size(c->cache, ch->cache_fi, act->size);
	/* Demoted below the devices (or another appliance is root): a
	 * copy we hold is kept and served, not fetched again. */
	if (act->event == PFS_EV_JOINED && ch && ch->cache_fi < 0)
		ctl_member_from_cache(c, ce, act->hidx, act->path);
	log_event(c, ce, act);
}

/* --- pfs-control's ops for pfs_drive (engine/pfs_driver.h) ------------- */

struct drive_ctx {
	struct ctl *c;
	struct ctl_engine *ce;
};

static void do_send(void *ctx, const struct pfs_action *act)
{
	struct drive_ctx *x = ctx;

	ctl_dplink_send_datagram(x->c, act, act->msg, act->len);
}

static void do_send_chunk(void *ctx, const struct pfs_action *act)
{
	struct drive_ctx *x = ctx;

	add_chunk(x->c, act);
}

static void do_write_chunk(void *ctx, const struct pfs_action *act)
{
	struct drive_ctx *x = ctx;

	store_chunk(x->c, x->ce, act);
}

static void do_upstream_start(void *ctx, const struct pfs_action *act)
{
	struct drive_ctx *x = ctx;

	ctl_upstream_start(x->c, x->ce, act);
}

static void do_upstream_abort(void *ctx, const struct pfs_action *act)
{
	struct drive_ctx *x = ctx;

	ctl_upstream_abort(x->c, x->ce, act->hidx);
}

static void do_manifest_ok(void *ctx, const struct pfs_action *act)
{
	struct drive_ctx *x = ctx;

	ctl_manifest_keep(x->c, x->ce, act);
}

/* Answered from the loop, a slice a turn (hashing.c). */
static void do_hash_file(void *ctx, const struct pfs_action *act)
{
	(void)ctx;
	ctl_hash_start(act);
}

static void do_file_done(void *ctx, const struct pfs_action *act)
{
	struct drive_ctx *x = ctx;

	file_done(x->c, x->ce, act);
}

static void do_file_failed(void *ctx, const struct pfs_action *act)
{
	struct drive_ctx *x = ctx;

	file_failed(x->c, x->ce, act);
}

static void do_event(void *ctx, const struct pfs_action *act)
{
	struct drive_ctx *x = ctx;

	on_event(x->c, x->ce, act);
}

static pfs_time_t drive_now(void *ctx)
{
	(void)ctx;
	return (pfs_time_t)ctl_now();
}

static const struct pfs_driver_ops ops = {
	.now = drive_now, .need_user = true, .send = do_send, .send_chunk = do_send_chunk,
	.write_chunk = do_write_chunk, .upstream_start = do_upstream_start,
	.upstream_abort = do_upstream_abort, .manifest_ok = do_manifest_ok,
	.hash_file = do_hash_file, .file_done = do_file_done, .file_failed = do_file_failed,
	.event = do_event,
};

void ctl_engine_drain(struct ctl *c, struct ctl_engine *ce)
{
	drain(c, ce);
}

static void drain(struct ctl *c, struct ctl_engine *ce)
{
	struct drive_ctx x = { c, ce };

	pfs_drive(ce->e, &ops, &x, c->txbuf, sizeof(c->txbuf));
	ctl_runs_end_drain(c);
	c->fill_gen++;
}
