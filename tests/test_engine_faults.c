/* test_engine_faults.c - the engine when the server, a disk or a parent
 * lets it down (docs/protocol.md 6.5): every case ends, with the right
 * files, the right number of server requests and the right cause.
 */
#include <criterion/criterion.h>
#include <errno.h>

#include "sim_helpers.h"

/* How many nodes failed the first file with this cause (EVENT FAILED b). */
static int failed_with(struct netsim *ns, enum pfs_fail_cause cause)
{
	int n = 0;

	for (int i = 0; i < netsim_nodes(ns); i++) {
		size_t size; bool done, failed;
		netsim_file(ns, i, 0, &size, &done, &failed);
		struct pfs_hier_info info;
		pfs_engine_hier_info(netsim_engine(ns, i), 0, &info);
		if (failed && info.failed && info.fail_cause == cause)
			n++;
	}
	return n;
}

Test(faults, missing_file_is_asked_once_per_node_and_fails_everywhere)
{
	struct netsim_params p = { .seed = 10, .latency = PFS_MSEC(1) };
	struct netsim *ns = netsim_new(&p);
	const char *wants[] = { "nope.bin" };
	struct pfs_engine_config c = base_config("CP-8845");

	for (int i = 0; i < 5; i++)
		netsim_add_node(ns, &c, wants, 1, 0);
	cr_assert(netsim_run(ns, PFS_SEC(60)), "failure must end the run, not hang it");
	/* The server's "no such file" is its last word: the root does not
	 * ask again and no second root is elected to. Its FAILED is only its
	 * word, so each member asks once for itself (spread over 4 s): one
	 * request each, answered at once. */
	cr_assert_eq(netsim_upstream_starts(ns, "CP-8845", "nope.bin"), 5);
	cr_assert_eq(netsim_event_count(ns, PFS_EV_UPSTREAM_RETRY), 0);
	cr_assert_eq(netsim_event_count(ns, PFS_EV_ROOT_CONFIRMED), 1);
	cr_assert_eq(netsim_event_count(ns, PFS_EV_REELECT), 0);
	cr_assert_eq(netsim_event_count(ns, PFS_EV_FALLBACK), 4);
	cr_assert_eq(failed_with(ns, PFS_FAIL_NOT_FOUND), 5);
	netsim_free(ns);
}

Test(faults, server_outage_is_retried_with_backoff)
{
	struct netsim_params p = { .seed = 21, .latency = PFS_MSEC(1), .upstream_rate = 1000000,
				   .server_down_from = PFS_MSEC(500),
				   .server_down_until = PFS_MSEC(3500) };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "out.bin", 200000, make_file(200000, 21) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845");

	netsim_add_file(ns, f.path, f.data, f.size);
	for (int i = 0; i < 5; i++)
		netsim_add_node(ns, &c, wants, 1, 0);
	cr_assert(netsim_run(ns, PFS_SEC(60)));
	assert_all_files(ns, &f, 1, 1);
	/* Election ~1.25 s, tries at ~1.3, ~2.3 (+1 s) and ~4.3 s (+2 s):
	 * the third finds the server back. Nobody else fetched. */
	cr_assert_eq(netsim_upstream_starts(ns, "CP-8845", "out.bin"), 3);
	cr_assert_eq(netsim_event_count(ns, PFS_EV_UPSTREAM_RETRY), 2);
	cr_assert_eq(netsim_event_count(ns, PFS_EV_FALLBACK), 0);
	for (int i = 0; i < 5; i++)
		cr_assert(netsim_done_at(ns, i, 0) > PFS_MSEC(3500), "node %d done early", i);
	netsim_free(ns);
	free(f.data);
}

Test(faults, server_gone_three_roots_then_give_up)
{
	struct netsim_params p = { .seed = 22, .latency = PFS_MSEC(1), .upstream_rate = 1000000,
				   .server_down_from = 0, .server_down_until = PFS_TIME_NEVER };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "gone.bin", 50000, make_file(50000, 22) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845");

	netsim_add_file(ns, f.path, f.data, f.size);
	for (int i = 0; i < 5; i++)
		netsim_add_node(ns, &c, wants, 1, 0);
	cr_assert(netsim_run(ns, PFS_SEC(60)), "an unreachable server must end the run");
	/* The root tries 1 + retries times; its FAILED is only its word, so
	 * the members elect another root, which tries as many times, and a
	 * third; then they give up, never all asking the server at once. */
	cr_assert_eq(netsim_upstream_starts(ns, "CP-8845", "gone.bin"),
		     3 * (1 + c.upstream_retries));
	cr_assert_eq(netsim_event_count(ns, PFS_EV_ROOT_CONFIRMED), 3);
	cr_assert_eq(netsim_event_count(ns, PFS_EV_FALLBACK), 0);
	cr_assert_eq(failed_with(ns, PFS_FAIL_SERVER), 5);
	netsim_free(ns);
	free(f.data);
}

/* One node's disk holds 100 kB of a 300 kB file; it is the strongest node
 * (the root) or the weakest (a member). It fails alone, for itself; the
 * others complete, fetching want_starts copies in all. */
static void full_disk(uint64_t seed, bool root, uint32_t want_starts)
{
	struct netsim_params p = { .seed = seed, .latency = PFS_MSEC(1), .upstream_rate = 1000000 };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "full.bin", 300000, make_file(300000, (uint32_t)seed) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845"), odd = c;

	odd.priority_class = root ? PFS_CLASS_DEVICE + 1 : 0;
	netsim_add_file(ns, f.path, f.data, f.size);
	for (int i = 0; i < 5; i++)
		netsim_add_node(ns, &c, wants, 1, 0);
	int full = netsim_add_node(ns, &odd, wants, 1, root ? 0 : PFS_MSEC(50));
	netsim_store_limit(ns, full, 100000);
	cr_assert(netsim_run(ns, PFS_SEC(60)));
	cr_assert_eq(failed_with(ns, PFS_FAIL_LOCAL), 1);
	for (int i = 0; i < netsim_nodes(ns); i++) {
		size_t size; bool done, failed;
		const uint8_t *got = netsim_file(ns, i, 0, &size, &done, &failed);
		if (i == full)
			cr_assert(failed && !done, "the full node %d", i);
		else
			cr_assert(done && size == f.size && !memcmp(got, f.data, size), "node %d", i);
	}
	cr_assert_eq(netsim_upstream_starts(ns, "CP-8845", "full.bin"), want_starts);
	netsim_free(ns);
	free(f.data);
}

Test(faults, root_with_a_full_disk_hands_the_hierarchy_over)
{
	full_disk(23, true, 2);         /* another root fetches once more */
}

Test(faults, member_with_a_full_disk_leaves_and_the_rest_complete)
{
	full_disk(24, false, 1);
}

/* A root that creeps (a few kB/s): with min_parent_rate, its members
 * leave it after fallback_timeout (a new election, then their own fetch);
 * without it, every new chunk counts and they wait for it to the end.
 * Returns the trees left (REELECT and FALLBACK events). */
static uint64_t creeping_root_left(uint32_t min_parent_rate)
{
	struct netsim_params p = { .seed = 25, .latency = PFS_MSEC(1), .upstream_rate = 2000,
				   .upstream_block = 1408 };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "slow.bin", 60000, make_file(60000, 25) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845");
	uint64_t n;

	c.fallback_timeout = PFS_SEC(5);
	c.min_parent_rate = min_parent_rate;
	netsim_add_file(ns, f.path, f.data, f.size);
	for (int i = 0; i < 4; i++)
		netsim_add_node(ns, &c, wants, 1, 0);
	cr_assert(netsim_run(ns, PFS_SEC(120)));
	assert_all_files(ns, &f, 1, 1);
	n = netsim_event_count(ns, PFS_EV_REELECT) + netsim_event_count(ns, PFS_EV_FALLBACK);
	netsim_free(ns);
	free(f.data);
	return n;
}

Test(faults, members_leave_a_parent_that_creeps)
{
	cr_assert_eq(creeping_root_left(0), 0, "any progress counts without a rate");
	cr_assert_geq(creeping_root_left(8192), 3, "its 3 members left it");
}

/* ACKs arrive late (30 ms each way) and the root's data comes in bursts a
 * WAN's TCP delivers, 64 KB every 64 ms: after each burst the root sends
 * nothing for longer than ack_interval, and the ACKs it then reads were
 * sent before the burst arrived. Only a STALL moves its cursor back
 * (docs/protocol.md 5.1): rewinding on any such ACK sent every burst
 * twice (pfs-control at 64 devices: 10-25 % more chunks). */
Test(faults, late_acks_after_a_quiet_spell_do_not_resend_what_is_on_its_way)
{
	struct netsim_params p = { .seed = 5, .latency = PFS_MSEC(30), .upstream_rate = 1000000,
				   .upstream_block = 65536 };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "burst.bin", 2000000, make_file(2000000, 5) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845");
	uint64_t nchunks = (f.size + c.chunk_size - 1) / c.chunk_size;

	netsim_add_file(ns, f.path, f.data, f.size);
	for (int i = 0; i < 3; i++)
		netsim_add_node(ns, &c, wants, 1, 0);
	cr_assert(netsim_run(ns, PFS_SEC(60)));
	assert_all_files(ns, &f, 1, 1);
	cr_assert_leq(netsim_counts(ns)->chunk_sends, 2 * nchunks + nchunks / 50,
		      "%llu chunk sends for 2 x %llu chunks",
		      (unsigned long long)netsim_counts(ns)->chunk_sends,
		      (unsigned long long)nchunks);
	netsim_free(ns);
	free(f.data);
}

/* Found by fuzz_site: an unsigned file (no digest per chunk), and the
 * joiner's only way in is under a member that alters every chunk it sends
 * (CRC32C right). The joiner's whole-file SHA-256 fails; it fetches the
 * file again, and a second failure in a row leaves that parent (excluded
 * like a forger, docs/protocol.md 6.6): without that it fetched the same
 * bad file from it at LAN speed for as long as both lived. */
Test(faults, member_fed_a_bad_file_twice_leaves_its_parent)
{
	struct netsim_params p = { .seed = 9, .latency = PFS_MSEC(1), .upstream_rate = 400000 };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "unsigned.bin", 40000, make_file(40000, 9) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845"), root;
	const struct pfs_engine_stats *st;
	size_t size;
	bool done, failed;
	const uint8_t *got;
	int evil, victim;

	c.max_children = 1;
	root = c;
	root.priority_class = PFS_CLASS_APPLIANCE;      /* an honest, certain root */
	netsim_add_file(ns, f.path, f.data, f.size);
	netsim_add_node(ns, &root, wants, 1, 0);
	evil = netsim_add_node(ns, &c, wants, 1, PFS_MSEC(300));     /* takes its slot */
	netsim_corrupt_sends(ns, evil);
	victim = netsim_add_node(ns, &c, wants, 1, PFS_MSEC(1500));
	cr_assert(netsim_run(ns, PFS_SEC(120)), "not done at %.1f s", netsim_now(ns) / 1e9);
	got = netsim_file(ns, victim, 0, &size, &done, &failed);
	cr_assert(done && size == f.size && !memcmp(got, f.data, size),
		  "the joiner did not complete with the server's file");
	st = pfs_engine_stats(netsim_engine(ns, victim));
	cr_assert_eq(st->verify_failures, 2, "%llu whole-file failures",
		     (unsigned long long)st->verify_failures);
	cr_assert_eq(st->distrusted, 1);
	cr_assert_lt(netsim_counts(ns)->chunk_sends, 200, "%llu chunk sends",
		     (unsigned long long)netsim_counts(ns)->chunk_sends);
	netsim_free(ns);
	free(f.data);
}

/* Found by fuzz_site: a root whose fetches failed (the server was down)
 * said FAILED, and later yielded to a stronger root that could fetch. It
 * joined that root as a member whose file had failed: it took no chunk
 * and asked for them all again every ack_interval, for as long as it
 * lived. A root whose file failed yields into taking no further part. */
Test(faults, failed_root_yields_without_joining)
{
	struct netsim_params p = { .seed = 4, .latency = PFS_MSEC(1), .upstream_rate = 1000000,
				   .server_down_from = 0, .server_down_until = PFS_SEC(15) };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "later.bin", 42240, make_file(42240, 4) };  /* 30 chunks */
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845"), strong = c;
	size_t size;
	bool done, failed;
	int early, late;

	strong.priority_class = PFS_CLASS_APPLIANCE;
	netsim_add_file(ns, f.path, f.data, f.size);
	early = netsim_add_node(ns, &c, wants, 1, 0);
	late = netsim_add_node(ns, &strong, wants, 1, PFS_SEC(20));
	netsim_run_until(ns, PFS_SEC(90));
	netsim_file(ns, early, 0, &size, &done, &failed);
	cr_assert(failed, "the first root did not fail with the server down");
	netsim_file(ns, late, 0, &size, &done, &failed);
	cr_assert(done, "the second root did not fetch the file");
	cr_assert_gt(netsim_event_count(ns, PFS_EV_YIELD), 0, "nobody yielded: the test tests nothing");
	cr_assert_lt(netsim_counts(ns)->chunk_sends, 30, "%llu chunks sent to a node that failed",
		     (unsigned long long)netsim_counts(ns)->chunk_sends);
	netsim_free(ns);
	free(f.data);
}

/* Found by fuzz_site (this is its site): an unsigned file, eight devices
 * booting together, seven of them altering every chunk they send, 8 % loss
 * for 22 s, the server down for the first 5 s. The honest member left each
 * parent after two bad files but remembers only EXCLUDE_MAX of them: it
 * cycled through the forgers for good, a whole file each time (1,286
 * whole-file failures in 300 s). A third neighbour left for bad data sends
 * it to the server, once (docs/protocol.md 6.7). */
Test(faults, member_among_many_forgers_fetches_the_file_itself)
{
	struct netsim_params p = { .seed = 0xff03, .loss = 0.08, .loss_until = PFS_SEC(22),
				   .latency = PFS_MSEC(1) / 10 + PFS_MSEC(7),
				   .upstream_rate = 760000, .upstream_block = 4096,
				   .server_down_from = 0, .server_down_until = PFS_SEC(5) };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "forged.bin", 13613, make_file(13613, 12) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845");
	const struct pfs_engine_stats *st;
	size_t size;
	bool done, failed;
	const uint8_t *got;

	c.chunk_size = 1024;
	c.max_children = 1;
	netsim_add_file(ns, f.path, f.data, f.size);
	netsim_add_node(ns, &c, wants, 1, PFS_MSEC(2800));              /* honest */
	for (int i = 0; i < 7; i++)
		netsim_corrupt_sends(ns, netsim_add_node(ns, &c, wants, 1, PFS_MSEC(2800)));
	netsim_run_until(ns, PFS_SEC(120));
	got = netsim_file(ns, 0, 0, &size, &done, &failed);
	cr_assert(done && size == f.size && !memcmp(got, f.data, size),
		  "the honest member did not complete with the server's file");
	st = pfs_engine_stats(netsim_engine(ns, 0));
	cr_assert_leq(st->distrusted, 3, "%llu neighbours left", (unsigned long long)st->distrusted);
	cr_assert_leq(st->verify_failures, 6, "%llu whole-file failures",
		      (unsigned long long)st->verify_failures);
	cr_assert_lt(netsim_counts(ns)->chunk_sends, 2000, "%llu chunk sends",
		     (unsigned long long)netsim_counts(ns)->chunk_sends);
	netsim_free(ns);
	free(f.data);
}

/* Found by fuzz_site: ports of 40 kB/s (a chunk takes 36 ms to leave) and
 * 16 % loss. Each ACK, every ack_interval, listed the holes, and each was
 * repaired at once: the repairs queued at the parent's port faster than it
 * drained them, the children saw their own repairs later and later, and
 * the parent sent 9,594 chunks where 46 were needed. A repair now waits
 * for what is on its way to have had time to arrive (the child's measured
 * round trip, docs/protocol.md 6.3), and longer while repairs bring
 * nothing. */
Test(faults, slow_lossy_port_is_no_retransmission_storm)
{
	struct netsim_params p = { .seed = 16, .loss = 0.16, .loss_until = PFS_SEC(20),
				   .latency = PFS_MSEC(1), .upstream_rate = 400000,
				   .lan_rate = 40000 };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "slow.bin", 140800, make_file(140800, 16) };   /* 100 chunks */
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845"), root = c;
	const uint64_t nchunks = 100, members = 2;

	root.priority_class = PFS_CLASS_APPLIANCE;
	root.max_children = members;
	c.max_children = 1;
	netsim_add_file(ns, f.path, f.data, f.size);
	netsim_add_node(ns, &root, wants, 1, 0);
	for (uint64_t i = 0; i < members; i++)
		netsim_add_node(ns, &c, wants, 1, PFS_MSEC(300));
	cr_assert(netsim_run(ns, PFS_SEC(120)), "not done at %.1f s", netsim_now(ns) / 1e9);
	assert_all_files(ns, &f, 1, 1);
	/* 16 % lost: 1.2 sends a chunk, a few more where repairs are lost. */
	cr_assert_leq(netsim_counts(ns)->chunk_sends, 2 * members * nchunks,
		      "%llu chunk sends for %llu x %llu chunks",
		      (unsigned long long)netsim_counts(ns)->chunk_sends,
		      (unsigned long long)members, (unsigned long long)nchunks);
	netsim_free(ns);
	free(f.data);
}

/* Found by fuzz_site: a root whose fetch failed (the server down) had a
 * retry due when a stronger root came and it yielded. The yield aborted
 * no fetch (none was running) and left the retry armed: it fired while
 * the node was a member, and the fetch ran beside the chunks from its
 * parent; its end declared the file complete with the server's digest
 * over bytes the parent had written since (an unsigned file: the node
 * said FILE_DONE over a file that was not the server's). A yield, like
 * any end of a root, forgets its retry. */
Test(faults, yielded_root_does_not_fetch_later)
{
	struct netsim_params p = { .seed = 21, .latency = PFS_MSEC(1), .upstream_rate = 400000,
				   .server_down_from = 0, .server_down_until = PFS_MSEC(2200) };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "retry.bin", 1000000, make_file(1000000, 21) };  /* 2.5 s */
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845"), strong = c;
	struct pfs_hier_info info;
	uint32_t starts;
	int weak, late;

	strong.priority_class = PFS_CLASS_APPLIANCE;
	netsim_add_file(ns, f.path, f.data, f.size);
	weak = netsim_add_node(ns, &c, wants, 1, 0);
	late = netsim_add_node(ns, &strong, wants, 1, PFS_MSEC(1600));
	/* Root at 1 s; its fetches fail at 1 s and 2.1 s (the next one due
	 * 2 s later); the appliance is root at 2.6 s and the first yields. */
	netsim_run_until(ns, PFS_SEC(3));
	cr_assert_eq(netsim_event_count(ns, PFS_EV_YIELD), 1, "no yield by 3 s");
	pfs_engine_hier_info(netsim_engine(ns, weak), 0, &info);
	cr_assert(!info.is_root && !info.upstream_active && netsim_event_count(ns, PFS_EV_UPSTREAM_RETRY) == 2,
		  "not a member with a retry pending at 3 s (%s)", info.state);
	starts = info.upstream_starts;
	netsim_run_until(ns, PFS_SEC(8));      /* past the retry, and past the end */
	assert_all_files(ns, &f, 1, 1);
	pfs_engine_hier_info(netsim_engine(ns, weak), 0, &info);
	cr_assert_eq(info.upstream_starts, starts, "the root that yielded fetched %u more times",
		     info.upstream_starts - starts);
	cr_assert_eq(info.parent_id, pfs_engine_config(netsim_engine(ns, late))->node_id);
	netsim_free(ns);
	free(f.data);
}

/* A file that fails while its digest is still being computed (pfs-peer and
 * pfs-control hash in steps) stays failed: the digest that comes after is
 * no second verdict. Every node holds the whole file when its root dies
 * and the server goes away; each takes 30 s to hash it, so the roots
 * elected after fail with their digests pending, and the members give up
 * with theirs pending too. A late digest once completed such a file: the
 * driver was told FILE_FAILED, then FILE_DONE. */
Test(faults, file_failed_while_hashing_is_not_done_later)
{
	struct netsim_params p = { .seed = 25, .latency = PFS_MSEC(1), .upstream_rate = 1000000,
				   .server_down_from = PFS_MSEC(1900),
				   .server_down_until = PFS_TIME_NEVER, .hash_delay = PFS_SEC(30) };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "hashing.bin", 50000, make_file(50000, 25) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845");

	netsim_add_file(ns, f.path, f.data, f.size);
	for (int i = 0; i < 5; i++)
		netsim_add_node(ns, &c, wants, 1, 0);
	cr_assert_eq(netsim_kill_roots_at(ns, PFS_SEC(2)), 0);
	cr_assert(netsim_run(ns, PFS_SEC(25)), "the roots after the first must fail by 25 s");
	cr_assert_eq(netsim_roots_killed(ns), 1);
	cr_assert_eq(failed_with(ns, PFS_FAIL_SERVER), 4, "all but the dead root fail");
	netsim_run_until(ns, PFS_SEC(40));     /* the digests come */
	for (int i = 0; i < netsim_nodes(ns); i++) {
		size_t size; bool done, failed;
		netsim_file(ns, i, 0, &size, &done, &failed);
		cr_assert(!done || !failed, "node %d: done and failed", i);
	}
	cr_assert_eq(netsim_counts(ns)->finished_twice, 0, "a driver was told a file ended twice");
	netsim_free(ns);
	free(f.data);
}
