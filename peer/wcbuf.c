/* wcbuf.c - consecutive writes gathered and written as one (wcbuf.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wcbuf.h"

int wcbuf_init(struct wcbuf *w, size_t cap)
{
	*w = (struct wcbuf){ 0 };
	if (!cap)
		return 0;
	w->buf = malloc(cap);
	if (!w->buf)
		return -ENOMEM;
	w->cap = cap;
	return 0;
}

void wcbuf_free(struct wcbuf *w)
{
	free(w->buf);
	*w = (struct wcbuf){ 0 };
}

/* A short write is retried for the rest; one that writes nothing is the
 * disk being full (that is what write(2) means by it), so -ENOSPC, not the
 * -EIO that would hide the cause. */
static int pwrite_all(struct wcbuf *w, int fd, const uint8_t *b, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, b, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENOSPC;
		w->pwrites++;
		b += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int wcbuf_flush(struct wcbuf *w, int fd)
{
	int rc;

	if (!w->len)
		return 0;
	rc = pwrite_all(w, fd, w->buf, w->len, w->off);
	if (rc == 0)
		w->len = 0;
	return rc;
}

int wcbuf_write(struct wcbuf *w, int fd, uint64_t off, const void *buf, size_t len)
{
	int rc;

	if (w->len && (off != w->off + w->len || w->len + len > w->cap)) {
		rc = wcbuf_flush(w, fd);
		if (rc < 0)
			return rc;
	}
	if (len > w->cap)
		return pwrite_all(w, fd, buf, len, off);
	if (!w->len)
		w->off = off;
	memcpy(w->buf + w->len, buf, len);
	w->len += len;
	return 0;
}

/* The file holds every byte but the held ones, which are newer: read the
 * range from the file, then lay what is held over it. No flush: a root
 * reads each chunk back to send it while the server's blocks, which do not
 * start where chunks do, are still being gathered. */
int wcbuf_read(struct wcbuf *w, int fd, uint64_t off, void *buf, size_t len)
{
	uint64_t end = off + len, hold_end = w->off + w->len;
	uint64_t a = off, b = off;      /* the held part of the range: [a, b) */
	ssize_t n;

	if (w->len && off < hold_end && end > w->off) {
		a = off > w->off ? off : w->off;
		b = end < hold_end ? end : hold_end;
		if (a == off && b == end) {
			memcpy(buf, w->buf + (off - w->off), len);
			return 0;
		}
	}
	do
		n = pread(fd, buf, len, (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* The file ends first: the rest is up to what is held, which will
	 * extend the file; between its end and the held bytes lies the hole
	 * their write will leave, zeros. Past what is held: nothing written. */
	if ((size_t)n < len) {
		if (!w->len || end > hold_end)
			return -EIO;
		memset((uint8_t *)buf + n, 0, len - (size_t)n);
	}
	if (b > a)
		memcpy((uint8_t *)buf + (a - off), w->buf + (a - w->off), (size_t)(b - a));
	return 0;
}
