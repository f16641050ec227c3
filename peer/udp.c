/* udp.c - the port-4051 socket: bind to one interface, broadcast, TTL guard,
 * datagrams in and out in batches (recvmmsg, sendmmsg; runs to one child as
 * one message each, UDP GSO: gso.h).
 *
 * Every datagram leaves with IP TTL 255 and only datagrams that arrive with
 * TTL 255 are accepted: a router decrements the TTL, so this admits the local
 * link only, as VRRP does (docs/protocol.md 2).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer.h"
#include "pfs_bcast.h"
#include "pfs_driver.h"
#include "pfs_log.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103         /* linux/udp.h, Linux 4.18 */
#endif
#ifndef UDP_GRO
#define UDP_GRO 104             /* linux/udp.h, Linux 5.0 */
#endif

_Static_assert(PEER_TX_BATCH <= GSO_BATCH_MAX, "a send batch is planned whole");
_Static_assert(PEER_RX_BUF >= PFS_DGRAM_MAX + 64 && PEER_RX_BUF >= GSO_MAX_BYTES,
	       "a receive buffer holds any datagram, and any run the kernel coalesces");

/* The interface's IPv4 address and the broadcast address claims go to:
 * --broadcast, else what the interface reports, unless that is unusable
 * (none, 0.0.0.0 or our own address): then the subnet's, said once. */
static int iface_addrs(struct peer *p)
{
	struct ifaddrs *ifa, *i;
	int rc = -ENOENT;

	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (i = ifa; i; i = i->ifa_next) {
		uint32_t ip, mask, reported = 0;
		bool derived;

		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
		    strcmp(i->ifa_name, p->a.iface) != 0)
			continue;
		p->ip = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
		ip = ntohl(p->ip.s_addr);
		mask = i->ifa_netmask ? ntohl(((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr)
				      : 0xffffff00u;
		if ((i->ifa_flags & IFF_BROADCAST) && i->ifa_broadaddr)
			reported = ntohl(((struct sockaddr_in *)i->ifa_broadaddr)->sin_addr.s_addr);
		p->bcast.s_addr = htonl(pfs_broadcast_for(ip, mask, reported, &derived));
		if (p->a.broadcast)
			inet_pton(AF_INET, p->a.broadcast, &p->bcast);
		else if (derived)
			p->bcast_derived = true;
		p->bcast_reported = reported;
		rc = 0;
		break;
	}
	freeifaddrs(ifa);
	return rc;
}

/* The largest datagram a segmented message may carry (the interface's MTU
 * less the IPv4 and UDP headers), or 0 when this kernel cannot segment:
 * asked once with the socket option, which kernels without UDP GSO refuse.
 * (They would ignore the per-message option and send the whole run as one
 * fragmented datagram, so it is never tried on them.) */
static uint32_t gso_max_seg(struct peer *p, int fd)
{
	struct ifreq ifr = { 0 };
	int off = 0;

	if (setsockopt(fd, SOL_UDP, UDP_SEGMENT, &off, sizeof(off)) < 0)
		return 0;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", p->a.iface);
	if (ioctl(fd, SIOCGIFMTU, &ifr) < 0 || ifr.ifr_mtu <= 28)
		return 0;
	return (uint32_t)ifr.ifr_mtu - 28;
}

int peer_udp_open(struct peer *p)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(p->a.port),
				   .sin_addr.s_addr = htonl(INADDR_ANY) };
	int one = 1, ttl = PFS_TTL, buf = 4 << 20;
	int rc, fd;

	rc = iface_addrs(p);
	if (rc < 0) {
		pfs_log(PFS_LOG_ERR, "interface %s: no IPv4 address (%s)", p->a.iface,
			strerror(-rc));
		return rc;
	}
	inet_ntop(AF_INET, &p->ip, p->ip_str, sizeof(p->ip_str));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, p->a.iface, (socklen_t)strlen(p->a.iface)) < 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)) < 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &one, sizeof(one)) < 0)
		goto err;
	/* Bigger buffers absorb a window of chunks per child; best effort. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		goto err;
	p->udp = fd;
	if (!p->a.no_udp_offload) {
		p->tx.max_seg = gso_max_seg(p, fd);
		/* Runs from one sender may come coalesced, with their segment
		 * size (peer_udp_recv_all cuts them); where the NIC's driver
		 * coalesces (GRO), one message per run instead of per datagram.
		 * A kernel without it delivers datagrams one by one, as before. */
		(void)setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
	}
	return 0;
err:
	rc = -errno;
	pfs_log(PFS_LOG_ERR, "UDP port %u on %s: %s", p->a.port, p->a.iface, strerror(-rc));
	close(fd);
	return rc;
}

static void queue_to(struct peer *p, const struct pfs_action *act, unsigned slot,
		     size_t len)
{
	struct peer_tx_batch *tx = &p->tx;
	struct sockaddr_in *to = &tx->to[tx->n];

	*to = (struct sockaddr_in){ .sin_family = AF_INET };
	if (act->bcast) {
		to->sin_addr = p->bcast;
		to->sin_port = htons(p->a.port);
	} else {
		to->sin_addr.s_addr = htonl(act->dst.ip);
		to->sin_port = htons(act->dst.port);
	}
	tx->iov[tx->n] = (struct iovec){ tx->buf[slot], len };
	tx->msg[tx->n].msg_hdr = (struct msghdr){ .msg_name = to, .msg_namelen = sizeof(*to),
						  .msg_iov = &tx->iov[tx->n], .msg_iovlen = 1 };
	tx->dg[tx->n] = (struct gso_dgram){ .ip = ntohl(to->sin_addr.s_addr),
					    .port = ntohs(to->sin_port), .bcast = act->bcast,
					    .len = (uint32_t)len };
	tx->n++;
}

/* Send msgs[n] of one datagram each. */
static void send_each(struct peer *p, struct mmsghdr *msgs, unsigned n)
{
	unsigned i = 0;

	while (i < n) {
		int rc = sendmmsg(p->udp, msgs + i, n - i, 0);

		if (rc < 0) {
			if (errno == EINTR)
				continue;
			/* UDP: a full buffer loses this datagram, repair
			 * recovers it; the rest of the batch is still tried. */
			p->tx_errors++;
			i++;
			continue;
		}
		p->tx_calls++;
		p->tx_datagrams += (unsigned)rc;
		i += (unsigned)rc;
	}
}

/* The plan's messages: each run to one child, one message asking the
 * kernel to cut it into its datagrams. */
static unsigned build_plan(struct peer_tx_batch *tx)
{
	unsigned nm = gso_plan(tx->dg, tx->n, tx->max_seg, tx->order, tx->plan);

	for (unsigned m = 0; m < nm; m++) {
		const struct gso_msg *g = &tx->plan[m];
		struct msghdr *h = &tx->out[m].msg_hdr;
		struct cmsghdr *c;

		for (unsigned k = g->first; k < g->first + g->count; k++)
			tx->oiov[k] = tx->iov[tx->order[k]];
		*h = (struct msghdr){ .msg_name = &tx->to[tx->order[g->first]],
				      .msg_namelen = sizeof(struct sockaddr_in),
				      .msg_iov = &tx->oiov[g->first], .msg_iovlen = g->count };
		if (!g->seg)
			continue;
		h->msg_control = tx->ctl[m].buf;
		h->msg_controllen = sizeof(tx->ctl[m].buf);
		c = CMSG_FIRSTHDR(h);
		c->cmsg_level = SOL_UDP;
		c->cmsg_type = UDP_SEGMENT;
		c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
		memcpy(CMSG_DATA(c), &g->seg, sizeof(uint16_t));
	}
	return nm;
}

/* Errors that say this kernel or path will not segment a message, as
 * opposed to the datagrams being lost (a full buffer). */
static bool gso_refused(int err)
{
	return err == EINVAL || err == EIO || err == EMSGSIZE || err == ENOPROTOOPT ||
	       err == EOPNOTSUPP;
}

/* Send the batch as planned; if the kernel refuses to segment, say so once,
 * stop asking, and send what is left one datagram a message. */
static void send_planned(struct peer *p)
{
	struct peer_tx_batch *tx = &p->tx;
	unsigned nm = build_plan(tx), m = 0;

	while (m < nm) {
		int rc = sendmmsg(p->udp, tx->out + m, nm - m, 0);

		if (rc < 0) {
			if (errno == EINTR)
				continue;
			if (tx->plan[m].seg && gso_refused(errno)) {
				unsigned left = 0;

				pfs_log(PFS_LOG_WARNING, "UDP GSO refused on %s (%s): datagrams go "
					"one by one from now on", p->a.iface, strerror(errno));
				tx->max_seg = 0;
				for (unsigned k = tx->plan[m].first; k < tx->n; k++)
					tx->out[left++] = tx->msg[tx->order[k]];
				send_each(p, tx->out, left);
				return;
			}
			p->tx_errors += tx->plan[m].count;      /* lost; repair recovers them */
			m++;
			continue;
		}
		p->tx_calls++;
		for (unsigned k = m; k < m + (unsigned)rc; k++) {
			p->tx_datagrams += tx->plan[k].count;
			p->tx_segmented += tx->plan[k].seg != 0;
		}
		m += (unsigned)rc;
	}
}

void peer_udp_flush(struct peer *p)
{
	struct peer_tx_batch *tx = &p->tx;

	if (tx->n > 1 && tx->max_seg)
		send_planned(p);
	else
		send_each(p, tx->msg, tx->n);
	tx->n = 0;
	tx->chunk_slot = -1;
}

/* The next free slot, the batch flushed first if it is full. */
static unsigned next_slot(struct peer *p)
{
	if (p->tx.n == PEER_TX_BATCH)
		peer_udp_flush(p);
	return p->tx.n;
}

void peer_udp_send(struct peer *p, const struct pfs_action *act, const uint8_t *msg, size_t len)
{
	unsigned slot;

	if (len > PFS_DGRAM_MAX) {
		p->tx_errors++;
		return;
	}
	slot = next_slot(p);
	memcpy(p->tx.buf[slot], msg, len);
	queue_to(p, act, slot, len);
}

bool peer_udp_chunk_queued(struct peer *p, const struct pfs_action *act)
{
	struct peer_tx_batch *tx = &p->tx;

	if (tx->chunk_slot < 0 || tx->n == PEER_TX_BATCH || tx->chunk_hidx != act->hidx ||
	    tx->chunk_index != act->index || tx->chunk_len != act->len)
		return false;
	queue_to(p, act, (unsigned)tx->chunk_slot, tx->iov[tx->chunk_slot].iov_len);
	return true;
}

void peer_udp_send_chunk(struct peer *p, const struct pfs_action *act, const uint8_t *payload)
{
	unsigned slot = next_slot(p);
	int len = pfs_chunk_datagram(act, ntohl(p->ip.s_addr), payload, p->tx.buf[slot],
				     PFS_DGRAM_MAX);

	if (len < 0) {
		p->tx_errors++;
		return;
	}
	queue_to(p, act, slot, (size_t)len);
	p->tx.chunk_slot = (int)slot;
	p->tx.chunk_hidx = act->hidx;
	p->tx.chunk_index = act->index;
	p->tx.chunk_len = (uint32_t)act->len;
}

/* TTL of a received message (-1 if the kernel did not say), and the size
 * of the datagrams it holds if the kernel coalesced several (else 0). A run
 * is coalesced only from datagrams with the same IP header but for length
 * and id, so one TTL speaks for all of them. */
static int rx_cmsgs(struct msghdr *mh, uint32_t *seg)
{
	int ttl = -1;

	*seg = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		int v;

		if (c->cmsg_len < CMSG_LEN(sizeof(v)))
			continue;
		memcpy(&v, CMSG_DATA(c), sizeof(v));
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL)
			ttl = v;
		else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && v > 0)
			*seg = (uint32_t)v;
	}
	return ttl;
}

/* One received message to the engine: each datagram it holds in turn. */
static unsigned deliver(struct peer *p, const struct sockaddr_in *from, uint8_t *buf,
			size_t len, uint32_t seg)
{
	struct pfs_addr src = { ntohl(from->sin_addr.s_addr), ntohs(from->sin_port) };
	unsigned n = 0;

	if (!seg || seg > len)
		seg = (uint32_t)len;
	for (size_t off = 0; off < len || n == 0; off += seg, n++) {
		pfs_engine_recv(p->e, (pfs_time_t)peer_now(), &src, buf + off,
				len - off < seg ? len - off : seg);
		peer_drain(p);
	}
	p->rx_coalesced += n > 1;
	return n;
}

void peer_udp_recv_all(struct peer *p)
{
	struct peer_rx_batch *rx = &p->rx;

	/* Bounded so a flood cannot starve timers and the upstream fetch:
	 * 256 datagrams a turn, however they came. */
	for (int got = 0; got < 256;) {
		int n;

		for (int i = 0; i < PEER_BATCH; i++) {
			rx->iov[i] = (struct iovec){ rx->buf[i], sizeof(rx->buf[i]) };
			rx->msg[i].msg_hdr = (struct msghdr){
				.msg_name = &rx->from[i], .msg_namelen = sizeof(rx->from[i]),
				.msg_iov = &rx->iov[i], .msg_iovlen = 1,
				.msg_control = rx->ctl[i].buf, .msg_controllen = sizeof(rx->ctl[i].buf) };
		}
		n = recvmmsg(p->udp, rx->msg, PEER_BATCH, 0, NULL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				p->rx_errors++;
			return;
		}
		p->rx_calls++;
		for (int i = 0; i < n; i++) {
			struct msghdr *mh = &rx->msg[i].msg_hdr;
			uint32_t seg;
			unsigned k;

			if (rx_cmsgs(mh, &seg) != PFS_TTL) {
				p->rx_ttl_drops += seg ? (rx->msg[i].msg_len + seg - 1) / seg : 1;
				continue;
			}
			k = deliver(p, &rx->from[i], rx->buf[i], rx->msg[i].msg_len, seg);
			p->rx_datagrams += k;
			got += (int)k;
		}
		if (n < PEER_BATCH)     /* the socket is empty: no EAGAIN call */
			return;
	}
}
