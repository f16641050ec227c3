/* http_parse.c - Range and percent-decoding for the load server's HTTP side
 * (http_parse.h): strict, so that what is served is what was asked. */
#include "http_parse.h"

#include <stdbool.h>

/* Decimal digits at *p into *v, advancing *p: false when there are none
 * or the number does not fit 64 bits. */
static bool digits(const char **p, uint64_t *v)
{
	const char *s = *p;

	*v = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (*v > (UINT64_MAX - d) / 10)
			return false;
		*v = *v * 10 + d;
	}
	if (s == *p)
		return false;
	*p = s;
	return true;
}

int http_parse_range(const char *h, uint64_t size, uint64_t *from, uint64_t *to)
{
	const char *p;
	uint64_t a, b;

	if (!h || h[0] != 'b' || h[1] != 'y' || h[2] != 't' || h[3] != 'e' || h[4] != 's' ||
	    h[5] != '=')
		return 0;
	p = h + 6;
	if (*p == '-') {                        /* the last N bytes */
		p++;
		if (!digits(&p, &b) || *p || b == 0)
			return 0;
		if (size == 0)
			return -1;
		*from = b >= size ? 0 : size - b;
		*to = size - 1;
		return 1;
	}
	if (!digits(&p, &a) || *p++ != '-')
		return 0;
	if (*p) {
		if (!digits(&p, &b) || *p || b < a)
			return 0;       /* several ranges, junk, or backwards */
	} else {
		b = UINT64_MAX;
	}
	if (a >= size)
		return -1;
	*from = a;
	*to = b >= size ? size - 1 : b;
	return 1;
}

static int hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

size_t http_unescape(char *s)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		int hi, lo;

		if (*r != '%') {
			*w++ = *r;
			continue;
		}
		if ((hi = hex(r[1])) < 0 || (lo = hex(r[2])) < 0 || (hi | lo) == 0) {
			*w++ = '\x01';
			break;
		}
		*w++ = (char)(hi << 4 | lo);
		r += 2;
	}
	*w = '\0';
	return (size_t)(w - s);
}
