/* tx.c - what the dataplane sends: control datagrams queued by pfs-control,
 * and chunks from the cache to children, range by range, paced per child.
 *
 * A chunk is sent to each child that asks for it with its own small header
 * mbuf (Ethernet, IPv4 TTL 255, UDP, PFS DATA header) and, where the port
 * takes chained mbufs, a payload mbuf attached to the chunk in the cache:
 * the payload is never copied, and its CRC32C and checksum partial sum are
 * computed once per chunk (the memo), not once per child.
 */
#include <rte_cycles.h>
#include <rte_ip.h>
#include <rte_udp.h>
#include <string.h>

#include "csum.h"
#include "dp.h"
#include "pfs_codec.h"

#define HDRS_LEN (sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) + \
		  sizeof(struct rte_udp_hdr))
#define PACE_BURST_BYTES (64u * 1024)

static const struct rte_ether_addr bcast_mac = {{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }};

/* Ethernet + IPv4 + UDP headers for a datagram of plen bytes to ip:port. */
static struct rte_udp_hdr *put_headers(struct dp *d, struct rte_mbuf *m, uint32_t dst_ip,
				       uint16_t dst_port, bool bcast, uint32_t plen)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	const struct rte_ether_addr *mac = bcast ? NULL : dp_neigh_find(d, dst_ip);

	eth->dst_addr = mac ? *mac : bcast_mac;
	eth->src_addr = d->mac;
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + sizeof(*udp) + plen));
	ip->packet_id = rte_cpu_to_be_16(d->ip_id++);
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
	return udp;
}

void dp_tx_datagram(struct dp *d, const struct pfs_ring_msg *rm)
{
	struct rte_mbuf *m;
	struct rte_udp_hdr *udp;
	bool bcast = rm->flags & PFS_RMSG_F_BCAST;

	if (!d->configured || rm->len > PFS_RMSG_DATA)
		return;
	m = rte_pktmbuf_alloc(d->pool);
	if (!m) {
		d->st->mbuf_drops++;
		return;
	}
	if (!rte_pktmbuf_append(m, (uint16_t)(HDRS_LEN + rm->len))) {
		rte_pktmbuf_free(m);
		d->st->mbuf_drops++;
		return;
	}
	udp = put_headers(d, m, bcast ? d->bcast : rm->ip, bcast ? d->pfs_port : rm->port,
			  bcast, rm->len);
	memcpy(udp + 1, rm->data, rm->len);
	udp->dgram_cksum = rte_ipv4_udptcp_cksum((struct rte_ipv4_hdr *)udp - 1, udp);
	d->st->tx_ctrl++;
	d->st->tx_bytes += m->pkt_len;
	dp_tx(d, m);
}

/* --- children -------------------------------------------------------- */

static struct dp_child *child_get(struct dp *d, uint32_t ip, uint16_t port)
{
	struct dp_child *free_slot = NULL;

	for (unsigned i = 0; i < DP_CHILDREN; i++) {
		struct dp_child *c = &d->children[i];
		if (c->used && c->ip == ip && c->port == port)
			return c;
		if (!c->used && !free_slot)
			free_slot = c;
	}
	if (free_slot) {
		memset(free_slot, 0, sizeof(*free_slot));
		free_slot->used = true;
		free_slot->ip = ip;
		free_slot->port = port;
		free_slot->tokens = PACE_BURST_BYTES;
		free_slot->last_tsc = rte_rdtsc();
		d->st->children++;
	}
	return free_slot;
}

int dp_tx_queue_range(struct dp *d, const struct pfs_ring_msg *m)
{
	struct dp_child *c = child_get(d, m->ip, m->port);
	uint32_t first = (uint32_t)(m->value >> 32), count = (uint32_t)m->value;

	if (!c || c->len == DP_CHILD_RANGES || m->slot >= PFS_CACHE_FILES || !count) {
		d->st->queue_drops++;   /* the child's NACK brings them back */
		return -ENOBUFS;
	}
	c->q[(c->head + c->len++) % DP_CHILD_RANGES] = (struct dp_range){
		.hier = m->hier, .fi = (int32_t)m->slot, .next = first, .end = first + count,
	};
	return 0;
}

void dp_tx_reset_children(struct dp *d)
{
	for (unsigned i = 0; i < DP_CHILDREN; i++)
		d->children[i].used = false;
	d->st->children = 0;
	memset(d->memo, 0, sizeof(d->memo));
}

static struct dp_memo *memo_get(struct dp *d, const struct dp_range *r, uint32_t idx,
				const uint8_t *payload, uint32_t len)
{
	struct dp_memo *mm = &d->memo[(idx * 2654435761u ^ (uint32_t)r->fi) & (DP_MEMO - 1)];

	if (!mm->valid || mm->fi != r->fi || mm->idx != idx || mm->hier != r->hier) {
		mm->fi = r->fi;
		mm->idx = idx;
		mm->hier = r->hier;
		mm->crc = pfs_crc32c(payload, len);
		mm->sum = dp_csum(payload, len);
		mm->valid = true;
	}
	return mm;
}

/* One DATA datagram to ip:port: chunk idx of hier, whose payload (len bytes,
 * CRC crc, raw one's complement sum `sum`) lies in cache file fi. Chained
 * to the cache where the port takes it, copied otherwise. Returns the
 * frame's length, or -1 when out of mbufs (nothing was sent). */
int dp_tx_chunk(struct dp *d, uint32_t ip, uint16_t port, uint64_t hier, int fi, uint32_t idx,
		const uint8_t *payload, uint32_t len, uint32_t crc, uint16_t psum)
{
	uint32_t plen = PFS_HDR_LEN + (uint32_t)sizeof(struct pfs_wire_data) + len, sum, flen;
	struct rte_mbuf *h, *p = NULL;
	struct rte_udp_hdr *udp;
	struct pfs_wire_hdr *ph;
	struct pfs_wire_data *dh;

	h = rte_pktmbuf_alloc(d->pool);
	if (h && d->chain)
		p = rte_pktmbuf_alloc(d->ext_pool);
	if (!h || (d->chain && !p)) {
		rte_pktmbuf_free(h);
		d->st->mbuf_drops++;
		return -1;
	}
	if (!rte_pktmbuf_append(h, (uint16_t)(HDRS_LEN + PFS_HDR_LEN + sizeof(*dh) +
					     (d->chain ? 0 : len)))) {
		rte_pktmbuf_free(h);
		rte_pktmbuf_free(p);
		d->st->mbuf_drops++;
		return -1;
	}
	udp = put_headers(d, h, ip, port, false, plen);
	ph = (struct pfs_wire_hdr *)(udp + 1);
	ph->magic = rte_cpu_to_be_16(PFS_MAGIC);
	ph->version = PFS_VERSION;
	ph->type = PFS_MSG_DATA;
	ph->flags = 0;
	ph->auth_len = 0;
	ph->body_len = rte_cpu_to_be_16((uint16_t)(sizeof(*dh) + len));
	ph->sender = rte_cpu_to_be_32(d->node_id);
	ph->hier = rte_cpu_to_be_64(hier);
	dh = (struct pfs_wire_data *)(ph + 1);
	dh->index = rte_cpu_to_be_32(idx);
	dh->crc32c = rte_cpu_to_be_32(crc);
	if (d->chain) {
		rte_mbuf_ext_refcnt_update(&d->shinfo[fi], 1);
		rte_pktmbuf_attach_extbuf(p, (void *)(uintptr_t)payload, RTE_BAD_IOVA,
					  (uint16_t)len, &d->shinfo[fi]);
		p->data_len = (uint16_t)len;
		p->pkt_len = len;
		rte_pktmbuf_chain(h, p);
	} else {
		memcpy(dh + 1, payload, len);
	}
	/* UDP checksum: pseudo header + our 36 header bytes + the payload's
	 * sum, computed once per chunk (the payload starts at an even offset,
	 * so sums add). */
	sum = rte_ipv4_phdr_cksum((struct rte_ipv4_hdr *)udp - 1, 0);
	sum += rte_raw_cksum(udp, sizeof(*udp) + PFS_HDR_LEN + sizeof(*dh));
	sum += psum;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	udp->dgram_cksum = (uint16_t)~sum ? (uint16_t)~sum : 0xffff;
	flen = h->pkt_len;
	d->st->tx_chunks++;
	d->st->tx_bytes += flen;
	dp_tx(d, h);
	return (int)flen;
}

/* One chunk of a range to one child: 0, or -1 if it could not be sent now. */
static int send_chunk(struct dp *d, struct dp_child *c, const struct dp_range *r, uint32_t idx)
{
	struct pfs_cache_file *f = pfs_cache_file(d->cache, r->fi);
	const uint8_t *payload;
	struct dp_memo *mm;
	uint32_t len;
	int flen;

	if (!f || f->hier != r->hier ||
	    !(payload = pfs_cache_chunk(d->cache, r->fi, idx, &len))) {
		d->st->chunk_missing++;
		return 0;               /* skip it: nothing to send, ever */
	}
	mm = memo_get(d, r, idx, payload, len);
	flen = dp_tx_chunk(d, c->ip, c->port, r->hier, r->fi, idx, payload, len, mm->crc, mm->sum);
	if (flen < 0)
		return -1;
	c->sent++;
	c->tokens = c->tokens >= (uint64_t)flen ? c->tokens - (uint64_t)flen : 0;
	return 0;
}

static bool may_send(struct dp *d, struct dp_child *c, uint64_t now)
{
	if (!d->o.child_rate_bps)
		return true;
	uint64_t add = (now - c->last_tsc) * (d->o.child_rate_bps / 8) / d->tsc_hz;
	if (add) {
		c->tokens = c->tokens + add > PACE_BURST_BYTES ? PACE_BURST_BYTES : c->tokens + add;
		c->last_tsc = now;
	}
	return c->tokens >= 1500;
}

void dp_tx_pump(struct dp *d)
{
	uint64_t now = rte_rdtsc();

	if (!d->configured)
		return;
	for (unsigned n = 0; n < DP_CHILDREN; n++) {
		unsigned i = (d->pump_next + n) % DP_CHILDREN;
		struct dp_child *c = &d->children[i];

		for (uint32_t k = 0; c->used && k < d->o.child_burst && may_send(d, c, now); k++) {
			struct dp_range *r = &c->q[c->head];
			if (send_chunk(d, c, r, r->next) < 0)
				return;         /* out of mbufs: next loop */
			if (++r->next == r->end) {
				c->head = (uint16_t)((c->head + 1) % DP_CHILD_RANGES);
				if (--c->len == 0) {
					c->used = false;
					d->st->children--;
				}
			}
		}
	}
	d->pump_next = (d->pump_next + 1) % DP_CHILDREN;
}
