/* wcbuf.h - a file's consecutive writes gathered in memory and written as
 * one: a device stores each 1,408-byte chunk as it arrives, and a pwrite
 * per chunk was a third of pfs-peer's CPU time in a 64-device rollout
 * (the filesystem's per-call work, not the copy). Chunks arrive in order
 * but for repairs, so runs of them go to the file in one call.
 *
 * Reads see every write: the file's bytes with the held ones laid over
 * them. Nothing here is a cache of what is on disk.
 */
#ifndef PFS_WCBUF_H
#define PFS_WCBUF_H

#include <stddef.h>
#include <stdint.h>

/* What one buffer gathers at most (93 chunks of the default size). */
#define WCBUF_BYTES     (128 * 1024)

struct wcbuf {
	uint8_t *buf;           /* NULL: no buffer, every write goes straight out */
	size_t cap;
	uint64_t off;           /* where buf[0] belongs in the file */
	size_t len;             /* bytes held, not yet in the file */
	uint64_t pwrites;       /* calls that wrote to the file */
};

/* A buffer of cap bytes (0: none); -ENOMEM. */
int wcbuf_init(struct wcbuf *w, size_t cap);
void wcbuf_free(struct wcbuf *w);

/* Write buf[len] at off: gathered if it extends what is held, else what is
 * held is written out first. Negative errno of the write that failed
 * (-ENOSPC for a write that wrote nothing); what failed to go out stays
 * held, so reads still see it. */
int wcbuf_write(struct wcbuf *w, int fd, uint64_t off, const void *buf, size_t len);

/* Read len bytes at off as the file would hold them with every write
 * done: 0, or negative errno (-EIO: the file ends before off + len). */
int wcbuf_read(struct wcbuf *w, int fd, uint64_t off, void *buf, size_t len);

/* Write out what is held (before the file is read by other means, sized or
 * renamed). */
int wcbuf_flush(struct wcbuf *w, int fd);

#endif /* PFS_WCBUF_H */
