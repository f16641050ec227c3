/* store.c - a wanted file on disk: written to a temporary name as chunks
 * arrive, verified, and renamed into place only once it is, so a
 * half-received file is never presented as complete. Reads serve children
 * straight from the same file: memory does not grow with file size.
 *
 * A signed file is verified chunk by chunk: each was checked against the
 * signed manifest before it was written, and the engine finishes the file
 * with the last (docs/protocol.md 6.6). An unsigned one is verified by its
 * SHA-256, which runs as the file is written: bytes written in order go into a
 * running SHA-256 (common/prefix_hash.h), and only what came out of order
 * is read back at the end, a slice of at most 2 ms per turn of the event
 * loop, so heartbeats keep going while a large file's digest completes.
 * Hashing a whole file only once it is complete put every device of a site
 * to hashing in the same instant (64 devices on two cores: 0.1-0.3 s each
 * between the last chunk and the verified file, bench/RESULTS.md 3), and
 * held the loop for seconds on a file of hundreds of MB.
 *
 * Writes go through a wcbuf (wcbuf.h): runs of chunks reach the file in one
 * pwrite, not one each.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "peer.h"
#include "pfs_log.h"

/* mkdir -p for the directories of path (not its last component). */
static int make_parents(char *path)
{
	for (char *s = path + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		int rc = mkdir(path, 0755);
		*s = '/';
		if (rc < 0 && errno != EEXIST)
			return -errno;
	}
	return 0;
}

int peer_store_open(struct peer *p, int hidx, const char *path)
{
	struct peer_file *f = &p->files[hidx];
	const char *rel = path, *base;
	int n;

	while (*rel == '/')
		rel++;                  /* TFTP paths map under --out */
	base = strrchr(rel, '/');
	base = base ? base + 1 : rel;
	n = snprintf(f->final_path, sizeof(f->final_path), "%s/%s", p->a.out, rel);
	if (n < 0 || (size_t)n >= sizeof(f->final_path))
		return -ENAMETOOLONG;
	/* DIR/sub/.name.part beside DIR/sub/name, so rename() is atomic. */
	size_t dirlen = strlen(f->final_path) - strlen(base);
	if (dirlen + 1 + strlen(base) + 5 >= sizeof(f->temp_path))
		return -ENAMETOOLONG;
	char name[PFS_FILEPATH_MAX + 1];
	snprintf(name, sizeof(name), "%s", base);
	memcpy(f->temp_path, f->final_path, dirlen);
	snprintf(f->temp_path + dirlen, sizeof(f->temp_path) - dirlen, ".%s.part", name);
	if (make_parents(f->final_path) < 0)
		return -errno;
	/* A leftover temp file from an earlier run is not trusted: start empty. */
	f->fd = open(f->temp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (f->fd < 0) {
		int rc = -errno;
		pfs_log(PFS_LOG_ERR, "%s: %s", f->temp_path, strerror(errno));
		return rc;
	}
	return wcbuf_init(&f->wc, WCBUF_BYTES);
}

int peer_store_write(struct peer *p, int hidx, uint64_t off, const void *buf, size_t len)
{
	struct peer_file *f = &p->files[hidx];
	int rc = wcbuf_write(&f->wc, f->fd, off, buf, len);

	if (rc < 0)
		return rc;
	if (pfs_engine_needs_file_hash(p->e, hidx))
		pfs_prefix_hash_written(&f->hash, off, buf, len);
	return 0;
}

/* The words for a storage error: "no space left on DIR", else DIR: cause. */
void peer_store_strerror(struct peer *p, int hidx, int err, char *buf, size_t cap)
{
	const char *path = p->files[hidx].temp_path, *slash = strrchr(path, '/');
	int dirlen = slash ? (int)(slash - path) : 1;

	if (!slash)
		path = ".";
	if (err == -ENOSPC || err == -EDQUOT)
		snprintf(buf, cap, "no space left on %.*s", dirlen, path);
	else
		snprintf(buf, cap, "cannot write in %.*s: %s", dirlen, path, strerror(-err));
}

int peer_store_read(struct peer *p, int hidx, uint64_t off, void *buf, size_t len)
{
	struct peer_file *f = &p->files[hidx];

	return wcbuf_read(&f->wc, f->fd, off, buf, len);
}

static int read_back(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct peer_file *f = ctx;
	int rc = wcbuf_read(&f->wc, f->fd, off, buf, len);

	if (rc == 0)
		f->hash_read_back += len;
	return rc;
}

void peer_store_hash_start(struct peer *p, int hidx, uint64_t size)
{
	struct peer_file *f = &p->files[hidx];

	f->hash_pending = true;
	f->hash_size = size;
}

bool peer_store_hash_step(struct peer *p)
{
	bool pending = false;

	for (int i = 0; i < p->a.nwants; i++) {
		struct peer_file *f = &p->files[i];
		uint8_t sha[32] = { 0 };        /* zeros: a mismatch (could not read it) */
		int64_t left;

		if (!f->hash_pending)
			continue;
		left = pfs_prefix_hash_catch_up(&f->hash, f->hash_size, 0, read_back, f);
		if (left > 0) {
			pending = true;
			continue;
		}
		if (left == 0 && pfs_prefix_hash_final(&f->hash, f->hash_size, sha) < 0)
			memset(sha, 0, sizeof(sha));
		pfs_prefix_hash_reset(&f->hash);        /* a later write starts it over */
		f->hash_pending = false;
		pfs_engine_file_hashed(p->e, (pfs_time_t)peer_now(), i, sha);
		peer_drain(p);
	}
	return pending;
}

int peer_store_publish(struct peer *p, int hidx, uint64_t size)
{
	struct peer_file *f = &p->files[hidx];

	int rc = wcbuf_flush(&f->wc, f->fd);

	if (rc < 0)
		return rc;
	/* fsync is where a delayed allocation on a full disk shows up. */
	if (ftruncate(f->fd, (off_t)size) < 0 || fsync(f->fd) < 0 ||
	    rename(f->temp_path, f->final_path) < 0)
		return -errno;
	f->published = true;            /* the fd stays open to serve children */
	return 0;
}

void peer_store_close_all(struct peer *p)
{
	for (int i = 0; i < p->a.nwants; i++) {
		struct peer_file *f = &p->files[i];
		if (f->fd >= 0) {
			close(f->fd);
			f->fd = -1;
		}
		pfs_prefix_hash_free(&f->hash);
		wcbuf_free(&f->wc);
		/* Never leave a partial file looking like a result. */
		if (!f->published && f->temp_path[0])
			unlink(f->temp_path);
	}
}
