/* tftp_session.h - one TFTP read transfer, server side, I/O-free: the
 * request and the client's ACKs in, the packets to send out, time passed
 * in, file bytes read through a callback (the appliance's cache).
 *
 *   state    event                              next     action
 *   -        RRQ with options we know           OACK     send OACK (blksize,
 *                                                        timeout, tsize, windowsize)
 *   -        RRQ without                        SENDING  send DATA 1
 *   OACK     ACK 0                              SENDING  send the first window
 *   OACK     ERROR (8: options refused)         FAILED   -
 *   SENDING  ACK of the last block              DONE     -
 *   SENDING  ACK n, n inside what was sent      SENDING  window slides; blocks after n
 *                                                        that were sent are sent again
 *                                                        (RFC 7440: the client lost n+1)
 *   SENDING  ACK already seen                   SENDING  nothing (no sorcerer's apprentice)
 *   SENDING  the next block not there yet       SENDING  nothing; sent when polled
 *            (read says -EAGAIN)                          once it is; a timeout
 *                                                        meanwhile spends no retry
 *   any      timeout                            same     send again from the first
 *                                                        unacknowledged, timeout doubles
 *   any      retries used up, or ERROR          FAILED   -
 *   SENDING  the source fails                   FAILED   send ERROR
 */
#ifndef PFS_TFTP_SESSION_H
#define PFS_TFTP_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "tftp_wire.h"

typedef uint64_t tftp_time_t;           /* nanoseconds, monotonic */

/* Read len bytes at off: len, fewer only at the end of the file, -EAGAIN
 * when they are not there yet (the file is still arriving), or -errno. */
typedef int (*tftp_read_fn)(void *ctx, uint64_t off, void *buf, uint32_t len);

struct tftp_limits {
	uint32_t blksize_max;           /* largest block granted (MTU: 1468) */
	uint32_t window_max;            /* largest windowsize granted */
	tftp_time_t timeout;            /* when the client asks none */
	uint8_t retries;                /* sends of one window before giving up */
};

enum tftp_state { TS_OACK, TS_SENDING, TS_DONE, TS_FAILED };

struct tftp_session {
	enum tftp_state state;
	tftp_read_fn read;
	void *ctx;
	uint64_t size, nblocks;         /* nblocks: size / blksize + 1 (the last short) */
	uint32_t blksize, window;
	uint64_t acked;                 /* blocks 1..acked acknowledged */
	uint64_t next;                  /* next block to send */
	tftp_time_t timeout, deadline;
	uint8_t tries, retries;
	bool send_oack, send_error;
	bool tsize;                     /* in the OACK */
	bool oack_blksize, oack_window; /* asked, so answered (with what was granted) */
	uint32_t oack_timeout_s;
	uint16_t err_code;
	char err_msg[96];
	uint64_t retransmits, bytes_sent;
	const char *why;                /* FAILED: what ended it */
};

void tftp_session_start(struct tftp_session *s, const struct tftp_request *r, uint64_t size,
			const struct tftp_limits *lim, tftp_read_fn read, void *ctx,
			tftp_time_t now);
void tftp_session_on_reply(struct tftp_session *s, tftp_time_t now, const struct tftp_reply *r);
void tftp_session_on_timer(struct tftp_session *s, tftp_time_t now);
/* The next packet to send into buf (its length), 0 when nothing is due. */
int tftp_session_poll(struct tftp_session *s, tftp_time_t now, uint8_t *buf, size_t cap);
tftp_time_t tftp_session_deadline(const struct tftp_session *s);
static inline bool tftp_session_over(const struct tftp_session *s)
{
	return (s->state == TS_DONE || s->state == TS_FAILED) && !s->send_error;
}

#endif /* PFS_TFTP_SESSION_H */
