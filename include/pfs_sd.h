/* pfs_sd.h - what systemd asks of a service, without libsystemd: readiness
 * (sd_notify's protocol: a datagram "READY=1" to $NOTIFY_SOCKET, for units
 * with Type=notify) and log levels (sd-daemon's "<N>" line prefixes, read by
 * the journal when stderr is its stream, $JOURNAL_STREAM). Shared by
 * pfs-control and pfs-dataplane.
 */
#ifndef PFS_SD_H
#define PFS_SD_H

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Syslog levels as sd-daemon.h numbers them. */
#define PFS_SD_ERR     "<3>"
#define PFS_SD_WARNING "<4>"
#define PFS_SD_INFO    "<6>"

/* The prefix for a line of that level: empty unless the journal reads our
 * stderr (a terminal or a file gets plain lines). */
static inline const char *pfs_sd_level(const char *prefix)
{
	static int journal = -1;

	if (journal < 0)
		journal = getenv("JOURNAL_STREAM") != NULL;
	return journal ? prefix : "";
}

/* Tell the service manager state ("READY=1", "STOPPING=1"): 0 sent, 1 no
 * $NOTIFY_SOCKET (not under a notify unit), or -errno. An abstract socket
 * is named with a leading '@'. */
static inline int pfs_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n, len;
	int fd, rc = 0;

	if (!path || !*path)
		return 1;
	n = strlen(path);
	if (n >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
		return -EINVAL;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	len = offsetof(struct sockaddr_un, sun_path) + n;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)len) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

#endif /* PFS_SD_H */
