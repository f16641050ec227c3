/* test_common.c - what every daemon shares (common/): the logger (the text
 * and JSON forms, the level filter, a message's own trailing newline, as
 * libbpf's and DPDK's have, not doubled) and the event loop's pieces (stop
 * signals as a file descriptor, a deadline as epoll's timeout). */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#include "pfs_log.h"
#include "pfs_loop.h"

static void setup(void)
{
	unsetenv("JOURNAL_STREAM");     /* plain lines, no sd-daemon prefixes */
	cr_redirect_stderr();
}

TestSuite(log, .init = setup);

Test(log, text_lines_and_levels)
{
	struct pfs_log_opts o = { .program = "pfs-test", .min = PFS_LOG_WARNING };

	pfs_log_init(&o);
	pfs_log(PFS_LOG_ERR, "port %d: %s\n", 3, "gone");
	pfs_log(PFS_LOG_INFO, "dropped: below the minimum");
	pfs_log(PFS_LOG_WARNING, "slow");
	cr_assert(pfs_log_enabled(PFS_LOG_ERR) && !pfs_log_enabled(PFS_LOG_DEBUG));
	fflush(stderr);
	cr_assert_stderr_eq_str("pfs-test: port 3: gone\npfs-test: slow\n");
}

Test(log, json_objects)
{
	struct pfs_log_opts o = { .program = "pfs-test", .json = true, .min = PFS_LOG_DEBUG };
	char buf[1024] = "";
	json_t *a, *b;
	char *nl;

	pfs_log_init(&o);
	pfs_log(PFS_LOG_DEBUG, "EAL: \"quoted\" line\n");
	pfs_log(PFS_LOG_WARNING, "second");
	fflush(stderr);
	FILE *f = cr_get_redirected_stderr();
	cr_assert_not_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	nl = strchr(buf, '\n');
	cr_assert_not_null(nl, "one object a line: %s", buf);
	*nl = '\0';
	a = json_loads(buf, 0, NULL);
	b = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, NULL);
	cr_assert(a && b, "not JSON: %s", buf);
	cr_assert_str_eq(json_string_value(json_object_get(a, "msg")), "EAL: \"quoted\" line");
	cr_assert_str_eq(json_string_value(json_object_get(a, "level")), "debug");
	cr_assert_str_eq(json_string_value(json_object_get(a, "program")), "pfs-test");
	cr_assert(json_is_real(json_object_get(a, "t")));
	cr_assert_str_eq(json_string_value(json_object_get(b, "level")), "warning");
	json_decref(a);
	json_decref(b);
}

Test(log, level_names)
{
	cr_assert_eq(pfs_log_level_parse("warning"), PFS_LOG_WARNING);
	cr_assert_eq(pfs_log_level_parse("debug"), PFS_LOG_DEBUG);
	cr_assert_eq(pfs_log_level_parse("loud"), -1);
	cr_assert_str_eq(pfs_log_level_name(PFS_LOG_ERR), "err");
}

Test(loop, deadline_as_timeout)
{
	const int64_t ms = 1000000;

	cr_assert_eq(pfs_loop_timeout_ms(100 * ms, 100 * ms, 1000), 0, "due: no wait");
	cr_assert_eq(pfs_loop_timeout_ms(90 * ms, 100 * ms, 1000), 0, "past: no wait");
	cr_assert_eq(pfs_loop_timeout_ms(100 * ms + 1, 100 * ms, 1000), 1, "rounded up, not 0");
	cr_assert_eq(pfs_loop_timeout_ms(150 * ms, 100 * ms, 1000), 50);
	cr_assert_eq(pfs_loop_timeout_ms(5000 * ms, 100 * ms, 1000), 1000, "capped");
	cr_assert_eq(pfs_loop_timeout_ms(INT64_MAX, 100 * ms, 20), 20, "no deadline: the cap");
}

Test(loop, stop_signal_readable)
{
	int fd = pfs_loop_signals();

	cr_assert_geq(fd, 0);
	cr_assert(!pfs_loop_signal_read(fd), "nothing pending yet");
	kill(getpid(), SIGTERM);                        /* blocked: queued for the fd */
	cr_assert(pfs_loop_signal_read(fd), "SIGTERM read from the signalfd");
	cr_assert_eq(signal(SIGPIPE, SIG_DFL), SIG_IGN, "SIGPIPE ignored");
	close(fd);
}
