/* upstream.c - fetch firmware from the TFTP server with libcurl's multi
 * interface, driven by the peer's epoll loop (no thread, no blocking).
 *
 * Bytes go to the file's temporary name as they arrive and into a running
 * SHA-256; the loop reports progress to the engine, which forwards chunks to
 * the children while the fetch goes on (cut-through from the root).
 *
 * libcurl 7.88 fails an empty file from tftpd-hpa with "illegal TFTP
 * operation" when it negotiates options (blksize, tsize); an empty transfer
 * that fails that way is retried once without options, which works.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "peer.h"

#define TFTP_BLKSIZE 1468       /* largest block in a 1500-byte MTU */

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
	struct peer_file *f = userp;
	size_t len = size * nmemb;

	/* f->fd is the temp file; writes are sequential from offset 0. */
	ssize_t n = pwrite(f->fd, data, len, (off_t)f->up_bytes);
	if (n < 0 || (size_t)n != len)
		return 0;               /* makes curl fail with CURLE_WRITE_ERROR */
	EVP_DigestUpdate(f->sha, data, len);
	f->up_bytes += len;
	return len;
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct peer *p = userp;
	struct epoll_event ev = { .data.fd = s };

	(void)easy; (void)socketp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, s, &ev) < 0 && errno == ENOENT)
		epoll_ctl(p->epfd, EPOLL_CTL_ADD, s, &ev);
	return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct peer *p = userp;

	(void)multi;
	p->curl_deadline = timeout_ms < 0 ? -1 : peer_now() + (int64_t)timeout_ms * 1000000;
	return 0;
}

int peer_upstream_init(struct peer *p)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -EIO;
	p->multi = curl_multi_init();
	if (!p->multi)
		return -ENOMEM;
	curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
	curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
	p->curl_deadline = -1;
	return 0;
}

static int begin(struct peer *p, int hidx, const char *path)
{
	struct peer_file *f = &p->files[hidx];
	char url[4600];

	while (*path == '/')
		path++;
	snprintf(url, sizeof(url), "tftp://%s/%s", p->a.tftp, path);
	f->easy = curl_easy_init();
	if (!f->easy)
		return -ENOMEM;
	if (!f->sha)
		f->sha = EVP_MD_CTX_new();
	if (!f->sha)
		return -ENOMEM;
	EVP_DigestInit_ex(f->sha, EVP_sha256(), NULL);
	f->up_bytes = f->up_reported = 0;
	f->curl_err[0] = '\0';
	curl_easy_setopt(f->easy, CURLOPT_URL, url);
	curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(f->easy, CURLOPT_PRIVATE, (char *)(intptr_t)hidx);
	curl_easy_setopt(f->easy, CURLOPT_ERRORBUFFER, f->curl_err);
	curl_easy_setopt(f->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(f->easy, CURLOPT_CONNECTTIMEOUT, 10L);
	if (f->no_options)
		curl_easy_setopt(f->easy, CURLOPT_TFTP_NO_OPTIONS, 1L);
	else
		curl_easy_setopt(f->easy, CURLOPT_TFTP_BLKSIZE, (long)TFTP_BLKSIZE);
	f->up_started_ns = peer_now();
	if (curl_multi_add_handle(p->multi, f->easy) != CURLM_OK) {
		curl_easy_cleanup(f->easy);
		f->easy = NULL;
		return -EIO;
	}
	return 0;
}

int peer_upstream_start(struct peer *p, int hidx, const char *path)
{
	p->files[hidx].no_options = false;
	peer_log_json_kv(p, "upstream_start", path, "server", p->a.tftp, NULL, 0);
	return begin(p, hidx, path);
}

static void end(struct peer *p, struct peer_file *f)
{
	if (!f->easy)
		return;
	curl_multi_remove_handle(p->multi, f->easy);
	curl_easy_cleanup(f->easy);
	f->easy = NULL;
}

void peer_upstream_abort(struct peer *p, int hidx)
{
	end(p, &p->files[hidx]);
}

/* Report progress and finished transfers to the engine. */
static void collect(struct peer *p)
{
	CURLMsg *msg;
	int left;

	for (int i = 0; i < p->a.nwants; i++) {
		struct peer_file *f = &p->files[i];
		if (f->easy && f->up_bytes > f->up_reported) {
			f->up_reported = f->up_bytes;
			pfs_engine_upstream_data(p->e, (pfs_time_t)peer_now(), i, f->up_bytes);
			peer_drain(p);
		}
	}
	while ((msg = curl_multi_info_read(p->multi, &left))) {
		char *priv;
		int hidx;
		struct peer_file *f;
		CURLcode res = msg->data.result;
		struct pfs_hier_info info;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		hidx = (int)(intptr_t)priv;
		f = &p->files[hidx];
		end(p, f);
		pfs_engine_hier_info(p->e, hidx, &info);
		if (res == CURLE_TFTP_ILLEGAL && f->up_bytes == 0 && !f->no_options) {
			f->no_options = true;   /* the empty-file quirk, see above */
			if (begin(p, hidx, info.path) == 0)
				continue;
		}
		if (res == CURLE_OK) {
			uint8_t sha[32];
			EVP_DigestFinal_ex(f->sha, sha, NULL);
			peer_log_json_kv(p, "upstream_done", info.path, "server", p->a.tftp,
					 "bytes", (long long)f->up_bytes);
			pfs_engine_upstream_data(p->e, (pfs_time_t)peer_now(), hidx, f->up_bytes);
			pfs_engine_upstream_done(p->e, (pfs_time_t)peer_now(), hidx, f->up_bytes, sha);
		} else {
			snprintf(f->fail_reason, sizeof(f->fail_reason), "%s",
				 f->curl_err[0] ? f->curl_err : curl_easy_strerror(res));
			peer_log(p, "ERR", "upstream_error",
				 "cannot fetch tftp://%s/%s: %s", p->a.tftp, info.path, f->fail_reason);
			pfs_engine_upstream_failed(p->e, (pfs_time_t)peer_now(), hidx,
						   res == CURLE_TFTP_NOTFOUND ? -ENOENT : -EIO);
		}
		peer_drain(p);
	}
}

void peer_upstream_on_fd(struct peer *p, int fd, uint32_t events)
{
	int running, mask = (events & EPOLLIN ? CURL_CSELECT_IN : 0) |
			    (events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
			    (events & EPOLLERR ? CURL_CSELECT_ERR : 0);

	curl_multi_socket_action(p->multi, fd, mask, &running);
	collect(p);
}

void peer_upstream_on_timeout(struct peer *p)
{
	int running;

	p->curl_deadline = -1;
	curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	collect(p);
}

void peer_upstream_cleanup(struct peer *p)
{
	for (int i = 0; i < p->a.nwants; i++) {
		end(p, &p->files[i]);
		EVP_MD_CTX_free(p->files[i].sha);
		p->files[i].sha = NULL;
	}
	if (p->multi)
		curl_multi_cleanup(p->multi);
	p->multi = NULL;
	curl_global_cleanup();
}
