/* main.c - pfs-control: command line, init chain and event loop.
 *
 *   pfs-control --config FILE [--check]
 *
 * The loop sleeps in epoll on the control socket, its clients, libcurl's
 * sockets, the load server's, a signalfd and the dataplane's doorbell,
 * until the earliest of the engines', libcurl's and the servers' deadlines.
 * The rings have no file descriptor: before it sleeps the loop says so in
 * the segment, and the dataplane rings the doorbell (a FIFO) when it
 * enqueues to a sleeper (pfs_shm.h), so an idle appliance wakes for its
 * timers and heartbeat only. Without a doorbell the ring is polled every
 * millisecond, as it always was before.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "pfs_clock.h"
#include "pfs_loop.h"
#include "pfs_sd.h"

#define RING_POLL_MS 1           /* without the doorbell */
#define SLEEP_MAX_MS 100        /* with it: the heartbeat's period (dplink.c) */

#define FETCH_PORT_LO    49152          /* RFC 6335's dynamic ports, 49152-65535 */
#define FETCH_PORT_COUNT 16384

int64_t ctl_now(void)
{
	return pfs_mono_ns();
}

/* pfs-control's lines, through the one logger (common/pfs_log.h). */
void ctl_log(struct ctl *c, const char *fmt, ...)
{
	va_list ap;

	(void)c;
	va_start(ap, fmt);
	pfs_vlog(PFS_LOG_INFO, fmt, ap);
	va_end(ap);
}

void ctl_warn(struct ctl *c, const char *fmt, ...)
{
	va_list ap;

	(void)c;
	va_start(ap, fmt);
	pfs_vlog(PFS_LOG_WARNING, fmt, ap);
	va_end(ap);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: pfs-control --config FILE [--check] [--log-json] [--log-level LEVEL]\n"
		   "  --config FILE  the appliance configuration (see configs/pfs-relay.conf)\n"
		   "  --check        only check the configuration, then exit\n"
		   "  --log-json     log one JSON object a line\n"
		   "  --log-level LEVEL err, warning, info (default) or debug\n");
}

static int setup_signals(struct ctl *c)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if ((c->sigfd = pfs_loop_signals()) < 0)
		return c->sigfd;
	ev.data.fd = c->sigfd;
	return epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->sigfd, &ev) < 0 ? -errno : 0;
}

static int timeout_ms(struct ctl *c, int64_t now)
{
	int64_t t = ctl_engines_deadline(c), f = pfs_fetch_deadline(c->fetch);

	if (f >= 0 && f < t)
		t = f;
	if (ctl_runs_deadline() < t)
		t = ctl_runs_deadline();
	if (ctl_serve_deadline(c) < t)
		t = ctl_serve_deadline(c);
	if (ctl_http_deadline(c) < t)
		t = ctl_http_deadline(c);
	if (ctl_mhd_deadline(&c->metrics) < t)
		t = ctl_mhd_deadline(&c->metrics);
	/* Asleep, the dataplane rings us when it enqueues (pfs_shm_sleep says
	 * whether we may: it can ring, and the ring is empty); else poll. */
	/* Messages waiting for ring room: poll until they went. */
	return pfs_loop_timeout_ms(t, now, !ctl_dplink_backlogged(c) && pfs_shm_sleep(c->shm) ?
					   SLEEP_MAX_MS : RING_POLL_MS);
}

static void run(struct ctl *c)
{
	struct epoll_event evs[32];
	bool hashing = false;

	while (!c->stop) {
		/* A digest the engine waits for: look at the fds, do not sleep. */
		int n = epoll_wait(c->epfd, evs, 32, hashing ? 0 : timeout_ms(c, ctl_now()));
		if (n < 0 && errno != EINTR)
			break;
		pfs_shm_woken(c->shm);
		c->st.loops++;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == c->sigfd) {
				c->stop |= pfs_loop_signal_read(c->sigfd);
			} else if (!ctl_dplink_event(c, fd) && !ctl_sock_event(c, fd, evs[i].events) &&
				   !ctl_serve_event(c, fd) && !ctl_http_event(c, fd) &&
				   !ctl_mhd_event(&c->metrics, fd)) {
				pfs_fetch_on_fd(c->fetch, fd, evs[i].events);
			}
		}
		ctl_dplink_poll(c);
		int64_t now = ctl_now();
		if (pfs_fetch_deadline(c->fetch) >= 0 && now >= pfs_fetch_deadline(c->fetch))
			pfs_fetch_on_timeout(c->fetch);
		ctl_engines_timeout(c);
		ctl_runs_flush_due(c, now);
		/* What depends on the engines' state is looked at again only
		 * when an engine moved (a drain): not for every TFTP ACK. */
		if (c->fill_gen != c->seen_gen) {
			c->seen_gen = c->fill_gen;
			ctl_serve_kick(c);              /* entries grew, fetches ended */
			ctl_http_kick(c);
			ctl_engines_pin(c);
			c->fanout_behind = true;
		}
		if (c->fanout_behind)
			c->fanout_behind = !ctl_fanout_sync(c);
		ctl_serve_timeout(c);
		ctl_http_timeout(c);
		ctl_mhd_run_due(&c->metrics);
		ctl_sock_sweep(c, now);
		hashing = ctl_hash_step(c);
	}
	ctl_log(c, "stopping: leaving every hierarchy");
	for (int i = 0; i < c->neng; i++)
		pfs_engine_shutdown(c->eng[i].e, (pfs_time_t)ctl_now());
	ctl_engines_drain(c);
}

/* Can make_socket_dir() succeed: does the socket's directory, or the one
 * above it (where it would be made), exist? For --check. */
static int socket_dir_possible(const char *sock)
{
	char dir[4096];
	struct stat st;
	char *slash;

	if (strlen(sock) >= sizeof(dir))
		return -ENAMETOOLONG;
	strcpy(dir, sock);
	for (int up = 0; up < 2; up++) {
		if (!(slash = strrchr(dir, '/')))
			return 0;       /* relative to the working directory */
		*slash = '\0';
		if (!dir[0] || (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)))
			return 0;
	}
	return -ENOENT;
}

static int make_socket_dir(const char *sock)
{
	char dir[4096];
	char *slash;

	if (strlen(sock) >= sizeof(dir))
		return -ENAMETOOLONG;
	strcpy(dir, sock);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The state directory: rollback floors, and the boot count that makes our
 * site-key sequence numbers higher after every start (docs/protocol.md 3.4). */
static int setup_state(struct ctl *c)
{
	char path[4200], err[512];
	uint32_t boot;

	if (mkdir(c->cfg.state_dir, 0700) < 0 && errno != EEXIST) {
		pfs_log(PFS_LOG_ERR, "trust.state_dir %s: %s", c->cfg.state_dir,
			strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/manifest-sequences", c->cfg.state_dir);
	if (!(c->seqstate = pfs_seqstate_open(path, err, sizeof(err)))) {
		pfs_log(PFS_LOG_ERR, "rollback state: %s", err);
		return -1;
	}
	if (!c->cfg.site.nkeys)
		return 0;
	snprintf(path, sizeof(path), "%s/boot-count", c->cfg.state_dir);
	if (pfs_boot_count_next(path, &boot, err, sizeof(err)) < 0) {
		pfs_log(PFS_LOG_ERR, "boot count: %s", err);
		return -1;
	}
	c->tx_seq = (uint64_t)boot << 32;
	c->cfg.site.tx_seq = &c->tx_seq;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "log-json", no_argument, NULL, 'J' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct ctl ctl;
	struct ctl *c = &ctl;
	struct pfs_log_opts lo = { .program = "pfs-control", .uptime = true };
	const char *config = NULL;
	bool check = false;
	int opt, rc, status = 1, level;

	pfs_log_init(&lo);
	while ((opt = getopt_long(argc, argv, "c:kh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': config = optarg; break;
		case 'k': check = true; break;
		case 'J': lo.json = true; break;
		case 'L':
			if ((level = pfs_log_level_parse(optarg)) < 0) {
				pfs_log(PFS_LOG_ERR, "bad value '%s' for --log-level (err, warning, "
					"info, debug)", optarg);
				return 2;
			}
			lo.min = (enum pfs_log_level)level;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	pfs_log_init(&lo);
	if (!config || optind != argc) {
		pfs_log(PFS_LOG_ERR, "%s", config ? "unexpected argument" :
			"--config FILE is required");
		usage(stderr);
		return 2;
	}
	if (ctl_config_load(&c->cfg, config) < 0)
		return 1;
	if (check) {
		if ((rc = socket_dir_possible(c->cfg.socket)) < 0) {
			fprintf(stderr, "%s: control.socket: neither %s's directory nor its parent "
				"exists (%s)\n", config, c->cfg.socket, strerror(-rc));
			return 1;
		}
		printf("%s: ok\n", config);
		return 0;
	}
	if (setup_state(c) < 0)
		return 1;
	c->t0 = ctl_now();
	c->lsock = c->lsock_ro = c->sigfd = c->bell_fd = -1;
	if ((c->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || (rc = setup_signals(c)) < 0) {
		pfs_log(PFS_LOG_ERR, "epoll/signalfd: %s", strerror(errno));
		return 1;
	}
	if (ctl_dplink_open(c) < 0)
		goto out_fds;
	c->fetch = pfs_fetch_new(c->epfd, &ctl_fetch_ops, c);
	if (!c->fetch) {
		pfs_log(PFS_LOG_ERR, "upstream fetcher: %s", strerror(ENOMEM));
		goto out_dplink;
	}
	/* The appliance fetches for the site: no libcurl is said now, not at
	 * the first fetch (pfs-peer loads it then, curl_dl.h). */
	if ((rc = pfs_fetch_load(c->fetch)) < 0) {
		pfs_log(PFS_LOG_ERR, "upstream fetcher: %s", pfs_fetch_strerror(rc));
		goto out_fetch;
	}
	/* Upstream fetches keep to the IANA dynamic range, which 4051 is not
	 * in, whatever the host's ip_local_port_range says (issue 15 2). */
	c->cfg.limits.port_lo = FETCH_PORT_LO;
	c->cfg.limits.port_count = FETCH_PORT_COUNT;
	pfs_fetch_set_limits(c->fetch, &c->cfg.limits);
	if (c->cfg.ca_file[0] && pfs_fetch_set_ca_file(c->fetch, c->cfg.ca_file) < 0)
		goto out_fetch;
	if ((rc = make_socket_dir(c->cfg.socket)) < 0) {
		pfs_log(PFS_LOG_ERR, "%s: cannot create its directory: %s",
			c->cfg.socket, strerror(-rc));
		goto out_fetch;
	}
	if (ctl_sock_open(c) < 0)
		goto out_fetch;
	ctl_log(c, "node %08x at %s, upstream %s, segment %s, socket %s", c->cfg.node_id,
		c->cfg.site_address, c->cfg.server, c->cfg.segment, c->cfg.socket);
	ctl_log(c, "trust: %d publisher key(s)%s, %s", c->cfg.trust.nkeys,
		c->cfg.trust.allow_unsigned ? ", unsigned files allowed" : "",
		c->cfg.site.nkeys ? "site key" : "no site key");
	if (ctl_serve_open(c) < 0 || ctl_http_open(c) < 0 || ctl_metrics_open(c) < 0)
		goto out_sock;
	if ((rc = ctl_engines_start(c)) < 0) {
		pfs_log(PFS_LOG_ERR, "site relay: %s", strerror(-rc));
		goto out_sock;
	}
	/* Serving now (control socket, load server, metrics, the segment):
	 * a Type=notify unit is started, pfsctl and the dataplane may come. */
	if ((rc = pfs_sd_notify("READY=1")) < 0)
		ctl_warn(c, "cannot tell systemd we are ready: %s", strerror(-rc));
	run(c);
	pfs_sd_notify("STOPPING=1");
	status = 0;
out_sock:
	ctl_metrics_close(c);
	ctl_http_close(c);
	ctl_serve_close(c);
	ctl_sock_close(c);
out_fetch:
	ctl_engines_free(c);
	pfs_fetch_free(c->fetch);
out_dplink:
	ctl_dplink_close(c);
out_fds:
	close(c->sigfd);
	close(c->epfd);
	pfs_seqstate_free(c->seqstate);
	return status;
}
