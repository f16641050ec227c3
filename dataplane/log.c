/* log.c - DPDK's and libbpf's own messages into pfs-dataplane's logger
 * (common/pfs_log.h), so that what the process says has one format (text,
 * or JSON with --log-json) and one level filter, the EAL's and the AF_XDP
 * PMD's lines included.
 *
 * DPDK writes to a stdio stream (rte_openlog_stream): ours is a
 * fopencookie() stream that gathers a line and hands it to pfs_log at the
 * level of the message DPDK is logging (rte_log_cur_msg_loglevel). libbpf
 * calls a print function with a level: mapped the same way.
 */
#include <bpf/libbpf.h>
#include <rte_log.h>
#include <stdio.h>
#include <string.h>

#include "dp.h"
#include "pfs_log.h"

static char line[1024];
static size_t line_len;

static enum pfs_log_level from_dpdk(int level)
{
	return level <= (int)RTE_LOG_ERR ? PFS_LOG_ERR :
	       level == (int)RTE_LOG_WARNING ? PFS_LOG_WARNING :
	       level <= (int)RTE_LOG_INFO ? PFS_LOG_INFO : PFS_LOG_DEBUG;
}

static void flush_line(void)
{
	if (line_len) {
		pfs_log(from_dpdk(rte_log_cur_msg_loglevel()), "%.*s", (int)line_len, line);
		line_len = 0;
	}
}

/* Whole lines to the logger; a line longer than the buffer in pieces. */
static ssize_t dpdk_write(void *cookie, const char *buf, size_t size)
{
	(void)cookie;
	for (size_t i = 0; i < size; i++) {
		if (buf[i] == '\n' || line_len == sizeof(line)) {
			flush_line();
			if (buf[i] == '\n')
				continue;
		}
		line[line_len++] = buf[i];
	}
	return (ssize_t)size;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	pfs_vlog(level == LIBBPF_WARN ? PFS_LOG_WARNING :
		 level == LIBBPF_INFO ? PFS_LOG_INFO : PFS_LOG_DEBUG, fmt, ap);
	return 0;
}

int dp_log_libraries(void)
{
	static const cookie_io_functions_t io = { .write = dpdk_write };
	FILE *f = fopencookie(NULL, "w", io);

	libbpf_set_print(libbpf_print);
	if (!f)
		return -1;
	setvbuf(f, NULL, _IONBF, 0);    /* every write reaches dpdk_write at once */
	return rte_openlog_stream(f);
}
