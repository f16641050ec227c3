/* fuzz_http.c - libFuzzer target for the load server's own HTTP parsing
 * (serve/http_parse.c): any client sends any Range header and any path.
 *
 * The first 8 bytes are a file size, the rest a header or a path (NUL-
 * terminated copies). A range served must lie inside the file, from <= to;
 * an unescaped path is never longer than what came, holds no NUL before its
 * end, and is a fixed point once clean (decoding "%2541" gives "%41", which
 * is not decoded again: one pass, as the server does).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t fsize = 0, from = 0, to = 0;
	char *s;
	size_t n;

	if (size < 8)
		return 0;
	memcpy(&fsize, data, 8);
	fsize %= (1ull << 40);
	data += 8;
	size -= 8;
	if (!(s = malloc(size + 1)))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	int r = http_parse_range(s, fsize, &from, &to);
	if (r == 1 && (from > to || to >= fsize))
		abort();
	if (r == -1 && fsize && s[6] != '-' && strtoull(s + 6, NULL, 10) < fsize)
		abort();                /* "past the end" that was not */
	size_t before = strlen(s);
	n = http_unescape(s);
	if (n > before || n != strlen(s))
		abort();
	free(s);
	return 0;
}
