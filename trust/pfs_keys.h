/* pfs_keys.h - key files and the rollback state file (docs/security.md 4).
 *
 * Key files are one line of text, a type tag then the key in hex, so a key
 * given in the wrong place is named as such instead of silently misread:
 *
 *     pfs-ed25519-public <64 hex>        publisher's public key
 *     pfs-ed25519-secret <64 hex>        publisher's secret seed (mode 0600)
 *     pfs-site-key <id 1..255> <64 hex>  site key for control-message MACs (0600)
 *
 * The state file keeps, per file name, the highest manifest sequence this
 * node has verified, so a restart does not reopen the door to a rollback.
 * Errors: negative errno, and a message in err naming the file and problem.
 */
#ifndef PFS_KEYS_H
#define PFS_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pfs_manifest.h"

#define PFS_KEYFILE_PUBLIC  "pfs-ed25519-public"
#define PFS_KEYFILE_SECRET  "pfs-ed25519-secret"
#define PFS_KEYFILE_SITE    "pfs-site-key"

struct pfs_site_key {
	uint8_t id;
	uint8_t key[PFS_KEY_LEN];
};

int pfs_keyfile_read_public(const char *path, uint8_t pub[PFS_KEY_LEN], char *err, size_t n);
int pfs_keyfile_read_secret(const char *path, uint8_t seed[PFS_KEY_LEN], char *err, size_t n);
int pfs_keyfile_read_site(const char *path, struct pfs_site_key *k, char *err, size_t n);
/* Write a key file; never replaces an existing file (-EEXIST). id < 0: none. */
int pfs_keyfile_write(const char *path, const char *tag, int id, const uint8_t key[PFS_KEY_LEN],
		      mode_t mode, char *err, size_t n);
/* Read every --trust file into t. */
int pfs_trust_load(struct pfs_trust *t, const char *const *paths, int npaths,
		   char *err, size_t n);

/* Rollback state: highest verified sequence per file name. */
struct pfs_seqstate;
/* Load path (a missing file is an empty state). NULL + errno on error. */
struct pfs_seqstate *pfs_seqstate_open(const char *path, char *err, size_t n);
void pfs_seqstate_free(struct pfs_seqstate *s);
uint64_t pfs_seqstate_get(const struct pfs_seqstate *s, const char *name);
/* Raise name's floor to seq and write the file through (temp + rename). */
int pfs_seqstate_raise(struct pfs_seqstate *s, const char *name, uint64_t seq);

/* The boot count kept in path: read it, write it back one higher (durably,
 * temp + rename) and return the new value. A missing file starts at 1. */
int pfs_boot_count_next(const char *path, uint32_t *boot, char *err, size_t n);

#endif /* PFS_KEYS_H */
