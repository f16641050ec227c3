/* prefix_hash.c - see prefix_hash.h. SHA-256 from OpenSSL. */
#include "prefix_hash.h"
#include "pfs_clock.h"

#include <errno.h>
#include <openssl/evp.h>

#define READ_BLOCK (64u << 10)  /* bytes read and hashed between clock checks (~40 us) */

/* A digest of nothing yet: the context made or reset. */
static int start(struct pfs_prefix_hash *h)
{
	if (!h->ctx && !(h->ctx = EVP_MD_CTX_new()))
		return -ENOMEM;
	h->done = 0;
	return EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1 ? 0 : -ENOMEM;
}

void pfs_prefix_hash_written(struct pfs_prefix_hash *h, uint64_t off, const void *b, size_t len)
{
	if ((off < h->done || !h->ctx) && start(h) < 0)
		return;
	if (off == h->done && EVP_DigestUpdate(h->ctx, b, len) == 1)
		h->done += len;
}

int64_t pfs_prefix_hash_catch_up(struct pfs_prefix_hash *h, uint64_t upto, int64_t budget_ns,
				 pfs_prefix_hash_read_fn *rd, void *ctx)
{
	uint8_t buf[READ_BLOCK];
	int64_t deadline = pfs_mono_ns() + (budget_ns > 0 ? budget_ns : PFS_PREFIX_HASH_SLICE_NS);
	int rc;

	if (!h->ctx && (rc = start(h)) < 0)
		return rc;
	while (h->done < upto) {
		size_t n = upto - h->done < READ_BLOCK ? (size_t)(upto - h->done) : READ_BLOCK;

		if ((rc = rd(ctx, h->done, buf, n)) < 0 || EVP_DigestUpdate(h->ctx, buf, n) != 1) {
			start(h);
			return rc < 0 ? rc : -ENOMEM;
		}
		h->done += n;
		if (pfs_mono_ns() >= deadline)
			break;
	}
	return h->done < upto ? (int64_t)(upto - h->done) : 0;
}

int pfs_prefix_hash_final(struct pfs_prefix_hash *h, uint64_t size, uint8_t sha[32])
{
	int rc = 0;

	if (!h->ctx || h->done != size)
		return h->done > size ? (start(h), -EAGAIN) : -EAGAIN;
	if (EVP_DigestFinal_ex(h->ctx, sha, NULL) != 1)
		rc = -ENOMEM;
	start(h);
	return rc;
}

void pfs_prefix_hash_reset(struct pfs_prefix_hash *h)
{
	if (h->ctx)
		start(h);
	h->done = 0;
}

void pfs_prefix_hash_free(struct pfs_prefix_hash *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
	h->done = 0;
}
