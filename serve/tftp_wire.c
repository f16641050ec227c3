/* tftp_wire.c - parse what TFTP clients send, build what the server sends
 * (see tftp_wire.h). Every field is read through the cursor below, so no
 * length is taken from a packet without being checked against it.
 */
#include "tftp_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cur {
	const uint8_t *p;
	size_t left;
};

/* The next NUL-terminated string, at most max bytes before its NUL. */
static int next_str(struct cur *c, const char **s, size_t *len, size_t max)
{
	const uint8_t *nul = memchr(c->p, 0, c->left);

	if (!nul)
		return TFTP_P_SHORT;
	*s = (const char *)c->p;
	*len = (size_t)(nul - c->p);
	c->p = nul + 1;
	c->left -= *len + 1;
	return *len > max ? TFTP_P_OPTION : TFTP_P_OK;
}

/* A decimal value lo..hi, digits only (no sign, no spaces). */
static int number(const char *s, size_t len, unsigned long long lo, unsigned long long hi,
		  unsigned long long *v)
{
	char tmp[24];

	if (len == 0 || len >= sizeof(tmp))
		return TFTP_P_OPTION;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return TFTP_P_OPTION;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	*v = strtoull(tmp, NULL, 10);
	return *v >= lo && *v <= hi ? TFTP_P_OK : TFTP_P_OPTION;
}

static int name_ok(const char *s, size_t len)
{
	if (len == 0 || len > TFTP_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '\\')
			return 0;
	return 1;
}

/* RRQ/WRQ: opcode, name NUL, mode NUL, then option NUL value NUL pairs.
 * Unknown options are skipped (RFC 2347: the server ignores them); a known
 * one with a bad value refuses the request (the client asked for something
 * we would have to misread). */
int tftp_parse_request(const uint8_t *buf, size_t len, struct tftp_request *r)
{
	struct cur c = { buf + 2, len >= 2 ? len - 2 : 0 };
	const char *name, *mode, *opt, *val;
	size_t nlen, mlen, olen, vlen;
	unsigned long long v;
	int rc;

	memset(r, 0, sizeof(*r));
	if (len < 4)
		return TFTP_P_SHORT;
	r->op = (enum tftp_op)(buf[0] << 8 | buf[1]);
	if (r->op != TFTP_RRQ && r->op != TFTP_WRQ)
		return TFTP_P_OPCODE;
	if ((rc = next_str(&c, &name, &nlen, TFTP_NAME_MAX + 1)) == TFTP_P_SHORT)
		return rc;
	if (!name_ok(name, nlen))
		return TFTP_P_NAME;
	memcpy(r->name, name, nlen);
	if ((rc = next_str(&c, &mode, &mlen, 16)) < 0)
		return rc == TFTP_P_SHORT ? rc : TFTP_P_MODE;
	if (mlen == 5 && !strncasecmp(mode, "octet", 5))
		r->octet = 1;
	else if (!(mlen == 8 && !strncasecmp(mode, "netascii", 8)))
		return TFTP_P_MODE;
	while (c.left) {
		if ((rc = next_str(&c, &opt, &olen, 64)) == TFTP_P_SHORT)
			return TFTP_P_TRAILING;         /* bytes that end in no NUL */
		if (olen == 0)
			continue;                       /* padding some ROMs send */
		if (next_str(&c, &val, &vlen, 64) == TFTP_P_SHORT)
			return TFTP_P_OPTION;           /* an option without its value */
		if (rc < 0)
			continue;                       /* a name longer than any we know */
		if (olen == 7 && !strncasecmp(opt, "blksize", 7)) {
			if (number(val, vlen, TFTP_BLKSIZE_MIN, TFTP_BLKSIZE_MAX, &v) < 0)
				return TFTP_P_OPTION;
			r->blksize = (uint32_t)v;
		} else if (olen == 7 && !strncasecmp(opt, "timeout", 7)) {
			if (number(val, vlen, 1, TFTP_TIMEOUT_MAX, &v) < 0)
				return TFTP_P_OPTION;
			r->timeout_s = (uint32_t)v;
		} else if (olen == 5 && !strncasecmp(opt, "tsize", 5)) {
			if (number(val, vlen, 0, UINT64_MAX >> 1, &v) < 0)
				return TFTP_P_OPTION;
			r->tsize = 1;
		} else if (olen == 10 && !strncasecmp(opt, "windowsize", 10)) {
			if (number(val, vlen, 1, TFTP_WINDOW_MAX, &v) < 0)
				return TFTP_P_OPTION;
			r->windowsize = (uint32_t)v;
		} else {
			continue;
		}
		r->options = 1;
	}
	return TFTP_P_OK;
}

int tftp_parse_reply(const uint8_t *buf, size_t len, struct tftp_reply *r)
{
	memset(r, 0, sizeof(*r));
	if (len < 4)
		return TFTP_P_SHORT;
	r->op = (enum tftp_op)(buf[0] << 8 | buf[1]);
	if (r->op == TFTP_ACK) {
		if (len != 4)
			return TFTP_P_TRAILING;
		r->block = (uint16_t)(buf[2] << 8 | buf[3]);
		return TFTP_P_OK;
	}
	if (r->op == TFTP_ERROR) {      /* the message is for logs; any bytes */
		r->code = (uint16_t)(buf[2] << 8 | buf[3]);
		return TFTP_P_OK;
	}
	return TFTP_P_OPCODE;
}

const char *tftp_parse_strerror(int err)
{
	switch (err) {
	case TFTP_P_OK:       return "ok";
	case TFTP_P_SHORT:    return "truncated packet";
	case TFTP_P_OPCODE:   return "unexpected opcode";
	case TFTP_P_NAME:     return "bad file name";
	case TFTP_P_MODE:     return "unknown transfer mode";
	case TFTP_P_OPTION:   return "malformed option";
	case TFTP_P_TRAILING: return "trailing bytes";
	default:              return "unknown error";
	}
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

int tftp_build_data(uint8_t *buf, size_t cap, uint16_t block, const void *data, size_t len)
{
	if (cap < 4 + len)
		return -1;
	put16(buf, TFTP_DATA);
	put16(buf + 2, block);
	if (len)
		memcpy(buf + 4, data, len);
	return (int)(4 + len);
}

int tftp_build_error(uint8_t *buf, size_t cap, uint16_t code, const char *msg)
{
	size_t n = strlen(msg);

	if (cap < 5 + n)
		return -1;
	put16(buf, TFTP_ERROR);
	put16(buf + 2, code);
	memcpy(buf + 4, msg, n + 1);
	return (int)(5 + n);
}

/* "name\0value\0", or -1 when it does not fit. */
static int put_opt(uint8_t *buf, size_t cap, size_t *at, const char *name,
		   unsigned long long v)
{
	int n = snprintf((char *)buf + *at, cap - *at, "%s", name);

	if (n < 0 || (size_t)n + 1 >= cap - *at)
		return -1;
	*at += (size_t)n + 1;
	n = snprintf((char *)buf + *at, cap - *at, "%llu", v);
	if (n < 0 || (size_t)n + 1 > cap - *at)
		return -1;
	*at += (size_t)n + 1;
	return 0;
}

int tftp_build_oack(uint8_t *buf, size_t cap, uint32_t blksize, uint32_t timeout_s,
		    int has_tsize, uint64_t tsize, uint32_t windowsize)
{
	size_t at = 2;

	if (cap < 2)
		return -1;
	put16(buf, TFTP_OACK);
	if ((blksize && put_opt(buf, cap, &at, "blksize", blksize) < 0) ||
	    (timeout_s && put_opt(buf, cap, &at, "timeout", timeout_s) < 0) ||
	    (has_tsize && put_opt(buf, cap, &at, "tsize", tsize) < 0) ||
	    (windowsize && put_opt(buf, cap, &at, "windowsize", windowsize) < 0))
		return -1;
	return (int)at;
}
