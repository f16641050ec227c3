/* dplink.c - pfs-control's link to pfs-dataplane: the shared segment, its
 * rings and the chunk cache in it, and each side's liveness.
 *
 * The dataplane may start before or after us, and restart at any time: on
 * each (re)start it needs our CONFIG again, which pfs_shm_peer_restarted()
 * tells us to send. Messages we queue while it is down wait in the ring.
 * What the ring has no room for waits behind it in a backlog (shm/pfs_txq.h)
 * of as many messages again (8,192 at least), in order; ranges of chunks wait in runs.c
 * instead, where they grow. Only a full backlog drops (counted; the
 * protocol repairs).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#include "control.h"

#define BEAT_NS      (100 * 1000000ll)
#define RX_PER_POLL  256
/* Messages (the ring's slots if more). The largest burst seen: a signed
 * file's manifest to 64 children at once, each asking for up to 128
 * pieces ahead (engine/integrity.c): 1,024 overflowed (477 dropped in one
 * rollout). calloc'd, so pages nobody queued into cost nothing. */
#define BACKLOG_MIN  8192

/* Our side's generation (it moves at each attach): CONFIG carries it and
 * every range follows it, so the dataplane drops what an earlier run of
 * pfs-control queued, in ring order, and nothing of ours. */
static uint64_t generation(const struct ctl *c)
{
	struct pfs_shm_side_info self;

	pfs_shm_self(c->shm, &self);
	return self.generation;
}

static int send_config(struct ctl *c)
{
	struct pfs_ring_msg m = {
		.type = PFS_RMSG_CONFIG,
		.ip = c->cfg.ip,
		.slot = c->cfg.bcast,
		.value = c->cfg.node_id,
		.port = PFS_PORT,
		.hier = generation(c),
	};
	return ctl_dplink_send(c, &m, true);
}

int ctl_dplink_send(struct ctl *c, const struct pfs_ring_msg *m, bool may_wait)
{
	int rc = pfs_txq_send(&c->txq, c->shm, m, may_wait);

	if (rc < 0 && may_wait)
		c->st.tx_ring_full++;
	return rc;
}

bool ctl_dplink_backlogged(const struct ctl *c)
{
	return pfs_txq_waiting(&c->txq) > 0;
}

/* The doorbell beside the segment (pfs_shm.h): with it we sleep in
 * epoll until the dataplane enqueues, instead of polling the ring every
 * millisecond. Without it (it cannot be made) we poll, and say so. */
static void open_bell(struct ctl *c)
{
	char path[sizeof(c->cfg.segment) + 8];
	struct epoll_event ev = { .events = EPOLLIN };
	int fd;

	c->bell_fd = -1;
	snprintf(path, sizeof(path), "%s.bell", c->cfg.segment);
	fd = pfs_shm_bell_open(c->shm, path, true);
	ev.data.fd = fd;
	if (fd < 0 || epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		ctl_warn(c, "doorbell %s: %s: polling the ring every millisecond instead", path,
			 strerror(fd < 0 ? -fd : errno));
		return;
	}
	c->bell_fd = fd;
}

bool ctl_dplink_event(struct ctl *c, int fd)
{
	if (fd < 0 || fd != c->bell_fd)
		return false;
	c->st.bell_wakes++;
	return true;            /* the ring is read in ctl_dplink_poll */
}

int ctl_dplink_open(struct ctl *c)
{
	const struct pfs_shm_params p = {
		.ring_count = c->cfg.ring_slots,
		.cache_bytes = c->cfg.cache_bytes,
	};
	uint32_t backlog = c->cfg.ring_slots > BACKLOG_MIN ? c->cfg.ring_slots : BACKLOG_MIN;
	uint64_t bytes;
	void *region;
	uint32_t frames;
	int rc;

	if ((rc = pfs_shm_attach(c->cfg.segment, PFS_SHM_CONTROL, &p, &c->shm)) < 0) {
		pfs_log(PFS_LOG_ERR, "segment %s: %s%s", c->cfg.segment, strerror(-rc),
			rc == -EBUSY ? " (a running dataplane uses another layout: stop it, "
				       "or match segment.ring_slots and segment.cache_mb)" : "");
		return rc;
	}
	region = pfs_shm_cache(c->shm, &bytes);
	/* Frames the dataplane receives into (kept chunks stay there): by
	 * default an eighth of the cache, at most 32 MB. */
	frames = c->cfg.rx_frames >= 0 ? (uint32_t)c->cfg.rx_frames :
		 (uint32_t)(bytes / 8 / PFS_CACHE_FRAME < 16384 ? bytes / 8 / PFS_CACHE_FRAME : 16384);
	/* Laid out anew, the cache would move under a running dataplane (its
	 * frames, maps and reference counts), which keeps the layout it
	 * found: only the segment's size is checked by the attach. */
	if (pfs_shm_peer_alive(c->shm, (uint64_t)ctl_now(),
			       (uint64_t)(c->cfg.heartbeat_timeout_s * 1e9)) &&
	    pfs_cache_relayout_needed(region, bytes, frames)) {
		pfs_log(PFS_LOG_ERR, "cache in %s: segment.rx_frames = %u lays it out anew, under a "
			"running dataplane that uses it as it is: stop the dataplane first, or set "
			"rx_frames back", c->cfg.segment, frames);
		rc = -EBUSY;
		goto err_detach;
	}
	if ((rc = pfs_cache_open(region, bytes, frames, true, &c->cache)) < 0) {
		pfs_log(PFS_LOG_ERR, "cache in %s: %s", c->cfg.segment, strerror(-rc));
		goto err_detach;
	}
	if ((rc = pfs_txq_init(&c->txq, backlog)) < 0) {
		pfs_log(PFS_LOG_ERR, "ring backlog of %u messages: %s", backlog, strerror(-rc));
		goto err_cache;
	}
	/* Nobody finishes what a previous incarnation was filling. */
	rc = pfs_cache_drop_partial(c->cache);
	if (rc > 0)
		ctl_log(c, "dropped %d partial cache file(s) of a previous run", rc);
	for (int i = 0; i < PFS_CACHE_FILES; i++)
		pfs_cache_pin(c->cache, i, false);
	send_config(c);
	pfs_shm_beat(c->shm, (uint64_t)ctl_now());
	c->last_beat = ctl_now();
	open_bell(c);
	return 0;
err_cache:
	pfs_cache_close(c->cache);
	c->cache = NULL;
err_detach:
	pfs_shm_detach(c->shm);
	c->shm = NULL;
	return rc;
}

void ctl_dplink_close(struct ctl *c)
{
	pfs_txq_fini(&c->txq);
	pfs_cache_close(c->cache);
	c->cache = NULL;
	pfs_shm_detach(c->shm);
	c->shm = NULL;
}

void ctl_dplink_poll(struct ctl *c)
{
	struct pfs_ring_msg m;
	int64_t now = ctl_now();
	bool alive;

	if (now - c->last_beat >= BEAT_NS) {
		pfs_shm_beat(c->shm, (uint64_t)now);
		c->last_beat = now;
		/* Dropped files the dataplane has let go of since: their room
		 * back (also done whenever room is needed). */
		pfs_cache_reclaim(c->cache);
	}
	pfs_txq_flush(&c->txq, c->shm);
	if (pfs_shm_peer_restarted(c->shm)) {
		c->st.dataplane_restarts++;
		ctl_log(c, "dataplane (re)attached: sending configuration");
		send_config(c);
		ctl_fanout_lost(c);
	}
	alive = pfs_shm_peer_alive(c->shm, (uint64_t)now,
				   (uint64_t)(c->cfg.heartbeat_timeout_s * 1e9));
	if (alive != c->dp_alive) {
		(alive ? ctl_log : ctl_warn)(c, "dataplane %s", alive ? "up" : "down (no heartbeat)");
		ctl_sock_notice(c, alive ? "dataplane_up" : "dataplane_down",
				alive ? "beating" : "no heartbeat");
		c->dp_alive = alive;
	}
	for (int n = 0; n < RX_PER_POLL && pfs_shm_recv(c->shm, &m) == 1; n++) {
		struct pfs_addr src = { .ip = m.ip, .port = m.port };
		if (m.type == PFS_RMSG_CHUNKS_STORED) {
			ctl_fanout_stored(c, &m);
			continue;
		}
		if (m.type != PFS_RMSG_PFS_RX || m.len > sizeof(m.data))
			continue;
		c->st.rx_datagrams++;
		ctl_engines_rx(c, &src, m.data, m.len);
	}
}

int ctl_dplink_send_datagram(struct ctl *c, const struct pfs_action *act, const uint8_t *msg,
			     size_t len)
{
	struct pfs_ring_msg m = {
		.type = PFS_RMSG_PFS_TX,
		.flags = act->bcast ? PFS_RMSG_F_BCAST : 0,
		.ip = act->bcast ? c->cfg.bcast : act->dst.ip,
		.port = act->bcast ? PFS_PORT : act->dst.port,
		.hier = act->hier,
	};

	if (len > sizeof(m.data))
		return -EMSGSIZE;
	memcpy(m.data, msg, len);
	m.len = (uint16_t)len;
	if (ctl_dplink_send(c, &m, true) < 0)
		return -ENOBUFS;
	c->st.tx_datagrams++;
	return 0;
}

int ctl_dplink_send_chunks(struct ctl *c, uint64_t hier, int cache_fi, struct pfs_addr dst,
			   uint32_t first, uint32_t count)
{
	struct pfs_ring_msg m = {
		.type = PFS_RMSG_SEND_CHUNKS,
		.ip = dst.ip,
		.port = dst.port,
		.slot = (uint32_t)cache_fi,
		.hier = hier,
		.value = (uint64_t)first << 32 | count,
	};
	struct pfs_cache_file *f = pfs_cache_file(c->cache, cache_fi);
	struct pfs_rmsg_range body = {
		.entry = f ? f->hier : hier,    /* another hierarchy's when shared */
		.generation = generation(c),
	};

	m.len = sizeof(body);
	memcpy(m.data, &body, sizeof(body));

	/* One message per run of consecutive chunks, not one per chunk; one
	 * the ring cannot take now stays with runs.c and grows. */
	if (ctl_dplink_send(c, &m, false) < 0)
		return -ENOBUFS;
	c->st.chunk_ranges++;
	c->st.chunks_queued += count;
	return 0;
}
