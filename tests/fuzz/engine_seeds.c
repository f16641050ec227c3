/* engine_seeds.c - seed scripts for fuzz_engine (engine_script.h), written
 * by gen_corpus --engine: a member that joins a root, gets the file (signed
 * or not; from an honest parent or one that forges chunks; with a site key)
 * and feeds a child; a root (elected, or a site relay) that fetches it
 * (with its manifest or without) and feeds a child; a node alone that
 * fetches it. From there the fuzzer mutates its way into the states a random
 * start takes minutes to reach.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "engine_script.h"
#include "pfs_wire.h"

struct es_buf {
	uint8_t b[2048];
	size_t n;
};

static void w8(struct es_buf *s, unsigned v)
{
	if (s->n < sizeof(s->b))
		s->b[s->n++] = (uint8_t)v;
}

static void w32(struct es_buf *s, uint32_t v)
{
	for (int i = 3; i >= 0; i--)
		w8(s, v >> (8 * i));
}

static void timers(struct es_buf *s, int n)
{
	while (n--)
		w8(s, es_op(ES_TIMER, 0));
}

/* The head of a message record: op, type - 1, k (the file's hierarchy). */
static void msg(struct es_buf *s, unsigned peer, unsigned type, unsigned k)
{
	w8(s, es_op(ES_MSG, peer));
	w8(s, type - 1);
	w8(s, k | ES_K_OURS);
}

/* A true status block from parent (a peer index); a manifest length only
 * with PFS_MF_SIGNED (the encoder refuses one without). */
static void status(struct es_buf *s, unsigned mflags, unsigned parent)
{
	bool man = mflags & PFS_MF_SIGNED;

	w8(s, ES_S_CHUNK | ES_S_SIZE | ES_S_SHA | (man ? ES_S_MANLEN : 0));
	w8(s, mflags);
	if (!man)
		w32(s, 0);
	w8(s, 1);               /* npath */
	w8(s, parent);
	w8(s, 0);               /* parent_prefix */
}

/* Peer 2 joins us and acks nothing held, window 100. */
static void child_joins(struct es_buf *s)
{
	msg(s, 2, PFS_MSG_JOIN, 0);
	w32(s, 1);
	w8(s, 0);
	msg(s, 2, PFS_MSG_ACK, 0);
	w8(s, 0);
	w8(s, 0);
	w32(s, 100);
	w8(s, 1);
	w8(s, 0);
	w8(s, 0);
}

/* A parent that sends chunks 1 and 2 forged (their CRCs right), then the
 * true ones: with signed files each forgery fails its digest and is neither
 * stored nor forwarded; without, the whole file's SHA-256 fails, and the
 * file is fetched again. */
static void forgeries(struct es_buf *s)
{
	for (unsigned i = 1; i <= 2; i++) {
		msg(s, 1, PFS_MSG_DATA, ES_K_FORGED);
		w8(s, i);
	}
}

static void member(struct es_buf *s, unsigned flags, bool forged)
{
	bool signed_only = flags & ES_F_SIGNED;

	w8(s, flags);
	w32(s, 1);
	timers(s, 2);
	msg(s, 1, PFS_MSG_ROOT, 0);             /* a strong confirmed root */
	w32(s, 0xFFFFFF00u);
	w32(s, 1);
	w8(s, 0);
	timers(s, 3);
	msg(s, 1, PFS_MSG_ACCEPT, 0);
	w8(s, 0);
	status(s, PFS_MF_FINAL | (signed_only ? PFS_MF_SIGNED : 0), 1);
	if (signed_only) {
		msg(s, 1, PFS_MSG_MANIFEST, ES_K_TRUTH);
		w8(s, 0);
	}
	child_joins(s);
	if (forged)
		forgeries(s);
	for (unsigned i = 0; i < 4; i++) {
		msg(s, 1, PFS_MSG_DATA, ES_K_TRUTH);
		w8(s, i);
	}
	timers(s, 4);
}

/* A root by election, a site relay (at once) or alone (the load server's
 * way, no children): it fetches, the manifest first when signed. */
static void root(struct es_buf *s, unsigned flags, bool forged)
{
	bool signed_only = flags & ES_F_SIGNED;

	(void)forged;
	w8(s, flags);
	w32(s, 2);
	timers(s, 10);                          /* claims, then the fetch */
	if (signed_only) {
		w8(s, es_op(ES_UPSTREAM, 0));
		w8(s, ES_U_MANIFEST | ES_U_REAL);
	}
	w8(s, es_op(ES_UPSTREAM, 0));
	w8(s, ES_U_WRITE | ES_U_TRUTH);
	w32(s, 2999);                           /* 3000 bytes */
	w8(s, es_op(ES_UPSTREAM, 0));
	w8(s, ES_U_WRITE | ES_U_TRUTH);
	w32(s, 1999);                           /* the other 2000 */
	w8(s, es_op(ES_UPSTREAM, 0));
	w8(s, ES_U_DONE);
	if (!(flags & ES_F_SOLO))
		child_joins(s);
	timers(s, 4);
}

int engine_seeds(const char *dir)
{
	static const struct {
		const char *name;
		void (*write)(struct es_buf *, unsigned, bool);
		unsigned flags;
		bool forged;
	} seeds[] = {
		{ "member-unsigned", member, 0, false },
		{ "member-signed", member, ES_F_SIGNED, false },
		{ "member-unsigned-forged", member, 0, true },
		{ "member-signed-forged", member, ES_F_SIGNED, true },
		{ "member-signed-site-key", member, ES_F_SIGNED | ES_F_SITE_KEY, false },
		{ "root-unsigned", root, ES_F_APPLIANCE, false },
		{ "root-signed", root, ES_F_APPLIANCE | ES_F_SIGNED, false },
		{ "relay-signed-site-key", root,
		  ES_F_APPLIANCE | ES_F_RELAY | ES_F_SIGNED | ES_F_SITE_KEY, false },
		{ "solo-signed", root, ES_F_SOLO | ES_F_SIGNED, false },
	};

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		struct es_buf s = { .n = 0 };
		char path[4096];
		FILE *f;

		seeds[i].write(&s, seeds[i].flags, seeds[i].forged);
		snprintf(path, sizeof(path), "%s/%s", dir, seeds[i].name);
		f = fopen(path, "wb");
		if (!f) {
			perror(path);
			return -1;
		}
		bool ok = fwrite(s.b, 1, s.n, f) == s.n;
		if (fclose(f) != 0 || !ok) {
			perror(path);
			return -1;
		}
	}
	return 0;
}
