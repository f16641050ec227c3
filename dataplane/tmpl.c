/* tmpl.c - building frame headers: the generic writer and the per-child
 * DATA template that tmpl.h stamps (why: see tmpl.h). */
#include <string.h>

#include "dp.h"
#include "tmpl.h"

static const struct rte_ether_addr bcast_mac = {{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }};

uint32_t dp_put_headers(const struct dp *d, uint8_t *frame, uint32_t dst_ip, uint16_t dst_port,
			bool bcast, uint32_t plen, uint16_t ip_id)
{
	const struct dp_neigh *n = bcast ? NULL : dp_neigh_find(d, dst_ip);
	/* Not learned yet (we never ARP): broadcast, which still reaches it,
	 * with the tags of --vlan. */
	uint32_t l2 = dp_put_l2(frame, n ? &n->mac : &bcast_mac, &d->mac, n ? &n->vlan : &d->o.vlan);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame + l2);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);

	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + sizeof(*udp) + plen));
	ip->packet_id = rte_cpu_to_be_16(ip_id);
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = PFS_TTL;
	ip->next_proto_id = IPPROTO_UDP;
	ip->hdr_checksum = 0;
	ip->src_addr = rte_cpu_to_be_32(d->ip);
	ip->dst_addr = rte_cpu_to_be_32(dst_ip);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = rte_cpu_to_be_16(d->pfs_port);
	udp->dst_port = rte_cpu_to_be_16(dst_port);
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*udp) + plen));
	udp->dgram_cksum = 0;
	return l2 + (uint32_t)(sizeof(*ip) + sizeof(*udp));
}

void dp_tmpl_build(const struct dp *d, struct dp_tmpl *t, uint32_t ip, uint16_t port,
		   uint64_t hier, uint32_t len)
{
	uint32_t plen = PFS_HDR_LEN + (uint32_t)sizeof(struct pfs_wire_data) + len;
	uint32_t hdrs;
	struct rte_ipv4_hdr *iph;
	struct rte_udp_hdr *udp;
	struct pfs_wire_hdr *ph;

	memset(t->bytes, 0, sizeof(t->bytes));
	hdrs = dp_put_headers(d, t->bytes, ip, port, false, plen, 0);
	udp = (struct rte_udp_hdr *)(t->bytes + hdrs) - 1;
	iph = (struct rte_ipv4_hdr *)udp - 1;
	ph = (struct pfs_wire_hdr *)(udp + 1);
	iph->hdr_checksum = 0;
	ph->magic = rte_cpu_to_be_16(PFS_MAGIC);
	ph->version = PFS_VERSION;
	ph->type = PFS_MSG_DATA;
	ph->body_len = rte_cpu_to_be_16((uint16_t)(sizeof(struct pfs_wire_data) + len));
	ph->sender = rte_cpu_to_be_32(d->node_id);
	ph->hier = rte_cpu_to_be_64(hier);
	t->ip_sum = rte_raw_cksum(iph, sizeof(*iph));
	t->udp_sum = dp_fold16(dp_phdr_sum(iph, udp->dgram_len) +
			       rte_raw_cksum(udp, DP_UDP_TO_PAYLOAD));
	t->phdr = rte_ipv4_phdr_cksum(iph, 0);
	t->l2 = (uint8_t)((const uint8_t *)iph - t->bytes);
	t->hlen = (uint8_t)(hdrs + PFS_HDR_LEN + sizeof(struct pfs_wire_data));
	t->ip = ip;
	t->port = port;
	t->len = len;
	t->hier = hier;
	t->gen = d->hdr_gen;
}
