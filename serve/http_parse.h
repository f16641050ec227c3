/* http_parse.h - the two pieces of HTTP the load server parses itself
 * (libmicrohttpd parses the rest): a Range header and a percent-encoded
 * request path. Pure functions on network input, fuzzed by fuzz_http.
 */
#ifndef PFS_HTTP_PARSE_H
#define PFS_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* "bytes=A-B", "bytes=A-" or "bytes=-N" against a file of size bytes:
 * 1 and [*from, *to] (to < size) for a range to serve; 0 to serve the
 * whole file (no header, several ranges, or one we do not parse: RFC 9110
 * lets a server ignore Range); -1 when it lies past the end (416). Only
 * digits are numbers: no sign, no space, no overflow. */
int http_parse_range(const char *h, uint64_t size, uint64_t *from, uint64_t *to);

/* Percent-decoding of s in place; its new length. An encoded NUL, or a '%'
 * not followed by two hex digits, ends the result with byte 0x01, which no
 * served path may hold, so the request is refused, never truncated into a
 * path that is. */
size_t http_unescape(char *s);

#endif /* PFS_HTTP_PARSE_H */
