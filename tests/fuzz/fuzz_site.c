/* fuzz_site.c - libFuzzer target: a whole site of engines, then calm.
 *
 * fuzz_engine plays one engine against scripted peers; this one runs two to
 * eight real engines on netsim (sim/netsim.h) with a site drawn from the
 * input: device or appliance class, relay or not, cut-through, store-and-
 * forward or alone from the server, one or two child slots, two models
 * sharing a path, late starters and late wanters, warm caches, auto-join,
 * nodes that die, nodes that alter every chunk they send or serve a file of
 * their own, a lossy LAN with latency, a server that is down for a while,
 * signed files or not, a site key or not. Chaos (loss, deaths, the server's
 * outage) lasts until a calm time; then the network is clean. Checked:
 *   safety, always: no node sends a chunk it does not hold; every node that
 *     says FILE_DONE holds the server's file (with signed files, or when no
 *     node serves a file of its own); with signed files no honest node
 *     stores or forwards a byte that is not the publisher's;
 *   liveness, when the honest nodes can win (signed files, or no hostile
 *     node): every live node finishes within five minutes of the calm, and
 *     none fails unless the server was down (or, by design, three roots
 *     whose own server failed them said so);
 *   no storm: a few hundred control datagrams a node a second at most, and
 *     each chunk sent a bounded number of times;
 *   determinism: the same site replays event for event (netsim_digest).
 * A violation aborts, naming it; ASan and UBSan watch the rest.
 * PFS_FUZZ_TRACE=1 prints the site and every engine event.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "netsim.h"
#include "site_script.h"
#include "pfs_engine.h"
#include "pfs_manifest.h"

#define PATH        "fw/site.bin"
#define MAX_NODES   8
#define MAX_CHUNKS  24
#define FILE_MAX    (MAX_CHUNKS * 1408)
#define STORM_PER_SEC     200   /* control datagrams a node may send a second */
#define STORM_CHUNK_SENDS 100   /* sends of each chunk, per node */

/* What the input made of the site, kept to judge the run. */
struct site {
	struct netsim_params p;
	bool signed_files, site_key, server_down;
	uint32_t chunk;
	size_t size;
	pfs_time_t calm;
	int nnodes;
	struct {
		struct pfs_engine_config cfg;
		pfs_time_t start, want_at, kill_at;     /* 0: never killed */
		bool preload, autojoin, corrupt, rogue;
	} node[MAX_NODES];
};

static const char *const models[2] = { "CP-8845", "CP-7841" };
static uint8_t truth[FILE_MAX], fake[FILE_MAX];
static struct pfs_trust trust;
static const uint8_t pub_seed[PFS_KEY_LEN] = { 9, 9, 9 };      /* fuzzing only */
static const uint8_t rogue_seed[PFS_KEY_LEN] = { 6, 6, 6 };    /* a key nobody trusts */
static uint64_t pub_id, rogue_id;
static uint64_t seqs[MAX_NODES];
static struct pfs_site_auth site_auth[MAX_NODES];

static void init_once(void)
{
	uint8_t pub[PFS_KEY_LEN], rpub[PFS_KEY_LEN];

	for (size_t i = 0; i < FILE_MAX; i++) {
		truth[i] = (uint8_t)(i * 131 + 17);
		fake[i] = (uint8_t)(i * 29 + 3);
	}
	if (pfs_keypair_public(pub_seed, pub) < 0 || pfs_keypair_public(rogue_seed, rpub) < 0 ||
	    pfs_trust_add_key(&trust, pub) < 0)
		abort();
	pub_id = pfs_key_id(pub);
	rogue_id = pfs_key_id(rpub);
	for (int i = 0; i < MAX_NODES; i++) {
		site_auth[i] = (struct pfs_site_auth){ .nkeys = 1, .key_id = { 3 },
						       .tx_seq = &seqs[i] };
		memset(site_auth[i].key[0], 0x3c, 32);
	}
}

/* The site, from the input (site_script.h); false if there is too little
 * of it. */
static bool read_site(struct cur *c, struct site *s)
{
	static const uint32_t chunks[4] = { 512, 700, 1024, 1408 };
	uint8_t flags = u8(c);

	if (c->n < 12)
		return false;
	memset(s, 0, sizeof(*s));
	s->signed_files = flags & SS_F_SIGNED;
	s->site_key = flags & SS_F_SITE_KEY;
	s->p.seed = u16(c);
	/* The real drivers hash a whole file in steps while the engine runs
	 * on: what may happen to a hierarchy in between. */
	if (flags & SS_F_SLOW_HASH)
		s->p.hash_delay = PFS_MSEC(1 + s->p.seed % 200);
	s->p.loss = (u8(c) % 5) * 0.04;
	s->p.latency = PFS_MSEC(1) / 10 + (pfs_time_t)(u8(c) % 30) * PFS_MSEC(1);
	s->p.upstream_rate = (1 + (uint64_t)u8(c)) * 8000;
	s->p.upstream_block = 4096;
	/* From 40 kB/s a port (320 kbit/s, far below any LAN): there the
	 * repairs once outpaced the link and piled up in its queue (a 23-chunk
	 * file, 9,594 sends; engine/repair_pace.c). */
	s->p.lan_rate = flags & SS_F_LAN_RATE ? (1 + (uint64_t)u8(c)) * 40000 : 0;
	s->chunk = chunks[u8(c) % 4];
	s->size = u16(c) % (MAX_CHUNKS * s->chunk + 1);
	s->calm = PFS_SEC(2 + u8(c) % 40);
	s->p.loss_until = s->calm;
	if (flags & SS_F_SERVER_DOWN) {
		s->server_down = true;
		s->p.server_down_from = PFS_MSEC(100) * (u8(c) % 100);
		s->p.server_down_until = s->p.server_down_from + PFS_SEC(1 + u8(c) % 20);
		if (s->p.server_down_until > s->calm)
			s->p.server_down_until = s->calm;
	}
	s->p.trace = getenv("PFS_FUZZ_TRACE") != NULL;
	s->nnodes = u8(c) % (MAX_NODES + 1);
	if (s->nnodes < 2)
		s->nnodes = 2;
	for (int i = 0; i < s->nnodes; i++) {
		struct pfs_engine_config *cfg = &s->node[i].cfg;
		uint8_t a = u8(c), b = u8(c), t = u8(c);

		pfs_engine_config_defaults(cfg);
		snprintf(cfg->model, sizeof(cfg->model), "%s", models[!!(b & SS_B_MODEL_B)]);
		cfg->priority_class = a & SS_A_APPLIANCE ? PFS_CLASS_APPLIANCE : PFS_CLASS_DEVICE;
		cfg->relay = a & SS_A_APPLIANCE && a & SS_A_RELAY ? PFS_RELAY_ON : PFS_RELAY_OFF;
		cfg->mode = (enum pfs_mode)((a >> 2 & 3) % 3);
		cfg->max_children = a & SS_A_TWO_SLOTS ? 2 : 1;
		cfg->chunk_size = s->chunk;
		cfg->max_chunks = MAX_CHUNKS + 1;
		cfg->trust = s->signed_files ? &trust : NULL;
		cfg->site = s->site_key ? &site_auth[i] : NULL;
		s->node[i].start = (pfs_time_t)t * PFS_MSEC(20);
		s->node[i].preload = a & SS_A_PRELOAD;
		s->node[i].autojoin = a & SS_A_AUTOJOIN && a & SS_A_APPLIANCE; /* pfs-control's */
		s->node[i].corrupt = flags & SS_F_CORRUPT && a & SS_A_CORRUPT;
		s->node[i].rogue = flags & SS_F_ROGUE && b & SS_B_ROGUE;
		if (b & SS_B_WANT_LATER)
			s->node[i].want_at = s->node[i].start + (pfs_time_t)(b >> 1 & 15) * PFS_MSEC(300);
		if (flags & SS_F_KILLS && b & SS_B_KILL)
			s->node[i].kill_at = PFS_MSEC(50) * (1 + u8(c) % 200) % s->calm + 1;
	}
	/* Each model present has an honest node that lives, wants the file by
	 * itself and names it to the others (not alone from the server):
	 * auto-joiners want it only once someone names it. */
	for (int m = 0; m < 2; m++) {
		int first = -1, ok = 0;

		for (int i = 0; i < s->nnodes; i++) {
			if (strcmp(s->node[i].cfg.model, models[m]))
				continue;
			if (first < 0)
				first = i;
			ok |= !s->node[i].autojoin && !s->node[i].kill_at && !s->node[i].corrupt &&
			      !s->node[i].rogue && s->node[i].cfg.mode != PFS_MODE_TFTP_ONLY;
		}
		if (first >= 0 && !ok) {
			s->node[first].autojoin = s->node[first].corrupt = s->node[first].rogue = false;
			s->node[first].kill_at = 0;
			if (s->node[first].cfg.mode == PFS_MODE_TFTP_ONLY)
				s->node[first].cfg.mode = PFS_MODE_CUT_THROUGH;
		}
	}
	return true;
}

static bool hostile(const struct site *s, int i)
{
	return s->node[i].corrupt || s->node[i].rogue;
}

/* A violation: named, the trace flushed, then the crash libFuzzer keeps. */
#define FAIL(...) do {                                          \
		fflush(stdout);                                 \
		fprintf(stderr, "fuzz_site: " __VA_ARGS__);     \
		fputc('\n', stderr);                            \
		abort();                                        \
	} while (0)

/* Build and run the site; its event digest. */
static uint64_t run_site(const struct site *s, const uint8_t *man, size_t man_len,
			 const uint8_t *rman, size_t rman_len)
{
	const char *wants[1] = { PATH };
	bool any_hostile = false, any_rogue = false, expect_live;
	struct netsim *ns = netsim_new(&s->p);
	uint64_t digest;

	if (!ns || netsim_add_file(ns, PATH, truth, s->size) < 0)
		abort();
	for (int i = 0; i < MAX_NODES; i++)
		seqs[i] = 1;            /* both runs the same: each node's first boot */
	if (man && netsim_add_manifest(ns, PATH, man, man_len) < 0)
		abort();
	for (int i = 0; i < s->nnodes; i++) {
		int n = netsim_add_node(ns, &s->node[i].cfg, wants, 1, s->node[i].start);

		if (n != i)
			abort();
		if (s->node[i].preload && !hostile(s, i))
			netsim_preload(ns, i);
		if (s->node[i].autojoin)
			netsim_autojoin(ns, i);
		if (s->node[i].want_at)
			netsim_want_at(ns, i, s->node[i].want_at);
		if (s->node[i].corrupt)
			netsim_corrupt_sends(ns, i);
		if (s->node[i].rogue &&
		    netsim_rogue_server(ns, i, PATH, fake, s->size, rman, rman_len) < 0)
			abort();
		if (s->node[i].kill_at && netsim_kill_at(ns, i, s->node[i].kill_at) < 0)
			abort();
		any_hostile |= hostile(s, i);
		any_rogue |= s->node[i].rogue;
	}
	expect_live = s->signed_files || !any_hostile;
	netsim_run(ns, s->calm + PFS_SEC(300));

	const struct netsim_counts *k = netsim_counts(ns);
	for (int i = 0; s->p.trace && i < s->nnodes; i++) {
		const struct pfs_engine_stats *es = pfs_engine_stats(netsim_engine(ns, i));

		fprintf(stderr, "  n%d: chunks rx %llu dup %llu bad %llu tx %llu retx %llu, "
			"stray %llu, excluded %llu, bad files %llu, distrusted %llu, data in %llu\n", i,
			(unsigned long long)es->chunks_rx, (unsigned long long)es->chunks_dup,
			(unsigned long long)es->chunks_bad, (unsigned long long)es->chunks_tx,
			(unsigned long long)es->chunks_retx, (unsigned long long)es->rx_stray,
			(unsigned long long)es->rx_excluded, (unsigned long long)es->verify_failures,
			(unsigned long long)es->distrusted,
			(unsigned long long)es->rx_msgs[PFS_MSG_DATA]);
	}
	/* No storm: a node sends a few control datagrams a second (claims,
	 * joins, acks, heartbeats), and each chunk a bounded number of times. */
	uint64_t secs = netsim_now(ns) / PFS_SEC(1) + 1;
	if (k->datagrams_sent - k->chunk_sends > (uint64_t)s->nnodes * secs * STORM_PER_SEC)
		FAIL("%llu control datagrams from %d nodes in %llu s: a storm",
		     (unsigned long long)(k->datagrams_sent - k->chunk_sends), s->nnodes,
		     (unsigned long long)secs);
	if (k->chunk_sends > (uint64_t)s->nnodes * (MAX_CHUNKS + 1) * STORM_CHUNK_SENDS)
		FAIL("%llu chunk sends among %d nodes: a storm",
		     (unsigned long long)k->chunk_sends, s->nnodes);
	if (k->finished_twice)
		FAIL("%llu files said done or failed twice",
		     (unsigned long long)k->finished_twice);
	if (k->chunks_unheld)
		FAIL("%llu chunks sent that the sender did not hold",
		     (unsigned long long)k->chunks_unheld);
	if (s->signed_files && k->bad_forwards)
		FAIL("%llu chunks forwarded that are not the publisher's",
		     (unsigned long long)k->bad_forwards);
	if (s->signed_files && k->chunks_mismatched)
		FAIL("%llu chunks stored that are not the publisher's",
		     (unsigned long long)k->chunks_mismatched);
	for (int i = 0; i < s->nnodes; i++) {
		struct pfs_hier_info info;
		bool done = false, failed = false;
		size_t size = 0;
		const uint8_t *got;

		if (hostile(s, i) || !netsim_alive(ns, i))
			continue;
		got = netsim_file(ns, i, 0, &size, &done, &failed);
		if (done && (s->signed_files || !any_rogue) &&
		    (size != s->size || (size && (!got || memcmp(got, truth, size)))))
			FAIL("node %d done with a file that is not the server's (%zu bytes)", i, size);
		if (!expect_live)
			continue;
		if (!done && !failed) {
			if (pfs_engine_hier_info(netsim_engine(ns, i), 0, &info) < 0) {
				/* An auto-joiner that started after the last
				 * node that named the file had it. */
				if (s->node[i].autojoin)
					continue;
				FAIL("node %d never wanted the file", i);
			}
			FAIL("node %d not finished %.1f s after the calm (state %s, %u/%u chunks)",
			     i, (double)(netsim_now(ns) - s->calm) / 1e9, info.state,
			     info.chunks_have, info.chunks_total);
		}
		/* A node with a server of its own fails its fetches (its
		 * manifest is nobody's) and says so as root: after three such
		 * roots a member gives the file up, by design (no member storm
		 * on a server that seems down, docs/protocol.md 6.5). */
		if (failed && !s->server_down && !any_rogue)
			FAIL("node %d failed with the server up all along", i);
	}
	digest = netsim_digest(ns);
	netsim_free(ns);
	return digest;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static struct site s;
	struct cur c = { data, size };
	uint8_t *man = NULL, *rman = NULL;
	size_t man_len = 0, rman_len = 0;
	uint64_t first;

	if (!ready) {
		init_once();
		ready = true;
	}
	if (!read_site(&c, &s))
		return 0;
	if (s.signed_files) {
		man = pfs_manifest_from_buffer(truth, s.size, PATH, s.chunk, 1, pub_id, pub_seed,
					       &man_len);
		rman = pfs_manifest_from_buffer(fake, s.size, PATH, s.chunk, 1, rogue_id,
						rogue_seed, &rman_len);
		if (!man || !rman)
			abort();
	}
	if (s.p.trace) {
		fprintf(stderr, "site: %d nodes, %s, %zu bytes in %u, loss %.2f until %.1f s, "
			"server down [%.1f, %.1f) s, ports %llu B/s, digests after %.0f ms\n",
			s.nnodes, s.signed_files ? "signed" : "unsigned", s.size, s.chunk, s.p.loss,
			(double)s.calm / 1e9, (double)s.p.server_down_from / 1e9,
			(double)s.p.server_down_until / 1e9, (unsigned long long)s.p.lan_rate,
			(double)s.p.hash_delay / 1e6);
		for (int i = 0; i < s.nnodes; i++)
			fprintf(stderr, "  n%d %s class %u relay %d mode %d slots %u start %.2f "
				"want %.2f kill %.2f%s%s%s%s\n", i, s.node[i].cfg.model,
				s.node[i].cfg.priority_class, s.node[i].cfg.relay, s.node[i].cfg.mode,
				s.node[i].cfg.max_children, (double)s.node[i].start / 1e9,
				(double)s.node[i].want_at / 1e9, (double)s.node[i].kill_at / 1e9,
				s.node[i].preload ? " preload" : "", s.node[i].autojoin ? " autojoin" : "",
				s.node[i].corrupt ? " corrupt" : "", s.node[i].rogue ? " rogue" : "");
	}
	first = run_site(&s, man, man_len, rman, rman_len);
	if (run_site(&s, man, man_len, rman, rman_len) != first)
		FAIL("the same site ran two ways");
	free(man);
	free(rman);
	return 0;
}
