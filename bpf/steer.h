/* steer.h - user space side of the XDP steering program: its pinned
 * configuration and counters, and attaching it where no DPDK PMD does.
 * Functions return 0 or a negative errno.
 */
#ifndef PFS_STEER_H
#define PFS_STEER_H

#include <stdbool.h>
#include <stdint.h>

#include "pfs_steer_shared.h"

#define PFS_BPFFS_ROOT "/sys/fs/bpf"

struct pfs_steer_maps {
	int cfg_fd;
	int stats_fd;
};

/* Open the maps pinned under root (NULL: PFS_BPFFS_ROOT). */
int pfs_steer_open_pinned(const char *root, struct pfs_steer_maps *m);
void pfs_steer_close(struct pfs_steer_maps *m);

int pfs_steer_config_get(const struct pfs_steer_maps *m, struct pfs_steer_config *c);
int pfs_steer_config_set(const struct pfs_steer_maps *m, const struct pfs_steer_config *c);
/* Sum of the per-CPU counters. */
int pfs_steer_stats_read(const struct pfs_steer_maps *m, uint64_t out[PFS_STEER_STAT_MAX]);

const char *pfs_steer_stat_name(enum pfs_steer_stat s);

#endif
