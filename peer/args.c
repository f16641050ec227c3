/* args.c - pfs-peer's command line: parse, range-check, name the problem. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peer.h"

void peer_usage(FILE *f)
{
	fprintf(f,
		"usage: pfs-peer --iface IFACE --model MODEL --want FILE [--want FILE ...]\n"
		"                (--tftp HOST[:PORT] | --upstream URL) --out DIR\n"
		"                [--strength N] [--max-children N]\n"
		"                [--mode cut-through|store-forward|tftp-only]\n"
		"                [--chunk-size BYTES] [--linger SECONDS] [--exit-when-done]\n"
		"                [--log-json] (--trust PUBKEY [--trust PUBKEY...] | --allow-unsigned)\n"
		"                [--state-dir DIR] [--site-key FILE [--site-key OLDFILE]]\n"
		"                [--broadcast ADDR]\n"
		"                [--connect-timeout S] [--stall-timeout S] [--low-speed B/S]\n"
		"                [--min-rate B/S] [--retries N] [--fallback-timeout S]\n"
		"                [--min-parent-rate B/S] [--ca-file PEM] [--tftp-blksize B]\n"
		"                [--no-udp-offload]\n"
		"\n"
		"  --upstream URL    the firmware server as tftp://HOST[:PORT],\n"
		"                    http://HOST[:PORT][/BASE] or https://...; over HTTP a\n"
		"                    fetch cut short resumes where it stopped (Range)\n"
		"  --ca-file PEM     HTTPS: the CA certificates the server's must chain to\n"
		"                    (default: the system's); verification is never off\n"
		"  --strength N      priority class 0..15 placed in the high bits of the\n"
		"                    election strength (devices 1, appliances 8)\n"
		"  --max-children N  child slots per file (default 2, as in the seed)\n"
		"  --linger SECONDS  with --exit-when-done: once our own files are done,\n"
		"                    how long children may go without progress before we\n"
		"                    leave them (default 10)\n"
		"  --trust PUBKEY    a firmware publisher's public key (pfs-sign keygen);\n"
		"                    files are accepted only with a manifest it signed\n"
		"  --allow-unsigned  also accept files without a signed manifest (v1)\n"
		"  --state-dir DIR   where the highest verified sequence of each file is\n"
		"                    kept against rollback, and the boot count (default: --out)\n"
		"  --broadcast ADDR  where claims are broadcast (default: the interface's\n"
		"                    broadcast address, or its subnet's if it has none)\n"
		"  --site-key FILE   authenticate control messages with the site key\n"
		"                    (pfs-sign site-key); a second one is the previous key,\n"
		"                    still accepted during a rotation\n"
		"  --connect-timeout S  no answer from the server this long: it is not\n"
		"                    reachable (default 5)\n"
		"  --stall-timeout S --low-speed B/S  a fetch averaging under B/S over S\n"
		"                    seconds is stalled and aborted (default 10 s, 1000 B/s)\n"
		"  --min-rate B/S    a fetch must finish within connect-timeout + size / B/S\n"
		"                    (default 8192)\n"
		"  --min-parent-rate B/S  a member receiving less than B/S over\n"
		"                    fallback-timeout fetches by itself, as if its tree had\n"
		"                    stalled (default 0: only no progress at all counts). For a\n"
		"                    LAN slower than the WAN: where the WAN is the slow part,\n"
		"                    leaving a tree that moves at its pace only adds copies\n"
		"  --retries N       retries of a failed fetch, with back-off (default 2)\n"
		"  --tftp-blksize B  TFTP block size asked for, 8..65464 (default 1468: one\n"
		"                    frame); one block goes per round trip, so a WAN with\n"
		"                    latency wants large ones; a fetch that gets nothing\n"
		"                    with them is tried again with 1468\n"
		"  --fallback-timeout S  a member without progress this long fetches by\n"
		"                    itself (default 30)\n"
		"  --no-udp-offload  send and receive each datagram as its own message\n"
		"                    (default: a run of chunks to or from one node moves as\n"
		"                    one, the kernel cutting or coalescing it: UDP GSO, GRO)\n"
		"\nExit: 0 every file verified, 1 a file could not be had from the server,\n"
		"2 usage, 3 cannot store under --out, 4 setup (interface, keys, state),\n"
		"5 stopped by a signal first.\n");
}

static int parse_long(const char *opt, const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "pfs-peer: %s: '%s' is not an integer in [%ld, %ld]\n",
			opt, s, lo, hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* Seconds, fractions allowed, in (0, 3600]. */
static int parse_seconds(const char *opt, const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (*s == '\0' || *end != '\0' || !(v > 0.0009) || v > 3600) {
		fprintf(stderr, "pfs-peer: %s: '%s' is not a number of seconds in (0, 3600]\n",
			opt, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int peer_args_parse(struct peer_args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "iface", required_argument, NULL, 'i' },
		{ "model", required_argument, NULL, 'm' },
		{ "want", required_argument, NULL, 'w' },
		{ "tftp", required_argument, NULL, 't' },
		{ "upstream", required_argument, NULL, 'u' },
		{ "out", required_argument, NULL, 'o' },
		{ "strength", required_argument, NULL, 's' },
		{ "max-children", required_argument, NULL, 'c' },
		{ "mode", required_argument, NULL, 'M' },
		{ "chunk-size", required_argument, NULL, 'C' },
		{ "linger", required_argument, NULL, 'l' },
		{ "exit-when-done", no_argument, NULL, 'x' },
		{ "log-json", no_argument, NULL, 'j' },
		{ "trust", required_argument, NULL, 'T' },
		{ "allow-unsigned", no_argument, NULL, 'U' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "site-key", required_argument, NULL, 'K' },
		{ "broadcast", required_argument, NULL, 'B' },
		{ "connect-timeout", required_argument, NULL, 1000 },
		{ "stall-timeout", required_argument, NULL, 1001 },
		{ "low-speed", required_argument, NULL, 1002 },
		{ "min-rate", required_argument, NULL, 1003 },
		{ "retries", required_argument, NULL, 1004 },
		{ "fallback-timeout", required_argument, NULL, 1005 },
		{ "min-parent-rate", required_argument, NULL, 1006 },
		{ "ca-file", required_argument, NULL, 1007 },
		{ "tftp-blksize", required_argument, NULL, 1008 },
		{ "no-udp-offload", no_argument, NULL, 1009 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long v;
	int c;

	memset(a, 0, sizeof(*a));
	a->priority_class = PFS_CLASS_DEVICE;
	a->max_children = 2;
	a->mode = PFS_MODE_CUT_THROUGH;
	a->chunk_size = PFS_CHUNK_DEFAULT;
	a->linger_s = 10;
	a->port = PFS_PORT;
	pfs_fetch_limits_default(&a->limits);
	a->upstream_retries = 2;
	a->fallback_s = 30;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'i': a->iface = optarg; break;
		case 'm':
			if (!pfs_model_valid(optarg, strlen(optarg))) {
				fprintf(stderr, "pfs-peer: --model: '%s' must be 1-%d characters "
					"of [A-Za-z0-9._-]\n", optarg, PFS_MODEL_MAX);
				return -EINVAL;
			}
			a->model = optarg;
			break;
		case 'w':
			if (!pfs_filepath_valid(optarg, strlen(optarg))) {
				fprintf(stderr, "pfs-peer: --want: '%s' is not a valid file path "
					"(printable, no '..', at most %d bytes)\n", optarg,
					PFS_FILEPATH_MAX);
				return -EINVAL;
			}
			if (a->nwants == PEER_MAX_WANTS) {
				fprintf(stderr, "pfs-peer: --want: at most %d files\n", PEER_MAX_WANTS);
				return -EINVAL;
			}
			for (int i = 0; i < a->nwants; i++)
				if (!strcmp(a->wants[i], optarg)) {
					fprintf(stderr, "pfs-peer: --want: '%s' given twice\n", optarg);
					return -EINVAL;
				}
			a->wants[a->nwants++] = optarg;
			break;
		case 't':
		case 'u':
			if (!pfs_fetch_server_ok(optarg) || (c == 't' && strstr(optarg, "://"))) {
				fprintf(stderr, "pfs-peer: %s: '%s' is not %s\n", c == 't' ? "--tftp" :
					"--upstream", optarg, c == 't' ? "HOST or HOST:PORT" :
					"a tftp://, http:// or https:// URL with a host");
				return -EINVAL;
			}
			a->server = optarg;
			break;
		case 'o': a->out = optarg; break;
		case 's':
			if (parse_long("--strength", optarg, 0, 15, &v) < 0)
				return -EINVAL;
			a->priority_class = (int)v;
			break;
		case 'c':
			if (parse_long("--max-children", optarg, 1, 256, &v) < 0)
				return -EINVAL;
			a->max_children = (int)v;
			break;
		case 'M':
			if (!strcmp(optarg, "cut-through"))
				a->mode = PFS_MODE_CUT_THROUGH;
			else if (!strcmp(optarg, "store-forward"))
				a->mode = PFS_MODE_STORE_FORWARD;
			else if (!strcmp(optarg, "tftp-only"))
				a->mode = PFS_MODE_TFTP_ONLY;
			else {
				fprintf(stderr, "pfs-peer: --mode: '%s' is not cut-through, "
					"store-forward or tftp-only\n", optarg);
				return -EINVAL;
			}
			break;
		case 'C':
			if (parse_long("--chunk-size", optarg, 256, 1444, &v) < 0)
				return -EINVAL;
			a->chunk_size = (uint32_t)v;
			break;
		case 'l': {
			char *end;
			a->linger_s = strtod(optarg, &end);
			if (*optarg == '\0' || *end != '\0' || a->linger_s < 0 || a->linger_s > 86400) {
				fprintf(stderr, "pfs-peer: --linger: '%s' is not a number of seconds "
					"in [0, 86400]\n", optarg);
				return -EINVAL;
			}
			break;
		}
		case 'x': a->exit_when_done = true; break;
		case 'j': a->log_json = true; break;
		case 'T':
			if (a->ntrust == PFS_TRUST_MAX_KEYS) {
				fprintf(stderr, "pfs-peer: --trust: at most %d keys\n",
					PFS_TRUST_MAX_KEYS);
				return -EINVAL;
			}
			a->trust[a->ntrust++] = optarg;
			break;
		case 'U': a->allow_unsigned = true; break;
		case 'S': a->state_dir = optarg; break;
		case 'B': {
			struct in_addr x;
			if (inet_pton(AF_INET, optarg, &x) != 1) {
				fprintf(stderr, "pfs-peer: --broadcast: '%s' is not an IPv4 address\n",
					optarg);
				return -EINVAL;
			}
			a->broadcast = optarg;
			break;
		}
		case 'K':
			if (a->nsite_keys == 2) {
				fprintf(stderr, "pfs-peer: --site-key: at most two (current and "
					"previous)\n");
				return -EINVAL;
			}
			a->site_key[a->nsite_keys++] = optarg;
			break;
		case 1000:
		case 1001:
		case 1005: {
			double s;
			if (parse_seconds(argv[optind - 1], optarg, &s) < 0)
				return -EINVAL;
			if (c == 1000)
				a->limits.connect_timeout_ms = (uint32_t)(s * 1000);
			else if (c == 1001)
				a->limits.stall_timeout_ms = (uint32_t)(s * 1000);
			else
				a->fallback_s = s;
			break;
		}
		case 1002:
			if (parse_long("--low-speed", optarg, 0, 1L << 30, &v) < 0)
				return -EINVAL;
			a->limits.low_speed = (uint32_t)v;
			break;
		case 1003:
			if (parse_long("--min-rate", optarg, 0, 1L << 30, &v) < 0)
				return -EINVAL;
			a->limits.min_rate = (uint32_t)v;
			break;
		case 1004:
			if (parse_long("--retries", optarg, 0, 10, &v) < 0)
				return -EINVAL;
			a->upstream_retries = (int)v;
			break;
		case 1008:
			if (parse_long("--tftp-blksize", optarg, PFS_TFTP_BLKSIZE_MIN,
				       PFS_TFTP_BLKSIZE_MAX, &v) < 0)
				return -EINVAL;
			a->limits.tftp_blksize = (uint32_t)v;
			break;
		case 1009:
			a->no_udp_offload = true;
			break;
		case 1006:
			if (parse_long("--min-parent-rate", optarg, 0, 1L << 30, &v) < 0)
				return -EINVAL;
			a->min_parent_rate = (uint32_t)v;
			break;
		case 1007:
			if (access(optarg, R_OK) < 0) {
				fprintf(stderr, "pfs-peer: --ca-file: cannot read '%s': %s\n", optarg,
					strerror(errno));
				return -EINVAL;
			}
			a->ca_file = optarg;
			break;
		case 'h': return 1;
		default:
			fprintf(stderr, "pfs-peer: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pfs-peer: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	const char *missing = !a->iface ? "--iface" : !a->model ? "--model" :
			      !a->nwants ? "--want" : !a->server ? "--tftp or --upstream" : !a->out ? "--out" : NULL;
	if (missing) {
		fprintf(stderr, "pfs-peer: %s is required\n", missing);
		return -EINVAL;
	}
	if (!a->ntrust && !a->allow_unsigned) {
		fprintf(stderr, "pfs-peer: no --trust key: give the firmware publisher's public "
			"key (--trust PUBKEY, made by pfs-sign keygen), or --allow-unsigned to "
			"accept firmware nobody signed\n");
		return -EINVAL;
	}
	if (!a->state_dir)
		a->state_dir = a->out;
	return 0;
}
