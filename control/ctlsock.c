/* ctlsock.c - the operator's control socket: a Unix stream socket (owner
 * and group only), one JSON request per line, one JSON reply per line
 * (docs/appliance.md 5).
 *
 * The daemon never blocks on a client: requests are read as they come, a
 * line longer than CTL_REQ_MAX or a client that does not read its replies
 * is disconnected, and every malformed or unknown request gets
 * {"ok": false, "error": "..."} naming the problem. A client that asks for
 * "events" is pushed every event from then on (events.c); it is never
 * swept as idle, and is dropped if it does not read them.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "pfs_dp_stats.h"

static json_t *err_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *err_reply(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
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
		source = h < CTL_MAX_HIERS && ce->from_cache[h] ? "cache" : "upstream";
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

static json_t *cmd_trees(struct ctl *c)
{
	json_t *a = json_array();

	for (int i = 0; i < c->neng; i++)
		for (int h = 0; h < pfs_engine_hier_count(c->eng[i].e); h++)
			json_array_append_new(a, hier_json(c, &c->eng[i], h, false));
	return json_pack("{s:b, s:o}", "ok", 1, "trees", a);
}

static json_t *cmd_tree(struct ctl *c, const char *key)
{
	for (int i = 0; key && i < c->neng; i++) {
		for (int h = 0; h < pfs_engine_hier_count(c->eng[i].e); h++) {
			struct pfs_hier_info in;
			char k[17];
			pfs_engine_hier_info(c->eng[i].e, h, &in);
			snprintf(k, sizeof(k), "%016llx", (unsigned long long)in.key);
			/* A unique prefix is enough, as with git hashes. */
			if (!strncmp(k, key, strlen(key)) && strlen(key) >= 4)
				return json_pack("{s:b, s:o}", "ok", 1, "tree",
						 hier_json(c, &c->eng[i], h, true));
		}
	}
	return err_reply("no hierarchy with key '%s' (see 'trees'; at least 4 hex digits)",
			 key ? key : "");
}

static json_t *cmd_files(struct ctl *c)
{
	json_t *a = json_array();
	static const char *const st[] = { "free", "filling", "complete" };

	for (int i = 0; i < PFS_CACHE_FILES; i++) {
		struct pfs_cache_file *f = pfs_cache_file(c->cache, i);
		uint32_t s = atomic_load(&f->state);
		char sha[65];
		if (s == PFS_CF_FREE)
			continue;
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

static json_t *cmd_peers(struct ctl *c)
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
	return json_pack("{s:I, s:I, s:i, s:i, s:I, s:I, s:I}", "bytes", (json_int_t)cs.bytes,
			 "used_bytes", (json_int_t)cs.used_bytes, "files", cs.files,
			 "complete", cs.files_complete, "hits", (json_int_t)cs.hits,
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
	DP(handoff_drops);
#undef DP
	return o;
}

static json_t *cmd_status(struct ctl *c)
{
	json_t *models = json_array();

	for (int i = 0; i < c->neng; i++)
		json_array_append_new(models, json_string(c->eng[i].model));
	int nh = 0;
	for (int i = 0; i < c->neng; i++)
		nh += pfs_engine_hier_count(c->eng[i].e);
	return json_pack("{s:b, s:I, s:s, s:b, s:b, s:i, s:i, s:s, s:f, s:o, s:i, s:I, s:o, s:o}",
			 "ok", 1, "node_id", (json_int_t)c->cfg.node_id,
			 "address", c->cfg.site_address, "enabled", c->cfg.enabled,
			 "relay", c->cfg.relay && c->cfg.enabled && c->cfg.priority > PFS_CLASS_DEVICE,
			 "priority", c->cfg.priority, "max_children", c->cfg.max_children,
			 "upstream", c->cfg.server, "uptime_s", (ctl_now() - c->t0) / 1e9,
			 "models", models, "hierarchies", nh,
			 "wan_bytes", (json_int_t)c->st.wan_bytes,
			 "cache", cache_json(c), "dataplane", dataplane_json(c));
}

static json_t *cmd_stats(struct ctl *c)
{
	struct pfs_engine_stats sum = { 0 };
	json_t *o, *e;

	ctl_engines_stats(c, &sum);
	uint64_t bad = 0;
	for (int k = 0; k < PFS_E_ERR_COUNT; k++)
		bad += sum.rx_bad[k];
	e = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		      "chunks_rx", (json_int_t)sum.chunks_rx, "chunks_tx", (json_int_t)sum.chunks_tx,
		      "chunks_retx", (json_int_t)sum.chunks_retx,
		      "chunks_bad", (json_int_t)sum.chunks_bad, "rx_bad", (json_int_t)bad,
		      "rx_foreign", (json_int_t)sum.rx_foreign,
		      "rx_unknown", (json_int_t)sum.rx_unknown, "rx_stray", (json_int_t)sum.rx_stray,
		      "verify_failures", (json_int_t)sum.verify_failures);
	/* Trust (docs/security.md): what was refused, and why. */
#define ES(k) json_object_set_new(e, #k, json_integer((json_int_t)sum.k))
	ES(chunks_forged); ES(manifests_ok); ES(distrusted); ES(rx_wrong_source);
	ES(upstream_bad_chunks);
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
	CS(loops); CS(bell_wakes); CS(events_sent); CS(subscribers_dropped);
#undef CS
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

static json_t *cmd_set(struct ctl *c, json_t *req)
{
	const char *key = json_string_value(json_object_get(req, "key"));
	json_t *v = json_object_get(req, "value");

	if (!key || strcmp(key, "priority"))
		return err_reply("set: unknown setting '%s' (settable: priority)", key ? key : "");
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 15)
		return err_reply("set priority: value must be an integer 0..15");
	c->cfg.priority = (int)json_integer_value(v);
	for (int i = 0; i < c->neng; i++)
		pfs_engine_set_priority(c->eng[i].e, (uint8_t)c->cfg.priority);
	if (c->beacon.e)        /* at or below the devices' class: no longer a relay */
		pfs_engine_set_priority(c->beacon.e, (uint8_t)c->cfg.priority);
	ctl_log(c, "priority class set to %d (applies to elections from now on)", c->cfg.priority);
	return ok_reply();
}

static json_t *dispatch(struct ctl *c, json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (!json_is_object(req) || !cmd)
		return err_reply("a request is an object with a string \"cmd\"");
	if (!strcmp(cmd, "status"))
		return cmd_status(c);
	if (!strcmp(cmd, "trees"))
		return cmd_trees(c);
	if (!strcmp(cmd, "tree"))
		return cmd_tree(c, json_string_value(json_object_get(req, "key")));
	if (!strcmp(cmd, "files"))
		return cmd_files(c);
	if (!strcmp(cmd, "peers"))
		return cmd_peers(c);
	if (!strcmp(cmd, "clients"))
		return ctl_serve_clients_json(c);
	if (!strcmp(cmd, "stats"))
		return cmd_stats(c);
	if (!strcmp(cmd, "evict"))
		return json_pack("{s:b, s:i}", "ok", 1, "evicted", pfs_cache_evict_idle(c->cache));
	if (!strcmp(cmd, "set"))
		return cmd_set(c, req);
	if (!strcmp(cmd, "enable") || !strcmp(cmd, "disable")) {
		ctl_engines_set_enabled(c, cmd[0] == 'e');
		ctl_log(c, "%sd by the operator", cmd);
		return ok_reply();
	}
	if (!strcmp(cmd, "prefetch")) {
		const char *model = json_string_value(json_object_get(req, "model"));
		const char *file = json_string_value(json_object_get(req, "file"));
		int rc;
		if (!model || !file)
			return err_reply("prefetch needs string \"model\" and \"file\"");
		rc = ctl_engines_prefetch(c, model, file);
		if (rc == -EEXIST)
			return err_reply("prefetch: %s %s is already being served", model, file);
		if (rc == -EPERM)
			return err_reply("prefetch: model '%s' is not in appliance.models", model);
		if (rc == -EAGAIN)
			return err_reply("prefetch: the appliance is disabled");
		if (rc < 0)
			return err_reply("prefetch: %s %s: %s", model, file, strerror(-rc));
		return ok_reply();
	}
	return err_reply("unknown command '%s'", cmd);
}

static void client_close(struct ctl *c, struct ctl_client *cl)
{
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, cl->fd, NULL);
	close(cl->fd);
	cl->fd = -1;
	cl->len = 0;
	cl->subscribed = false;
}

void ctl_sock_drop(struct ctl *c, struct ctl_client *cl)
{
	client_close(c, cl);
}

/* Reply, or drop a client whose socket buffer is full: never wait. */
static bool reply(struct ctl *c, struct ctl_client *cl, json_t *r)
{
	char *s = json_dumps(r, JSON_COMPACT);
	bool ok = false;

	if (!json_is_true(json_object_get(r, "ok")))
		c->st.ctl_errors++;
	json_decref(r);
	if (s) {
		size_t n = strlen(s);
		s[n] = '\n';
		ok = send(cl->fd, s, n + 1, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)(n + 1);
		free(s);
	}
	if (!ok)
		client_close(c, cl);
	return ok;
}

static void client_read(struct ctl *c, struct ctl_client *cl)
{
	for (;;) {
		ssize_t n = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len, MSG_DONTWAIT);
		char *nl;

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			client_close(c, cl);
			return;
		}
		if (n < 0)
			return;
		cl->last_active = ctl_now();
		cl->len += (size_t)n;
		while ((nl = memchr(cl->buf, '\n', cl->len))) {
			json_error_t jerr;
			size_t line = (size_t)(nl - cl->buf);
			json_t *req = json_loadb(cl->buf, line, 0, &jerr), *r;

			c->st.ctl_requests++;
			const char *cmd = req ? json_string_value(json_object_get(req, "cmd")) : NULL;
			if (cmd && !cl->subscribed && !strcmp(cmd, "events")) {
				/* From now on events are pushed to it (events.c). */
				cl->subscribed = true;
				r = json_pack("{s:b, s:b}", "ok", 1, "subscribed", 1);
			} else {
				r = req ? dispatch(c, req) : err_reply("malformed JSON: %s", jerr.text);
			}
			json_decref(req);
			memmove(cl->buf, nl + 1, cl->len - line - 1);
			cl->len -= line + 1;
			if (!reply(c, cl, r))
				return;
		}
		if (cl->len == sizeof(cl->buf)) {
			reply(c, cl, err_reply("request longer than %d bytes", CTL_REQ_MAX));
			if (cl->fd >= 0)
				client_close(c, cl);
			return;
		}
	}
}

void ctl_sock_sweep(struct ctl *c, int64_t now)
{
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (c->clients[i].fd >= 0 && !c->clients[i].subscribed &&
		    now - c->clients[i].last_active > (int64_t)(c->cfg.client_idle_s * 1e9))
			client_close(c, &c->clients[i]);
}

/* A slot for a new connection: a free one, else the longest idle one if it
 * has been idle a second (an operator is never locked out by clients that
 * connect and say nothing), else none. */
static struct ctl_client *client_slot(struct ctl *c, int64_t now)
{
	struct ctl_client *idle = NULL;
	int used = 0;

	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *cl = &c->clients[i];
		if (cl->fd < 0)
			continue;
		used++;
		if (!cl->subscribed && (!idle || cl->last_active < idle->last_active))
			idle = cl;
	}
	if (used < c->cfg.max_clients) {
		for (int i = 0; i < CTL_MAX_CLIENTS; i++)
			if (c->clients[i].fd < 0)
				return &c->clients[i];
	}
	if (idle && now - idle->last_active >= 1000000000) {
		client_close(c, idle);
		return idle;
	}
	return NULL;
}

static void accept_clients(struct ctl *c)
{
	int fd;

	while ((fd = accept4(c->lsock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
		struct ctl_client *cl = client_slot(c, ctl_now());
		if (!cl || epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			static const char busy[] = "{\"ok\":false,\"error\":\"too many clients\"}\n";
			if (send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
				c->st.ctl_errors++;
			close(fd);
			continue;
		}
		cl->fd = fd;
		cl->len = 0;
		cl->last_active = ctl_now();
	}
}

bool ctl_sock_event(struct ctl *c, int fd, uint32_t events)
{
	(void)events;
	if (fd == c->lsock) {
		accept_clients(c);
		return true;
	}
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		if (c->clients[i].fd == fd) {
			client_read(c, &c->clients[i]);
			return true;
		}
	}
	return false;
}

int ctl_sock_open(struct ctl *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN };
	struct stat st;
	int fd, rc;

	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		c->clients[i].fd = -1;
	if (strlen(c->cfg.socket) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "pfs-control: control.socket: path longer than %zu bytes\n",
			sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, c->cfg.socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A socket file nobody answers on is a leftover of a crash. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN) {
		fprintf(stderr, "pfs-control: %s: another pfs-control is running\n", c->cfg.socket);
		rc = -EADDRINUSE;
		goto err;
	}
	close(fd);
	/* Only a stale socket is removed: a path naming anything else is a
	 * configuration mistake, and deleting it would lose someone's file. */
	if (lstat(c->cfg.socket, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "pfs-control: control.socket %s exists and is not a socket: "
			"refusing to replace it\n", c->cfg.socket);
		return -EEXIST;
	}
	unlink(c->cfg.socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(c->cfg.socket, (mode_t)c->cfg.socket_mode) < 0 || listen(fd, 16) < 0) {
		rc = -errno;
		fprintf(stderr, "pfs-control: %s: %s\n", c->cfg.socket, strerror(-rc));
		goto err;
	}
	ev.data.fd = fd;
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	c->lsock = fd;
	return 0;
err_unlink:
	unlink(c->cfg.socket);
err:
	close(fd);
	return rc;
}

void ctl_sock_close(struct ctl *c)
{
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (c->clients[i].fd >= 0)
			client_close(c, &c->clients[i]);
	if (c->lsock >= 0) {
		close(c->lsock);
		unlink(c->cfg.socket);
		c->lsock = -1;
	}
}
