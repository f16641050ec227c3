/* fetch_url.c - upstream server addresses (HOST[:PORT] or a tftp, http or
 * https URL) checked, and the URL a path is fetched from (see pfs_fetch.h):
 * what a config file and a command line are validated with, and what every
 * fetch and its log lines use.
 */
#include "pfs_fetch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool pfs_fetch_server_ok(const char *server)
{
	const char *host = server, *sep = strstr(server, "://");

	if (sep) {
		size_t n = (size_t)(sep - server);
		if (!((n == 4 && !strncmp(server, "tftp", 4)) || (n == 4 && !strncmp(server, "http", 4)) ||
		      (n == 5 && !strncmp(server, "https", 5))))
			return false;
		host = sep + 3;
	}
	if (!*host || *host == '/' || *host == ':' || strpbrk(server, " \t\r\n"))
		return false;
	/* HOST:PORT: a port 1..65535 up to the path */
	const char *colon = strchr(host, ':'), *slash = strchr(host, '/');
	if (colon && (!slash || colon < slash)) {
		char *end;
		unsigned long port = strtoul(colon + 1, &end, 10);
		if (end == colon + 1 || port == 0 || port > 65535 || (*end && *end != '/'))
			return false;
	}
	return true;
}

int pfs_fetch_url(const char *server, const char *path, char *buf, size_t cap)
{
	bool scheme = strstr(server, "://") != NULL;
	size_t n = strlen(server);
	int len;

	if (!pfs_fetch_server_ok(server))
		return -EINVAL;
	while (*path == '/')
		path++;
	while (scheme && n && server[n - 1] == '/')
		n--;                    /* http://host/base/ + path */
	len = snprintf(buf, cap, "%s%.*s/%s", scheme ? "" : "tftp://", (int)n, server, path);
	return len < 0 || (size_t)len >= cap ? -ENAMETOOLONG : len;
}
