/* keyfile.c - read and write key files, and the rollback state file. */
#include "pfs_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pfs_codec.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Read the one line of a key file: "TAG [ID] HEX". id NULL: no id field. */
static int read_key(const char *path, const char *tag, int *id, uint8_t key[PFS_KEY_LEN],
		    char *err, size_t n)
{
	char line[256], word[64], hex[80];
	FILE *f = fopen(path, "re");
	int fields, got_id = 0;

	if (!f) {
		int rc = -errno;
		snprintf(err, n, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		snprintf(err, n, "%s: empty file, not a %s file", path, tag);
		return -EINVAL;
	}
	fclose(f);
	fields = id ? sscanf(line, "%63s %d %79s", word, &got_id, hex)
		    : sscanf(line, "%63s %79s", word, hex);
	if (fields < 1 || strcmp(word, tag) != 0) {
		snprintf(err, n, "%s: not a %s file (it starts with '%.40s')", path, tag,
			 fields >= 1 ? word : "");
		return -EINVAL;
	}
	if (fields != (id ? 3 : 2) || strlen(hex) != 2 * PFS_KEY_LEN ||
	    (id && (got_id < 1 || got_id > 255))) {
		snprintf(err, n, "%s: malformed %s line (want '%s %s<%d hex digits>')", path, tag,
			 tag, id ? "<id 1..255> " : "", 2 * PFS_KEY_LEN);
		return -EINVAL;
	}
	for (int i = 0; i < PFS_KEY_LEN; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			snprintf(err, n, "%s: key is not hexadecimal", path);
			return -EINVAL;
		}
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	if (id)
		*id = got_id;
	return 0;
}

int pfs_keyfile_read_public(const char *path, uint8_t pub[PFS_KEY_LEN], char *err, size_t n)
{
	return read_key(path, PFS_KEYFILE_PUBLIC, NULL, pub, err, n);
}

int pfs_keyfile_read_secret(const char *path, uint8_t seed[PFS_KEY_LEN], char *err, size_t n)
{
	return read_key(path, PFS_KEYFILE_SECRET, NULL, seed, err, n);
}

int pfs_keyfile_read_site(const char *path, struct pfs_site_key *k, char *err, size_t n)
{
	int id = 0, rc = read_key(path, PFS_KEYFILE_SITE, &id, k->key, err, n);

	k->id = (uint8_t)id;
	return rc;
}

int pfs_keyfile_write(const char *path, const char *tag, int id, const uint8_t key[PFS_KEY_LEN],
		      mode_t mode, char *err, size_t n)
{
	char line[160];
	int len = id >= 0 ? snprintf(line, sizeof(line), "%s %d ", tag, id)
			  : snprintf(line, sizeof(line), "%s ", tag);
	int fd, rc = 0;

	for (int i = 0; i < PFS_KEY_LEN; i++)
		len += snprintf(line + len, sizeof(line) - (size_t)len, "%02x", key[i]);
	line[len++] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, n, "%s: %s%s", path, strerror(errno),
			 errno == EEXIST ? " (a key file is never overwritten; remove it first)" : "");
		return rc;
	}
	/* The umask may have narrowed the mode, never widened it; be exact. */
	errno = 0;
	if (fchmod(fd, mode) < 0 || write(fd, line, (size_t)len) != len || fsync(fd) < 0)
		rc = errno ? -errno : -EIO;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (rc) {
		snprintf(err, n, "%s: %s", path, strerror(-rc));
		unlink(path);
	}
	return rc;
}

int pfs_trust_load(struct pfs_trust *t, const char *const *paths, int npaths, char *err, size_t n)
{
	uint8_t pub[PFS_KEY_LEN];

	for (int i = 0; i < npaths; i++) {
		int rc = pfs_keyfile_read_public(paths[i], pub, err, n);
		if (rc < 0)
			return rc;
		if (pfs_trust_add_key(t, pub) < 0) {
			snprintf(err, n, "%s: at most %d trusted keys", paths[i], PFS_TRUST_MAX_KEYS);
			return -ENOSPC;
		}
	}
	return 0;
}

/* ---- rollback state ---------------------------------------------------- */

struct seq_entry {
	uint64_t seq;
	char name[PFS_FILEPATH_MAX + 1];
};

struct pfs_seqstate {
	char *path;
	struct seq_entry *e;
	size_t n, cap;
};

static struct seq_entry *find(const struct pfs_seqstate *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->e[i].name, name))
			return &s->e[i];
	return NULL;
}

static int put(struct pfs_seqstate *s, const char *name, uint64_t seq)
{
	struct seq_entry *e = find(s, name);

	if (!e) {
		if (s->n == s->cap) {
			size_t ncap = s->cap ? s->cap * 2 : 16;
			struct seq_entry *ne = realloc(s->e, ncap * sizeof(*ne));
			if (!ne)
				return -ENOMEM;
			s->e = ne;
			s->cap = ncap;
		}
		e = &s->e[s->n++];
		snprintf(e->name, sizeof(e->name), "%s", name);
		e->seq = 0;
	}
	if (seq > e->seq)
		e->seq = seq;
	return 0;
}

void pfs_seqstate_free(struct pfs_seqstate *s)
{
	if (!s)
		return;
	free(s->e);
	free(s->path);
	free(s);
}

/* Lines "SEQUENCE NAME"; a line that does not parse makes the whole file
 * suspect, and is refused rather than read as "no floor". */
struct pfs_seqstate *pfs_seqstate_open(const char *path, char *err, size_t n)
{
	struct pfs_seqstate *s = calloc(1, sizeof(*s));
	char line[PFS_FILEPATH_MAX + 64], name[PFS_FILEPATH_MAX + 1];
	unsigned long long seq;
	unsigned lineno = 0;
	FILE *f;

	if (!s || !(s->path = strdup(path))) {
		pfs_seqstate_free(s);
		snprintf(err, n, "%s: out of memory", path);
		errno = ENOMEM;
		return NULL;
	}
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			return s;
		snprintf(err, n, "%s: %s", path, strerror(errno));
		pfs_seqstate_free(s);
		return NULL;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (sscanf(line, "%llu %255s", &seq, name) != 2 ||
		    !pfs_filepath_valid(name, strlen(name)) || put(s, name, seq) < 0) {
			snprintf(err, n, "%s:%u: not 'SEQUENCE NAME'", path, lineno);
			fclose(f);
			pfs_seqstate_free(s);
			errno = EINVAL;
			return NULL;
		}
	}
	fclose(f);
	return s;
}

uint64_t pfs_seqstate_get(const struct pfs_seqstate *s, const char *name)
{
	const struct seq_entry *e = s ? find(s, name) : NULL;

	return e ? e->seq : 0;
}

int pfs_seqstate_raise(struct pfs_seqstate *s, const char *name, uint64_t seq)
{
	char tmp[4200];
	FILE *f;
	int rc;

	if (pfs_seqstate_get(s, name) >= seq && find(s, name))
		return 0;
	if ((rc = put(s, name, seq)) < 0)
		return rc;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", s->path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	for (size_t i = 0; i < s->n; i++)
		fprintf(f, "%llu %s\n", (unsigned long long)s->e[i].seq, s->e[i].name);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
		rc = -errno;
		fclose(f);
		unlink(tmp);
		return rc;
	}
	fclose(f);
	return rename(tmp, s->path) < 0 ? -errno : 0;
}

/* ---- boot count ---------------------------------------------------------- */

int pfs_boot_count_next(const char *path, uint32_t *boot, char *err, size_t n)
{
	unsigned long long v = 0;
	char tmp[4200];
	FILE *f = fopen(path, "re");
	int rc = 0;

	if (f) {
		int ok = fscanf(f, "%llu", &v) == 1;
		fclose(f);
		if (!ok || v >= UINT32_MAX) {
			snprintf(err, n, "%s: not a boot count", path);
			return -EINVAL;
		}
	} else if (errno != ENOENT) {
		snprintf(err, n, "%s: %s", path, strerror(errno));
		return -errno;
	}
	*boot = (uint32_t)v + 1;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	if (!(f = fopen(tmp, "we")) || fprintf(f, "%u\n", *boot) < 0 || fflush(f) != 0 ||
	    fsync(fileno(f)) < 0)
		rc = -errno;
	if (f && fclose(f) != 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc) {
		snprintf(err, n, "%s: %s", path, strerror(-rc));
		unlink(tmp);
	}
	return rc;
}
