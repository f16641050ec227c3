/* pfs_sign.c - pfs-sign: the firmware publisher's tool (docs/security.md 4).
 *
 *   pfs-sign keygen --secret FILE --public FILE
 *   pfs-sign sign --secret FILE [--chunk-size N] [--sequence N] [--name NAME]
 *                 [--prefix DIR/] FIRMWARE...           writes FIRMWARE.pfsm
 *   pfs-sign verify --public FILE [--public FILE...] [--name NAME] [--prefix DIR/]
 *                 FIRMWARE...
 *   pfs-sign site-key [--id N] FILE
 *   pfs-sign show MANIFEST
 *
 * Files are read a chunk at a time: signing a file of any size takes memory
 * for its manifest only. Exit 0, 1 when a file fails (named with the reason),
 * 2 on a bad command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pfs_codec.h"
#include "pfs_keys.h"

enum { EXIT_BAD = 1, EXIT_USAGE = 2 };

struct opts {
	const char *secret, *pub[PFS_TRUST_MAX_KEYS];
	int npub;
	const char *name, *prefix;
	long long chunk_size, sequence, id;
	char **files;
	int nfiles;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pfs-sign keygen --secret FILE --public FILE\n"
		"       pfs-sign sign --secret FILE [--chunk-size BYTES] [--sequence N]\n"
		"                     [--name NAME | --prefix DIR/] FIRMWARE...\n"
		"       pfs-sign verify --public FILE [--public FILE...]\n"
		"                     [--name NAME | --prefix DIR/] FIRMWARE...\n"
		"       pfs-sign site-key [--id N] FILE\n"
		"       pfs-sign show MANIFEST\n"
		"\n"
		"  sign writes FIRMWARE.pfsm beside each file. The signed name is the path\n"
		"  devices ask for: --prefix then the file's base name, or --name (one file).\n"
		"  --sequence defaults to the signing time in seconds, so a later signing\n"
		"  of a name always outranks an earlier one (rollback protection).\n"
		"  --chunk-size defaults to %d (one chunk per 1500-byte datagram).\n",
		PFS_CHUNK_DEFAULT);
}

static int parse_num(const char *opt, const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || !*s || *end || v < lo || v > hi) {
		fprintf(stderr, "pfs-sign: %s: '%s' is not an integer in [%lld, %lld]\n", opt, s,
			lo, hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "secret", required_argument, NULL, 's' },
		{ "public", required_argument, NULL, 'p' },
		{ "name", required_argument, NULL, 'n' },
		{ "prefix", required_argument, NULL, 'P' },
		{ "chunk-size", required_argument, NULL, 'c' },
		{ "sequence", required_argument, NULL, 'q' },
		{ "id", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->chunk_size = PFS_CHUNK_DEFAULT;
	o->sequence = -1;
	o->id = -1;
	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': o->secret = optarg; break;
		case 'p':
			if (o->npub == PFS_TRUST_MAX_KEYS) {
				fprintf(stderr, "pfs-sign: at most %d --public keys\n",
					PFS_TRUST_MAX_KEYS);
				return -EINVAL;
			}
			o->pub[o->npub++] = optarg;
			break;
		case 'n': o->name = optarg; break;
		case 'P': o->prefix = optarg; break;
		case 'c':
			if (parse_num("--chunk-size", optarg, 1, PFS_CHUNK_MAX, &o->chunk_size) < 0)
				return -EINVAL;
			break;
		case 'q':
			if (parse_num("--sequence", optarg, 0, INT64_MAX, &o->sequence) < 0)
				return -EINVAL;
			break;
		case 'i':
			if (parse_num("--id", optarg, 1, 255, &o->id) < 0)
				return -EINVAL;
			break;
		case 'h': usage(stdout); exit(0);
		default:
			fprintf(stderr, "pfs-sign: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	o->files = argv + optind;
	o->nfiles = argc - optind;
	if (o->name && o->nfiles > 1) {
		fprintf(stderr, "pfs-sign: --name names one file; use --prefix for several\n");
		return -EINVAL;
	}
	if (o->name && o->prefix) {
		fprintf(stderr, "pfs-sign: --name and --prefix exclude each other\n");
		return -EINVAL;
	}
	return 0;
}

/* The name devices ask for: --name, or --prefix + base name. */
static int signed_name(const struct opts *o, const char *file, char *out, size_t n)
{
	const char *base = strrchr(file, '/');

	base = base ? base + 1 : file;
	if (o->name)
		snprintf(out, n, "%s", o->name);
	else if ((size_t)snprintf(out, n, "%s%s", o->prefix ? o->prefix : "", base) >= n)
		return -ENAMETOOLONG;
	if (!pfs_filepath_valid(out, strlen(out))) {
		fprintf(stderr, "pfs-sign: %s: '%s' is not a valid file path to sign "
			"(printable, no '..', at most %d bytes)\n", file, out, PFS_FILEPATH_MAX);
		return -EINVAL;
	}
	return 0;
}

/* Read a chunk at a time: per-chunk digests into the manifest (or checked
 * against it when check is set), and the whole-file SHA-256. */
static int hash_file(const char *file, uint32_t chunk_size, uint8_t *man, size_t name_len,
		     uint32_t nchunks, const struct pfs_manifest *check, uint8_t sha[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t *buf = malloc(chunk_size);
	int fd = open(file, O_RDONLY | O_CLOEXEC), rc = 0;
	uint32_t idx = 0;

	if (fd < 0 || !ctx || !buf || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rc = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	for (;;) {
		size_t got = 0;
		ssize_t r;
		while (got < chunk_size && (r = read(fd, buf + got, chunk_size - got)) > 0)
			got += (size_t)r;
		if (got == 0)
			break;
		if (idx >= nchunks) {
			rc = -EFBIG;            /* grew since we looked at its size */
			break;
		}
		EVP_DigestUpdate(ctx, buf, got);
		if (check && !pfs_manifest_chunk_ok(check, idx, buf, got)) {
			fprintf(stderr, "pfs-sign: %s: chunk %u does not match its digest\n", file, idx);
			rc = -EBADMSG;
			break;
		}
		if (!check)
			pfs_chunk_digest(buf, got, pfs_manifest_digest_at(man, name_len, idx));
		idx++;
	}
	if (!rc && idx != nchunks)
		rc = -EFBIG;
	if (!rc)
		EVP_DigestFinal_ex(ctx, sha, NULL);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int write_all(const char *path, const uint8_t *buf, size_t len)
{
	char tmp[4200];
	int fd, rc = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < len && !rc;) {
		ssize_t w = write(fd, buf + off, len - off);
		if (w <= 0)
			rc = w < 0 ? -errno : -EIO;
		else
			off += (size_t)w;
	}
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

static int sign_one(const struct opts *o, const char *file, const uint8_t seed[PFS_KEY_LEN],
		    uint64_t key_id)
{
	char name[PFS_FILEPATH_MAX + 1], out[4200];
	uint8_t sha[32], *man;
	struct stat st;
	uint64_t nchunks;
	size_t len, nlen;
	int rc;

	if (signed_name(o, file, name, sizeof(name)) < 0)
		return -EINVAL;
	if (stat(file, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "pfs-sign: %s: %s\n", file, errno ? strerror(errno) : "not a file");
		return -ENOENT;
	}
	nlen = strlen(name);
	nchunks = pfs_chunk_count((uint64_t)st.st_size, (uint32_t)o->chunk_size);
	len = pfs_manifest_len(nlen, nchunks);
	if (!len) {
		fprintf(stderr, "pfs-sign: %s: too many chunks for one manifest (%llu; raise "
			"--chunk-size)\n", file, (unsigned long long)nchunks);
		return -EFBIG;
	}
	if (!(man = calloc(1, len)))
		return -ENOMEM;
	rc = hash_file(file, (uint32_t)o->chunk_size, man, nlen, (uint32_t)nchunks, NULL, sha);
	if (rc < 0)
		fprintf(stderr, "pfs-sign: %s: %s\n", file,
			rc == -EFBIG ? "changed while it was read" : strerror(-rc));
	if (!rc)
		rc = pfs_manifest_write_head(man, len, name, (uint32_t)o->chunk_size,
					     (uint64_t)st.st_size,
					     o->sequence >= 0 ? (uint64_t)o->sequence
							      : (uint64_t)time(NULL),
					     (uint64_t)time(NULL), key_id, sha);
	if (!rc && (rc = pfs_manifest_sign(man, len, seed)) < 0)
		fprintf(stderr, "pfs-sign: %s: signing failed\n", file);
	snprintf(out, sizeof(out), "%s.pfsm", file);
	if (!rc && (rc = write_all(out, man, len)) < 0)
		fprintf(stderr, "pfs-sign: %s: %s\n", out, strerror(-rc));
	if (!rc)
		printf("%s: signed as '%s', %llu bytes in %llu chunks of %lld\n", out, name,
		       (unsigned long long)st.st_size, (unsigned long long)nchunks, o->chunk_size);
	free(man);
	return rc;
}

/* A whole manifest into memory (NULL + errno); manifests are bounded. */
static uint8_t *read_whole(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;
	uint8_t *buf = NULL;
	struct stat st;
	ssize_t r = 1;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || st.st_size > (off_t)PFS_MAN_MAX_LEN) {
		err = st.st_size > (off_t)PFS_MAN_MAX_LEN ? EFBIG : errno;
		goto fail;
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		err = ENOMEM;
		goto fail;
	}
	for (*len = 0; *len < (size_t)st.st_size && r > 0; *len += (size_t)r)
		if ((r = read(fd, buf + *len, (size_t)st.st_size - *len)) <= 0)
			r = 0;
	close(fd);
	return buf;
fail:
	close(fd);
	free(buf);
	errno = err;
	return NULL;
}

static int verify_one(const struct opts *o, const struct pfs_trust *t, const char *file)
{
	char name[PFS_FILEPATH_MAX + 1], mpath[4200];
	struct pfs_manifest m;
	uint8_t *buf, sha[32];
	size_t len = 0;
	struct stat st;
	int rc;

	if (signed_name(o, file, name, sizeof(name)) < 0)
		return -EINVAL;
	snprintf(mpath, sizeof(mpath), "%s.pfsm", file);
	if (!(buf = read_whole(mpath, &len))) {
		fprintf(stderr, "pfs-sign: %s: %s\n", mpath, strerror(errno));
		return -ENOENT;
	}
	rc = pfs_manifest_verify(t, buf, len, name, 0, &m);
	if (rc < 0) {
		fprintf(stderr, "pfs-sign: %s: %s", mpath, pfs_man_strerror(rc));
		if (rc == PFS_MAN_E_NAME)
			fprintf(stderr, " ('%.*s', not '%s')", m.name_len, m.name, name);
		if (rc == PFS_MAN_E_KEY)
			fprintf(stderr, " (key id %016llx)", (unsigned long long)m.key_id);
		fputc('\n', stderr);
		free(buf);
		return -EBADMSG;
	}
	if (stat(file, &st) < 0) {
		fprintf(stderr, "pfs-sign: %s: %s\n", file, strerror(errno));
		free(buf);
		return -ENOENT;
	}
	if ((uint64_t)st.st_size != m.size) {
		fprintf(stderr, "pfs-sign: %s: %llu bytes, the manifest says %llu\n", file,
			(unsigned long long)st.st_size, (unsigned long long)m.size);
		free(buf);
		return -EBADMSG;
	}
	rc = hash_file(file, m.chunk_size, NULL, 0, m.nchunks, &m, sha);
	if (!rc && memcmp(sha, m.sha256, 32) != 0) {
		fprintf(stderr, "pfs-sign: %s: whole-file SHA-256 differs from the manifest's\n",
			file);
		rc = -EBADMSG;
	} else if (rc < 0 && rc != -EBADMSG) {
		fprintf(stderr, "pfs-sign: %s: %s\n", file, strerror(-rc));
	}
	if (!rc)
		printf("%s: good signature (key %016llx), sequence %llu, '%.*s'\n", file,
		       (unsigned long long)m.key_id, (unsigned long long)m.sequence, m.name_len,
		       m.name);
	free(buf);
	return rc;
}

static int cmd_keygen(const struct opts *o)
{
	uint8_t seed[PFS_KEY_LEN], pub[PFS_KEY_LEN];
	char err[512];

	if (!o->secret || o->npub != 1 || o->nfiles) {
		fprintf(stderr, "pfs-sign keygen: needs --secret FILE and --public FILE\n");
		return EXIT_USAGE;
	}
	if (pfs_keypair_new(seed, pub) < 0) {
		fprintf(stderr, "pfs-sign: key generation failed (OpenSSL)\n");
		return EXIT_BAD;
	}
	if (pfs_keyfile_write(o->secret, PFS_KEYFILE_SECRET, -1, seed, 0600, err, sizeof(err)) < 0 ||
	    pfs_keyfile_write(o->pub[0], PFS_KEYFILE_PUBLIC, -1, pub, 0644, err, sizeof(err)) < 0) {
		fprintf(stderr, "pfs-sign: %s\n", err);
		return EXIT_BAD;
	}
	printf("key id %016llx: secret in %s (mode 0600), public in %s\n",
	       (unsigned long long)pfs_key_id(pub), o->secret, o->pub[0]);
	return 0;
}

static int cmd_sign(const struct opts *o)
{
	uint8_t seed[PFS_KEY_LEN], pub[PFS_KEY_LEN];
	char err[512];
	int bad = 0;

	if (!o->secret || !o->nfiles) {
		fprintf(stderr, "pfs-sign sign: needs --secret FILE and at least one FIRMWARE\n");
		return EXIT_USAGE;
	}
	if (pfs_keyfile_read_secret(o->secret, seed, err, sizeof(err)) < 0) {
		fprintf(stderr, "pfs-sign: %s\n", err);
		return EXIT_BAD;
	}
	if (pfs_keypair_public(seed, pub) < 0)
		return EXIT_BAD;
	for (int i = 0; i < o->nfiles; i++)
		bad |= sign_one(o, o->files[i], seed, pfs_key_id(pub)) < 0;
	return bad ? EXIT_BAD : 0;
}

static int cmd_verify(const struct opts *o)
{
	struct pfs_trust t = { 0 };
	char err[512];
	int bad = 0;

	if (!o->npub || !o->nfiles) {
		fprintf(stderr, "pfs-sign verify: needs --public FILE and at least one FIRMWARE\n");
		return EXIT_USAGE;
	}
	if (pfs_trust_load(&t, o->pub, o->npub, err, sizeof(err)) < 0) {
		fprintf(stderr, "pfs-sign: %s\n", err);
		return EXIT_BAD;
	}
	for (int i = 0; i < o->nfiles; i++)
		bad |= verify_one(o, &t, o->files[i]) < 0;
	return bad ? EXIT_BAD : 0;
}

static int cmd_site_key(const struct opts *o)
{
	uint8_t key[PFS_KEY_LEN], id;
	char err[512];

	if (o->nfiles != 1) {
		fprintf(stderr, "pfs-sign site-key: needs exactly one FILE\n");
		return EXIT_USAGE;
	}
	if (pfs_random_bytes(key, sizeof(key)) < 0 || pfs_random_bytes(&id, 1) < 0)
		return EXIT_BAD;
	id = o->id > 0 ? (uint8_t)o->id : (uint8_t)(1 + id % 255);
	if (pfs_keyfile_write(o->files[0], PFS_KEYFILE_SITE, id, key, 0600, err, sizeof(err)) < 0) {
		fprintf(stderr, "pfs-sign: %s\n", err);
		return EXIT_BAD;
	}
	printf("site key id %u in %s (mode 0600)\n", id, o->files[0]);
	return 0;
}

static int cmd_show(const struct opts *o)
{
	struct pfs_manifest m;
	uint8_t *buf;
	size_t len = 0;
	int rc;

	if (o->nfiles != 1) {
		fprintf(stderr, "pfs-sign show: needs exactly one MANIFEST\n");
		return EXIT_USAGE;
	}
	if (!(buf = read_whole(o->files[0], &len))) {
		fprintf(stderr, "pfs-sign: %s: %s\n", o->files[0], strerror(errno));
		return EXIT_BAD;
	}
	rc = pfs_manifest_parse(buf, len, &m);
	if (rc < 0) {
		fprintf(stderr, "pfs-sign: %s: %s\n", o->files[0], pfs_man_strerror(rc));
		free(buf);
		return EXIT_BAD;
	}
	printf("name %.*s\nsize %llu\nchunk_size %u\nchunks %u\nsequence %llu\nsigned_at %llu\n"
	       "key_id %016llx\nsha256 ", m.name_len, m.name, (unsigned long long)m.size,
	       m.chunk_size, m.nchunks, (unsigned long long)m.sequence,
	       (unsigned long long)m.signed_at, (unsigned long long)m.key_id);
	for (int i = 0; i < 32; i++)
		printf("%02x", m.sha256[i]);
	printf("\n(signature not checked: use verify)\n");
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (parse_opts(argc, argv, &o) < 0)
		return EXIT_USAGE;
	if (!strcmp(cmd, "keygen"))
		return cmd_keygen(&o);
	if (!strcmp(cmd, "sign"))
		return cmd_sign(&o);
	if (!strcmp(cmd, "verify"))
		return cmd_verify(&o);
	if (!strcmp(cmd, "site-key"))
		return cmd_site_key(&o);
	if (!strcmp(cmd, "show"))
		return cmd_show(&o);
	fprintf(stderr, "pfs-sign: unknown command '%s'\n", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
