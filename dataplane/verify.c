/* verify.c - see verify.h. */
#include "verify.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct dp_verifier {
	EVP_MD *md;             /* fetched once: no provider lookup per chunk */
	EVP_MD_CTX *ctx;
};

struct dp_verifier *dp_verifier_new(void)
{
	struct dp_verifier *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	v->ctx = EVP_MD_CTX_new();
	if (!v->md || !v->ctx) {
		dp_verifier_free(v);
		return NULL;
	}
	return v;
}

void dp_verifier_free(struct dp_verifier *v)
{
	if (!v)
		return;
	EVP_MD_CTX_free(v->ctx);
	EVP_MD_free(v->md);
	free(v);
}

int dp_digest(struct dp_verifier *v, const void *p, size_t n, uint8_t out[PFS_MAN_DIGEST_LEN])
{
	uint8_t md[EVP_MAX_MD_SIZE];

	if (EVP_DigestInit_ex2(v->ctx, v->md, NULL) != 1 || EVP_DigestUpdate(v->ctx, p, n) != 1 ||
	    EVP_DigestFinal_ex(v->ctx, md, NULL) != 1)
		return -EIO;
	memcpy(out, md, PFS_MAN_DIGEST_LEN);
	return 0;
}
