/* test_tftp.c - the load server's TFTP parser and read-transfer state
 * machine (serve/tftp_wire.c, serve/tftp_session.c): requests and options
 * as RFC 1350/2347/2348/2349/7440 write them, refusals, whole transfers
 * with windows, loss, timeouts, block-number rollover and a file still
 * arriving.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tftp_session.h"

#define MS 1000000ull

static size_t rrq(uint8_t *buf, const char *name, const char *mode, const char *const *opts)
{
	size_t n = 2;

	buf[0] = 0;
	buf[1] = TFTP_RRQ;
	n += (size_t)sprintf((char *)buf + n, "%s", name) + 1;
	n += (size_t)sprintf((char *)buf + n, "%s", mode) + 1;
	for (; opts && *opts; opts++)
		n += (size_t)sprintf((char *)buf + n, "%s", *opts) + 1;
	return n;
}

Test(tftp_wire, requests_and_options)
{
	uint8_t b[512];
	struct tftp_request r;
	const char *opts[] = { "BlkSize", "1468", "tsize", "0", "timeout", "3", "windowsize", "16",
			       "x-vendor", "whatever", NULL };

	cr_assert_eq(tftp_parse_request(b, rrq(b, "fw/a.bin", "octet", NULL), &r), TFTP_P_OK);
	cr_assert_str_eq(r.name, "fw/a.bin");
	cr_assert(r.octet && !r.options && !r.blksize);
	cr_assert_eq(tftp_parse_request(b, rrq(b, "SEP1.cnf", "NETASCII", opts), &r), TFTP_P_OK);
	cr_assert(!r.octet && r.options && r.tsize);
	cr_assert_eq(r.blksize, 1468);
	cr_assert_eq(r.timeout_s, 3);
	cr_assert_eq(r.windowsize, 16);
	/* Padding after the last option, as some boot ROMs send. */
	size_t n = rrq(b, "a", "octet", NULL);
	b[n++] = 0;
	cr_assert_eq(tftp_parse_request(b, n, &r), TFTP_P_OK);
	b[1] = TFTP_WRQ;
	cr_assert_eq(tftp_parse_request(b, n, &r), TFTP_P_OK);
	cr_assert_eq(r.op, TFTP_WRQ);
}

Test(tftp_wire, malformed_requests_refused)
{
	uint8_t b[1024] = { 0 };
	struct tftp_request r;
	char longname[300];
	const char *bad_blk[] = { "blksize", "7", NULL }, *big_blk[] = { "blksize", "65465", NULL };
	const char *no_val[] = { "blksize", NULL }, *sign[] = { "windowsize", "+4", NULL };
	const char *zero_win[] = { "windowsize", "0", NULL }, *to[] = { "timeout", "256", NULL };

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(tftp_parse_request(b, 3, &r), TFTP_P_SHORT);
	cr_assert_eq(tftp_parse_request(b, rrq(b, "", "octet", NULL), &r), TFTP_P_NAME);
	cr_assert_eq(tftp_parse_request(b, rrq(b, longname, "octet", NULL), &r), TFTP_P_NAME);
	cr_assert_eq(tftp_parse_request(b, rrq(b, "a b", "octet", NULL), &r), TFTP_P_NAME);
	cr_assert_eq(tftp_parse_request(b, rrq(b, "a\\b", "octet", NULL), &r), TFTP_P_NAME);
	cr_assert_eq(tftp_parse_request(b, rrq(b, "a\x01", "octet", NULL), &r), TFTP_P_NAME);
	cr_assert_eq(tftp_parse_request(b, rrq(b, "a", "mail", NULL), &r), TFTP_P_MODE);
	cr_assert_eq(tftp_parse_request(b, rrq(b, "a", "octet", bad_blk), &r), TFTP_P_OPTION);
	cr_assert_eq(tftp_parse_request(b, rrq(b, "a", "octet", big_blk), &r), TFTP_P_OPTION);
	cr_assert_eq(tftp_parse_request(b, rrq(b, "a", "octet", no_val), &r), TFTP_P_OPTION);
	cr_assert_eq(tftp_parse_request(b, rrq(b, "a", "octet", sign), &r), TFTP_P_OPTION);
	cr_assert_eq(tftp_parse_request(b, rrq(b, "a", "octet", zero_win), &r), TFTP_P_OPTION);
	cr_assert_eq(tftp_parse_request(b, rrq(b, "a", "octet", to), &r), TFTP_P_OPTION);
	size_t n = rrq(b, "a", "octet", NULL);
	b[n++] = 'x';                           /* bytes that end in no NUL */
	cr_assert_eq(tftp_parse_request(b, n, &r), TFTP_P_TRAILING);
	n = rrq(b, "a", "octet", NULL);
	cr_assert_eq(tftp_parse_request(b, n - 1, &r), TFTP_P_SHORT);   /* mode without NUL */
	b[1] = TFTP_DATA;
	cr_assert_eq(tftp_parse_request(b, n, &r), TFTP_P_OPCODE);
}

Test(tftp_wire, replies_and_builders)
{
	uint8_t b[600];
	struct tftp_reply r;
	const uint8_t ack[] = { 0, 4, 0xff, 0xfe }, err[] = { 0, 5, 0, 8, 'n', 'o', 0 };
	const uint8_t longack[] = { 0, 4, 0, 1, 0 }, data[] = { 0, 3, 0, 1 };

	cr_assert_eq(tftp_parse_reply(ack, sizeof(ack), &r), TFTP_P_OK);
	cr_assert(r.op == TFTP_ACK && r.block == 0xfffe);
	cr_assert_eq(tftp_parse_reply(err, sizeof(err), &r), TFTP_P_OK);
	cr_assert(r.op == TFTP_ERROR && r.code == TFTP_EOPTNEG);
	cr_assert_eq(tftp_parse_reply(longack, sizeof(longack), &r), TFTP_P_TRAILING);
	cr_assert_eq(tftp_parse_reply(data, sizeof(data), &r), TFTP_P_OPCODE);
	int n = tftp_build_oack(b, sizeof(b), 1468, 0, 1, 123456, 8);
	const char want[] = "\0\6blksize\0001468\0tsize\000123456\0windowsize\0008";
	cr_assert_eq(n, (int)sizeof(want));      /* with the last value's NUL */
	cr_assert_eq(memcmp(b, want, (size_t)n), 0);
	n = tftp_build_error(b, sizeof(b), TFTP_ENOTFOUND, "file not found");
	cr_assert_eq(n, 4 + 15);
	cr_assert(b[1] == TFTP_ERROR && b[3] == 1 && b[n - 1] == 0);
	cr_assert_eq(tftp_build_data(b, 10, 1, "0123456789", 10), -1, "no room: refused");
}

/* --- whole transfers ---------------------------------------------------- */

struct file {
	uint8_t *bytes;
	uint64_t size;
	uint64_t avail;         /* bytes arrived so far (serve while filling) */
	int fail_at;            /* read at this offset fails (-EIO); -1 none */
};

static int file_read(void *ctx, uint64_t off, void *buf, uint32_t len)
{
	struct file *f = ctx;

	if (f->fail_at >= 0 && off >= (uint64_t)f->fail_at)
		return -EIO;
	if (off + len > f->avail)
		return -EAGAIN;
	memcpy(buf, f->bytes + off, len);
	return (int)len;
}

static struct file make(uint64_t size)
{
	struct file f = { malloc(size ? size : 1), size, size, -1 };

	for (uint64_t i = 0; i < size; i++)
		f.bytes[i] = (uint8_t)(i * 31 + (i >> 8));
	return f;
}

static const struct tftp_limits lim = { 1468, 64, 1000 * MS, 5 };

/* A client: takes DATA in order into out, ACKs per window (or every block
 * for window 1), drops the DATA whose (1-based) sequence number is in
 * lose[]. Returns the packets the server sent. */
static uint64_t run_client(struct tftp_session *s, uint8_t *out, uint64_t cap, uint32_t window,
			   const uint64_t *lose, int nlose, tftp_time_t *now)
{
	static uint8_t pkt[TFTP_PKT_MAX];
	uint64_t got = 0, expect = 1, seq = 0, since_ack = 0;

	for (int guard = 0; guard < 2000000 && !tftp_session_over(s); guard++) {
		int n = tftp_session_poll(s, *now, pkt, sizeof(pkt));
		if (n == 0) {   /* nothing due: the client's window ACK or a timeout */
			*now = tftp_session_deadline(s);
			tftp_session_on_timer(s, *now);
			continue;
		}
		cr_assert_gt(n, 0);
		uint16_t op = (uint16_t)(pkt[0] << 8 | pkt[1]);
		struct tftp_reply ack = { TFTP_ACK, 0, 0 };
		if (op == TFTP_OACK) {
			tftp_session_on_reply(s, *now, &ack);
			continue;
		}
		if (op == TFTP_ERROR)
			break;
		cr_assert_eq(op, TFTP_DATA);
		bool lost = false;
		seq++;
		for (int i = 0; i < nlose; i++)
			lost |= lose[i] == seq;
		if (lost)
			continue;
		uint16_t blk = (uint16_t)(pkt[2] << 8 | pkt[3]);
		bool in_order = blk == (uint16_t)expect;
		if (in_order) {
			uint32_t len = (uint32_t)n - 4;
			cr_assert_leq(got + len, cap);
			memcpy(out + got, pkt + 4, len);
			got += len;
			expect++;
			since_ack++;
			if (since_ack == window || len < s->blksize) {
				ack.block = blk;
				since_ack = 0;
				tftp_session_on_reply(s, *now, &ack);
			}
		} else {        /* a gap: ACK the last in-order block (RFC 7440) */
			ack.block = (uint16_t)(expect - 1);
			since_ack = 0;
			tftp_session_on_reply(s, *now, &ack);
		}
		*now += 10000;
	}
	return got;
}

static void transfer(uint64_t size, const struct tftp_request *req, const uint64_t *lose,
		     int nlose, uint32_t client_window)
{
	struct file f = make(size);
	struct tftp_session s;
	uint8_t *out = malloc(size + 1);
	tftp_time_t now = 0;

	tftp_session_start(&s, req, size, &lim, file_read, &f, now);
	uint64_t got = run_client(&s, out, size + 1, client_window, lose, nlose, &now);
	cr_assert_eq(s.state, TS_DONE, "size %llu: state %d (%s)", (unsigned long long)size,
		     s.state, s.why ? s.why : "");
	cr_assert_eq(got, size);
	cr_assert(size == 0 || memcmp(out, f.bytes, size) == 0);
	free(out);
	free(f.bytes);
}

Test(tftp_session, plain_rfc1350_transfers)
{
	struct tftp_request r = { .op = TFTP_RRQ, .octet = 1 };

	transfer(3 * 512 + 100, &r, NULL, 0, 1);
	transfer(4 * 512, &r, NULL, 0, 1);      /* a multiple: an empty last block */
	transfer(0, &r, NULL, 0, 1);
	transfer(1, &r, NULL, 0, 1);
}

Test(tftp_session, options_windows_and_loss)
{
	struct tftp_request r = { .op = TFTP_RRQ, .octet = 1, .blksize = 1024, .windowsize = 8,
				  .tsize = 1, .options = 1 };
	const uint64_t lose[] = { 3, 20, 21, 57 };

	transfer(100000, &r, NULL, 0, 8);
	transfer(100000, &r, lose, 4, 8);
	r.blksize = 9000;                       /* granted 1468, the MTU's */
	transfer(50000, &r, lose, 4, 8);
}

Test(tftp_session, oack_carries_what_was_granted)
{
	struct tftp_request r = { .op = TFTP_RRQ, .octet = 1, .blksize = 9000, .windowsize = 500,
				  .tsize = 1, .timeout_s = 2, .options = 1 };
	struct file f = make(10);
	struct tftp_session s;
	uint8_t pkt[600];

	tftp_session_start(&s, &r, 10, &lim, file_read, &f, 0);
	int n = tftp_session_poll(&s, 0, pkt, sizeof(pkt));
	const char want[] = "\0\6blksize\0001468\0timeout\0002\0tsize\00010\0windowsize\00064";
	cr_assert_eq(n, (int)sizeof(want));      /* with the last value's NUL */
	cr_assert_eq(memcmp(pkt, want, (size_t)n), 0);
	cr_assert_eq(tftp_session_poll(&s, 0, pkt, sizeof(pkt)), 0, "no DATA before ACK 0");
	free(f.bytes);
}

/* Options asked at their default values are still answered: an empty
 * OACK is not a valid packet (found by fuzz_tftp). */
Test(tftp_session, oack_never_empty)
{
	struct tftp_request r = { .op = TFTP_RRQ, .octet = 1, .blksize = 512, .windowsize = 1,
				  .options = 1 };
	struct file f = make(10);
	struct tftp_session s;
	uint8_t pkt[600];

	tftp_session_start(&s, &r, 10, &lim, file_read, &f, 0);
	int n = tftp_session_poll(&s, 0, pkt, sizeof(pkt));
	const char want[] = "\0\6blksize\000512\0windowsize\0001";
	cr_assert_eq(n, (int)sizeof(want));
	cr_assert_eq(memcmp(pkt, want, (size_t)n), 0);
	free(f.bytes);
}

Test(tftp_session, block_numbers_roll_over)
{
	struct tftp_request r = { .op = TFTP_RRQ, .octet = 1, .blksize = 8, .windowsize = 16,
				  .options = 1 };
	const uint64_t lose[] = { 65530, 65536, 65537 };

	transfer(8ull * 70000 + 3, &r, lose, 3, 16);    /* 70,001 blocks: past 65,535 */
}

Test(tftp_session, timeouts_back_off_then_give_up)
{
	struct tftp_request r = { .op = TFTP_RRQ, .octet = 1 };
	struct file f = make(2000);
	struct tftp_session s;
	uint8_t pkt[600];
	tftp_time_t now = 0, gaps[8];
	int sends = 0;

	tftp_session_start(&s, &r, 2000, &lim, file_read, &f, now);
	while (!tftp_session_over(&s) && sends < 8) {
		int n = tftp_session_poll(&s, now, pkt, sizeof(pkt));
		if (n > 0 && pkt[1] == TFTP_DATA) {
			cr_assert_eq(pkt[3], 1, "only block 1, again");
			gaps[sends++] = now;
			continue;
		}
		if (n > 0 && pkt[1] == TFTP_ERROR)
			break;
		now = tftp_session_deadline(&s);
		tftp_session_on_timer(&s, now);
	}
	cr_assert_eq(s.state, TS_FAILED);
	cr_assert_eq(sends, 5, "5 sends (retries) of the block");
	for (int i = 1; i < sends; i++)       /* 1, 2, 4, 4 s: doubling, twice at most */
		cr_assert_eq(gaps[i] - gaps[i - 1], lim.timeout << (i - 1 < 2 ? i - 1 : 2),
			     "gap %d", i);
	/* The last poll gave the client an ERROR saying why. */
	cr_assert_eq(pkt[1], TFTP_ERROR);
	cr_assert_str_eq((char *)pkt + 4, "timed out");
	free(f.bytes);
}

Test(tftp_session, duplicate_acks_send_nothing_again)
{
	struct tftp_request r = { .op = TFTP_RRQ, .octet = 1 };
	struct file f = make(5000);
	struct tftp_session s;
	uint8_t pkt[600];
	struct tftp_reply ack = { TFTP_ACK, 1, 0 };

	tftp_session_start(&s, &r, 5000, &lim, file_read, &f, 0);
	cr_assert_gt(tftp_session_poll(&s, 0, pkt, sizeof(pkt)), 0);   /* DATA 1 */
	tftp_session_on_reply(&s, 1, &ack);
	cr_assert_gt(tftp_session_poll(&s, 1, pkt, sizeof(pkt)), 0);   /* DATA 2 */
	cr_assert_eq(pkt[3], 2);
	tftp_session_on_reply(&s, 2, &ack);                             /* ACK 1 again */
	cr_assert_eq(tftp_session_poll(&s, 2, pkt, sizeof(pkt)), 0,
		     "a duplicate ACK must not resend (sorcerer's apprentice)");
	ack.block = 7;                                                  /* never sent */
	tftp_session_on_reply(&s, 3, &ack);
	cr_assert_eq(s.acked, 1);
	free(f.bytes);
}

Test(tftp_session, a_file_still_arriving_is_sent_as_it_comes)
{
	struct tftp_request r = { .op = TFTP_RRQ, .octet = 1 };
	struct file f = make(1500);
	struct tftp_session s;
	uint8_t pkt[600];
	struct tftp_reply ack = { TFTP_ACK, 1, 0 };

	f.avail = 600;                          /* block 1 there, block 2 not yet */
	tftp_session_start(&s, &r, 1500, &lim, file_read, &f, 0);
	cr_assert_eq(tftp_session_poll(&s, 0, pkt, sizeof(pkt)), 4 + 512);
	tftp_session_on_reply(&s, 1, &ack);
	cr_assert_eq(tftp_session_poll(&s, 1, pkt, sizeof(pkt)), 0, "block 2 not here yet");
	f.avail = 1500;
	cr_assert_eq(tftp_session_poll(&s, 2, pkt, sizeof(pkt)), 4 + 512);
	cr_assert_eq(pkt[3], 2);
	f.fail_at = 1024;                       /* block 3's read fails */
	ack.block = 2;
	tftp_session_on_reply(&s, 3, &ack);
	int n = tftp_session_poll(&s, 3, pkt, sizeof(pkt));
	cr_assert_gt(n, 0);
	cr_assert_eq(pkt[1], TFTP_ERROR, "a read that fails ends it with an ERROR");
	cr_assert_eq(s.state, TS_FAILED);
	free(f.bytes);
}

/* Waiting for the file is not the client's loss: timeouts while nothing is
 * out spend no retry, however many; a lost block still does. */
Test(tftp_session, waiting_for_the_file_spends_no_retry)
{
	struct tftp_request r = { .op = TFTP_RRQ, .octet = 1 };
	struct file f = make(1500);
	struct tftp_session s;
	uint8_t pkt[600];
	struct tftp_reply ack = { TFTP_ACK, 1, 0 };
	tftp_time_t t = 0;

	f.avail = 512;
	tftp_session_start(&s, &r, 1500, &lim, file_read, &f, t);
	cr_assert_eq(tftp_session_poll(&s, t, pkt, sizeof(pkt)), 4 + 512);
	tftp_session_on_reply(&s, ++t, &ack);
	for (int i = 0; i < 3 * lim.retries; i++) {
		t = tftp_session_deadline(&s);
		tftp_session_on_timer(&s, t);
		cr_assert_eq(tftp_session_poll(&s, t, pkt, sizeof(pkt)), 0);
	}
	cr_assert_eq(s.state, TS_SENDING, "still waiting, not failed");
	cr_assert_eq(s.tries, 0);
	f.avail = 1500;
	cr_assert_eq(tftp_session_poll(&s, t, pkt, sizeof(pkt)), 4 + 512);
	cr_assert_eq(pkt[3], 2);
	/* Block 2 is out and never acknowledged: retries count again. */
	for (int i = 0; i < lim.retries && s.state != TS_FAILED; i++) {
		t = tftp_session_deadline(&s);
		tftp_session_on_timer(&s, t);
		while (tftp_session_poll(&s, t, pkt, sizeof(pkt)) > 0)
			;
	}
	cr_assert_eq(s.state, TS_FAILED);
	free(f.bytes);
}

Test(tftp_session, client_error_ends_it)
{
	struct tftp_request r = { .op = TFTP_RRQ, .octet = 1, .blksize = 1024, .options = 1 };
	struct file f = make(10);
	struct tftp_session s;
	struct tftp_reply e = { TFTP_ERROR, 0, TFTP_EOPTNEG };

	tftp_session_start(&s, &r, 10, &lim, file_read, &f, 0);
	tftp_session_on_reply(&s, 1, &e);
	cr_assert_eq(s.state, TS_FAILED);
	cr_assert(tftp_session_over(&s), "nothing to send back to a client that gave up");
	free(f.bytes);
}
