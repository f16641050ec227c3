/* fuzz_manifest.c - libFuzzer target for the signed-manifest parser and
 * verifier (docs/protocol.md 9): a manifest reaches a node from its parent,
 * piece by piece, so its bytes are the network's.
 *
 * Any input must parse to a manifest or a named error without reading out
 * of bounds; a parsed one must be self-consistent (its length formula, chunk
 * lengths adding up to its size, digests and signature inside the input);
 * verification must give a named result, and success only for an input
 * signed by the trusted (sample) key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg_samples.h"
#include "pfs_manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pfs_trust t;
	struct pfs_manifest m;
	uint64_t sum = 0;
	int rc;

	if (!t.nkeys) {
		uint8_t pub[32];
		manifest_sample_key(pub);
		pfs_trust_add_key(&t, pub);
	}
	rc = pfs_manifest_parse(data, size, &m);
	if (rc > 0 || rc <= -PFS_MAN_E_COUNT)
		abort();
	if (rc < 0)
		return 0;
	if (pfs_manifest_len(m.name_len, m.nchunks) != size || m.len != size ||
	    m.digests < data || m.sig + PFS_MAN_SIG_LEN != data + size ||
	    m.digests + (size_t)m.nchunks * PFS_MAN_DIGEST_LEN != m.sig)
		abort();
	for (uint32_t i = 0; i < m.nchunks; i++) {
		uint32_t l = pfs_manifest_chunk_len(&m, i);
		if (l == 0 || l > m.chunk_size)
			abort();
		sum += l;
	}
	if (sum != m.size || pfs_manifest_chunk_len(&m, m.nchunks) != 0)
		abort();
	rc = pfs_manifest_verify(&t, data, size, NULL, 0, &m);
	if (rc > 0 || rc <= -PFS_MAN_E_COUNT)
		abort();
	return 0;
}
