/* test_cache_retire.c - a dropped cache file keeps its extents while the
 * dataplane holds it (pfs_cache.h: dropping is two steps). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_cache.h"

#define EXT   PFS_CACHE_EXTENT
#define CHUNK 1408

static void *region;
static uint64_t region_bytes;

static void fini(void)
{
	free(region);
	region = NULL;
}

TestSuite(cache_retire, .fini = fini);

/* A writer (pfs-control) and a reader (the dataplane) on one region of
 * about n extents, the reader's counts set up as a dataplane's start does. */
static void open_both(unsigned n, struct pfs_cache **w, struct pfs_cache **r)
{
	region_bytes = (uint64_t)(n + 1) * EXT + 2 * 1024 * 1024;
	region = calloc(1, region_bytes);
	cr_assert_not_null(region);
	cr_assert_eq(pfs_cache_open(region, region_bytes, 0, true, w), 0);
	cr_assert_eq(pfs_cache_open(region, region_bytes, 0, false, r), 0);
	pfs_cache_refs_init(*r, (void *)(uintptr_t)fini, false);
}

static uint8_t byte_at(uint64_t off, uint32_t seed)
{
	return (uint8_t)(off * 7 + seed);
}

static int fill(struct pfs_cache *c, int fi, uint64_t size, uint32_t seed)
{
	static uint8_t buf[CHUNK];
	int rc;

	for (uint64_t off = 0; off < size; off += CHUNK) {
		size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;

		for (size_t i = 0; i < n; i++)
			buf[i] = byte_at(off + i, seed);
		if ((rc = pfs_cache_write(c, fi, off, buf, n)) < 0)
			return rc;
	}
	return 0;
}

static bool holds_pattern(const uint8_t *p, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++) {
		if (p[i] != byte_at(i, seed))
			return false;
	}
	return true;
}

/* A new version of a file replaces it while the dataplane still sends
 * chunks of the old one: the old one is gone for every lookup at once, but
 * its extent is nobody else's until the dataplane lets go, even when the
 * new version wants the room; then it is freed. */
Test(cache_retire, a_held_file_keeps_its_bytes_after_a_drop)
{
	struct pfs_cache *w, *r;
	struct pfs_cache_stats st;
	const uint8_t *p;
	uint32_t gen, len;
	int a, a2, rc;

	open_both(4, &w, &r);
	a = pfs_cache_create(w, 1, "m", "fw.bin", CHUNK);
	cr_assert_eq(fill(w, a, 1000, 1), 0);
	cr_assert_eq(pfs_cache_complete(w, a, 1000, (const uint8_t[32]){ 0 }), 0);
	gen = pfs_cache_file(r, a)->gen;
	p = pfs_cache_chunk(r, a, 0, &len);
	cr_assert_not_null(p);
	cr_assert(pfs_cache_hold(r, a, gen, 1));
	cr_assert_eq(pfs_cache_held(pfs_cache_file(w, a)), 1);

	a2 = pfs_cache_create(w, 2, "m", "fw.bin", CHUNK);
	cr_assert(a2 >= 0 && a2 != a, "the new version took slot %d, the held one's %d", a2, a);
	cr_assert_eq(pfs_cache_find(w, "m", "fw.bin"), a2);
	cr_assert_null(pfs_cache_chunk(r, a, 0, &len), "a dropped file is not read");
	cr_assert_not(pfs_cache_hold(r, a, gen, 1), "a dropped file is not held again");
	cr_assert_eq(pfs_cache_held(pfs_cache_file(w, a)), 1, "a refused hold took nothing");
	pfs_cache_stats(w, &st);
	cr_assert_eq(st.files_retiring, 1);
	cr_assert_eq(st.files, 1);

	/* The new version takes every extent it can: not the held one's. */
	rc = fill(w, a2, (uint64_t)st.extents * EXT, 2);
	cr_assert_eq(rc, -ENOSPC);
	cr_assert(holds_pattern(p, 1000, 1), "the held chunk was written over");
	pfs_cache_stats(w, &st);
	cr_assert_eq(st.extents_used, st.extents);
	cr_assert_eq(pfs_cache_reclaim(w), 0, "held: not reclaimed");

	pfs_cache_unhold(r, a, 1);
	cr_assert_eq(pfs_cache_reclaim(w), 1);
	pfs_cache_stats(w, &st);
	cr_assert_eq(st.files_retiring, 0);
	cr_assert_eq(st.extents_used, st.extents - 1);
	cr_assert_eq(fill(w, a2, (uint64_t)st.extents * EXT, 2), -ENOSPC);
	pfs_cache_stats(w, &st);
	cr_assert_eq(st.extents_used, st.extents, "the freed extent went to the new version");
	pfs_cache_close(r);
	pfs_cache_close(w);
}

/* Nobody holds it: dropped and freed in one step, slot and extents. */
Test(cache_retire, an_unheld_file_is_freed_at_once)
{
	struct pfs_cache *w, *r;
	struct pfs_cache_stats st;
	int a;

	open_both(4, &w, &r);
	a = pfs_cache_create(w, 1, "m", "fw.bin", CHUNK);
	cr_assert_eq(fill(w, a, 3000, 1), 0);
	pfs_cache_drop(w, a);
	pfs_cache_stats(w, &st);
	cr_assert_eq(st.files + st.files_retiring, 0);
	cr_assert_eq(st.extents_used, 0);
	cr_assert_eq(atomic_load(&pfs_cache_file(w, a)->state), PFS_CF_FREE);
	pfs_cache_close(r);
	pfs_cache_close(w);
}

/* A reader may find a slot being set up for another file (the writer
 * reclaimed it and creates in it) between its lookup and its hold: what it
 * loads then is checked like input, never divided by when zero and never
 * taken out of the data region. Here the writer's fields are scribbled
 * on as such a moment would show them. */
Test(cache_retire, a_slot_set_up_under_a_reader_is_checked_like_input)
{
	struct pfs_cache *w, *r;
	struct pfs_cache_file *f;
	uint8_t buf[100];
	uint32_t len, per, ext0;
	int a;

	open_both(4, &w, &r);
	a = pfs_cache_create(w, 1, "m", "fw.bin", CHUNK);
	cr_assert_eq(fill(w, a, 3 * CHUNK, 1), 0);
	cr_assert_eq(pfs_cache_complete(w, a, 3 * CHUNK, (const uint8_t[32]){ 0 }), 0);
	f = pfs_cache_file(w, a);
	per = f->chunks_per_ext;
	ext0 = f->ext[0];

	f->chunks_per_ext = 0;                  /* the memset of a create */
	cr_assert_null(pfs_cache_chunk(r, a, 1, &len));
	cr_assert_lt(pfs_cache_read(r, a, 0, buf, sizeof(buf)), 0);
	f->chunks_per_ext = per;
	f->chunk_size = 0;
	cr_assert_null(pfs_cache_chunk(r, a, 1, &len));
	cr_assert_lt(pfs_cache_read(r, a, 0, buf, sizeof(buf)), 0);
	f->chunk_size = 8192;                   /* another file's size, our count */
	cr_assert_null(pfs_cache_chunk(r, a, 1, &len), "a chunk past its extent's end");
	cr_assert_lt(pfs_cache_read(r, a, 0, buf, sizeof(buf)), 0);
	f->chunk_size = CHUNK;
	f->ext[0] = UINT16_MAX;                 /* no such extent */
	cr_assert_null(pfs_cache_chunk(r, a, 1, &len));
	cr_assert_lt(pfs_cache_read(r, a, 0, buf, sizeof(buf)), 0);
	f->ext[0] = ext0;
	cr_assert_not_null(pfs_cache_chunk(r, a, 1, &len));
	cr_assert_eq(pfs_cache_read(r, a, CHUNK, buf, sizeof(buf)), 0);
	for (uint32_t i = 0; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], byte_at(CHUNK + i, 1), "byte %u read back", i);
	pfs_cache_close(r);
	pfs_cache_close(w);
}

struct race {
	struct pfs_cache *w, *r;
	atomic_bool done;
	unsigned checked, stale, torn;
};

/* pfs-control: files created, filled with their generation's bytes,
 * completed, replaced and dropped, in a cache small enough that every
 * create evicts. */
static void *writer(void *arg)
{
	struct race *x = arg;

	for (unsigned i = 0; i < 100000; i++) {
		char name[16];
		int fi;

		snprintf(name, sizeof(name), "f%u", i % 7);
		fi = pfs_cache_create(x->w, i + 1, "m", name, CHUNK);
		if (fi < 0)
			continue;
		if (fill(x->w, fi, 2 * CHUNK, pfs_cache_file(x->w, fi)->gen) == 0)
			pfs_cache_complete(x->w, fi, 2 * CHUNK, (const uint8_t[32]){ 0 });
		if (i % 3 == 0)
			pfs_cache_drop(x->w, fi);
	}
	atomic_store(&x->done, true);
	return NULL;
}

/* The dataplane: finds a chunk of a complete file, holds the file, and
 * reads it as a send would: held, the bytes must be that generation's. */
static void *reader(void *arg)
{
	struct race *x = arg;

	while (!atomic_load(&x->done)) {
		for (int fi = 0; fi < PFS_CACHE_FILES; fi++) {
			struct pfs_cache_file *f = pfs_cache_file(x->r, fi);
			uint32_t gen = __atomic_load_n(&f->gen, __ATOMIC_RELAXED), len;
			const uint8_t *p;

			if (atomic_load(&f->state) != PFS_CF_COMPLETE ||
			    !(p = pfs_cache_chunk(x->r, fi, 1, &len)))
				continue;
			if (!pfs_cache_hold(x->r, fi, gen, 1)) {
				x->stale++;
				continue;
			}
			for (uint32_t i = 0; i < len; i++) {
				if (p[i] != byte_at(CHUNK + i, gen)) {
					x->torn++;
					break;
				}
			}
			x->checked++;
			pfs_cache_unhold(x->r, fi, 1);
		}
	}
	return NULL;
}

Test(cache_retire, a_racing_reader_never_reads_another_files_bytes)
{
	struct race x = { 0 };
	pthread_t tw, tr;

	open_both(4, &x.w, &x.r);
	cr_assert_eq(pthread_create(&tr, NULL, reader, &x), 0);
	cr_assert_eq(pthread_create(&tw, NULL, writer, &x), 0);
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	cr_assert_eq(x.torn, 0, "%u of %u held chunks were another file's bytes", x.torn,
		     x.checked);
	cr_assert_gt(x.checked, 100, "only %u chunks checked", x.checked);
	struct pfs_cache_stats st;
	pfs_cache_reclaim(x.w);
	pfs_cache_stats(x.w, &st);
	cr_assert_eq(st.files_retiring, 0, "let go, yet not reclaimed");
	pfs_cache_close(x.r);
	pfs_cache_close(x.w);
}

/* What the reader holds, as a send would: a chunk's address and the bytes
 * its file's generation put there. */
struct held_chunk {
	int fi;
	uint32_t gen, idx, len;
	const uint8_t *p;
};

/* The invariants the writer's bookkeeping must keep, whatever the order of
 * operations: every extent in use belongs to one file entry that lists it
 * (none lost, none listed twice), and a held chunk still has its bytes. */
static void check_invariants(struct pfs_cache *w, const struct held_chunk *h, unsigned nh,
			     uint32_t nextents)
{
	static uint8_t seen[UINT16_MAX];
	struct pfs_cache_stats st;
	uint32_t listed = 0, retiring = 0;

	memset(seen, 0, sizeof(seen));
	for (int fi = 0; fi < PFS_CACHE_FILES; fi++) {
		const struct pfs_cache_file *f = pfs_cache_file(w, fi);
		uint32_t s = atomic_load(&f->state);

		if (s == PFS_CF_FREE)
			continue;
		retiring += s == PFS_CF_RETIRING;
		for (uint32_t i = 0; i < f->nexts + f->nmap; i++) {
			uint32_t e = i < f->nexts ? f->ext[i] : f->map_ext[i - f->nexts];

			cr_assert_lt(e, nextents);
			cr_assert_eq(seen[e]++, 0, "extent %u listed twice", e);
			listed++;
		}
	}
	pfs_cache_stats(w, &st);
	cr_assert_eq(st.extents_used, listed, "%u extents in use, %u listed", st.extents_used,
		     listed);
	cr_assert_eq(st.files_retiring, retiring);
	for (unsigned i = 0; i < nh; i++) {
		cr_assert_neq(atomic_load(&pfs_cache_file(w, h[i].fi)->state), PFS_CF_FREE,
			      "a held file's slot was freed");
		/* 16 bytes at its start, middle and end: bytes written over it
		 * (another file's, another generation's) differ at every byte. */
		for (uint32_t spot = 0; spot < 3; spot++) {
			uint32_t at = spot == 0 ? 0 : spot == 1 ? h[i].len / 2 : h[i].len - 16;

			for (uint32_t b = at; b < at + 16 && b < h[i].len; b++)
				cr_assert_eq(h[i].p[b],
					     byte_at((uint64_t)h[i].idx * CHUNK + b, h[i].gen),
					     "held chunk %u of slot %d changed under its hold",
					     h[i].idx, h[i].fi);
		}
	}
}

/* The first slot from start on whose state is in mask (1 << state), or -1. */
static int pick(struct pfs_cache *c, uint64_t start, unsigned mask)
{
	for (int n = 0; n < PFS_CACHE_FILES; n++) {
		int fi = (int)((start + (uint64_t)n) % PFS_CACHE_FILES);

		if (mask & 1u << atomic_load(&pfs_cache_file(c, fi)->state))
			return fi;
	}
	return -1;
}

/* Random writer and reader operations (create, fill, complete, drop,
 * evict, pin, reserve; hold, let go) in a cache of a few extents, the
 * invariants checked after each: fixed seeds, so a failure replays. */
Test(cache_retire, random_operations_keep_the_books)
{
	struct pfs_cache *w, *r;
	struct pfs_cache_stats st;
	struct held_chunk held[32];
	unsigned nheld = 0;

	open_both(6, &w, &r);
	pfs_cache_stats(w, &st);
	for (uint32_t seed = 1; seed <= 40; seed++) {
		uint64_t x = seed * 0x9E3779B97F4A7C15ull;

		for (unsigned op = 0; op < 2000; op++) {
			char name[8];
			int fi;

			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			fi = pick(w, x >> 8, 1u << PFS_CF_FILLING | 1u << PFS_CF_COMPLETE);
			snprintf(name, sizeof(name), "f%u", (unsigned)(x >> 20) % 9);
			switch ((x >> 40) % 10) {
			case 0:
				pfs_cache_create(w, x >> 24, "m", name, CHUNK);
				break;
			case 1: case 2: {
				struct pfs_cache_file *f = pfs_cache_file(w, fi);
				uint64_t size = ((x >> 28) % 4 + 1) * 300 * CHUNK;

				if (f && atomic_load(&f->state) == PFS_CF_FILLING &&
				    fill(w, fi, size, f->gen) == 0)
					pfs_cache_complete(w, fi, size, (const uint8_t[32]){ 0 });
				break;
			}
			case 3:
				pfs_cache_drop(w, fi);  /* fi < 0: refused */
				break;
			case 4:
				if ((x >> 30) % 4 == 0)
					pfs_cache_evict_idle(w);
				else
					pfs_cache_reclaim(w);
				break;
			case 5:
				pfs_cache_pin(w, fi, (x >> 30) & 1);
				break;
			case 6:
				pfs_cache_reserve(w, fi, ((x >> 28) % 8 + 1) * 100 * CHUNK);
				break;
			case 7: case 8: {
				struct pfs_cache_file *f;
				uint32_t gen, idx = (uint32_t)(x >> 32) % 300, len;
				const uint8_t *p;

				fi = pick(r, x >> 8, 1u << PFS_CF_COMPLETE);
				if (fi < 0)
					break;
				f = pfs_cache_file(r, fi);
				gen = f->gen;
				if (nheld == 32 ||
				    !(p = pfs_cache_chunk(r, fi, idx, &len)) ||
				    !pfs_cache_hold(r, fi, gen, 1))
					break;
				held[nheld++] = (struct held_chunk){ fi, gen, idx, len, p };
				break;
			}
			default:
				if (nheld) {
					unsigned k = (unsigned)(x >> 32) % nheld;

					pfs_cache_unhold(r, held[k].fi, 1);
					held[k] = held[--nheld];
				}
				break;
			}
			check_invariants(w, held, nheld, st.extents);
		}
	}
	while (nheld)
		pfs_cache_unhold(r, held[--nheld].fi, 1);
	pfs_cache_reclaim(w);
	pfs_cache_stats(w, &st);
	cr_assert_eq(st.files_retiring, 0, "let go, yet not reclaimed");
	pfs_cache_close(r);
	pfs_cache_close(w);
}
