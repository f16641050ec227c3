/* parse.c - frame to verdict (see parse.h). Every length used below has
 * been checked against the frame first; the PFS header is judged by the
 * same function the codec uses, so the dataplane passes nothing the codec
 * would refuse at the header, and computes no payload length from a field
 * that does not add up (an AUTH flag with a small auth_len once made it
 * wrap, docs/protocol.md 3.1). */
#include "parse.h"

#include <errno.h>
#include <rte_ether.h>
#include <stdlib.h>
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

/* Up to DP_VLAN_MAX tags, then the EtherType: the Ethernet header's length
 * in *l2, or a verdict. The XDP filter reads tags with the same rules. */
static enum dp_rx_verdict parse_l2(const uint8_t *p, uint32_t len, struct dp_vlan *v,
				   uint32_t *l2)
{
	uint32_t off = DP_ETH_PREFIX;
	rte_be16_t type;

	if (len < sizeof(struct rte_ether_hdr))
		return DP_RX_MALFORMED;
	memcpy(&type, p + off, 2);
	while (dp_vlan_tpid(type)) {
		if (v->n == DP_VLAN_MAX)
			return DP_RX_NOT_PFS;   /* a third tag: not a frame we answer */
		if (off + 6 > len)
			return DP_RX_MALFORMED;
		v->tpid[v->n] = type;
		memcpy(&v->tci[v->n], p + off + 2, 2);
		v->n++;
		off += 4;
		memcpy(&type, p + off, 2);
	}
	if (type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
		return DP_RX_NOT_PFS;   /* IPv6, ARP: the v1 appliance speaks IPv4 */
	*l2 = off + 2;
	return DP_RX_OK;
}

enum dp_rx_verdict dp_rx_parse(const uint8_t *p, uint32_t len, uint16_t port, bool check_csum,
			       bool check_crc, struct dp_rx_frame *f)
{
	const struct rte_ipv4_hdr *ip;
	const struct rte_udp_hdr *udp;
	enum dp_rx_verdict v;
	uint32_t ihl, ulen, tot, l2 = 0;

	memset(f, 0, sizeof(*f));
	v = parse_l2(p, len, &f->vlan, &l2);
	if (v != DP_RX_OK)
		return v;
	if (len < l2 + sizeof(*ip))
		return DP_RX_MALFORMED;
	f->l2_len = l2;
	ip = (const void *)(p + l2);
	ihl = (uint32_t)(ip->version_ihl & 0x0f) * 4;
	tot = rte_be_to_cpu_16(ip->total_length);
	if ((ip->version_ihl >> 4) != 4 || ihl < 20 || l2 + ihl + sizeof(*udp) > len ||
	    tot + l2 > len || tot < ihl + sizeof(*udp))
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

int dp_vlan_parse(const char *s, struct dp_vlan *v)
{
	unsigned long vid[DP_VLAN_MAX];
	unsigned n = 0;
	char *end;

	memset(v, 0, sizeof(*v));
	for (;;) {
		if (n == DP_VLAN_MAX || *s < '0' || *s > '9')
			return -EINVAL;
		errno = 0;
		vid[n] = strtoul(s, &end, 10);
		if (errno || vid[n] < 1 || vid[n] > 4094)
			return -EINVAL;
		n++;
		if (!*end)
			break;
		if (*end != '.')
			return -EINVAL;
		s = end + 1;
	}
	for (unsigned i = 0; i < n; i++) {
		/* QinQ: the outer tag is the service tag (802.1ad) */
		v->tpid[i] = rte_cpu_to_be_16(n == 2 && i == 0 ? RTE_ETHER_TYPE_QINQ :
					      RTE_ETHER_TYPE_VLAN);
		v->tci[i] = rte_cpu_to_be_16((uint16_t)vid[i]);
	}
	v->n = (uint8_t)n;
	return 0;
}
