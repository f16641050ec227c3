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

#define HTTP_BLOCK (64 * 1024)

struct body {                           /* one response's reader */
	struct ctl *c;
	int fi;
	uint64_t start, len, sent;
	char client[32];
	int64_t started;
	struct body *prev, *next;       /* the transfers in progress, for pfsctl clients */
};

struct ctl_http {
	struct ctl_mhd m;
	uint32_t readers[PFS_CACHE_FILES];      /* responses reading a file: pinned */
	struct body *bodies;
};

static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct body *b = cls;
	struct pfs_cache_file *f = pfs_cache_file(b->c->cache, b->fi);

	if (b->start + pos >= f->size)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (max > f->size - (b->start + pos))
		max = (size_t)(f->size - (b->start + pos));
	if (pfs_cache_read(b->c->cache, b->fi, b->start + pos, buf, max) < 0) {
		b->c->serve_st.http_errors++;
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	b->c->serve_st.http_bytes += max;
	b->sent = pos + max;
	return (ssize_t)max;
}

static void free_body(void *cls)
{
	struct body *b = cls;
	struct ctl_http *h = b->c->http;

	h->readers[b->fi]--;
	if (b->prev)
		b->prev->next = b->next;
	else
		h->bodies = b->next;
	if (b->next)
		b->next->prev = b->prev;
	free(b);
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
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

/* "bytes=A-B", "bytes=A-" or "bytes=-N" against size: 1 and [*from, *to]
 * for a range we serve, 0 to serve the whole file (no header, or several
 * ranges: a server may ignore Range), -1 when it lies past the end. */
static int parse_range(const char *h, uint64_t size, uint64_t *from, uint64_t *to)
{
	char *end;

	if (!h || strncmp(h, "bytes=", 6) || strchr(h, ','))
		return 0;
	h += 6;
	if (*h == '-') {                        /* the last N bytes */
		uint64_t n = strtoull(h + 1, &end, 10);
		if (*end || end == h + 1 || n == 0)
			return 0;
		if (size == 0)
			return -1;
		*from = n >= size ? 0 : size - n;
		*to = size - 1;
		return 1;
	}
	if (*h < '0' || *h > '9')
		return 0;
	*from = strtoull(h, &end, 10);
	if (*end != '-')
		return 0;
	h = end + 1;
	*to = *h ? strtoull(h, &end, 10) : UINT64_MAX;
	if (*h && (*end || *to < *from))
		return 0;
	if (*from >= size)
		return -1;
	if (*to >= size)
		*to = size - 1;
	return 1;
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
	int fi, ranged;

	(void)version;
	(void)upload;
	if (!*req) {                            /* headers only, so far */
		*req = &first;
		return MHD_YES;
	}
	if (*upload_size)
		return MHD_NO;                  /* a body we never asked for */
	st->http_requests++;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
		st->http_refused++;
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	}
	if (!(path = ctl_serve_confine(c, url))) {
		st->http_refused++;
		return reply(conn, MHD_HTTP_FORBIDDEN, "not a file this server serves\n");
	}
	if ((fi = ctl_serve_cached(c, path)) < 0) {
		st->http_not_found++;
		return reply(conn, MHD_HTTP_NOT_FOUND, "file not found\n");
	}
	struct pfs_cache_file *f = pfs_cache_file(c->cache, fi);
	snprintf(etag, sizeof(etag), "\"");
	for (int i = 0; i < 16; i++)
		snprintf(etag + 1 + 2 * i, sizeof(etag) - 1 - 2 * i, "%02x", f->sha256[i]);
	strcat(etag, "\"");
	const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (inm && (!strcmp(inm, etag) || !strcmp(inm, "*"))) {
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
	ranged = parse_range(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							 MHD_HTTP_HEADER_RANGE), f->size, &from, &to);
	if (ranged < 0) {
		struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL,
									 MHD_RESPMEM_PERSISTENT);
		if (!r)
			return MHD_NO;
		snprintf(crange, sizeof(crange), "bytes */%" PRIu64, f->size);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, crange);
		enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_RANGE_NOT_SATISFIABLE, r);
		MHD_destroy_response(r);
		st->http_bad_ranges++;
		return rc;
	}
	if (!ranged) {
		from = 0;
		to = f->size ? f->size - 1 : 0;
	}
	struct body *b = malloc(sizeof(*b));
	if (!b)
		return MHD_NO;
	uint64_t len = f->size ? to - from + 1 : 0;
	*b = (struct body){ .c = c, .fi = fi, .start = from, .len = len, .started = ctl_now() };
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
	c->http->readers[fi]++;
	b->next = c->http->bodies;
	if (b->next)
		b->next->prev = b;
	c->http->bodies = b;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
	if (ranged) {
		snprintf(crange, sizeof(crange), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, from, to,
			 f->size);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, crange);
		st->http_ranges++;
	}
	pfs_cache_touch(c->cache, fi);
	pfs_cache_count_hit(c->cache, fi);
	enum MHD_Result rc = MHD_queue_response(conn, ranged ? MHD_HTTP_PARTIAL_CONTENT :
						MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

/* Percent-decoding in place; an encoded NUL, or a '%' not followed by two
 * hex digits, leaves a byte no served path may hold (so it is refused). */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	char *w = s;

	(void)cls;
	(void)conn;
	for (const char *r = s; *r; r++) {
		unsigned v;
		if (*r != '%') {
			*w++ = *r;
			continue;
		}
		if (sscanf(r + 1, "%2x", &v) != 1 || !r[1] || !r[2] || v == 0) {
			*w++ = '\x01';
			break;
		}
		*w++ = (char)v;
		r += 2;
	}
	*w = '\0';
	return (size_t)(w - s);
}

int ctl_http_open(struct ctl *c)
{
	struct ctl_http *h;
	int rc;

	if (!c->cfg.serve_http_port)
		return 0;
	if (!(h = calloc(1, sizeof(*h))))
		return -ENOMEM;
	rc = ctl_mhd_start(c, &h->m, "serving HTTP", c->cfg.serve_http_ip, c->cfg.serve_http_port,
			   (unsigned)c->cfg.serve_max_clients, on_request, unescape);
	if (rc < 0) {
		free(h);
		return rc;
	}
	c->http = h;
	return 0;
}

bool ctl_http_event(struct ctl *c, int fd)
{
	return c->http && ctl_mhd_event(&c->http->m, fd);
}

void ctl_http_timeout(struct ctl *c)
{
	if (c->http)
		ctl_mhd_run_due(&c->http->m);
}

int64_t ctl_http_deadline(const struct ctl *c)
{
	return c->http ? ctl_mhd_deadline(&c->http->m) : INT64_MAX;
}

void ctl_http_pins(const struct ctl *c, bool *pin)
{
	for (int fi = 0; c->http && fi < PFS_CACHE_FILES; fi++)
		if (c->http->readers[fi])
			pin[fi] = true;
}

void ctl_http_clients(const struct ctl *c, void *array)
{
	int64_t now = ctl_now();

	for (const struct body *b = c->http ? c->http->bodies : NULL; b; b = b->next)
		json_array_append_new(array, json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:I}",
			"proto", "http", "client", b->client,
			"file", pfs_cache_file(c->cache, b->fi)->path, "done", (json_int_t)b->sent,
			"size", (json_int_t)b->len, "age_s", (now - b->started) / 1e9,
			"from", (json_int_t)b->start));
}

void ctl_http_close(struct ctl *c)
{
	if (!c->http)
		return;
	ctl_mhd_stop(&c->http->m);
	free(c->http);
	c->http = NULL;
}
