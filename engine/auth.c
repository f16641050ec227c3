/* auth.c - site-key authentication of control messages (docs/protocol.md
 * 3.4, docs/security.md).
 *
 * With a site key, every message but DATA (covered by the signed chunk
 * digests) ends with a 25-byte tag in the header's AUTH field:
 *
 *     key id (1) | sequence (8, big-endian) | HMAC-SHA-256(key, datagram
 *     up to the MAC)[0..16)
 *
 * The sequence is the sender's: a persisted boot count in the high 32 bits
 * and a counter below (as OSPF's RFC 7474), so a node that restarts sends
 * higher numbers than before it stopped. Each receiver keeps, per sender, the
 * highest sequence seen and a 64-message window below it (as IPsec and BFD),
 * so a captured CLAIM, ROOT or JOIN replayed later is refused. The window is
 * moved only by a message whose MAC verified: forged sequences cannot push
 * it. HMAC comes from OpenSSL (EVP_MAC; SHA-256 with the CPU's SHA
 * extensions), one context per key, re-initialised per message.
 */
#include "engine_internal.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

#define PEERS_MAX (1u << 20)    /* senders remembered; a site is far smaller */

struct auth_peer {
	uint32_t id;            /* 0: free */
	uint64_t top;           /* highest sequence accepted */
	uint64_t window;        /* bit i: top - i was seen */
};

struct auth_state {
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx[2];
	struct auth_peer *peers;
	uint32_t cap, n;        /* open addressing, cap a power of two */
};

static const char *const drop_names[PFS_AUTH_DROP_COUNT] = {
	"no_tag", "unknown_key", "bad_tag", "replayed",
};

const char *pfs_auth_drop_name(enum pfs_auth_drop why)
{
	return (unsigned)why < PFS_AUTH_DROP_COUNT ? drop_names[why] : "?";
}

void auth_free(struct pfs_engine *e)
{
	struct auth_state *a = e->auth;

	if (!a)
		return;
	for (int k = 0; k < 2; k++)
		EVP_MAC_CTX_free(a->ctx[k]);
	EVP_MAC_free(a->mac);
	free(a->peers);
	free(a);
	e->auth = NULL;
}

int auth_init(struct pfs_engine *e)
{
	const struct pfs_site_auth *s = e->cfg.site;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	struct auth_state *a;

	if (!s->tx_seq || s->nkeys < 1 || s->nkeys > 2 || !s->key_id[0] ||
	    (s->nkeys == 2 && (!s->key_id[1] || s->key_id[1] == s->key_id[0])))
		return -EINVAL;
	if (!(a = calloc(1, sizeof(*a))))
		return -ENOMEM;
	e->auth = a;
	a->cap = 64;
	a->peers = calloc(a->cap, sizeof(*a->peers));
	a->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!a->peers || !a->mac)
		goto fail;
	for (int k = 0; k < s->nkeys; k++)
		if (!(a->ctx[k] = EVP_MAC_CTX_new(a->mac)) ||
		    EVP_MAC_init(a->ctx[k], s->key[k], sizeof(s->key[k]), params) != 1)
			goto fail;
	return 0;
fail:
	auth_free(e);
	return -ENOMEM;
}

static int mac(EVP_MAC_CTX *ctx, const uint8_t *buf, size_t len, uint8_t out[32])
{
	size_t n = 0;

	/* NULL key: the same key again, without its schedule. */
	if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1 || EVP_MAC_update(ctx, buf, len) != 1 ||
	    EVP_MAC_final(ctx, out, &n, 32) != 1 || n != 32)
		return -EIO;
	return 0;
}

/* buf holds an encoded message whose last PFS_TAG_LEN bytes are its tag. */
int auth_sign(struct pfs_engine *e, uint8_t *buf, size_t len)
{
	uint8_t *tag = buf + len - PFS_TAG_LEN, md[32];
	uint64_t seq = ++*e->cfg.site->tx_seq;

	tag[0] = e->cfg.site->key_id[0];
	for (int i = 0; i < 8; i++)
		tag[1 + i] = (uint8_t)(seq >> (56 - 8 * i));
	if (mac(e->auth->ctx[0], buf, len - PFS_TAG_MAC_LEN, md) < 0)
		return -EIO;
	memcpy(buf + len - PFS_TAG_MAC_LEN, md, PFS_TAG_MAC_LEN);
	return 0;
}

static uint32_t slot_of(uint32_t id, uint32_t cap)
{
	return (id * 2654435761u) & (cap - 1);
}

static struct auth_peer *peer_find(struct auth_state *a, uint32_t id, bool create)
{
	uint32_t i = slot_of(id, a->cap);

	for (;; i = (i + 1) & (a->cap - 1)) {
		if (a->peers[i].id == id)
			return &a->peers[i];
		if (a->peers[i].id == 0)
			break;
	}
	if (!create)
		return NULL;
	if (2 * (a->n + 1) > a->cap) {         /* keep the load under a half */
		uint32_t ncap = a->cap * 2;
		struct auth_peer *np;

		if (ncap > PEERS_MAX || !(np = calloc(ncap, sizeof(*np))))
			return NULL;
		for (uint32_t j = 0; j < a->cap; j++) {
			uint32_t k;
			if (!a->peers[j].id)
				continue;
			for (k = slot_of(a->peers[j].id, ncap); np[k].id; k = (k + 1) & (ncap - 1))
				;
			np[k] = a->peers[j];
		}
		free(a->peers);
		a->peers = np;
		a->cap = ncap;
		return peer_find(a, id, true);
	}
	a->n++;
	a->peers[i] = (struct auth_peer){ .id = id };
	return &a->peers[i];
}

/* Sliding window: true if seq is new (and now recorded). */
static bool window_accept(struct auth_peer *p, uint64_t seq)
{
	if (p->top == 0 && p->window == 0) {
		p->top = seq;
		p->window = 1;
		return true;
	}
	if (seq > p->top) {
		uint64_t shift = seq - p->top;
		p->window = shift >= 64 ? 1 : p->window << shift | 1;
		p->top = seq;
		return true;
	}
	if (p->top - seq >= 64 || (p->window >> (p->top - seq) & 1))
		return false;
	p->window |= 1ull << (p->top - seq);
	return true;
}

/* 0, or the enum pfs_auth_drop + 1 it is dropped for. */
int auth_check(struct pfs_engine *e, const struct pfs_msg *m, const uint8_t *buf, size_t len)
{
	const struct pfs_site_auth *s = e->cfg.site;
	struct auth_state *a = e->auth;
	const uint8_t *tag = m->auth;
	struct auth_peer *p;
	uint8_t md[32];
	uint64_t seq = 0;
	int k;

	if (m->type == PFS_MSG_DATA)
		return 0;               /* chunks: their signed digests decide */
	if (!tag || m->auth_len != PFS_TAG_LEN || tag + PFS_TAG_LEN != buf + len)
		return PFS_AUTH_NO_TAG + 1;
	for (k = 0; k < s->nkeys && s->key_id[k] != tag[0]; k++)
		;
	if (k == s->nkeys)
		return PFS_AUTH_UNKNOWN_KEY + 1;
	if (mac(a->ctx[k], buf, len - PFS_TAG_MAC_LEN, md) < 0 ||
	    CRYPTO_memcmp(md, buf + len - PFS_TAG_MAC_LEN, PFS_TAG_MAC_LEN) != 0)
		return PFS_AUTH_BAD_TAG + 1;
	for (int i = 0; i < 8; i++)
		seq = seq << 8 | tag[1 + i];
	p = peer_find(a, m->sender, true);
	if (!p || !window_accept(p, seq))
		return PFS_AUTH_REPLAYED + 1;
	return 0;
}
