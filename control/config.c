/* config.c - pfs-control's configuration file, parsed with libconfig.
 *
 * Every problem is reported as "FILE:LINE: key: problem" and fails the load:
 * an appliance that silently ignored a typo would take part in elections with
 * settings nobody chose. configs/pfs-relay.conf is the annotated example.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "pfs_bcast.h"
#include "config_get.h"

/* Keys each group may hold: anything else is a typo to report. */
static const char *const known[][12] = {
	{ "site", "address", "broadcast", "prefix", NULL },
	{ "upstream", "url", "tftp", "http", "ca_file", "connect_timeout", "stall_timeout",
	  "low_speed", "min_rate", "retries", "tftp_blksize", NULL },
	{ "appliance", "node_id", "priority", "max_children", "chunk_size", "mode", "models",
	  "enabled", "local_fanout", "relay", NULL },
	{ "segment", "path", "ring_slots", "cache_mb", "rx_frames", NULL },
	{ "control", "socket", "socket_mode", "ro_socket", "ro_socket_mode", "heartbeat_timeout",
	  "max_clients", "client_idle_timeout", NULL },
	{ "trust", "keys", "allow_unsigned", "site_key", "previous_site_key", "state_dir", NULL },
	{ "serve", "tftp", "http", "files", "max_clients", "max_per_client", "wait_timeout",
	  NULL },
	{ "metrics", "listen", NULL },
};

static int check_keys(const struct ctl_config *c, config_setting_t *root)
{
	for (int i = 0; i < config_setting_length(root); i++) {
		config_setting_t *g = config_setting_get_elem(root, (unsigned)i);
		const char *gname = config_setting_name(g);
		size_t k;

		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (!strcmp(known[k][0], gname))
				break;
		if (k == sizeof(known) / sizeof(known[0]))
			return cfg_fail(c, g, gname, "unknown section");
		if (!config_setting_is_group(g))
			return cfg_fail(c, g, gname, "must be a group { ... }");
		for (int j = 0; j < config_setting_length(g); j++) {
			config_setting_t *e = config_setting_get_elem(g, (unsigned)j);
			bool ok = false;
			for (int n = 1; known[k][n]; n++)
				ok |= !strcmp(known[k][n], config_setting_name(e));
			if (!ok)
				return cfg_fail(c, e, gname, "unknown key '%s'", config_setting_name(e));
		}
	}
	return 0;
}

/* The server, exactly one of: url = "tftp://HOST[:PORT]" or
 * "http(s)://HOST[:PORT][/BASE]" (the general form), tftp = "HOST[:PORT]",
 * http = "http(s)://..." (the older names). ca_file: HTTPS's CA store. */
static int load_server(struct ctl_config *c, config_setting_t *g)
{
	config_setting_t *u = config_setting_lookup(g, "url"), *t = config_setting_lookup(g, "tftp"),
			 *h = config_setting_lookup(g, "http"), *ca;

	if (!!u + !!t + !!h > 1)
		return cfg_fail(c, u ? u : h, u ? "upstream.url" : "upstream.http",
			    "give one of url, tftp and http");
	if (!u && !t && !h)
		return cfg_fail(c, g, "upstream", "url (or tftp, or http) is required");
	if ((ca = config_setting_lookup(g, "ca_file"))) {
		if (cfg_str(c, g, "upstream.ca_file", c->ca_file, sizeof(c->ca_file), true) < 0)
			return -1;
		if (access(c->ca_file, R_OK) < 0)
			return cfg_fail(c, ca, "upstream.ca_file", "cannot read '%s': %s", c->ca_file,
				    strerror(errno));
	}
	if (t)
		return cfg_str(c, g, "upstream.tftp", c->server, sizeof(c->server), true) < 0 ||
		       cfg_hostport(c, g, "upstream.tftp", c->server) < 0 ? -1 : 0;
	if (u) {
		if (cfg_str(c, g, "upstream.url", c->server, sizeof(c->server), true) < 0)
			return -1;
		if (strncmp(c->server, "tftp://", 7) && strncmp(c->server, "http://", 7) &&
		    strncmp(c->server, "https://", 8))
			return cfg_fail(c, u, "upstream.url", "'%s' is not a tftp://, http:// or https:// "
				    "URL", c->server);
		if (!pfs_fetch_server_ok(c->server))
			return cfg_fail(c, u, "upstream.url", "'%s' has no host, or a bad port",
				    c->server);
		return 0;
	}
	if (cfg_str(c, g, "upstream.http", c->server, sizeof(c->server), true) < 0)
		return -1;
	if ((strncmp(c->server, "http://", 7) && strncmp(c->server, "https://", 8)) ||
	    !pfs_fetch_server_ok(c->server))
		return cfg_fail(c, h, "upstream.http", "'%s' is not an http:// or https:// URL with a "
			    "host", c->server);
	return 0;
}

/* The bounds of every upstream fetch (pfs_fetch.h), defaults as pfs-peer's. */
static int load_upstream(struct ctl_config *c, config_setting_t *g)
{
	double connect = c->limits.connect_timeout_ms / 1e3, stall = c->limits.stall_timeout_ms / 1e3;
	long long low = c->limits.low_speed, rate = c->limits.min_rate, retries = c->upstream_retries;
	long long blksize = c->limits.tftp_blksize;

	if (cfg_seconds(c, g, "upstream.connect_timeout", 0.1, 3600, &connect) < 0 ||
	    cfg_seconds(c, g, "upstream.stall_timeout", 0.1, 3600, &stall) < 0 ||
	    cfg_int(c, g, "upstream.low_speed", 0, 1 << 30, &low) < 0 ||
	    cfg_int(c, g, "upstream.min_rate", 0, 1 << 30, &rate) < 0 ||
	    cfg_int(c, g, "upstream.retries", 0, 10, &retries) < 0 ||
	    cfg_int(c, g, "upstream.tftp_blksize", PFS_TFTP_BLKSIZE_MIN, PFS_TFTP_BLKSIZE_MAX,
		    &blksize) < 0)
		return -1;
	c->limits.tftp_blksize = (uint32_t)blksize;
	c->limits.connect_timeout_ms = (uint32_t)(connect * 1000);
	c->limits.stall_timeout_ms = (uint32_t)(stall * 1000);
	c->limits.low_speed = (uint32_t)low;
	c->limits.min_rate = (uint32_t)rate;
	c->upstream_retries = (int)retries;
	return 0;
}

static int load_appliance(struct ctl_config *c, config_setting_t *a)
{
	long long v;
	char mode[32] = "";
	config_setting_t *s;

	v = c->node_id;
	if (cfg_int(c, a, "appliance.node_id", 0, UINT32_MAX, &v) < 0)
		return -1;
	c->node_id = (uint32_t)v;
	v = c->priority;
	if (cfg_int(c, a, "appliance.priority", 0, 15, &v) < 0)
		return -1;
	c->priority = (int)v;
	v = c->max_children;
	if (cfg_int(c, a, "appliance.max_children", 1, 255, &v) < 0)
		return -1;
	c->max_children = (int)v;
	v = c->chunk_size;
	if (cfg_int(c, a, "appliance.chunk_size", 64, PFS_CHUNK_DEFAULT, &v) < 0)
		return -1;
	c->chunk_size = (uint32_t)v;
	if (cfg_str(c, a, "appliance.mode", mode, sizeof(mode), false) < 0)
		return -1;
	if (!mode[0] || !strcmp(mode, "cut-through"))
		c->mode = PFS_MODE_CUT_THROUGH;
	else if (!strcmp(mode, "store-forward"))
		c->mode = PFS_MODE_STORE_FORWARD;
	else
		return cfg_fail(c, config_setting_lookup(a, "mode"), "appliance.mode",
			    "'%s' is not cut-through or store-forward", mode);
	if (cfg_bool(c, a, "appliance.enabled", &c->enabled) < 0 ||
	    cfg_bool(c, a, "appliance.local_fanout", &c->local_fanout) < 0 ||
	    cfg_bool(c, a, "appliance.relay", &c->relay) < 0)
		return -1;
	if ((s = config_setting_lookup(a, "models"))) {
		if (!config_setting_is_array(s) && !config_setting_is_list(s))
			return cfg_fail(c, s, "appliance.models", "must be a list of strings [ ... ]");
		for (int i = 0; i < config_setting_length(s); i++) {
			const char *m = config_setting_get_string_elem(s, i);
			if (!m || !pfs_model_valid(m, strlen(m)))
				return cfg_fail(c, s, "appliance.models", "element %d is not a device model",
					    i + 1);
			if (c->nmodels == CTL_MAX_MODELS)
				return cfg_fail(c, s, "appliance.models", "more than %d models",
					    CTL_MAX_MODELS);
			strcpy(c->models[c->nmodels++], m);
		}
	}
	return 0;
}

/* serve { tftp, http, files, max_clients, max_per_client } (issue 12): the
 * load server. A glob is a path pattern (fnmatch, '*' within one
 * directory). */
static int load_serve(struct ctl_config *c, config_setting_t *g)
{
	config_setting_t *s;
	long long v = c->serve_max_clients, per = c->serve_max_per_client;
	double wait = c->serve_wait_ns / 1e9;

	if (cfg_bool(c, g, "serve.tftp", &c->serve_tftp) < 0 ||
	    cfg_int(c, g, "serve.max_clients", 1, 4096, &v) < 0 ||
	    cfg_int(c, g, "serve.max_per_client", 1, 4096, &per) < 0)
		return -1;
	c->serve_max_clients = (int)v;
	c->serve_max_per_client = (int)per;
	if (cfg_seconds(c, g, "serve.wait_timeout", 0.1, 3600, &wait) < 0)
		return -1;
	c->serve_wait_ns = (int64_t)(wait * 1e9);
	if (cfg_listen(c, g, "serve.http", &c->serve_http_ip, &c->serve_http_port) < 0)
		return -1;
	if (!(s = config_setting_lookup(g, "files")))
		return 0;
	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return cfg_fail(c, s, "serve.files", "must be a list of path patterns [ ... ]");
	for (int i = 0; i < config_setting_length(s); i++) {
		const char *p = config_setting_get_string_elem(s, i);
		if (!p || !*p || strlen(p) > PFS_FILEPATH_MAX || *p == '/' || strstr(p, ".."))
			return cfg_fail(c, s, "serve.files", "element %d is not a relative path pattern "
				    "without '..'", i + 1);
		if (c->serve_nglobs == CTL_SERVE_GLOBS)
			return cfg_fail(c, s, "serve.files", "more than %d patterns", CTL_SERVE_GLOBS);
		strcpy(c->serve_globs[c->serve_nglobs++], p);
	}
	return 0;
}

static int load_site_key(struct ctl_config *c, config_setting_t *g, const char *name)
{
	char path[4096] = "", err[512];
	struct pfs_site_key k;
	int i = c->site.nkeys;

	if (cfg_str(c, g, name, path, sizeof(path), false) < 0)
		return -1;
	if (!path[0])
		return 0;
	if (pfs_keyfile_read_site(path, &k, err, sizeof(err)) < 0)
		return cfg_fail(c, config_setting_lookup(g, strchr(name, '.') + 1), name, "%s", err);
	if (i == 1 && k.id == c->site.key_id[0])
		return cfg_fail(c, config_setting_lookup(g, strchr(name, '.') + 1), name,
			    "key id %u is the current key's too", k.id);
	c->site.key_id[i] = k.id;
	memcpy(c->site.key[i], k.key, sizeof(k.key));
	c->site.nkeys++;
	return 0;
}

/* Who signs firmware, whether unsigned files are allowed, the site key:
 * required, so that no appliance runs unsigned without being told to. */
static int load_trust(struct ctl_config *c, config_setting_t *g)
{
	config_setting_t *s;
	char err[512];

	if ((s = config_setting_lookup(g, "allow_unsigned"))) {
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			return cfg_fail(c, s, "trust.allow_unsigned", "must be true or false");
		c->trust.allow_unsigned = config_setting_get_bool(s);
	}
	if ((s = config_setting_lookup(g, "keys"))) {
		if (!config_setting_is_array(s) && !config_setting_is_list(s))
			return cfg_fail(c, s, "trust.keys", "must be a list of key files [ ... ]");
		for (int i = 0; i < config_setting_length(s); i++) {
			const char *k = config_setting_get_string_elem(s, i);
			if (!k)
				return cfg_fail(c, s, "trust.keys", "element %d is not a string", i + 1);
			if (pfs_trust_load(&c->trust, &k, 1, err, sizeof(err)) < 0)
				return cfg_fail(c, s, "trust.keys", "%s", err);
		}
	}
	if (!c->trust.nkeys && !c->trust.allow_unsigned)
		return cfg_fail(c, g, "trust", "no keys: list the publishers' public keys "
			    "(trust.keys) or set allow_unsigned = true");
	if (load_site_key(c, g, "trust.site_key") < 0)
		return -1;
	if (config_setting_lookup(g, "previous_site_key") && !c->site.nkeys)
		return cfg_fail(c, config_setting_lookup(g, "previous_site_key"),
			    "trust.previous_site_key", "given without trust.site_key");
	if (load_site_key(c, g, "trust.previous_site_key") < 0)
		return -1;
	return cfg_str(c, g, "trust.state_dir", c->state_dir, sizeof(c->state_dir), false);
}

/* site.broadcast, or the subnet's from site.prefix: claims sent to the
 * appliance's own address (what an address without `brd` reports) would
 * reach nobody, and every device would fetch for itself. */
static int site_broadcast(struct ctl_config *c, config_setting_t *g)
{
	long long prefix = -1;
	bool derived;
	struct in_addr a;

	if (cfg_int(c, g, "site.prefix", 1, 32, &prefix) < 0)
		return -1;
	if (c->site_broadcast[0]) {
		if (c->bcast == c->ip)
			return cfg_fail(c, config_setting_lookup(g, "broadcast"), "site.broadcast",
				    "is site.address itself: claims would reach no device");
		return 0;
	}
	if (prefix < 0)
		return cfg_fail(c, g, "site", "broadcast or prefix is required (prefix = 24; "
			    "derives the subnet's broadcast address)");
	c->bcast = pfs_broadcast_for(c->ip, pfs_prefix_mask((unsigned)prefix), 0, &derived);
	a.s_addr = htonl(c->bcast);
	inet_ntop(AF_INET, &a, c->site_broadcast, sizeof(c->site_broadcast));
	return 0;
}

static void defaults(struct ctl_config *c, const char *path)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->priority = PFS_CLASS_APPLIANCE;
	c->max_children = 16;
	c->chunk_size = PFS_CHUNK_DEFAULT;
	c->mode = PFS_MODE_CUT_THROUGH;
	c->enabled = true;
	c->local_fanout = true;
	c->relay = true;
	c->serve_max_clients = 256;
	c->serve_max_per_client = 4;
	c->serve_wait_ns = 120 * 1000000000ll;
	strcpy(c->segment, "/dev/shm/pfs-relay");
	c->ring_slots = 1024;
	c->cache_bytes = 256ull << 20;
	c->rx_frames = -1;
	strcpy(c->socket, "/run/pfs-relay/control.sock");
	c->socket_mode = 0660;
	c->ro_socket_mode = 0666;
	c->heartbeat_timeout_s = 2.0;
	pfs_fetch_limits_default(&c->limits);
	c->upstream_retries = 2;
	c->max_clients = 16;
	c->client_idle_s = 60;
	strcpy(c->state_dir, "/var/lib/pfs-relay");
}

int ctl_config_load(struct ctl_config *c, const char *path)
{
	config_t cf;
	config_setting_t *root, *g;
	long long v;
	bool ro_set = false;
	int rc = -1;

	defaults(c, path);
	config_init(&cf);
	if (!config_read_file(&cf, path)) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
			fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
		else
			fprintf(stderr, "%s:%d: syntax: %s\n", path, config_error_line(&cf),
				config_error_text(&cf));
		goto out;
	}
	root = config_root_setting(&cf);
	if (check_keys(c, root) < 0)
		goto out;
	if (!(g = config_setting_lookup(root, "site"))) {
		cfg_fail(c, NULL, "site", "missing section (address and broadcast are required)");
		goto out;
	}
	if (cfg_ip(c, g, "site.address", c->site_address, &c->ip, true) < 0 ||
	    cfg_ip(c, g, "site.broadcast", c->site_broadcast, &c->bcast, false) < 0 ||
	    site_broadcast(c, g) < 0)
		goto out;
	if (!(g = config_setting_lookup(root, "upstream"))) {
		cfg_fail(c, NULL, "upstream", "missing section (url is required)");
		goto out;
	}
	if (load_server(c, g) < 0 || load_upstream(c, g) < 0)
		goto out;
	if ((g = config_setting_lookup(root, "serve")) && load_serve(c, g) < 0)
		goto out;
	if ((g = config_setting_lookup(root, "metrics")) &&
	    cfg_listen(c, g, "metrics.listen", &c->metrics_ip, &c->metrics_port) < 0)
		goto out;
	if ((g = config_setting_lookup(root, "appliance")) && load_appliance(c, g) < 0)
		goto out;
	if ((g = config_setting_lookup(root, "segment"))) {
		if (cfg_str(c, g, "segment.path", c->segment, sizeof(c->segment), false) < 0)
			goto out;
		v = c->ring_slots;
		if (cfg_int(c, g, "segment.ring_slots", 16, 1 << 20, &v) < 0)
			goto out;
		if (v & (v - 1)) {
			cfg_fail(c, config_setting_lookup(g, "ring_slots"), "segment.ring_slots",
			     "%lld is not a power of two", v);
			goto out;
		}
		c->ring_slots = (uint32_t)v;
		v = (long long)(c->cache_bytes >> 20);
		if (cfg_int(c, g, "segment.cache_mb", 4, 1 << 20, &v) < 0)
			goto out;
		c->cache_bytes = (uint64_t)v << 20;
		v = c->rx_frames;
		if (config_setting_lookup(g, "rx_frames")) {
			if (cfg_int(c, g, "segment.rx_frames", 0, 1 << 20, &v) < 0)
				goto out;
			if ((uint64_t)v * PFS_CACHE_FRAME > c->cache_bytes / 2) {
				cfg_fail(c, config_setting_lookup(g, "rx_frames"),
					 "segment.rx_frames", "%lld frames of %u bytes take more "
					 "than half of segment.cache_mb", v, PFS_CACHE_FRAME);
				goto out;
			}
			c->rx_frames = v;
		}
	}
	if ((g = config_setting_lookup(root, "control"))) {
		if (cfg_str(c, g, "control.socket", c->socket, sizeof(c->socket), false) < 0)
			goto out;
		if (strlen(c->socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			cfg_fail(c, config_setting_lookup(g, "socket"), "control.socket",
			     "longer than %zu bytes, the most a socket path may have",
			     sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
			goto out;
		}
		if (cfg_mode(c, g, "control.socket_mode", &c->socket_mode) < 0 ||
		    cfg_mode(c, g, "control.ro_socket_mode", &c->ro_socket_mode) < 0)
			goto out;
		if (config_setting_lookup(g, "ro_socket")) {
			if (cfg_str(c, g, "control.ro_socket", c->ro_socket, sizeof(c->ro_socket),
				    false) < 0)
				goto out;
			if (strlen(c->ro_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path) ||
			    (c->ro_socket[0] && !strcmp(c->ro_socket, c->socket))) {
				cfg_fail(c, config_setting_lookup(g, "ro_socket"), "control.ro_socket",
				     "%s", c->ro_socket[0] && !strcmp(c->ro_socket, c->socket) ?
				     "is control.socket itself" :
				     "longer than the most a socket path may have");
				goto out;
			}
			ro_set = true;
		}
		v = c->max_clients;
		if (cfg_int(c, g, "control.max_clients", 1, CTL_MAX_CLIENTS, &v) < 0)
			goto out;
		c->max_clients = (int)v;
		if (cfg_seconds(c, g, "control.client_idle_timeout", 1, 86400,
				&c->client_idle_s) < 0 ||
		    cfg_seconds(c, g, "control.heartbeat_timeout", 0.001, 60,
				&c->heartbeat_timeout_s) < 0)
			goto out;
	}
	/* The read-only socket beside the other: control.sock -> control-ro.sock. */
	if (!ro_set) {
		size_t n = strlen(c->socket);
		bool dot_sock = n > 5 && !strcmp(c->socket + n - 5, ".sock");

		if (n + 4 >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			cfg_fail(c, NULL, "control.ro_socket", "control.socket is too long to put "
				 "the read-only socket beside it: set control.ro_socket");
			goto out;
		}
		snprintf(c->ro_socket, sizeof(c->ro_socket), "%.*s-ro%s", (int)(n - 5 * dot_sock),
			 c->socket, dot_sock ? ".sock" : "");
	}
	if (!(g = config_setting_lookup(root, "trust"))) {
		cfg_fail(c, NULL, "trust", "missing section (keys = [ \"publisher.pub\" ]; or "
		     "allow_unsigned = true;)");
		goto out;
	}
	if (load_trust(c, g) < 0)
		goto out;
	if (!c->node_id)
		c->node_id = c->ip;     /* unique on the subnet, like the address */
	rc = 0;
out:
	config_destroy(&cf);
	return rc;
}
