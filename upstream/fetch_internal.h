/* fetch_internal.h - pfs_fetch's state, shared by pfs_fetch.c (the
 * transfers) and fetch_error.c (what a failed one is called). */
#ifndef PFS_FETCH_INTERNAL_H
#define PFS_FETCH_INTERNAL_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#include "curl_dl.h"
#include "pfs_fetch.h"

#define STAGE_BYTES  (64 * 1024)        /* TFTP blocks held until libcurl has ACKed them */

struct fetch_job {
	struct pfs_fetch *owner;
	int id;
	CURL *easy;
	EVP_MD_CTX *sha;
	bool no_options;                /* retrying without TFTP options */
	bool small_blocks;              /* retrying with the default block size */
	bool http;                      /* http:// or https:// */
	bool resumable;                 /* failed part-way: pfs_fetch_resume may go on */
	uint64_t resume_at;             /* bytes held when this attempt began */
	int write_err;
	uint64_t bytes, reported;
	uint64_t size;                  /* from the server (tsize), 0 until known */
	int64_t started, deadline;      /* ns; deadline 0 until the size is known */
	int64_t t_check;                /* end of the current low-speed window */
	uint64_t mark;                  /* bytes at its start */
	uint8_t *stage;                 /* TFTP: blocks received, not yet given to ops->write */
	size_t staged;
	uint64_t stage_off;             /* where stage[0] belongs */
	char url[4600];
	char err[CURL_ERROR_SIZE];
};

struct pfs_fetch {
	int epfd;
	CURLM *multi;
	const struct pfs_fetch_ops *ops;
	void *ctx;
	int64_t deadline;               /* libcurl's timer */
	uint64_t total;
	struct pfs_fetch_limits lim;
	char *ca_file;                  /* NULL: the system's CA store */
	/* Bit i: jobs[i] has a transfer (running), has ever had one (used).
	 * A job is 5 KB: a walk over all 64 at each turn of a device's loop
	 * touched 64 cache lines and pages to find none (2 % of its CPU). */
	uint64_t running, used;
	/* A fetch got data only once it asked for frame-sized blocks: the
	 * path drops fragments, and every later fetch asks for those at once
	 * rather than stall again first (until the limits are set again). */
	bool frame_blocks;
	struct fetch_job jobs[PFS_FETCH_MAX];
};
_Static_assert(PFS_FETCH_MAX <= 64, "a job is a bit of struct pfs_fetch's masks");

/* The jobs whose bit is set in mask, lowest first, i their index. */
#define FOR_EACH_JOB(mask, i) \
	for (uint64_t m_ = (mask); m_ && ((i) = __builtin_ctzll(m_), 1); m_ &= m_ - 1)

/* A failed transfer's error (negative errno, as pfs_fetch_strerror names)
 * and the words for the log in why[cap]. */
int fetch_classify(const struct fetch_job *j, CURLcode res, const struct pfs_fetch *f,
		   char *why, size_t cap);

#endif /* PFS_FETCH_INTERNAL_H */
