/* pfs_log.h - one logger for the programs of the appliance: levels, plain
 * lines or one JSON object a line, and the journal's level prefixes.
 *
 *   text: [<N>][[   12.345] ]PROGRAM: message       (sd-daemon prefix only
 *                                                     when the journal reads
 *                                                     stderr; uptime if asked)
 *   json: {"t": 12.345, "level": "warning", "program": "...", "msg": "..."}
 *
 * Lines below the minimum level are dropped. Messages may end in a newline
 * (libbpf's and DPDK's do): it is not doubled. Libraries' own log callbacks
 * come here too: libbpf's print function and DPDK's log stream, both set
 * in dataplane/log.c, so that everything a daemon says has one format and
 * one level filter.
 */
#ifndef PFS_LOG_H
#define PFS_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum pfs_log_level {            /* syslog's numbers, as the journal reads them */
	PFS_LOG_ERR = 3,
	PFS_LOG_WARNING = 4,
	PFS_LOG_INFO = 6,
	PFS_LOG_DEBUG = 7,
};

struct pfs_log_opts {
	const char *program;            /* "pfs-control" */
	bool json;                      /* one JSON object a line */
	bool uptime;                    /* text: seconds since start before the program */
	enum pfs_log_level min;         /* lines above this number are dropped (0: INFO) */
};

void pfs_log_init(const struct pfs_log_opts *o);
void pfs_log(enum pfs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pfs_vlog(enum pfs_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
bool pfs_log_enabled(enum pfs_log_level level);

/* "err", "warning", "info", "debug" and back (-1: not a level). */
const char *pfs_log_level_name(enum pfs_log_level level);
int pfs_log_level_parse(const char *name);

#endif /* PFS_LOG_H */
