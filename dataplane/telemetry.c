/* telemetry.c - DPDK telemetry commands for the dataplane:
 *   /pfs/stats     every counter of struct pfs_dp_stats
 *   /pfs/children  children fed from the cache: 10_99_1_1/4051 -> [sent, dropped]
 *   /pfs/fanout    children of hierarchies relayed here:
 *                  HIERARCHY/10_99_1_1/4051 -> [sent, dropped]
 *                  (dropped: the port's TX ring stayed full)
 * Read with dpdk-telemetry.py (socket under the EAL runtime directory).
 * The callbacks run on the telemetry thread and only read: a value may be a
 * loop old, which is what a counter display needs.
 */
#include <rte_telemetry.h>
#include <stdio.h>

#include "dp.h"

static struct dp *const *tel_w;        /* the workers: each its own children */
static unsigned tel_n;

static int tel_stats(const char *cmd, const char *params, struct rte_tel_data *t)
{
	const struct pfs_dp_stats *s = tel_w[0]->page;

	(void)cmd; (void)params;
	rte_tel_data_start_dict(t);
#define T(k) rte_tel_data_add_dict_u64(t, #k, s->k)
	T(rx_pkts); T(rx_bytes); T(rx_pfs); T(rx_not_pfs); T(rx_malformed); T(rx_bad_crc);
	T(rx_bad_csum);
	T(rx_ttl); T(to_control); T(to_control_drops); T(from_control); T(tx_ctrl);
	T(tx_chunks); T(tx_bytes); T(tx_pkts); T(tx_drops); T(tx_retries); T(mbuf_drops);
	T(chunk_missing); T(stale_ranges);
	T(queue_drops); T(children); T(neighbours); T(loops); T(busy_loops);
	T(fanout_tables); T(fanout_chunks); T(fanout_tx); T(fanout_stray); T(fanout_no_room);
	T(fanout_verified); T(fanout_bad_digest);
	T(fanout_notices); T(crc_skipped); T(rx_oversize); T(tx_chained); T(fanout_reused); T(rx_tagged);
	T(rx_handoff); T(handoff_drops); T(workers);
#undef T
	return 0;
}

/* name -> [sent, dropped] into t (DPDK 22.11's dicts hold arrays, not
 * dicts); -1 when out of memory. */
static int add_child(struct rte_tel_data *t, const char *name, uint64_t sent, uint64_t dropped)
{
	struct rte_tel_data *c = rte_tel_data_alloc();

	if (!c)
		return -1;
	rte_tel_data_start_array(c, RTE_TEL_U64_VAL);
	rte_tel_data_add_array_u64(c, sent);
	rte_tel_data_add_array_u64(c, dropped);
	if (rte_tel_data_add_dict_container(t, name, c, 0) < 0) {
		rte_tel_data_free(c);
		return -1;
	}
	return 0;
}

/* A child's name in a telemetry dict, whose names may hold only letters,
 * digits, '_' and '/' (DPDK 22.11 refuses others): 10_99_1_1/4051. */
static void ip_port(char *name, size_t n, uint32_t ip, uint16_t port)
{
	snprintf(name, n, "%u_%u_%u_%u/%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255,
		 port);
}

/* Whether worker w's child c was listed already (under an earlier worker). */
static bool seen_before(unsigned w, const struct dp_child *c)
{
	for (unsigned v = 0; v < w; v++)
		for (unsigned i = 0; i < DP_CHILDREN; i++) {
			const struct dp_child *o = &tel_w[v]->children[i];
			if (o->used && o->ip == c->ip && o->port == c->port)
				return true;
		}
	return false;
}

/* Children fed from the cache (ranges from pfs-control); a child fed by
 * several workers (hierarchies of different owners) once, summed. */
static int tel_children(const char *cmd, const char *params, struct rte_tel_data *t)
{
	(void)cmd; (void)params;
	rte_tel_data_start_dict(t);
	for (unsigned w = 0; w < tel_n; w++)
		for (unsigned i = 0; i < DP_CHILDREN; i++) {
			const struct dp_child *c = &tel_w[w]->children[i];
			uint64_t sent = 0, dropped = 0;
			char name[32];

			if (!c->used || seen_before(w, c))
				continue;
			for (unsigned v = w; v < tel_n; v++)
				for (unsigned j = 0; j < DP_CHILDREN; j++) {
					const struct dp_child *o = &tel_w[v]->children[j];
					if (o->used && o->ip == c->ip && o->port == c->port) {
						sent += o->sent;
						dropped += o->dropped;
					}
				}
			ip_port(name, sizeof(name), c->ip, c->port);
			if (add_child(t, name, sent, dropped) < 0)
				return -ENOMEM;
		}
	return 0;
}

/* Children of the hierarchies relayed here (fanout.c), by hierarchy (each
 * in its owner's tables). */
static int tel_fanout(const char *cmd, const char *params, struct rte_tel_data *t)
{
	(void)cmd; (void)params;
	rte_tel_data_start_dict(t);
	for (unsigned w = 0; w < tel_n; w++)
		for (unsigned i = 0; i < DP_FANOUT; i++) {
			const struct dp_fanout *f = &tel_w[w]->fanout[i];

			for (unsigned s = 0; f->hier && s < PFS_FANOUT_SLOTS; s++) {
				char name[64];
				int n = snprintf(name, sizeof(name), "%016llx/",
						 (unsigned long long)f->hier);

				if (!f->child[s].ip)
					continue;
				ip_port(name + n, sizeof(name) - (size_t)n, f->child[s].ip,
					f->child[s].port);
				if (add_child(t, name, f->child[s].sent, f->child[s].dropped) < 0)
					return -ENOMEM;
			}
		}
	return 0;
}

int dp_telemetry_init(struct dp *const *w, unsigned n)
{
	tel_w = w;
	tel_n = n;
	if (rte_telemetry_register_cmd("/pfs/stats", tel_stats,
				       "pfs-dataplane counters. Takes no parameters") < 0 ||
	    rte_telemetry_register_cmd("/pfs/children", tel_children,
				       "Children fed from the cache: a_b_c_d/port -> [sent, dropped]") < 0 ||
	    rte_telemetry_register_cmd("/pfs/fanout", tel_fanout,
				       "Children of hierarchies relayed here: hier/a_b_c_d/port -> "
				       "[sent, dropped]") < 0)
		return -1;
	return 0;
}
