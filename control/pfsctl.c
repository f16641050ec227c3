/* pfsctl.c - the operator's client for pfs-control's control socket.
 *
 *   pfsctl [--socket PATH] [--json] COMMAND [ARGS]
 *
 * One JSON request, one JSON reply (docs/appliance.md 5); `watch` and
 * `events` stay connected (pfsctl_live.c). Human tables and
 * progress bars by default; --json prints the reply as it came, for scripts.
 * The commands, their arguments and their help come from the daemon's own
 * table (ctl_commands.h): `pfsctl help` needs no daemon.
 * Exit: 0 ok, 1 the daemon answered with an error (its code in the
 * message), 2 usage, 3 no daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_commands.h"
#include "pfsctl.h"

#define S pfsctl_s
#define I pfsctl_i
#define DEFAULT_SOCKET "/run/pfs-relay/control.sock"

/* One command's line of usage: name, arguments, what pfsctl adds; with
 * mark, a '*' before those that change state. */
static void usage_line(FILE *f, const struct ctl_command *k, bool mark)
{
	char head[64];
	const char *extra = !strcmp(k->name, "prefetch") ? " [--wait]" : "";
	const char *lead = mark && !k->read_only ? "* " : "  ";

	snprintf(head, sizeof(head), "%s%s%s%s", k->name, k->args[0] ? " " : "", k->args, extra);
	if (strlen(head) > 20)
		fprintf(f, "%s%s\n  %-20s %s\n", lead, head, "", k->help);
	else
		fprintf(f, "%s%-20s %s\n", lead, head, k->help);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: pfsctl [--socket PATH] [--json] COMMAND\n"
		   "commands:\n");
	for (int i = 0; i < CTL_CMD_COUNT; i++)
		usage_line(f, &ctl_commands[i], false);
	fprintf(f, "  watch [--interval S] [--count N]\n"
		   "                       a live view, refreshed every S seconds (1); plain\n"
		   "                       snapshots when not on a terminal\n"
		   "prefetch --wait shows the file's progress until it is whole (exit 0) or\n"
		   "failed (exit 1); events prints one JSON object a line with --json.\n");
}

/* pfsctl help: the table this pfsctl was built with, and the error codes;
 * no daemon needed. */
static int help(bool as_json)
{
	if (as_json) {
		json_t *r = ctl_help_json();
		char *s = json_dumps(r, JSON_COMPACT);

		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(r);
		return 0;
	}
	printf("commands (* changes state: not on the read-only socket, control.ro_socket):\n");
	for (int i = 0; i < CTL_CMD_COUNT; i++)
		usage_line(stdout, &ctl_commands[i], true);
	printf("error codes:\n");
	for (int code = 1; ctl_error_name(code); code++)
		printf("  %d %-16s %s\n", code, ctl_error_name(code), ctl_error_meaning(code));
	return 0;
}

int pfsctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

json_t *pfsctl_call(int fd, json_t *req, char *err, size_t errlen)
{
	char *s = json_dumps(req, JSON_COMPACT), buf[1 << 20];
	size_t len = 0;
	json_error_t jerr;
	json_t *r;

	if (!s || dprintf(fd, "%s\n", s) < 0) {
		snprintf(err, errlen, "cannot send the request: %s", errno == EPIPE ?
			 "pfs-control closed the connection (too many clients?)" : strerror(errno));
		free(s);
		return NULL;
	}
	free(s);
	while (len < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0) {
			snprintf(err, errlen, "no reply: %s", n == 0 ? "connection closed" :
				 errno == EAGAIN ? "timed out" : strerror(errno));
			return NULL;
		}
		len += (size_t)n;
		if (memchr(buf, '\n', len))
			break;
	}
	r = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, &jerr);
	if (!r)
		snprintf(err, errlen, "malformed reply: %s", jerr.text);
	return r;
}

const char *pfsctl_s(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "-";
}

long long pfsctl_i(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

void pfsctl_bar(char *out, long long have, long long total)
{
	if (total <= 0 && have > 0) {   /* size not final yet: the root is fetching */
		sprintf(out, "%lld chunks so far", have);
		return;
	}
	int w = 20, full = total > 0 ? (int)(have * w / total) : 0;
	int pct = total > 0 ? (int)(have * 100 / total) : 0;
	char *p = out;

	for (int i = 0; i < w; i++)
		p += sprintf(p, "%s", i < full ? "#" : ".");
	sprintf(p, " %3d%%", pct);
}

static void print_trees(json_t *r)
{
	size_t i;
	json_t *t;

	printf("%-16s %-12s %-30s %-9s %-8s %5s %7s  %s\n", "KEY", "MODEL", "FILE", "STATE",
	       "SOURCE", "KIDS", "SUBTREE", "PROGRESS");
	json_array_foreach(json_object_get(r, "trees"), i, t) {
		char b[64];
		pfsctl_bar(b, I(t, "have"), I(t, "total"));
		printf("%-16s %-12s %-30s %-9s %-8s %2lld/%-2lld %7lld  %s%s\n", S(t, "key"),
		       S(t, "model"), S(t, "file"), S(t, "state"), S(t, "source"), I(t, "children"),
		       I(t, "max_children"), I(t, "subtree"), b,
		       json_is_true(json_object_get(t, "complete")) ? " done" : "");
	}
}

static void print_tree(json_t *r)
{
	json_t *t = json_object_get(r, "tree"), *kids = json_object_get(t, "child_slots"), *k;
	char b[64];
	size_t i, n = json_array_size(kids);

	pfsctl_bar(b, I(t, "have"), I(t, "total"));
	printf("%s %s  [%s]  %s, %lld bytes, source %s\n", S(t, "model"), S(t, "file"),
	       S(t, "key"), S(t, "state"), I(t, "size"), S(t, "source"));
	printf("this appliance  %s  subtree %lld nodes\n", b, I(t, "subtree"));
	json_array_foreach(kids, i, k)
		printf("%s %-15s slot %lld\n", i + 1 == n ? "`--" : "|--", S(k, "node"), I(k, "slot"));
	if (!n)
		printf("`-- (no children)\n");
}

static void print_files(json_t *r)
{
	size_t i;
	json_t *f;

	printf("%-12s %-28s %-9s %12s %6s %6s  %s\n", "MODEL", "FILE", "STATE", "BYTES", "HITS",
	       "PINNED", "SHA256");
	json_array_foreach(json_object_get(r, "files"), i, f)
		printf("%-12s %-28s %-9s %12lld %6lld %6s  %.16s\n", S(f, "model"), S(f, "file"),
		       S(f, "state"), I(f, "size"), I(f, "hits"),
		       json_is_true(json_object_get(f, "pinned")) ? "yes" : "no", S(f, "sha256"));
}

static void print_peers(json_t *r)
{
	size_t i;
	json_t *p;

	printf("%-15s %-12s %-28s %4s\n", "NODE", "MODEL", "FILE", "SLOT");
	json_array_foreach(json_object_get(r, "peers"), i, p)
		printf("%-15s %-12s %-28s %4lld\n", S(p, "node"), S(p, "model"), S(p, "file"),
		       I(p, "slot"));
}

static void print_clients(json_t *r)
{
	size_t i;
	json_t *x;

	printf("%-5s %-21s %-28s %12s %12s %7s\n", "PROTO", "CLIENT", "FILE", "DONE", "SIZE",
	       "AGE");
	json_array_foreach(json_object_get(r, "clients"), i, x)
		printf("%-5s %-21s %-28s %12lld %12lld %6.1fs\n", S(x, "proto"), S(x, "client"),
		       S(x, "file"), I(x, "done"), I(x, "size"),
		       json_real_value(json_object_get(x, "age_s")));
}

/* Any object as "key: value" lines, nested objects indented. */
static void print_kv(json_t *o, int indent)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		if (!strcmp(k, "ok"))
			continue;
		printf("%*s%-20s", indent, "", k);
		if (json_is_object(v)) {
			printf("\n");
			print_kv(v, indent + 2);
			continue;
		}
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		printf(" %s\n", s ? s : "?");
		free(s);
	}
}

/* The request for argv, or NULL: the table says how many arguments a
 * command takes and which members of the request they become. */
static json_t *request(int argc, char **argv)
{
	const struct ctl_command *k = ctl_command_find(argv[0]);
	json_t *req;
	const char *p;
	int i = 1;

	if (!k)
		return NULL;
	if (!strcmp(k->name, "prefetch") && argc == 4 && !strcmp(argv[3], "--wait"))
		argc--;                 /* pfsctl's own: follow it */
	req = json_pack("{s:s}", "cmd", k->name);
	for (p = k->params; *p; p += strcspn(p, " "), p += *p == ' ', i++) {
		size_t n = strcspn(p, " ");
		bool integer = p[n - 1] == '#';
		char name[32], *end;
		long long v;

		if (i >= argc)
			goto bad;
		snprintf(name, sizeof(name), "%.*s", (int)(n - integer), p);
		if (!integer) {
			json_object_set_new(req, name, json_string(argv[i]));
			continue;
		}
		v = strtoll(argv[i], &end, 10);
		if (*end || end == argv[i])
			goto bad;
		json_object_set_new(req, name, json_integer(v));
	}
	if (i == argc)
		return req;
bad:
	json_decref(req);
	return NULL;
}

/* watch [--interval S] [--count N] */
static int watch_args(const char *sock, int argc, char **argv)
{
	double interval = 1.0;
	long count = 0;

	for (int i = 1; i < argc; i++) {
		char *end;
		if (!strcmp(argv[i], "--interval") && i + 1 < argc) {
			interval = strtod(argv[++i], &end);
			if (*end || interval < 0.1 || interval > 3600) {
				fprintf(stderr, "pfsctl: watch --interval: '%s' is not 0.1..3600 "
					"seconds\n", argv[i]);
				return 2;
			}
		} else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			count = strtol(argv[++i], &end, 10);
			if (*end || count < 1) {
				fprintf(stderr, "pfsctl: watch --count: '%s' is not a positive "
					"number\n", argv[i]);
				return 2;
			}
		} else {
			fprintf(stderr, "pfsctl: watch: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	return pfsctl_watch(sock, interval, count);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = DEFAULT_SOCKET;
	bool as_json = false;
	char err[512];
	json_t *req, *r;
	int opt, fd, rc;

	signal(SIGPIPE, SIG_IGN);       /* a closed connection is an error to report */
	while ((opt = getopt_long(argc, argv, "+s:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 's': sock = optarg; break;
		case 'j': as_json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "help") && optind + 1 == argc)
		return help(as_json);
	if (optind < argc && !strcmp(argv[optind], "events") && optind + 1 == argc)
		return pfsctl_events(sock, as_json);
	if (optind < argc && !strcmp(argv[optind], "watch"))
		return watch_args(sock, argc - optind, argv + optind);
	if (optind == argc || !(req = request(argc - optind, argv + optind))) {
		fprintf(stderr, "pfsctl: %s\n", optind == argc ? "no command" :
			"unknown command or wrong arguments");
		usage(stderr);
		return 2;
	}
	if ((fd = pfsctl_connect(sock)) < 0) {
		fprintf(stderr, "pfsctl: cannot reach pfs-control at %s: %s\n", sock,
			errno == ECONNREFUSED ? "nothing listens there (is pfs-control running?)" :
			errno == ENOENT ? "no such socket (is pfs-control running, with this "
					  "control.socket?)" : strerror(errno));
		json_decref(req);
		return 3;
	}
	r = pfsctl_call(fd, req, err, sizeof(err));
	close(fd);
	json_decref(req);
	if (!r) {
		fprintf(stderr, "pfsctl: %s: %s\n", sock, err);
		return 3;
	}
	rc = json_is_true(json_object_get(r, "ok")) ? 0 : 1;
	if (as_json) {
		char *s = json_dumps(r, JSON_COMPACT);
		printf("%s\n", s ? s : "{}");
		free(s);
	} else if (rc) {
		long long code = I(r, "code");
		fprintf(stderr, "pfsctl: error %lld (%s): %s\n", code,
			ctl_error_name((int)code) ? ctl_error_name((int)code) : "?", S(r, "error"));
	} else {
		const char *cmd = argv[optind];
		if (!strcmp(cmd, "trees"))
			print_trees(r);
		else if (!strcmp(cmd, "tree"))
			print_tree(r);
		else if (!strcmp(cmd, "files"))
			print_files(r);
		else if (!strcmp(cmd, "peers"))
			print_peers(r);
		else if (!strcmp(cmd, "clients"))
			print_clients(r);
		else if (json_object_size(r) > 1)
			print_kv(r, 0);
		else
			printf("ok\n");
	}
	json_decref(r);
	if (!rc && !strcmp(argv[optind], "prefetch") && argc - optind == 4)
		return pfsctl_follow(sock, argv[optind + 1], argv[optind + 2]);
	return rc;
}
