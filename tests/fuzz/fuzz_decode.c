/* fuzz_decode.c - libFuzzer target for pfs_decode().
 *
 * Any input must decode to a valid message or a named error, without reading
 * out of bounds (AddressSanitizer watches). A message that decodes must
 * encode, and its encoding must decode and re-encode to the same bytes: the
 * canonical form is stable. (The input itself may differ from its canonical
 * form only in reserved bytes, which receivers ignore: docs/protocol.md 3.1.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[PFS_DGRAM_MAX], out2[PFS_DGRAM_MAX];
	struct pfs_msg m, m2;
	int rc = pfs_decode(data, size, &m);

	if (rc > 0 || rc <= -PFS_E_ERR_COUNT)
		abort();        /* not a named result */
	if (rc < 0)
		return 0;
	int len = pfs_encode(&m, out, sizeof(out));
	if (len < 0 || (size_t)len != size)
		abort();
	if (pfs_decode(out, (size_t)len, &m2) != 0)
		abort();
	int len2 = pfs_encode(&m2, out2, sizeof(out2));
	if (len2 != len || memcmp(out, out2, (size_t)len) != 0)
		abort();
	return 0;
}
