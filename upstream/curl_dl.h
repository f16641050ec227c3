/* curl_dl.h - libcurl, loaded when the first fetch begins, not at start.
 *
 * Most pfs-peer processes never fetch: a member gets the file from its
 * parent. libcurl links 28 shared libraries (TLS, SSH, LDAP, Kerberos,
 * RTMP, ...), and mapping them at every start cost each device about
 * 10 ms of CPU; 64 devices starting together on two vCPUs, a quarter of a
 * second of a four-second rollout (bench/RESULTS.md 3.6). So the fetch
 * code calls libcurl through this table, filled by dlopen on first use
 * (systemd loads its optional libraries the same way). The headers, and
 * so the types and constants, are libcurl's own.
 */
#ifndef PFS_CURL_DL_H
#define PFS_CURL_DL_H

#include <curl/curl.h>
#include <stdbool.h>

/* The library's stable name (ABI 4, libcurl 7.16 on). */
#define PFS_CURL_SONAME "libcurl.so.4"

struct pfs_curl_api {
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *easy, CURLoption opt, ...);
	CURLcode (*easy_getinfo)(CURL *easy, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *easy);
	const char *(*easy_strerror)(CURLcode code);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_setopt)(CURLM *multi, CURLMoption opt, ...);
	CURLMcode (*multi_add_handle)(CURLM *multi, CURL *easy);
	CURLMcode (*multi_remove_handle)(CURLM *multi, CURL *easy);
	CURLMcode (*multi_socket_action)(CURLM *multi, curl_socket_t s, int mask, int *running);
	CURLMsg *(*multi_info_read)(CURLM *multi, int *left);
	CURLMcode (*multi_cleanup)(CURLM *multi);
};

/* Valid once pfs_curl_load() returned 0. */
extern struct pfs_curl_api pfs_curl;

/* Load libcurl and resolve every entry (once; later calls return what the
 * first did): 0, or -ELIBACC with the reason in pfs_curl_load_error(). */
int pfs_curl_load(void);
const char *pfs_curl_load_error(void);
bool pfs_curl_loaded(void);

#endif /* PFS_CURL_DL_H */
