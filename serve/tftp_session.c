/* tftp_session.c - one TFTP read transfer, server side (see tftp_session.h
 * for the state table). Blocks are counted from 1 in 64 bits; the wire's
 * 16-bit block number rolls over to 0 after 65535, as tftp-hpa and most
 * clients do, and an ACK is placed by its distance from the last one.
 */
#include "tftp_session.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NSEC 1000000000ull
#define BACKOFF_MAX 2                   /* the timeout doubles at most twice: 1, 2, 4, 4.. */

static void fail(struct tftp_session *s, uint16_t code, const char *msg, const char *why)
{
	s->state = TS_FAILED;
	s->why = why;
	if (msg) {
		s->send_error = true;
		s->err_code = code;
		snprintf(s->err_msg, sizeof(s->err_msg), "%s", msg);
	}
}

/* Options: what the client asked, bounded by what we grant (RFC 2347: the
 * server may answer a smaller blksize or windowsize; it must not exceed). */
void tftp_session_start(struct tftp_session *s, const struct tftp_request *r, uint64_t size,
			const struct tftp_limits *lim, tftp_read_fn read, void *ctx,
			tftp_time_t now)
{
	memset(s, 0, sizeof(*s));
	s->read = read;
	s->ctx = ctx;
	s->size = size;
	s->retries = lim->retries ? lim->retries : 5;
	s->timeout = lim->timeout;
	s->blksize = TFTP_BLKSIZE_DEF;
	s->window = 1;
	if (r->blksize)
		s->blksize = r->blksize < lim->blksize_max ? r->blksize : lim->blksize_max;
	if (r->windowsize)
		s->window = r->windowsize < lim->window_max ? r->windowsize : lim->window_max;
	if (r->timeout_s) {
		s->timeout = (tftp_time_t)r->timeout_s * NSEC;
		s->oack_timeout_s = r->timeout_s;
	}
	s->tsize = r->tsize;
	s->oack_blksize = r->blksize != 0;
	s->oack_window = r->windowsize != 0;
	s->nblocks = size / s->blksize + 1;
	s->next = 1;
	if (r->options) {
		s->state = TS_OACK;
		s->send_oack = true;
	} else {
		s->state = TS_SENDING;
	}
	s->deadline = now + s->timeout;
}

/* Send again from the first block the client does not hold. */
static void go_back(struct tftp_session *s)
{
	if (s->state == TS_OACK) {
		s->send_oack = true;
		return;
	}
	if (s->next > s->acked + 1)
		s->retransmits += s->next - (s->acked + 1);
	s->next = s->acked + 1;
}

void tftp_session_on_reply(struct tftp_session *s, tftp_time_t now, const struct tftp_reply *r)
{
	if (s->state == TS_DONE || s->state == TS_FAILED)
		return;
	if (r->op == TFTP_ERROR) {
		fail(s, 0, NULL, r->code == TFTP_EOPTNEG ? "the client refused our options" :
		     "the client gave up (ERROR)");
		return;
	}
	if (s->state == TS_OACK) {
		if (r->block != 0)
			return;                 /* not the answer to our OACK */
		s->state = TS_SENDING;
		s->send_oack = false;
		s->tries = 0;
		s->deadline = now + s->timeout;
		return;
	}
	/* Distance from the last ACK, modulo 2^16: how far the client got. */
	uint16_t delta = (uint16_t)(r->block - (uint16_t)s->acked);
	if (delta == 0 || s->acked + delta >= s->next)
		return;                 /* a duplicate, or a block we never sent */
	s->acked += delta;
	s->tries = 0;
	s->deadline = now + s->timeout;
	if (s->acked == s->nblocks) {
		s->state = TS_DONE;
		return;
	}
	/* The client holds only part of what was sent: it lost the block
	 * after n (a receiver ACKs before a window's end only on a gap, and
	 * keeps nothing past it); all after n is sent again (RFC 7440 4). */
	if (s->next - 1 > s->acked)
		go_back(s);
}

void tftp_session_on_timer(struct tftp_session *s, tftp_time_t now)
{
	if (s->state == TS_DONE || s->state == TS_FAILED || now < s->deadline)
		return;
	if (s->state == TS_SENDING && s->next == s->acked + 1) {
		/* Nothing out: the client holds all we sent, the next block
		 * has not arrived yet (the file is still filling). Not a loss:
		 * no retry spent; the driver bounds the wait. */
		s->deadline = now + s->timeout;
		return;
	}
	if (++s->tries >= s->retries) {
		fail(s, TFTP_EUNDEF, "timed out", "the client stopped answering");
		return;
	}
	go_back(s);
	s->deadline = now + (s->timeout << (s->tries < BACKOFF_MAX ? s->tries : BACKOFF_MAX));
}

int tftp_session_poll(struct tftp_session *s, tftp_time_t now, uint8_t *buf, size_t cap)
{
	static uint8_t block[TFTP_BLKSIZE_MAX];

	if (s->send_error) {
		s->send_error = false;
		return tftp_build_error(buf, cap, s->err_code, s->err_msg);
	}
	if (s->state == TS_OACK && s->send_oack) {
		s->send_oack = false;
		/* Every option asked is answered, with the value granted (a
		 * client that asked blksize 512 gets blksize 512): an OACK
		 * never comes out empty (RFC 2347), fuzz_tftp found that. */
		return tftp_build_oack(buf, cap, s->oack_blksize ? s->blksize : 0,
				       s->oack_timeout_s, s->tsize, s->size,
				       s->oack_window ? s->window : 0);
	}
	if (s->state != TS_SENDING || s->next > s->nblocks || s->next > s->acked + s->window)
		return 0;
	uint64_t off = (s->next - 1) * (uint64_t)s->blksize;
	uint32_t len = s->size - off < s->blksize ? (uint32_t)(s->size - off) : s->blksize;
	int n = len ? s->read(s->ctx, off, block, len) : 0;
	if (n == -EAGAIN)
		return 0;               /* not arrived yet: polled again when it has */
	if (n < 0 || (uint32_t)n != len) {
		fail(s, TFTP_EUNDEF, "cannot read the file", "the cache read failed");
		return tftp_session_poll(s, now, buf, cap);
	}
	int out = tftp_build_data(buf, cap, (uint16_t)s->next, block, len);
	if (out < 0)
		return -1;
	s->next++;
	s->bytes_sent += len;
	s->deadline = now + (s->timeout << (s->tries < BACKOFF_MAX ? s->tries : BACKOFF_MAX));
	return out;
}

tftp_time_t tftp_session_deadline(const struct tftp_session *s)
{
	return s->state == TS_DONE || s->state == TS_FAILED ? UINT64_MAX : s->deadline;
}
