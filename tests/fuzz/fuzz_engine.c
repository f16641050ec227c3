/* fuzz_engine.c - libFuzzer target: the protocol engine among hostile peers.
 *
 * fuzz_decode covers the codec; this covers what comes after it. One engine
 * (a device; by the first byte's flags an appliance-class node, one child
 * slot, store-and-forward, signed files only, a site key, a site relay,
 * alone from the server) wants one file. The rest of
 * the input is a script: what four other nodes send it (raw datagrams, or
 * messages of every type whose fields come from the input: chunks of the
 * real file or of anything, pieces of its signed manifest or of anything,
 * status blocks that lie), time passing, and the server's answers when the
 * engine fetches (the script format: engine_script.h; seeds that reach a
 * finished rollout each way: engine_seeds.c). The harness is a driver that
 * keeps the engine's contract (pfs_upstream_store for upstream bytes, the
 * digest of a fetch taken as it streams). After each event the actions are
 * drained and checked as a driver takes them:
 *   - every datagram it sends decodes (one validator, both ways);
 *   - it stores nothing past its bound and sends no chunk it does not hold;
 *   - with signed files, every chunk it sends is the publisher's (a chunk is
 *     forwarded only once checked against the signed digest);
 *   - FILE_DONE names bytes it all stored, whose SHA-256 is the one it says
 *     (a half-received file is never presented whole); with signed files,
 *     the publisher's file;
 *   - a drain ends (no action storm).
 * A violation aborts; ASan and UBSan watch the rest.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "engine_script.h"
#include "engine_internal.h"       /* auth_sign: the peers' tags */
#include "pfs_codec.h"
#include "pfs_driver.h"
#include "pfs_engine.h"
#include "pfs_manifest.h"

#define MODEL      ES_MODEL
#define PATH       ES_PATH
#define CHUNK      ES_CHUNK
#define FILE_SIZE  ES_FILE_SIZE
#define PEERS      ES_PEERS
#define MAX_CHUNKS 16                   /* the engine's bound on a file... */
#define STORE      (MAX_CHUNKS * PFS_CHUNK_MAX)  /* ...of chunks of any size */


/* The file a publisher signed, its manifest, and the key devices trust. */
static uint8_t truth[FILE_SIZE], truth_sha[32], *man;
static size_t man_len;
static struct pfs_trust trust;

/* The site key, and an engine that holds it to tag the peers' messages
 * (auth_sign, the engine's own): their sequence counts up across runs,
 * as a peer's does across its boots. */
static uint64_t node_seq, peers_seq = 1ull << 32;
static struct pfs_site_auth node_site = { .nkeys = 1, .key_id = { 7 }, .tx_seq = &node_seq },
			     peers_site = { .nkeys = 1, .key_id = { 7 }, .tx_seq = &peers_seq };
static struct pfs_engine *signer;

static void sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
	unsigned len = 32;

	if (!EVP_Digest(p, n, out, &len, EVP_sha256(), NULL))
		abort();
}

static void init_once(void)
{
	static const uint8_t seed[PFS_KEY_LEN] = { 7, 7, 7 };   /* fuzzing only */
	uint8_t pub[PFS_KEY_LEN];

	for (size_t i = 0; i < sizeof(truth); i++)
		truth[i] = (uint8_t)(i * 31 + 7);
	sha256(truth, sizeof(truth), truth_sha);
	if (pfs_keypair_public(seed, pub) < 0 || pfs_trust_add_key(&trust, pub) < 0)
		abort();
	man = pfs_manifest_from_buffer(truth, sizeof(truth), PATH, CHUNK, 1, pfs_key_id(pub),
				       seed, &man_len);
	if (!man)
		abort();
	memset(node_site.key[0], 0x5A, 32);
	memset(peers_site.key[0], 0x5A, 32);
	struct pfs_engine_config c;
	pfs_engine_config_defaults(&c);
	c.node_id = ES_PEER_IP(PEERS);
	c.self = (struct pfs_addr){ c.node_id, PFS_PORT };
	strcpy(c.model, MODEL);
	c.site = &peers_site;
	if (!(signer = pfs_engine_new(&c)))
		abort();
}

/* One run: the engine and what its driver holds. */
struct run {
	struct pfs_engine *e;
	pfs_time_t now;
	bool signed_only;
	int hidx;
	uint64_t dirty;                 /* bytes [0, dirty) of store may be written */
	uint8_t store[STORE];           /* the file, as a driver holds it (zeros unwritten) */
	bool stored[STORE];             /* byte written (by WRITE_CHUNK or upstream) */
	bool fetching, want_manifest;
	uint64_t up_off;
	EVP_MD_CTX *up_sha;             /* of the fetch's bytes, as pfs_fetch keeps it */
	uint8_t sendbuf[PFS_DGRAM_MAX];
};

static void put(struct run *r, uint64_t off, const uint8_t *p, size_t n)
{
	if (off > STORE || n > STORE - off)
		abort();                /* past the engine's own bound */
	memmove(r->store + off, p, n);
	memset(r->stored + off, 1, n);
	if (off + n > r->dirty)
		r->dirty = off + n;
}

static bool all_stored(const struct run *r, uint64_t off, uint64_t n)
{
	if (off > STORE || n > STORE - off)
		return false;
	for (uint64_t i = off; i < off + n; i++)
		if (!r->stored[i])
			return false;
	return true;
}

static void check(struct run *r, const struct pfs_action *a)
{
	static int trace = -1;          /* PFS_FUZZ_TRACE=1: every action on stderr */
	struct pfs_msg m;
	uint8_t sha[32];

	if (trace < 0)
		trace = getenv("PFS_FUZZ_TRACE") != NULL;
	if (trace)
		fprintf(stderr, "%8.3f s  action %d  %s%s index %u len %zu size %llu\n",
			(double)r->now / 1e9, a->type,
			a->type == PFS_ACT_EVENT ? pfs_event_name(a->event) : "",
			a->type == PFS_ACT_SEND && a->len > 3 ? pfs_msg_type_name(a->msg[3]) : "",
			a->index, a->len, (unsigned long long)a->size);

	switch (a->type) {
	case PFS_ACT_SEND:
		if (a->len > PFS_DGRAM_MAX || pfs_decode(a->msg, a->len, &m) != 0)
			abort();        /* we sent what no one can read */
		break;
	case PFS_ACT_SEND_CHUNK:
		if (a->len == 0 || !all_stored(r, a->offset, a->len))
			abort();        /* a chunk we do not hold */
		if (r->signed_only && (a->offset + a->len > FILE_SIZE ||
				       memcmp(r->store + a->offset, truth + a->offset, a->len)))
			abort();        /* forwarded a chunk that is not the publisher's */
		break;
	case PFS_ACT_WRITE_CHUNK:
		if (a->len == 0 || a->len > PFS_CHUNK_MAX)
			abort();
		put(r, a->offset, a->data, a->len);
		break;
	case PFS_ACT_UPSTREAM_START:
		r->fetching = true;
		r->want_manifest = a->want_manifest;
		r->up_off = 0;
		if (!EVP_DigestInit_ex(r->up_sha, EVP_sha256(), NULL))
			abort();
		break;
	case PFS_ACT_UPSTREAM_ABORT:
		r->fetching = false;
		break;
	case PFS_ACT_HASH_FILE:
		sha256(r->store, a->size <= STORE ? a->size : 0, sha);
		pfs_engine_file_hashed(r->e, r->now, a->hidx, sha);
		break;
	case PFS_ACT_FILE_DONE:
		if (!all_stored(r, 0, a->size))
			abort();        /* presented whole with bytes missing */
		sha256(r->store, a->size, sha);
		if (memcmp(sha, a->sha256, 32))
			abort();        /* not the bytes it names */
		if (r->signed_only && (a->size != FILE_SIZE || memcmp(sha, truth_sha, 32)))
			abort();        /* not the publisher's file */
		break;
	default:
		break;
	}
}

static void drain(struct run *r)
{
	struct pfs_action a;

	for (unsigned n = 0; pfs_engine_poll(r->e, r->now, &a, r->sendbuf, sizeof(r->sendbuf)) > 0;
	     n++) {
		if (n > 200000)
			abort();        /* a drain that does not end */
		check(r, &a);
	}
}

/* A status block (ACCEPT, HEARTBEAT): the truth, or lies. */
static void status(struct cur *c, struct pfs_status *st)
{
	uint8_t k = u8(c);

	memset(st, 0, sizeof(*st));
	st->mflags = (uint8_t)(u8(c) & PFS_MF_KNOWN);
	st->chunk_size = k & ES_S_CHUNK ? CHUNK : u32(c) % 70000;
	st->size = k & ES_S_SIZE ? FILE_SIZE : u32(c) % (STORE * 2);
	if (k & ES_S_SHA)
		memcpy(st->sha256, truth_sha, 32);
	else
		st->sha256[0] = u8(c);
	st->manifest_len = k & ES_S_MANLEN ? (uint32_t)man_len : u32(c) % 100000;
	st->npath = (uint8_t)(u8(c) % (PFS_PATH_MAX + 1));
	for (unsigned i = 0; i < st->npath; i++)
		st->path[i] = ES_PEER_IP(u8(c) % (PEERS + 2));
	st->parent_prefix = u8(c);
}

/* A message of any type from peer, its fields from the input; encoded into
 * buf (with site_key, tagged as the peer would, unless k says not): its
 * length, or -1 if the encoder refused the fields. */
static int build(struct cur *c, uint32_t sender, bool site_key, uint8_t *buf, size_t cap)
{
	static uint8_t junk[2048];
	const struct pfs_str model = { MODEL, sizeof(MODEL) - 1 }, path = { PATH, sizeof(PATH) - 1 };
	struct pfs_msg m = { .type = (uint8_t)(1 + u8(c) % PFS_MSG_TYPE_MAX), .sender = sender };
	uint8_t k = u8(c);
	uint32_t idx, off;

	m.hier = k & ES_K_OURS ? pfs_hier_key(MODEL, model.len, PATH, path.len) : u32(c);
	switch (m.type) {
	case PFS_MSG_CLAIM:
		m.u.claim = (struct pfs_msg_claim){ .model = model, .path = path };
		m.u.claim.strength = u32(c);
		m.u.claim.ad = u8(c);
		break;
	case PFS_MSG_ROOT:
		m.u.root = (struct pfs_msg_root){ .model = model, .path = path };
		m.u.root.strength = u32(c);
		m.u.root.tree_nodes = u32(c) % 100000;
		m.u.root.flags = u8(c);
		break;
	case PFS_MSG_JOIN:
		m.u.join = (struct pfs_msg_join){ .model = model, .path = path };
		m.u.join.subtree_nodes = u32(c) % 100000;
		m.u.join.hops = u8(c);
		break;
	case PFS_MSG_ACCEPT:
		m.u.accept.slot = u8(c);
		status(c, &m.u.accept.st);
		break;
	case PFS_MSG_HEARTBEAT:
		status(c, &m.u.heartbeat);
		break;
	case PFS_MSG_REDIRECT:
		m.u.redirect.target_id = ES_PEER_IP(u8(c) % PEERS);
		m.u.redirect.target_ip = ES_PEER_IP(u8(c) % PEERS);
		m.u.redirect.target_port = PFS_PORT;
		break;
	case PFS_MSG_REFUSE:
	case PFS_MSG_LEAVE:
		m.u.reason.reason = u8(c);
		m.u.reason.answers = (const uint8_t[]){ 0, PFS_MSG_JOIN, PFS_MSG_ACK }[u8(c) % 3];
		break;
	case PFS_MSG_DATA:
		idx = u8(c) % (MAX_CHUNKS + 2);
		off = idx * CHUNK;
		if (k & (ES_K_TRUTH | ES_K_FORGED) && off < FILE_SIZE) {
			uint32_t n = FILE_SIZE - off < CHUNK ? FILE_SIZE - off : CHUNK;

			/* the publisher's chunk, or as long and other bytes
			 * (its CRC right: only a digest can tell) */
			memset(junk, k, sizeof(junk));
			m.u.data = (struct pfs_msg_data){ idx, 0, k & ES_K_FORGED ? junk : truth + off,
							  (uint16_t)n };
		} else {                                /* anything */
			junk[0] = u8(c);
			m.u.data = (struct pfs_msg_data){ idx, 0, junk, 0 };
			m.u.data.len = (uint16_t)(1 + u32(c) % sizeof(junk));
		}
		break;
	case PFS_MSG_ACK:
		m.u.ack.cum = u8(c) % (MAX_CHUNKS + 2);
		m.u.ack.highest = m.u.ack.cum + u8(c) % 8;
		m.u.ack.limit = u32(c) % 1000;
		m.u.ack.subtree_nodes = u8(c);
		m.u.ack.flags = u8(c);
		m.u.ack.nranges = (uint8_t)(u8(c) % (PFS_ACK_RANGES_MAX + 1));
		for (unsigned i = 0; i < m.u.ack.nranges; i++) {
			m.u.ack.ranges[i].start = u8(c) % (MAX_CHUNKS + 2);
			m.u.ack.ranges[i].count = 1 + u8(c) % 8;
		}
		break;
	case PFS_MSG_MREQ:
		m.u.mreq.offset = (u8(c) % 8) * PFS_MPIECE_LEN;
		m.u.mreq.total = k & ES_K_TRUTH ? (uint32_t)man_len : u32(c) % 100000;
		break;
	case PFS_MSG_MANIFEST:
		off = (u8(c) % 8) * PFS_MPIECE_LEN;
		if (k & ES_K_TRUTH && off < man_len) {  /* a piece of the signed one */
			size_t n = man_len - off < PFS_MPIECE_LEN ? man_len - off : PFS_MPIECE_LEN;
			m.u.mpiece = (struct pfs_msg_mpiece){ (uint32_t)man_len, off, man + off,
							      (uint16_t)n };
		} else {                                /* or of anything */
			uint32_t total = off + 1 + u32(c) % 4000;

			junk[0] = u8(c);
			m.u.mpiece = (struct pfs_msg_mpiece){ total, off, junk,
				(uint16_t)(total - off < PFS_MPIECE_LEN ? total - off : PFS_MPIECE_LEN) };
		}
		break;
	case PFS_MSG_RELAY:
		m.hier = PFS_HIER_ALL;
		m.u.relay = (struct pfs_msg_relay){ .model = model };
		m.u.relay.strength = u32(c);
		m.u.relay.hold_ms = (uint16_t)u32(c);
		break;
	default:
		return -1;
	}
	if (!site_key || m.type == PFS_MSG_DATA)        /* DATA: its digest decides */
		return pfs_encode(&m, buf, cap);
	m.flags |= PFS_HF_AUTH;
	m.auth_len = PFS_TAG_LEN;
	int len = pfs_encode(&m, buf, cap);
	if (len > 0 && !(k & ES_K_UNTAGGED) && auth_sign(signer, buf, (size_t)len) < 0)
		abort();
	return len;
}

/* The server's side of a fetch the engine started. */
static int store_run(void *ctx, uint64_t off, const uint8_t *data, size_t len)
{
	put(ctx, off, data, len);
	return 0;
}

static void upstream(struct cur *c, struct run *r)
{
	uint8_t sha[32], k = u8(c), junk[3000];
	const uint8_t *bytes;
	size_t n;

	if (!r->fetching)
		return;
	switch (k & 7) {
	case ES_U_WRITE:        /* the next bytes: the file's, or not */
		if (r->want_manifest)
			return;
		n = 1 + u32(c) % 3000;
		if (r->up_off + n > STORE)
			n = STORE - r->up_off;
		if (!n)
			return;
		if (k & ES_U_TRUTH && r->up_off < FILE_SIZE) {
			if (n > FILE_SIZE - r->up_off)
				n = FILE_SIZE - r->up_off;
			bytes = truth + r->up_off;
		} else {
			memset(junk, u8(c), n);
			bytes = junk;
		}
		if (getenv("PFS_FUZZ_TRACE"))
			fprintf(stderr, "%8.3f s  upstream bytes [%llu, +%zu) %s\n",
				(double)r->now / 1e9, (unsigned long long)r->up_off, n,
				bytes == junk ? "junk" : "true");
		/* As the drivers do: stored, but not over chunks held. */
		if (pfs_upstream_store(r->e, r->hidx, r->up_off, bytes, n, store_run, r) < 0 ||
		    !EVP_DigestUpdate(r->up_sha, bytes, n))
			abort();
		if (pfs_engine_upstream_write(r->e, r->now, r->hidx, r->up_off, bytes, n) < 0) {
			r->fetching = false;
			pfs_engine_upstream_failed(r->e, r->now, r->hidx, -EIO);
			return;
		}
		r->up_off += n;
		break;
	case ES_U_DONE:         /* what came, hashed as it came (pfs_fetch) */
		if (r->want_manifest)
			return;
		r->fetching = false;
		if (!EVP_DigestFinal_ex(r->up_sha, sha, NULL))
			abort();
		pfs_engine_upstream_done(r->e, r->now, r->hidx, r->up_off, sha);
		break;
	case ES_U_FAIL:
		r->fetching = false;
		pfs_engine_upstream_failed(r->e, r->now, r->hidx, k & ES_U_REAL ? -ENOENT : -EIO);
		break;
	default:                /* the manifest: the signed one, another, none */
		if (!r->want_manifest)
			return;
		r->want_manifest = false;
		if (k & ES_U_REAL) {
			if (pfs_engine_upstream_manifest(r->e, r->now, r->hidx, man, man_len) < 0)
				r->fetching = false;
		} else if (k & 32) {
			uint8_t junk[600];
			memset(junk, k, sizeof(junk));
			memcpy(junk, man, man_len < 64 ? man_len : 64);
			if (pfs_engine_upstream_manifest(r->e, r->now, r->hidx, junk,
							 sizeof(junk)) < 0)
				r->fetching = false;
		} else if (pfs_engine_upstream_manifest(r->e, r->now, r->hidx, NULL, 0) < 0) {
			r->fetching = false;
		}
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static struct run r;
	struct pfs_engine_config cfg;
	struct cur c = { data, size };
	uint8_t flags = u8(&c), buf[PFS_DGRAM_MAX];

	if (!ready) {
		init_once();
		if (!(r.up_sha = EVP_MD_CTX_new()))
			abort();
		ready = true;
	}
	/* Only what the last run wrote: two MB a run would slow the search. */
	memset(r.store, 0, r.dirty);
	memset(r.stored, 0, r.dirty);
	r.dirty = 0;
	r.fetching = r.want_manifest = false;
	r.up_off = 0;
	pfs_engine_config_defaults(&cfg);
	cfg.node_id = ES_SELF_IP;
	cfg.self = (struct pfs_addr){ ES_SELF_IP, PFS_PORT };
	strcpy(cfg.model, MODEL);
	cfg.random = u32(&c);
	cfg.max_children = flags & ES_F_ONE_CHILD ? 1 : 2;
	cfg.mode = flags & ES_F_SOLO ? PFS_MODE_TFTP_ONLY :
		   flags & ES_F_STORE_FORWARD ? PFS_MODE_STORE_FORWARD : PFS_MODE_CUT_THROUGH;
	cfg.relay = flags & ES_F_RELAY ? PFS_RELAY_ON : PFS_RELAY_OFF;
	cfg.site = flags & ES_F_SITE_KEY ? &node_site : NULL;
	cfg.priority_class = flags & ES_F_APPLIANCE ? PFS_CLASS_APPLIANCE : PFS_CLASS_DEVICE;
	r.signed_only = flags & ES_F_SIGNED;
	cfg.trust = r.signed_only ? &trust : NULL;
	cfg.chunk_size = CHUNK;
	cfg.max_chunks = MAX_CHUNKS;
	if (!(r.e = pfs_engine_new(&cfg)))
		abort();
	r.now = PFS_SEC(1);
	r.hidx = pfs_engine_want(r.e, r.now, PATH);
	if (r.hidx < 0)
		abort();
	drain(&r);
	for (unsigned steps = 0; c.n && steps < 4000; steps++) {
		uint8_t op = u8(&c);
		struct pfs_addr src = { ES_PEER_IP(op / 8 % PEERS), PFS_PORT };
		int len;

		switch (op % 8) {
		case ES_RAW:
			len = (int)(u32(&c) % 1600);
			if ((size_t)len > c.n)
				len = (int)c.n;
			pfs_engine_recv(r.e, r.now, &src, c.p, (size_t)len);
			c.p += len;
			c.n -= (size_t)len;
			break;
		case ES_MSG: case ES_MSG + 1: case ES_MSG + 2:
			len = build(&c, src.ip, flags & ES_F_SITE_KEY, buf, sizeof(buf));
			if (len > 0)
				pfs_engine_recv(r.e, r.now, &src, buf, (size_t)len);
			break;
		case ES_TIME:
			r.now += (pfs_time_t)(u8(&c) + 1) * PFS_MSEC(10);
			if (pfs_engine_next_deadline(r.e) <= r.now)
				pfs_engine_timeout(r.e, r.now);
			break;
		case ES_TIMER:
			if (pfs_engine_next_deadline(r.e) != PFS_TIME_NEVER) {
				if (pfs_engine_next_deadline(r.e) > r.now)
					r.now = pfs_engine_next_deadline(r.e);
				pfs_engine_timeout(r.e, r.now);
			}
			break;
		case ES_UPSTREAM:
			upstream(&c, &r);
			break;
		case ES_DISK:
			if (u8(&c) == 0xEE)
				pfs_engine_store_failed(r.e, r.now, r.hidx, -ENOSPC);
			break;
		}
		drain(&r);
	}
	pfs_engine_free(r.e);
	return 0;
}
