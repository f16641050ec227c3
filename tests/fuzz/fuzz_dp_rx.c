/* fuzz_dp_rx.c - libFuzzer target for the dataplane's receive
 * classification (dataplane/parse.c): Ethernet frames in, a verdict out,
 * no DPDK port or EAL needed.
 *
 * Every frame gets a verdict without reading outside it (AddressSanitizer
 * watches). A frame judged a PFS datagram must lie inside the frame, and the
 * codec must agree with the dataplane: it accepts the header, and a DATA
 * chunk whose CRC the dataplane checked decodes (the dataplane passes
 * nothing the codec would refuse for its header or payload).
 */
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dp_rx_frame f;
	struct pfs_hdr_view h;
	struct pfs_msg m;
	enum dp_rx_verdict v;

	if (size > 65535)
		return 0;
	v = dp_rx_parse(data, (uint32_t)size, PFS_PORT, true, true, &f);
	if ((unsigned)v >= DP_RX_VERDICTS)
		abort();
	if (v != DP_RX_OK && v != DP_RX_BAD_CRC && v != DP_RX_BAD_HDR && v != DP_RX_TTL &&
	    v != DP_RX_BAD_CSUM)
		return 0;
	if (f.pfs < data || f.pfs + f.plen > data + size)
		abort();
	if (v == DP_RX_BAD_HDR) {
		if (f.hdr_err >= 0 || pfs_decode(f.pfs, f.plen, &m) != f.hdr_err)
			abort();        /* the codec refuses it for the same reason */
		return 0;
	}
	if (v == DP_RX_TTL)
		return 0;
	if (pfs_hdr_check(f.pfs, f.plen, &h) != PFS_OK || h.body + h.body_len > data + size)
		abort();
	if (f.h.type == PFS_MSG_DATA) {
		int rc = pfs_decode(f.pfs, f.plen, &m);
		if ((v == DP_RX_OK && rc != PFS_OK) || (v == DP_RX_BAD_CRC && rc != PFS_E_CRC))
			abort();
	}
	return 0;
}
