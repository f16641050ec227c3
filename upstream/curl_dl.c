/* curl_dl.c - libcurl through dlopen, on first use (curl_dl.h). */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "curl_dl.h"

struct pfs_curl_api pfs_curl;

static int load_rc = 1;                 /* 1: not tried yet */
static char load_error[256];

/* Each entry and the name it is resolved by. */
static const struct {
	const char *name;
	size_t offset;
} entries[] = {
#define ENTRY(field) { "curl_" #field, offsetof(struct pfs_curl_api, field) }
	ENTRY(global_init), ENTRY(global_cleanup), ENTRY(easy_init), ENTRY(easy_setopt),
	ENTRY(easy_getinfo), ENTRY(easy_cleanup), ENTRY(easy_strerror), ENTRY(multi_init),
	ENTRY(multi_setopt), ENTRY(multi_add_handle), ENTRY(multi_remove_handle),
	ENTRY(multi_socket_action), ENTRY(multi_info_read), ENTRY(multi_cleanup),
#undef ENTRY
};

int pfs_curl_load(void)
{
	struct pfs_curl_api api;
	void *lib;

	if (load_rc <= 0)
		return load_rc;
	lib = dlopen(PFS_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(load_error, sizeof(load_error), "cannot load libcurl: %s", dlerror());
		return load_rc = -ELIBACC;
	}
	for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
		void *sym = dlsym(lib, entries[i].name);

		if (!sym) {
			snprintf(load_error, sizeof(load_error), "%s has no %s: too old",
				 PFS_CURL_SONAME, entries[i].name);
			dlclose(lib);
			return load_rc = -ELIBACC;
		}
		/* POSIX: a data pointer from dlsym converts to a function's. */
		memcpy((char *)&api + entries[i].offset, &sym, sizeof(sym));
	}
	pfs_curl = api;
	return load_rc = 0;
}

const char *pfs_curl_load_error(void)
{
	return load_error[0] ? load_error : "libcurl not loaded";
}

bool pfs_curl_loaded(void)
{
	return load_rc == 0;
}
