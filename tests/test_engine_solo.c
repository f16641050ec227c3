/* test_engine_solo.c - the engine as the appliance's load server drives it
 * (issue 12 section 2): a solo hierarchy (PFS_MODE_TFTP_ONLY) fetches a
 * file alone, tells how much of it is checked while it arrives, and is
 * asked for again after it failed or its copy was lost.
 */
#include <criterion/criterion.h>
#include <errno.h>

#include <openssl/evp.h>

#include "pfs_driver.h"
#include "pfs_manifest.h"
#include "sim_helpers.h"

#define PATH  "fw/load.bin"
#define CHUNK 1000u
#define SIZE  9500u             /* 10 chunks, the last one short */

static struct pfs_trust trust;
static uint8_t *file, *man;
static size_t man_len;

static struct pfs_engine *solo(bool signed_files)
{
	struct pfs_engine_config c = base_config("load-server");
	uint8_t seed[32], pub[32];

	c.node_id = 0x0a000063u;
	c.self = (struct pfs_addr){ c.node_id, PFS_PORT };
	c.mode = PFS_MODE_TFTP_ONLY;
	c.chunk_size = CHUNK;
	file = make_file(SIZE, 5);
	if (signed_files) {
		memset(&trust, 0, sizeof(trust));
		cr_assert_eq(pfs_keypair_new(seed, pub), 0);
		cr_assert_eq(pfs_trust_add_key(&trust, pub), 0);
		man = pfs_manifest_from_buffer(file, SIZE, PATH, CHUNK, 1, pfs_key_id(pub), seed,
					       &man_len);
		cr_assert_not_null(man);
		c.trust = &trust;
	}
	return pfs_engine_new(&c);
}

/* The actions due now: how many of type t, the last one in *last. */
static int due(struct pfs_engine *e, pfs_time_t now, enum pfs_action_type t,
	       struct pfs_action *last)
{
	static uint8_t buf[PFS_DGRAM_MAX];
	struct pfs_action a;
	int n = 0;

	while (pfs_engine_poll(e, now, &a, buf, sizeof(buf)) > 0)
		if (a.type == t) {
			n++;
			if (last)
				*last = a;
		}
	return n;
}

Test(solo, signed_file_counts_checked_chunks_as_they_arrive)
{
	struct pfs_engine *e = solo(true);
	struct pfs_action a;
	int h = pfs_engine_want(e, 0, PATH);
	uint8_t bad[CHUNK];

	cr_assert_geq(h, 0);
	cr_assert_eq(pfs_engine_find(e, PATH), h);
	cr_assert_eq(pfs_engine_find(e, "fw/other.bin"), -ENOENT);
	cr_assert_eq(due(e, 0, PFS_ACT_UPSTREAM_START, &a), 1);
	cr_assert(a.want_manifest);
	cr_assert_eq(pfs_engine_checked_bytes(e, h), 0);
	cr_assert_eq(pfs_engine_upstream_manifest(e, 1, h, man, man_len), 0);
	/* Two chunks and a half: two count, the half waits for its digest. */
	cr_assert_eq(pfs_engine_upstream_write(e, 2, h, 0, file, 2500), 0);
	cr_assert_eq(pfs_engine_checked_bytes(e, h), 2000);
	cr_assert_eq(pfs_engine_upstream_write(e, 3, h, 2500, file + 2500, 500), 0);
	cr_assert_eq(pfs_engine_checked_bytes(e, h), 3000);
	/* A restart while the fetch runs is refused. */
	cr_assert_eq(pfs_engine_solo_restart(e, 4, h), -EBUSY);
	/* A chunk that is not the signed one never counts. */
	memcpy(bad, file + 3000, CHUNK);
	bad[10] ^= 1;
	cr_assert_eq(pfs_engine_upstream_write(e, 5, h, 3000, bad, CHUNK), -EBADMSG);
	cr_assert_eq(pfs_engine_checked_bytes(e, h), 3000);
	pfs_engine_free(e);
	free(file);
	free(man);
}

Test(solo, whole_signed_file_counts_to_its_size_and_lost_copy_is_fetched_again)
{
	struct pfs_engine *e = solo(true);
	struct pfs_hier_info info;
	uint8_t sha[32];
	int h = pfs_engine_want(e, 0, PATH);

	due(e, 0, PFS_ACT_UPSTREAM_START, NULL);
	cr_assert_eq(pfs_engine_upstream_manifest(e, 1, h, man, man_len), 0);
	cr_assert_eq(pfs_engine_upstream_write(e, 2, h, 0, file, SIZE), 0);
	cr_assert_eq(pfs_engine_checked_bytes(e, h), SIZE);       /* the short last chunk */
	EVP_Digest(file, SIZE, sha, NULL, EVP_sha256(), NULL);
	pfs_engine_upstream_done(e, 3, h, SIZE, sha);
	cr_assert_eq(due(e, 3, PFS_ACT_FILE_DONE, NULL), 1);
	cr_assert_eq(pfs_engine_checked_bytes(e, h), SIZE);
	/* The driver evicted it: asked again, it starts over from nothing,
	 * its manifest already verified (no second manifest fetch). */
	cr_assert_eq(pfs_engine_solo_restart(e, 4, h), 0);
	cr_assert_eq(pfs_engine_checked_bytes(e, h), 0);
	struct pfs_action a;
	cr_assert_eq(due(e, 4, PFS_ACT_UPSTREAM_START, &a), 1);
	cr_assert_not(a.want_manifest);
	cr_assert_eq(pfs_engine_upstream_write(e, 5, h, 0, file, SIZE), 0);
	pfs_engine_upstream_done(e, 6, h, SIZE, sha);
	cr_assert_eq(pfs_engine_hier_info(e, h, &info), 0);
	cr_assert(info.complete);
	pfs_engine_free(e);
	free(file);
	free(man);
}

struct stored_log {
	uint64_t off[8];
	size_t len[8];
	int n;
};

static int log_store(void *ctx, uint64_t off, const uint8_t *data, size_t len)
{
	struct stored_log *l = ctx;

	(void)data;
	cr_assert_lt(l->n, 8);
	l->off[l->n] = off;
	l->len[l->n++] = len;
	return 0;
}

/* Found by fuzz_engine: a fetch that failed part-way is tried again from
 * byte 0 (TFTP cannot resume), and the driver stored what came over the
 * chunks the first attempt had checked: a server whose file changed (or a
 * path that corrupts) had those bytes sent on and served unchecked. The
 * driver now stores upstream bytes with pfs_upstream_store(), which skips
 * the chunks held; the engine still checks the new bytes and fails them. */
Test(solo, a_fetch_started_again_does_not_store_over_checked_chunks)
{
	struct pfs_engine *e = solo(true);
	struct stored_log log = { .n = 0 };
	uint8_t *other = make_file(SIZE, 6);
	bool held;
	int h = pfs_engine_want(e, 0, PATH);

	cr_assert_eq(due(e, 0, PFS_ACT_UPSTREAM_START, NULL), 1);
	cr_assert_eq(pfs_engine_upstream_manifest(e, 1, h, man, man_len), 0);
	cr_assert_eq(pfs_upstream_store(e, h, 0, file, 2500, log_store, &log), 0);
	cr_assert(log.n == 1 && log.off[0] == 0 && log.len[0] == 2500, "first attempt: all");
	cr_assert_eq(pfs_engine_upstream_write(e, 2, h, 0, file, 2500), 0);
	cr_assert_eq(pfs_engine_checked_bytes(e, h), 2000);
	cr_assert_eq(pfs_engine_held_run(e, h, 0, SIZE, &held), 2000);
	cr_assert(held);
	cr_assert_eq(pfs_engine_held_run(e, h, 1500, SIZE - 1500, &held), 500);
	cr_assert(held);
	cr_assert_eq(pfs_engine_held_run(e, h, 2000, SIZE - 2000, &held), SIZE - 2000);
	cr_assert_not(held);
	/* The connection drops; the retry starts from 0 and the server now
	 * sends other bytes. */
	pfs_engine_upstream_failed(e, 3, h, -EIO);
	pfs_engine_timeout(e, PFS_SEC(60));
	cr_assert_eq(due(e, PFS_SEC(60), PFS_ACT_UPSTREAM_START, NULL), 1);
	log.n = 0;
	cr_assert_eq(pfs_upstream_store(e, h, 0, other, 2500, log_store, &log), 0);
	cr_assert(log.n == 1 && log.off[0] == 2000 && log.len[0] == 500,
		  "stored %d runs, the first [%llu, +%zu): the checked chunks were written over",
		  log.n, (unsigned long long)log.off[0], log.len[0]);
	cr_assert_eq(pfs_engine_upstream_write(e, PFS_SEC(61), h, 0, other, 2500), -EBADMSG);
	cr_assert_eq(pfs_engine_checked_bytes(e, h), 2000);
	pfs_engine_free(e);
	free(other);
	free(file);
	free(man);
	/* Unsigned, nothing is checked before the whole file: a fetch that
	 * starts again stores all it brings (its digest is the one that counts). */
	e = solo(false);
	h = pfs_engine_want(e, 0, PATH);
	cr_assert_eq(due(e, 0, PFS_ACT_UPSTREAM_START, NULL), 1);
	cr_assert_eq(pfs_engine_upstream_write(e, 1, h, 0, file, 2500), 0);
	cr_assert_eq(pfs_engine_held_run(e, h, 0, SIZE, &held), SIZE);
	cr_assert_not(held);
	pfs_engine_free(e);
	free(file);
}

Test(solo, unsigned_file_counts_nothing_until_whole_and_failure_can_be_retried)
{
	struct pfs_engine *e = solo(false);
	struct pfs_hier_info info;
	uint8_t sha[32];
	int h = pfs_engine_want(e, 0, PATH);

	due(e, 0, PFS_ACT_UPSTREAM_START, NULL);
	pfs_engine_upstream_write(e, 1, h, 0, file, 5000);
	cr_assert_eq(pfs_engine_checked_bytes(e, h), 0);
	/* The server's "not found" is final: failed, no retry pending. */
	pfs_engine_upstream_failed(e, 2, h, -ENOENT);
	cr_assert_eq(pfs_engine_hier_info(e, h, &info), 0);
	cr_assert(info.failed);
	cr_assert_eq(info.fail_cause, PFS_FAIL_NOT_FOUND);
	/* A new request: the same hierarchy fetches again, from byte 0. */
	cr_assert_eq(pfs_engine_solo_restart(e, 3, h), 0);
	cr_assert_eq(pfs_engine_hier_info(e, h, &info), 0);
	cr_assert_not(info.failed);
	cr_assert_eq(due(e, 3, PFS_ACT_UPSTREAM_START, NULL), 1);
	pfs_engine_upstream_write(e, 4, h, 0, file, SIZE);
	EVP_Digest(file, SIZE, sha, NULL, EVP_sha256(), NULL);
	pfs_engine_upstream_done(e, 5, h, SIZE, sha);
	cr_assert_eq(pfs_engine_checked_bytes(e, h), SIZE);
	pfs_engine_free(e);
	free(file);
}

Test(solo, restart_refuses_other_hierarchies)
{
	struct pfs_engine_config c = base_config("CP-8845");
	struct pfs_engine *e;

	c.node_id = 5;
	e = pfs_engine_new(&c);
	int h = pfs_engine_want(e, 0, PATH);

	cr_assert_eq(pfs_engine_solo_restart(e, 1, h), -EINVAL);      /* electing */
	cr_assert_eq(pfs_engine_solo_restart(e, 1, 7), -EINVAL);
	pfs_engine_free(e);
}

/* pfs_drive's ops for the user-pointer test: what each action carried. */
struct seen { int starts, with_user, other; void *user; };

static void seen_start(void *ctx, const struct pfs_action *a)
{
	struct seen *s = ctx;

	s->starts++;
	if (a->user == s->user)
		s->with_user++;
	else
		s->other++;
}

static pfs_time_t seen_now(void *ctx)
{
	(void)ctx;
	return 0;
}

/* A driver's per-hierarchy state rides on every action of its hierarchy
 * (issue 16 item 1), and a driver that asks for it never sees the actions
 * of a hierarchy it did not make. */
Test(solo, user_pointer_rides_on_actions_and_need_user_drops_the_rest)
{
	struct pfs_engine *e = solo(false);
	static uint8_t buf[PFS_DGRAM_MAX];
	int mine = 0xbeef, h1, h2;
	struct seen s = { .user = &mine };
	struct pfs_driver_ops ops = { .now = seen_now, .upstream_start = seen_start,
				      .need_user = true };

	h1 = pfs_engine_want(e, 0, PATH);
	h2 = pfs_engine_want(e, 0, "fw/other.bin");
	cr_assert_geq(h1, 0);
	cr_assert_geq(h2, 0);
	cr_assert_eq(pfs_engine_hier_set_user(e, h1, &mine), 0);
	cr_assert_eq(pfs_engine_hier_set_user(e, 7, &mine), -ENOENT);
	cr_assert_eq(pfs_engine_hier_user(e, h1), &mine);
	cr_assert_null(pfs_engine_hier_user(e, h2));
	cr_assert_null(pfs_engine_hier_user(e, -1));
	pfs_drive(e, &ops, &s, buf, sizeof(buf));
	cr_assert_eq(s.starts, 1, "%d UPSTREAM_STARTs reached the driver", s.starts);
	cr_assert_eq(s.with_user, 1);
	/* Without need_user the other hierarchy's comes through, userless. */
	ops.need_user = false;
	cr_assert_eq(pfs_engine_solo_restart(e, 1, h2), -EBUSY);
	pfs_engine_upstream_failed(e, 1, h2, -ENOENT);
	pfs_engine_upstream_failed(e, 1, h1, -ENOENT);
	pfs_drive(e, &ops, &s, buf, sizeof(buf));
	cr_assert_eq(pfs_engine_solo_restart(e, 2, h1), 0);
	cr_assert_eq(pfs_engine_solo_restart(e, 2, h2), 0);
	pfs_drive(e, &ops, &s, buf, sizeof(buf));
	cr_assert_eq(s.with_user, 2);
	cr_assert_eq(s.other, 1);
	pfs_engine_free(e);
	free(file);
}
