/* xdpstats.c - the XDP steering program's counters (bpf/pfs_steer.bpf.c),
 * summed over CPUs, copied into the shared stats page once a second, so
 * pfs-control's /metrics and pfsctl report what the filter steered, passed
 * and dropped. The maps are pinned where the loader put them (the
 * dataplane's own bpffs); until they appear (another port than net_af_xdp,
 * or not yet loaded) we look again each second, and say nothing.
 */
#include <stdio.h>

#include "dp.h"
#include "steer.h"

_Static_assert(PFS_STEER_STAT_MAX <= PFS_DP_XDP_STATS, "room for every XDP counter");
_Static_assert(sizeof(struct pfs_dp_stats) <= PFS_SHM_STATS_BYTES, "the stats page");

void dp_xdp_stats(struct dp *d)
{
	static struct pfs_steer_maps maps = { -1, -1 };
	uint64_t v[PFS_STEER_STAT_MAX];

	if (maps.stats_fd < 0 && pfs_steer_open_pinned(NULL, &maps) < 0)
		return;
	if (pfs_steer_stats_read(&maps, v) < 0) {
		pfs_steer_close(&maps);         /* the program went away: look again */
		maps.cfg_fd = maps.stats_fd = -1;
		d->page->xdp_maps = 0;
		return;
	}
	for (int i = 0; i < PFS_STEER_STAT_MAX && i < PFS_DP_XDP_STATS; i++)
		d->page->xdp[i] = v[i];
	d->page->xdp_maps = 1;
}
