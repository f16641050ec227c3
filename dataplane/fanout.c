/* fanout.c - local fan-out: chunks from a parent, stored and replicated to
 * our children right here (docs/appliance.md 2.3).
 *
 * When the appliance is a member of a hierarchy (another node is root),
 * every chunk it receives must reach each of its children. Going through
 * pfs-control costs a ring round trip and the engine's per-chunk work; so
 * pfs-control pushes a table per such hierarchy (parent, cache file, ready
 * children by engine slot) and the dataplane, for each checked chunk from
 * that parent:
 *
 *   signed file: SHA-256/128 of the payload against its digest (verify.c);
 *     a mismatch goes to pfs-control, stored and relayed nowhere
 *   keep the frame it came in as the cache's copy     (frames.c: no copy;
 *     or copy payload into the file's reserved room      kept for repairs
 *                                                        and later waves)
 *   payload checksum sum from the sender's UDP checksum (no pass over it)
 *   first child: the received frame, restamped         (no mbuf, no copy)
 *   other child slots: header mbuf stamped from the     (one bulk allocation
 *     slot's template -> payload in the cache (no copy)  for all of them)
 *   extend the run being reported: CHUNKS_STORED(first, count, mask)
 *
 * The engine still decides everything else: pfs-control hands it each
 * reported chunk as held (its bytes where we stored them), and skips the
 * engine's first send of a chunk the dataplane already sent to that child
 * (the mask), so a repair (a second send) still goes out. A chunk that finds no reserved room, or a
 * file that is not filling any more, goes to control whole, as without a
 * table: local fan-out is an acceleration, never a second source of truth.
 *
 * Copies to children are not paced: they leave at the rate chunks arrive,
 * which our own window toward the parent bounds.
 */
#include <rte_ip.h>
#include <string.h>

#include "csum.h"
#include "dp.h"
#include "tmpl.h"
#include "verify.h"

static struct dp_fanout *find(struct dp *d, uint64_t hier)
{
	struct dp_fanout *f = &d->fanout[d->fanout_last];

	if (f->hier == hier)
		return f;
	if (!d->nfanout)
		return NULL;
	for (unsigned i = 0; i < DP_FANOUT; i++) {
		if (d->fanout[i].hier == hier) {
			d->fanout_last = i;
			return &d->fanout[i];
		}
	}
	return NULL;
}

/* The table's holds, taken at its first chunk and kept while it stands: on
 * its file (we write its room, and copies read it) and, for a signed file,
 * on the manifest its digests are read from. Neither slot can then go to
 * another file under us: a digest read where another file's bytes now lie
 * could pass a chunk nobody signed. Both or neither. */
static bool fanout_hold(struct dp *d, struct dp_fanout *f, uint32_t gen)
{
	if (f->held)
		return true;
	if (!pfs_cache_hold(d->cache, f->fi, gen, 1))
		return false;
	if (f->verify && (f->digests_fi < 0 ||
			  !pfs_cache_hold(d->cache, f->digests_fi, f->digests_gen, 1))) {
		pfs_cache_unhold(d->cache, f->fi, 1);
		return false;
	}
	f->held = true;
	return true;
}

/* The table's holds given back (its files may be dropped). */
static void fanout_unhold(struct dp *d, struct dp_fanout *f)
{
	if (f->held) {
		pfs_cache_unhold(d->cache, f->fi, 1);
		if (f->verify)
			pfs_cache_unhold(d->cache, f->digests_fi, 1);
	}
	f->held = false;
}

void dp_fanout_release(struct dp *d)
{
	for (unsigned i = 0; i < DP_FANOUT; i++)
		fanout_unhold(d, &d->fanout[i]);
}

void dp_fanout_reset(struct dp *d)
{
	dp_fanout_close(d);
	dp_fanout_release(d);
	memset(d->fanout, 0, sizeof(d->fanout));
	d->nfanout = 0;
	d->fanout_last = 0;
	d->st->fanout_tables = 0;
}

/* A table from pfs-control: set, replace or delete (F_DELETE). */
void dp_fanout_update(struct dp *d, const struct pfs_ring_msg *m)
{
	const struct pfs_rmsg_fanout *t = (const void *)m->data;
	struct dp_fanout *f;

	if (!m->hier)
		return;
	dp_fanout_close(d);     /* the open run belongs to the old table */
	f = find(d, m->hier);
	if (f)
		fanout_unhold(d, f);
	if (m->flags & PFS_RMSG_F_DELETE) {
		if (f) {
			memset(f, 0, sizeof(*f));
			d->nfanout--;
		}
		d->st->fanout_tables = d->nfanout;
		return;
	}
	if (m->len < sizeof(*t) || m->slot >= PFS_CACHE_FILES || !t->chunk_size)
		return;
	if (!f) {
		for (unsigned i = 0; i < DP_FANOUT && !f; i++)
			if (!d->fanout[i].hier)
				f = &d->fanout[i];
		if (!f)
			return;         /* more tables than cache files: cannot be */
		d->nfanout++;
	}
	memset(f, 0, sizeof(*f));
	f->hier = m->hier;
	f->fi = (int32_t)m->slot;
	f->generation = t->generation;
	f->chunk_size = t->chunk_size;
	f->parent_ip = t->parent_ip;
	f->parent_port = t->parent_port;
	f->verify = t->flags & PFS_FANOUT_VERIFY;
	f->digests_fi = (int32_t)t->digests_fi;
	f->digests_off = t->digests_off;
	f->digests_gen = t->digests_gen;
	for (unsigned s = 0; s < PFS_FANOUT_SLOTS; s++) {
		if (!t->child[s].ip)
			continue;
		f->child[s].ip = t->child[s].ip;
		f->child[s].port = t->child[s].port;
		f->live |= (uint16_t)(1u << s);
	}
	d->st->fanout_tables = d->nfanout;
}

void dp_fanout_close(struct dp *d)
{
	struct dp_notice *n = &d->notice;
	struct pfs_rmsg_stored *body;
	struct pfs_ring_msg *out;

	if (!n->open)
		return;
	n->open = false;
	out = dp_to_control_slot(d);
	out->type = PFS_RMSG_CHUNKS_STORED;
	out->flags = 0;
	out->len = sizeof(*body);
	out->ip = n->src_ip;
	out->port = n->src_port;
	out->slot = 0;
	out->hier = n->hier;
	out->value = (uint64_t)n->first << 32 | n->count;
	body = (struct pfs_rmsg_stored *)out->data;
	*body = (struct pfs_rmsg_stored){
		.generation = n->generation, .sender = n->sender,
		.chunk_len = n->len, .mask = n->mask,
	};
	d->st->fanout_notices++;
}

/* Report chunk idx: extend the open run when it follows it, else start one. */
static void report(struct dp *d, const struct dp_fanout *f, uint32_t sender, uint32_t idx,
		   uint32_t len, uint16_t mask)
{
	struct dp_notice *n = &d->notice;

	if (n->open && n->hier == f->hier && n->generation == f->generation &&
	    n->sender == sender && n->len == len && n->mask == mask && n->first + n->count == idx) {
		n->count++;
		return;
	}
	dp_fanout_close(d);
	*n = (struct dp_notice){
		.open = true, .hier = f->hier, .generation = f->generation, .sender = sender,
		.first = idx, .count = 1, .len = len, .src_ip = f->parent_ip,
		.src_port = f->parent_port, .mask = mask,
	};
}

/* The payload's raw one's complement sum, from the checksum its sender put
 * on the datagram: pseudo header + the 36 header bytes as received + the
 * payload sum to zero, so the payload sums to minus the rest. That is a
 * fixed 20-odd cycles instead of a pass over the payload. If the sender's
 * checksum was wrong, so is ours: the children drop those copies as corrupt
 * and repair them from the cache, whose sends sum the stored payload afresh
 * (tx.c's memo), so a bad checksum is never laundered. A datagram sent
 * without a checksum (0) is summed here. */
static uint16_t payload_sum(const struct rte_ipv4_hdr *ip, const struct rte_udp_hdr *udp,
			    const uint8_t *payload, uint32_t len)
{
	if (!udp->dgram_cksum)
		return dp_csum(payload, len);
	return (uint16_t)~dp_fold16(dp_phdr_sum(ip, udp->dgram_len) +
				    rte_raw_cksum(udp, DP_UDP_TO_PAYLOAD));
}

/* Does the payload match its signed digest? Checked on the received bytes,
 * before the copy into the cache and before any child gets it: nothing
 * unverified is stored or relayed (docs/security.md). */
static bool digest_ok(struct dp *d, const struct dp_fanout *f, uint32_t idx,
		      const uint8_t *payload, uint32_t len)
{
	uint8_t want[PFS_MAN_DIGEST_LEN], got[PFS_MAN_DIGEST_LEN];

	if (f->digests_fi < 0 ||
	    pfs_cache_read(d->cache, f->digests_fi,
			   f->digests_off + (uint64_t)idx * PFS_MAN_DIGEST_LEN, want, sizeof(want)) < 0 ||
	    dp_digest(d->verifier, payload, len, got) < 0)
		return false;
	d->st->fanout_verified++;
	return memcmp(want, got, sizeof(want)) == 0;
}

enum dp_fanout_verdict dp_fanout_chunk(struct dp *d, struct rte_mbuf *m,
				       const struct rte_ipv4_hdr *ip,
				       const struct rte_udp_hdr *udp, uint32_t plen)
{
	const struct pfs_wire_hdr *ph = (const void *)(udp + 1);
	const struct pfs_wire_data *dh = (const void *)(ph + 1);
	const struct dp_tmpl *t[PFS_FANOUT_SLOTS];
	struct dp_fanout *f;
	struct pfs_cache_file *cf;
	uint32_t idx, len, room, crc, gen;
	uint16_t sum, mask;
	unsigned n = 0;
	uint8_t *dst;
	struct rte_mbuf *in;

	if (!d->nfanout || (ph->flags & PFS_HF_AUTH) || !(f = find(d, rte_be_to_cpu_64(ph->hier))))
		return DP_FANOUT_PASS;
	if (rte_be_to_cpu_32(ip->src_addr) != f->parent_ip ||
	    rte_be_to_cpu_16(udp->src_port) != f->parent_port) {
		d->st->fanout_stray++;  /* the engine judges it */
		return DP_FANOUT_PASS;
	}
	idx = rte_be_to_cpu_32(dh->index);
	len = plen - PFS_HDR_LEN - (uint32_t)sizeof(*dh);
	cf = pfs_cache_file(d->cache, f->fi);
	gen = cf->gen;          /* before its bytes: pfs_cache_hold checks it */
	/* The file must still be the one the table names, and filling; the
	 * chunk's room must be reserved (we never allocate: control does). */
	if (len > f->chunk_size ||
	    atomic_load_explicit(&cf->state, memory_order_acquire) != PFS_CF_FILLING ||
	    cf->hier != f->hier || cf->chunk_size != f->chunk_size ||
	    !(dst = (uint8_t *)(uintptr_t)pfs_cache_chunk(d->cache, f->fi, idx, &room))) {
		fanout_unhold(d, f);    /* dropped, maybe: let control have it */
		d->st->fanout_no_room++;
		return DP_FANOUT_PASS;
	}
	/* Held while we read its digests, write its room or map and copy
	 * from it (from the table's first chunk on: while held, no other file
	 * gets either slot, so gen stays): a file pfs-control drops meanwhile
	 * keeps its extents until we let go. */
	if (!fanout_hold(d, f, gen)) {
		d->st->fanout_no_room++;
		return DP_FANOUT_PASS;
	}
	if (f->verify && !digest_ok(d, f, idx, (const uint8_t *)(dh + 1), len)) {
		d->st->fanout_bad_digest++;
		return DP_FANOUT_PASS;  /* the engine counts it against the parent */
	}
	/* Kept in the frame it came in (frames.c), or copied into the room
	 * reserved for it; a chunk kept already (a resend) is left as it was
	 * stored, as the engine keeps the first copy of a chunk. */
	if (dp_frames_keep(d, f->fi, gen, idx, m, (const uint8_t *)(dh + 1), len))
		dst = (uint8_t *)(uintptr_t)(dh + 1);
	else if (!dp_frames_kept(d, dst))
		memcpy(dst, dh + 1, len);
	crc = rte_be_to_cpu_32(dh->crc32c);
	sum = d->tx_csum ? 0 : payload_sum(ip, udp, dst, len);        /* the port sums it */
	for (unsigned live = f->live; live; live &= live - 1) {        /* set bits only */
		unsigned s = (unsigned)__builtin_ctz(live);
		struct dp_tmpl *ct = &f->child[s].tmpl;

		if (!dp_tmpl_fits(ct, d->hdr_gen, f->child[s].ip, f->child[s].port, f->hier, len)) {
			dp_tmpl_build(d, ct, f->child[s].ip, f->child[s].port, f->hier, len);
			ct->owner = DP_OWNER_FANOUT | (uint32_t)(f - d->fanout) << 4 | s;
		}
		t[n++] = ct;
	}
	mask = f->live;
	/* When the frame the chunk came in has its payload where the first
	 * child's copy has it (no IP options, as many VLAN tags), that child
	 * gets it, restamped, instead of a new mbuf and a copy. */
	in = n && d->rx_reuse && (RTE_MBUF_DIRECT(m) || m->pool == dp_frames_pool(d)) &&
	     rte_mbuf_refcnt_read(m) == 1 + (dst == (const uint8_t *)(dh + 1)) &&
	     (const uint8_t *)(dh + 1) == rte_pktmbuf_mtod(m, const uint8_t *) + t[0]->hlen ?
	     m : NULL;
	/* Out of mbufs: none sent, the engine sends them instead. */
	if (n && dp_tx_chunk(d, t, n, &(struct dp_chunk){ .fi = f->fi, .gen = gen, .idx = idx,
							  .payload = dst, .len = len, .crc = crc,
							  .psum = sum, .held = true }, in) <= 0) {
		mask = 0;
		in = NULL;
	} else {
		d->st->fanout_tx += n;
		for (unsigned live = f->live; live; live &= live - 1)
			f->child[__builtin_ctz(live)].sent++;
	}
	d->st->fanout_chunks++;
	d->st->fanout_reused += n && in;
	report(d, f, rte_be_to_cpu_32(ph->sender), idx, len, mask);
	return n && in ? DP_FANOUT_SENT : DP_FANOUT_DONE;
}
