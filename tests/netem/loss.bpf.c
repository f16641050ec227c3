/* loss.bpf.c - random packet loss for the site tests and benchmarks: a tc
 * (clsact) classifier that drops each packet with probability ppm / 10^6.
 * This kernel's tc has no netem and its gact random drop does not load
 * (ARCHITECTURE.md 5), so loss is emulated here. Test tooling only.
 *
 * The rate lives in a one-slot array pinned by name (tc pins it under
 * /sys/fs/bpf/tc/globals/pfs_loss_ppm), so a test sets and changes it with
 * bpftool while traffic flows; it starts at 0 (no loss). Slot 1 counts drops.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfs_loss_ppm SEC(".maps");

SEC("tc")
int pfs_loss(struct __sk_buff *skb)
{
	__u32 rate_key = 0, drops_key = 1;
	__u32 *ppm = bpf_map_lookup_elem(&pfs_loss_ppm, &rate_key);
	__u32 *drops;

	(void)skb;
	if (!ppm || bpf_get_prandom_u32() % 1000000 >= *ppm)
		return TC_ACT_OK;
	drops = bpf_map_lookup_elem(&pfs_loss_ppm, &drops_key);
	if (drops)
		__sync_fetch_and_add(drops, 1);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
