/* pfs_fetch.h - upstream TFTP and HTTP(S) fetches through libcurl's multi
 * interface, driven by the caller's epoll loop: no thread, never blocks.
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
	 * which fails the fetch with that errno. */
	int (*write)(void *ctx, int id, uint64_t off, const void *data, size_t len);
	void (*progress)(void *ctx, int id, uint64_t bytes);
	void (*done)(void *ctx, int id, uint64_t size, const uint8_t sha256[32]);
	/* err says what kind of failure it was (pfs_fetch_strerror words it),
	 * why says it in full for a log line:
	 *   -ENOENT        the server has no such file
	 *   -EACCES        the server refused access to it
	 *   -EHOSTUNREACH  no answer to the request within connect_timeout
	 *   -ETIMEDOUT     stalled, too slow, or past the deadline
	 *   -ECONNRESET    the server cut the transfer short
	 *   -EKEYREJECTED  the server's TLS certificate is not trusted (HTTPS)
	 *   -EPROTO        another error from the server or the transfer
	 *   other          what the write callback returned */
	void (*failed)(void *ctx, int id, int err, const char *why);
	/* Optional (NULL: none): something the caller's log should say about
	 * a fetch that goes on, such as a retry with smaller TFTP blocks. */
	void (*note)(void *ctx, int id, const char *what);
};

/* TFTP's block size (RFC 2348). The default fills a 1500-byte frame and
 * no more: a larger one is sent as IP fragments, which some paths drop. */
#define PFS_TFTP_BLKSIZE_DEFAULT 1468
#define PFS_TFTP_BLKSIZE_MIN     8
#define PFS_TFTP_BLKSIZE_MAX     65464

/* Bounds on every fetch (issue "faults", docs/protocol.md 6.5): a fetch
 * that breaks one is aborted and reported, never left hanging. */
struct pfs_fetch_limits {
	uint32_t connect_timeout_ms;    /* no answer to the request: 5 s */
	uint32_t stall_timeout_ms;      /* the low-speed window: 10 s */
	uint32_t low_speed;             /* bytes/s a window must average: 1000 */
	uint32_t min_rate;              /* deadline = connect + size / min_rate: 8192 B/s */
	/* The local ports a fetch may use, [port_lo, port_lo + port_count); 0:
	 * the kernel's ephemeral range. pfs-control pins them: on the appliance
	 * nothing in the kernel holds UDP 4051 (the dataplane does, through
	 * XDP), so an ephemeral 4051 would have the replies steered away. */
	uint16_t port_lo, port_count;
	/* TFTP: the block size asked for, PFS_TFTP_BLKSIZE_*. One block goes
	 * per round trip: 1468-byte blocks over a 20 ms WAN are 117 s for 8
	 * MiB, 65464-byte ones 4.5 s (bench/RESULTS.md 3.7). A fetch that got
	 * no byte with blocks above the default is tried again at once with the
	 * default (a path that drops fragments), and says so through ops->note;
	 * once that brought data, later fetches ask for the default at once,
	 * until the limits are set again. */
	uint32_t tftp_blksize;
};

void pfs_fetch_limits_default(struct pfs_fetch_limits *l);
/* The kind of failure in words: "file not found on the server", ... */
const char *pfs_fetch_strerror(int err);

struct pfs_fetch;

/* A fetcher whose sockets are registered in epfd with data.fd = the socket.
 * NULL: out of memory. libcurl is not loaded yet (curl_dl.h). */
struct pfs_fetch *pfs_fetch_new(int epfd, const struct pfs_fetch_ops *ops, void *ctx);
void pfs_fetch_free(struct pfs_fetch *f);
/* Load libcurl now rather than at the first fetch (a daemon says at start
 * that it cannot fetch): 0, -ELIBACC (pfs_fetch_strerror says why) or
 * -ENOMEM. */
int pfs_fetch_load(struct pfs_fetch *f);
/* HTTPS: the CA certificates (a PEM file) a server's certificate must chain
 * to, instead of the system's store (NULL: the system's). Verification is
 * never off. 0 or -ENOMEM. */
int pfs_fetch_set_ca_file(struct pfs_fetch *f, const char *path);
/* Limits for fetches started from now on. */
void pfs_fetch_set_limits(struct pfs_fetch *f, const struct pfs_fetch_limits *l);
/* The TFTP block size fetches ask for now: the limits', or the default once
 * a fallback showed that larger blocks do not get through. */
uint32_t pfs_fetch_tftp_blksize(const struct pfs_fetch *f);

/* An upstream server: HOST or HOST:PORT (TFTP), or a URL tftp://HOST[:PORT],
 * http://HOST[:PORT][/BASE] or https://... */
bool pfs_fetch_server_ok(const char *server);
/* The URL of path on server, as fetched and as logged: its length, or
 * -EINVAL (not a server), -ENAMETOOLONG. */
int pfs_fetch_url(const char *server, const char *path, char *buf, size_t cap);
/* Fetch path from server (see above). */
int pfs_fetch_start(struct pfs_fetch *f, int id, const char *server, const char *path);
/* Go on with id's last fetch where it stopped, when it failed part-way over
 * HTTP (*from: the offset it resumes at; writes go on from there). 0, or
 * -EAGAIN: nothing to resume, call pfs_fetch_start. */
int pfs_fetch_resume(struct pfs_fetch *f, int id, uint64_t *from);
/* Whether pfs_fetch_resume(id) would go on (the caller keeps what came). */
bool pfs_fetch_resumable(const struct pfs_fetch *f, int id);
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
