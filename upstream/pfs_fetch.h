/* pfs_fetch.h - upstream TFTP fetches through libcurl's multi interface,
 * driven by the caller's epoll loop: no thread, never blocks.
 *
 * Shared by pfs-peer (bytes go to a file) and pfs-control (bytes go to the
 * chunk cache): the caller supplies where bytes go, and hears of progress,
 * completion (with the SHA-256 of what arrived) and failure through ops.
 * Fetches are named by a small id of the caller's (its hierarchy index).
 */
#ifndef PFS_FETCH_H
#define PFS_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PFS_FETCH_MAX 64

struct pfs_fetch_ops {
	/* Store len bytes at off (fetches are sequential): 0 or -errno,
	 * which fails the fetch. */
	int (*write)(void *ctx, int id, uint64_t off, const void *data, size_t len);
	void (*progress)(void *ctx, int id, uint64_t bytes);
	void (*done)(void *ctx, int id, uint64_t size, const uint8_t sha256[32]);
	/* err: -ENOENT when the server has no such file, else -EIO. */
	void (*failed)(void *ctx, int id, int err, const char *why);
};

struct pfs_fetch;

/* A fetcher whose sockets are registered in epfd with data.fd = the socket. */
struct pfs_fetch *pfs_fetch_new(int epfd, const struct pfs_fetch_ops *ops, void *ctx);
void pfs_fetch_free(struct pfs_fetch *f);

/* Fetch tftp://server/path (server is HOST or HOST:PORT). */
int pfs_fetch_start(struct pfs_fetch *f, int id, const char *server, const char *path);
void pfs_fetch_abort(struct pfs_fetch *f, int id);
bool pfs_fetch_active(const struct pfs_fetch *f, int id);
/* Bytes the fetches have received, for statistics. */
uint64_t pfs_fetch_total_bytes(const struct pfs_fetch *f);

/* An epoll event on a socket that is not the caller's own. */
void pfs_fetch_on_fd(struct pfs_fetch *f, int fd, uint32_t events);
/* CLOCK_MONOTONIC ns at which pfs_fetch_on_timeout is due, -1 for none. */
int64_t pfs_fetch_deadline(const struct pfs_fetch *f);
void pfs_fetch_on_timeout(struct pfs_fetch *f);

/* A small file fetched into memory (a signed manifest), bounded: both
 * drivers' write callbacks append to one. */
struct pfs_membuf {
	uint8_t *p;
	size_t len, cap;
};
/* Append, doubling the room (each byte copied once, amortised); -EFBIG past
 * max bytes, -ENOMEM. */
int pfs_membuf_append(struct pfs_membuf *b, const void *data, size_t n, size_t max);
void pfs_membuf_free(struct pfs_membuf *b);

#endif /* PFS_FETCH_H */
