/* udp.c - the port-4051 socket: bind to one interface, broadcast, TTL guard,
 * datagrams in and out in batches (recvmmsg, sendmmsg).
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
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer.h"
#include "pfs_bcast.h"
#include "pfs_driver.h"
#include "pfs_log.h"

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
	tx->n++;
}

void peer_udp_flush(struct peer *p)
{
	struct peer_tx_batch *tx = &p->tx;
	unsigned i = 0;

	while (i < tx->n) {
		int rc = sendmmsg(p->udp, tx->msg + i, tx->n - i, 0);

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
	tx->n = 0;
	tx->chunk_slot = -1;
}

/* The next free slot, the batch flushed first if it is full. */
static unsigned next_slot(struct peer *p)
{
	if (p->tx.n == PEER_BATCH)
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

	if (tx->chunk_slot < 0 || tx->n == PEER_BATCH || tx->chunk_hidx != act->hidx ||
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

/* TTL of a received datagram, or -1 if the kernel did not say. */
static int rx_ttl(struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) {
			int ttl;
			memcpy(&ttl, CMSG_DATA(c), sizeof(ttl));
			return ttl;
		}
	return -1;
}

void peer_udp_recv_all(struct peer *p)
{
	struct peer_rx_batch *rx = &p->rx;

	/* Bounded so a flood cannot starve timers and the upstream fetch. */
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
		p->rx_datagrams += (unsigned)n;
		for (int i = 0; i < n; i++) {
			struct msghdr *mh = &rx->msg[i].msg_hdr;

			if (rx_ttl(mh) != PFS_TTL) {
				p->rx_ttl_drops++;
				continue;
			}
			struct pfs_addr src = { ntohl(rx->from[i].sin_addr.s_addr),
						ntohs(rx->from[i].sin_port) };
			pfs_engine_recv(p->e, (pfs_time_t)peer_now(), &src, rx->buf[i],
					rx->msg[i].msg_len);
			peer_drain(p);
		}
		got += n;
		if (n < PEER_BATCH)     /* the socket is empty: no EAGAIN call */
			return;
	}
}
