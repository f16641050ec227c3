/* pfs_fetch.c - TFTP fetches with libcurl's multi interface (see pfs_fetch.h).
 *
 * libcurl 7.88 fails an empty file from tftpd-hpa with "illegal TFTP
 * operation" when it negotiates options (blksize, tsize); an empty transfer
 * that fails that way is retried once without options, which works.
 */
#include "pfs_fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#define TFTP_BLKSIZE 1468       /* largest block in a 1500-byte MTU */

struct fetch_job {
	struct pfs_fetch *owner;
	int id;
	CURL *easy;
	EVP_MD_CTX *sha;
	bool no_options;                /* retrying without TFTP options */
	int write_err;
	uint64_t bytes, reported;
	char url[4600];
	char err[CURL_ERROR_SIZE];
};

struct pfs_fetch {
	int epfd;
	CURLM *multi;
	const struct pfs_fetch_ops *ops;
	void *ctx;
	int64_t deadline;
	uint64_t total;
	struct fetch_job jobs[PFS_FETCH_MAX];
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
	struct fetch_job *j = userp;
	size_t len = size * nmemb;
	int rc = j->owner->ops->write(j->owner->ctx, j->id, j->bytes, data, len);

	if (rc < 0) {
		j->write_err = rc;
		return 0;               /* makes curl fail with CURLE_WRITE_ERROR */
	}
	EVP_DigestUpdate(j->sha, data, len);
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
	struct pfs_fetch *f;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		goto err_global;
	f->multi = curl_multi_init();
	if (!f->multi)
		goto err_free;
	f->epfd = epfd;
	f->ops = ops;
	f->ctx = ctx;
	f->deadline = -1;
	for (int i = 0; i < PFS_FETCH_MAX; i++) {
		f->jobs[i].owner = f;
		f->jobs[i].id = i;
	}
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
	return f;
err_free:
	free(f);
err_global:
	curl_global_cleanup();
	return NULL;
}

static void end(struct pfs_fetch *f, struct fetch_job *j)
{
	if (!j->easy)
		return;
	curl_multi_remove_handle(f->multi, j->easy);
	curl_easy_cleanup(j->easy);
	j->easy = NULL;
}

void pfs_fetch_free(struct pfs_fetch *f)
{
	if (!f)
		return;
	for (int i = 0; i < PFS_FETCH_MAX; i++) {
		end(f, &f->jobs[i]);
		EVP_MD_CTX_free(f->jobs[i].sha);
	}
	curl_multi_cleanup(f->multi);
	free(f);
	curl_global_cleanup();
}

static int begin(struct pfs_fetch *f, struct fetch_job *j)
{
	j->easy = curl_easy_init();
	if (!j->easy)
		return -ENOMEM;
	if (!j->sha && !(j->sha = EVP_MD_CTX_new()))
		goto err_easy;
	EVP_DigestInit_ex(j->sha, EVP_sha256(), NULL);
	j->bytes = j->reported = 0;
	j->write_err = 0;
	j->err[0] = '\0';
	curl_easy_setopt(j->easy, CURLOPT_URL, j->url);
	curl_easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(j->easy, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(j->easy, CURLOPT_PRIVATE, (char *)j);
	curl_easy_setopt(j->easy, CURLOPT_ERRORBUFFER, j->err);
	curl_easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(j->easy, CURLOPT_CONNECTTIMEOUT, 10L);
	if (j->no_options)
		curl_easy_setopt(j->easy, CURLOPT_TFTP_NO_OPTIONS, 1L);
	else
		curl_easy_setopt(j->easy, CURLOPT_TFTP_BLKSIZE, (long)TFTP_BLKSIZE);
	if (curl_multi_add_handle(f->multi, j->easy) != CURLM_OK)
		goto err_easy;
	return 0;
err_easy:
	curl_easy_cleanup(j->easy);
	j->easy = NULL;
	return -ENOMEM;
}

int pfs_fetch_start(struct pfs_fetch *f, int id, const char *server, const char *path)
{
	struct fetch_job *j;

	if (id < 0 || id >= PFS_FETCH_MAX)
		return -EINVAL;
	j = &f->jobs[id];
	end(f, j);
	while (*path == '/')
		path++;
	if (snprintf(j->url, sizeof(j->url), "tftp://%s/%s", server, path) >= (int)sizeof(j->url))
		return -ENAMETOOLONG;
	j->no_options = false;
	return begin(f, j);
}

void pfs_fetch_abort(struct pfs_fetch *f, int id)
{
	if (id >= 0 && id < PFS_FETCH_MAX)
		end(f, &f->jobs[id]);
}

bool pfs_fetch_active(const struct pfs_fetch *f, int id)
{
	return id >= 0 && id < PFS_FETCH_MAX && f->jobs[id].easy;
}

uint64_t pfs_fetch_total_bytes(const struct pfs_fetch *f)
{
	return f->total;
}

/* Report progress and finished transfers. Callbacks may start or abort
 * fetches, so each job is finished before its callback runs. */
static void collect(struct pfs_fetch *f)
{
	CURLMsg *msg;
	int left;

	for (int i = 0; i < PFS_FETCH_MAX; i++) {
		struct fetch_job *j = &f->jobs[i];
		if (j->easy && j->bytes > j->reported) {
			j->reported = j->bytes;
			f->ops->progress(f->ctx, i, j->bytes);
		}
	}
	while ((msg = curl_multi_info_read(f->multi, &left))) {
		struct fetch_job *j;
		char *priv, why[CURL_ERROR_SIZE + 64];
		CURLcode res = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		j = (struct fetch_job *)priv;
		end(f, j);
		if (res == CURLE_TFTP_ILLEGAL && j->bytes == 0 && !j->no_options) {
			j->no_options = true;   /* the empty-file quirk, see above */
			if (begin(f, j) == 0)
				continue;
		}
		if (res == CURLE_OK) {
			uint8_t sha[32];
			EVP_DigestFinal_ex(j->sha, sha, NULL);
			if (j->bytes > j->reported)
				f->ops->progress(f->ctx, j->id, j->bytes);
			f->ops->done(f->ctx, j->id, j->bytes, sha);
			continue;
		}
		if (j->write_err == -EBADMSG)
			snprintf(why, sizeof(why), "the server's bytes do not match the signed "
				 "manifest");
		else if (j->write_err)
			snprintf(why, sizeof(why), "cannot store: %s", strerror(-j->write_err));
		else
			snprintf(why, sizeof(why), "%s", j->err[0] ? j->err : curl_easy_strerror(res));
		f->ops->failed(f->ctx, j->id, res == CURLE_TFTP_NOTFOUND ? -ENOENT : -EIO, why);
	}
}

void pfs_fetch_on_fd(struct pfs_fetch *f, int fd, uint32_t events)
{
	int running, mask = (events & EPOLLIN ? CURL_CSELECT_IN : 0) |
			    (events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
			    (events & EPOLLERR ? CURL_CSELECT_ERR : 0);

	curl_multi_socket_action(f->multi, fd, mask, &running);
	collect(f);
}

int64_t pfs_fetch_deadline(const struct pfs_fetch *f)
{
	return f->deadline;
}

void pfs_fetch_on_timeout(struct pfs_fetch *f)
{
	int running;

	f->deadline = -1;
	curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	collect(f);
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
