/* serve.c - the load server (issue 12): devices that only speak TFTP get
 * their firmware from the appliance's cache, on the kernel's stack (the XDP
 * filter passes UDP 69 to it), whether pfs-dataplane runs or not.
 *
 * A read request arrives on UDP 69 at site.address; each transfer then has
 * a socket of its own (a new TID, RFC 1350), connected to the client, and a
 * serve/tftp_session.c state machine that reads blocks from the cache. The
 * name is confined before anything is looked up: a served path is one the
 * protocol allows (pfs_filepath_valid: no "..", no absolute path), matching
 * one of serve.files when that is set; the file is a complete, verified
 * cache entry (any model: the same path on the same server is the same
 * bytes). Write requests are refused. This slice serves what the cache
 * holds; a miss is "file not found" until the fetch-on-miss lands (issue 12
 * section 2).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.h"
#include "tftp_session.h"

#define XFER_TIMEOUT  1000000000ull     /* a block's first wait, doubling (tftp_session.c) */
#define XFER_RETRIES  5

struct xfer {
	bool used;
	int fd;
	int fi;
	struct sockaddr_in peer;
	struct tftp_session s;
	void *ctx[2];                   /* the session's read callback: (ctl, fi) */
	int64_t started;
};

struct ctl_serve {
	int fd;                         /* UDP 69 */
	struct xfer *xf;                /* [cfg.serve_max_clients] */
	int nxf;
	uint8_t pkt[TFTP_PKT_MAX];
};

static const struct tftp_limits limits = {
	.blksize_max = 1468,            /* a block per 1500-byte frame: no fragments */
	.window_max = 64,
	.timeout = XFER_TIMEOUT,
	.retries = XFER_RETRIES,
};

static int epoll_add(struct ctl *c, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int udp_socket(uint32_t ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(ip) };
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int ctl_serve_open(struct ctl *c)
{
	struct ctl_serve *sv;
	int rc;

	if (!c->cfg.serve_tftp)
		return 0;
	if (!(sv = calloc(1, sizeof(*sv))) ||
	    !(sv->xf = calloc((size_t)c->cfg.serve_max_clients, sizeof(*sv->xf)))) {
		free(sv);
		return -ENOMEM;
	}
	sv->nxf = c->cfg.serve_max_clients;
	sv->fd = udp_socket(c->cfg.ip, TFTP_PORT);
	if (sv->fd < 0 || (rc = epoll_add(c, sv->fd)) < 0) {
		rc = sv->fd < 0 ? sv->fd : rc;
		fprintf(stderr, "pfs-control: serve.tftp: cannot listen on %s:69: %s\n",
			c->cfg.site_address, strerror(-rc));
		if (sv->fd >= 0)
			close(sv->fd);
		free(sv->xf);
		free(sv);
		return rc;
	}
	c->serve = sv;
	ctl_log(c, "serving TFTP on %s:69 to at most %d clients at once%s", c->cfg.site_address,
		sv->nxf, c->cfg.serve_nglobs ? "" : ", every cached file");
	return 0;
}

static void xfer_end(struct ctl *c, struct xfer *x)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &x->peer.sin_addr, ip, sizeof(ip));
	if (x->s.state == TS_DONE) {
		c->serve_st.tftp_done++;
		ctl_log(c, "tftp %s:%u: sent %s (%llu bytes, %llu blocks again) in %.2f s", ip,
			ntohs(x->peer.sin_port), pfs_cache_file(c->cache, x->fi)->path,
			(unsigned long long)x->s.size, (unsigned long long)x->s.retransmits,
			(ctl_now() - x->started) / 1e9);
	} else {
		c->serve_st.tftp_failed++;
		ctl_log(c, "tftp %s:%u: %s ended: %s", ip, ntohs(x->peer.sin_port),
			pfs_cache_file(c->cache, x->fi)->path, x->s.why ? x->s.why : "?");
	}
	c->serve_st.tftp_bytes += x->s.bytes_sent;
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, x->fd, NULL);
	close(x->fd);
	x->used = false;
}

/* Send what the session has due; end it once it is over. */
static void xfer_pump(struct ctl *c, struct xfer *x)
{
	int n;

	while ((n = tftp_session_poll(&x->s, (tftp_time_t)ctl_now(), c->serve->pkt,
				      sizeof(c->serve->pkt))) > 0)
		if (send(x->fd, c->serve->pkt, (size_t)n, 0) < 0)
			c->serve_st.tftp_send_errors++;
	if (tftp_session_over(&x->s))
		xfer_end(c, x);
}

static void refuse(struct ctl *c, const struct sockaddr_in *to, uint16_t code, const char *msg)
{
	int n = tftp_build_error(c->serve->pkt, sizeof(c->serve->pkt), code, msg);

	if (n > 0)
		sendto(c->serve->fd, c->serve->pkt, (size_t)n, 0, (const struct sockaddr *)to,
		       sizeof(*to));
}

/* The name as a served path, or NULL when it may not be served: leading
 * slashes dropped (clients send "/fw/a.bin"), then the protocol's own rule
 * for file paths, then serve.files. */
const char *ctl_serve_confine(const struct ctl *c, const char *name)
{
	while (*name == '/')
		name++;
	if (!pfs_filepath_valid(name, strlen(name)))
		return NULL;
	if (!c->cfg.serve_nglobs)
		return name;
	for (int i = 0; i < c->cfg.serve_nglobs; i++)
		if (fnmatch(c->cfg.serve_globs[i], name, FNM_PATHNAME) == 0)
			return name;
	return NULL;
}

/* A complete (verified) cache entry for path, of a model we serve. */
int ctl_serve_cached(const struct ctl *c, const char *path)
{
	for (int fi = 0; fi < PFS_CACHE_FILES; fi++) {
		struct pfs_cache_file *f = pfs_cache_file(c->cache, fi);
		if (!f || atomic_load(&f->state) != PFS_CF_COMPLETE || strcmp(f->path, path))
			continue;
		if (ctl_model_allowed(c, f->model))
			return fi;
	}
	return -1;
}

static int cache_read(void *ctx, uint64_t off, void *buf, uint32_t len)
{
	struct ctl *c = ((void **)ctx)[0];
	int fi = (int)(intptr_t)((void **)ctx)[1];

	return pfs_cache_read(c->cache, fi, off, buf, len) < 0 ? -EIO : (int)len;
}

static void on_request(struct ctl *c, const uint8_t *buf, size_t len,
		       const struct sockaddr_in *from)
{
	struct ctl_serve *sv = c->serve;
	struct tftp_request r;
	const char *path;
	struct xfer *x = NULL;
	int rc = tftp_parse_request(buf, len, &r), fi;

	c->serve_st.tftp_requests++;
	if (rc < 0) {
		c->serve_st.tftp_bad_requests++;
		refuse(c, from, rc == TFTP_P_NAME ? TFTP_EACCESS : TFTP_EBADOP,
		       tftp_parse_strerror(rc));
		return;
	}
	if (r.op == TFTP_WRQ) {
		c->serve_st.tftp_refused++;
		refuse(c, from, TFTP_EACCESS, "this server takes no files");
		return;
	}
	if (!r.octet) {
		c->serve_st.tftp_bad_requests++;
		refuse(c, from, TFTP_EUNDEF, "netascii is not served: ask in octet (binary) mode");
		return;
	}
	if (!(path = ctl_serve_confine(c, r.name))) {
		c->serve_st.tftp_refused++;
		refuse(c, from, TFTP_EACCESS, "not a file this server serves");
		return;
	}
	if ((fi = ctl_serve_cached(c, path)) < 0) {
		c->serve_st.tftp_not_found++;
		refuse(c, from, TFTP_ENOTFOUND, "file not found");
		return;
	}
	for (int i = 0; i < sv->nxf && !x; i++)
		if (!sv->xf[i].used)
			x = &sv->xf[i];
	if (!x) {
		c->serve_st.tftp_busy++;
		refuse(c, from, TFTP_EUNDEF, "too many transfers at once: try again later");
		return;
	}
	memset(x, 0, sizeof(*x));
	x->fd = udp_socket(c->cfg.ip, 0);
	if (x->fd < 0 || connect(x->fd, (const struct sockaddr *)from, sizeof(*from)) < 0 ||
	    epoll_add(c, x->fd) < 0) {
		if (x->fd >= 0)
			close(x->fd);
		refuse(c, from, TFTP_EUNDEF, "server error");
		return;
	}
	x->used = true;
	x->fi = fi;
	x->peer = *from;
	x->started = ctl_now();
	x->ctx[0] = c;
	x->ctx[1] = (void *)(intptr_t)fi;
	pfs_cache_touch(c->cache, fi);
	pfs_cache_count_hit(c->cache, fi);
	tftp_session_start(&x->s, &r, pfs_cache_file(c->cache, fi)->size, &limits, cache_read,
			   x->ctx, (tftp_time_t)x->started);
	xfer_pump(c, x);
}

/* Datagrams on UDP 69 (requests) or on a transfer's socket (ACK, ERROR). */
bool ctl_serve_event(struct ctl *c, int fd)
{
	struct ctl_serve *sv = c->serve;
	struct sockaddr_in from;
	socklen_t flen = sizeof(from);
	ssize_t n;

	if (!sv)
		return false;
	if (fd == sv->fd) {
		while ((n = recvfrom(fd, sv->pkt, sizeof(sv->pkt), 0, (struct sockaddr *)&from,
				     &flen)) >= 0) {
			on_request(c, sv->pkt, (size_t)n, &from);
			flen = sizeof(from);
		}
		return true;
	}
	for (int i = 0; i < sv->nxf; i++) {
		struct xfer *x = &sv->xf[i];
		if (!x->used || x->fd != fd)
			continue;
		while (x->used && (n = recv(fd, sv->pkt, sizeof(sv->pkt), 0)) >= 0) {
			struct tftp_reply r;
			if (tftp_parse_reply(sv->pkt, (size_t)n, &r) < 0) {
				c->serve_st.tftp_bad_replies++;
				continue;
			}
			tftp_session_on_reply(&x->s, (tftp_time_t)ctl_now(), &r);
			xfer_pump(c, x);
		}
		return true;
	}
	return false;
}

void ctl_serve_timeout(struct ctl *c)
{
	tftp_time_t now = (tftp_time_t)ctl_now();

	for (int i = 0; c->serve && i < c->serve->nxf; i++) {
		struct xfer *x = &c->serve->xf[i];
		if (!x->used)
			continue;
		tftp_session_on_timer(&x->s, now);
		xfer_pump(c, x);
	}
}

int64_t ctl_serve_deadline(const struct ctl *c)
{
	int64_t t = INT64_MAX;

	for (int i = 0; c->serve && i < c->serve->nxf; i++) {
		const struct xfer *x = &c->serve->xf[i];
		if (x->used && (int64_t)tftp_session_deadline(&x->s) < t)
			t = (int64_t)tftp_session_deadline(&x->s);
	}
	return t;
}

/* Files a transfer reads from stay in the cache until it ends. */
void ctl_serve_pins(const struct ctl *c, bool *pin)
{
	for (int i = 0; c->serve && i < c->serve->nxf; i++)
		if (c->serve->xf[i].used)
			pin[c->serve->xf[i].fi] = true;
}

int ctl_serve_clients(const struct ctl *c)
{
	int n = 0;

	for (int i = 0; c->serve && i < c->serve->nxf; i++)
		n += c->serve->xf[i].used;
	return n;
}

/* pfsctl clients: every transfer in progress, TFTP and HTTP. */
void *ctl_serve_clients_json(const struct ctl *c)
{
	json_t *a = json_array();
	int64_t now = ctl_now();

	for (int i = 0; c->serve && i < c->serve->nxf; i++) {
		const struct xfer *x = &c->serve->xf[i];
		char peer[32];
		uint64_t held;
		if (!x->used)
			continue;
		snprintf(peer, sizeof(peer), "%s:%u", inet_ntoa(x->peer.sin_addr),
			 ntohs(x->peer.sin_port));
		held = x->s.acked * (uint64_t)x->s.blksize;
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:i, s:i}",
			"proto", "tftp", "client", peer, "file", pfs_cache_file(c->cache, x->fi)->path,
			"done", (json_int_t)(held < x->s.size ? held : x->s.size),
			"size", (json_int_t)x->s.size, "age_s", (now - x->started) / 1e9,
			"blksize", (int)x->s.blksize, "window", (int)x->s.window));
	}
	ctl_http_clients(c, a);
	return json_pack("{s:b, s:o}", "ok", 1, "clients", a);
}

const struct ctl_serve_stats *ctl_serve_stats(const struct ctl *c)
{
	return c->serve || c->http ? &c->serve_st : NULL;
}

void ctl_serve_close(struct ctl *c)
{
	struct ctl_serve *sv = c->serve;

	if (!sv)
		return;
	for (int i = 0; i < sv->nxf; i++)
		if (sv->xf[i].used) {
			sv->xf[i].s.why = "pfs-control stopped";
			sv->xf[i].s.state = TS_FAILED;
			xfer_end(c, &sv->xf[i]);
		}
	close(sv->fd);
	free(sv->xf);
	free(sv);
	c->serve = NULL;
}
