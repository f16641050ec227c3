/* steer.c - the steering program's pinned maps, read and written from user
 * space (pfs-steer, and later pfsctl). */
#include "steer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int pfs_steer_open_pinned(const char *root, struct pfs_steer_maps *m)
{
	char path[4096];
	int rc;

	root = root ? root : PFS_BPFFS_ROOT;
	m->cfg_fd = m->stats_fd = -1;
	snprintf(path, sizeof(path), "%s/%s", root, PFS_STEER_CFG_MAP);
	m->cfg_fd = bpf_obj_get(path);
	if (m->cfg_fd < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/%s", root, PFS_STEER_STATS_MAP);
	m->stats_fd = bpf_obj_get(path);
	if (m->stats_fd < 0) {
		rc = -errno;
		close(m->cfg_fd);
		m->cfg_fd = -1;
		return rc;
	}
	return 0;
}

void pfs_steer_close(struct pfs_steer_maps *m)
{
	if (m->cfg_fd >= 0)
		close(m->cfg_fd);
	if (m->stats_fd >= 0)
		close(m->stats_fd);
	m->cfg_fd = m->stats_fd = -1;
}

int pfs_steer_config_get(const struct pfs_steer_maps *m, struct pfs_steer_config *c)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(m->cfg_fd, &zero, c) < 0 ? -errno : 0;
}

int pfs_steer_config_set(const struct pfs_steer_maps *m, const struct pfs_steer_config *c)
{
	__u32 zero = 0;
	return bpf_map_update_elem(m->cfg_fd, &zero, c, BPF_ANY) < 0 ? -errno : 0;
}

int pfs_steer_stats_read(const struct pfs_steer_maps *m, uint64_t out[PFS_STEER_STAT_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals;

	if (ncpu <= 0)
		return ncpu < 0 ? ncpu : -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 s = 0; s < PFS_STEER_STAT_MAX; s++) {
		if (bpf_map_lookup_elem(m->stats_fd, &s, vals) < 0) {
			int rc = -errno;
			free(vals);
			return rc;
		}
		out[s] = 0;
		for (int c = 0; c < ncpu; c++)
			out[s] += vals[c];
	}
	free(vals);
	return 0;
}

const char *pfs_steer_stat_name(enum pfs_steer_stat s)
{
	static const char *const names[PFS_STEER_STAT_MAX] = { "steered", "passed", "malformed",
								  "ttl_drop", "unauth_drop" };
	return (unsigned)s < PFS_STEER_STAT_MAX ? names[s] : "?";
}
