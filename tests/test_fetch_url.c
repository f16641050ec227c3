/* test_fetch_url.c - upstream server addresses and the URLs fetched from
 * them (upstream/fetch_url.c): what --tftp, --upstream and pfs-relay.conf's
 * upstream server are checked with. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "pfs_fetch.h"

Test(server, the_forms_a_server_is_given_in)
{
	const char *ok[] = { "10.0.0.1", "fw.example", "fw.example:69", "h:65535",
			     "tftp://h", "tftp://h:6969", "http://h", "http://h:8080/base",
			     "https://h/a/b/" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_assert(pfs_fetch_server_ok(ok[i]), "%s refused", ok[i]);
}

Test(server, what_is_not_a_server)
{
	const char *bad[] = { "", "ftp://h", "file:///etc/passwd", "http://", "tftp://:69",
			      "/path", ":69", "h:0", "h:65536", "h:", "h:69x", "http://h:x/p",
			      "h 1", "h\n", "gopher://h", "HTTP:/h", "ht://h" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert(!pfs_fetch_server_ok(bad[i]), "'%s' accepted", bad[i]);
}

static const char *url(const char *server, const char *path)
{
	static char buf[256];

	cr_assert_gt(pfs_fetch_url(server, path, buf, sizeof(buf)), 0, "%s + %s", server, path);
	cr_assert_eq((size_t)pfs_fetch_url(server, path, buf, sizeof(buf)), strlen(buf));
	return buf;
}

Test(url, a_bare_host_is_tftp_and_slashes_are_not_doubled)
{
	cr_assert_str_eq(url("10.0.0.1", "SEP001.cnf.xml"), "tftp://10.0.0.1/SEP001.cnf.xml");
	cr_assert_str_eq(url("h:6969", "/dnld/fw.loads"), "tftp://h:6969/dnld/fw.loads");
	cr_assert_str_eq(url("http://h/base/", "//fw.bin"), "http://h/base/fw.bin");
	cr_assert_str_eq(url("https://h", "a/b.bin"), "https://h/a/b.bin");
	cr_assert_str_eq(url("tftp://h:69", "x"), "tftp://h:69/x");
}

Test(url, bad_server_and_no_room_are_errors)
{
	char buf[16];

	cr_assert_eq(pfs_fetch_url("ftp://h", "x", buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(pfs_fetch_url("h", "a-path-longer-than-the-buffer", buf, sizeof(buf)),
		     -ENAMETOOLONG);
	cr_assert_eq(pfs_fetch_url("h", "0123456", buf, sizeof(buf)), -ENAMETOOLONG,
		     "\"tftp://h/0123456\" is 16 bytes: no room for the NUL");
	cr_assert_eq(pfs_fetch_url("h", "012345", buf, sizeof(buf)), 15);
}
