/* test_cache.c - the chunk cache: layout, chunk addressing, eviction. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_cache.h"

#define EXT PFS_CACHE_EXTENT

static void *region;
static uint64_t region_bytes;

/* A region with room for about n extents. */
static void make_region(unsigned n)
{
	region_bytes = (uint64_t)(n + 1) * EXT + 2 * 1024 * 1024;
	region = calloc(1, region_bytes);
	cr_assert_not_null(region);
}

static void fini(void)
{
	free(region);
	region = NULL;
}

TestSuite(cache, .fini = fini);

static void pattern(uint8_t *buf, size_t len, uint64_t off, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)((off + i) * 7 + seed);
}

/* Fill a file of size bytes in uneven pieces, as a TFTP fetch does. */
static int fill(struct pfs_cache *c, int fi, uint64_t size, uint8_t seed)
{
	static uint8_t buf[3000];
	uint64_t off = 0;
	int rc;

	while (off < size) {
		size_t n = size - off < 1468 ? (size_t)(size - off) : 1468;
		pattern(buf, n, off, seed);
		if ((rc = pfs_cache_write(c, fi, off, buf, n)) < 0)
			return rc;
		off += n;
	}
	return 0;
}

static const uint8_t sha0[32];

Test(cache, reader_waits_for_the_writer_to_format)
{
	struct pfs_cache *r, *w;

	make_region(4);
	cr_assert_eq(pfs_cache_open(region, region_bytes, 0, false, &r), -ENODATA);
	cr_assert(pfs_cache_relayout_needed(region, region_bytes, 0), "nothing laid out yet");
	cr_assert_eq(pfs_cache_open(region, region_bytes, 0, true, &w), 0);
	cr_assert_not(pfs_cache_relayout_needed(region, region_bytes, 0));
	cr_assert_eq(pfs_cache_open(region, region_bytes, 0, false, &r), 0);
	pfs_cache_close(r);
	pfs_cache_close(w);
}

Test(cache, chunks_are_contiguous_and_read_back)
{
	struct pfs_cache *c;
	uint8_t want[1408];
	uint64_t size = 3 * EXT + 12345;        /* several extents */
	uint32_t len, n;
	int fi;

	make_region(8);
	cr_assert_eq(pfs_cache_open(region, region_bytes, 0, true, &c), 0);
	fi = pfs_cache_create(c, 0x1122, "cp-8845", "fw/a.bin", 1408);
	cr_assert_geq(fi, 0);
	cr_assert_eq(fill(c, fi, size, 3), 0);
	cr_assert_eq(atomic_load(&pfs_cache_file(c, fi)->stored), size);
	cr_assert_eq(pfs_cache_complete(c, fi, size, sha0), 0);
	n = (uint32_t)((size + 1407) / 1408);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *p = pfs_cache_chunk(c, fi, i, &len);
		uint32_t wl = i == n - 1 ? (uint32_t)(size - (uint64_t)i * 1408) : 1408;
		cr_assert_not_null(p, "chunk %u", i);
		cr_assert_eq(len, wl, "chunk %u length", i);
		pattern(want, wl, (uint64_t)i * 1408, 3);
		cr_assert_eq(memcmp(p, want, wl), 0, "chunk %u content", i);
	}
	cr_assert_null(pfs_cache_chunk(c, fi, n, &len));
	cr_assert_eq(pfs_cache_find(c, "cp-8845", "fw/a.bin"), fi);
	cr_assert_eq(pfs_cache_find_hier(c, 0x1122), fi);
	cr_assert_eq(pfs_cache_find(c, "cp-7841", "fw/a.bin"), -ENOENT);
	pfs_cache_close(c);
}

Test(cache, complete_files_survive_a_reopen_partial_ones_are_dropped)
{
	struct pfs_cache *c;
	int a, b;

	make_region(4);
	cr_assert_eq(pfs_cache_open(region, region_bytes, 0, true, &c), 0);
	a = pfs_cache_create(c, 1, "m", "done.bin", 1408);
	cr_assert_eq(fill(c, a, 5000, 1), 0);
	cr_assert_eq(pfs_cache_complete(c, a, 5000, sha0), 0);
	b = pfs_cache_create(c, 2, "m", "half.bin", 1408);
	cr_assert_eq(fill(c, b, 3000, 2), 0);
	pfs_cache_close(c);                     /* the control process restarts */
	cr_assert_eq(pfs_cache_open(region, region_bytes, 0, true, &c), 0);
	cr_assert_eq(pfs_cache_drop_partial(c), 1);
	cr_assert_eq(pfs_cache_find(c, "m", "done.bin"), a);
	cr_assert_eq(pfs_cache_find(c, "m", "half.bin"), -ENOENT);
	uint8_t got[5000], want[5000];
	pattern(want, sizeof(want), 0, 1);
	cr_assert_eq(pfs_cache_read(c, a, 0, got, sizeof(got)), 0);
	cr_assert_eq(memcmp(got, want, sizeof(got)), 0);
	pfs_cache_close(c);
}

static void no_free(void *addr, void *opaque)
{
	(void)addr; (void)opaque;
}

Test(cache, least_recently_used_is_evicted_never_pinned_or_held)
{
	struct pfs_cache *c, *dp;
	struct pfs_cache_stats st;
	int f[16];

	make_region(4);
	cr_assert_eq(pfs_cache_open(region, region_bytes, 0, true, &c), 0);
	cr_assert_eq(pfs_cache_open(region, region_bytes, 0, false, &dp), 0);
	pfs_cache_refs_init(dp, (void *)(uintptr_t)no_free, false);
	pfs_cache_stats(c, &st);
	cr_assert(st.extents >= 4 && st.extents <= 16, "%u extents", st.extents);
	/* One extent per file: fill the cache. */
	for (unsigned i = 0; i < st.extents; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%u", i);
		f[i] = pfs_cache_create(c, i + 1, "m", name, 1408);
		cr_assert_eq(fill(c, f[i], 1000, (uint8_t)i), 0);
		cr_assert_eq(pfs_cache_complete(c, f[i], 1000, sha0), 0);
	}
	pfs_cache_touch(c, f[0]);               /* f1 is now the oldest */
	pfs_cache_pin(c, f[1], true);           /* ... but pinned: f2 goes */
	int n = pfs_cache_create(c, 99, "m", "new", 1408);
	cr_assert_eq(fill(c, n, 1000, 9), 0);
	cr_assert_eq(pfs_cache_find(c, "m", "f1"), f[1]);
	cr_assert_eq(pfs_cache_find(c, "m", "f2"), -ENOENT);
	pfs_cache_stats(c, &st);
	cr_assert_eq(st.evictions, 1);
	/* Everything else pinned or held by the dataplane: no room. */
	pfs_cache_pin(c, f[0], true);
	for (unsigned i = 3; i < st.extents; i++)
		cr_assert(pfs_cache_hold(dp, f[i], pfs_cache_file(dp, f[i])->gen, 1));
	cr_assert_eq(pfs_cache_complete(c, n, 1000, sha0), 0);
	pfs_cache_pin(c, n, true);
	int m = pfs_cache_create(c, 100, "m", "more", 1408);
	cr_assert_geq(m, 0);
	cr_assert_eq(fill(c, m, 1000, 1), -ENOSPC);
	/* An operator's evict takes every idle complete file. */
	pfs_cache_pin(c, f[0], false);
	cr_assert_eq(pfs_cache_evict_idle(c), 1);
	cr_assert_eq(fill(c, m, 1000, 1), 0);
	pfs_cache_close(dp);
	pfs_cache_close(c);
}

Test(cache, bad_requests_are_refused)
{
	struct pfs_cache *c, *r;
	int fi;

	make_region(4);
	cr_assert_eq(pfs_cache_open(region, 1000, 0, true, &c), -EINVAL);
	cr_assert_eq(pfs_cache_open(region, region_bytes, 0, true, &c), 0);
	cr_assert_eq(pfs_cache_create(c, 1, "m", "x", 0), -EINVAL);
	cr_assert_eq(pfs_cache_create(c, 1, "m", "x", EXT + 1), -EINVAL);
	fi = pfs_cache_create(c, 1, "m", "x", 1408);
	cr_assert_eq(pfs_cache_write(c, fi, (uint64_t)PFS_CACHE_FILE_EXTENTS * EXT, "a", 1),
		     -EFBIG);
	cr_assert_eq(pfs_cache_complete(c, fi, 5000, sha0), -ENODATA);
	cr_assert_eq(pfs_cache_open(region, region_bytes, 0, false, &r), 0);
	cr_assert_eq(pfs_cache_create(r, 2, "m", "y", 1408), -EPERM);
	cr_assert_eq(pfs_cache_write(r, fi, 0, "a", 1), -EINVAL);
	pfs_cache_close(r);
	pfs_cache_close(c);
}

/* Local fan-out: control reserves room, the dataplane (a reader) finds each
 * chunk's address there and writes it; nothing is allocated past what was
 * reserved, and a complete file takes no reservation. */
/* A region of 8 extents opened by a writer (control) and a reader
 * (dataplane), and a file of 1408-byte chunks in it. */
static int writer_reader_file(struct pfs_cache **w, struct pfs_cache **r, uint64_t hier,
			      const char *path)
{
	int fi;

	make_region(8);
	cr_assert_eq(pfs_cache_open(region, region_bytes, 0, true, w), 0);
	cr_assert_eq(pfs_cache_open(region, region_bytes, 0, false, r), 0);
	fi = pfs_cache_create(*w, hier, "CP-7961G", path, 1408);
	cr_assert_geq(fi, 0);
	return fi;
}

Test(cache, reserved_room_is_addressable_by_the_reader)
{
	struct pfs_cache *w, *r;
	uint32_t len;
	int fi;

	fi = writer_reader_file(&w, &r, 42, "fw/a.bin");
	cr_assert_null(pfs_cache_chunk(r, fi, 0, &len), "room before any reservation");
	cr_assert_eq(pfs_cache_reserve(w, fi, 3 * EXT / 2), 0);
	uint64_t got = pfs_cache_reserved(r, fi);
	cr_assert_geq(got, 3 * EXT / 2);
	cr_assert_lt(got, 3 * EXT, "reserved %llu: more than the extents asked", (unsigned long long)got);
	uint32_t last = (uint32_t)(got / 1408) - 1;
	uint8_t *p = (uint8_t *)(uintptr_t)pfs_cache_chunk(r, fi, last, &len);
	cr_assert_not_null(p);
	cr_assert_eq(len, 1408);
	memset(p, 0xab, len);           /* the dataplane's store */
	cr_assert_null(pfs_cache_chunk(r, fi, last + 1, &len), "beyond the reservation");
	uint8_t back[1408];
	cr_assert_eq(pfs_cache_write(w, fi, 0, back, 0), 0);
	cr_assert_eq(pfs_cache_reserve(w, fi, (uint64_t)PFS_CACHE_FILE_EXTENTS * EXT * 2), -EFBIG);
	cr_assert_eq(pfs_cache_reserve(r, fi, EXT), -EINVAL, "a reader reserved");
	cr_assert_eq(pfs_cache_complete(w, fi, 1408, sha0), 0);
	cr_assert_eq(pfs_cache_reserve(w, fi, 2 * EXT), -EINVAL, "reserved in a complete file");
	cr_assert_eq(pfs_cache_read(w, fi, 0, back, 1), 0);
	pfs_cache_close(r);
	pfs_cache_close(w);
}

/* A chunk the dataplane stored is handed to the engine as held: its
 * WRITE_CHUNK names the bytes where they already are. Nothing is copied
 * (memcpy onto itself would be undefined), and the contiguous prefix still
 * advances as for any write. */
Test(cache, write_of_bytes_in_place_moves_nothing)
{
	struct pfs_cache *w, *r;
	uint32_t len;
	int fi;

	fi = writer_reader_file(&w, &r, 43, "fw/b.bin");
	cr_assert_eq(pfs_cache_reserve(w, fi, 4 * 1408), 0);
	for (uint32_t i = 0; i < 2; i++) {
		uint8_t *p = (uint8_t *)(uintptr_t)pfs_cache_chunk(r, fi, i, &len);
		cr_assert_not_null(p);
		memset(p, 0x30 + (int)i, len);          /* the dataplane's store */
		cr_assert_eq(pfs_cache_write(w, fi, (uint64_t)i * 1408, p, 1408), 0);
		cr_assert_eq(p[0], 0x30 + i);
		cr_assert_eq(p[1407], 0x30 + i);
	}
	cr_assert_eq(atomic_load(&pfs_cache_file(w, fi)->stored), 2 * 1408,
		     "the prefix advances over bytes written in place");
	pfs_cache_close(r);
	pfs_cache_close(w);
}

/* A region of 12 extents and n frames, laid out by a writer with n frames
 * and opened by a reader that does not say how many. */
static void frames_region(uint32_t n, struct pfs_cache **w, struct pfs_cache **r)
{
	region_bytes = 12 * EXT + (uint64_t)n * PFS_CACHE_FRAME;
	region = calloc(1, region_bytes);
	cr_assert_not_null(region);
	cr_assert_eq(pfs_cache_open(region, region_bytes, n, true, w), 0);
	cr_assert_eq(pfs_cache_open(region, region_bytes, 0, false, r), 0);
}

/* Frames come after the extents; a reader takes the writer's count; a
 * writer with another count lays the cache out again (its files dropped,
 * as for another size). */
Test(cache, frames_are_laid_out_by_the_writer_and_found_by_the_reader)
{
	struct pfs_cache *w, *r;
	uint8_t *fw, *fr;
	uint32_t nw, nr;
	int fi;

	frames_region(64, &w, &r);
	fw = pfs_cache_frames(w, &nw);
	fr = pfs_cache_frames(r, &nr);
	cr_assert_eq(nw, 64);
	cr_assert_eq(nr, 64, "the reader found %u frames", nr);
	cr_assert_eq(fw, fr);
	cr_assert_leq(fw + 64 * PFS_CACHE_FRAME, (uint8_t *)region + region_bytes);
	fi = pfs_cache_create(w, 7, "CP-8845", "fw/f.bin", 1408);
	cr_assert_eq(pfs_cache_complete(w, fi, 0, sha0), 0);
	struct pfs_cache_stats st;
	pfs_cache_stats(w, &st);
	cr_assert_eq(st.frames, 64);
	cr_assert_leq((uint64_t)st.extents * EXT + 64 * PFS_CACHE_FRAME, region_bytes);
	pfs_cache_close(r);
	pfs_cache_close(w);
	cr_assert_not(pfs_cache_relayout_needed(region, region_bytes, 64));
	cr_assert(pfs_cache_relayout_needed(region, region_bytes, 32), "another frame count");
	cr_assert_not(pfs_cache_relayout_needed(region, region_bytes, 1u << 21), "no layout fits");
	cr_assert_eq(pfs_cache_open(region, region_bytes, 64, true, &w), 0);
	cr_assert_geq(pfs_cache_find(w, "CP-8845", "fw/f.bin"), 0, "same layout: the file stays");
	pfs_cache_close(w);
	cr_assert_eq(pfs_cache_open(region, region_bytes, 32, true, &w), 0);
	cr_assert_eq(pfs_cache_find(w, "CP-8845", "fw/f.bin"), -ENOENT, "laid out again");
	pfs_cache_close(w);
	cr_assert_eq(pfs_cache_open(region, region_bytes, 1u << 21, true, &w), -EINVAL);
}

/* What the dataplane does with a chunk from a parent when it keeps it in
 * the frame it came in: the map entry names the frame and the payload's
 * offset in it. Every reader finds it there; control's WRITE_CHUNK of those
 * very bytes writes nothing; other bytes written over it go to the extents
 * and the entry is cleared (the dataplane then gives the frame back). */
Test(cache, kept_chunks_are_read_from_their_frames)
{
	struct pfs_cache *w, *r;
	uint8_t chunk[1408], back[5 * 1408], *frames;
	uint32_t nframes, len;
	_Atomic uint32_t *slot;
	int fi;

	frames_region(16, &w, &r);
	frames = pfs_cache_frames(r, &nframes);
	fi = pfs_cache_create(w, 9, "CP-8845", "fw/k.bin", 1408);
	cr_assert_null(pfs_cache_map_slot(r, fi, 0), "a map before any reservation");
	cr_assert_eq(pfs_cache_reserve(w, fi, 5 * 1408), 0);
	/* Chunks 0, 2, 4 written by control, 1 and 3 kept in frames 5 and 11. */
	for (uint32_t i = 0; i < 5; i += 2) {
		pattern(chunk, sizeof(chunk), (uint64_t)i * 1408, 1);
		cr_assert_eq(pfs_cache_write(w, fi, (uint64_t)i * 1408, chunk, sizeof(chunk)), 0);
	}
	for (uint32_t i = 1; i < 5; i += 2) {
		uint32_t frame = i == 1 ? 5 : 11, off = 128 + 70;

		pattern(frames + frame * PFS_CACHE_FRAME + off, 1408, (uint64_t)i * 1408, 1);
		cr_assert_not_null(slot = pfs_cache_map_slot(r, fi, i));
		cr_assert_eq(atomic_load(slot), 0, "a map entry not zeroed");
		atomic_store(slot, pfs_cache_map_entry(frame, off));
	}
	cr_assert_eq(pfs_cache_chunk(r, fi, 3, &len), frames + 11 * PFS_CACHE_FRAME + 198);
	cr_assert_eq(pfs_cache_read(w, fi, 0, back, sizeof(back)), 0);
	pattern(chunk, sizeof(chunk), 0, 1);
	for (uint32_t i = 0; i < 5; i++) {
		uint8_t want[1408];
		pattern(want, sizeof(want), (uint64_t)i * 1408, 1);
		cr_assert_arr_eq(back + i * 1408, want, 1408, "chunk %u read back wrong", i);
	}
	/* Reported as held: its WRITE_CHUNK names the frame; no extent room is
	 * written, the entry stays. */
	const uint8_t *kept = pfs_cache_chunk(w, fi, 1, &len);
	cr_assert_eq(pfs_cache_write(w, fi, 1408, kept, 1408), 0);
	cr_assert_neq(atomic_load(pfs_cache_map_slot(r, fi, 1)), 0);
	cr_assert_eq(atomic_load(&pfs_cache_file(w, fi)->stored), 2 * 1408, "the prefix advances");
	/* Other bytes over chunk 3: to the extents, entry cleared. */
	memset(chunk, 0xee, sizeof(chunk));
	cr_assert_eq(pfs_cache_write(w, fi, 3 * 1408, chunk, sizeof(chunk)), 0);
	cr_assert_eq(atomic_load(pfs_cache_map_slot(r, fi, 3)), 0);
	cr_assert_eq(pfs_cache_read(r, fi, 3 * 1408, back, 1408), 0);
	cr_assert_arr_eq(back, chunk, 1408);
	/* An entry that names no frame, or runs past one, is not followed. */
	atomic_store(pfs_cache_map_slot(r, fi, 3), pfs_cache_map_entry(16, 198));
	cr_assert_eq(pfs_cache_read(r, fi, 3 * 1408, back, 1408), 0);
	cr_assert_arr_eq(back, chunk, 1408, "followed an entry past the frames");
	atomic_store(pfs_cache_map_slot(r, fi, 3), pfs_cache_map_entry(2, 700));
	cr_assert_eq(pfs_cache_read(r, fi, 3 * 1408, back, 1408), 0);
	cr_assert_arr_eq(back, chunk, 1408, "followed an entry whose chunk leaves the frame");
	/* Dropped: its map goes with it. */
	pfs_cache_drop(w, fi);
	cr_assert_null(pfs_cache_map_slot(r, fi, 1));
	pfs_cache_close(r);
	pfs_cache_close(w);
}
