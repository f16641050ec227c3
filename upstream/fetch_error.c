/* fetch_error.c - a fetch's failure in words and as an errno: libcurl's
 * codes, the server's (TFTP errors, HTTP statuses) and our own. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fetch_internal.h"

const char *pfs_fetch_strerror(int err)
{
	switch (err) {
	case -ENOENT:           return "file not found on the server";
	case -EACCES:           return "access denied by the server";
	case -EHOSTUNREACH:     return "server not reachable";
	case -ETIMEDOUT:        return "transfer stalled or too slow";
	case -EPROTO:           return "transfer failed";
	case -ECONNRESET:       return "the server cut the transfer";
	case 0:                 return "the roots elected in turn could not get it from the server";
	case -EBADMSG:          return "the server's bytes do not match the signed manifest";
	case -ENOSPC:           return "no space left on the device";
	case -EKEYREJECTED:     return "the server's TLS certificate is not trusted";
	case -ELIBACC:          return pfs_curl_load_error();
	default:                return err < 0 ? strerror(-err) : "unknown error";
	}
}

int fetch_classify(const struct fetch_job *j, CURLcode res, const struct pfs_fetch *f,
		   char *why, size_t cap)
{
	const char *detail = j->err[0] ? j->err : pfs_curl.easy_strerror(res);

	if (j->write_err) {
		snprintf(why, cap, "%s", j->write_err == -EBADMSG ? pfs_fetch_strerror(-EBADMSG) :
			 strerror(-j->write_err));
		return j->write_err;
	}
	switch (res) {
	case CURLE_TFTP_NOTFOUND:
		snprintf(why, cap, "%s", pfs_fetch_strerror(-ENOENT));
		return -ENOENT;
	case CURLE_TFTP_PERM:
		snprintf(why, cap, "%s", pfs_fetch_strerror(-EACCES));
		return -EACCES;
	case CURLE_HTTP_RETURNED_ERROR: {
		long code = 0;
		pfs_curl.easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code == 404 || code == 410 || code == 401 || code == 403) {
			int err = code == 404 || code == 410 ? -ENOENT : -EACCES;
			snprintf(why, cap, "%s (HTTP %ld)", pfs_fetch_strerror(err), code);
			return err;
		}
		snprintf(why, cap, "transfer failed: the server answered HTTP %ld", code);
		return -EPROTO;
	}
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		snprintf(why, cap, "the server cut the transfer at %llu bytes: %s",
			 (unsigned long long)j->bytes, detail);
		return -ECONNRESET;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		snprintf(why, cap, "%s: %s", pfs_fetch_strerror(-EKEYREJECTED), detail);
		return -EKEYREJECTED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
		snprintf(why, cap, "server not reachable: %s", detail);
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		if (j->bytes == 0 && !j->size) {
			snprintf(why, cap, "server not reachable: no answer within %.3g s "
				 "(down, refusing or filtered)", f->lim.connect_timeout_ms / 1e3);
			return -EHOSTUNREACH;
		}
		snprintf(why, cap, "transfer timed out at %llu bytes: %s",
			 (unsigned long long)j->bytes, detail);
		return -ETIMEDOUT;
	default:
		snprintf(why, cap, "transfer failed: %s", detail);
		return -EPROTO;
	}
}
