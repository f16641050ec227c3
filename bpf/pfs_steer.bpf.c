/* pfs_steer.bpf.c - XDP: steer PFS traffic into the dataplane's AF_XDP
 * socket and pass everything else to the kernel, so SSH, the load server,
 * the upstream fetches and management keep working on the same port
 * (docs/appliance.md). The map name xsks_map is what DPDK's net_af_xdp PMD
 * fills when given this object with xdp_prog=.
 *
 * Steered: exactly what the dataplane handles (dataplane/parse.c), IPv4 UDP
 * to the PFS port behind at most two VLAN tags (802.1Q, 802.1ad), not a
 * fragment. Everything else goes to the kernel, which answers it (a TCP
 * reset, an ICMP port unreachable) instead of the dataplane dropping it
 * unseen: TCP, IPv6, three tags or more, fragments (it does not reassemble, and
 * steering only the first would leave the kernel a datagram it can never
 * complete). Malformed headers are counted and passed (the kernel drops
 * what is really broken). A queue with no AF_XDP socket bound falls back to
 * the kernel (XDP_PASS), so a stopped dataplane never black-holes the host.
 * tests/test_bpf_steer.c holds every verdict to the dataplane parser's.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "pfs_steer_shared.h"
#include "pfs_wire.h"


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

/* An IPv4 UDP datagram's header after the Ethernet header (and its tags):
 * 1 and *udp, -1 when a header is cut short or inconsistent, 0 when it is
 * not one the dataplane takes. */
static __always_inline int parse_ipv4_udp(void *data, void *end, __u16 proto,
					  struct udphdr **udp, __u8 *ttl)
{
	struct iphdr *ip = data;

	if (proto != bpf_htons(ETH_P_IP))
		return 0;               /* IPv6, ARP, a third VLAN tag */
	if ((void *)(ip + 1) > end)
		return -1;
	if (ip->version != 4 || ip->ihl < 5)
		return -1;
	if ((void *)ip + ip->ihl * 4 > end)
		return -1;
	/* The dataplane's length rules (parse.c), in its order: a datagram it
	 * would call malformed is counted malformed here and left to the kernel. */
	__u16 tot = bpf_ntohs(ip->tot_len);
	if ((void *)ip + tot > end || tot < ip->ihl * 4 + sizeof(struct udphdr))
		return -1;
	if (ip->frag_off & bpf_htons(0x3fff))   /* MF or an offset */
		return 0;
	if (ip->protocol != IPPROTO_UDP)
		return 0;               /* TCP and the rest: the kernel's */
	*udp = (void *)ip + ip->ihl * 4;
	if ((void *)(*udp + 1) > end)
		return -1;
	*ttl = ip->ttl;
	return 1;
}

SEC("xdp")
int pfs_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct pfs_steer_config *cfg;
	struct pfs_wire_hdr *ph;
	struct udphdr *udp = NULL;
	__u32 zero = 0;
	__u16 port;
	__u8 ttl = 0;
	int rc;

	cfg = bpf_map_lookup_elem(&pfs_steer_cfg, &zero);
	if (!cfg || cfg->disabled)
		return count(PFS_STEER_PASSED, XDP_PASS);
	port = cfg->port ? cfg->port : PFS_PORT;

	if ((void *)(eth + 1) > end)
		return count(PFS_STEER_MALFORMED, XDP_PASS);
	/* Up to two VLAN tags, as the dataplane reads them (vlan.h). */
	void *l3 = eth + 1;
	__u16 proto = eth->h_proto;
	for (int i = 0; i < 2; i++) {
		struct vlan_tag { __be16 tci, proto; } *tag = l3;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(tag + 1) > end)
			return count(PFS_STEER_MALFORMED, XDP_PASS);
		proto = tag->proto;
		l3 = tag + 1;
	}
	rc = parse_ipv4_udp(l3, end, proto, &udp, &ttl);
	if (rc < 0)
		return count(PFS_STEER_MALFORMED, XDP_PASS);
	if (rc == 0 || bpf_ntohs(udp->dest) != port)
		return count(PFS_STEER_PASSED, XDP_PASS);
	__u16 ulen = bpf_ntohs(udp->len);
	if (ulen < sizeof(struct udphdr) + PFS_HDR_LEN ||
	    (void *)udp + ulen > l3 + bpf_ntohs(((struct iphdr *)l3)->tot_len))
		return count(PFS_STEER_MALFORMED, XDP_PASS);
	/* Junk the dataplane would drop anyway never costs it a ring slot:
	 * off-link datagrams (docs/protocol.md 2) and, on a site with a key,
	 * control messages without a tag (3.4). */
	ph = (void *)(udp + 1);
	if (ttl != PFS_TTL)
		return count(PFS_STEER_TTL_DROP, XDP_DROP);
	if (cfg->require_auth && (void *)(ph + 1) <= end &&
	    ph->type != PFS_MSG_DATA && !(ph->flags & PFS_HF_AUTH))
		return count(PFS_STEER_UNAUTH_DROP, XDP_DROP);
	count(PFS_STEER_STEERED, 0);
	return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
