/* vlan.h - the 802.1Q / 802.1ad tags in front of a PFS frame's IPv4 header.
 *
 * IP phones mostly sit on a voice VLAN, so the appliance's port is often a
 * trunk and PFS frames arrive tagged: once (802.1Q) or twice (QinQ: an
 * 802.1ad or 802.1Q outer tag, then an inner one). The parser (parse.c)
 * reads up to DP_VLAN_MAX tags, the neighbour table keeps each sender's tags
 * as received (priority bits too), and everything sent to that neighbour
 * carries them back; broadcasts and neighbours not learned yet get the tags
 * of --vlan (none by default). The XDP filter (bpf/pfs_steer.bpf.c) reads
 * the same tags with the same limits.
 */
#ifndef PFS_DP_VLAN_H
#define PFS_DP_VLAN_H

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define DP_VLAN_MAX     2       /* tags read; a third makes the frame not ours */
#define DP_ETH_PREFIX   12      /* destination and source MAC, before any tag */

struct dp_vlan {
	uint8_t n;                      /* tags: 0..DP_VLAN_MAX, outer first */
	rte_be16_t tpid[DP_VLAN_MAX];   /* 0x8100 or 0x88a8, network order */
	rte_be16_t tci[DP_VLAN_MAX];    /* PCP, DEI, VID as received, network order */
};

static inline bool dp_vlan_tpid(rte_be16_t type)
{
	return type == rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN) ||
	       type == rte_cpu_to_be_16(RTE_ETHER_TYPE_QINQ);
}

static inline bool dp_vlan_same(const struct dp_vlan *a, const struct dp_vlan *b)
{
	for (unsigned i = 0; i < a->n && i < DP_VLAN_MAX; i++)
		if (a->tpid[i] != b->tpid[i] || a->tci[i] != b->tci[i])
			return false;
	return a->n == b->n;
}

/* Bytes of the Ethernet header with v's tags. */
static inline uint32_t dp_l2_len(const struct dp_vlan *v)
{
	return (uint32_t)sizeof(struct rte_ether_hdr) + 4u * v->n;
}

/* Write an Ethernet header with v's tags and an IPv4 EtherType; returns
 * its length (dp_l2_len). */
static inline uint32_t dp_put_l2(uint8_t *frame, const struct rte_ether_addr *dst,
				 const struct rte_ether_addr *src, const struct dp_vlan *v)
{
	uint32_t off = DP_ETH_PREFIX;
	rte_be16_t ipv4 = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);

	memcpy(frame, dst, RTE_ETHER_ADDR_LEN);
	memcpy(frame + RTE_ETHER_ADDR_LEN, src, RTE_ETHER_ADDR_LEN);
	for (unsigned i = 0; i < v->n; i++) {
		memcpy(frame + off, &v->tpid[i], 2);
		memcpy(frame + off + 2, &v->tci[i], 2);
		off += 4;
	}
	memcpy(frame + off, &ipv4, 2);
	return off + 2;
}

/* "VID" (one 802.1Q tag) or "OUTER.INNER" (802.1ad, then 802.1Q), VIDs
 * 1..4094, as Linux names VLAN interfaces (eth0.10.100). 0 or -EINVAL. */
int dp_vlan_parse(const char *s, struct dp_vlan *v);

#endif /* PFS_DP_VLAN_H */
