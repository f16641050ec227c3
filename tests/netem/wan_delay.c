/* wan_delay.c - wan-delay: a WAN's latency for the site harness, which has
 * no netem (issue 14 section 3).
 *
 *   wan-delay --a IFACE --b IFACE --delay-ms D [--limit-kb K]
 *
 * A two-port Ethernet bridge with a timed queue: every frame read on one
 * port is sent out of the other D milliseconds later, in order (each
 * direction is one FIFO, release time = arrival + D, so a round trip through
 * it costs 2 D). It runs in a namespace of its own between HQ's and the
 * site's ends of the WAN link (tests/site/pfs_site.py, rtt_ms), below their
 * tbf shapers, so the link keeps its rate and gains the delay.
 *
 * Frames come and go through AF_PACKET sockets with virtio-net headers
 * (PACKET_VNET_HDR), so GSO super-frames from the veth peers pass whole and
 * are segmented by the kernel on the way out. A direction holds at most
 * --limit-kb of frames (default 16384); beyond that a frame is dropped and
 * counted, as a router's full queue would. On SIGTERM or SIGINT it prints
 * its counters as one JSON line and exits 0; bad arguments exit 2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define FRAME_MAX (65536 + sizeof(struct virtio_net_hdr))

/* One direction: a byte ring of records (release time, length, bytes),
 * oldest at head. A record never wraps: when the end of the ring is too
 * short for it, the writer marks the rest unused and starts again at 0. */
struct record {
	uint64_t release_ns;
	uint32_t len;                   /* UINT32_MAX: unused up to the end */
	uint32_t pad;
};

struct lane {
	int in, out;                    /* sockets: read from in, send on out */
	uint8_t *ring;
	size_t cap, head, tail, count;  /* bytes; records queued */
	size_t used, max_used;
	uint64_t frames, bytes, dropped, send_errors;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_port(const char *ifname)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int one = 1, fd;

	sll.sll_ifindex = (int)if_nametoindex(ifname);
	if (!sll.sll_ifindex) {
		fprintf(stderr, "wan-delay: %s: no such interface\n", ifname);
		return -1;
	}
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0 || setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		fprintf(stderr, "wan-delay: %s: %s\n", ifname, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static size_t rec_size(uint32_t len)
{
	return (sizeof(struct record) + len + 7) & ~(size_t)7;
}

/* Where a record of need bytes goes, or NULL when the lane is full. */
static uint8_t *lane_room(struct lane *l, size_t need)
{
	if (l->count && l->tail == l->head)
		return NULL;                    /* full to the byte */
	if (l->tail >= l->head) {
		if (l->cap - l->tail >= need)
			return l->ring + l->tail;
		if (l->head < need)
			return NULL;
		if (l->cap - l->tail >= sizeof(struct record))
			((struct record *)(l->ring + l->tail))->len = UINT32_MAX;
		l->used += l->cap - l->tail;
		l->tail = 0;
		return l->ring;
	}
	return l->head - l->tail >= need ? l->ring + l->tail : NULL;
}

/* Read every frame waiting on the lane's input and queue it. */
static void lane_read(struct lane *l, uint64_t delay_ns)
{
	static uint8_t frame[FRAME_MAX];

	for (;;) {
		ssize_t n = recv(l->in, frame, sizeof(frame), MSG_TRUNC);
		if (n < 0)
			return;                 /* EAGAIN: drained */
		size_t need = rec_size((uint32_t)n);
		uint8_t *at = (size_t)n <= sizeof(frame) ? lane_room(l, need) : NULL;
		if (!at) {
			l->dropped++;
			continue;
		}
		struct record *r = (struct record *)at;
		r->release_ns = now_ns() + delay_ns;
		r->len = (uint32_t)n;
		memcpy(r + 1, frame, (size_t)n);
		l->tail += need;
		l->used += need;
		l->count++;
		if (l->used > l->max_used)
			l->max_used = l->used;
	}
}

/* Send every frame that is due; returns the next release time or 0. */
static uint64_t lane_send(struct lane *l, uint64_t now)
{
	while (l->count) {
		struct record *r = (struct record *)(l->ring + l->head);
		if (l->cap - l->head < sizeof(struct record) || r->len == UINT32_MAX) {
			l->used -= l->cap - l->head;    /* the end the writer skipped */
			l->head = 0;
			continue;
		}
		if (r->release_ns > now)
			return r->release_ns;
		if (send(l->out, r + 1, r->len, 0) < 0) {
			l->send_errors++;
		} else {
			l->frames++;
			l->bytes += r->len;
		}
		l->head += rec_size(r->len);
		l->used -= rec_size(r->len);
		if (!--l->count)
			l->head = l->tail = l->used = 0;
	}
	return 0;
}

static void arm(int tfd, uint64_t at)
{
	struct itimerspec it = { .it_value = { (time_t)(at / 1000000000ull),
					       (long)(at % 1000000000ull) } };

	if (!at)
		it.it_value = (struct timespec){ 0, 0 };        /* disarm */
	timerfd_settime(tfd, TFD_TIMER_ABSTIME, &it, NULL);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: wan-delay --a IFACE --b IFACE --delay-ms D [--limit-kb K]\n"
		   "  every frame between the two interfaces is delayed D ms (0..10000) each way;\n"
		   "  at most K KiB queued per direction (default 16384), beyond that dropped\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "a", 1, 0, 'a' }, { "b", 1, 0, 'b' }, { "delay-ms", 1, 0, 'd' },
		{ "limit-kb", 1, 0, 'l' }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 },
	};
	const char *ifa = NULL, *ifb = NULL;
	double delay_ms = -1;
	unsigned long limit_kb = 16384;
	struct lane lanes[2] = { { .in = -1 }, { .in = -1 } };
	int c, sfd = -1, tfd = -1, ep = -1, rc = 2;
	char *end;
	sigset_t ss;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'a': ifa = optarg; break;
		case 'b': ifb = optarg; break;
		case 'd':
			delay_ms = strtod(optarg, &end);
			if (*end || end == optarg || !(delay_ms >= 0 && delay_ms <= 10000)) {
				fprintf(stderr, "wan-delay: --delay-ms: '%s' is not 0..10000\n", optarg);
				return 2;
			}
			break;
		case 'l':
			limit_kb = strtoul(optarg, &end, 10);
			if (*end || end == optarg || limit_kb < 128 || limit_kb > 1048576) {
				fprintf(stderr, "wan-delay: --limit-kb: '%s' is not 128..1048576\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!ifa || !ifb || delay_ms < 0 || optind != argc) {
		usage(stderr);
		return 2;
	}
	uint64_t delay_ns = (uint64_t)(delay_ms * 1e6);
	int fa = open_port(ifa), fb = fa >= 0 ? open_port(ifb) : -1;
	if (fa < 0 || fb < 0)
		goto out;
	lanes[0] = (struct lane){ .in = fa, .out = fb };
	lanes[1] = (struct lane){ .in = fb, .out = fa };
	for (int i = 0; i < 2; i++) {
		lanes[i].cap = limit_kb * 1024;
		if (!(lanes[i].ring = malloc(lanes[i].cap))) {
			fprintf(stderr, "wan-delay: out of memory\n");
			goto out;
		}
	}
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	sfd = signalfd(-1, &ss, SFD_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || tfd < 0 || ep < 0) {
		perror("wan-delay: signalfd/timerfd/epoll");
		goto out;
	}
	int fds[4] = { fa, fb, tfd, sfd };
	for (int i = 0; i < 4; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
			perror("wan-delay: epoll_ctl");
			goto out;
		}
	}
	fprintf(stderr, "wan-delay: %s <-> %s, %.1f ms each way\n", ifa, ifb, delay_ms);
	for (bool stop = false; !stop;) {
		struct epoll_event evs[4];
		int n = epoll_wait(ep, evs, 4, -1);
		uint64_t expirations;

		if (n < 0 && errno != EINTR) {
			perror("wan-delay: epoll_wait");
			goto out;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == sfd)
				stop = true;
			else if (evs[i].data.fd == tfd)
				(void)!read(tfd, &expirations, sizeof(expirations));
			else
				lane_read(&lanes[evs[i].data.fd == fa ? 0 : 1], delay_ns);
		}
		uint64_t t = now_ns(), next = 0;
		for (int i = 0; i < 2; i++) {
			uint64_t due = lane_send(&lanes[i], t);
			if (due && (!next || due < next))
				next = due;
		}
		arm(tfd, next);
	}
	printf("{\"a_to_b\": {\"frames\": %llu, \"bytes\": %llu, \"dropped\": %llu, "
	       "\"send_errors\": %llu, \"max_queued\": %llu}, "
	       "\"b_to_a\": {\"frames\": %llu, \"bytes\": %llu, \"dropped\": %llu, "
	       "\"send_errors\": %llu, \"max_queued\": %llu}}\n",
	       (unsigned long long)lanes[0].frames, (unsigned long long)lanes[0].bytes,
	       (unsigned long long)lanes[0].dropped, (unsigned long long)lanes[0].send_errors,
	       (unsigned long long)lanes[0].max_used,
	       (unsigned long long)lanes[1].frames, (unsigned long long)lanes[1].bytes,
	       (unsigned long long)lanes[1].dropped, (unsigned long long)lanes[1].send_errors,
	       (unsigned long long)lanes[1].max_used);
	rc = 0;
out:
	for (int i = 0; i < 2; i++)
		free(lanes[i].ring);
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	if (sfd >= 0)
		close(sfd);
	if (tfd >= 0)
		close(tfd);
	if (ep >= 0)
		close(ep);
	return rc;
}
