/* pfs_steer_cli.c - pfs-steer: operate the XDP steering program.
 *
 * The appliance's dataplane normally loads the program itself (DPDK's
 * net_af_xdp PMD with xdp_prog=pfs_steer.bpf.o); its maps are pinned by name
 * under the bpffs root either way, and this tool reads and sets them. attach
 * and detach load it without DPDK, for a host that only wants the steering
 * (or for trying it out).
 */
#include <errno.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pfs_steer.skel.h"
#include "pfs_wire.h"
#include "steer.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pfs-steer [--pin-root DIR] [--json] COMMAND\n"
		"  stats            counters: steered, passed, malformed, ttl_drop,\n"
		"                   unauth_drop\n"
		"  show             the configuration\n"
		"  enable|disable   steer port traffic, or pass everything to the kernel\n"
		"  port N           steer UDP/TCP to port N (default %d)\n"
		"  auth on|off      on a site with a key: drop control frames without AUTH\n"
		"  attach IFACE [skb|native]  load, pin the maps, attach (no DPDK)\n"
		"  detach IFACE     detach and unpin\n", PFS_PORT);
}

static int cmd_attach(const char *root, const char *ifname, const char *mode)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = root);
	unsigned ifindex = if_nametoindex(ifname);
	__u32 flags = XDP_FLAGS_UPDATE_IF_NOEXIST;
	struct pfs_steer *skel;
	int rc;

	if (!ifindex) {
		fprintf(stderr, "pfs-steer: interface %s: %s\n", ifname, strerror(errno));
		return 1;
	}
	if (!mode || !strcmp(mode, "skb"))
		flags |= XDP_FLAGS_SKB_MODE;
	else if (!strcmp(mode, "native"))
		flags |= XDP_FLAGS_DRV_MODE;
	else {
		fprintf(stderr, "pfs-steer: attach mode '%s' is not skb or native\n", mode);
		return 2;
	}
	skel = pfs_steer__open_opts(&opts);
	if (!skel) {
		fprintf(stderr, "pfs-steer: open: %s\n", strerror(errno));
		return 1;
	}
	rc = pfs_steer__load(skel);
	if (rc == 0)
		rc = bpf_xdp_attach((int)ifindex, bpf_program__fd(skel->progs.pfs_steer), flags, NULL);
	if (rc < 0)
		fprintf(stderr, "pfs-steer: attach to %s: %s\n", ifname, strerror(-rc));
	pfs_steer__destroy(skel);       /* the link and the pinned maps stay */
	return rc < 0 ? 1 : 0;
}

static int cmd_detach(const char *root, const char *ifname)
{
	unsigned ifindex = if_nametoindex(ifname);
	char path[4096];
	int rc;

	if (!ifindex) {
		fprintf(stderr, "pfs-steer: interface %s: %s\n", ifname, strerror(errno));
		return 1;
	}
	rc = bpf_xdp_detach((int)ifindex, 0, NULL);
	if (rc < 0)
		fprintf(stderr, "pfs-steer: detach from %s: %s\n", ifname, strerror(-rc));
	snprintf(path, sizeof(path), "%s/%s", root, PFS_STEER_CFG_MAP);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", root, PFS_STEER_STATS_MAP);
	unlink(path);
	return rc < 0 ? 1 : 0;
}

static int with_maps(const char *root, bool json, int argc, char **argv)
{
	struct pfs_steer_maps m;
	struct pfs_steer_config c;
	uint64_t st[PFS_STEER_STAT_MAX];
	const char *cmd = argv[0];
	int rc = pfs_steer_open_pinned(root, &m);

	if (rc < 0) {
		fprintf(stderr, "pfs-steer: no steering maps pinned under %s (%s): is the "
			"program loaded?\n", root, strerror(-rc));
		return 1;
	}
	rc = pfs_steer_config_get(&m, &c);
	if (rc == 0 && !strcmp(cmd, "stats")) {
		rc = pfs_steer_stats_read(&m, st);
		for (int s = 0; rc == 0 && s < PFS_STEER_STAT_MAX; s++)
			printf(json ? "%s\"%s\":%llu" : "%s%-10s %llu\n",
			       json ? (s ? "," : "{") : "", pfs_steer_stat_name(s),
			       (unsigned long long)st[s]);
		if (rc == 0 && json)
			printf("}\n");
	} else if (rc == 0 && !strcmp(cmd, "show")) {
		printf(json ? "{\"port\":%u,\"enabled\":%s,\"require_auth\":%s}\n"
			    : "port %u\nenabled %s\nrequire_auth %s\n",
		       c.port ? c.port : PFS_PORT, c.disabled ? "false" : "true",
		       c.require_auth ? "true" : "false");
	} else if (rc == 0 && (!strcmp(cmd, "enable") || !strcmp(cmd, "disable"))) {
		c.disabled = !strcmp(cmd, "disable");
		rc = pfs_steer_config_set(&m, &c);
	} else if (rc == 0 && !strcmp(cmd, "auth")) {
		if (argc != 2 || (strcmp(argv[1], "on") && strcmp(argv[1], "off"))) {
			fprintf(stderr, "pfs-steer: auth: want 'on' or 'off'\n");
			pfs_steer_close(&m);
			return 2;
		}
		c.require_auth = !strcmp(argv[1], "on");
		rc = pfs_steer_config_set(&m, &c);
	} else if (rc == 0 && !strcmp(cmd, "port")) {
		char *end;
		long v = argc > 1 ? strtol(argv[1], &end, 10) : -1;
		if (argc != 2 || *end || v < 1 || v > 65535) {
			fprintf(stderr, "pfs-steer: port: want one port number in [1, 65535]\n");
			pfs_steer_close(&m);
			return 2;
		}
		c.port = (__u16)v;
		rc = pfs_steer_config_set(&m, &c);
	} else if (rc == 0) {
		fprintf(stderr, "pfs-steer: unknown command '%s'\n", cmd);
		usage(stderr);
		pfs_steer_close(&m);
		return 2;
	}
	if (rc < 0)
		fprintf(stderr, "pfs-steer: %s: %s\n", cmd, strerror(-rc));
	pfs_steer_close(&m);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin-root", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *root = PFS_BPFFS_ROOT;
	bool json = false;
	int c;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'p': root = optarg; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[0], "attach") && (argc == 2 || argc == 3))
		return cmd_attach(root, argv[1], argc == 3 ? argv[2] : NULL);
	if (!strcmp(argv[0], "detach") && argc == 2)
		return cmd_detach(root, argv[1]);
	if (!strcmp(argv[0], "attach") || !strcmp(argv[0], "detach")) {
		usage(stderr);
		return 2;
	}
	return with_maps(root, json, argc, argv);
}
