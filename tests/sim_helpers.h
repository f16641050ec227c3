/* sim_helpers.h - what the engine's simulation tests share: files with
 * known bytes, a default config, and the check that every live node holds
 * byte-identical copies. Header-only (static), included by each test file.
 */
#ifndef PFS_SIM_HELPERS_H
#define PFS_SIM_HELPERS_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netsim.h"

static uint8_t *make_file(size_t size, uint32_t seed)
{
	uint8_t *d = malloc(size ? size : 1);
	for (size_t i = 0; i < size; i++) {
		seed = seed * 1103515245u + 12345u;
		d[i] = (uint8_t)(seed >> 16);
	}
	return d;
}

static struct pfs_engine_config base_config(const char *model)
{
	struct pfs_engine_config c;

	pfs_engine_config_defaults(&c);
	snprintf(c.model, sizeof(c.model), "%s", model);
	return c;
}

struct file_spec { const char *path; size_t size; uint8_t *data; };

/* Every live node must hold byte-identical copies of the files it wanted. */
static inline void assert_all_files(struct netsim *ns, const struct file_spec *files, int nfiles,
			     int nwants)
{
	cr_assert_eq(netsim_counts(ns)->finished_twice, 0, "a driver was told a file ended twice");
	for (int n = 0; n < netsim_nodes(ns); n++) {
		if (!netsim_alive(ns, n))
			continue;
		for (int w = 0; w < nwants; w++) {
			size_t size; bool done, failed;
			const uint8_t *got = netsim_file(ns, n, w, &size, &done, &failed);
			struct pfs_hier_info info;
			pfs_engine_hier_info(netsim_engine(ns, n), w, &info);
			const struct file_spec *f = NULL;
			for (int i = 0; i < nfiles; i++)
				if (!strcmp(files[i].path, info.path))
					f = &files[i];
			cr_assert_not_null(f);
			cr_assert(done, "node %d file %s not done (state %s, %u/%u chunks)",
				  n, f->path, info.state, info.chunks_have, info.chunks_total);
			cr_assert_eq(size, f->size, "node %d %s size %zu", n, f->path, size);
			cr_assert(size == 0 || memcmp(got, f->data, size) == 0,
				  "node %d %s bytes differ", n, f->path);
		}
	}
}

#endif /* PFS_SIM_HELPERS_H */
