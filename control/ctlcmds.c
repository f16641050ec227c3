/* ctlcmds.c - what each control socket command does (the table is
 * ctl_commands.h's): arguments checked against the table before a handler
 * runs, the read-only socket held to the read-only commands, and every
 * failure a numbered error (docs/appliance.md 5). ctlsock.c carries the
 * requests and replies.
 *
 * Handlers take (ctl, client, request) whether they use them or not: one
 * signature, one table.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlcmds.h"
#include "pfs_dp_stats.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"

json_t *ctl_err(enum ctl_error code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:i, s:s}", "ok", 0, "code", (int)code, "error", msg);
}

static json_t *ok_reply(void)
{
	return json_pack("{s:b}", "ok", 1);
}

static void ip_str(uint32_t ip, char *out)
{
	snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

static json_t *hier_json(struct ctl *c, struct ctl_engine *ce, int h, bool with_children)
{
	struct pfs_hier_info in;
	char key[17], ip[16];
	json_t *o;
	const char *source = "-";

	if (pfs_engine_hier_info(ce->e, h, &in) < 0)
		return NULL;
	snprintf(key, sizeof(key), "%016llx", (unsigned long long)in.key);
	if (in.is_root)
		source = ctl_hier(ce, h) && ctl_hier(ce, h)->from_cache ? "cache" : "upstream";
	else if (in.parent_id)
		source = "peer";
	o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:s,"
		      " s:b}",
		      "key", key, "model", ce->model, "file", in.path, "state", in.state,
		      "root", in.is_root, "complete", in.complete, "failed", in.failed,
		      "depth", in.depth, "children", in.nchildren, "max_children", in.max_children,
		      "subtree", in.subtree, "have", (json_int_t)in.chunks_have,
		      "total", (json_int_t)in.chunks_total, "size", (json_int_t)in.size,
		      "source", source, "upstream_active", in.upstream_active);
	if (!in.is_root && in.parent_id) {
		ip_str(in.parent.ip, ip);
		json_object_set_new(o, "parent", json_string(ip));
	}
	if (with_children) {
		json_t *a = json_array();
		for (unsigned s = 0; s < in.max_children && s < 256; s++) {
			if (!in.children[s])
				continue;
			ip_str(in.children[s], ip);
			json_array_append_new(a, json_pack("{s:i, s:I, s:s}", "slot", s,
							   "id", (json_int_t)in.children[s],
							   "node", ip));
		}
		json_object_set_new(o, "child_slots", a);
	}
	(void)c;
	return o;
}

static json_t *cmd_trees(struct ctl *c, struct ctl_client *cl, json_t *req)
{
	json_t *a = json_array();

	for (int i = 0; i < c->neng; i++)
		for (int h = 0; h < pfs_engine_hier_count(c->eng[i].e); h++)
			json_array_append_new(a, hier_json(c, &c->eng[i], h, false));
	return json_pack("{s:b, s:o}", "ok", 1, "trees", a);
}

static json_t *cmd_tree(struct ctl *c, struct ctl_client *cl, json_t *req)
{
	const char *key = json_string_value(json_object_get(req, "key"));

	if (strlen(key) < 4 || strspn(key, "0123456789abcdef") != strlen(key))
		return ctl_err(CTL_E_bad_arguments, "tree: '%s' is not a key prefix (4 to 16 "
			       "lower-case hex digits; see 'trees')", key);
	for (int i = 0; i < c->neng; i++) {
		for (int h = 0; h < pfs_engine_hier_count(c->eng[i].e); h++) {
			struct pfs_hier_info in;
			char k[17];
			pfs_engine_hier_info(c->eng[i].e, h, &in);
			snprintf(k, sizeof(k), "%016llx", (unsigned long long)in.key);
			/* A unique prefix is enough, as with git hashes. */
			if (!strncmp(k, key, strlen(key)))
				return json_pack("{s:b, s:o}", "ok", 1, "tree",
						 hier_json(c, &c->eng[i], h, true));
		}
	}
	return ctl_err(CTL_E_not_found, "no hierarchy with key '%s' (see 'trees')", key);
}

static json_t *cmd_files(struct ctl *c, struct ctl_client *cl, json_t *req)
{
	json_t *a = json_array();
	static const char *const st[] = { "free", "filling", "complete" };

	for (int i = 0; i < PFS_CACHE_FILES; i++) {
		struct pfs_cache_file *f = pfs_cache_file(c->cache, i);
		uint32_t s = atomic_load(&f->state);
		char sha[65];
		if (s != PFS_CF_FILLING && s != PFS_CF_COMPLETE)
			continue;       /* free, or dropped (its room not yet back) */
		for (int b = 0; b < 32; b++)
			snprintf(sha + 2 * b, 3, "%02x", f->sha256[b]);
		json_array_append_new(a, json_pack(
			"{s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:s}", "model", f->model,
			"file", f->path, "state", st[s < 3 ? s : 0],
			"size", (json_int_t)(s == PFS_CF_COMPLETE ? f->size : atomic_load(&f->stored)),
			"hits", (json_int_t)f->hits, "chunk_size", (json_int_t)f->chunk_size,
			"pinned", f->pinned != 0, "sha256", s == PFS_CF_COMPLETE ? sha : ""));
	}
	return json_pack("{s:b, s:o}", "ok", 1, "files", a);
}

static json_t *cmd_peers(struct ctl *c, struct ctl_client *cl, json_t *req)
{
	json_t *a = json_array();

	for (int i = 0; i < c->neng; i++) {
		for (int h = 0; h < pfs_engine_hier_count(c->eng[i].e); h++) {
			struct pfs_hier_info in;
			pfs_engine_hier_info(c->eng[i].e, h, &in);
			for (unsigned s = 0; s < in.max_children && s < 256; s++) {
				char ip[16];
				if (!in.children[s])
					continue;
				ip_str(in.children[s], ip);
				json_array_append_new(a, json_pack("{s:s, s:I, s:s, s:s, s:i}",
					"node", ip, "id", (json_int_t)in.children[s],
					"model", c->eng[i].model, "file", in.path, "slot", s));
			}
		}
	}
	return json_pack("{s:b, s:o}", "ok", 1, "peers", a);
}

static json_t *cache_json(struct ctl *c)
{
	struct pfs_cache_stats cs;

	pfs_cache_stats(c->cache, &cs);
	return json_pack("{s:I, s:I, s:i, s:i, s:i, s:I, s:I, s:I}", "bytes",
			 (json_int_t)cs.bytes, "used_bytes", (json_int_t)cs.used_bytes, "files",
			 cs.files, "complete", cs.files_complete, "retiring", cs.files_retiring,
			 "hits", (json_int_t)cs.hits,
			 "misses", (json_int_t)cs.misses, "evictions", (json_int_t)cs.evictions);
}

static json_t *dataplane_json(struct ctl *c)
{
	struct pfs_shm_side_info p;
	const struct pfs_dp_stats *d = pfs_shm_stats(c->shm);
	json_t *o;

	pfs_shm_peer(c->shm, &p);
	o = json_pack("{s:b, s:I, s:i}", "alive", c->dp_alive, "generation",
		      (json_int_t)p.generation, "pid", p.pid);
	if (d->magic != PFS_DP_STATS_MAGIC)
		return o;
#define DP(k) json_object_set_new(o, #k, json_integer((json_int_t)d->k))
	DP(rx_pkts); DP(rx_bytes); DP(rx_pfs); DP(rx_not_pfs); DP(rx_malformed); DP(rx_bad_crc);
	DP(rx_bad_csum); DP(rx_ttl);
	DP(to_control); DP(to_control_drops); DP(from_control); DP(tx_ctrl); DP(tx_chunks);
	DP(tx_bytes); DP(tx_drops); DP(mbuf_drops); DP(chunk_missing); DP(queue_drops);
	DP(children); DP(neighbours); DP(fanout_tables); DP(fanout_chunks); DP(fanout_tx);
	DP(fanout_stray); DP(fanout_no_room); DP(fanout_verified); DP(fanout_bad_digest);
	DP(fanout_notices); DP(tx_chained); DP(fanout_reused); DP(bell_rings); DP(rx_tagged);
	DP(tx_pkts); DP(tx_retries); DP(stale_ranges); DP(workers); DP(rx_handoff);
	DP(handoff_drops); DP(fanout_kept); DP(frames_held);
#undef DP
	return o;
}

static json_t *cmd_status(struct ctl *c, struct ctl_client *cl, json_t *req)
{
	json_t *models = json_array();

	for (int i = 0; i < c->neng; i++)
		json_array_append_new(models, json_string(c->eng[i].model));
	int nh = 0;
	for (int i = 0; i < c->neng; i++)
		nh += pfs_engine_hier_count(c->eng[i].e);
	return json_pack("{s:b, s:I, s:s, s:b, s:b, s:i, s:i, s:s, s:i, s:f, s:o, s:i, s:I, s:o, "
			 "s:o}",
			 "ok", 1, "node_id", (json_int_t)c->cfg.node_id,
			 "address", c->cfg.site_address, "enabled", c->cfg.enabled,
			 "relay", c->cfg.relay && c->cfg.enabled && c->cfg.priority > PFS_CLASS_DEVICE,
			 "priority", c->cfg.priority, "max_children", c->cfg.max_children,
			 "upstream", c->cfg.server,
			 "tftp_blksize", (int)pfs_fetch_tftp_blksize(c->fetch),
			 "uptime_s", (ctl_now() - c->t0) / 1e9,
			 "models", models, "hierarchies", nh,
			 "wan_bytes", (json_int_t)c->st.wan_bytes,
			 "cache", cache_json(c), "dataplane", dataplane_json(c));
}

static json_t *cmd_stats(struct ctl *c, struct ctl_client *cl, json_t *req)
{
	struct pfs_engine_stats sum = { 0 };
	json_t *o, *e;

	ctl_engines_stats(c, &sum);
	uint64_t bad = 0;
	for (int k = 0; k < PFS_E_ERR_COUNT; k++)
		bad += sum.rx_bad[k] + c->st.rx_bad[k];        /* control decodes once */
	e = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		      "chunks_rx", (json_int_t)sum.chunks_rx, "chunks_tx", (json_int_t)sum.chunks_tx,
		      "chunks_retx", (json_int_t)sum.chunks_retx,
		      "chunks_bad", (json_int_t)sum.chunks_bad, "rx_bad", (json_int_t)bad,
		      "rx_foreign", (json_int_t)sum.rx_foreign,
		      "rx_unknown", (json_int_t)sum.rx_unknown, "rx_stray", (json_int_t)sum.rx_stray,
		      "verify_failures", (json_int_t)sum.verify_failures);
	/* Trust (docs/security.md): what was refused, and why. */
#define ES(k) json_object_set_new(e, #k, json_integer((json_int_t)sum.k))
	ES(chunks_forged); ES(chunks_prechecked); ES(manifests_ok); ES(distrusted);
	ES(rx_wrong_source); ES(upstream_bad_chunks);
#undef ES
	uint64_t rejected = 0;
	for (int k = 1; k < PFS_MAN_E_COUNT; k++)
		rejected += sum.manifests_rejected[k];
	json_object_set_new(e, "manifests_rejected", json_integer((json_int_t)rejected));
	for (int k = 0; k < PFS_AUTH_DROP_COUNT; k++) {
		char name[48];
		snprintf(name, sizeof(name), "auth_drop_%s", pfs_auth_drop_name(k));
		json_object_set_new(e, name, json_integer((json_int_t)sum.auth_drops[k]));
	}
	o = json_object();
#define CS(k) json_object_set_new(o, #k, json_integer((json_int_t)c->st.k))
	CS(rx_datagrams); CS(rx_undecodable); CS(rx_model_refused); CS(auto_joins);
	CS(tx_datagrams); CS(tx_ring_full); CS(chunk_ranges); CS(chunks_queued); CS(wan_bytes);
	CS(cache_hits); CS(cache_misses); CS(cache_write_errors); CS(dataplane_restarts);
	CS(ctl_requests); CS(ctl_errors); CS(fanout_tables); CS(fanout_chunks); CS(fanout_skipped);
	CS(fanout_stale); CS(manifests_fetched); CS(manifests_cached); CS(cache_rejected);
	CS(loops); CS(bell_wakes); CS(events_sent); CS(subscribers_dropped); CS(ranges_deferred);
	CS(chunk_sends);
#undef CS
	json_object_set_new(o, "tx_backlog_waited", json_integer((json_int_t)c->txq.waited));
	json_object_set_new(o, "tx_backlog_high", json_integer((json_int_t)c->txq.high));
	json_t *sv = json_object();
	const struct ctl_serve_stats *ss = ctl_serve_stats(c);
	if (ss) {
#define SS(k) json_object_set_new(sv, #k, json_integer((json_int_t)ss->k))
		SS(tftp_requests); SS(tftp_done); SS(tftp_failed); SS(tftp_bytes);
		SS(tftp_bad_requests); SS(tftp_refused); SS(tftp_not_found); SS(tftp_busy);
		SS(tftp_bad_replies); SS(tftp_send_errors); SS(http_requests); SS(http_bytes);
		SS(http_refused); SS(http_not_found); SS(http_not_modified); SS(http_ranges);
		SS(http_bad_ranges); SS(http_errors); SS(tftp_duplicates); SS(tftp_unavailable);
		SS(http_unavailable); SS(http_busy); SS(waited);
#undef SS
		json_object_set_new(sv, "clients", json_integer(ctl_serve_clients(c)));
	}
	return json_pack("{s:b, s:o, s:o, s:o, s:o, s:o}", "ok", 1, "control", o, "engine", e,
			 "dataplane", dataplane_json(c), "cache", cache_json(c), "serve", sv);
}

static json_t *cmd_set(struct ctl *c, struct ctl_client *cl, json_t *req)
{
	const char *key = json_string_value(json_object_get(req, "key"));
	json_int_t v = json_integer_value(json_object_get(req, "value"));

	if (strcmp(key, "priority"))
		return ctl_err(CTL_E_bad_arguments, "set: unknown setting '%s' (settable: priority)",
			       key);
	if (v < 0 || v > 15)
		return ctl_err(CTL_E_bad_arguments, "set priority: value must be 0..15");
	c->cfg.priority = (int)v;
	for (int i = 0; i < c->neng; i++)
		pfs_engine_set_priority(c->eng[i].e, (uint8_t)c->cfg.priority);
	if (c->beacon.e)        /* at or below the devices' class: no longer a relay */
		pfs_engine_set_priority(c->beacon.e, (uint8_t)c->cfg.priority);
	ctl_log(c, "priority class set to %d (applies to elections from now on)", c->cfg.priority);
	return ok_reply();
}

static json_t *cmd_clients(struct ctl *c, struct ctl_client *cl, json_t *req)
{
	return ctl_serve_clients_json(c);
}

static json_t *cmd_evict(struct ctl *c, struct ctl_client *cl, json_t *req)
{
	return json_pack("{s:b, s:i}", "ok", 1, "evicted", pfs_cache_evict_idle(c->cache));
}

static json_t *set_enabled(struct ctl *c, bool on)
{
	ctl_engines_set_enabled(c, on);
	ctl_log(c, "%s by the operator", on ? "enabled" : "disabled");
	return ok_reply();
}

static json_t *cmd_enable(struct ctl *c, struct ctl_client *cl, json_t *req)
{
	return set_enabled(c, true);
}

static json_t *cmd_disable(struct ctl *c, struct ctl_client *cl, json_t *req)
{
	return set_enabled(c, false);
}

static json_t *cmd_prefetch(struct ctl *c, struct ctl_client *cl, json_t *req)
{
	const char *model = json_string_value(json_object_get(req, "model"));
	const char *file = json_string_value(json_object_get(req, "file"));
	int rc = ctl_engines_prefetch(c, model, file);

	if (rc == -EEXIST)
		return ctl_err(CTL_E_conflict, "prefetch: %s %s is already being served", model,
			       file);
	if (rc == -EPERM)
		return ctl_err(CTL_E_not_found, "prefetch: model '%s' is not in appliance.models",
			       model);
	if (rc == -EAGAIN)
		return ctl_err(CTL_E_conflict, "prefetch: the appliance is disabled");
	if (rc == -EINVAL)
		return ctl_err(CTL_E_bad_arguments, "prefetch: %s %s: not a model and file name",
			       model, file);
	if (rc < 0)
		return ctl_err(CTL_E_internal, "prefetch: %s %s: %s", model, file, strerror(-rc));
	return ok_reply();
}

/* From now on every event is pushed to this client (events.c). */
static json_t *cmd_events(struct ctl *c, struct ctl_client *cl, json_t *req)
{
	cl->subscribed = true;
	return json_pack("{s:b, s:b}", "ok", 1, "subscribed", 1);
}

/* The table itself, for scripts and for pfsctl help against a daemon. */
static json_t *cmd_help(struct ctl *c, struct ctl_client *cl, json_t *req)
{
	json_t *r = ctl_help_json();

	json_object_set_new(r, "read_only_socket", json_boolean(cl->read_only));
	return r;
}

typedef json_t *ctl_cmd_fn(struct ctl *c, struct ctl_client *cl, json_t *req);

static ctl_cmd_fn *const handlers[CTL_CMD_COUNT] = {
#define CTL_CMD_HANDLER(name, params, args, ro, help) [CTL_CMD_##name] = cmd_##name,
	CTL_COMMANDS(CTL_CMD_HANDLER)
#undef CTL_CMD_HANDLER
};

/* Every member params names, of its type; a message naming the first that
 * is not, or NULL. */
static json_t *check_params(const struct ctl_command *k, json_t *req)
{
	const char *p = k->params;

	while (*p) {
		char name[32];
		size_t n = strcspn(p, " ");
		bool integer = n && p[n - 1] == '#';
		json_t *v;

		snprintf(name, sizeof(name), "%.*s", (int)(n - integer), p);
		v = json_object_get(req, name);
		if (integer ? !json_is_integer(v) : !json_is_string(v))
			return ctl_err(CTL_E_bad_arguments, "%s needs %s \"%s\" (%s %s)", k->name,
				       integer ? "an integer" : "a string", name, k->name, k->args);
		p += n + (p[n] == ' ');
	}
	return NULL;
}

json_t *ctl_cmd_dispatch(struct ctl *c, struct ctl_client *cl, json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "cmd"));
	const struct ctl_command *k;
	json_t *bad;

	if (!json_is_object(req) || !name)
		return ctl_err(CTL_E_malformed, "a request is an object with a string \"cmd\"");
	if (!(k = ctl_command_find(name)))
		return ctl_err(CTL_E_unknown_command, "unknown command '%s' (see help)", name);
	if (cl->read_only && !k->read_only)
		return ctl_err(CTL_E_read_only, "%s changes the appliance's state: not on the "
			       "read-only socket", name);
	if ((bad = check_params(k, req)))
		return bad;
	return handlers[k - ctl_commands](c, cl, req);
}
