/* parse.h - the dataplane's frame parser: Ethernet (up to two VLAN tags,
 * vlan.h), IPv4, UDP, then the PFS header through the codec's one header
 * validator (pfs_hdr_check), then the UDP checksum (unless the NIC checked
 * it), then the DATA payload's CRC32C. Pure: no mbuf, no port, no
 * counters, so a fuzzer drives it with bytes alone
 * (tests/fuzz/fuzz_dp_rx.c). rx.c counts the verdicts. */
#ifndef DP_PARSE_H
#define DP_PARSE_H

#include <rte_ip.h>
#include <rte_udp.h>
#include <stdbool.h>
#include <stdint.h>

#include "pfs_codec.h"
#include "vlan.h"

enum dp_rx_verdict {
	DP_RX_OK,               /* a PFS datagram that passed every check */
	DP_RX_MALFORMED,        /* bad Ethernet/IPv4/UDP framing */
	DP_RX_NOT_PFS,          /* not IPv4 UDP to the PFS port (behind at most
				 * two VLAN tags), or a fragment */
	DP_RX_TTL,              /* PFS datagram without TTL 255 */
	DP_RX_BAD_HDR,          /* PFS header refused by pfs_hdr_check */
	DP_RX_BAD_CSUM,         /* the UDP checksum does not match: a bit flipped
				 * where the CRC32C does not look (a chunk index) */
	DP_RX_BAD_CRC,          /* DATA payload fails its CRC32C */
	DP_RX_VERDICTS,
};

struct dp_rx_frame {
	struct dp_vlan vlan;            /* the tags it came with */
	uint32_t l2_len;                /* Ethernet header with them */
	const struct rte_ipv4_hdr *ip;
	const struct rte_udp_hdr *udp;
	const uint8_t *pfs;             /* the PFS datagram, plen bytes */
	uint32_t plen;
	struct pfs_hdr_view h;          /* with DP_RX_OK and DP_RX_BAD_CRC */
	int hdr_err;                    /* with DP_RX_BAD_HDR: the codec's error */
};

/* Parse one frame of len bytes. port: the PFS UDP port (network order is
 * handled inside). check_csum false: the NIC verified the UDP checksum (or
 * --no-crc-check); a datagram sent without one (0) is not checked.
 * check_crc false skips the CRC (--no-crc-check). */
enum dp_rx_verdict dp_rx_parse(const uint8_t *p, uint32_t len, uint16_t port, bool check_csum,
			       bool check_crc, struct dp_rx_frame *f);

#endif /* DP_PARSE_H */
