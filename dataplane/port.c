/* port.c - the dataplane's port and mbuf pools.
 *
 * One RX and one TX queue per worker on one port (the site interface,
 * net_af_xdp by default). Whether payloads can go out zero-copy depends on the port: a
 * PMD that takes multi-segment mbufs gets a small header mbuf chained to an
 * mbuf attached to the chunk in the cache; one that does not (net_af_xdp in
 * DPDK 22.11) gets one linear mbuf, which it would copy into its umem anyway.
 *
 * A chained payload lives in the shared segment, memory DPDK did not
 * allocate: a NIC can DMA from it only if DPDK knows it. In IOVA-as-VA mode
 * (VFIO with an IOMMU, or virtual devices) the cache is registered as
 * external memory and mapped for the port's device, and a payload's IOVA is
 * its address. In IOVA-as-PA mode its pages are not physically contiguous
 * (a chunk may straddle two): chaining is turned off and the log says so.
 */
/* rte_dev_dma_map() is still marked experimental in DPDK 22.11 */
#define ALLOW_EXPERIMENTAL_API
#include <errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf_dyn.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include "dp.h"

#define NB_MBUF   8191
#define NB_EXT    8191
#define RX_DESC   1024
#define TX_DESC   1024

/* The callback of the cache's reference counts (files' and frames'): never
 * called, as each count keeps a 1 of its own; nothing to free anyway, the
 * memory is the segment's. */
void dp_ext_free(void *addr, void *opaque)
{
	(void)addr; (void)opaque;
}

/* The files' counts are DPDK's shared info, in the segment (pfs_cache.h). */
_Static_assert(offsetof(struct rte_mbuf_ext_shared_info, free_cb) ==
	       offsetof(struct pfs_cache_refs, free_cb), "pfs_cache_refs layout");
_Static_assert(offsetof(struct rte_mbuf_ext_shared_info, fcb_opaque) ==
	       offsetof(struct pfs_cache_refs, fcb_opaque), "pfs_cache_refs layout");
_Static_assert(offsetof(struct rte_mbuf_ext_shared_info, refcnt) ==
	       offsetof(struct pfs_cache_refs, refcnt), "pfs_cache_refs layout");
_Static_assert(sizeof(struct rte_mbuf_ext_shared_info) <= sizeof(struct pfs_cache_refs),
	       "pfs_cache_refs size");

/* The cache as memory the port may DMA from (see the top of this file). */
static void dma_setup(struct dp *d, const struct rte_eth_dev_info *info)
{
	uint64_t bytes;
	void *region = pfs_shm_cache(d->shm, &bytes);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	int rc;

	if (rte_eal_iova_mode() != RTE_IOVA_VA) {
		if (d->o.force_zero_copy) {
			pfs_log(PFS_LOG_INFO, "IOVA as PA: chained payloads have no valid IOVA "
			        "(--force-zero-copy, for ports that do not DMA)");
			return;
		}
		if (d->chain)
			pfs_log(PFS_LOG_INFO, "IOVA as PA: the cache is not physically contiguous, "
			        "payloads copied, not chained");
		d->chain = false;
		return;
	}
	rc = rte_extmem_register(region, bytes, NULL, 0, page);
	if (rc < 0 && rte_errno != EEXIST) {
		pfs_log(PFS_LOG_INFO, "cannot register the cache with DPDK (%s): payloads "
		        "copied, not chained", rte_strerror(rte_errno));
		d->chain = false;
		return;
	}
	d->dma_region = region;
	d->dma_bytes = bytes;
	d->iova_va = true;
	/* A device behind VFIO needs the mapping; virtual ones have no DMA. */
	rc = rte_dev_dma_map(info->device, region, (uint64_t)(uintptr_t)region, bytes);
	d->dma_mapped = rc == 0;
	pfs_log(PFS_LOG_INFO, "cache registered with DPDK, IOVA = VA%s",
	        d->dma_mapped ? ", DMA-mapped for the port" : " (the port does no DMA mapping)");
}

int dp_port_init(struct dp *d)
{
	struct rte_eth_conf conf = { 0 };
	struct rte_eth_dev_info info;
	int socket, rc;

	d->port = d->o.port_id;
	if (!rte_eth_dev_is_valid_port(d->port)) {
		pfs_log(PFS_LOG_ERR, "no port %u (give one with --vdev or -a)", d->port);
		return -ENODEV;
	}
	socket = rte_eth_dev_socket_id(d->port);
	if (socket < 0)
		socket = (int)rte_socket_id();
	/* Every frame fits one mbuf: jumbo chunks get jumbo buffers. Each
	 * worker's rings and per-lcore cache hold their share. */
	d->pool = rte_pktmbuf_pool_create("pfs_pkt", (NB_MBUF + 1) * d->o.workers - 1, 256, 0,
					  (uint16_t)RTE_MAX((uint32_t)RTE_MBUF_DEFAULT_BUF_SIZE,
							    (uint32_t)RTE_PKTMBUF_HEADROOM + d->o.max_frame),
					  socket);
	d->ext_pool = rte_pktmbuf_pool_create("pfs_ext", (NB_EXT + 1) * d->o.workers - 1, 256, 0, 0,
					      socket);
	if (!d->pool || !d->ext_pool) {
		pfs_log(PFS_LOG_ERR, "mbuf pools: %s", rte_strerror(rte_errno));
		return -ENOMEM;
	}
	/* The files' reference counts: what an earlier dataplane held died
	 * with it. Before the port sends anything. */
	pfs_cache_refs_init(d->cache, (void *)(uintptr_t)dp_ext_free, false);
	static const struct rte_mbuf_dynfield owner = {
		.name = "pfs_dp_owner", .size = sizeof(uint32_t), .align = __alignof__(uint32_t),
	};
	if ((d->owner_off = rte_mbuf_dynfield_register(&owner)) < 0) {
		pfs_log(PFS_LOG_ERR, "mbuf field: %s", rte_strerror(rte_errno));
		return -rte_errno;
	}
	d->tx_retry_tsc = (uint64_t)d->o.tx_retry_us * rte_get_tsc_hz() / 1000000;
	if ((rc = rte_eth_dev_info_get(d->port, &info)) < 0)
		return rc;
	d->chain = !d->o.no_zero_copy &&
		   (d->o.force_zero_copy || (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS));
	/* Sending a received frame back out (fanout.c: the first child's
	 * copy) suits PMDs whose RX mbufs are plain pool mbufs. Not
	 * net_af_xdp's (DPDK 22.11): its received buffers are umem frames, and
	 * sent back out they never return to its fill ring; after 2048 the
	 * port receives nothing more (tests/site/test_appliance.py). */
	d->rx_reuse = !d->o.no_rx_reuse && strcmp(info.driver_name, "net_af_xdp") != 0;
	/* The cache registered with DPDK before any pool is laid on it. */
	dma_setup(d, &info);
	if ((rc = dp_frames_init(d, info.driver_name,
				 (RX_DESC + DP_BURST * 4) * d->o.workers, socket)) < 0)
		return rc;
	if (d->chain && (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS))
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
	/* The NIC computes what we send's IPv4 and UDP checksums where it
	 * can (then no payload is summed here, tx.c); else tmpl.h's sums. */
	const uint64_t csum_tx = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	d->tx_csum = !d->o.no_tx_csum && (info.tx_offload_capa & csum_tx) == csum_tx;
	if (d->tx_csum)
		conf.txmode.offloads |= csum_tx;
	/* The NIC's verdict on UDP checksums where it gives one; else rx.c
	 * checks them in software (parse.c). */
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_UDP_CKSUM)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
	if (d->o.max_frame > 1518) {
		if (d->o.max_frame > info.max_rx_pktlen) {
			pfs_log(PFS_LOG_ERR, "port %u takes frames of %u bytes at most",
				d->port, info.max_rx_pktlen);
			return -EINVAL;
		}
		conf.rxmode.mtu = d->o.max_frame - RTE_ETHER_HDR_LEN - RTE_ETHER_CRC_LEN;
	}
	if (d->o.workers > 1) {
		if (info.max_rx_queues < d->o.workers || info.max_tx_queues < d->o.workers) {
			pfs_log(PFS_LOG_ERR, "port %u (%s) has %u RX and %u TX queues, "
				"--workers %u needs as many of each", d->port, info.driver_name,
				info.max_rx_queues, info.max_tx_queues, d->o.workers);
			return -EINVAL;
		}
		/* Spread flows over the queues where the port can; the
		 * workers hand each chunk to its hierarchy's owner anyway. */
		if (info.flow_type_rss_offloads & RTE_ETH_RSS_NONFRAG_IPV4_UDP) {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_hf = RTE_ETH_RSS_NONFRAG_IPV4_UDP;
		}
	}
	if ((rc = rte_eth_dev_configure(d->port, (uint16_t)d->o.workers, (uint16_t)d->o.workers,
					&conf)) < 0)
		goto fail;
	for (uint16_t q = 0; q < d->o.workers; q++)
		if ((rc = rte_eth_rx_queue_setup(d->port, q, RX_DESC, (unsigned)socket, NULL,
						 d->frames ? dp_frames_pool(d) : d->pool)) < 0 ||
		    (rc = rte_eth_tx_queue_setup(d->port, q, TX_DESC, (unsigned)socket, NULL)) < 0)
			goto fail;
	if ((rc = rte_eth_dev_start(d->port)) < 0)
		goto fail;
	rte_eth_macaddr_get(d->port, &d->mac);
	if (d->chain)
		pfs_log(PFS_LOG_INFO, "port %u (%s) up, payloads zero-copy (chained mbufs) "
		        "above %u bytes of copies per chunk%s%s", d->port, info.driver_name,
		        d->o.copybreak, d->rx_reuse ? ", received frames reused" : "",
		        d->tx_csum ? ", TX checksums offloaded" : "");
	else
		pfs_log(PFS_LOG_INFO, "port %u (%s) up, payloads copied (linear mbufs)%s%s",
		        d->port, info.driver_name, d->rx_reuse ? ", received frames reused" : "",
		        d->tx_csum ? ", TX checksums offloaded" : "");
	return 0;
fail:
	pfs_log(PFS_LOG_ERR, "port %u: %s", d->port, rte_strerror(-rc));
	return rc;
}

void dp_port_close(struct dp *d)
{
	dp_tx_flush(d);
	if (rte_eth_dev_is_valid_port(d->port)) {
		struct rte_eth_dev_info info;
		rte_eth_dev_stop(d->port);
		if (d->dma_mapped && rte_eth_dev_info_get(d->port, &info) == 0)
			rte_dev_dma_unmap(info.device, d->dma_region,
					  (uint64_t)(uintptr_t)d->dma_region, d->dma_bytes);
		rte_eth_dev_close(d->port);
	}
	dp_frames_close(d);
	if (d->iova_va)
		rte_extmem_unregister(d->dma_region, d->dma_bytes);
	rte_mempool_free(d->ext_pool);
	rte_mempool_free(d->pool);
}

/* A frame the port refused, counted against the child it was for. */
static void tx_dropped(struct dp *d, struct rte_mbuf *m)
{
	uint32_t owner = *RTE_MBUF_DYNFIELD(m, d->owner_off, uint32_t *);
	uint32_t i = owner & DP_OWNER_MASK;

	if ((owner & DP_OWNER_CHILD) && i < DP_CHILDREN)
		d->children[i].dropped++;
	else if ((owner & DP_OWNER_FANOUT) && (i >> 4) < DP_FANOUT)
		d->fanout[i >> 4].child[i & (PFS_FANOUT_SLOTS - 1)].dropped++;
	d->st->tx_drops++;
	rte_pktmbuf_free(m);
}

/* Everything queued to the port. A full TX ring is tried again for up to
 * --tx-retry-us (the NIC drains it meanwhile; AF_XDP also completes sends
 * only when kicked again) before what is left is dropped: a copy to a child
 * is then repaired by the protocol (the child asks again), and the drop is
 * counted against that child. */
void dp_tx_flush(struct dp *d)
{
	uint16_t sent;
	uint64_t deadline = 0;

	if (!d->ntx)
		return;
	/* Offload metadata as this NIC wants it (a no-op on most PMDs). A
	 * frame it refuses is dropped and counted; the rest go. */
	while (d->tx_csum) {
		uint16_t ok = rte_eth_tx_prepare(d->port, d->queue, d->txq, (uint16_t)d->ntx);

		if (ok == d->ntx)
			break;
		tx_dropped(d, d->txq[ok]);
		memmove(&d->txq[ok], &d->txq[ok + 1], (d->ntx - ok - 1) * sizeof(d->txq[0]));
		if (--d->ntx == 0)
			return;
	}
	sent = rte_eth_tx_burst(d->port, d->queue, d->txq, (uint16_t)d->ntx);
	while (sent < d->ntx) {
		uint64_t now = rte_rdtsc();

		if (!deadline)
			deadline = now + d->tx_retry_tsc;
		else if (now >= deadline)
			break;
		rte_pause();
		d->st->tx_retries++;
		sent += rte_eth_tx_burst(d->port, d->queue, d->txq + sent, (uint16_t)(d->ntx - sent));
	}
	d->st->tx_pkts += sent;
	for (unsigned i = sent; i < d->ntx; i++)
		tx_dropped(d, d->txq[i]);
	d->ntx = 0;
}
