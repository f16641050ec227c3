/* rx.c - receive, classify (parse.c judges each frame), count, dispatch.
 *
 * Frames reach us because the XDP filter steered them (IPv4 UDP to the PFS
 * port, behind up to two VLAN tags); anything else that arrives is counted
 * and dropped. A PFS datagram
 * must come with IP TTL 255 (the link-local guard, docs/protocol.md 2), and
 * a DATA chunk must pass its CRC32C here, so a corrupted chunk costs neither
 * a ring slot nor the control process's time. A chunk of a hierarchy that
 * is relayed locally is stored and replicated by fanout.c; what else passes
 * goes to pfs-control whole, with its source. The sender's MAC is learned
 * so that replies and chunks can be addressed without ARP, with its VLAN
 * tags, which everything sent to it carries back.
 *
 * With several workers (workers.c) the worker whose queue a frame came in
 * on checks it (header, checksum, CRC) and learns its sender; a DATA chunk
 * of a hierarchy another worker owns is then handed to that worker's
 * handoff ring, and the owner relays it without checking it again.
 */
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <rte_udp.h>
#include <string.h>

#include "dp.h"
#include "parse.h"
#include "pfs_codec.h"

static unsigned neigh_slot(uint32_t ip)
{
	return (ip * 2654435761u) & (DP_NEIGH - 1);
}

static void neigh_set(struct dp *d, struct dp_neigh *n, uint32_t ip,
		      const struct rte_ether_addr *mac, const struct dp_vlan *vlan)
{
	n->ip = ip;
	n->mac = *mac;
	n->vlan = *vlan;
	n->owed = false;
	d->hdr_gen++;           /* templates sent to broadcast, an old MAC or tag */
}

bool dp_neigh_learn(struct dp *d, uint32_t ip, const struct rte_ether_addr *mac,
		    const struct dp_vlan *vlan)
{
	/* Linear probing over a bounded window; a full window overwrites the
	 * home slot: a stale entry costs a broadcast-MAC frame, not a loss. */
	unsigned h = neigh_slot(ip);

	for (unsigned i = 0; i < 8; i++) {
		struct dp_neigh *n = &d->neigh[(h + i) & (DP_NEIGH - 1)];
		if (n->ip == ip && rte_is_same_ether_addr(&n->mac, mac) &&
		    dp_vlan_same(&n->vlan, vlan))
			return n->owed; /* the common case: nothing to write */
		if (n->ip == ip || n->ip == 0) {
			if (n->ip == 0)
				d->st->neighbours++;
			neigh_set(d, n, ip, mac, vlan);
			return true;
		}
	}
	neigh_set(d, &d->neigh[h], ip, mac, vlan);
	return true;
}

/* A message about ip to the other workers was lost to a full ring. */
static void neigh_owe(struct dp *d, uint32_t ip)
{
	struct dp_neigh *n = (struct dp_neigh *)dp_neigh_find(d, ip);

	if (n)
		n->owed = true;
}

const struct dp_neigh *dp_neigh_find(const struct dp *d, uint32_t ip)
{
	unsigned h = neigh_slot(ip);

	for (unsigned i = 0; i < 8; i++) {
		const struct dp_neigh *n = &d->neigh[(h + i) & (DP_NEIGH - 1)];
		if (n->ip == ip)
			return n;
		if (n->ip == 0)
			break;
	}
	return NULL;
}

/* The batch for control: into the shared ring (worker 0), or to worker 0
 * through this worker's outbox (workers.c forwards it, in order). */
void dp_to_control_flush(struct dp *d)
{
	unsigned n, skip = 0;

	if (!d->ntocontrol)
		return;
	if (d->wid == 0) {
		n = pfs_shm_send_burst(d->shm, d->tocontrol, d->ntocontrol);
		d->st->to_control += n;
	} else {
		skip = RTE_MIN(d->o.fault_drop_outbox, d->ntocontrol);
		d->o.fault_drop_outbox -= skip;
		n = rte_ring_sp_enqueue_burst_elem(d->outbox, d->tocontrol + skip,
						   sizeof(d->tocontrol[0]), d->ntocontrol - skip, NULL);
		/* What did not fit: a neighbour the others have not learned is
		 * told again when next heard; the rest the protocol repairs. */
		for (unsigned i = 0; (skip || n < d->ntocontrol) && i < d->ntocontrol; i++)
			if ((i < skip || i >= skip + n) && d->tocontrol[i].type == DP_IMSG_NEIGH)
				neigh_owe(d, d->tocontrol[i].ip);
	}
	d->st->to_control_drops += d->ntocontrol - n;   /* ring full: the protocol repairs */
	d->ntocontrol = 0;
}

/* The next free message of the batch for control (flushed when full). */
struct pfs_ring_msg *dp_to_control_slot(struct dp *d)
{
	if (d->ntocontrol == DP_BURST)
		dp_to_control_flush(d);
	return &d->tocontrol[d->ntocontrol++];
}

/* A checked datagram: relayed here, or handed to control whole. True when
 * the frame itself was sent on (the caller must not free it). */
static bool deliver(struct dp *d, struct rte_mbuf *m, const struct dp_rx_frame *f)
{
	struct pfs_ring_msg *out;

	if (f->h.type == PFS_MSG_DATA && !d->o.no_local_fanout) {
		enum dp_fanout_verdict fv = dp_fanout_chunk(d, m, f->ip, f->udp, f->plen);
		if (fv != DP_FANOUT_PASS)
			return fv == DP_FANOUT_SENT;
	}
	if (f->plen > PFS_RMSG_DATA) {
		d->st->rx_oversize++;   /* a jumbo chunk we do not relay: no ring slot holds it */
		return false;
	}
	dp_fanout_close(d);     /* control sees the chunks before what followed them */
	out = dp_to_control_slot(d);
	out->type = PFS_RMSG_PFS_RX;
	out->len = (uint16_t)f->plen;
	out->flags = 0;
	out->ip = rte_be_to_cpu_32(f->ip->src_addr);
	out->port = rte_be_to_cpu_16(f->udp->src_port);
	memcpy(out->data, f->pfs, f->plen);
	return false;
}

/* One frame: counted, checked, then relayed here, handed to its owner or
 * to control, or dropped. True when the frame is no longer the caller's. */
static bool classify(struct dp *d, struct rte_mbuf *m)
{
	struct dp_rx_frame f;
	enum dp_rx_verdict v;

	d->st->rx_pkts++;
	d->st->rx_bytes += rte_pktmbuf_pkt_len(m);
	if (m->nb_segs != 1) {
		d->st->rx_malformed++;
		return false;
	}
	/* The port's verdict on the UDP checksum where it gives one. */
	uint64_t l4 = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	if (l4 == RTE_MBUF_F_RX_L4_CKSUM_BAD) {
		d->st->rx_bad_csum++;
		return false;
	}
	v = dp_rx_parse(rte_pktmbuf_mtod(m, const uint8_t *), rte_pktmbuf_data_len(m),
			d->pfs_port ? d->pfs_port : PFS_PORT,
			l4 != RTE_MBUF_F_RX_L4_CKSUM_GOOD && !d->o.no_crc_check &&
			!d->o.no_csum_check,
			!d->o.no_crc_check, &f);
	if (v == DP_RX_NOT_PFS || v == DP_RX_MALFORMED) {
		if (v == DP_RX_NOT_PFS)
			d->st->rx_not_pfs++;
		else
			d->st->rx_malformed++;
		return false;
	}
	d->st->rx_pfs++;
	switch (v) {
	case DP_RX_TTL:
		d->st->rx_ttl++;
		return false;
	case DP_RX_BAD_HDR:
		d->st->rx_malformed++;
		return false;
	case DP_RX_BAD_CSUM:
		d->st->rx_bad_csum++;
		return false;
	case DP_RX_BAD_CRC:
		d->st->rx_bad_crc++;
		return false;
	default:
		break;
	}
	if (f.h.type == PFS_MSG_DATA && d->o.no_crc_check)
		d->st->crc_skipped++;
	d->st->rx_tagged += f.vlan.n != 0;
	if (dp_neigh_learn(d, rte_be_to_cpu_32(f.ip->src_addr),
			   &rte_pktmbuf_mtod(m, const struct rte_ether_hdr *)->src_addr, &f.vlan) &&
	    d->nworkers > 1)
		dp_workers_learned(d, rte_be_to_cpu_32(f.ip->src_addr));
	if (f.h.type == PFS_MSG_DATA && d->nworkers > 1) {
		unsigned owner = dp_shard(f.h.hier, d->nworkers);

		if (owner != d->wid) {
			/* Checked: its owner relays it (or hands it to control,
			 * after the chunks it reported itself). */
			if (rte_ring_mp_enqueue(d->handoff_to[owner], m) == 0) {
				d->st->rx_handoff++;
				return true;
			}
			d->st->handoff_drops++; /* the owner is behind: repaired */
			return false;
		}
	}
	return deliver(d, m, &f);
}

unsigned dp_rx_burst(struct dp *d)
{
	struct rte_mbuf *pkts[DP_BURST];
	uint16_t n = rte_eth_rx_burst(d->port, d->queue, pkts, DP_BURST);

	for (uint16_t i = 0; i < n; i++) {
		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		if (!classify(d, pkts[i]))
			rte_pktmbuf_free(pkts[i]);
	}
	dp_fanout_close(d);
	dp_to_control_flush(d);
	return n;
}

/* Chunks other workers received for hierarchies this one owns: checked
 * there, counted there; parsed here again for their offsets only. */
unsigned dp_rx_handoff(struct dp *d)
{
	struct rte_mbuf *pkts[DP_BURST];
	unsigned n = rte_ring_sc_dequeue_burst(d->handoff, (void **)pkts, DP_BURST, NULL);

	for (unsigned i = 0; i < n; i++) {
		struct dp_rx_frame f;

		if (dp_rx_parse(rte_pktmbuf_mtod(pkts[i], const uint8_t *),
				rte_pktmbuf_data_len(pkts[i]), d->pfs_port ? d->pfs_port : PFS_PORT,
				false, false, &f) != DP_RX_OK || !deliver(d, pkts[i], &f))
			rte_pktmbuf_free(pkts[i]);
	}
	if (n) {
		dp_fanout_close(d);
		dp_to_control_flush(d);
	}
	return n;
}
