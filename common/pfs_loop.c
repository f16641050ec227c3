/* pfs_loop.c - see pfs_loop.h. */
#include "pfs_loop.h"

#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

int pfs_loop_signals(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

bool pfs_loop_signal_read(int fd)
{
	struct signalfd_siginfo si;

	return read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si) &&
	       (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM);
}

int pfs_loop_timeout_ms(int64_t deadline, int64_t now, int cap_ms)
{
	int64_t ms;

	if (deadline <= now)
		return 0;
	if (deadline == INT64_MAX)
		return cap_ms;
	ms = (deadline - now + 999999) / 1000000;
	return ms > cap_ms ? cap_ms : (int)ms;
}
