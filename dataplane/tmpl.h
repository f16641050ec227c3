/* tmpl.h - a DATA frame's headers for one child, built once, stamped per chunk.
 *
 * Every chunk to a given child of a given hierarchy carries the same 70
 * header bytes (Ethernet, IPv4 TTL 255, UDP, PFS header, DATA header; 4
 * more per VLAN tag the child's frames came with) but
 * for four fields: the IP id, the IP checksum, the chunk index and its
 * CRC32C, and the UDP checksum. A template holds those bytes and the
 * one's complement sums of the constant parts, so that sending a chunk is a
 * 70-byte copy and a handful of adds instead of building and summing the
 * headers (RESULTS.md section 1: this is most of a copy's cost).
 *
 * A template is valid for one (child, hierarchy, payload length) and one
 * value of d->hdr_gen, which moves whenever anything else it was built from
 * changes (CONFIG, a learned MAC).
 */
#ifndef PFS_DP_TMPL_H
#define PFS_DP_TMPL_H

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "pfs_wire.h"
#include "vlan.h"

/* Untagged: 14 + 20 + 8 bytes of headers, 70 with PFS's; each VLAN tag
 * adds 4 (vlan.h), so a template's layout is its L2 length plus these. */
#define DP_HDRS_LEN (sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) + \
		     sizeof(struct rte_udp_hdr))
#define DP_HDRS_MAX (DP_HDRS_LEN + 4 * DP_VLAN_MAX)
#define DP_TMPL_LEN (DP_HDRS_LEN + PFS_HDR_LEN + sizeof(struct pfs_wire_data))
#define DP_TMPL_MAX (DP_TMPL_LEN + 4 * DP_VLAN_MAX)
/* From the UDP header to the payload: UDP, PFS and DATA headers. */
#define DP_UDP_TO_PAYLOAD (sizeof(struct rte_udp_hdr) + PFS_HDR_LEN + \
			   sizeof(struct pfs_wire_data))

struct dp_tmpl {
	uint8_t bytes[DP_TMPL_MAX];     /* id, index, CRC and both checksums zero */
	uint8_t l2;                     /* Ethernet header bytes, tags included */
	uint8_t hlen;                   /* all header bytes: the payload's offset */
	uint32_t ip;                    /* the child, host order */
	uint16_t port;
	uint32_t len;                   /* payload bytes the lengths are for; 0: empty */
	uint64_t hier;
	uint32_t gen;                   /* d->hdr_gen it was built at */
	uint32_t owner;                 /* DP_OWNER_*: whose frames these are (dp.h) */
	uint32_t ip_sum;                /* raw sum of the IPv4 header, id and checksum zero */
	uint32_t udp_sum;               /* raw sum of pseudo header + the 36 bytes after IP */
	uint16_t phdr;                  /* the pseudo header's checksum, for TX offload */
};

static inline bool dp_tmpl_fits(const struct dp_tmpl *t, uint32_t gen, uint32_t ip,
				uint16_t port, uint64_t hier, uint32_t len)
{
	return t->len == len && t->gen == gen && t->hier == hier && t->ip == ip &&
	       t->port == port;
}

static inline uint32_t dp_fold16(uint32_t s)
{
	s = (s & 0xffff) + (s >> 16);
	return (s & 0xffff) + (s >> 16);
}

/* The template's header bytes to frame: a constant size (a few vector
 * moves), and a second short copy when VLAN tags make them longer. */
static inline void dp_tmpl_copy(const struct dp_tmpl *t, uint8_t *frame)
{
	memcpy(frame, t->bytes, DP_TMPL_LEN);
	if (unlikely(t->hlen > DP_TMPL_LEN))
		memcpy(frame + DP_TMPL_LEN, t->bytes + DP_TMPL_LEN, t->hlen - DP_TMPL_LEN);
}

/* Write the template's headers at frame for chunk idx (CRC crc, payload
 * raw sum psum, as dp_csum() gives it), with IP id ip_id. The payload
 * starts at an even offset of the UDP datagram, so its sum adds as is. */
static inline void dp_tmpl_stamp(const struct dp_tmpl *t, uint8_t *frame, uint16_t ip_id,
				 uint32_t idx, uint32_t crc, uint16_t psum)
{
	struct rte_ipv4_hdr *iph = (struct rte_ipv4_hdr *)(frame + t->l2);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(iph + 1);
	struct pfs_wire_data *dh = (struct pfs_wire_data *)(frame + t->hlen) - 1;
	uint32_t id_be = rte_cpu_to_be_16(ip_id), idx_be = rte_cpu_to_be_32(idx);
	uint32_t crc_be = rte_cpu_to_be_32(crc), s;

	dp_tmpl_copy(t, frame);
	iph->packet_id = (rte_be16_t)id_be;
	iph->hdr_checksum = (rte_be16_t)~dp_fold16(t->ip_sum + id_be);
	dh->index = idx_be;
	dh->crc32c = crc_be;
	/* The 32-bit fields, as loaded, are two 16-bit words of the sum. */
	s = dp_fold16(t->udp_sum + (idx_be & 0xffff) + (idx_be >> 16) + (crc_be & 0xffff) +
		      (crc_be >> 16) + psum);
	udp->dgram_cksum = (rte_be16_t)~s ? (rte_be16_t)~s : 0xffff;  /* 0 means "none" */
}

/* The same with the port computing both checksums (TX checksum offload):
 * the IP checksum left zero, the UDP one holding the pseudo header's sum,
 * as DPDK's offload contract asks; the frame's mbuf gets the flags
 * (dp_tx_csum_flags). No payload sum is needed at all. */
static inline void dp_tmpl_stamp_offload(const struct dp_tmpl *t, uint8_t *frame,
					 uint16_t ip_id, uint32_t idx, uint32_t crc)
{
	struct rte_ipv4_hdr *iph = (struct rte_ipv4_hdr *)(frame + t->l2);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(iph + 1);
	struct pfs_wire_data *dh = (struct pfs_wire_data *)(frame + t->hlen) - 1;

	dp_tmpl_copy(t, frame);
	iph->packet_id = rte_cpu_to_be_16(ip_id);
	dh->index = rte_cpu_to_be_32(idx);
	dh->crc32c = rte_cpu_to_be_32(crc);
	udp->dgram_cksum = t->phdr;
}

/* An mbuf whose IPv4 and UDP checksums the port computes (l2: Ethernet
 * header bytes, tags included; no IP options in what we send). */
static inline void dp_tx_csum_flags(struct rte_mbuf *m, uint32_t l2)
{
	m->ol_flags = (m->ol_flags & ~RTE_MBUF_F_TX_OFFLOAD_MASK) | RTE_MBUF_F_TX_IPV4 |
		      RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
	m->l2_len = l2;
	m->l3_len = sizeof(struct rte_ipv4_hdr);
}

struct dp;
/* Build t for chunks of len payload bytes of hier to ip:port (tmpl.c). */
void dp_tmpl_build(const struct dp *d, struct dp_tmpl *t, uint32_t ip, uint16_t port,
		   uint64_t hier, uint32_t len);
/* Ethernet (the destination's VLAN tags) + IPv4 (TTL 255, DF, id ip_id,
 * checksummed) + UDP headers for plen bytes of UDP payload at frame, which
 * has room for DP_HDRS_MAX; the UDP checksum is left zero. Returns the
 * headers' length: the UDP payload's offset. */
uint32_t dp_put_headers(const struct dp *d, uint8_t *frame, uint32_t dst_ip, uint16_t dst_port,
			bool bcast, uint32_t plen, uint16_t ip_id);
/* Raw sum of the UDP pseudo header of iph's datagram, whose UDP length is
 * udp_len (network order), as rte_raw_cksum() orders words. */
static inline uint32_t dp_phdr_sum(const struct rte_ipv4_hdr *iph, rte_be16_t udp_len)
{
	uint32_t src = iph->src_addr, dst = iph->dst_addr;

	return (src & 0xffff) + (src >> 16) + (dst & 0xffff) + (dst >> 16) +
	       rte_cpu_to_be_16(IPPROTO_UDP) + udp_len;
}

#endif /* PFS_DP_TMPL_H */
