/* test_http_parse.c - the load server's own HTTP parsing (serve/http_parse.c):
 * Range headers and percent-decoding, strict on what a client sends. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "http_parse.h"

static int range(const char *h, uint64_t size, uint64_t *a, uint64_t *b)
{
	*a = *b = 12345;
	return http_parse_range(h, size, a, b);
}

Test(http_range, the_three_forms)
{
	uint64_t a, b;

	cr_assert_eq(range("bytes=100-199", 1000, &a, &b), 1);
	cr_assert(a == 100 && b == 199);
	cr_assert_eq(range("bytes=990-", 1000, &a, &b), 1);
	cr_assert(a == 990 && b == 999);
	cr_assert_eq(range("bytes=900-5000", 1000, &a, &b), 1, "clipped to the end");
	cr_assert(a == 900 && b == 999);
	cr_assert_eq(range("bytes=-50", 1000, &a, &b), 1);
	cr_assert(a == 950 && b == 999);
	cr_assert_eq(range("bytes=-5000", 1000, &a, &b), 1, "a suffix longer than the file");
	cr_assert(a == 0 && b == 999);
}

Test(http_range, past_the_end_and_ignored)
{
	uint64_t a, b;

	cr_assert_eq(range("bytes=1000-", 1000, &a, &b), -1);
	cr_assert_eq(range("bytes=-1", 0, &a, &b), -1);
	cr_assert_eq(range(NULL, 1000, &a, &b), 0);
	/* Not one range we parse: the whole file, never a guess. */
	const char *whole[] = { "bytes=1-2,5-6", "bytes=5-3", "bytes=-0", "bytes=-", "bytes=",
				"bytes=+5-", "bytes= 5-9", "bytes=5--3", "bytes=5-9x", "items=1-2",
				"bytes=0x10-", "bytes=99999999999999999999-", "bytes=-99999999999999999999",
				"bytes=1-99999999999999999999" };
	for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++) {
		cr_assert_eq(range(whole[i], 1000, &a, &b), 0, "%s", whole[i]);
		cr_assert(a == 12345 && b == 12345, "%s touched the range", whole[i]);
	}
}

static const char *unesc(const char *in)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s", in);
	cr_assert_eq(http_unescape(buf), strlen(buf));
	return buf;
}

Test(http_unescape, decodes_and_poisons)
{
	cr_assert_str_eq(unesc("fw/a.bin"), "fw/a.bin");
	cr_assert_str_eq(unesc("fw/%61%2Eb%2e"), "fw/a.b.");
	cr_assert_str_eq(unesc("%2e%2e/etc"), "../etc");
	/* An encoded NUL, or a '%' without two hex digits: a byte no path may
	 * hold ends it, so the request is refused, not cut short. */
	cr_assert_str_eq(unesc("fw/a.bin%00.txt"), "fw/a.bin\x01");
	cr_assert_str_eq(unesc("fw/%4"), "fw/\x01");
	cr_assert_str_eq(unesc("fw/%"), "fw/\x01");
	cr_assert_str_eq(unesc("fw/%+1x"), "fw/\x01");
	cr_assert_str_eq(unesc("fw/%0x41"), "fw/\x01");
	cr_assert_str_eq(unesc("%zz"), "\x01");
}
