/* pfs_steer.bpf.c - XDP: steer PFS traffic (UDP and TCP to port 4051) into
 * the dataplane's AF_XDP socket and pass everything else to the kernel, so
 * SSH, the upstream TFTP fetch and management keep working on the same port
 * (docs/appliance.md). The map name xsks_map is what DPDK's net_af_xdp PMD
 * fills when given this object with xdp_prog=.
 *
 * Parses Ethernet, up to two VLAN tags (802.1Q, 802.1ad), IPv4 with options,
 * IPv6 with up to four extension headers. Fragments are passed whole: the
 * dataplane does not reassemble, and steering only the first fragment would
 * leave the kernel a datagram it can never complete. Malformed headers are
 * counted and passed (the kernel drops what is really broken). A queue with
 * no AF_XDP socket bound falls back to the kernel (XDP_PASS), so a stopped
 * dataplane never black-holes the host.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "pfs_steer_shared.h"
#include "pfs_wire.h"

#define MAX_VLAN        2
#define MAX_V6_EXT      4

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pfs_steer_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfs_steer_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PFS_STEER_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfs_steer_stats SEC(".maps");

static __always_inline int count(__u32 stat, int verdict)
{
	__u64 *c = bpf_map_lookup_elem(&pfs_steer_stats, &stat);

	if (c)
		*c += 1;        /* per-CPU: no atomics needed */
	return verdict;
}

/* The L4 protocol and its header, or -1 when the frame is malformed, 0 when
 * it is not UDP/TCP we may look into (fragments, other protocols). */
static __always_inline int parse_l3(void *data, void *end, __u16 proto, void **l4, __u8 *ipproto,
				    __u8 *ttl)
{
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;
		if ((void *)(ip + 1) > end)
			return -1;
		if (ip->version != 4 || ip->ihl < 5)
			return -1;
		if ((void *)ip + ip->ihl * 4 > end)
			return -1;
		if (ip->frag_off & bpf_htons(0x3fff))   /* MF or an offset */
			return 0;
		*ipproto = ip->protocol;
		*ttl = ip->ttl;
		*l4 = (void *)ip + ip->ihl * 4;
		return 1;
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;
		void *cur;
		__u8 nh;

		if ((void *)(ip6 + 1) > end)
			return -1;
		if (ip6->version != 6)
			return -1;
		nh = ip6->nexthdr;
		cur = ip6 + 1;
#pragma unroll
		for (int i = 0; i < MAX_V6_EXT; i++) {
			struct { __u8 nh, len; } *ext = cur;
			if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING &&
			    nh != IPPROTO_DSTOPTS && nh != IPPROTO_FRAGMENT)
				break;
			if ((void *)ext + 8 > end)
				return -1;
			if (nh == IPPROTO_FRAGMENT)
				return 0;
			nh = ext->nh;
			cur += (ext->len + 1) * 8;
		}
		*ipproto = nh;
		*ttl = ip6->hop_limit;
		*l4 = cur;
		return 1;
	}
	return 0;
}

SEC("xdp")
int pfs_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct pfs_steer_config *cfg;
	__u32 zero = 0;
	__u16 proto, port, dport;
	void *cur, *l4 = NULL;
	__u8 ipproto = 0, ttl = 0;
	int rc;

	cfg = bpf_map_lookup_elem(&pfs_steer_cfg, &zero);
	if (!cfg || cfg->disabled)
		return count(PFS_STEER_PASSED, XDP_PASS);
	port = cfg->port ? cfg->port : PFS_PORT;

	if ((void *)(eth + 1) > end)
		return count(PFS_STEER_MALFORMED, XDP_PASS);
	proto = eth->h_proto;
	cur = eth + 1;
#pragma unroll
	for (int i = 0; i < MAX_VLAN; i++) {
		struct vlan_hdr *vh = cur;
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > end)
			return count(PFS_STEER_MALFORMED, XDP_PASS);
		proto = vh->proto;
		cur = vh + 1;
	}

	rc = parse_l3(cur, end, proto, &l4, &ipproto, &ttl);
	if (rc < 0)
		return count(PFS_STEER_MALFORMED, XDP_PASS);
	if (rc == 0)
		return count(PFS_STEER_PASSED, XDP_PASS);
	if (ipproto == IPPROTO_UDP) {
		struct udphdr *udp = l4;
		if ((void *)(udp + 1) > end)
			return count(PFS_STEER_MALFORMED, XDP_PASS);
		dport = bpf_ntohs(udp->dest);
	} else if (ipproto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;
		if ((void *)(tcp + 1) > end)
			return count(PFS_STEER_MALFORMED, XDP_PASS);
		dport = bpf_ntohs(tcp->dest);
	} else {
		return count(PFS_STEER_PASSED, XDP_PASS);
	}
	if (dport != port)
		return count(PFS_STEER_PASSED, XDP_PASS);
	if (ipproto == IPPROTO_UDP) {
		/* Junk the dataplane would drop anyway never costs it a ring
		 * slot: off-link datagrams (docs/protocol.md 2) and, on a site
		 * with a key, control messages without a tag (3.4). */
		struct pfs_wire_hdr *ph = l4 + sizeof(struct udphdr);

		if (ttl != PFS_TTL)
			return count(PFS_STEER_TTL_DROP, XDP_DROP);
		if (cfg->require_auth && (void *)(ph + 1) <= end &&
		    ph->type != PFS_MSG_DATA && !(ph->flags & PFS_HF_AUTH))
			return count(PFS_STEER_UNAUTH_DROP, XDP_DROP);
	}
	count(PFS_STEER_STEERED, 0);
	return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
