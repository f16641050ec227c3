/* tx.c - what the dataplane sends: control datagrams queued by pfs-control,
 * and chunks from the cache to children, range by range, paced per child.
 *
 * A chunk is sent to each child that asks for it with its own small header
 * mbuf (Ethernet with the child's VLAN tags, IPv4 TTL 255, UDP, PFS DATA
 * header), stamped from the
 * child's template (tmpl.h), and the payload: chained to the chunk in the
 * cache where the port takes chained mbufs and the copies of a chunk add up
 * to more than the copybreak, copied into the frame otherwise. Its CRC32C
 * and checksum partial sum are computed once per chunk (the memo), not once
 * per child; where the port computes checksums (TX offload, port.c), the
 * sum is not computed at all and each frame carries the offload flags.
 */
#include <errno.h>
#include <rte_cycles.h>
#include <rte_ip.h>
#include <rte_udp.h>
#include <string.h>

#include "csum.h"
#include "dp.h"
#include "tmpl.h"
#include "pfs_codec.h"

#define PACE_BURST_BYTES (64u * 1024)

void dp_tx_datagram(struct dp *d, const struct pfs_ring_msg *rm)
{
	struct rte_mbuf *m;
	struct rte_udp_hdr *udp;
	bool bcast = rm->flags & PFS_RMSG_F_BCAST;
	uint32_t hdrs;

	if (!d->configured || rm->len > PFS_RMSG_DATA)
		return;
	m = rte_pktmbuf_alloc(d->pool);
	if (!m) {
		d->st->mbuf_drops++;
		return;
	}
	if (!rte_pktmbuf_append(m, (uint16_t)(DP_HDRS_MAX + rm->len))) {
		rte_pktmbuf_free(m);
		d->st->mbuf_drops++;
		return;
	}
	hdrs = dp_put_headers(d, rte_pktmbuf_mtod(m, uint8_t *), bcast ? d->bcast : rm->ip,
			      bcast ? d->pfs_port : rm->port, bcast, rm->len, d->ip_id++);
	rte_pktmbuf_trim(m, (uint16_t)(DP_HDRS_MAX - hdrs));   /* fewer tags than room for */
	udp = rte_pktmbuf_mtod_offset(m, struct rte_udp_hdr *, hdrs - sizeof(*udp));
	memcpy(udp + 1, rm->data, rm->len);
	if (d->tx_csum) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)udp - 1;

		ip->hdr_checksum = 0;
		udp->dgram_cksum = rte_ipv4_phdr_cksum(ip, 0);
		dp_tx_csum_flags(m, hdrs - (uint32_t)(sizeof(*ip) + sizeof(*udp)));
	} else {
		udp->dgram_cksum = rte_ipv4_udptcp_cksum((struct rte_ipv4_hdr *)udp - 1, udp);
	}
	d->st->tx_ctrl++;
	d->st->tx_bytes += m->pkt_len;
	dp_tx(d, m, 0);
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
		d->st->children = ++d->nchildren;
	}
	return free_slot;
}

/* A range of chunks for a child, from pfs-control: checked whole before a
 * child slot is taken for it (a slot with nothing queued would be pumped). */
int dp_tx_queue_range(struct dp *d, const struct pfs_ring_msg *m)
{
	uint32_t first = (uint32_t)(m->value >> 32), count = (uint32_t)m->value;
	struct pfs_rmsg_range body;
	struct dp_child *c;

	if (m->len < sizeof(body) || m->slot >= PFS_CACHE_FILES || !count) {
		d->st->queue_drops++;
		return -EINVAL;
	}
	memcpy(&body, m->data, sizeof(body));
	if (body.generation != d->ctl_gen) {
		d->st->stale_ranges++;  /* queued by a pfs-control that has gone */
		return -ESTALE;
	}
	c = child_get(d, m->ip, m->port);
	if (!c || c->len == DP_CHILD_RANGES) {
		d->st->queue_drops++;   /* the child's NACK brings them back */
		return -ENOBUFS;
	}
	c->q[(c->head + c->len++) % DP_CHILD_RANGES] = (struct dp_range){
		.hier = m->hier, .entry = body.entry, .fi = (int32_t)m->slot, .next = first,
		.end = first + count,
	};
	return 0;
}

void dp_tx_reset_children(struct dp *d)
{
	for (unsigned i = 0; i < DP_CHILDREN; i++)
		d->children[i].used = false;
	d->st->children = d->nchildren = 0;
	memset(d->memo, 0, sizeof(d->memo));
}

/* The chunk's CRC and payload sum, computed once: keyed by the cache slot,
 * the file it holds (its generation: a new version of a file is often put
 * in the slot the old one left, under the same key), index and length. */
static struct dp_memo *memo_get(struct dp *d, const struct dp_range *r, uint32_t gen,
				uint32_t idx, const uint8_t *payload, uint32_t len)
{
	struct dp_memo *mm = &d->memo[(idx * 2654435761u ^ (uint32_t)r->fi) & (DP_MEMO - 1)];

	if (!mm->valid || mm->fi != r->fi || mm->gen != gen || mm->idx != idx ||
	    mm->hier != r->hier || mm->len != len) {
		mm->fi = r->fi;
		mm->gen = gen;
		mm->idx = idx;
		mm->hier = r->hier;
		mm->len = len;
		mm->crc = pfs_crc32c(payload, len);
		mm->sum = d->tx_csum ? 0 : dp_csum(payload, len);      /* the port sums it */
		mm->valid = true;
	}
	return mm;
}

/* References on the cache's bytes for copies of chunk c (pfs_cache.h):
 * chained copies hold one each until the port frees them, on the frame the
 * chunk is kept in or else on the file; linear copies hold the file while
 * they copy (*unhold: give that one back after), unless the caller does.
 * Taken before the file and the chunk's map entry are looked at again:
 * -ESTALE, and nothing held, if either moved since the caller found the
 * payload (pfs-control dropped the file, or wrote the chunk elsewhere): its
 * bytes may be another file's by now. */
static int hold_payload(struct dp *d, const struct dp_chunk *c, bool chain, unsigned built,
			struct rte_mbuf_ext_shared_info **si, bool *unhold)
{
	*unhold = false;
	if (chain && !dp_frames_kept(d, c->payload)) {
		if (!pfs_cache_hold(d->cache, c->fi, c->gen, (uint16_t)built))
			return -ESTALE;
		*si = (struct rte_mbuf_ext_shared_info *)&pfs_cache_file(d->cache, c->fi)->refs;
		return 0;
	}
	if (!c->held) {
		if (!pfs_cache_hold(d->cache, c->fi, c->gen, 1))
			return -ESTALE;
		*unhold = true;
	}
	if (chain && dp_frames_ref(d, c->fi, c->gen, c->idx, c->payload, (uint16_t)built, si) < 0) {
		if (*unhold)
			pfs_cache_unhold(d->cache, c->fi, 1);
		*unhold = false;
		return -ESTALE;
	}
	return 0;
}

/* Chunk c (dp.h) to the n children whose current templates t[] name, all
 * or none: one bulk allocation per pool and one reference update for the
 * lot. Each copy is a header mbuf stamped from its template and, where the
 * port takes chained mbufs and the copies add up to more than the
 * copybreak, a payload mbuf attached to the chunk in the cache (no copy); a
 * linear copy otherwise.
 *
 * in, if not NULL, is the frame the chunk arrived in, laid out as ours
 * (70 header bytes, then the payload): it becomes t[0]'s copy as it is,
 * headers restamped, which costs neither an mbuf nor a copy.
 *
 * Returns n; 0 when out of mbufs, -ESTALE when the chunk left the cache
 * (hold_payload); then nothing was sent and in is still the caller's. */
int dp_tx_chunk(struct dp *d, const struct dp_tmpl *const *t, unsigned n, const struct dp_chunk *c,
		struct rte_mbuf *in)
{
	const uint8_t *payload = c->payload;
	uint32_t len = c->len, idx = c->idx, crc = c->crc;
	uint16_t psum = c->psum;
	struct rte_mbuf *h[PFS_FANOUT_SLOTS], *p[PFS_FANOUT_SLOTS];
	struct rte_mbuf_ext_shared_info *si = NULL;
	uint64_t bytes = 0;
	unsigned built = in ? n - 1 : n;        /* copies that need mbufs */
	bool chain = d->chain && len * built > d->o.copybreak, unhold = false;
	/* Copies are made from the received frame while it is in the cache
	 * (just checked) and cannot leave before they are made (no flush in
	 * between): a chunk kept in a frame earlier (a resend) is cold. */
	const uint8_t *src = in && d->ntx + n <= RTE_DIM(d->txq) ?
			     rte_pktmbuf_mtod(in, const uint8_t *) + t[0]->hlen : payload;

	if (n > PFS_FANOUT_SLOTS || (built && rte_pktmbuf_alloc_bulk(d->pool, h, built) != 0)) {
		d->st->mbuf_drops += n;
		return 0;
	}
	if (chain && rte_pktmbuf_alloc_bulk(d->ext_pool, p, built) != 0) {
		rte_pktmbuf_free_bulk(h, built);
		d->st->mbuf_drops += n;
		return 0;
	}
	if (built && (chain || src == payload) &&
	    hold_payload(d, c, chain, built, &si, &unhold) < 0) {
		rte_pktmbuf_free_bulk(h, built);
		if (chain)
			rte_pktmbuf_free_bulk(p, built);
		return -ESTALE;
	}
	if (in) {
		uint32_t flen = t[0]->hlen + len;

		if (d->tx_csum) {
			dp_tmpl_stamp_offload(t[0], rte_pktmbuf_mtod(in, uint8_t *), d->ip_id++, idx,
					      crc);
			dp_tx_csum_flags(in, t[0]->l2);
		} else {
			dp_tmpl_stamp(t[0], rte_pktmbuf_mtod(in, uint8_t *), d->ip_id++, idx, crc,
				      psum);
		}
		in->data_len = (uint16_t)flen;  /* Ethernet padding, if any, goes */
		in->pkt_len = flen;
		bytes += flen;
		dp_tx(d, in, t[0]->owner);
		t++;
	}
	for (unsigned k = 0; k < built; k++) {
		uint8_t *frame = rte_pktmbuf_mtod(h[k], uint8_t *);
		uint32_t flen = t[k]->hlen + len;

		if (d->tx_csum) {
			dp_tmpl_stamp_offload(t[k], frame, d->ip_id++, idx, crc);
			dp_tx_csum_flags(h[k], t[k]->l2);
		} else {
			dp_tmpl_stamp(t[k], frame, d->ip_id++, idx, crc, psum);
		}
		if (chain) {
			/* rte_pktmbuf_attach_extbuf() and _chain(), without the
			 * per-copy reference update done above. */
			p[k]->buf_addr = (void *)(uintptr_t)payload;
			/* the cache is registered external memory (port.c) */
			rte_mbuf_iova_set(p[k], d->iova_va ? (rte_iova_t)(uintptr_t)payload :
				          RTE_BAD_IOVA);
			d->st->tx_bad_iova += !d->iova_va;
			p[k]->buf_len = (uint16_t)len;
			p[k]->data_off = 0;
			p[k]->data_len = (uint16_t)len;
			p[k]->pkt_len = len;
			p[k]->ol_flags |= RTE_MBUF_F_EXTERNAL;
			p[k]->shinfo = si;
			h[k]->data_len = t[k]->hlen;
			h[k]->next = p[k];
			h[k]->nb_segs = 2;
		} else {
			memcpy(frame + t[k]->hlen, src, len);
			h[k]->data_len = (uint16_t)flen;
		}
		h[k]->pkt_len = flen;
		bytes += flen;
		dp_tx(d, h[k], t[k]->owner);
	}
	if (unhold)
		pfs_cache_unhold(d->cache, c->fi, 1);
	d->st->tx_chunks += n;
	d->st->tx_chained += chain ? built : 0;
	d->st->tx_bytes += bytes;
	return n;
}

/* One chunk of a range to one child: 0, or -1 if it could not be sent now. */
static int send_chunk(struct dp *d, struct dp_child *c, const struct dp_range *r, uint32_t idx)
{
	struct pfs_cache_file *f = pfs_cache_file(d->cache, r->fi);
	struct dp_tmpl *t = &c->tmpl;
	const struct dp_tmpl *tc = t;
	const uint8_t *payload;
	struct dp_memo *mm;
	uint32_t len, gen = f ? f->gen : 0;     /* before the bytes: dp_tx_chunk checks it */
	uint64_t flen;
	int rc;

	if (!f || f->hier != r->entry ||
	    !(payload = pfs_cache_chunk(d->cache, r->fi, idx, &len))) {
		d->st->chunk_missing++;
		return 0;               /* skip it: nothing to send, ever */
	}
	mm = memo_get(d, r, gen, idx, payload, len);
	if (!dp_tmpl_fits(t, d->hdr_gen, c->ip, c->port, r->hier, len)) {
		dp_tmpl_build(d, t, c->ip, c->port, r->hier, len);
		t->owner = DP_OWNER_CHILD | (uint32_t)(c - d->children);
	}
	rc = dp_tx_chunk(d, &tc, 1, &(struct dp_chunk){ .fi = r->fi, .gen = gen, .idx = idx,
							 .payload = payload, .len = len,
							 .crc = mm->crc, .psum = mm->sum }, NULL);
	if (rc == -ESTALE) {
		mm->valid = false;      /* its CRC may be of another file's bytes */
		d->st->chunk_missing++; /* gone since we looked: skip it */
		return 0;
	}
	if (rc == 0)
		return -1;
	flen = t->hlen + len;
	c->sent++;
	c->tokens = c->tokens >= flen ? c->tokens - flen : 0;
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
	uint64_t now;

	if (!d->configured || !d->nchildren)
		return;         /* the common case when relaying: no scan of idle slots */
	now = rte_rdtsc();
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
					d->st->children = --d->nchildren;
				}
			}
		}
	}
	d->pump_next = (d->pump_next + 1) % DP_CHILDREN;
}
