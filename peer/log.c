/* log.c - pfs-peer's logs: lines an operator of the seed recognises
 * (TxBdcst ClaimRoot(tent), "Confirmed root bumping strength", @@@HROOT,
 * the parent/child slot line), or one JSON object per event (--log-json).
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "curl_dl.h"
#include "peer.h"

const char *peer_addr_str(uint32_t ip, char *buf)
{
	struct in_addr a = { htonl(ip) };
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

/* HH:MM:SS.uuuuuu wall-clock stamp, as on the phones' console. */
static void stamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%02d:%02d:%02d.%06ld", tm.tm_hour, tm.tm_min, tm.tm_sec,
		 ts.tv_nsec / 1000);
}

static void emit_json(struct peer *p, json_t *o)
{
	char *s;

	json_object_set_new(o, "t", json_real((double)(peer_now() - p->t0) / 1e9));
	json_object_set_new(o, "node", json_string(p->ip_str));
	s = json_dumps(o, JSON_COMPACT);
	if (s) {
		puts(s);
		free(s);
	}
	json_decref(o);
	fflush(stdout);
}

void peer_log(struct peer *p, const char *level, const char *event, const char *fmt, ...)
{
	char msg[1024], ts[32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->a.log_json) {
		json_t *o = json_object();
		json_object_set_new(o, "event", json_string(event));
		json_object_set_new(o, "level", json_string(level));
		json_object_set_new(o, "msg", json_string(msg));
		emit_json(p, o);
		return;
	}
	stamp(ts, sizeof(ts));
	printf("%s %s PFS: %s\n", level, ts, msg);
	fflush(stdout);
}

void peer_log_json_kv(struct peer *p, const char *event, const char *file, const char *k1,
		      const char *v1, const char *k2, long long v2)
{
	json_t *o;

	if (!p->a.log_json)
		return;
	o = json_object();
	json_object_set_new(o, "event", json_string(event));
	json_object_set_new(o, "model", json_string(p->a.model));
	if (file)
		json_object_set_new(o, "file", json_string(file));
	if (k1)
		json_object_set_new(o, k1, json_string(v1));
	if (k2)
		json_object_set_new(o, k2, json_integer(v2));
	emit_json(p, o);
}

/* "|parent=10.0.0.1 child[0]=10.0.0.7 child[1]=-1 FULL=0", the seed's line. */
static void slot_line(struct peer *p, const struct pfs_hier_info *info, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN];
	size_t n = (size_t)snprintf(buf, len, "|parent=%s",
				    info->parent_id ? peer_addr_str(info->parent.ip, a) : "-1");
	for (unsigned s = 0; s < info->max_children && s < 8 && n < len; s++)
		n += (size_t)snprintf(buf + n, len - n, " child[%u]=%s", s,
				      info->children[s] ? peer_addr_str(info->children[s], a) : "-1");
	if (n < len)
		snprintf(buf + n, len - n, " FULL=%d", info->nchildren == info->max_children);
	(void)p;
}

/* A node that becomes root having heard no other node may be alone, or may
 * be broadcasting where nobody listens: say where its claims went, once. */
static void alone_warning(struct peer *p)
{
	const struct pfs_engine_stats *s = pfs_engine_stats(p->e);
	char b[INET_ADDRSTRLEN];
	uint64_t heard = 0;

	for (int t = 0; t <= PFS_MSG_TYPE_MAX; t++)
		heard += s->rx_msgs[t];
	heard -= s->rx_foreign;         /* other models' nodes do not count */
	if (heard || p->alone_warned)
		return;
	p->alone_warned = true;
	inet_ntop(AF_INET, &p->bcast, b, sizeof(b));
	peer_log(p, "WRN", "heard_no_peer", "root without having heard any other %s node: "
		 "if there are others on this subnet, check that claims sent to %s on %s "
		 "reach them (--broadcast)", p->a.model, b, p->a.iface);
}

void peer_log_event(struct peer *p, const struct pfs_action *act)
{
	struct pfs_hier_info info;
	char peer_s[INET_ADDRSTRLEN] = "-", slots[256];
	const char *xid_fmt = "XID%08X";
	char xid[16];
	unsigned h32 = (unsigned)(act->hier >> 32);

	pfs_engine_hier_info(p->e, act->hidx, &info);
	if (act->event == PFS_EV_ROOT_CONFIRMED)
		alone_warning(p);
	if (act->peer_id)
		peer_addr_str(act->peer.ip ? act->peer.ip : act->peer_id, peer_s);
	snprintf(xid, sizeof(xid), xid_fmt, ntohl(p->ip.s_addr));

	if (p->a.log_json) {
		json_t *o = json_object();
		char hier[17];
		snprintf(hier, sizeof(hier), "%016llx", (unsigned long long)act->hier);
		json_object_set_new(o, "event", json_string(pfs_event_name(act->event)));
		json_object_set_new(o, "model", json_string(p->a.model));
		json_object_set_new(o, "file", json_string(act->path));
		json_object_set_new(o, "hier", json_string(hier));
		json_object_set_new(o, "state", json_string(info.state));
		if (act->peer_id)
			json_object_set_new(o, "peer", json_string(peer_s));
		json_object_set_new(o, "a", json_integer(act->a));
		json_object_set_new(o, "b", json_integer(act->b));
		json_object_set_new(o, "depth", json_integer(info.depth));
		json_object_set_new(o, "children", json_integer(info.nchildren));
		json_object_set_new(o, "have", json_integer(info.chunks_have));
		json_object_set_new(o, "total", json_integer(info.chunks_total));
		emit_json(p, o);
		return;
	}
	switch (act->event) {
	case PFS_EV_CLAIM_SENT:
		peer_log(p, "INF", "", "%s TxBdcst Ad %u: ClaimRoot(tent): H=%08X strength=%08x %s",
			 xid, act->a, h32, act->b, act->path);
		break;
	case PFS_EV_DEFER:
		peer_log(p, "INF", "", "%s defers to stronger claim from %s strength=%08x %s",
			 xid, peer_s, act->b, act->path);
		break;
	case PFS_EV_ROOT_CONFIRMED:
		peer_log(p, "NOT", "", "UT:Confirmed root bumping strength");
		peer_log(p, "NOT", "", "@@@HROOT:%s H=%08X m=%s ROOT=%s %s", xid, h32, p->a.model,
			 p->ip_str, act->path);
		break;
	case PFS_EV_JOINED:
	case PFS_EV_CHILD_ADDED:
	case PFS_EV_CHILD_REMOVED:
		slot_line(p, &info, slots, sizeof(slots));
		peer_log(p, "NOT", "", "%s H=%08X %s %s depth=%u %s", xid, h32,
			 pfs_event_name(act->event), peer_s, info.depth, act->path);
		peer_log(p, "NOT", "", "%s", slots);
		break;
	case PFS_EV_RELAY:
		peer_log(p, "NOT", "", "%s H=%08X joins the site relay %s for %s (no election)",
			 xid, h32, peer_s, act->path);
		break;
	case PFS_EV_PROGRESS:
		peer_log(p, "DBG", "", "%s H=%08X %s %u%% (%u/%u chunks)", xid, h32, act->path,
			 act->b ? (unsigned)((uint64_t)act->a * 100 / act->b) : 0, act->a, act->b);
		break;
	case PFS_EV_FAILED:
		peer_log(p, "ERR", "", "%s H=%08X %s failed: %s%s", xid, h32, act->path,
			 act->b == PFS_FAIL_LOCAL ? "cannot store it here: " : "",
			 pfs_fetch_strerror(-(int)act->a));
		break;
	default:
		peer_log(p, "INF", "", "%s H=%08X %s %s %s a=%u b=%u", xid, h32,
			 pfs_event_name(act->event), peer_s, act->path, act->a, act->b);
		break;
	}
}

void peer_log_stats(struct peer *p)
{
	const struct pfs_engine_stats *s = pfs_engine_stats(p->e);
	struct rusage ru;
	uint64_t bad = 0;

	getrusage(RUSAGE_SELF, &ru);            /* ru_maxrss: peak RSS in KiB */

	for (int i = 1; i < PFS_E_ERR_COUNT; i++)
		bad += s->rx_bad[i];
	if (p->a.log_json) {
		json_t *o = json_object();
		json_t *by = json_object();
		for (int i = 1; i < PFS_E_ERR_COUNT; i++)
			if (s->rx_bad[i])
				json_object_set_new(by, pfs_codec_strerror(-i), json_integer((json_int_t)s->rx_bad[i]));
		json_object_set_new(o, "event", json_string("stats"));
		json_object_set_new(o, "rx_bad", json_integer((json_int_t)bad));
		json_object_set_new(o, "rx_bad_by_error", by);
		json_object_set_new(o, "rx_foreign", json_integer((json_int_t)s->rx_foreign));
		json_object_set_new(o, "rx_unknown", json_integer((json_int_t)s->rx_unknown));
		json_object_set_new(o, "rx_ttl_drops", json_integer((json_int_t)p->rx_ttl_drops));
		json_object_set_new(o, "chunks_rx", json_integer((json_int_t)s->chunks_rx));
		json_object_set_new(o, "chunks_tx", json_integer((json_int_t)s->chunks_tx));
		json_object_set_new(o, "chunks_retx", json_integer((json_int_t)s->chunks_retx));
		json_object_set_new(o, "chunks_dup", json_integer((json_int_t)s->chunks_dup));
		json_object_set_new(o, "tx_errors", json_integer((json_int_t)p->tx_errors));
		json_object_set_new(o, "verify_failures", json_integer((json_int_t)s->verify_failures));
		json_object_set_new(o, "chunks_forged", json_integer((json_int_t)s->chunks_forged));
		json_object_set_new(o, "chunks_unverified",
				    json_integer((json_int_t)s->chunks_unverified));
		json_object_set_new(o, "manifests_ok", json_integer((json_int_t)s->manifests_ok));
		json_object_set_new(o, "distrusted", json_integer((json_int_t)s->distrusted));
		json_object_set_new(o, "rx_excluded", json_integer((json_int_t)s->rx_excluded));
		json_object_set_new(o, "rx_wrong_source",
				    json_integer((json_int_t)s->rx_wrong_source));
		json_object_set_new(o, "upstream_bad_chunks",
				    json_integer((json_int_t)s->upstream_bad_chunks));
		json_object_set_new(o, "auth_ok", json_integer((json_int_t)s->auth_ok));
		json_object_set_new(o, "relay_heard", json_integer((json_int_t)s->relay_heard));
		for (int i = 0; i < PFS_AUTH_DROP_COUNT; i++) {
			char k[48];
			snprintf(k, sizeof(k), "auth_drop_%s", pfs_auth_drop_name(i));
			json_object_set_new(o, k, json_integer((json_int_t)s->auth_drops[i]));
		}
		json_object_set_new(o, "max_rss_kb", json_integer(ru.ru_maxrss));
		/* CPU time and socket calls: what a chunk costs a device */
		json_object_set_new(o, "cpu_s", json_real(
			(double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
			(double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6));
		json_object_set_new(o, "rx_calls", json_integer((json_int_t)p->rx_calls));
		json_object_set_new(o, "tx_calls", json_integer((json_int_t)p->tx_calls));
		json_object_set_new(o, "rx_datagrams", json_integer((json_int_t)p->rx_datagrams));
		json_object_set_new(o, "tx_datagrams", json_integer((json_int_t)p->tx_datagrams));
		/* of the messages sent, those the kernel cut into several (gso.h) */
		json_object_set_new(o, "tx_segmented", json_integer((json_int_t)p->tx_segmented));
		json_object_set_new(o, "rx_coalesced", json_integer((json_int_t)p->rx_coalesced));
		json_object_set_new(o, "loop_turns", json_integer((json_int_t)p->loop_turns));
		json_object_set_new(o, "chunks_read_back",
				    json_integer((json_int_t)p->chunks_read_back));
		uint64_t hashed_back = 0;
		for (int i = 0; i < p->a.nwants; i++)
			hashed_back += p->files[i].hash_read_back;
		json_object_set_new(o, "hash_read_back", json_integer((json_int_t)hashed_back));
		/* the file writes the chunks took (wcbuf.h: runs of them in one) */
		uint64_t pwrites = 0;
		for (int i = 0; i < p->a.nwants; i++)
			pwrites += p->files[i].wc.pwrites;
		json_object_set_new(o, "store_pwrites", json_integer((json_int_t)pwrites));
		/* a member never fetches, so never maps libcurl (curl_dl.h) */
		json_object_set_new(o, "libcurl_loaded", json_boolean(pfs_curl_loaded()));
		emit_json(p, o);
		return;
	}
	peer_log(p, "INF", "stats", "rx_bad=%llu rx_foreign=%llu rx_ttl_drops=%llu chunks rx=%llu "
		 "tx=%llu retx=%llu dup=%llu forged=%llu distrusted=%llu tx_errors=%llu "
		 "max_rss=%ldkB",
		 (unsigned long long)bad, (unsigned long long)s->rx_foreign,
		 (unsigned long long)p->rx_ttl_drops, (unsigned long long)s->chunks_rx,
		 (unsigned long long)s->chunks_tx, (unsigned long long)s->chunks_retx,
		 (unsigned long long)s->chunks_dup, (unsigned long long)s->chunks_forged,
		 (unsigned long long)s->distrusted, (unsigned long long)p->tx_errors, ru.ru_maxrss);
}
