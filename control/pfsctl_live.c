/* pfsctl_live.c - pfsctl's commands that stay connected:
 *
 *   events  subscribe ({"cmd":"events"}) and print every event as it comes,
 *           a line each (as it came with --json), until interrupted or the
 *           daemon ends the stream (it stopped, or we did not keep up)
 *   watch   a live view: the appliance, its rates (WAN from pfs-control's
 *           counter, the dataplane's packets and bytes), the cache, every
 *           hierarchy with a progress bar, its rate and ETA, and the last
 *           events (a second connection, subscribed, read between
 *           refreshes). On a terminal the screen is redrawn in place (ANSI);
 *           otherwise each refresh is printed as plain text.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "pfsctl.h"

#define S pfsctl_s
#define I pfsctl_i
#define EVENTS_SHOWN 8
#define TREES_MAX 256

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* SIGINT and SIGTERM end the command: without SA_RESTART, so that a read
 * waiting for the next event returns (EINTR) and the loop sees stop. */
static void catch_stop(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Connect and subscribe; the socket, or -1 after saying why. */
static int subscribe(const char *sock)
{
	struct timeval none = { 0 };
	char err[512];
	json_t *req = json_pack("{s:s}", "cmd", "events"), *r;
	int fd = pfsctl_connect(sock);

	if (fd < 0) {
		fprintf(stderr, "pfsctl: cannot reach pfs-control at %s: %s\n", sock,
			strerror(errno));
		json_decref(req);
		return -1;
	}
	r = pfsctl_call(fd, req, err, sizeof(err));
	json_decref(req);
	if (!r || !json_is_true(json_object_get(r, "ok"))) {
		fprintf(stderr, "pfsctl: events: %s\n", r ? S(r, "error") : err);
		json_decref(r);
		close(fd);
		return -1;
	}
	json_decref(r);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));  /* events wait */
	return fd;
}

/* One event as a line for humans. */
static void event_line(json_t *e, char *out, size_t cap)
{
	if (json_object_get(e, "detail")) {
		snprintf(out, cap, "[%9.3f] %-16s %s", json_real_value(json_object_get(e, "t")),
			 S(e, "event"), S(e, "detail"));
		return;
	}
	snprintf(out, cap, "[%9.3f] %-16s %-12s %-28s %-15s a=%lld b=%lld",
		 json_real_value(json_object_get(e, "t")), S(e, "event"), S(e, "model"),
		 S(e, "file"), *S(e, "peer") ? S(e, "peer") : "-", I(e, "a"), I(e, "b"));
}

/* Complete lines of buf[*len] to fn, the rest kept. */
static void lines(char *buf, size_t *len, void (*fn)(const char *line, void *ctx), void *ctx)
{
	char *nl;

	while ((nl = memchr(buf, '\n', *len))) {
		*nl = '\0';
		fn(buf, ctx);
		memmove(buf, nl + 1, *len - (size_t)(nl + 1 - buf));
		*len -= (size_t)(nl + 1 - buf);
	}
}

static void print_event(const char *line, void *ctx)
{
	bool json = *(bool *)ctx;
	json_t *e;
	char out[512];

	if (json) {
		printf("%s\n", line);
	} else if ((e = json_loads(line, 0, NULL))) {
		event_line(e, out, sizeof(out));
		printf("%s\n", out);
		json_decref(e);
	}
	fflush(stdout);
}

int pfsctl_events(const char *sock, bool json)
{
	static char buf[1 << 16];
	size_t len = 0;
	int fd;

	catch_stop();
	if ((fd = subscribe(sock)) < 0)
		return 3;
	fprintf(stderr, "pfsctl: events: subscribed to %s\n", sock);
	while (!stop) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "pfsctl: events: pfs-control ended the stream (%s)\n",
				n == 0 ? "it stopped, or we did not keep up" : strerror(errno));
			close(fd);
			return 3;
		}
		len += (size_t)n;
		lines(buf, &len, print_event, &json);
		if (len == sizeof(buf) - 1)
			len = 0;                /* a line longer than any event: drop it */
	}
	close(fd);
	return 0;
}

/* --- watch ------------------------------------------------------------- */

struct view {
	char events[EVENTS_SHOWN][256];
	int nev;
	/* the previous refresh, for rates */
	double t;
	long long wan, tx_bytes, rx_pkts, tx_chunks;
	struct { char key[17]; long long have; } prev[TREES_MAX];
	int nprev;
};

static void keep_event(const char *line, void *ctx)
{
	struct view *v = ctx;
	json_t *e = json_loads(line, 0, NULL);

	if (!e)
		return;
	if (v->nev == EVENTS_SHOWN) {
		memmove(v->events[0], v->events[1], sizeof(v->events[0]) * (EVENTS_SHOWN - 1));
		v->nev--;
	}
	event_line(e, v->events[v->nev++], sizeof(v->events[0]));
	json_decref(e);
}

static long long prev_have(const struct view *v, const char *key)
{
	for (int i = 0; i < v->nprev; i++)
		if (!strcmp(v->prev[i].key, key))
			return v->prev[i].have;
	return -1;
}

static void rate(char *out, size_t cap, double bytes_per_s)
{
	snprintf(out, cap, "%.1f Mbit/s", bytes_per_s * 8 / 1e6);
}

/* One screen from the replies to status and trees. */
static void draw(struct view *v, json_t *st, json_t *tr, bool tty)
{
	json_t *dp = json_object_get(st, "dataplane"), *cache = json_object_get(st, "cache"), *t;
	double now = now_s(), dt = v->t ? now - v->t : 0;
	long long wan = I(st, "wan_bytes"), txb = I(dp, "tx_bytes"), rxp = I(dp, "rx_pkts");
	long long txc = I(dp, "tx_chunks");
	char wr[32] = "-", lr[32] = "-", b[64];
	size_t i;

	if (dt > 0) {
		rate(wr, sizeof(wr), (wan - v->wan) / dt);
		rate(lr, sizeof(lr), (txb - v->tx_bytes) / dt);
	}
	if (tty)
		printf("\x1b[H\x1b[J");
	printf("pfs-relay %s  up %.0f s  relay %s  priority %lld  dataplane %s\n",
	       S(st, "address"), json_real_value(json_object_get(st, "uptime_s")),
	       json_is_true(json_object_get(st, "relay")) ? "yes" : "no", I(st, "priority"),
	       json_is_true(json_object_get(dp, "alive")) ? "up" : "DOWN");
	printf("WAN in %s   LAN out %s   dataplane rx %.0f pkt/s, tx %.0f chunks/s\n", wr, lr,
	       dt > 0 ? (rxp - v->rx_pkts) / dt : 0.0, dt > 0 ? (txc - v->tx_chunks) / dt : 0.0);
	printf("cache %.1f of %.1f MB, %lld files (%lld complete), %lld hits\n\n",
	       I(cache, "used_bytes") / 1e6, I(cache, "bytes") / 1e6, I(cache, "files"),
	       I(cache, "complete"), I(cache, "hits"));
	printf("%-12s %-28s %-8s %5s %5s  %-25s %10s %8s\n", "MODEL", "FILE", "STATE", "DEPTH",
	       "KIDS", "PROGRESS", "RATE", "ETA");
	int n = 0;
	json_array_foreach(json_object_get(tr, "trees"), i, t) {
		long long have = I(t, "have"), total = I(t, "total"), was = prev_have(v, S(t, "key"));
		double chunk = total > 0 ? (double)I(t, "size") / total : 0, r = 0;
		char rs[32] = "-", eta[32] = "-";
		if (dt > 0 && was >= 0 && chunk > 0) {
			r = (have - was) * chunk / dt;
			rate(rs, sizeof(rs), r);
		}
		if (json_is_true(json_object_get(t, "complete")))
			snprintf(eta, sizeof(eta), "done");
		else if (r > 0)
			snprintf(eta, sizeof(eta), "%.0f s", ceil((total - have) * chunk / r));
		pfsctl_bar(b, have, total);
		printf("%-12s %-28s %-8s %5lld %2lld/%-2lld  %-25s %10s %8s\n", S(t, "model"),
		       S(t, "file"), S(t, "state"), I(t, "depth"), I(t, "children"),
		       I(t, "max_children"), b, rs, eta);
		if (n < TREES_MAX) {
			snprintf(v->prev[n].key, sizeof(v->prev[n].key), "%s", S(t, "key"));
			v->prev[n++].have = have;
		}
	}
	v->nprev = n;
	if (!n)
		printf("(no hierarchy yet)\n");
	printf("\nlast events:\n");
	for (int e = 0; e < v->nev; e++)
		printf("  %s\n", v->events[e]);
	if (!v->nev)
		printf("  (none since watch started)\n");
	if (!tty)
		printf("\n");
	fflush(stdout);
	v->t = now;
	v->wan = wan;
	v->tx_bytes = txb;
	v->rx_pkts = rxp;
	v->tx_chunks = txc;
}

int pfsctl_watch(const char *sock, double interval_s, long count)
{
	static struct view v;
	static char buf[1 << 16];
	size_t len = 0;
	bool tty = isatty(STDOUT_FILENO);
	char err[512];
	int fd, efd, rc = 0;

	catch_stop();
	if ((efd = subscribe(sock)) < 0)
		return 3;
	if ((fd = pfsctl_connect(sock)) < 0) {
		fprintf(stderr, "pfsctl: cannot reach pfs-control at %s: %s\n", sock,
			strerror(errno));
		close(efd);
		return 3;
	}
	for (long k = 0; !stop && (!count || k < count); k++) {
		json_t *qs = json_pack("{s:s}", "cmd", "status"), *qt = json_pack("{s:s}", "cmd",
										       "trees");
		json_t *st = pfsctl_call(fd, qs, err, sizeof(err));
		json_t *tr = st ? pfsctl_call(fd, qt, err, sizeof(err)) : NULL;
		json_decref(qs);
		json_decref(qt);
		if (!st || !tr) {
			fprintf(stderr, "pfsctl: watch: %s\n", err);
			json_decref(st);
			rc = 3;
			break;
		}
		draw(&v, st, tr, tty);
		json_decref(st);
		json_decref(tr);
		if (count && k + 1 == count)
			break;
		/* Until the next refresh, take the events as they come. */
		double until = now_s() + interval_s;
		while (!stop && now_s() < until) {
			struct pollfd p = { .fd = efd, .events = POLLIN };
			int ms = (int)((until - now_s()) * 1000) + 1;
			if (poll(&p, 1, ms) <= 0)
				continue;
			ssize_t n = read(efd, buf + len, sizeof(buf) - 1 - len);
			if (n <= 0) {
				fprintf(stderr, "pfsctl: watch: pfs-control ended the event stream\n");
				stop = 1;
				rc = 3;
				break;
			}
			len += (size_t)n;
			lines(buf, &len, keep_event, &v);
			if (len == sizeof(buf) - 1)
				len = 0;
		}
	}
	close(fd);
	close(efd);
	return rc;
}

/* --- prefetch --wait ---------------------------------------------------- */

int pfsctl_follow(const char *sock, const char *model, const char *file)
{
	bool tty = isatty(STDOUT_FILENO);
	double last_print = 0;
	char err[512], b[64];
	int fd, rc = 3;

	catch_stop();
	if ((fd = pfsctl_connect(sock)) < 0) {
		fprintf(stderr, "pfsctl: cannot reach pfs-control at %s: %s\n", sock,
			strerror(errno));
		return 3;
	}
	while (!stop) {
		json_t *q = json_pack("{s:s}", "cmd", "trees"), *r = pfsctl_call(fd, q, err,
										  sizeof(err));
		json_t *t, *found = NULL;
		size_t i;

		json_decref(q);
		if (!r) {
			fprintf(stderr, "pfsctl: prefetch: %s\n", err);
			break;
		}
		json_array_foreach(json_object_get(r, "trees"), i, t)
			if (!strcmp(S(t, "model"), model) && !strcmp(S(t, "file"), file))
				found = t;
		if (!found) {
			fprintf(stderr, "pfsctl: prefetch: %s %s is no longer there (disabled?)\n",
				model, file);
			json_decref(r);
			rc = 1;
			break;
		}
		pfsctl_bar(b, I(found, "have"), I(found, "total"));
		bool done = json_is_true(json_object_get(found, "complete"));
		bool failed = json_is_true(json_object_get(found, "failed"));
		if (tty || done || failed || now_s() - last_print >= 2) {
			printf(tty ? "\r%s %s  %s  %s" : "%s %s  %s  %s\n", model, file, b,
			       done ? "done" : failed ? "FAILED" : S(found, "state"));
			fflush(stdout);
			last_print = now_s();
		}
		json_decref(r);
		if (done || failed) {
			if (tty)
				printf("\n");
			rc = failed;
			break;
		}
		poll(NULL, 0, 250);
	}
	close(fd);
	return rc;
}
