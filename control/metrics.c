/* metrics.c - GET /metrics: pfs-control's counters in the Prometheus text
 * exposition format 0.0.4 (issue 13 section 1), on `metrics.listen`.
 *
 * Names carry the pfs_relay_ prefix, counters end in _total, units are
 * bytes and seconds; labels only where their values are bounded: model
 * (at most 16 engines), hierarchy state (the engine's 8), reason and
 * result (fixed lists). Everything is read when scraped, from the engines,
 * the cache, the segment's dataplane page and the load server's counters:
 * nothing is kept for it. Not here yet: the XDP program's per-CPU counters
 * (its maps are pinned in the dataplane's own bpffs).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "pfs_dp_stats.h"

#ifndef PFS_VERSION_STRING
#define PFS_VERSION_STRING "0.1.0"
#endif

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(FILE *f, const char *name, const char *type, const char *help, double v)
{
	family(f, name, type, help);
	fprintf(f, "%s %.15g\n", name, v);
}

static void engines(FILE *f, struct ctl *c)
{
	static const char *const states[] = { "idle", "claiming", "deferring", "joining",
					      "member", "root", "solo", "detached" };
	struct pfs_engine_stats sum;

	family(f, "pfs_relay_hierarchies", "gauge", "Hierarchies the appliance is in, by model "
	       "and state.");
	for (int i = 0; i < c->neng; i++) {
		unsigned n[8] = { 0 };
		for (int h = 0; h < pfs_engine_hier_count(c->eng[i].e); h++) {
			struct pfs_hier_info in;
			pfs_engine_hier_info(c->eng[i].e, h, &in);
			for (unsigned s = 0; s < 8; s++)
				n[s] += !strcmp(in.state, states[s]);
		}
		for (unsigned s = 0; s < 8; s++)
			fprintf(f, "pfs_relay_hierarchies{model=\"%s\",state=\"%s\"} %u\n",
				c->eng[i].model, states[s], n[s]);
	}
	/* Elections by outcome: won (root confirmed), deferred to a stronger
	 * claimer, yielded a root to a stronger one, joined another's tree
	 * (as a member); then every engine event by name (a fixed set). */
	family(f, "pfs_relay_elections_total", "counter", "Election outcomes.");
	const struct { const char *o; enum pfs_event_code ev; } outcome[] = {
		{ "won", PFS_EV_ROOT_CONFIRMED }, { "deferred", PFS_EV_DEFER },
		{ "yielded", PFS_EV_YIELD }, { "joined", PFS_EV_JOINED },
	};
	for (size_t i = 0; i < sizeof(outcome) / sizeof(outcome[0]); i++)
		fprintf(f, "pfs_relay_elections_total{outcome=\"%s\"} %llu\n", outcome[i].o,
			(unsigned long long)c->st.events[outcome[i].ev]);
	family(f, "pfs_relay_events_total", "counter", "The engines' events, by name.");
	for (int ev = 0; ev < PFS_EV_COUNT; ev++)
		fprintf(f, "pfs_relay_events_total{event=\"%s\"} %llu\n", pfs_event_name(ev),
			(unsigned long long)c->st.events[ev]);
	ctl_engines_stats(c, &sum);
	one(f, "pfs_relay_chunks_received_total", "counter", "Chunks taken from a parent.",
	    (double)sum.chunks_rx);
	one(f, "pfs_relay_chunks_sent_total", "counter", "Chunks the engines sent or queued to "
	    "children.", (double)sum.chunks_tx);
	one(f, "pfs_relay_chunks_repaired_total", "counter", "Chunks sent again (NACKs, stalls).",
	    (double)sum.chunks_retx);
	one(f, "pfs_relay_chunks_forged_total", "counter", "Chunks that failed their signed "
	    "digest.", (double)sum.chunks_forged);
	one(f, "pfs_relay_manifests_verified_total", "counter", "Signed manifests verified.",
	    (double)sum.manifests_ok);
	/* by reason: the manifest codes' short names (a fixed set) */
	_Static_assert(PFS_MAN_E_COUNT == 12, "a name for every manifest error");
	static const char *const man_reason[PFS_MAN_E_COUNT] = {
		"ok", "short", "magic", "version", "field", "length", "untrusted_key",
		"bad_signature", "wrong_name", "rollback", "unsigned", "no_memory",
	};
	family(f, "pfs_relay_manifests_rejected_total", "counter", "Manifests refused, by "
	       "reason.");
	for (int k = 1; k < PFS_MAN_E_COUNT; k++)
		fprintf(f, "pfs_relay_manifests_rejected_total{reason=\"%s\"} %llu\n",
			man_reason[k], (unsigned long long)sum.manifests_rejected[k]);
	one(f, "pfs_relay_files_failed_verification_total", "counter", "Whole files whose SHA-256 "
	    "did not match.", (double)sum.verify_failures);
	one(f, "pfs_relay_auth_ok_total", "counter", "Control messages whose site-key tag "
	    "verified.", (double)sum.auth_ok);
	family(f, "pfs_relay_auth_drops_total", "counter", "Control messages dropped by the "
	       "site-key check, by reason.");
	for (int k = 0; k < PFS_AUTH_DROP_COUNT; k++)
		fprintf(f, "pfs_relay_auth_drops_total{reason=\"%s\"} %llu\n",
			pfs_auth_drop_name(k), (unsigned long long)sum.auth_drops[k]);
	family(f, "pfs_relay_rx_malformed_total", "counter", "Datagrams the codec refused, by "
	       "error.");
	for (int k = 1; k < PFS_E_ERR_COUNT; k++)
		fprintf(f, "pfs_relay_rx_malformed_total{error=\"%s\"} %llu\n",
			pfs_codec_strerror(-k), (unsigned long long)(sum.rx_bad[k] + c->st.rx_bad[k]));
}

static void control_and_cache(FILE *f, struct ctl *c)
{
	struct pfs_cache_stats cs;

	one(f, "pfs_relay_auto_joins_total", "counter", "Hierarchies joined on a device's word.",
	    (double)c->st.auto_joins);
	one(f, "pfs_relay_wan_bytes_total", "counter", "Bytes fetched from the upstream server.",
	    (double)c->st.wan_bytes);
	family(f, "pfs_relay_upstream_fetches_total", "counter", "Upstream fetches, by result.");
	fprintf(f, "pfs_relay_upstream_fetches_total{result=\"ok\"} %llu\n"
		   "pfs_relay_upstream_fetches_total{result=\"failed\"} %llu\n",
		(unsigned long long)c->st.fetches_ok, (unsigned long long)c->st.fetches_failed);
	one(f, "pfs_relay_upstream_tftp_blksize_bytes", "gauge", "The TFTP block size fetches ask "
	    "for now (upstream.tftp_blksize, or 1468 after a fallback).",
	    (double)pfs_fetch_tftp_blksize(c->fetch));
	pfs_cache_stats(c->cache, &cs);
	one(f, "pfs_relay_cache_size_bytes", "gauge", "The chunk cache's size.", (double)cs.bytes);
	one(f, "pfs_relay_cache_used_bytes", "gauge", "Cache bytes in use.", (double)cs.used_bytes);
	family(f, "pfs_relay_cache_files", "gauge", "Files in the cache, by state.");
	fprintf(f, "pfs_relay_cache_files{state=\"complete\"} %u\n"
		   "pfs_relay_cache_files{state=\"filling\"} %u\n"
		   "pfs_relay_cache_files{state=\"retiring\"} %u\n", cs.files_complete,
		cs.files - cs.files_complete, cs.files_retiring);
	one(f, "pfs_relay_cache_hits_total", "counter", "Files served from the cache.",
	    (double)cs.hits);
	one(f, "pfs_relay_cache_misses_total", "counter", "Files the cache did not hold.",
	    (double)cs.misses);
	one(f, "pfs_relay_cache_evictions_total", "counter", "Files evicted.",
	    (double)cs.evictions);
	one(f, "pfs_relay_ring_to_dataplane_full_total", "counter", "Messages to the dataplane "
	    "dropped: the ring full and its backlog too.", (double)c->st.tx_ring_full);
	one(f, "pfs_relay_ring_to_dataplane_waited_total", "counter", "Messages to the dataplane "
	    "that waited in the backlog for ring room.", (double)c->txq.waited);
	one(f, "pfs_relay_ring_to_dataplane_backlog", "gauge", "Messages waiting in the backlog "
	    "for ring room.", (double)pfs_txq_waiting(&c->txq));
	one(f, "pfs_relay_chunk_ranges_deferred_total", "counter", "Chunk ranges kept back (and "
	    "grown) for a full ring.", (double)c->st.ranges_deferred);
	one(f, "pfs_relay_ring_to_dataplane_depth", "gauge", "Messages waiting in the ring to the "
	    "dataplane.", (double)pfs_shm_out_count(c->shm));
}

static void dataplane(FILE *f, struct ctl *c)
{
	const struct pfs_dp_stats *d = pfs_shm_stats(c->shm);
	struct pfs_shm_side_info p;
	int64_t now = ctl_now();

	pfs_shm_peer(c->shm, &p);
	one(f, "pfs_relay_dataplane_up", "gauge", "1 while pfs-dataplane beats.", c->dp_alive);
	one(f, "pfs_relay_dataplane_heartbeat_age_seconds", "gauge", "Since the dataplane's last "
	    "beat.", p.heartbeat_ns && (int64_t)p.heartbeat_ns <= now ?
	    (double)(now - (int64_t)p.heartbeat_ns) / 1e9 : 0);
	one(f, "pfs_relay_dataplane_restarts_total", "counter", "Dataplane restarts seen.",
	    (double)c->st.dataplane_restarts);
	if (d->magic != PFS_DP_STATS_MAGIC)
		return;
	if (d->xdp_maps) {
		static const char *const verdict[] = { "steered", "passed", "malformed",
						       "ttl_drop", "unauth_drop" };
		family(f, "pfs_relay_xdp_packets_total", "counter", "Frames the XDP steering "
		       "program saw, by verdict, summed over CPUs.");
		for (size_t i = 0; i < sizeof(verdict) / sizeof(verdict[0]); i++)
			fprintf(f, "pfs_relay_xdp_packets_total{verdict=\"%s\"} %llu\n", verdict[i],
				(unsigned long long)d->xdp[i]);
	}
	one(f, "pfs_relay_dataplane_rx_packets_total", "counter", "Frames received.",
	    (double)d->rx_pkts);
	one(f, "pfs_relay_dataplane_rx_bytes_total", "counter", "Bytes received.",
	    (double)d->rx_bytes);
	one(f, "pfs_relay_dataplane_tx_chunks_total", "counter", "Chunk frames sent.",
	    (double)d->tx_chunks);
	one(f, "pfs_relay_dataplane_tx_bytes_total", "counter", "Bytes sent.", (double)d->tx_bytes);
	one(f, "pfs_relay_dataplane_tx_retries_total", "counter", "TX bursts tried again on a "
	    "full ring.", (double)d->tx_retries);
	one(f, "pfs_relay_dataplane_fanout_chunks_total", "counter", "Chunks stored and relayed "
	    "by the dataplane itself.", (double)d->fanout_chunks);
	one(f, "pfs_relay_dataplane_fanout_kept_total", "counter", "Of those, kept in the frame "
	    "they came in (no copy into the cache).", (double)d->fanout_kept);
	one(f, "pfs_relay_dataplane_frames_held", "gauge", "Receive frames the cache keeps "
	    "chunks in.", (double)d->frames_held);
	one(f, "pfs_relay_dataplane_workers", "gauge", "Polling lcores of the dataplane.",
	    (double)d->workers);
	one(f, "pfs_relay_dataplane_handoffs_total", "counter", "Chunks handed from the worker "
	    "that received them to the one owning their hierarchy.", (double)d->rx_handoff);
	one(f, "pfs_relay_dataplane_to_control_total", "counter", "Datagrams passed to "
	    "pfs-control.", (double)d->to_control);
	family(f, "pfs_relay_dataplane_drops_total", "counter", "Frames the dataplane dropped, "
	       "by reason.");
	const struct { const char *why; uint64_t n; } drops[] = {
		{ "malformed", d->rx_malformed }, { "bad_crc", d->rx_bad_crc },
		{ "bad_udp_checksum", d->rx_bad_csum },
		{ "ttl", d->rx_ttl }, { "not_pfs", d->rx_not_pfs },
		{ "ring_full", d->to_control_drops }, { "tx_refused", d->tx_drops },
		{ "no_mbuf", d->mbuf_drops }, { "queue_full", d->queue_drops },
		{ "chunk_missing", d->chunk_missing }, { "bad_digest", d->fanout_bad_digest },
		{ "stale_range", d->stale_ranges }, { "handoff_full", d->handoff_drops },
	};
	for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++)
		fprintf(f, "pfs_relay_dataplane_drops_total{reason=\"%s\"} %llu\n", drops[i].why,
			(unsigned long long)drops[i].n);
}

static void load_server(FILE *f, struct ctl *c)
{
	const struct ctl_serve_stats *s = &c->serve_st;

	family(f, "pfs_relay_load_requests_total", "counter", "Requests of TFTP- and HTTP-only "
	       "devices, by protocol.");
	fprintf(f, "pfs_relay_load_requests_total{proto=\"tftp\"} %llu\n"
		   "pfs_relay_load_requests_total{proto=\"http\"} %llu\n",
		(unsigned long long)s->tftp_requests, (unsigned long long)s->http_requests);
	family(f, "pfs_relay_load_bytes_total", "counter", "File bytes sent to them.");
	fprintf(f, "pfs_relay_load_bytes_total{proto=\"tftp\"} %llu\n"
		   "pfs_relay_load_bytes_total{proto=\"http\"} %llu\n",
		(unsigned long long)s->tftp_bytes, (unsigned long long)s->http_bytes);
	family(f, "pfs_relay_load_tftp_transfers_total", "counter", "TFTP transfers, by result.");
	fprintf(f, "pfs_relay_load_tftp_transfers_total{result=\"done\"} %llu\n"
		   "pfs_relay_load_tftp_transfers_total{result=\"failed\"} %llu\n",
		(unsigned long long)s->tftp_done, (unsigned long long)s->tftp_failed);
	family(f, "pfs_relay_load_refusals_total", "counter", "Requests refused, by protocol "
	       "and reason.");
	const struct { const char *p, *why; uint64_t n; } r[] = {
		{ "tftp", "bad_request", s->tftp_bad_requests }, { "tftp", "refused", s->tftp_refused },
		{ "tftp", "not_found", s->tftp_not_found }, { "tftp", "busy", s->tftp_busy },
		{ "http", "refused", s->http_refused }, { "http", "not_found", s->http_not_found },
		{ "http", "bad_range", s->http_bad_ranges },
		{ "tftp", "unavailable", s->tftp_unavailable },
		{ "http", "unavailable", s->http_unavailable }, { "http", "busy", s->http_busy },
	};
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		fprintf(f, "pfs_relay_load_refusals_total{proto=\"%s\",reason=\"%s\"} %llu\n",
			r[i].p, r[i].why, (unsigned long long)r[i].n);
	one(f, "pfs_relay_load_clients", "gauge", "TFTP transfers in progress.",
	    ctl_serve_clients(c));
	one(f, "pfs_relay_load_waited_total", "counter", "Requests that waited for their file "
	    "to arrive from upstream (one fetch for all of them).", s->waited);
}

/* The page, built fresh at each scrape (NULL when out of memory). */
static char *page(struct ctl *c, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		return NULL;
	family(f, "pfs_relay_build_info", "gauge", "The build: always 1, its version as a label.");
	fprintf(f, "pfs_relay_build_info{version=\"%s\"} 1\n", PFS_VERSION_STRING);
	one(f, "pfs_relay_uptime_seconds", "gauge", "Since pfs-control started.",
	    (double)(ctl_now() - c->t0) / 1e9);
	one(f, "pfs_relay_site_relay", "gauge", "1 while a site relay (docs/protocol.md 4.4).",
	    c->cfg.relay && c->cfg.enabled && c->cfg.priority > PFS_CLASS_DEVICE);
	engines(f, c);
	control_and_cache(f, c);
	dataplane(f, c);
	load_server(f, c);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **req)
{
	static int first;
	struct MHD_Response *r;
	enum MHD_Result rc;
	unsigned status = MHD_HTTP_OK;
	size_t len = 0;
	char *body = NULL;

	(void)version;
	(void)upload;
	if (!*req) {
		*req = &first;
		return MHD_YES;
	}
	if (*upload_size)
		return MHD_NO;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
	else if (strcmp(url, "/metrics"))
		status = MHD_HTTP_NOT_FOUND;
	else if (!(body = page(cls, &len)))
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	if (body)
		r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	else
		r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

int ctl_metrics_open(struct ctl *c)
{
	if (!c->cfg.metrics_port)
		return 0;
	return ctl_mhd_start(c, &c->metrics, "serving /metrics", c->cfg.metrics_ip,
			     c->cfg.metrics_port, 16, on_request, NULL, NULL);
}

void ctl_metrics_close(struct ctl *c)
{
	ctl_mhd_stop(&c->metrics);
}
