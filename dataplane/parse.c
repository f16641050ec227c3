/* parse.c - frame to verdict (see parse.h). Every length used below has
 * been checked against the frame first; the PFS header is judged by the
 * same function the codec uses, so the dataplane passes nothing the codec
 * would refuse at the header, and computes no payload length from a field
 * that does not add up (an AUTH flag with a small auth_len once made it
 * wrap, docs/protocol.md 3.1). */
#include "parse.h"

#include <rte_ether.h>
#include <string.h>

#include "csum.h"

/* The UDP checksum of a datagram of ulen bytes holds: pseudo header, UDP
 * header and data sum to 0xffff. dp_csum() adds 32-bit words (~100 cycles
 * for a 1408-byte chunk; rte_ipv4_udptcp_cksum_verify() took seven times
 * that and halved the relay's rate). */
static bool udp_csum_ok(const struct rte_ipv4_hdr *ip, const struct rte_udp_hdr *udp,
			uint32_t ulen)
{
	uint32_t src = ip->src_addr, dst = ip->dst_addr;
	uint32_t s = (src & 0xffff) + (src >> 16) + (dst & 0xffff) + (dst >> 16) +
		     rte_cpu_to_be_16(IPPROTO_UDP) + udp->dgram_len + dp_csum(udp, ulen);

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return s == 0xffff;
}

enum dp_rx_verdict dp_rx_parse(const uint8_t *p, uint32_t len, uint16_t port, bool check_csum,
			       bool check_crc, struct dp_rx_frame *f)
{
	const struct rte_ether_hdr *eth = (const void *)p;
	const struct rte_ipv4_hdr *ip;
	const struct rte_udp_hdr *udp;
	uint32_t ihl, ulen, tot;

	memset(f, 0, sizeof(*f));
	if (len < sizeof(*eth) + sizeof(*ip))
		return DP_RX_MALFORMED;
	if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
		return DP_RX_NOT_PFS;   /* IPv6, VLAN: the v1 appliance speaks IPv4 */
	ip = (const void *)(p + sizeof(*eth));
	ihl = (uint32_t)(ip->version_ihl & 0x0f) * 4;
	tot = rte_be_to_cpu_16(ip->total_length);
	if ((ip->version_ihl >> 4) != 4 || ihl < 20 || sizeof(*eth) + ihl + sizeof(*udp) > len ||
	    tot + sizeof(*eth) > len || tot < ihl + sizeof(*udp))
		return DP_RX_MALFORMED;
	if (ip->next_proto_id != IPPROTO_UDP ||
	    (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)))
		return DP_RX_NOT_PFS;
	udp = (const void *)((const uint8_t *)ip + ihl);
	if (udp->dst_port != rte_cpu_to_be_16(port))
		return DP_RX_NOT_PFS;
	ulen = rte_be_to_cpu_16(udp->dgram_len);
	if (ulen < sizeof(*udp) + PFS_HDR_LEN || ihl + ulen > tot)
		return DP_RX_MALFORMED;
	f->ip = ip;
	f->udp = udp;
	f->pfs = (const uint8_t *)(udp + 1);
	f->plen = ulen - (uint32_t)sizeof(*udp);
	if (ip->time_to_live != PFS_TTL)
		return DP_RX_TTL;
	f->hdr_err = pfs_hdr_check(f->pfs, f->plen, &f->h);
	if (f->hdr_err < 0)
		return DP_RX_BAD_HDR;
	/* The CRC32C covers a DATA payload only: a flipped chunk index would
	 * put good bytes at the wrong place. The UDP checksum covers it all. */
	if (check_csum && udp->dgram_cksum && !udp_csum_ok(ip, udp, ulen))
		return DP_RX_BAD_CSUM;
	if (f->h.type == PFS_MSG_DATA && check_crc) {
		const struct pfs_wire_data *dh = (const void *)f->h.body;
		uint32_t n;
		const uint8_t *payload = pfs_hdr_data_payload(&f->h, &n);

		if (pfs_crc32c(payload, n) != rte_be_to_cpu_32(dh->crc32c))
			return DP_RX_BAD_CRC;
	}
	return DP_RX_OK;
}
