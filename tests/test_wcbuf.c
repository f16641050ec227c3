/* test_wcbuf.c - pfs-peer's gathered writes (peer/wcbuf.c): what the file
 * and every read show is what plain pwrites would have left, runs of
 * chunks leave in one call, and a full disk is reported, not lost. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wcbuf.h"

#define FILE_BYTES      (1 << 20)
#define CHUNK           1408

static int tmpfile_fd(void)
{
	char path[] = "/tmp/test_wcbuf.XXXXXX";
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	unlink(path);
	return fd;
}

static void fill(uint8_t *b, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static void assert_file_is(int fd, const uint8_t *want, size_t len)
{
	uint8_t *got = malloc(len);

	cr_assert_eq(pread(fd, got, len, 0), (ssize_t)len);
	cr_assert(memcmp(got, want, len) == 0, "the file differs from the writes");
	free(got);
}

/* A file's chunks in order: one pwrite per buffer's worth, not per chunk. */
Test(wcbuf, chunks_in_order_leave_in_few_writes)
{
	static uint8_t want[FILE_BYTES];
	struct wcbuf w;
	int fd = tmpfile_fd();
	unsigned chunks = 0;

	fill(want, sizeof(want), 1);
	cr_assert_eq(wcbuf_init(&w, WCBUF_BYTES), 0);
	for (size_t off = 0; off < sizeof(want); off += CHUNK, chunks++) {
		size_t len = sizeof(want) - off < CHUNK ? sizeof(want) - off : CHUNK;
		cr_assert_eq(wcbuf_write(&w, fd, off, want + off, len), 0);
	}
	cr_assert_eq(wcbuf_flush(&w, fd), 0);
	assert_file_is(fd, want, sizeof(want));
	cr_assert_leq(w.pwrites, sizeof(want) / (WCBUF_BYTES - CHUNK) + 1,
		      "%llu pwrites for %u chunks", (unsigned long long)w.pwrites, chunks);
	wcbuf_free(&w);
	close(fd);
}

/* Chunks out of order, repeated, overlapping, larger than the buffer, and
 * reads of every kind in between (inside what is held, across its edge,
 * past it): each read and the file at the end agree with a model that
 * applies every write at once. */
Test(wcbuf, random_writes_and_reads_agree_with_the_model)
{
	static uint8_t model[FILE_BYTES], src[FILE_BYTES], got[3 * WCBUF_BYTES];
	size_t model_len = 0;
	struct wcbuf w;
	int fd = tmpfile_fd();

	srand(7);
	cr_assert_eq(wcbuf_init(&w, WCBUF_BYTES), 0);
	for (int step = 0; step < 20000; step++) {
		int kind = rand() % 10;
		size_t off, len;

		if (kind < 6) {                 /* mostly the next chunk, sometimes a jump */
			off = rand() % 8 ? w.off + w.len : (size_t)rand() % (FILE_BYTES - CHUNK);
			if (off + CHUNK > FILE_BYTES)
				off = 0;
			len = 1 + (size_t)rand() % CHUNK;
		} else if (kind < 7) {          /* a large write (a server's block) */
			len = 1 + (size_t)rand() % (2 * WCBUF_BYTES);
			off = (size_t)rand() % (FILE_BYTES - len);
		} else {                        /* a read somewhere written */
			if (!model_len)
				continue;
			len = 1 + (size_t)rand() % (rand() % 4 ? CHUNK : sizeof(got) - 1);
			if (len > model_len)
				len = model_len;
			off = (size_t)rand() % (model_len - len + 1);
			if (rand() % 2 && w.len) {      /* aimed at the held bytes' edges */
				size_t edge = w.off + (rand() % 2 ? 0 : w.len);
				off = edge > len / 2 ? edge - len / 2 : 0;
				if (off + len > model_len)
					off = model_len - len;
			}
			cr_assert_eq(wcbuf_read(&w, fd, off, got, len), 0,
				     "step %d: read %zu at %zu", step, len, off);
			cr_assert(memcmp(got, model + off, len) == 0,
				  "step %d: read %zu at %zu (held %zu at %llu) differs", step, len,
				  off, w.len, (unsigned long long)w.off);
			continue;
		}
		fill(src, len, (unsigned)step);
		cr_assert_eq(wcbuf_write(&w, fd, off, src, len), 0);
		memcpy(model + off, src, len);
		if (off + len > model_len)
			model_len = off + len;
	}
	cr_assert_eq(wcbuf_flush(&w, fd), 0);
	assert_file_is(fd, model, model_len);
	wcbuf_free(&w);
	close(fd);
}

/* Held bytes past the end of the file, a hole before them: a read in or
 * across it gets the zeros the write will leave, as plain pwrites would
 * have; a read past everything written is an error. */
Test(wcbuf, a_hole_before_held_bytes_reads_as_zeros)
{
	uint8_t b[CHUNK], got[11 * CHUNK], want[11 * CHUNK] = { 0 };
	struct wcbuf w;
	int fd = tmpfile_fd();

	fill(b, sizeof(b), 5);
	cr_assert_eq(wcbuf_init(&w, WCBUF_BYTES), 0);
	cr_assert_eq(wcbuf_write(&w, fd, 0, b, sizeof(b)), 0);
	cr_assert_eq(wcbuf_flush(&w, fd), 0);                          /* file: 1 chunk */
	cr_assert_eq(wcbuf_write(&w, fd, 10 * CHUNK, b, sizeof(b)), 0);        /* held */
	memcpy(want, b, CHUNK);
	memcpy(want + 10 * CHUNK, b, CHUNK);
	memset(got, 0xaa, sizeof(got));
	cr_assert_eq(wcbuf_read(&w, fd, 0, got, sizeof(got)), 0);
	cr_assert(memcmp(got, want, sizeof(got)) == 0);
	memset(got, 0xaa, sizeof(got));
	cr_assert_eq(wcbuf_read(&w, fd, 5 * CHUNK, got, 6 * CHUNK), 0);
	cr_assert(memcmp(got, want + 5 * CHUNK, 6 * CHUNK) == 0);
	cr_assert_eq(wcbuf_read(&w, fd, 2 * CHUNK, got, CHUNK), 0);    /* all hole */
	cr_assert(memcmp(got, want + 2 * CHUNK, CHUNK) == 0);
	cr_assert_eq(wcbuf_read(&w, fd, 5 * CHUNK, got, 6 * CHUNK + 1), -EIO);
	cr_assert_eq(wcbuf_flush(&w, fd), 0);
	assert_file_is(fd, want, sizeof(want));
	wcbuf_free(&w);
	close(fd);
}

/* No buffer: every write goes straight to the file. */
Test(wcbuf, without_a_buffer_writes_go_straight_out)
{
	uint8_t b[CHUNK];
	struct wcbuf w;
	int fd = tmpfile_fd();

	fill(b, sizeof(b), 3);
	cr_assert_eq(wcbuf_init(&w, 0), 0);
	cr_assert_eq(wcbuf_write(&w, fd, 0, b, sizeof(b)), 0);
	cr_assert_eq(w.pwrites, 1);
	assert_file_is(fd, b, sizeof(b));
	wcbuf_free(&w);
	close(fd);
}

/* A full disk: the write that reaches it says ENOSPC, the bytes it could
 * not write stay held (a read still sees them), and a flush says it again. */
Test(wcbuf, a_full_disk_is_reported_and_nothing_read_is_lost)
{
	uint8_t b[CHUNK], got[CHUNK];
	struct wcbuf w;
	int fd = open("/dev/full", O_RDWR);

	cr_assert(fd >= 0);
	fill(b, sizeof(b), 4);
	cr_assert_eq(wcbuf_init(&w, WCBUF_BYTES), 0);
	cr_assert_eq(wcbuf_write(&w, fd, 0, b, sizeof(b)), 0);         /* held */
	cr_assert_eq(wcbuf_write(&w, fd, 10 * CHUNK, b, sizeof(b)), -ENOSPC);
	cr_assert_eq(wcbuf_read(&w, fd, 0, got, sizeof(got)), 0);
	cr_assert(memcmp(got, b, sizeof(b)) == 0);
	cr_assert_eq(wcbuf_flush(&w, fd), -ENOSPC);
	cr_assert_eq(wcbuf_write(&w, fd, 0, b, sizeof(b)), -ENOSPC);     /* not a run: flushes */
	wcbuf_free(&w);
	close(fd);
}
