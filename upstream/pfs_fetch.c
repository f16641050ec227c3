/* pfs_fetch.c - TFTP and HTTP(S) fetches with libcurl's multi interface
 * (see pfs_fetch.h).
 *
 * An HTTP fetch that failed part-way resumes where its bytes stopped (a
 * Range request, the SHA-256 carried on); TFTP has no such thing and starts
 * again. A server that ignores the Range gets the whole file again.
 *
 * Bounds are ours, not libcurl's: its TFTP code has whole-second timers
 * derived from CURLOPT_TIMEOUT and no low-speed check, so every job carries
 * a low-speed window and (once the server told the size) a deadline, checked
 * on the caller's clock through pfs_fetch_deadline()/pfs_fetch_on_timeout().
 *
 * libcurl itself is loaded by the first fetch (curl_dl.h): a process that
 * never fetches never maps it.
 *
 * libcurl 7.88 fails an empty file from tftpd-hpa with "illegal TFTP
 * operation" when it negotiates options (blksize, tsize); an empty transfer
 * that fails that way is retried once without options, which works.
 */
#include "pfs_fetch.h"

#include "curl_dl.h"
#include "fetch_internal.h"
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/epoll.h>
#include <time.h>

#define PORT_TRIES   32         /* local ports a pinned fetch tries in turn */

void pfs_fetch_limits_default(struct pfs_fetch_limits *l)
{
	/* libcurl's TFTP re-acks a lost block after connect timeout / 3
	 * whole seconds (at least 1): 5 s makes that 1 s, where 10 s made it
	 * 3 s per lost packet (bench/RESULTS.md section 7). */
	l->connect_timeout_ms = 5000;
	l->stall_timeout_ms = 10000;
	l->low_speed = 1000;
	l->min_rate = 8192;
	l->tftp_blksize = PFS_TFTP_BLKSIZE_DEFAULT;
}

int pfs_fetch_set_ca_file(struct pfs_fetch *f, const char *path)
{
	char *copy = NULL;

	if (path && !(copy = strdup(path)))
		return -ENOMEM;
	free(f->ca_file);
	f->ca_file = copy;
	return 0;
}

void pfs_fetch_set_limits(struct pfs_fetch *f, const struct pfs_fetch_limits *l)
{
	f->lim = *l;
	f->frame_blocks = false;        /* a new block size is tried afresh */
	if (!f->lim.connect_timeout_ms)
		f->lim.connect_timeout_ms = 1;
	if (!f->lim.stall_timeout_ms)
		f->lim.stall_timeout_ms = 1;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Give what is staged to the caller: its write, then the digest. */
static int deliver(struct fetch_job *j)
{
	int rc;

	if (!j->staged)
		return 0;
	rc = j->owner->ops->write(j->owner->ctx, j->id, j->stage_off, j->stage, j->staged);
	if (rc == 0)
		EVP_DigestUpdate(j->sha, j->stage, j->staged);
	j->staged = 0;
	return rc;
}

/* TFTP is lock-step, and libcurl hands each block to this callback before
 * it sends the block's ACK: whatever the caller does with it (pfs-control:
 * chunks into the cache, the engine, the dataplane) would delay the next
 * block by as much. So a TFTP block is only copied here, and given to the
 * caller once libcurl's socket action has returned (collect()), the ACK
 * gone. HTTP streams: its bytes go straight through. */
/* The first data of a retry with frame-sized blocks: the large ones were
 * lost on the way, so later fetches do not try them first. */
static void learn_frame_blocks(struct fetch_job *j)
{
	struct pfs_fetch *f = j->owner;
	char what[160];

	f->frame_blocks = true;
	snprintf(what, sizeof(what), "%u-byte TFTP blocks get through where %u-byte ones did not: "
		 "every fetch asks for %u from now on", PFS_TFTP_BLKSIZE_DEFAULT, f->lim.tftp_blksize,
		 PFS_TFTP_BLKSIZE_DEFAULT);
	if (f->ops->note)
		f->ops->note(f->ctx, j->id, what);
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
	struct fetch_job *j = userp;
	size_t len = size * nmemb;
	int rc = 0;

	if (j->write_err)
		return 0;
	if (j->small_blocks && !j->owner->frame_blocks && len)
		learn_frame_blocks(j);
	if (j->stage && len <= STAGE_BYTES) {
		if (j->staged + len > STAGE_BYTES)
			rc = deliver(j);
		if (rc == 0) {
			if (!j->staged)
				j->stage_off = j->bytes;
			memcpy(j->stage + j->staged, data, len);
			j->staged += len;
		}
	} else {
		rc = deliver(j);
		if (rc == 0)
			rc = j->owner->ops->write(j->owner->ctx, j->id, j->bytes, data, len);
		if (rc == 0)
			EVP_DigestUpdate(j->sha, data, len);
	}
	if (rc < 0) {
		j->write_err = rc;
		return 0;               /* makes curl fail with CURLE_WRITE_ERROR */
	}
	j->bytes += len;
	j->owner->total += len;
	return len;
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct pfs_fetch *f = userp;
	struct epoll_event ev = { .data.fd = s };

	(void)easy; (void)socketp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(f->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (epoll_ctl(f->epfd, EPOLL_CTL_MOD, s, &ev) < 0 && errno == ENOENT)
		epoll_ctl(f->epfd, EPOLL_CTL_ADD, s, &ev);
	return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct pfs_fetch *f = userp;

	(void)multi;
	f->deadline = timeout_ms < 0 ? -1 : now_ns() + (int64_t)timeout_ms * 1000000;
	return 0;
}

struct pfs_fetch *pfs_fetch_new(int epfd, const struct pfs_fetch_ops *ops, void *ctx)
{
	struct pfs_fetch *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->epfd = epfd;
	f->ops = ops;
	f->ctx = ctx;
	f->deadline = -1;
	pfs_fetch_limits_default(&f->lim);
	return f;               /* jobs are set up by their first begin() */
}

int pfs_fetch_load(struct pfs_fetch *f)
{
	int rc;

	if (f->multi)
		return 0;
	if ((rc = pfs_curl_load()) < 0)
		return rc;
	if (pfs_curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	f->multi = pfs_curl.multi_init();
	if (!f->multi) {
		pfs_curl.global_cleanup();
		return -ENOMEM;
	}
	pfs_curl.multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	pfs_curl.multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
	pfs_curl.multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	pfs_curl.multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
	return 0;
}

static void end(struct pfs_fetch *f, struct fetch_job *j)
{
	j->staged = 0;                  /* delivered by collect(), or abandoned */
	if (!j->easy)
		return;
	pfs_curl.multi_remove_handle(f->multi, j->easy);
	pfs_curl.easy_cleanup(j->easy);
	j->easy = NULL;
	f->running &= ~(1ull << j->id);
}

void pfs_fetch_free(struct pfs_fetch *f)
{
	int i;

	if (!f)
		return;
	FOR_EACH_JOB(f->used, i) {
		end(f, &f->jobs[i]);
		EVP_MD_CTX_free(f->jobs[i].sha);
		free(f->jobs[i].stage);
	}
	if (f->multi) {
		pfs_curl.multi_cleanup(f->multi);
		pfs_curl.global_cleanup();
	}
	free(f->ca_file);
	free(f);
}

uint32_t pfs_fetch_tftp_blksize(const struct pfs_fetch *f)
{
	return f->frame_blocks ? PFS_TFTP_BLKSIZE_DEFAULT : f->lim.tftp_blksize;
}

static uint32_t blksize(const struct pfs_fetch *f, const struct fetch_job *j)
{
	return j->small_blocks ? PFS_TFTP_BLKSIZE_DEFAULT : pfs_fetch_tftp_blksize(f);
}

/* Start an attempt: from the first byte, or (resume) from j->bytes with
 * the digest of what came before carried on. */
static int begin(struct pfs_fetch *f, struct fetch_job *j, bool resume)
{
	int rc = pfs_fetch_load(f);

	if (rc < 0)
		return rc;
	j->owner = f;
	j->id = (int)(j - f->jobs);
	f->used |= 1ull << j->id;
	j->easy = pfs_curl.easy_init();
	if (!j->easy)
		return -ENOMEM;
	if (!j->sha && !(j->sha = EVP_MD_CTX_new()))
		goto err_easy;
	if (!j->http && !j->stage)
		j->stage = malloc(STAGE_BYTES);         /* NULL: blocks go straight through */
	if (!resume) {
		EVP_DigestInit_ex(j->sha, EVP_sha256(), NULL);
		j->bytes = j->reported = 0;
	}
	j->resume_at = j->bytes;
	j->mark = j->bytes;
	j->size = 0;
	j->resumable = false;
	j->write_err = 0;
	j->err[0] = '\0';
	j->started = now_ns();
	j->deadline = 0;
	/* The first window also covers the wait for the first answer, which
	 * libcurl bounds with the connect timeout. */
	j->t_check = j->started + (int64_t)(f->lim.connect_timeout_ms > f->lim.stall_timeout_ms ?
					    f->lim.connect_timeout_ms : f->lim.stall_timeout_ms) * 1000000;
	pfs_curl.easy_setopt(j->easy, CURLOPT_URL, j->url);
	pfs_curl.easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, on_write);
	pfs_curl.easy_setopt(j->easy, CURLOPT_WRITEDATA, j);
	pfs_curl.easy_setopt(j->easy, CURLOPT_PRIVATE, (char *)j);
	pfs_curl.easy_setopt(j->easy, CURLOPT_ERRORBUFFER, j->err);
	pfs_curl.easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L);
	pfs_curl.easy_setopt(j->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)f->lim.connect_timeout_ms);
	if (f->lim.port_lo) {
		/* A random start in the range, then libcurl tries PORT_TRIES in
		 * turn (TFTP too): always starting at port_lo put each fetch on
		 * the port the previous one had just left, and the server's late
		 * packets for that one reached this one (WAN copies 1.1-1.4x in
		 * the appliance tests). */
		uint32_t r = 0, span = f->lim.port_count > PORT_TRIES ?
				       f->lim.port_count - PORT_TRIES : 1;
		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
			r = (uint32_t)now_ns() * 2654435761u;
		pfs_curl.easy_setopt(j->easy, CURLOPT_LOCALPORT, (long)(f->lim.port_lo + r % span));
		pfs_curl.easy_setopt(j->easy, CURLOPT_LOCALPORTRANGE, (long)PORT_TRIES);
	}
	if (j->http) {
		pfs_curl.easy_setopt(j->easy, CURLOPT_FAILONERROR, 1L);
		/* HTTPS: the peer and host name verified, always (the defaults,
		 * said here so no later change turns them off by accident). */
		pfs_curl.easy_setopt(j->easy, CURLOPT_SSL_VERIFYPEER, 1L);
		pfs_curl.easy_setopt(j->easy, CURLOPT_SSL_VERIFYHOST, 2L);
		if (f->ca_file)
			pfs_curl.easy_setopt(j->easy, CURLOPT_CAINFO, f->ca_file);
		pfs_curl.easy_setopt(j->easy, CURLOPT_FOLLOWLOCATION, 1L);
		pfs_curl.easy_setopt(j->easy, CURLOPT_MAXREDIRS, 3L);
		pfs_curl.easy_setopt(j->easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
		if (resume)
			pfs_curl.easy_setopt(j->easy, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)j->bytes);
	} else if (j->no_options)
		pfs_curl.easy_setopt(j->easy, CURLOPT_TFTP_NO_OPTIONS, 1L);
	else
		pfs_curl.easy_setopt(j->easy, CURLOPT_TFTP_BLKSIZE, (long)blksize(f, j));
	if (pfs_curl.multi_add_handle(f->multi, j->easy) != CURLM_OK)
		goto err_easy;
	f->running |= 1ull << j->id;
	return 0;
err_easy:
	pfs_curl.easy_cleanup(j->easy);
	j->easy = NULL;
	return -ENOMEM;
}

int pfs_fetch_start(struct pfs_fetch *f, int id, const char *server, const char *path)
{
	struct fetch_job *j;
	int rc;

	if (id < 0 || id >= PFS_FETCH_MAX)
		return -EINVAL;
	j = &f->jobs[id];
	end(f, j);
	j->resumable = false;
	if ((rc = pfs_fetch_url(server, path, j->url, sizeof(j->url))) < 0)
		return rc;
	j->http = !strncmp(j->url, "http", 4);
	j->no_options = false;
	j->small_blocks = false;
	return begin(f, j, false);
}

bool pfs_fetch_resumable(const struct pfs_fetch *f, int id)
{
	return id >= 0 && id < PFS_FETCH_MAX && !f->jobs[id].easy && f->jobs[id].resumable;
}

int pfs_fetch_resume(struct pfs_fetch *f, int id, uint64_t *from)
{
	struct fetch_job *j;

	if (!pfs_fetch_resumable(f, id))
		return -EAGAIN;
	j = &f->jobs[id];
	*from = j->bytes;
	return begin(f, j, true);
}

void pfs_fetch_abort(struct pfs_fetch *f, int id)
{
	if (id >= 0 && id < PFS_FETCH_MAX) {
		end(f, &f->jobs[id]);
		f->jobs[id].resumable = false;
	}
}

bool pfs_fetch_active(const struct pfs_fetch *f, int id)
{
	return id >= 0 && id < PFS_FETCH_MAX && f->jobs[id].easy;
}

uint64_t pfs_fetch_total_bytes(const struct pfs_fetch *f)
{
	return f->total;
}

/* The server told the size (TFTP tsize): from now on the fetch has a
 * deadline, connect_timeout + size / min_rate after it started. */
static void learn_size(struct pfs_fetch *f, struct fetch_job *j)
{
	curl_off_t len = -1;

	if (j->size || pfs_curl.easy_getinfo(j->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len) !=
	    CURLE_OK || len <= 0)
		return;
	j->size = j->resume_at + (uint64_t)len;         /* a 206 tells what is left */
	if (f->lim.min_rate)
		j->deadline = j->started + (int64_t)f->lim.connect_timeout_ms * 1000000 +
			      (int64_t)((uint64_t)len * 1000 / f->lim.min_rate) * 1000000;
}

/* A TFTP fetch that got nothing with blocks larger than a frame: their IP
 * fragments may be dropped on the way (a firewall, a path with a smaller
 * MTU), so the same fetch goes again with frame-sized blocks, once; if data
 * comes then, so do all later fetches (learn_frame_blocks). The caller
 * hears of it only through ops->note; true if the retry started. */
static bool retry_small_blocks(struct pfs_fetch *f, struct fetch_job *j, const char *why)
{
	char what[CURL_ERROR_SIZE + 200];
	uint32_t asked = blksize(f, j);
	double waited = (now_ns() - j->started) / 1e9;

	if (j->http || j->bytes || j->write_err || asked <= PFS_TFTP_BLKSIZE_DEFAULT)
		return false;
	end(f, j);
	j->small_blocks = true;
	if (begin(f, j, false) < 0)
		return false;
	/* Our own limits cannot tell a silent server from one that agreed to
	 * the blocks and whose data was lost (why is NULL then); libcurl's
	 * error says more. */
	snprintf(what, sizeof(what), "no data with %u-byte TFTP blocks in %.1f s%s%s%s: trying "
		 "%u-byte blocks (IP fragments dropped on the way?)", asked, waited,
		 why ? " (" : "", why ? why : "", why ? ")" : "", PFS_TFTP_BLKSIZE_DEFAULT);
	if (f->ops->note)
		f->ops->note(f->ctx, j->id, what);
	return true;
}

static void fail(struct pfs_fetch *f, struct fetch_job *j, int err, const char *why)
{
	end(f, j);
	/* What came is kept: an HTTP retry asks for the rest only. */
	j->resumable = j->http && j->bytes > 0 && !j->write_err && err != -ENOENT &&
		       err != -EACCES;
	f->ops->failed(f->ctx, j->id, err, why);
}

/* A finished transfer's libcurl result as one of our kinds, in words. */
/* Report progress and finished transfers. Callbacks may start or abort
 * fetches, so each job is finished before its callback runs. */
static void collect(struct pfs_fetch *f)
{
	CURLMsg *msg;
	int left, i;

	/* A job ended by a callback on the way has nothing staged (end()). */
	FOR_EACH_JOB(f->running, i) {
		struct fetch_job *j = &f->jobs[i];
		int rc = deliver(j);            /* the blocks libcurl has ACKed */

		if (rc < 0 && !j->write_err)
			j->write_err = rc;      /* its next block fails the transfer */
		if (j->easy && j->bytes > j->reported) {
			learn_size(f, j);
			j->reported = j->bytes;
			f->ops->progress(f->ctx, i, j->bytes);
		}
	}
	while ((msg = pfs_curl.multi_info_read(f->multi, &left))) {
		struct fetch_job *j;
		char *priv, why[CURL_ERROR_SIZE + 128];
		CURLcode res = msg->data.result;
		int err = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		pfs_curl.easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		j = (struct fetch_job *)priv;
		if (res != CURLE_OK || j->write_err)    /* a staged write may have failed */
			err = fetch_classify(j, res, f, why, sizeof(why));
		end(f, j);
		if (res == CURLE_RANGE_ERROR && j->resume_at) {
			if (begin(f, j, false) == 0)    /* no Range here: all of it again */
				continue;
		}
		if (res == CURLE_TFTP_ILLEGAL && j->bytes == 0 && !j->no_options) {
			j->no_options = true;   /* the empty-file quirk, see above */
			if (begin(f, j, false) == 0)
				continue;
		}
		if (err && err != -ENOENT && err != -EACCES && retry_small_blocks(f, j, why))
			continue;
		if (res == CURLE_OK && !j->write_err) {
			uint8_t sha[32];
			EVP_DigestFinal_ex(j->sha, sha, NULL);
			if (j->bytes > j->reported)
				f->ops->progress(f->ctx, j->id, j->bytes);
			f->ops->done(f->ctx, j->id, j->bytes, sha);
			continue;
		}
		fail(f, j, err, why);
	}
}

/* The low-speed window and the deadline of every running fetch. */
static void check_limits(struct pfs_fetch *f, int64_t now)
{
	int i;

	FOR_EACH_JOB(f->running, i) {
		struct fetch_job *j = &f->jobs[i];
		char why[256];
		double win = f->lim.stall_timeout_ms / 1e3;

		if (!j->easy)
			continue;
		if (j->deadline && now >= j->deadline) {
			snprintf(why, sizeof(why), "transfer not finished after %.0f s: %llu of %llu "
				 "bytes (the deadline allows %u bytes/s)",
				 (now - j->started) / 1e9, (unsigned long long)j->bytes,
				 (unsigned long long)j->size, f->lim.min_rate);
			if (!retry_small_blocks(f, j, NULL))
				fail(f, j, -ETIMEDOUT, why);
			continue;
		}
		if (now < j->t_check)
			continue;
		uint64_t got = j->bytes - j->mark;
		if ((double)got < f->lim.low_speed * win) {
			if (got == 0 && j->bytes == 0 && !j->size)
				snprintf(why, sizeof(why), "server not reachable: no data within "
					 "%.3g s", (now - j->started) / 1e9);
			else if (got == 0)
				snprintf(why, sizeof(why), "transfer stalled for %.3g s at %llu of "
					 "%llu bytes", win, (unsigned long long)j->bytes,
					 (unsigned long long)j->size);
			else
				snprintf(why, sizeof(why), "transfer too slow: %llu bytes in the "
					 "last %.3g s (under %u bytes/s)", (unsigned long long)got,
					 win, f->lim.low_speed);
			if (!retry_small_blocks(f, j, NULL))
				fail(f, j, got == 0 && j->bytes == 0 && !j->size ? -EHOSTUNREACH
										 : -ETIMEDOUT, why);
			continue;
		}
		j->mark = j->bytes;
		j->t_check = now + (int64_t)f->lim.stall_timeout_ms * 1000000;
	}
}

void pfs_fetch_on_fd(struct pfs_fetch *f, int fd, uint32_t events)
{
	int running, mask = (events & EPOLLIN ? CURL_CSELECT_IN : 0) |
			    (events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
			    (events & EPOLLERR ? CURL_CSELECT_ERR : 0);

	if (!f->multi)
		return;                 /* not libcurl's: it has no sockets yet */
	pfs_curl.multi_socket_action(f->multi, fd, mask, &running);
	collect(f);
}

int64_t pfs_fetch_deadline(const struct pfs_fetch *f)
{
	int64_t t = f->deadline;
	int i;

	FOR_EACH_JOB(f->running, i) {
		const struct fetch_job *j = &f->jobs[i];
		if (!j->easy)
			continue;
		if (t < 0 || j->t_check < t)
			t = j->t_check;
		if (j->deadline && j->deadline < t)
			t = j->deadline;
	}
	return t;
}

void pfs_fetch_on_timeout(struct pfs_fetch *f)
{
	int64_t now = now_ns();
	int running;

	if (f->deadline >= 0 && now >= f->deadline) {
		f->deadline = -1;
		pfs_curl.multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		collect(f);
	}
	check_limits(f, now_ns());
}

int pfs_membuf_append(struct pfs_membuf *b, const void *data, size_t n, size_t max)
{
	if (b->len + n > max)
		return -EFBIG;
	if (b->len + n > b->cap) {
		size_t ncap = b->cap ? b->cap : 64 * 1024;
		uint8_t *np;
		while (ncap < b->len + n)
			ncap *= 2;
		if (!(np = realloc(b->p, ncap)))
			return -ENOMEM;
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

void pfs_membuf_free(struct pfs_membuf *b)
{
	free(b->p);
	*b = (struct pfs_membuf){ 0 };
}
