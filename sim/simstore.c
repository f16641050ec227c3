/* simstore.c - a simulated node's copy of a file: bytes or verified bits
 * (see simstore.h). */
#include "simstore.h"

#include "pfs_driver.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static int grow(struct simfile *f, size_t need)
{
	if (need <= f->cap)
		return 0;
	size_t nc = f->cap ? f->cap : 4096;
	while (nc < need)
		nc *= 2;
	uint8_t *nb = realloc(f->buf, nc);
	if (!nb)
		return -ENOMEM;
	memset(nb + f->cap, 0, nc - f->cap);
	f->buf = nb;
	f->cap = nc;
	return 0;
}

int simfile_write(struct simfile *f, bool verify, uint64_t off, const uint8_t *d,
		  size_t len, uint32_t index)
{
	if (f->store_limit && off + len > f->store_limit)
		return -ENOSPC;
	if (!verify) {
		int rc = grow(f, off + len);
		if (rc == 0)
			memcpy(f->buf + off, d, len);
		return rc;
	}
	if (!f->ref || off + len > f->ref->size || memcmp(f->ref->data + off, d, len))
		return -EILSEQ;
	return pfs_bitmap_set(&f->held, index) < 0 ? -ENOMEM : 0;
}

static int store_upstream(void *ctx, uint64_t off, const uint8_t *data, size_t len)
{
	memcpy(((struct simfile *)ctx)->buf + off, data, len);
	return 0;
}

int simfile_upstream(struct simfile *f, bool verify, size_t blk, const struct pfs_engine *e,
		     int hidx)
{
	if (f->store_limit && f->up_off + blk > f->store_limit)
		return -ENOSPC;
	if (!verify && blk) {   /* an empty file has no buffer to copy into */
		const uint8_t *data = f->ref->data + f->up_off;
		int rc;

		if ((rc = grow(f, f->up_off + blk)) < 0)
			return rc;
		rc = e ? pfs_upstream_store(e, hidx, f->up_off, data, blk, store_upstream, f)
		       : store_upstream(f, f->up_off, data, blk);
		if (rc < 0)
			return rc;
	}
	f->up_off += blk;
	return 0;
}

/* VERIFY: chunk index is held if it matched when written or came upstream. */
static bool held(const struct simfile *f, uint32_t index, uint32_t chunk_size)
{
	uint64_t end = ((uint64_t)index + 1) * chunk_size;

	if (f->ref && end > f->ref->size)
		end = f->ref->size;
	return pfs_bitmap_test(&f->held, index) || end <= f->up_off;
}

const uint8_t *simfile_chunk(const struct simfile *f, bool verify, uint64_t off, size_t len,
			     uint32_t index, uint32_t chunk_size)
{
	if (!verify)
		return off + len <= f->cap ? f->buf + off : NULL;
	if (!f->ref || off + len > f->ref->size || !held(f, index, chunk_size))
		return NULL;
	return f->ref->data + off;
}

void simfile_hash(struct simfile *f, bool verify, uint64_t size, uint32_t chunk_size,
		  uint8_t sha[32])
{
	if (!verify) {
		if (grow(f, size) == 0)
			EVP_Digest(f->buf, size, sha, NULL, EVP_sha256(), NULL);
		else
			memset(sha, 0, 32);
		return;
	}
	bool all = f->ref && size == f->ref->size && chunk_size;
	for (uint64_t i = 0; all && i * chunk_size < size; i++)
		all = held(f, (uint32_t)i, chunk_size);
	if (all) {
		memcpy(sha, f->ref->sha, 32);
	} else {
		/* What the node holds is not the server's file: any other
		 * digest makes the engine reject it, as a real hash would. */
		memset(sha, 0, 32);
		sha[0] = (uint8_t)~(f->ref ? f->ref->sha[0] : 0);
	}
}

void simfile_free(struct simfile *f)
{
	free(f->buf);
	pfs_bitmap_free(&f->held);
	memset(f, 0, sizeof(*f));
}
