/* test_bpf_steer.c - the XDP steering program on crafted frames.
 *
 * Runs the real object with bpf_prog_test_run_opts (no interface, no attach)
 * and checks each frame's verdict and which counter moved. The test has no
 * AF_XDP socket in xsks_map, so a steered frame takes the program's fallback,
 * XDP_PASS: that is the behaviour when the dataplane is down, and the
 * "steered" counter shows the redirect was attempted. Needs root (CAP_BPF).
 *
 * Every frame also goes through the dataplane's own parser (parse.c): the
 * filter steers exactly what the dataplane takes (issue 15: it steered TCP,
 * IPv6 and VLAN-tagged frames that the dataplane then dropped unseen, where
 * the kernel would have answered them; the dataplane now takes up to two
 * VLAN tags, and the filter steers exactly those).
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <string.h>

#include "parse.h"
#include "pfs_steer.skel.h"
#include "pfs_wire.h"
#include "steer.h"

static struct pfs_steer *skel;
static struct pfs_steer_maps maps;

static void setup(void)
{
	skel = pfs_steer__open();
	cr_assert_not_null(skel, "open the BPF object");
	/* Tests must not pin anything into the host's bpffs. */
	bpf_map__set_pin_path(skel->maps.pfs_steer_cfg, NULL);
	bpf_map__set_pin_path(skel->maps.pfs_steer_stats, NULL);
	cr_assert_eq(pfs_steer__load(skel), 0, "load (needs root)");
	maps.cfg_fd = bpf_map__fd(skel->maps.pfs_steer_cfg);
	maps.stats_fd = bpf_map__fd(skel->maps.pfs_steer_stats);
}

static void teardown(void)
{
	pfs_steer__destroy(skel);
}

TestSuite(bpf_steer, .init = setup, .fini = teardown);

/* ---- frame builder ---------------------------------------------------- */

struct frame {
	uint8_t b[256];
	size_t len;
	size_t hdr_end;         /* end of the last header the program reads */
};

static void put(struct frame *f, const void *p, size_t n)
{
	memcpy(f->b + f->len, p, n);
	f->len += n;
}

static void eth(struct frame *f, uint16_t proto, int vlans)
{
	struct ethhdr e = { .h_dest = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
			    .h_source = { 2, 0, 0, 0, 0, 1 } };
	f->len = 0;
	if (!vlans) {
		e.h_proto = htons(proto);
		put(f, &e, sizeof(e));
		return;
	}
	e.h_proto = htons(vlans == 2 ? ETH_P_8021AD : ETH_P_8021Q);
	put(f, &e, sizeof(e));
	if (vlans == 2) {
		uint16_t tag[2] = { htons(100), htons(ETH_P_8021Q) };
		put(f, tag, sizeof(tag));
	}
	uint16_t tag[2] = { htons(200), htons(proto) };
	put(f, tag, sizeof(tag));
}

static void ipv4(struct frame *f, uint8_t proto, int opt_words, uint16_t frag)
{
	struct iphdr ip = { .version = 4, .ihl = (unsigned)(5 + opt_words), .ttl = 255,
			    .protocol = proto, .frag_off = htons(frag),
			    .saddr = htonl(0x0a58000a), .daddr = htonl(0x0a5800ff) };
	uint8_t opts[40];
	put(f, &ip, sizeof(ip));
	memset(opts, 1, sizeof(opts));          /* NOP options */
	put(f, opts, (size_t)opt_words * 4);
}

static void ipv6(struct frame *f, uint8_t first_nh, const uint8_t *ext_types, int next_ext,
		 uint8_t final_nh)
{
	struct ipv6hdr ip = { .version = 6, .nexthdr = next_ext ? first_nh : final_nh,
			      .hop_limit = 255 };
	put(f, &ip, sizeof(ip));
	for (int i = 0; i < next_ext; i++) {
		uint8_t ext[8] = { i + 1 < next_ext ? ext_types[i + 1] : final_nh, 0 };
		put(f, ext, sizeof(ext));
	}
}

static void udp(struct frame *f, uint16_t dport)
{
	struct udphdr u = { .source = htons(PFS_PORT), .dest = htons(dport), .len = htons(28) };
	put(f, &u, sizeof(u));
	f->hdr_end = f->len;
	static const uint8_t payload[20] = { 'P', 'F', 1, PFS_MSG_DATA };
	put(f, payload, sizeof(payload));
}

static void tcp(struct frame *f, uint16_t dport)
{
	struct tcphdr t = { .source = htons(40000), .dest = htons(dport), .doff = 5, .syn = 1 };
	put(f, &t, sizeof(t));
	f->hdr_end = f->len;
}

/* ---- running ---------------------------------------------------------- */

static void stats(uint64_t out[PFS_STEER_STAT_MAX])
{
	cr_assert_eq(pfs_steer_stats_read(&maps, out), 0);
}

/* The port the filter steers (the configuration test moves it), and
 * whether the dataplane's view applies (not while the filter is disabled). */
static uint16_t steer_port = PFS_PORT;
static bool compare_dataplane = true;

/* IPv4 total length as the frame has it (the builders leave it for last). */
static void fix_ipv4_length(struct frame *f)
{
	size_t off = ETH_HLEN;
	uint16_t proto;

	memcpy(&proto, f->b + 12, 2);
	while ((proto == htons(ETH_P_8021Q) || proto == htons(ETH_P_8021AD)) && off + 4 <= f->len) {
		memcpy(&proto, f->b + off + 2, 2);
		off += 4;
	}
	if (proto == htons(ETH_P_IP) && off + sizeof(struct iphdr) <= f->len) {
		uint16_t tot = htons((uint16_t)(f->len - off));
		memcpy(f->b + off + 2, &tot, 2);
	}
}

/* The dataplane takes a frame (to count or use it) exactly when the
 * filter hands it over: steered, or dropped by the filter for a rule the
 * dataplane applies too (TTL, a missing tag). What the filter passes, the
 * dataplane would not take (not PFS, or malformed). */
static void expect_same_as_dataplane(const uint8_t *b, size_t len, enum pfs_steer_stat want,
				     const char *what)
{
	struct dp_rx_frame f;
	enum dp_rx_verdict v = dp_rx_parse(b, (uint32_t)len, steer_port, false, false, &f);
	bool takes = v != DP_RX_NOT_PFS && v != DP_RX_MALFORMED;
	bool handed = want == PFS_STEER_STEERED || want == PFS_STEER_TTL_DROP ||
		      want == PFS_STEER_UNAUTH_DROP;

	if (compare_dataplane)
		cr_assert_eq(takes, handed, "%s (%zu bytes): the filter %s it, the dataplane's "
			     "parser says %d", what, len, handed ? "hands over" : "passes", v);
}

/* Run one frame; assert the verdict and that exactly `want` moved by one. */
static void expect(const struct frame *f, size_t len, enum pfs_steer_stat want, const char *what)
{
	uint64_t before[PFS_STEER_STAT_MAX], after[PFS_STEER_STAT_MAX];
	uint8_t out[256];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f->b, .data_size_in = (__u32)len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);

	stats(before);
	cr_assert_eq(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.pfs_steer), &opts), 0,
		     "%s: test run", what);
	stats(after);
	cr_assert_eq(opts.retval, want == PFS_STEER_TTL_DROP || want == PFS_STEER_UNAUTH_DROP ?
		     XDP_DROP : XDP_PASS, "%s: verdict %u", what, opts.retval);
	for (int s = 0; s < PFS_STEER_STAT_MAX; s++)
		cr_assert_eq(after[s] - before[s], s == (int)want ? 1u : 0u,
			     "%s (%zu bytes): counter %s moved by %llu", what, len,
			     pfs_steer_stat_name(s), (unsigned long long)(after[s] - before[s]));
	expect_same_as_dataplane(f->b, len, want, what);
}

static void expect_frame(struct frame *f, enum pfs_steer_stat want, const char *what)
{
	fix_ipv4_length(f);
	expect(f, f->len, want, what);
}

/* Every cut inside the headers is malformed (XDP test runs need >= 14 bytes). */
static void expect_truncations_malformed(const struct frame *f, const char *what)
{
	for (size_t n = ETH_HLEN; n < f->hdr_end; n++)
		expect(f, n, PFS_STEER_MALFORMED, what);
}

Test(bpf_steer, ipv4_udp_and_tcp)
{
	struct frame f;

	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_UDP, 0, 0); udp(&f, PFS_PORT);
	expect_frame(&f, PFS_STEER_STEERED, "IPv4 UDP 4051");
	expect_truncations_malformed(&f, "IPv4 UDP cut");
	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_UDP, 0, 0); udp(&f, 69);
	expect_frame(&f, PFS_STEER_PASSED, "IPv4 UDP 69 (TFTP)");
	/* TCP is not PFS: the kernel answers it (a reset), not the dataplane. */
	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_TCP, 0, 0); tcp(&f, PFS_PORT);
	expect_frame(&f, PFS_STEER_PASSED, "IPv4 TCP 4051");
	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_TCP, 0, 0); tcp(&f, 22);
	expect_frame(&f, PFS_STEER_PASSED, "IPv4 TCP 22 (SSH)");
	static const uint8_t echo[8] = { 8 };
	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_ICMP, 0, 0); put(&f, echo, sizeof(echo));
	expect_frame(&f, PFS_STEER_PASSED, "ICMP");
}

Test(bpf_steer, ipv4_options)
{
	struct frame f;

	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_UDP, 10, 0); udp(&f, PFS_PORT);
	expect_frame(&f, PFS_STEER_STEERED, "IPv4 with 40 bytes of options");
	expect_truncations_malformed(&f, "IPv4 options cut");
	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_UDP, 3, 0); udp(&f, 53);
	expect_frame(&f, PFS_STEER_PASSED, "IPv4 options, UDP 53");
}

Test(bpf_steer, ipv4_fragments_pass)
{
	struct frame f;

	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_UDP, 0, 185); udp(&f, PFS_PORT);
	expect_frame(&f, PFS_STEER_PASSED, "non-first fragment");
	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_UDP, 0, 0x2000); udp(&f, PFS_PORT);
	expect_frame(&f, PFS_STEER_PASSED, "first fragment (MF)");
	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_UDP, 0, 0x4000); udp(&f, PFS_PORT);
	expect_frame(&f, PFS_STEER_STEERED, "DF is not a fragment");
}

Test(bpf_steer, ipv4_bad_headers)
{
	struct frame f;

	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_UDP, 0, 0); udp(&f, PFS_PORT);
	f.b[ETH_HLEN] = 0x44;                   /* IHL 4 */
	expect_frame(&f, PFS_STEER_MALFORMED, "IHL below 5");
	f.b[ETH_HLEN] = 0x65;                   /* version 6 in an IPv4 frame */
	expect_frame(&f, PFS_STEER_MALFORMED, "wrong IP version");
	f.b[ETH_HLEN] = 0x4f;                   /* IHL 15: options past the end */
	expect(&f, ETH_HLEN + 40, PFS_STEER_MALFORMED, "IHL past the frame");
}

/* The dataplane speaks IPv4: IPv6 to the port is the kernel's to answer. */
Test(bpf_steer, ipv6_goes_to_the_kernel)
{
	struct frame f;
	const uint8_t two[] = { IPPROTO_HOPOPTS, IPPROTO_DSTOPTS };
	const uint8_t frag[] = { IPPROTO_FRAGMENT };

	eth(&f, ETH_P_IPV6, 0); ipv6(&f, 0, NULL, 0, IPPROTO_UDP); udp(&f, PFS_PORT);
	expect_frame(&f, PFS_STEER_PASSED, "IPv6 UDP 4051");
	eth(&f, ETH_P_IPV6, 0); ipv6(&f, IPPROTO_HOPOPTS, two, 2, IPPROTO_UDP); udp(&f, PFS_PORT);
	expect_frame(&f, PFS_STEER_PASSED, "IPv6 hop-by-hop + destination options");
	eth(&f, ETH_P_IPV6, 0); ipv6(&f, IPPROTO_FRAGMENT, frag, 1, IPPROTO_UDP); udp(&f, PFS_PORT);
	expect_frame(&f, PFS_STEER_PASSED, "IPv6 fragment");
	eth(&f, ETH_P_IPV6, 0); ipv6(&f, 0, NULL, 0, IPPROTO_TCP); tcp(&f, 443);
	expect_frame(&f, PFS_STEER_PASSED, "IPv6 TCP 443");
}

/* Behind one tag (802.1Q) or two (QinQ), PFS goes to the dataplane, which
 * answers with the same tags; the rest behind tags is the kernel's, and so
 * is anything behind a third tag (the dataplane reads two). */
Test(bpf_steer, vlan_tags)
{
	struct frame f;

	eth(&f, ETH_P_IP, 1); ipv4(&f, IPPROTO_UDP, 0, 0); udp(&f, PFS_PORT);
	expect_frame(&f, PFS_STEER_STEERED, "802.1Q IPv4 UDP 4051");
	expect_truncations_malformed(&f, "802.1Q IPv4 UDP cut");
	eth(&f, ETH_P_IP, 2); ipv4(&f, IPPROTO_UDP, 0, 0); udp(&f, PFS_PORT);
	expect_frame(&f, PFS_STEER_STEERED, "802.1ad + 802.1Q IPv4 UDP 4051");
	expect_truncations_malformed(&f, "QinQ IPv4 UDP cut");
	f.b[ETH_HLEN + 8 + 8] = 64;             /* the IPv4 TTL, behind two tags */
	expect_frame(&f, PFS_STEER_TTL_DROP, "QinQ, TTL 64");
	/* Two 802.1Q tags (no 802.1ad outer) are QinQ too. */
	eth(&f, ETH_P_IP, 2); ipv4(&f, IPPROTO_UDP, 0, 0); udp(&f, PFS_PORT);
	f.b[12] = 0x81; f.b[13] = 0x00;
	expect_frame(&f, PFS_STEER_STEERED, "802.1Q + 802.1Q IPv4 UDP 4051");
	eth(&f, ETH_P_IP, 1); ipv4(&f, IPPROTO_UDP, 0, 0); udp(&f, 69);
	expect_frame(&f, PFS_STEER_PASSED, "802.1Q IPv4 UDP 69");
	eth(&f, ETH_P_IP, 1); ipv4(&f, IPPROTO_TCP, 0, 0); tcp(&f, PFS_PORT);
	expect_frame(&f, PFS_STEER_PASSED, "802.1Q IPv4 TCP 4051");
	eth(&f, ETH_P_IPV6, 2); ipv6(&f, 0, NULL, 0, IPPROTO_UDP); udp(&f, PFS_PORT);
	expect_frame(&f, PFS_STEER_PASSED, "802.1ad + 802.1Q IPv6");
	static const uint8_t arp[8] = { 0, 1, 8, 0, 6, 4, 0, 1 };
	eth(&f, ETH_P_ARP, 1); put(&f, arp, sizeof(arp));
	expect_frame(&f, PFS_STEER_PASSED, "802.1Q ARP");

	/* A third tag: neither reads past the second. */
	eth(&f, ETH_P_8021Q, 2);
	uint16_t third[2] = { htons(300), htons(ETH_P_IP) };
	put(&f, third, sizeof(third));
	ipv4(&f, IPPROTO_UDP, 0, 0); udp(&f, PFS_PORT);
	expect_frame(&f, PFS_STEER_PASSED, "three tags");
}

Test(bpf_steer, configuration)
{
	struct frame f, g;
	struct pfs_steer_config c = { 0 };

	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_UDP, 0, 0); udp(&f, PFS_PORT);
	eth(&g, ETH_P_IP, 0); ipv4(&g, IPPROTO_UDP, 0, 0); udp(&g, 5000);
	c.disabled = 1;
	cr_assert_eq(pfs_steer_config_set(&maps, &c), 0);
	compare_dataplane = false;      /* the operator sent everything to the kernel */
	expect_frame(&f, PFS_STEER_PASSED, "disabled");
	compare_dataplane = true;
	c.disabled = 0;
	c.port = 5000;
	cr_assert_eq(pfs_steer_config_set(&maps, &c), 0);
	steer_port = 5000;
	expect_frame(&f, PFS_STEER_PASSED, "port moved away from 4051");
	expect_frame(&g, PFS_STEER_STEERED, "port 5000");
	steer_port = PFS_PORT;
	c.port = 0;
	cr_assert_eq(pfs_steer_config_set(&maps, &c), 0);
	expect_frame(&f, PFS_STEER_STEERED, "zero record means 4051");
}

/* docs/protocol.md 2 and 3.4: UDP to the port without TTL 255 is dropped
 * here, and on a site with a key so is a control message without AUTH;
 * DATA (covered by signed digests) and tagged messages go on. */
Test(bpf_steer, ttl_guard_and_site_key)
{
	struct frame f;
	struct pfs_steer_config c = { 0 };

	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_UDP, 0, 0); udp(&f, PFS_PORT);
	f.b[ETH_HLEN + 8] = 64;
	expect_frame(&f, PFS_STEER_TTL_DROP, "IPv4 UDP 4051, TTL 64");
	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_TCP, 0, 0); tcp(&f, PFS_PORT);
	f.b[ETH_HLEN + 8] = 64;
	expect_frame(&f, PFS_STEER_PASSED, "TCP is not the PFS protocol: the kernel's");
	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_UDP, 0, 0); udp(&f, 69);
	f.b[ETH_HLEN + 8] = 64;
	expect_frame(&f, PFS_STEER_PASSED, "UDP 69 with TTL 64 is the kernel's");

	eth(&f, ETH_P_IP, 0); ipv4(&f, IPPROTO_UDP, 0, 0); udp(&f, PFS_PORT);
	f.b[f.hdr_end + 3] = PFS_MSG_CLAIM;
	expect_frame(&f, PFS_STEER_STEERED, "CLAIM without a tag, no site key");
	c.require_auth = 1;
	cr_assert_eq(pfs_steer_config_set(&maps, &c), 0);
	expect_frame(&f, PFS_STEER_UNAUTH_DROP, "CLAIM without a tag on a keyed site");
	f.b[f.hdr_end + 4] = PFS_HF_AUTH;
	expect_frame(&f, PFS_STEER_STEERED, "CLAIM with AUTH");
	f.b[f.hdr_end + 3] = PFS_MSG_DATA;
	f.b[f.hdr_end + 4] = 0;
	expect_frame(&f, PFS_STEER_STEERED, "DATA needs no tag");
	expect(&f, f.hdr_end + 5, PFS_STEER_MALFORMED, "the IP length says more than the frame has");
	f.b[ETH_HLEN + 2] = 0;
	f.b[ETH_HLEN + 3] = 20 + 8 + 5;       /* and a UDP length past the IP length */
	expect(&f, f.hdr_end + 5, PFS_STEER_MALFORMED, "a UDP length past the IP length");
}
