/* frag_drop.bpf.c - a WAN that drops IP fragments, for the site tests: a tc
 * (clsact) classifier that drops every IPv4 fragment (more-fragments set or
 * an offset), as a firewall that does not reassemble does. A datagram
 * larger than the link's MTU then never arrives whole. Test tooling only
 * (this kernel's tc cannot load gact, ARCHITECTURE.md 5).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define IP_FRAG_BITS 0x3fff     /* MF and the fragment offset */

SEC("tc")
int pfs_frag_drop(struct __sk_buff *skb)
{
	__u16 frag;

	if (skb->protocol != bpf_htons(ETH_P_IP) ||
	    bpf_skb_load_bytes(skb, ETH_HLEN + 6, &frag, sizeof(frag)) < 0)
		return TC_ACT_OK;
	return bpf_ntohs(frag) & IP_FRAG_BITS ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
