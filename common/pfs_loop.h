/* pfs_loop.h - the event-loop pieces pfs-peer and pfs-control share: the
 * stop signals as a file descriptor, and a deadline as epoll's timeout. */
#ifndef PFS_LOOP_H
#define PFS_LOOP_H

#include <stdbool.h>
#include <stdint.h>

/* SIGINT and SIGTERM blocked and readable on the returned signalfd
 * (non-blocking, close-on-exec); SIGPIPE ignored (a peer that went away
 * is an error to report, not a death). -errno on failure. */
int pfs_loop_signals(void);

/* Read what the signalfd holds: true when it was a stop signal. */
bool pfs_loop_signal_read(int fd);

/* epoll_wait's timeout for the earliest deadline (monotonic ns; INT64_MAX
 * for none): 0 when due, else milliseconds rounded up, at most cap_ms. */
int pfs_loop_timeout_ms(int64_t deadline, int64_t now, int cap_ms);

#endif /* PFS_LOOP_H */
