/* udp.c - the port-4051 socket: bind to one interface, broadcast, TTL guard.
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
		fprintf(stderr, "pfs-peer: interface %s: no IPv4 address (%s)\n", p->a.iface,
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
	fprintf(stderr, "pfs-peer: UDP port %u on %s: %s\n", p->a.port, p->a.iface, strerror(errno));
	close(fd);
	return rc;
}

int peer_udp_send(struct peer *p, const struct pfs_action *act, const uint8_t *msg, size_t len)
{
	struct sockaddr_in to = { .sin_family = AF_INET };

	if (act->bcast) {
		to.sin_addr = p->bcast;
		to.sin_port = htons(p->a.port);
	} else {
		to.sin_addr.s_addr = htonl(act->dst.ip);
		to.sin_port = htons(act->dst.port);
	}
	if (sendto(p->udp, msg, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
		/* UDP: a full buffer loses this datagram, repair recovers it. */
		p->tx_errors++;
		return -errno;
	}
	return 0;
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
	/* Bounded so a flood cannot starve timers and the upstream fetch. */
	for (int n = 0; n < 256; n++) {
		struct sockaddr_in from;
		union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
		struct iovec iov = { p->rxbuf, sizeof(p->rxbuf) };
		struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from),
				     .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
		ssize_t len = recvmsg(p->udp, &mh, 0);

		if (len < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				p->rx_errors++;
			return;
		}
		if (rx_ttl(&mh) != PFS_TTL) {
			p->rx_ttl_drops++;
			continue;
		}
		struct pfs_addr src = { ntohl(from.sin_addr.s_addr), ntohs(from.sin_port) };
		pfs_engine_recv(p->e, (pfs_time_t)peer_now(), &src, p->rxbuf, (size_t)len);
		peer_drain(p);
	}
}
