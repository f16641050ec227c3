/* test_engine_trust.c - the engine among hostile peers, in memory: a member
 * forwarding chunks that are not the signed ones, site-key tags (forged,
 * replayed, missing), a root whose manifest nobody trusts, and a node that
 * already holds the verified file (docs/security.md).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netsim.h"
#include "sim_helpers.h"

/* A signed manifest of data for path, by a fresh key added to *t. */
static uint8_t *sign_for(const char *path, const uint8_t *data, size_t size, uint32_t chunk,
			 struct pfs_trust *t, size_t *len)
{
	uint8_t seed[32], pub[32], *m;

	cr_assert_eq(pfs_keypair_new(seed, pub), 0);
	cr_assert_eq(pfs_trust_add_key(t, pub), 0);
	m = pfs_manifest_from_buffer(data, size, path, chunk, 1, pfs_key_id(pub), seed, len);
	cr_assert_not_null(m);
	return m;
}

/* Issue "Trust" section 7: a member that sends chunks with a valid CRC32C
 * and wrong bytes. No honest node stores or forwards one of them, the nodes
 * it fed leave it, and every honest node completes with the signed file. */
Test(engine, corrupting_member_is_left_and_nothing_bad_is_forwarded)
{
	struct netsim_params p = { .seed = 21, .latency = PFS_MSEC(1), .upstream_rate = 4000000 };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "signed.bin", 300000, make_file(300000, 21) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845"), root = c;
	struct pfs_trust trust = { 0 };
	uint64_t forged = 0, distrusted = 0, honest_bad = 0;
	size_t mlen;
	uint8_t *man = sign_for(f.path, f.data, f.size, c.chunk_size, &trust, &mlen);
	int evil;

	c.trust = root.trust = &trust;
	root.priority_class = PFS_CLASS_APPLIANCE;      /* an honest, certain root */
	netsim_add_file(ns, f.path, f.data, f.size);
	cr_assert_eq(netsim_add_manifest(ns, f.path, man, mlen), 0);
	netsim_add_node(ns, &root, wants, 1, 0);
	evil = netsim_add_node(ns, &c, wants, 1, PFS_MSEC(300));  /* joins first */
	netsim_corrupt_sends(ns, evil);
	for (int i = 0; i < 10; i++)
		netsim_add_node(ns, &c, wants, 1, PFS_MSEC(1500 + 10 * i));
	cr_assert(netsim_run(ns, PFS_SEC(120)), "the rollout must finish");
	assert_all_files(ns, &f, 1, 1);
	for (int n = 0; n < netsim_nodes(ns); n++) {
		const struct pfs_engine_stats *s = pfs_engine_stats(netsim_engine(ns, n));
		forged += s->chunks_forged;
		distrusted += s->distrusted;
		if (n != evil)
			honest_bad += s->upstream_bad_chunks;
	}
	cr_assert_gt(forged, 0, "the hostile member fed nobody: the test tests nothing");
	cr_assert_gt(distrusted, 0, "its children never left it");
	cr_assert_eq(netsim_counts(ns)->bad_forwards, 0, "an honest node forwarded a bad chunk");
	cr_assert_eq(netsim_counts(ns)->chunks_mismatched, 0, "a bad chunk was stored");
	cr_assert_eq(honest_bad, 0);
	/* Its children re-joined elsewhere: no honest node fell back to the
	 * server, and the rollout took seconds, not the 30 s fallback. */
	cr_assert_eq(netsim_upstream_starts(ns, "CP-8845", f.path), 1);
	cr_assert_lt(netsim_now(ns), PFS_SEC(10), "finished at %.1f s", netsim_now(ns) / 1e9);
	netsim_free(ns);
	free(man);
	free(f.data);
}

static uint64_t seq_a, seq_b;

static struct pfs_site_auth site_key(uint8_t id, uint8_t fill, uint64_t *seq)
{
	struct pfs_site_auth s = { .nkeys = 1, .key_id = { id }, .tx_seq = seq };

	memset(s.key[0], fill, sizeof(s.key[0]));
	return s;
}

/* The first CLAIM an engine broadcasts for path, copied into out. */
static size_t first_claim(struct pfs_engine *e, const char *path, uint8_t *out)
{
	uint8_t buf[PFS_DGRAM_MAX];
	struct pfs_action a;

	cr_assert_geq(pfs_engine_want(e, 0, path), 0);
	pfs_engine_timeout(e, PFS_SEC(1));
	while (pfs_engine_poll(e, PFS_SEC(1), &a, buf, sizeof(buf)) > 0)
		if (a.type == PFS_ACT_SEND && a.bcast) {
			memcpy(out, a.msg, a.len);
			return a.len;
		}
	cr_assert_fail("no CLAIM sent");
	return 0;
}

/* docs/protocol.md 3.4: tags verify, and each failure has its own counter. */
Test(engine, site_key_tags_verify_and_replays_are_refused)
{
	struct pfs_site_auth ka = site_key(7, 0xaa, &seq_a), kb = site_key(7, 0xaa, &seq_b);
	struct pfs_site_auth other = site_key(9, 0xaa, &seq_b), wrong = site_key(7, 0xbb, &seq_b);
	struct pfs_engine_config ca = base_config("M"), cb = ca, cc = ca;
	struct pfs_addr src = { 0x0a000001, PFS_PORT };
	uint8_t claim[PFS_DGRAM_MAX], plain[PFS_DGRAM_MAX];
	struct pfs_engine *a, *b, *c, *keyless;
	const struct pfs_engine_stats *st;
	size_t n, np;

	seq_a = 5ull << 32;             /* boot count 5 */
	ca.node_id = 1; ca.site = &ka;
	cb.node_id = 2; cb.site = &kb;
	cc.node_id = 3;
	a = pfs_engine_new(&ca);
	b = pfs_engine_new(&cb);
	keyless = pfs_engine_new(&cc);
	cr_assert(a && b && keyless);
	n = first_claim(a, "f.bin", claim);
	np = first_claim(keyless, "f.bin", plain);
	cr_assert_eq(claim[4], PFS_HF_AUTH);
	cr_assert_eq(claim[5], PFS_TAG_LEN);
	cr_assert_eq(claim[n - PFS_TAG_LEN], 7);
	pfs_engine_want(b, 0, "f.bin");
	st = pfs_engine_stats(b);
	cr_assert_eq(pfs_engine_recv(b, PFS_SEC(1), &src, claim, n), 0);
	cr_assert_eq(st->auth_ok, 1);
	pfs_engine_recv(b, PFS_SEC(1), &src, claim, n);
	cr_assert_eq(st->auth_drops[PFS_AUTH_REPLAYED], 1, "a replay was taken");
	claim[n - 1] ^= 1;
	pfs_engine_recv(b, PFS_SEC(1), &src, claim, n);
	cr_assert_eq(st->auth_drops[PFS_AUTH_BAD_TAG], 1);
	claim[n - 1] ^= 1;
	pfs_engine_recv(b, PFS_SEC(1), &(struct pfs_addr){ 0x0a000003, PFS_PORT }, plain, np);
	cr_assert_eq(st->auth_drops[PFS_AUTH_NO_TAG], 1);
	cr_assert_eq(st->auth_ok, 1);
	/* Another key id, and the right id with the wrong key. */
	cb.site = &other;
	c = pfs_engine_new(&cb);
	pfs_engine_want(c, 0, "f.bin");
	pfs_engine_recv(c, PFS_SEC(1), &src, claim, n);
	cr_assert_eq(pfs_engine_stats(c)->auth_drops[PFS_AUTH_UNKNOWN_KEY], 1);
	pfs_engine_free(c);
	cb.site = &wrong;
	c = pfs_engine_new(&cb);
	pfs_engine_want(c, 0, "f.bin");
	pfs_engine_recv(c, PFS_SEC(1), &src, claim, n);
	cr_assert_eq(pfs_engine_stats(c)->auth_drops[PFS_AUTH_BAD_TAG], 1);
	/* A restarted sender (higher boot count) is accepted again; an old
	 * sequence is not. */
	pfs_engine_free(a);
	seq_a = 6ull << 32;
	a = pfs_engine_new(&ca);
	n = first_claim(a, "f.bin", claim);
	pfs_engine_recv(b, PFS_SEC(2), &src, claim, n);
	cr_assert_eq(st->auth_ok, 2, "the restarted sender was refused");
	pfs_engine_free(a);
	pfs_engine_free(b);
	pfs_engine_free(c);
	pfs_engine_free(keyless);
}

/* Issue "Trust" section 7 (a), in memory: a node without the site key
 * claiming class 15 is ignored; the keyed nodes build their own tree, with
 * one fetch, and count its messages as untagged. */
Test(engine, outsider_without_site_key_is_ignored)
{
	struct netsim_params p = { .seed = 31, .latency = PFS_MSEC(1) };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "sk.bin", 50000, make_file(50000, 31) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845"), out = c;
	struct pfs_site_auth k = site_key(3, 0x5c, &seq_a);
	uint64_t untagged = 0;

	seq_a = 1ull << 32;
	c.site = &k;
	out.priority_class = 15;
	netsim_add_file(ns, f.path, f.data, f.size);
	int outsider = netsim_add_node(ns, &out, wants, 1, 0);
	for (int i = 0; i < 8; i++)
		netsim_add_node(ns, &c, wants, 1, PFS_MSEC(5 * i));
	cr_assert(netsim_run(ns, PFS_SEC(60)));
	assert_all_files(ns, &f, 1, 1);
	for (int n = 0; n < netsim_nodes(ns); n++)
		if (n != outsider)
			untagged += pfs_engine_stats(netsim_engine(ns, n))->auth_drops[PFS_AUTH_NO_TAG];
	cr_assert_gt(untagged, 0);
	/* Its own fetch, and one for the keyed tree: no keyed node joined it. */
	cr_assert_eq(netsim_upstream_starts(ns, "CP-8845", f.path), 2);
	netsim_free(ns);
	free(f.data);
}

/* Issue "Trust" section 7: a class-15 root whose manifest (and file) are
 * signed by a key the others do not trust. No honest node takes a chunk of
 * it; they leave it, elect among themselves and all complete with the
 * publisher's file. */
Test(engine, root_with_untrusted_manifest_is_left)
{
	struct netsim_params p = { .seed = 41, .latency = PFS_MSEC(1), .upstream_rate = 4000000 };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "fw.bin", 120000, make_file(120000, 41) };
	uint8_t *fake = make_file(120000, 42);
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845"), rc = c;
	struct pfs_trust trust = { 0 }, rogue_trust = { 0 };
	uint64_t distrusted = 0, forged = 0;
	size_t mlen, rlen;
	uint8_t *man = sign_for(f.path, f.data, f.size, c.chunk_size, &trust, &mlen);
	uint8_t *rman = sign_for(f.path, fake, f.size, c.chunk_size, &rogue_trust, &rlen);
	int rogue;

	c.trust = &trust;
	rc.trust = &rogue_trust;
	rc.priority_class = 15;
	netsim_add_file(ns, f.path, f.data, f.size);
	netsim_add_manifest(ns, f.path, man, mlen);
	rogue = netsim_add_node(ns, &rc, wants, 1, 0);
	cr_assert_eq(netsim_rogue_server(ns, rogue, f.path, fake, f.size, rman, rlen), 0);
	for (int i = 0; i < 8; i++)
		netsim_add_node(ns, &c, wants, 1, PFS_MSEC(1500 + 20 * i));  /* it is root by then */
	cr_assert(netsim_run(ns, PFS_SEC(60)), "the rollout must finish");
	for (int n = 0; n < netsim_nodes(ns); n++) {
		size_t size; bool done, failed;
		const uint8_t *got = netsim_file(ns, n, 0, &size, &done, &failed);
		const struct pfs_engine_stats *s = pfs_engine_stats(netsim_engine(ns, n));

		if (n == rogue)
			continue;
		cr_assert(done && size == f.size && !memcmp(got, f.data, size), "node %d", n);
		distrusted += s->distrusted;
		forged += s->chunks_forged + s->chunks_unverified;
		cr_assert_eq(s->manifests_ok, 1, "node %d verified %llu manifests", n,
			     (unsigned long long)s->manifests_ok);
	}
	cr_assert_gt(distrusted, 0, "nobody left the untrusted root: the test tests nothing");
	cr_assert_eq(forged, 0, "a chunk of the untrusted root reached an honest node");
	cr_assert_eq(netsim_counts(ns)->chunks_mismatched, 0);
	cr_assert_eq(netsim_counts(ns)->bad_forwards, 0);
	/* The rogue's own fetch, and one for the honest tree. */
	cr_assert_eq(netsim_upstream_starts(ns, "CP-8845", f.path), 2);
	netsim_free(ns);
	free(man);
	free(rman);
	free(fake);
	free(f.data);
}

/* A node that already holds the verified file (an appliance with a warm
 * cache, demoted below the devices) joins as a member: it takes no chunk,
 * keeps its copy, and serves its children from it (issue 14 section 5). */
Test(engine, member_with_the_file_already_takes_nothing)
{
	struct netsim_params p = { .seed = 51, .latency = PFS_MSEC(1), .upstream_rate = 2000000 };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "warm.bin", 200000, make_file(200000, 51) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845"), warm = c;
	struct pfs_trust trust = { 0 };
	size_t mlen;
	uint8_t *man = sign_for(f.path, f.data, f.size, c.chunk_size, &trust, &mlen);
	int w;

	c.trust = warm.trust = &trust;
	warm.priority_class = 0;                /* below the devices: never root */
	warm.max_children = 8;
	netsim_add_file(ns, f.path, f.data, f.size);
	netsim_add_manifest(ns, f.path, man, mlen);
	netsim_add_node(ns, &c, wants, 1, 0);
	w = netsim_add_node(ns, &warm, wants, 1, PFS_MSEC(300));
	netsim_preload(ns, w);
	for (int i = 0; i < 8; i++)
		netsim_add_node(ns, &c, wants, 1, PFS_MSEC(1500 + 10 * i));
	cr_assert(netsim_run(ns, PFS_SEC(60)));
	assert_all_files(ns, &f, 1, 1);
	struct pfs_hier_info info;
	pfs_engine_hier_info(netsim_engine(ns, w), 0, &info);
	cr_assert_str_eq(info.state, "member", "the warm node is %s", info.state);
	cr_assert_eq(pfs_engine_stats(netsim_engine(ns, w))->chunks_rx, 0,
		     "the warm node took chunks it held");
	cr_assert_gt(pfs_engine_stats(netsim_engine(ns, w))->chunks_tx, 0,
		     "the warm node served nobody: the test tests nothing");
	cr_assert_eq(netsim_upstream_starts(ns, "CP-8845", f.path), 1);
	netsim_free(ns);
	free(man);
	free(f.data);
}

/* Found by fuzz_site: a chain of one-slot nodes under a root with one slot,
 * whose only child forges chunks. Its child leaves it and is redirected
 * back to it by the root: it must not ask it again (the ACCEPT of a node it
 * excludes is dropped unheard while that node keeps a slot for it), and the
 * joiners sent into that subtree and refused there must not walk root ->
 * member -> REFUSE at the speed of the LAN. Every honest node completes,
 * by the server if the tree has no room for it. */
Test(engine, subtree_that_refuses_every_joiner_is_no_storm)
{
	struct netsim_params p = { .seed = 5, .latency = PFS_MSEC(1) / 10,
				   .upstream_rate = 400000 };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "chain.bin", 60000, make_file(60000, 5) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845"), root;
	struct pfs_trust trust = { 0 };
	size_t mlen;
	uint8_t *man = sign_for(f.path, f.data, f.size, c.chunk_size, &trust, &mlen);
	uint64_t control;
	int evil;

	c.trust = &trust;
	c.max_children = 1;
	root = c;
	root.priority_class = PFS_CLASS_APPLIANCE;
	netsim_add_file(ns, f.path, f.data, f.size);
	cr_assert_eq(netsim_add_manifest(ns, f.path, man, mlen), 0);
	netsim_add_node(ns, &root, wants, 1, 0);
	evil = netsim_add_node(ns, &c, wants, 1, PFS_MSEC(300));
	netsim_corrupt_sends(ns, evil);
	for (int i = 0; i < 4; i++)     /* each joins the last: a chain */
		netsim_add_node(ns, &c, wants, 1, PFS_MSEC(1400 + 100 * i));
	cr_assert(netsim_run(ns, PFS_SEC(120)), "the rollout must finish");
	for (int n = 0; n < netsim_nodes(ns); n++) {
		size_t size;
		bool done, failed;
		const uint8_t *got = netsim_file(ns, n, 0, &size, &done, &failed);

		if (n == evil)
			continue;
		cr_assert(done && size == f.size && !memcmp(got, f.data, size),
			  "node %d did not complete with the signed file", n);
	}
	cr_assert_gt(pfs_engine_stats(netsim_engine(ns, evil + 1))->distrusted, 0,
		     "the hostile node's child never left it: the test tests nothing");
	control = netsim_counts(ns)->datagrams_sent - netsim_counts(ns)->chunk_sends;
	cr_assert_lt(control, 400 * (uint64_t)(netsim_now(ns) / PFS_SEC(1) + 1),
		     "%llu control datagrams among 6 nodes in %.1f s: a storm",
		     (unsigned long long)control, netsim_now(ns) / 1e9);
	cr_assert_lt(netsim_event_count(ns, PFS_EV_REDIRECTED), 400, "%llu redirects",
		     (unsigned long long)netsim_event_count(ns, PFS_EV_REDIRECTED));
	netsim_free(ns);
	free(man);
	free(f.data);
}

/* Found by fuzz_site: an empty signed file. The root's manifest verified
 * with no chunk to wait for, so the file was whole and hashed at once
 * (FILE_DONE), and the fetch's end, zero bytes later, made it complete a
 * second time (FILE_DONE again: a driver told twice). */
Test(engine, empty_signed_file_is_done_once)
{
	struct netsim_params p = { .seed = 61, .latency = PFS_MSEC(1), .upstream_rate = 1000000 };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "empty.bin", 0, make_file(0, 61) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845");
	struct pfs_trust trust = { 0 };
	size_t mlen;
	uint8_t *man = sign_for(f.path, f.data, f.size, c.chunk_size, &trust, &mlen);

	c.trust = &trust;
	netsim_add_file(ns, f.path, f.data, f.size);
	cr_assert_eq(netsim_add_manifest(ns, f.path, man, mlen), 0);
	for (int i = 0; i < 3; i++)
		netsim_add_node(ns, &c, wants, 1, PFS_MSEC(10 * i));
	/* One holds it already (found by fuzz_site: told twice, by the
	 * manifest that finished it and by the holding). */
	netsim_preload(ns, netsim_add_node(ns, &c, wants, 1, PFS_MSEC(400)));
	cr_assert(netsim_run(ns, PFS_SEC(30)));
	assert_all_files(ns, &f, 1, 1);         /* each told once */
	cr_assert_eq(netsim_upstream_starts(ns, "CP-8845", f.path), 1);
	netsim_free(ns);
	free(man);
	free(f.data);
}

/* One site, the same file signed or not: how many whole-file passes. */
static uint64_t whole_file_passes(bool is_signed, uint32_t seed)
{
	struct netsim_params p = { .seed = seed, .latency = PFS_MSEC(1), .upstream_rate = 4000000 };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "fw.bin", 200000, make_file(200000, seed) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845");
	struct pfs_trust trust = { 0 };
	size_t mlen;
	uint8_t *man = sign_for(f.path, f.data, f.size, c.chunk_size, &trust, &mlen);
	uint64_t passes;

	netsim_add_file(ns, f.path, f.data, f.size);
	if (is_signed) {
		c.trust = &trust;
		cr_assert_eq(netsim_add_manifest(ns, f.path, man, mlen), 0);
	}
	for (int i = 0; i < 8; i++)
		netsim_add_node(ns, &c, wants, 1, PFS_MSEC(10 * i));
	cr_assert(netsim_run(ns, PFS_SEC(60)), "the rollout must finish");
	assert_all_files(ns, &f, 1, 1);
	for (int n = 0; n < netsim_nodes(ns); n++)
		cr_assert_eq(pfs_engine_needs_file_hash(netsim_engine(ns, n), 0), !is_signed);
	passes = netsim_counts(ns)->files_hashed;
	netsim_free(ns);
	free(man);
	free(f.data);
	return passes;
}

/* docs/protocol.md 6.6: a signed file is verified chunk by chunk, each
 * chunk against its signed digest before it is stored, so no member hashes
 * the whole file again (a device's CPU, twice the chunk checks' otherwise);
 * an unsigned file, whose chunks only passed a CRC, is hashed by each
 * member (the root's fetch hashes what it receives). */
Test(engine, signed_file_needs_no_whole_file_pass)
{
	cr_assert_eq(whole_file_passes(true, 71), 0, "a member hashed a signed file again");
	cr_assert_eq(whole_file_passes(false, 71), 7, "each of 7 members hashes an unsigned file");
}

/* docs/protocol.md 6.7: a member asks for its manifest several bursts
 * ahead, so a large one costs about the time its bytes take, not one round
 * trip per 32 pieces. A warm root (the file held) 20 ms away, and a 256 KB
 * manifest (16,384 chunks of 128 bytes: eight bursts): asked one burst at a
 * time it took more than eight round trips. */
Test(engine, large_manifest_is_fetched_bursts_ahead)
{
	struct netsim_params p = { .seed = 81, .latency = PFS_MSEC(20), .upstream_rate = 4000000 };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "big-manifest.bin", 16384 * 128, make_file(16384 * 128, 81) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config("CP-8845"), root;
	struct pfs_trust trust = { 0 };
	size_t mlen;
	uint8_t *man;
	struct pfs_hier_info info = { 0 };
	pfs_time_t joined, verified = PFS_TIME_NEVER, rtt = 2 * p.latency;
	int r, m;

	c.chunk_size = 128;
	man = sign_for(f.path, f.data, f.size, c.chunk_size, &trust, &mlen);
	cr_assert_gt(mlen, 8 * 32 * 1024, "a manifest of %zu bytes: fewer than eight bursts", mlen);
	c.trust = &trust;
	root = c;
	root.priority_class = PFS_CLASS_APPLIANCE;
	netsim_add_file(ns, f.path, f.data, f.size);
	cr_assert_eq(netsim_add_manifest(ns, f.path, man, mlen), 0);
	r = netsim_add_node(ns, &root, wants, 1, 0);
	netsim_preload(ns, r);
	m = netsim_add_node(ns, &c, wants, 1, PFS_MSEC(500));
	while (netsim_now(ns) < PFS_SEC(30) && verified == PFS_TIME_NEVER) {
		netsim_run_until(ns, netsim_now(ns) + PFS_MSEC(1));
		pfs_engine_hier_info(netsim_engine(ns, m), 0, &info);
		if (info.signed_ok)
			verified = netsim_now(ns);
	}
	joined = netsim_attached_at(ns, m, 0);
	cr_assert_neq(verified, PFS_TIME_NEVER, "the member never verified its manifest");
	cr_assert_neq(joined, PFS_TIME_NEVER);
	cr_log_info("manifest of %zu bytes verified %.0f ms after the join (%.0f ms round trips)",
		    mlen, (verified - joined) / 1e6, rtt / 1e6);
	cr_assert_lt(verified - joined, 4 * rtt, "%.0f ms: one burst a round trip",
		     (verified - joined) / 1e6);
	cr_assert(netsim_run(ns, PFS_SEC(60)), "the rollout must finish");
	assert_all_files(ns, &f, 1, 1);
	netsim_free(ns);
	free(man);
	free(f.data);
}
