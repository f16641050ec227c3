/* serve_http.c - the load server over HTTP/1.1 (issue 12): devices that
 * fetch firmware by HTTP (recent phones use TCP 6970) get it from the
 * appliance's cache. libmicrohttpd parses HTTP, in pfs-control's own loop
 * (its epoll descriptor nested in ours, no thread); this file decides what
 * is served: GET and HEAD of a confined, complete cache entry (serve.c's
 * rules, the same as TFTP's), a single byte range (206, or 416 when it lies
 * past the end), an ETag from the file's SHA-256 (If-None-Match: 304),
 * keep-alive and HTTP/1.0 as libmicrohttpd gives them. Refused: other
 * methods 405, paths outside the served set 403 (after percent-decoding;
 * an encoded NUL or a malformed escape makes the path invalid), missing 404.
 *
 * A file not cached is fetched once (serve_src.c) while the request waits,
 * its connection suspended until the size is known; then the body goes out
 * as the checked bytes arrive, the connection suspended whenever it has
 * caught up with them and resumed when more come (ctl_http_kick). The file
 * cannot be had: 404 when the server has no such file, else 502, the reason
 * logged; mid-body, the connection is closed short of Content-Length, so no
 * client takes a partial file for a whole one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "http_parse.h"

#define HTTP_BLOCK (64 * 1024)

/* One request: made when its headers are in, freed when it completes. */
struct req {
	struct ctl *c;
	struct MHD_Connection *conn;
	uint32_t ip;                    /* the client's, network order */
	struct ctl_src src;
	bool suspended;
	bool timed_out;                 /* waited serve.wait_timeout for its file: 504 */
	int64_t since;                  /* ctl_now() when it began to wait */
	struct req *prev, *next;        /* the requests of the load server */
};


struct body {                           /* one response's reader */
	struct ctl *c;
	struct MHD_Connection *conn;
	struct ctl_src src;
	uint64_t start, len, sent;
	bool suspended;
	char client[32];
	int64_t started;
	struct body *prev, *next;       /* the transfers in progress, for pfsctl clients */
};

struct ctl_http {
	struct ctl_mhd m;
	struct req *reqs;
	struct body *bodies;
	bool closing;
};

#define LINK(head, x) do { (x)->next = (head); if ((x)->next) (x)->next->prev = (x); \
			   (head) = (x); } while (0)
#define UNLINK(head, x) do { if ((x)->prev) (x)->prev->next = (x)->next; \
			     else (head) = (x)->next; \
			     if ((x)->next) (x)->next->prev = (x)->prev; } while (0)

static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct body *b = cls;
	int n;

	if (pos >= b->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (max > b->len - pos)
		max = (size_t)(b->len - pos);
	n = b->c->http->closing ? -EIO : ctl_src_read(b->c, &b->src, b->start + pos, buf, max);
	if (n == -EAGAIN) {             /* caught up with the arriving file */
		b->suspended = true;
		MHD_suspend_connection(b->conn);
		return 0;
	}
	if (n <= 0) {
		b->c->serve_st.http_errors++;
		ctl_log(b->c, "http %s: %s ended after %llu bytes: %s", b->client, b->src.path,
			(unsigned long long)pos, b->src.why ? b->src.why : "cannot read the cache");
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	b->c->serve_st.http_bytes += (uint64_t)n;
	b->sent = pos + (uint64_t)n;
	return n;
}

static void free_body(void *cls)
{
	struct body *b = cls;

	UNLINK(b->c->http->bodies, b);
	free(b);
}

static void request_done(void *cls, struct MHD_Connection *conn, void **ptr,
			 enum MHD_RequestTerminationCode toe)
{
	struct ctl *c = cls;
	struct req *r = *ptr;

	(void)conn;
	(void)toe;
	if (!r || !c->http || r->c != c)
		return;                 /* the headers-only marker */
	UNLINK(c->http->reqs, r);
	free(r);
	*ptr = NULL;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
								 MHD_RESPMEM_PERSISTENT);
	enum MHD_Result rc;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "5");
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **req)
{
	static int first;
	struct ctl *c = cls;
	struct ctl_serve_stats *st = &c->serve_st;
	char etag[72], crange[96];
	const char *path;
	uint64_t from = 0, to = 0;
	int ranged;

	(void)version;
	(void)upload;
	if (!*req) {                            /* headers only, so far */
		*req = &first;
		return MHD_YES;
	}
	if (*upload_size)
		return MHD_NO;                  /* a body we never asked for */
	struct req *rq = *req == &first ? NULL : *req;
	if (!rq) {
		st->http_requests++;
		if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
			st->http_refused++;
			return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
		}
		if (!(path = ctl_serve_confine(c, url))) {
			st->http_refused++;
			return reply(conn, MHD_HTTP_FORBIDDEN, "not a file this server serves\n");
		}
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
			conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		uint32_t ip = ci && ci->client_addr && ci->client_addr->sa_family == AF_INET ?
			      ((const struct sockaddr_in *)ci->client_addr)->sin_addr.s_addr : 0;
		int all = 0, same = 0;
		for (const struct req *o = c->http->reqs; o; o = o->next) {
			all++;
			same += o->ip == ip;
		}
		if (all >= c->cfg.serve_max_clients || same >= c->cfg.serve_max_per_client) {
			st->http_busy++;
			return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, all >= c->cfg.serve_max_clients ?
				     "too many downloads at once: try again later\n" :
				     "too many downloads from this address at once: try again "
				     "later\n");
		}
		if (!(rq = calloc(1, sizeof(*rq))))
			return MHD_NO;
		rq->c = c;
		rq->conn = conn;
		rq->ip = ip;
		LINK(c->http->reqs, rq);
		*req = rq;
		rq->since = ctl_now();
		ctl_src_open(c, &rq->src, path);
		if (!rq->src.complete)
			st->waited++;
	}
	if (rq->timed_out) {
		st->http_unavailable++;
		ctl_warn(c, "http: %s did not arrive within %.1f s", rq->src.path,
			 c->cfg.serve_wait_ns / 1e9);
		return reply(conn, MHD_HTTP_GATEWAY_TIMEOUT, "the file did not arrive in time\n");
	}
	switch (c->http->closing ? CTL_SRC_FAILED : rq->src.state) {
	case CTL_SRC_WAIT:                      /* resumed by ctl_http_kick */
		rq->suspended = true;
		MHD_suspend_connection(conn);
		return MHD_YES;
	case CTL_SRC_NOT_FOUND:
		st->http_not_found++;
		ctl_log(c, "http: %s cannot be had: %s", rq->src.path, rq->src.why);
		return reply(conn, MHD_HTTP_NOT_FOUND, "file not found\n");
	case CTL_SRC_FAILED:
		st->http_unavailable++;
		ctl_log(c, "http: %s cannot be had: %s", rq->src.path,
			rq->src.why ? rq->src.why : "stopping");
		return reply(conn, MHD_HTTP_BAD_GATEWAY, "the file could not be fetched\n");
	case CTL_SRC_READY:
		break;
	}
	uint64_t size = rq->src.size;
	/* The ETag is the digest, final once the entry is complete. */
	etag[0] = '\0';
	if (rq->src.complete) {
		struct pfs_cache_file *f = pfs_cache_file(c->cache, rq->src.fi);
		snprintf(etag, sizeof(etag), "\"");
		for (int i = 0; i < 16; i++)
			snprintf(etag + 1 + 2 * i, sizeof(etag) - 1 - 2 * i, "%02x", f->sha256[i]);
		strcat(etag, "\"");
	}
	const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (etag[0] && inm && (!strcmp(inm, etag) || !strcmp(inm, "*"))) {
		struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL,
									 MHD_RESPMEM_PERSISTENT);
		if (!r)
			return MHD_NO;
		MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
		enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_NOT_MODIFIED, r);
		MHD_destroy_response(r);
		st->http_not_modified++;
		return rc;
	}
	ranged = http_parse_range(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							 MHD_HTTP_HEADER_RANGE), size, &from, &to);
	if (ranged < 0) {
		struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL,
									 MHD_RESPMEM_PERSISTENT);
		if (!r)
			return MHD_NO;
		snprintf(crange, sizeof(crange), "bytes */%" PRIu64, size);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, crange);
		enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_RANGE_NOT_SATISFIABLE, r);
		MHD_destroy_response(r);
		st->http_bad_ranges++;
		return rc;
	}
	if (!ranged) {
		from = 0;
		to = size ? size - 1 : 0;
	}
	struct body *b = malloc(sizeof(*b));
	if (!b)
		return MHD_NO;
	uint64_t len = size ? to - from + 1 : 0;
	*b = (struct body){ .c = c, .conn = conn, .src = rq->src, .start = from, .len = len,
			    .started = ctl_now() };
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ci->client_addr;
		snprintf(b->client, sizeof(b->client), "%s:%u", inet_ntoa(sin->sin_addr),
			 ntohs(sin->sin_port));
	}
	struct MHD_Response *r = MHD_create_response_from_callback(len, HTTP_BLOCK, read_body, b,
								   free_body);
	if (!r) {
		free(b);
		return MHD_NO;
	}
	LINK(c->http->bodies, b);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	if (etag[0])
		MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
	if (ranged) {
		snprintf(crange, sizeof(crange), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, from, to,
			 size);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, crange);
		st->http_ranges++;
	}
	pfs_cache_touch(c->cache, rq->src.fi);
	enum MHD_Result rc = MHD_queue_response(conn, ranged ? MHD_HTTP_PARTIAL_CONTENT :
						MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

/* libmicrohttpd's unescape callback: ours, strict (http_parse.c). */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	(void)cls;
	(void)conn;
	return http_unescape(s);
}

int ctl_http_open(struct ctl *c)
{
	struct ctl_http *h;
	int rc;

	if (!c->cfg.serve_http_port)
		return 0;
	if (!(h = calloc(1, sizeof(*h))))
		return -ENOMEM;
	c->http = h;                            /* request_done may run inside */
	rc = ctl_mhd_start(c, &h->m, "serving HTTP", c->cfg.serve_http_ip, c->cfg.serve_http_port,
			   /* room above max_clients, so requests past it get a 503 */
			   (unsigned)c->cfg.serve_max_clients + 16, on_request, unescape,
			   request_done);
	if (rc < 0) {
		c->http = NULL;
		free(h);
		return rc;
	}
	return 0;
}

bool ctl_http_event(struct ctl *c, int fd)
{
	return c->http && ctl_mhd_event(&c->http->m, fd);
}

/* A request suspended while its file does not come is answered 504 once
 * it has waited serve.wait_timeout (libmicrohttpd does not time suspended
 * connections out); TFTP's waits end the same way (serve.c). */
void ctl_http_timeout(struct ctl *c)
{
	bool resumed = false;
	int64_t now = ctl_now();

	if (!c->http)
		return;
	for (struct req *r = c->http->reqs; r; r = r->next) {
		if (r->suspended && now - r->since >= c->cfg.serve_wait_ns) {
			r->suspended = false;
			r->timed_out = true;
			MHD_resume_connection(r->conn);
			resumed = true;
		}
	}
	if (resumed)
		MHD_run(c->http->m.d);
	ctl_mhd_run_due(&c->http->m);
}

int64_t ctl_http_deadline(const struct ctl *c)
{
	int64_t t = c->http ? ctl_mhd_deadline(&c->http->m) : INT64_MAX;

	for (const struct req *r = c->http ? c->http->reqs : NULL; r; r = r->next)
		if (r->suspended && r->since + c->cfg.serve_wait_ns < t)
			t = r->since + c->cfg.serve_wait_ns;
	return t;
}

void ctl_http_pins(const struct ctl *c, bool *pin)
{
	for (const struct req *r = c->http ? c->http->reqs : NULL; r; r = r->next)
		if (r->src.fi >= 0)
			pin[r->src.fi] = true;
	for (const struct body *b = c->http ? c->http->bodies : NULL; b; b = b->next)
		if (b->src.fi >= 0)
			pin[b->src.fi] = true;
}

/* Entries grew or fetches ended: requests waiting for their file's size,
 * and bodies that caught up with it, go on when there is more for them. */
void ctl_http_kick(struct ctl *c)
{
	bool resumed = false;

	for (struct req *r = c->http ? c->http->reqs : NULL; r; r = r->next) {
		if (r->suspended && ctl_src_update(c, &r->src) != CTL_SRC_WAIT) {
			r->suspended = false;
			MHD_resume_connection(r->conn);
			resumed = true;
		}
	}
	for (struct body *b = c->http ? c->http->bodies : NULL; b; b = b->next) {
		if (b->suspended && (ctl_src_update(c, &b->src) != CTL_SRC_READY ||
				     b->src.avail > b->start + b->sent ||
				     b->src.avail == b->src.size)) {
			b->suspended = false;
			MHD_resume_connection(b->conn);
			resumed = true;
		}
	}
	if (resumed)
		MHD_run(c->http->m.d);
}

void ctl_http_clients(const struct ctl *c, void *array)
{
	int64_t now = ctl_now();

	for (const struct body *b = c->http ? c->http->bodies : NULL; b; b = b->next)
		json_array_append_new(array, json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:I}",
			"proto", "http", "client", b->client,
			"file", b->src.path, "done", (json_int_t)b->sent,
			"size", (json_int_t)b->len, "age_s", (now - b->started) / 1e9,
			"from", (json_int_t)b->start));
}

void ctl_http_close(struct ctl *c)
{
	if (!c->http)
		return;
	/* Nothing is left suspended: each one resumed ends now (closing). */
	c->http->closing = true;
	for (struct req *r = c->http->reqs; r; r = r->next)
		if (r->suspended) {
			r->suspended = false;
			MHD_resume_connection(r->conn);
		}
	for (struct body *b = c->http->bodies; b; b = b->next)
		if (b->suspended) {
			b->suspended = false;
			MHD_resume_connection(b->conn);
		}
	ctl_mhd_stop(&c->http->m);
	free(c->http);
	c->http = NULL;
}
