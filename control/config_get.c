/* config_get.c - typed, range-checked reads of pfs-control's configuration
 * settings (config_get.h), each problem named with file, line and key. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_get.h"

int cfg_fail(const struct ctl_config *c, config_setting_t *s, const char *key,
	     const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: %s: ", c->path, s ? config_setting_source_line(s) : 0, key);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

int cfg_str(const struct ctl_config *c, config_setting_t *root, const char *name,
	    char *out, size_t cap, bool required)
{
	const char *key = strchr(name, '.') ? strchr(name, '.') + 1 : name;
	config_setting_t *s = config_setting_lookup(root, key);

	if (!s)
		return required ? cfg_fail(c, root, name, "missing (required)") : 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cfg_fail(c, s, name, "must be a string");
	if (strlen(config_setting_get_string(s)) >= cap)
		return cfg_fail(c, s, name, "longer than %zu characters", cap - 1);
	strcpy(out, config_setting_get_string(s));
	return 0;
}

/* true or false; absent leaves *out as it is. */
int cfg_bool(const struct ctl_config *c, config_setting_t *root, const char *name,
	     bool *out)
{
	config_setting_t *s = config_setting_lookup(root, strchr(name, '.') + 1);

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return cfg_fail(c, s, name, "must be true or false");
	*out = config_setting_get_bool(s);
	return 0;
}

/* HOST or HOST:PORT, the host non-empty and the port 1..65535. */
int cfg_hostport(const struct ctl_config *c, config_setting_t *g, const char *name,
		 const char *v)
{
	const char *colon = strrchr(v, ':');
	config_setting_t *s = config_setting_lookup(g, strchr(name, '.') + 1);
	char *end;
	long port;

	if (!v[0] || colon == v)
		return cfg_fail(c, s, name, "no host name (want HOST or HOST:PORT)");
	for (const char *p = v; *p; p++)
		if (*p <= ' ' || *p == '/')
			return cfg_fail(c, s, name, "'%s' is not a host name (want HOST or HOST:PORT)", v);
	if (!colon)
		return 0;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || !colon[1] || *end || port < 1 || port > 65535)
		return cfg_fail(c, s, name, "'%s' has no port in 1..65535 after the colon", v);
	return 0;
}

/* libconfig 1.5 parses an integer literal beyond 32 bits without an L
 * suffix as a 32-bit int, silently wrapped (max_children = 4294967297 read
 * as 1). So a plain int is checked against its literal in the file: the
 * number after "key =" on the setting's line, as 64 bits. False when the
 * literal says otherwise; true when it cannot be found (the value stands). */
static bool literal_agrees(const struct ctl_config *c, config_setting_t *s, const char *key,
			   long long value, long long *literal)
{
	char line[1024];
	int want = config_setting_source_line(s), n = 0;
	FILE *f = fopen(c->path, "re");
	bool ok = true;

	if (!f)
		return true;
	while (fgets(line, sizeof(line), f) && ++n < want)
		;
	fclose(f);
	if (n != want)
		return true;
	for (char *p = strstr(line, key); p; p = strstr(p + 1, key)) {
		char *q = p + strlen(key), *end;
		if (p > line && (p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z')))
			continue;       /* the tail of a longer key */
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q != '=' && *q != ':')
			continue;
		q++;
		errno = 0;
		*literal = strtoll(q, &end, 0);
		if (end != q)
			ok = errno == 0 && *literal == value;
		if (errno == ERANGE)
			*literal = 0;
		break;
	}
	return ok;
}

/* A number of seconds (integer or float) in [lo, hi]; name as for cfg_int. */
int cfg_seconds(const struct ctl_config *c, config_setting_t *root, const char *name,
		double lo, double hi, double *out)
{
	const char *key = strchr(name, '.') + 1;
	config_setting_t *s = config_setting_lookup(root, key);
	double v;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_FLOAT && config_setting_type(s) != CONFIG_TYPE_INT)
		return cfg_fail(c, s, name, "must be a number of seconds");
	v = config_setting_type(s) == CONFIG_TYPE_FLOAT ? config_setting_get_float(s) :
							   config_setting_get_int(s);
	if (!(v >= lo && v <= hi))
		return cfg_fail(c, s, name, "must be %g..%g seconds", lo, hi);
	*out = v;
	return 0;
}

/* name is "group.key", as reported; the key looked up is after the dot. */
int cfg_int(const struct ctl_config *c, config_setting_t *root, const char *name,
	    long long lo, long long hi, long long *out)
{
	const char *key = strchr(name, '.') ? strchr(name, '.') + 1 : name;
	config_setting_t *s = config_setting_lookup(root, key);

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
		return cfg_fail(c, s, name, "must be an integer");
	*out = config_setting_get_int64(s);
	if (config_setting_type(s) == CONFIG_TYPE_INT) {
		long long lit = 0;
		if (!literal_agrees(c, s, key, *out, &lit)) {
			if (!lit)
				return cfg_fail(c, s, name, "a number beyond 64 bits is out of range "
					    "%lld..%lld", lo, hi);
			return cfg_fail(c, s, name, "%lld is out of range %lld..%lld", lit, lo, hi);
		}
	}
	if (*out < lo || *out > hi)
		return cfg_fail(c, s, name, "%lld is out of range %lld..%lld", *out, lo, hi);
	return 0;
}

int cfg_ip(const struct ctl_config *c, config_setting_t *root, const char *name,
	   char *str, uint32_t *ip, bool required)
{
	const char *key = strchr(name, '.') + 1;
	struct in_addr a;

	if (cfg_str(c, root, name, str, 16, required) < 0)
		return -1;
	if (!str[0])
		return 0;
	if (inet_pton(AF_INET, str, &a) != 1)
		return cfg_fail(c, config_setting_lookup(root, key), name,
			    "'%s' is not an IPv4 address", str);
	*ip = ntohl(a.s_addr);
	return 0;
}

/* "ADDRESS:PORT" to listen on (an IPv4 address, 0.0.0.0 for all); absent
 * leaves port 0 (off). */
int cfg_listen(const struct ctl_config *c, config_setting_t *g, const char *name,
	       uint32_t *ip, uint16_t *port)
{
	char v[64] = "", *colon, *end = NULL;
	struct in_addr a;
	unsigned long p;

	if (cfg_str(c, g, name, v, sizeof(v), false) < 0)
		return -1;
	if (!v[0])
		return 0;
	colon = strrchr(v, ':');
	p = colon ? strtoul(colon + 1, &end, 10) : 0;
	if (colon)
		*colon = '\0';
	if (!colon || *end || p == 0 || p > 65535 || !inet_aton(v, &a))
		return cfg_fail(c, config_setting_lookup(g, strchr(name, '.') + 1), name,
			    "is not ADDRESS:PORT (an IPv4 address, 0.0.0.0 for all)");
	*ip = ntohl(a.s_addr);
	*port = (uint16_t)p;
	return 0;
}


int cfg_mode(const struct ctl_config *c, config_setting_t *g, const char *name, int *out)
{
	char mode[16] = "", *end;
	long m;

	if (cfg_str(c, g, name, mode, sizeof(mode), false) < 0)
		return -1;
	if (!mode[0])
		return 0;
	m = strtol(mode, &end, 8);
	if (*end || m < 0 || m > 0777)
		return cfg_fail(c, config_setting_lookup(g, strchr(name, '.') + 1), name,
				"'%s' is not an octal mode like \"0660\"", mode);
	*out = (int)m;
	return 0;
}
