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
 * bytes). Write requests are refused.
 *
 * What is not cached is fetched once (serve_src.c) while the request waits:
 * the transfer starts when the file's size is known (its signed manifest
 * tells it; tsize needs it), and each block goes out once the chunks under
 * it are in the cache and checked. A duplicate request from a client we are
 * already answering is ignored. A file that cannot be had ends the request
 * or the transfer with ERROR 1 and the reason, logged.
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
	bool waiting;                   /* for the file's size: no session yet */
	int fd;
	struct sockaddr_in peer;
	struct ctl_src src;
	struct tftp_request req;        /* kept while waiting */
	struct tftp_session s;
	void *ctx[2];                   /* the session's read callback: (ctl, xfer) */
	int64_t started, moved;         /* moved: last block the file gave us */
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
		pfs_log(PFS_LOG_ERR, "serve.tftp: cannot listen on %s:69: %s",
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
	if (x->s.state == TS_DONE && !x->waiting) {
		c->serve_st.tftp_done++;
		ctl_log(c, "tftp %s:%u: sent %s (%llu bytes, %llu blocks again) in %.2f s", ip,
			ntohs(x->peer.sin_port), x->src.path, (unsigned long long)x->s.size,
			(unsigned long long)x->s.retransmits, (ctl_now() - x->started) / 1e9);
	} else {
		c->serve_st.tftp_failed += !x->waiting;        /* else counted as refused */
		ctl_log(c, "tftp %s:%u: %s ended: %s", ip, ntohs(x->peer.sin_port), x->src.path,
			x->s.why ? x->s.why : "?");
	}
	c->serve_st.tftp_bytes += x->s.bytes_sent;
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, x->fd, NULL);
	close(x->fd);
	x->used = false;
}

/* Send what the session has due; end it once it is over. */
static void xfer_pump(struct ctl *c, struct xfer *x)
{
	uint64_t sent = x->s.bytes_sent;
	int n;

	while ((n = tftp_session_poll(&x->s, (tftp_time_t)ctl_now(), c->serve->pkt,
				      sizeof(c->serve->pkt))) > 0)
		if (send(x->fd, c->serve->pkt, (size_t)n, 0) < 0)
			c->serve_st.tftp_send_errors++;
	if (x->s.bytes_sent != sent)
		x->moved = ctl_now();
	if (tftp_session_over(&x->s))
		xfer_end(c, x);
}

/* The file cannot be had, or did not come in time: ERROR 1 (RFC 1350's
 * "file not found", what a device's firmware loader understands) with the
 * reason, the transfer ended. */
static void xfer_fail(struct ctl *c, struct xfer *x, bool not_found, const char *why)
{
	int n = tftp_build_error(c->serve->pkt, sizeof(c->serve->pkt), TFTP_ENOTFOUND, why);

	if (n > 0 && send(x->fd, c->serve->pkt, (size_t)n, 0) < 0)
		c->serve_st.tftp_send_errors++;
	if (not_found)
		c->serve_st.tftp_not_found++;
	else
		c->serve_st.tftp_unavailable++;
	x->s.state = TS_FAILED;
	x->s.send_error = false;
	x->s.why = why;
	xfer_end(c, x);
}

static int cache_read(void *ctx, uint64_t off, void *buf, uint32_t len)
{
	struct ctl *c = ((void **)ctx)[0];
	struct xfer *x = ((void **)ctx)[1];
	int n = ctl_src_read(c, &x->src, off, buf, len);

	return n >= 0 && (uint32_t)n < len ? -EAGAIN : n;  /* the rest not checked yet */
}

/* The file's size is known: the transfer proper starts (OACK or DATA 1). */
static void xfer_begin(struct ctl *c, struct xfer *x)
{
	x->waiting = false;
	x->moved = ctl_now();
	tftp_session_start(&x->s, &x->req, x->src.size, &limits, cache_read, x->ctx,
			   (tftp_time_t)x->moved);
	xfer_pump(c, x);
}

/* Where the file stands, for a transfer waiting on it or sending it. */
static void xfer_poll(struct ctl *c, struct xfer *x)
{
	switch (ctl_src_update(c, &x->src)) {
	case CTL_SRC_NOT_FOUND:
	case CTL_SRC_FAILED:
		xfer_fail(c, x, x->src.state == CTL_SRC_NOT_FOUND, x->src.why);
		return;
	case CTL_SRC_WAIT:
		break;
	case CTL_SRC_READY:
		if (x->waiting)
			xfer_begin(c, x);
		else
			xfer_pump(c, x);
		break;
	}
	if (x->used && ctl_now() - x->moved > c->cfg.serve_wait_ns)
		xfer_fail(c, x, false, "the file did not arrive in time");
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

static void on_request(struct ctl *c, const uint8_t *buf, size_t len,
		       const struct sockaddr_in *from)
{
	struct ctl_serve *sv = c->serve;
	struct tftp_request r;
	const char *path;
	struct xfer *x = NULL;
	int rc = tftp_parse_request(buf, len, &r);

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
	int same_ip = 0;
	for (int i = 0; i < sv->nxf; i++) {
		struct xfer *y = &sv->xf[i];
		if (!y->used || y->peer.sin_addr.s_addr != from->sin_addr.s_addr)
			continue;
		if (y->peer.sin_port == from->sin_port) {
			c->serve_st.tftp_duplicates++;
			return;         /* its retransmission: we are on it */
		}
		same_ip++;
	}
	if (same_ip >= c->cfg.serve_max_per_client) {
		c->serve_st.tftp_busy++;
		refuse(c, from, TFTP_EUNDEF, "too many transfers from this address at once: "
		       "try again later");
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
	x->used = x->waiting = true;
	x->peer = *from;
	x->req = r;
	x->started = x->moved = ctl_now();
	x->ctx[0] = c;
	x->ctx[1] = x;
	x->s.state = TS_OACK;           /* not over while it waits */
	ctl_src_open(c, &x->src, path);
	if (!x->src.complete)
		c->serve_st.waited++;
	xfer_poll(c, x);
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
		/* One datagram per event: epoll is level-triggered, so a second
		 * one (rare: a client answers once per window) comes back at
		 * once, and the common case spends no recv on EAGAIN. */
		if ((n = recv(fd, sv->pkt, sizeof(sv->pkt), 0)) >= 0) {
			struct tftp_reply r;
			if (tftp_parse_reply(sv->pkt, (size_t)n, &r) < 0) {
				c->serve_st.tftp_bad_replies++;
				return true;
			}
			tftp_session_on_reply(&x->s, (tftp_time_t)ctl_now(), &r);
			xfer_pump(c, x);
		}
		return true;
	}
	return false;
}

/* When x next needs its timer: its session's deadline, or the end of its
 * wait for the file. */
static int64_t xfer_due(const struct ctl *c, const struct xfer *x)
{
	int64_t d = x->moved + c->cfg.serve_wait_ns;

	if (!x->waiting && (int64_t)tftp_session_deadline(&x->s) < d)
		d = (int64_t)tftp_session_deadline(&x->s);
	return d;
}

void ctl_serve_timeout(struct ctl *c)
{
	int64_t now = ctl_now();

	for (int i = 0; c->serve && i < c->serve->nxf; i++) {
		struct xfer *x = &c->serve->xf[i];
		if (!x->used || now < xfer_due(c, x))
			continue;
		if (!x->waiting)
			tftp_session_on_timer(&x->s, (tftp_time_t)now);
		xfer_poll(c, x);
	}
}

/* Cache entries grew or fetches ended: every transfer looks again. */
void ctl_serve_kick(struct ctl *c)
{
	for (int i = 0; c->serve && i < c->serve->nxf; i++)
		if (c->serve->xf[i].used)
			xfer_poll(c, &c->serve->xf[i]);
}

int64_t ctl_serve_deadline(const struct ctl *c)
{
	int64_t t = INT64_MAX;

	for (int i = 0; c->serve && i < c->serve->nxf; i++)
		if (c->serve->xf[i].used && xfer_due(c, &c->serve->xf[i]) < t)
			t = xfer_due(c, &c->serve->xf[i]);
	return t;
}

/* Files a transfer reads from stay in the cache until it ends. */
void ctl_serve_pins(const struct ctl *c, bool *pin)
{
	for (int i = 0; c->serve && i < c->serve->nxf; i++)
		if (c->serve->xf[i].used && c->serve->xf[i].src.fi >= 0)
			pin[c->serve->xf[i].src.fi] = true;
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
		held = x->waiting ? 0 : x->s.acked * (uint64_t)x->s.blksize;
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:i, s:i}",
			"proto", "tftp", "client", peer, "file", x->src.path,
			"done", (json_int_t)(held < x->s.size ? held : x->s.size),
			"size", (json_int_t)x->src.size, "age_s", (now - x->started) / 1e9,
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
