/* main.c - pfs-peer: init chain, epoll loop and exit policy.
 *
 * The loop sleeps until a datagram, a signal, a libcurl socket or the
 * earliest of the engine's and libcurl's deadlines, hands the event to its
 * owner and drains the engine's actions after each one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "peer.h"
#include "pfs_clock.h"
#include "pfs_log.h"
#include "pfs_loop.h"

int64_t peer_now(void)
{
	return pfs_mono_ns();
}

static int setup_engine(struct peer *p)
{
	struct pfs_engine_config c;
	struct timespec ts;

	pfs_engine_config_defaults(&c);
	c.node_id = ntohl(p->ip.s_addr);
	c.self = (struct pfs_addr){ c.node_id, p->a.port };
	snprintf(c.model, sizeof(c.model), "%s", p->a.model);
	c.priority_class = (uint8_t)p->a.priority_class;
	c.max_children = (uint16_t)p->a.max_children;
	c.mode = p->a.mode;
	c.chunk_size = p->a.chunk_size;
	c.upstream_retries = (uint8_t)p->a.upstream_retries;
	c.fallback_timeout = (pfs_time_t)(p->a.fallback_s * 1e9);
	c.min_parent_rate = p->a.min_parent_rate;
	clock_gettime(CLOCK_REALTIME, &ts);
	c.random = (uint32_t)(ts.tv_nsec ^ getpid() ^ c.node_id);
	c.trust = &p->trust;
	c.site = p->site.nkeys ? &p->site : NULL;
	p->e = pfs_engine_new(&c);
	return p->e ? 0 : -errno;
}

/* Site keys, and the boot count that makes our sequence numbers higher
 * after every start than before it (docs/protocol.md 3.4). */
static int setup_site_key(struct peer *p)
{
	char err[512], path[4200];
	uint32_t boot;

	for (int i = 0; i < p->a.nsite_keys; i++) {
		struct pfs_site_key k;
		if (pfs_keyfile_read_site(p->a.site_key[i], &k, err, sizeof(err)) < 0) {
			pfs_log(PFS_LOG_ERR, "--site-key %s", err);
			return -EINVAL;
		}
		if (i == 1 && k.id == p->site.key_id[0]) {
			pfs_log(PFS_LOG_ERR, "--site-key %s: same key id %u as %s",
				p->a.site_key[1], k.id, p->a.site_key[0]);
			return -EINVAL;
		}
		p->site.key_id[i] = k.id;
		memcpy(p->site.key[i], k.key, sizeof(k.key));
		p->site.nkeys++;
	}
	if (!p->site.nkeys)
		return 0;
	snprintf(path, sizeof(path), "%s/.pfs-peer-boot", p->a.state_dir);
	if (pfs_boot_count_next(path, &boot, err, sizeof(err)) < 0) {
		pfs_log(PFS_LOG_ERR, "boot count: %s", err);
		return -EINVAL;
	}
	p->tx_seq = (uint64_t)boot << 32;
	p->site.tx_seq = &p->tx_seq;
	return 0;
}

/* Trusted keys and the rollback state: named errors, exit 3 (setup). */
static int setup_trust(struct peer *p)
{
	char err[512], path[4200];

	p->trust.allow_unsigned = p->a.allow_unsigned;
	if (pfs_trust_load(&p->trust, p->a.trust, p->a.ntrust, err, sizeof(err)) < 0) {
		pfs_log(PFS_LOG_ERR, "--trust %s", err);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s/.pfs-peer-state", p->a.state_dir);
	p->seqstate = pfs_seqstate_open(path, err, sizeof(err));
	if (!p->seqstate) {
		pfs_log(PFS_LOG_ERR, "rollback state: %s", err);
		return -EINVAL;
	}
	return setup_site_key(p);
}

static int setup_signals(struct peer *p)
{
	p->sigfd = pfs_loop_signals();
	return p->sigfd < 0 ? p->sigfd : 0;
}

static int epoll_add(struct peer *p, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	return epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int want_files(struct peer *p)
{
	int64_t now = peer_now();

	for (int i = 0; i < p->a.nwants; i++) {
		int rc = peer_store_open(p, i, p->a.wants[i]);
		if (rc < 0)
			return rc;
		rc = pfs_engine_want(p->e, (pfs_time_t)now, p->a.wants[i]);
		if (rc != i)
			return rc < 0 ? rc : -EINVAL;
		pfs_engine_seq_floor(p->e, i, pfs_seqstate_get(p->seqstate, p->a.wants[i]));
	}
	peer_drain(p);
	return 0;
}

static int timeout_ms(struct peer *p, int64_t now)
{
	int64_t t = (int64_t)(pfs_engine_next_deadline(p->e) == PFS_TIME_NEVER ? INT64_MAX :
			      (int64_t)pfs_engine_next_deadline(p->e));

	int64_t fetch_deadline = pfs_fetch_deadline(p->fetch);
	if (fetch_deadline >= 0 && fetch_deadline < t)
		t = fetch_deadline;
	if (p->done_at && p->a.exit_when_done) {
		int64_t linger_end = p->linger_from + (int64_t)(p->a.linger_s * 1e9);
		if (linger_end < t)
			t = linger_end;
	}
	return pfs_loop_timeout_ms(t, now, 1000);
}

/* Exit once every file is done or failed and our children are served, or
 * when they have not moved for the linger time (gone, or stuck): leaving
 * a child that is still being served would orphan it, and it would fetch
 * the rest from the server. */
static bool time_to_exit(struct peer *p, int64_t now)
{
	uint64_t progress;

	if (!pfs_engine_done(p->e))
		return false;
	progress = pfs_engine_children_progress(p->e);
	if (!p->done_at || progress != p->children_progress) {
		p->done_at = p->done_at ? p->done_at : now;
		p->linger_from = now;
		p->children_progress = progress;
	}
	if (!p->a.exit_when_done)
		return false;
	return pfs_engine_children_served(p->e) ||
	       now - p->linger_from >= (int64_t)(p->a.linger_s * 1e9);
}

static void run(struct peer *p)
{
	struct epoll_event evs[16];
	bool hashing = false;

	while (!p->stop) {
		int64_t now = peer_now();
		if (time_to_exit(p, now))
			break;
		peer_udp_flush(p);      /* what the last turn queued leaves now */
		/* A digest still to finish: look at the sockets, do not wait. */
		int n = epoll_wait(p->epfd, evs, 16, hashing ? 0 : timeout_ms(p, now));
		p->loop_turns++;
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == p->udp) {
				peer_udp_recv_all(p);
			} else if (fd == p->sigfd) {
				p->stop |= pfs_loop_signal_read(p->sigfd);
			} else {
				pfs_fetch_on_fd(p->fetch, fd, evs[i].events);
			}
		}
		now = peer_now();
		if (pfs_fetch_deadline(p->fetch) >= 0 && now >= pfs_fetch_deadline(p->fetch))
			pfs_fetch_on_timeout(p->fetch);
		if ((int64_t)pfs_engine_next_deadline(p->e) <= now) {
			pfs_engine_timeout(p->e, (pfs_time_t)now);
			peer_drain(p);
		}
		hashing = peer_store_hash_step(p);
	}
	pfs_engine_shutdown(p->e, (pfs_time_t)peer_now());
	peer_drain(p);
	peer_udp_flush(p);
}

/* The verdict: 0 if every file is here and verified, else name what is not
 * and exit with the worst outcome: interrupted, then storage, then the
 * server (README "Exit codes"). */
static int verdict(struct peer *p)
{
	bool interrupted = false, storage = false, server = false;

	for (int i = 0; i < p->a.nwants; i++) {
		struct peer_file *f = &p->files[i];
		if (f->published)
			continue;
		char url[4200];
		if (pfs_fetch_url(p->a.server, p->a.wants[i], url, sizeof(url)) < 0)
			snprintf(url, sizeof(url), "%s", p->a.wants[i]);
		pfs_log(PFS_LOG_ERR, "cannot get %s: %s", url,
			f->failed ? f->fail_reason : "interrupted before completion");
		interrupted |= !f->failed;
		storage |= f->failed && f->local_failure;
		server |= f->failed && !f->local_failure;
	}
	return interrupted ? PEER_EXIT_INTERRUPTED : storage ? PEER_EXIT_STORAGE :
	       server ? PEER_EXIT_FAILED : PEER_EXIT_OK;
}

int main(int argc, char **argv)
{
	static struct peer peer;
	struct peer *p = &peer;
	struct stat st;
	int rc, code = PEER_EXIT_SETUP;

	rc = peer_args_parse(&p->a, argc, argv);
	if (rc != 0) {
		peer_usage(rc > 0 ? stdout : stderr);
		return rc > 0 ? PEER_EXIT_OK : PEER_EXIT_USAGE;
	}
	/* Its own errors through the shared logger (a JSON line with
	 * --log-json); its protocol events keep their seed-style lines
	 * (log.c). */
	pfs_log_init(&(struct pfs_log_opts){ .program = "pfs-peer", .json = p->a.log_json });
	p->udp = p->sigfd = p->epfd = -1;
	p->tx.chunk_slot = -1;
	for (int i = 0; i < PEER_MAX_WANTS; i++)
		p->files[i].fd = -1;
	p->t0 = peer_now();
	if (stat(p->a.out, &st) < 0 || !S_ISDIR(st.st_mode)) {
		pfs_log(PFS_LOG_ERR, "--out %s: not a directory", p->a.out);
		return PEER_EXIT_STORAGE;
	}
	if (setup_trust(p) < 0)
		goto out;
	if ((rc = peer_udp_open(p)) < 0)
		goto out;
	if ((rc = setup_engine(p)) < 0) {
		pfs_log(PFS_LOG_ERR, "engine: %s", strerror(-rc));
		goto out_udp;
	}
	if ((p->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || (rc = setup_signals(p)) < 0 ||
	    (rc = epoll_add(p, p->udp)) < 0 || (rc = epoll_add(p, p->sigfd)) < 0) {
		pfs_log(PFS_LOG_ERR, "event loop: %s", strerror(errno));
		goto out_engine;
	}
	if ((rc = peer_upstream_init(p)) < 0) {
		pfs_log(PFS_LOG_ERR, "libcurl: %s", strerror(-rc));
		goto out_engine;
	}
	peer_log(p, "DBG", "start", "XID%08X listening on UDP %s:%u (%s) model=%s mode=%s "
		 "trust=%d key(s)%s",
		 ntohl(p->ip.s_addr), p->ip_str, p->a.port, p->a.iface, p->a.model,
		 p->a.mode == PFS_MODE_TFTP_ONLY ? "tftp-only" :
		 p->a.mode == PFS_MODE_STORE_FORWARD ? "store-forward" : "cut-through",
		 p->trust.nkeys, p->a.allow_unsigned ? " unsigned-allowed" : "");
	if (p->bcast_derived) {
		char rep[INET_ADDRSTRLEN], use[INET_ADDRSTRLEN];
		struct in_addr r = { htonl(p->bcast_reported) };
		inet_ntop(AF_INET, &r, rep, sizeof(rep));
		inet_ntop(AF_INET, &p->bcast, use, sizeof(use));
		peer_log(p, "WRN", "broadcast_derived", "%s reports broadcast address %s, which "
			 "reaches no peer (an address added without 'brd'?): claims go to %s, "
			 "derived from its address and prefix; --broadcast overrides", p->a.iface,
			 p->bcast_reported ? rep : "none", use);
	}
	if ((rc = want_files(p)) < 0) {
		pfs_log(PFS_LOG_ERR, "cannot prepare output files in %s: %s", p->a.out,
			strerror(-rc));
		code = PEER_EXIT_STORAGE;
		goto out_curl;
	}
	run(p);
	peer_log_stats(p);
	code = verdict(p);
out_curl:
	peer_upstream_cleanup(p);
out_engine:
	if (p->sigfd >= 0)
		close(p->sigfd);
	if (p->epfd >= 0)
		close(p->epfd);
	pfs_engine_free(p->e);
out_udp:
	close(p->udp);
out:
	peer_store_close_all(p);
	pfs_seqstate_free(p->seqstate);
	return code;
}
