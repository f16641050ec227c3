/* mhd_loop.c - a libmicrohttpd daemon in pfs-control's own event loop: no
 * thread of its own, its epoll descriptor nested in ours (the "external
 * epoll" mode), run when that descriptor is readable or its timeout comes.
 * Used by the load server's HTTP side and by /metrics.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#include "control.h"

#define HTTP_IDLE_S 30                  /* a silent connection is closed */

int ctl_mhd_start(struct ctl *c, struct ctl_mhd *m, const char *what, uint32_t ip,
		  uint16_t port, unsigned max_conns, MHD_AccessHandlerCallback handler,
		  ctl_unescape_fn unescape, MHD_RequestCompletedCallback done)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(ip) };
	const union MHD_DaemonInfo *info;
	struct epoll_event ev = { .events = EPOLLIN };

	/* Suspend and resume: a response whose bytes are still arriving
	 * parks its connection until they have (serve_http.c). */
	m->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, port, NULL, NULL,
				handler, c,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_CONNECTION_LIMIT, max_conns,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_S,
				MHD_OPTION_NOTIFY_COMPLETED, done, c,
				unescape ? MHD_OPTION_UNESCAPE_CALLBACK : MHD_OPTION_END,
				unescape, NULL, MHD_OPTION_END);
	info = m->d ? MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (info) {
		m->efd = info->epoll_fd;
		ev.data.fd = m->efd;
	}
	if (!info || epoll_ctl(c->epfd, EPOLL_CTL_ADD, m->efd, &ev) < 0) {
		int err = errno ? errno : EADDRINUSE;
		pfs_log(PFS_LOG_ERR, "%s: cannot listen on %s:%u: %s", what,
			inet_ntoa(sa.sin_addr), port, strerror(err));
		if (m->d)
			MHD_stop_daemon(m->d);
		m->d = NULL;
		return -err;
	}
	ctl_log(c, "%s on %s:%u", what, inet_ntoa(sa.sin_addr), port);
	return 0;
}

bool ctl_mhd_event(struct ctl_mhd *m, int fd)
{
	if (!m->d || fd != m->efd)
		return false;
	MHD_run(m->d);
	return true;
}

int64_t ctl_mhd_deadline(const struct ctl_mhd *m)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (!m->d || MHD_get_timeout(m->d, &ms) != MHD_YES)
		return INT64_MAX;
	return ctl_now() + (int64_t)ms * 1000000;
}

void ctl_mhd_run_due(struct ctl_mhd *m)
{
	if (m->d && ctl_mhd_deadline(m) <= ctl_now())
		MHD_run(m->d);
}

void ctl_mhd_stop(struct ctl_mhd *m)
{
	if (m->d)
		MHD_stop_daemon(m->d);
	m->d = NULL;
}
