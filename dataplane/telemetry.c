/* telemetry.c - DPDK telemetry commands for the dataplane:
 *   /pfs/stats     every counter of struct pfs_dp_stats
 *   /pfs/children  the children being fed: address, queued ranges, sent
 * Read with dpdk-telemetry.py (socket under the EAL runtime directory).
 * The callbacks run on the telemetry thread and only read: a value may be a
 * loop old, which is what a counter display needs.
 */
#include <rte_telemetry.h>
#include <stdio.h>

#include "dp.h"

static struct dp *dp_for_telemetry;

static int tel_stats(const char *cmd, const char *params, struct rte_tel_data *t)
{
	const struct pfs_dp_stats *s = dp_for_telemetry->st;

	(void)cmd; (void)params;
	rte_tel_data_start_dict(t);
#define T(k) rte_tel_data_add_dict_u64(t, #k, s->k)
	T(rx_pkts); T(rx_bytes); T(rx_pfs); T(rx_not_pfs); T(rx_malformed); T(rx_bad_crc);
	T(rx_bad_csum);
	T(rx_ttl); T(to_control); T(to_control_drops); T(from_control); T(tx_ctrl);
	T(tx_chunks); T(tx_bytes); T(tx_drops); T(mbuf_drops); T(chunk_missing);
	T(queue_drops); T(children); T(neighbours); T(loops); T(busy_loops);
	T(fanout_tables); T(fanout_chunks); T(fanout_tx); T(fanout_stray); T(fanout_no_room);
	T(fanout_verified); T(fanout_bad_digest);
	T(fanout_notices); T(crc_skipped); T(rx_oversize); T(tx_chained); T(fanout_reused); T(rx_tagged);
#undef T
	return 0;
}

static int tel_children(const char *cmd, const char *params, struct rte_tel_data *t)
{
	(void)cmd; (void)params;
	rte_tel_data_start_dict(t);
	for (unsigned i = 0; i < DP_CHILDREN; i++) {
		const struct dp_child *c = &dp_for_telemetry->children[i];
		char name[32];
		if (!c->used)
			continue;
		snprintf(name, sizeof(name), "%u.%u.%u.%u:%u", c->ip >> 24, (c->ip >> 16) & 255,
			 (c->ip >> 8) & 255, c->ip & 255, c->port);
		rte_tel_data_add_dict_u64(t, name, c->sent);
	}
	return 0;
}

int dp_telemetry_init(struct dp *d)
{
	dp_for_telemetry = d;
	if (rte_telemetry_register_cmd("/pfs/stats", tel_stats,
				       "pfs-dataplane counters. Takes no parameters") < 0 ||
	    rte_telemetry_register_cmd("/pfs/children", tel_children,
				       "Children being fed: address -> chunks sent") < 0)
		return -1;
	return 0;
}
