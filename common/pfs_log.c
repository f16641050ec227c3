/* pfs_log.c - see pfs_log.h. Single-threaded use: every program logs from
 * its event loop (pfs-dataplane's workers log at start and stop only). */
#include "pfs_log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_clock.h"
#include "pfs_sd.h"

static struct pfs_log_opts opts = { .program = "pfs", .min = PFS_LOG_INFO };
static int64_t t0;

void pfs_log_init(const struct pfs_log_opts *o)
{
	opts = *o;
	if (!opts.min)
		opts.min = PFS_LOG_INFO;
	t0 = pfs_mono_ns();
}

bool pfs_log_enabled(enum pfs_log_level level)
{
	return level <= opts.min;
}

static const char *const names[] = {
	[PFS_LOG_ERR] = "err", [PFS_LOG_WARNING] = "warning", [PFS_LOG_INFO] = "info",
	[PFS_LOG_DEBUG] = "debug",
};

const char *pfs_log_level_name(enum pfs_log_level level)
{
	return (unsigned)level < sizeof(names) / sizeof(names[0]) && names[level] ?
	       names[level] : "info";
}

int pfs_log_level_parse(const char *name)
{
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i] && !strcmp(names[i], name))
			return (int)i;
	return -1;
}

static const char *sd_prefix(enum pfs_log_level level)
{
	return pfs_sd_level(level <= PFS_LOG_ERR ? PFS_SD_ERR :
			    level == PFS_LOG_WARNING ? PFS_SD_WARNING : PFS_SD_INFO);
}

void pfs_vlog(enum pfs_log_level level, const char *fmt, va_list ap)
{
	char msg[2048];
	size_t n;
	double t;

	if (!pfs_log_enabled(level))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	t = t0 ? (double)(pfs_mono_ns() - t0) / 1e9 : 0;
	if (opts.json) {
		json_t *o = json_pack("{s:f, s:s, s:s, s:s}", "t", t, "level",
				      pfs_log_level_name(level), "program", opts.program, "msg", msg);
		char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;

		if (s)
			fprintf(stderr, "%s\n", s);
		free(s);
		json_decref(o);
	} else if (opts.uptime) {
		fprintf(stderr, "%s[%9.3f] %s: %s\n", sd_prefix(level), t, opts.program, msg);
	} else {
		fprintf(stderr, "%s%s: %s\n", sd_prefix(level), opts.program, msg);
	}
	fflush(stderr);
}

void pfs_log(enum pfs_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pfs_vlog(level, fmt, ap);
	va_end(ap);
}
