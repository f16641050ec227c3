/* test_fetch_tftp.c - upstream/pfs_fetch.c against a TFTP server played by
 * the test on loopback, block by block: each block is ACKed before it is
 * given to the caller's write (the lock-step waits on the ACK, not on what
 * the caller does with the bytes), every byte arrives once and in order,
 * a write the caller refuses fails the fetch with its error, and large
 * blocks that never arrive (their fragments dropped) are asked for again
 * frame-sized. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pfs_fetch.h"

#define BLK 512                 /* the server answers the options with none */

struct run {
	int srv;                        /* the server's socket */
	struct sockaddr_in client;      /* where the RRQ came from */
	uint8_t file[5 * BLK + 100];
	uint8_t got[5 * BLK + 100];
	uint64_t got_len;
	int writes, acked_before_write, write_err;
	int refuse_write;               /* the write (1st, 2nd, ...) refused with write_err */
	bool done, failed;
	int fail_err;
	uint8_t sha[32];
	uint32_t blksize;               /* limits.tftp_blksize asked of the fetch (0: default) */
	bool drop_big;                  /* OACK a large block size, then send nothing */
	bool again;                     /* then fetch the file a second time */
	unsigned rrqs;
	long asked[4];                  /* the blksize option of each RRQ (0: none) */
	char note[512];
};

static bool server_has_datagram(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) == 1;
}

static int on_write(void *ctx, int id, uint64_t off, const void *data, size_t len)
{
	struct run *r = ctx;

	(void)id;
	r->writes++;
	/* The ACK of the newest block given here is already on its way. */
	if (server_has_datagram(r->srv))
		r->acked_before_write++;
	if (r->write_err && (!r->refuse_write || r->writes == r->refuse_write))
		return r->write_err;
	cr_assert_eq(off, r->got_len, "a write at %llu, %llu expected", (unsigned long long)off,
		     (unsigned long long)r->got_len);
	cr_assert_leq(off + len, sizeof(r->got));
	memcpy(r->got + off, data, len);
	r->got_len += len;
	return 0;
}

static void on_progress(void *ctx, int id, uint64_t bytes) { (void)ctx, (void)id, (void)bytes; }

static void on_done(void *ctx, int id, uint64_t size, const uint8_t sha[32])
{
	struct run *r = ctx;

	(void)id;
	cr_assert_eq(size, sizeof(r->file));
	memcpy(r->sha, sha, 32);
	r->done = true;
}

static void on_failed(void *ctx, int id, int err, const char *why)
{
	struct run *r = ctx;

	(void)id, (void)why;
	r->failed = true;
	r->fail_err = err;
}

static void on_note(void *ctx, int id, const char *what)
{
	struct run *r = ctx;

	(void)id;
	snprintf(r->note, sizeof(r->note), "%s", what);
}

static const struct pfs_fetch_ops ops = { .write = on_write, .progress = on_progress,
					  .done = on_done, .failed = on_failed, .note = on_note };

/* An RRQ's blksize option (RFC 2348), 0 if it has none. */
static long rrq_blksize(const uint8_t *buf, ssize_t len)
{
	const char *p = (const char *)buf + 2, *end = (const char *)buf + len;

	p += strnlen(p, (size_t)(end - p)) + 1;         /* file name */
	p += strnlen(p, (size_t)(end - p)) + 1;         /* mode */
	while (p < end) {
		const char *opt = p, *val;
		p += strnlen(p, (size_t)(end - p)) + 1;
		val = p;
		p += strnlen(p, (size_t)(end - p)) + 1;
		if (p <= end && !strcmp(opt, "blksize"))
			return strtol(val, NULL, 10);
	}
	return 0;
}

/* Let the fetcher run until the server has a datagram or the fetch ended. */
static void drive(struct pfs_fetch *f, int epfd, struct run *r)
{
	for (int turns = 0; turns < 2000 && !r->done && !r->failed; turns++) {
		struct epoll_event ev[8];
		int n = epoll_wait(epfd, ev, 8, 5);

		for (int i = 0; i < n; i++)
			pfs_fetch_on_fd(f, ev[i].data.fd, ev[i].events);
		pfs_fetch_on_timeout(f);
		if (server_has_datagram(r->srv))
			return;
	}
}

static void recv_from_client(struct run *r, uint8_t *buf, size_t cap, ssize_t *len)
{
	socklen_t sl = sizeof(r->client);

	*len = recvfrom(r->srv, buf, cap, 0, (struct sockaddr *)&r->client, &sl);
	cr_assert_geq(*len, 4, "nothing from the client (%zd, %s)", *len, strerror(errno));
}

static void send_block(struct run *r, unsigned blk)
{
	uint8_t pkt[4 + BLK];
	size_t off = (size_t)(blk - 1) * BLK, n = sizeof(r->file) - off < BLK ?
					       sizeof(r->file) - off : BLK;

	pkt[0] = 0, pkt[1] = 3, pkt[2] = (uint8_t)(blk >> 8), pkt[3] = (uint8_t)blk;
	memcpy(pkt + 4, r->file + off, n);
	cr_assert_eq(sendto(r->srv, pkt, 4 + n, 0, (struct sockaddr *)&r->client,
			    sizeof(r->client)), (ssize_t)(4 + n));
}

/* The whole exchange: RRQ, then each block once its predecessor's ACK came. */
static void serve(struct run *r)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	char server[64];
	uint8_t buf[600];
	ssize_t len;
	int epfd = epoll_create1(0);
	struct pfs_fetch *f;
	unsigned blocks = sizeof(r->file) / BLK + 1;

	for (size_t i = 0; i < sizeof(r->file); i++)
		r->file[i] = (uint8_t)(i * 31 + (i >> 8));
	r->srv = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert(r->srv >= 0 && epfd >= 0);
	cr_assert_eq(bind(r->srv, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(r->srv, (struct sockaddr *)&a, &al), 0);
	snprintf(server, sizeof(server), "127.0.0.1:%u", ntohs(a.sin_port));
	f = pfs_fetch_new(epfd, &ops, r);
	cr_assert_not_null(f);
	if (r->blksize) {
		struct pfs_fetch_limits lim;
		pfs_fetch_limits_default(&lim);
		lim.tftp_blksize = r->blksize;
		lim.connect_timeout_ms = lim.stall_timeout_ms = 500;
		pfs_fetch_set_limits(f, &lim);
	}
	cr_assert_eq(pfs_fetch_start(f, 0, server, "fw.bin"), 0);
	drive(f, epfd, r);
	recv_from_client(r, buf, sizeof(buf), &len);
	cr_assert(buf[1] == 1 && !strcmp((char *)buf + 2, "fw.bin"), "not an RRQ for fw.bin");
	r->asked[r->rrqs++] = rrq_blksize(buf, len);
	if (r->drop_big) {
		/* Agree to the large blocks, then let none arrive: what a path
		 * that drops IP fragments does to every one of them. */
		char oack[32];
		int n = snprintf(oack, sizeof(oack), "%c%cblksize%c%ld", 0, 6, 0, r->asked[0]);
		cr_assert_eq(sendto(r->srv, oack, (size_t)n + 1, 0, (struct sockaddr *)&r->client,
				    sizeof(r->client)), n + 1);
		for (int k = 0; k < 20 && !r->failed && r->rrqs < 2; k++) {
			drive(f, epfd, r);
			if (r->failed)
				break;
			recv_from_client(r, buf, sizeof(buf), &len);
			if (buf[1] == 1)                /* a new RRQ: the retry */
				r->asked[r->rrqs++] = rrq_blksize(buf, len);
		}
		cr_assert_eq(r->rrqs, 2, "no second request (failed: %d, err %d)", r->failed,
			     r->fail_err);
	}
	for (int round = 0; round < 1 + r->again; round++) {
		if (round) {            /* the same file again, on the same fetcher */
			cr_assert(r->done, "the first fetch did not complete");
			r->done = false;
			r->got_len = 0;
			cr_assert_eq(pfs_fetch_start(f, 0, server, "fw.bin"), 0);
			drive(f, epfd, r);
			recv_from_client(r, buf, sizeof(buf), &len);
			cr_assert_eq(buf[1], 1, "not an RRQ");
			r->asked[r->rrqs++] = rrq_blksize(buf, len);
		}
		for (unsigned blk = 1; blk <= blocks && !r->failed; blk++) {
			send_block(r, blk);
			drive(f, epfd, r);
			if (r->failed)
				break;
			recv_from_client(r, buf, sizeof(buf), &len);
			cr_assert(buf[1] == 4 && (unsigned)(buf[2] << 8 | buf[3]) == blk,
				  "block %u: not its ACK", blk);
		}
		drive(f, epfd, r);
	}
	pfs_fetch_free(f);
	close(r->srv);
	close(epfd);
}

Test(tftp_fetch, each_block_is_acked_before_the_caller_writes_it)
{
	static struct run r;
	uint8_t want[32];

	serve(&r);
	cr_assert(r.done && !r.failed, "the fetch did not complete (err %d)", r.fail_err);
	cr_assert_eq(r.got_len, sizeof(r.file));
	cr_assert(memcmp(r.got, r.file, sizeof(r.file)) == 0, "the bytes differ");
	SHA256(r.file, sizeof(r.file), want);
	cr_assert(memcmp(r.sha, want, 32) == 0, "the digest differs");
	cr_assert_eq(r.acked_before_write, r.writes, "%d of %d writes came before their ACK",
		     r.writes - r.acked_before_write, r.writes);
}

Test(tftp_fetch, a_refused_write_fails_the_fetch_with_its_error)
{
	static struct run r = { .write_err = -ENOSPC };

	serve(&r);
	cr_assert(r.failed && !r.done, "the fetch did not fail");
	cr_assert_eq(r.fail_err, -ENOSPC, "failed with %d", r.fail_err);
	cr_assert_eq(r.writes, 1, "%d writes after the refusal", r.writes);
}

/* The last block refused: libcurl has finished the transfer by the time
 * the caller's write says no, and the fetch must fail all the same, not be
 * reported done. */
Test(tftp_fetch, a_refused_last_write_fails_a_finished_transfer)
{
	static struct run r = { .write_err = -EIO, .refuse_write = 6 };

	serve(&r);
	cr_assert_eq(r.writes, 6, "%d writes", r.writes);
	cr_assert(r.failed && !r.done, "reported %s", r.done ? "done" : "nothing");
	cr_assert_eq(r.fail_err, -EIO, "failed with %d", r.fail_err);
}

/* 8192-byte blocks agreed, none arrives: the fetch asks again with 1468,
 * says so, and completes with the server's (512-byte) blocks; the next
 * fetch asks for 1468 at once instead of stalling first. */
Test(tftp_fetch, large_blocks_that_never_arrive_are_asked_again_frame_sized)
{
	static struct run r = { .blksize = 8192, .drop_big = true, .again = true };

	serve(&r);
	cr_assert_eq(r.asked[0], 8192, "first RRQ asked blksize %ld", r.asked[0]);
	cr_assert_eq(r.asked[1], PFS_TFTP_BLKSIZE_DEFAULT, "retry asked blksize %ld", r.asked[1]);
	cr_assert_eq(r.rrqs, 3, "%u requests", r.rrqs);
	cr_assert_eq(r.asked[2], PFS_TFTP_BLKSIZE_DEFAULT, "the next fetch asked blksize %ld",
		     r.asked[2]);
	cr_assert(r.done && !r.failed, "the fetch did not complete (err %d)", r.fail_err);
	cr_assert_eq(r.got_len, sizeof(r.file));
	cr_assert(memcmp(r.got, r.file, sizeof(r.file)) == 0, "the bytes differ");
	cr_assert(strstr(r.note, "1468") && strstr(r.note, "8192") && strstr(r.note, "from now on"),
		  "note: '%s'", r.note);
}

/* Without a size of its own, a fetch asks for frame-sized blocks. */
Test(tftp_fetch, the_default_block_size_fills_one_frame)
{
	static struct run r;

	serve(&r);
	cr_assert_eq(r.asked[0], 1468, "asked blksize %ld", r.asked[0]);
	cr_assert(r.done, "the fetch did not complete");
	cr_assert_eq(r.note[0], 0, "a note without a retry: %s", r.note);
}
