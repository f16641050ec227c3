/* fuzz_tftp.c - libFuzzer target for the load server's TFTP side
 * (serve/tftp_wire.c, serve/tftp_session.c): any client may send anything
 * to UDP 69 and to a transfer's port.
 *
 * The input's first datagram is parsed as a request; a parsed one must
 * have a name of allowed bytes only and options within their RFC bounds.
 * Then a transfer of a small file is driven with the rest of the input cut
 * into replies (2-byte length prefixes), with time jumping between them:
 * every packet the session sends must be a well-formed DATA, OACK or ERROR,
 * DATA in order of what the client last acknowledged, never past the file.
 * Half the inputs serve a file still arriving (reads past what is there say
 * -EAGAIN, more arrives with each reply); once the input is used up the rest
 * arrives and time passes, and the transfer must end.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tftp_session.h"

static uint8_t file[3000];
static uint64_t avail;          /* the file arrives: bytes there so far */

static int rd(void *ctx, uint64_t off, void *buf, uint32_t len)
{
	(void)ctx;
	if (off + len > sizeof(file))
		abort();                /* the session read past the size it was given */
	if (off + len > avail)
		return -EAGAIN;         /* not arrived yet */
	memcpy(buf, file + off, len);
	return (int)len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct tftp_limits lim = { 1468, 16, 1000000000ull, 4 };
	static uint8_t out[TFTP_PKT_MAX];
	struct tftp_request r;
	struct tftp_session s;
	uint64_t now = 0;
	size_t first = size > 2 ? (size_t)(data[0] << 8 | data[1]) % (size - 1) : 0;

	if (size < 2)
		return 0;
	if (tftp_parse_request(data + 2, first, &r) == TFTP_P_OK) {
		for (const char *p = r.name; *p; p++)
			if (*p <= ' ' || *p >= 0x7f || *p == '\\')
				abort();
		if ((r.blksize && (r.blksize < 8 || r.blksize > 65464)) ||
		    (r.windowsize && r.windowsize > 65535) || r.timeout_s > 255 || !r.name[0])
			abort();
	} else {
		memset(&r, 0, sizeof(r));
		r.op = TFTP_RRQ;
		r.blksize = 8 + data[1] % 600;
		r.windowsize = 1 + data[0] % 8;
		r.options = data[0] & 1;
	}
	uint64_t fsize = (data[0] * 37u + data[1]) % sizeof(file);
	avail = data[0] & 2 ? fsize / 3 : fsize;
	tftp_session_start(&s, &r, fsize, &lim, rd, NULL, now);
	size_t at = 2 + first;
	int steps;
	for (steps = 0; steps < 4096 && !tftp_session_over(&s); steps++) {
		int n = tftp_session_poll(&s, now, out, sizeof(out));
		if (n < 0)
			abort();
		if (n > 0) {
			if (n < 4 || out[0] != 0 || (out[1] != TFTP_DATA && out[1] != TFTP_OACK &&
						     out[1] != TFTP_ERROR))
				abort();        /* an OACK names at least one option */
			if (out[1] == TFTP_DATA && (size_t)n - 4 > s.blksize)
				abort();
			continue;
		}
		if (at + 2 > size) {            /* input used up: let time pass */
			avail = fsize;
			now = tftp_session_deadline(&s);
			tftp_session_on_timer(&s, now);
			continue;
		}
		size_t len = (size_t)(data[at] << 8 | data[at + 1]) % 64;
		at += 2;
		if (len > size - at)
			len = size - at;
		struct tftp_reply rep;
		if (tftp_parse_reply(data + at, len, &rep) == TFTP_P_OK)
			tftp_session_on_reply(&s, now, &rep);
		at += len;
		avail += 97 * len;
		now += 1000000ull * (len & 7);
		if (s.acked > s.nblocks || s.next > s.nblocks + 1 || s.acked + 1 > s.next)
			abort();
	}
	if (steps == 4096 && at + 2 > size && s.state != TS_DONE)
		abort();                /* everything arrived, time passed: not over */
	return 0;
}
