/* pfs_steer_shared.h - what the XDP steering program and user space share:
 * the configuration record, the counter indices and the pinned map names.
 * Fixed-width types only (libbpf-bootstrap's x.h convention).
 */
#ifndef PFS_STEER_SHARED_H
#define PFS_STEER_SHARED_H

#include <linux/types.h>

/* Pinned under the bpffs root (/sys/fs/bpf) by the loader, LIBBPF_PIN_BY_NAME. */
#define PFS_STEER_CFG_MAP    "pfs_steer_cfg"
#define PFS_STEER_STATS_MAP  "pfs_steer_stats"

/* An all-zero record is the default: steer port PFS_PORT (4051). A fresh
 * array map is zero-filled, so the program is right before anyone writes. */
struct pfs_steer_config {
	__u16 port;             /* host order; 0 = PFS_PORT */
	__u8 disabled;          /* 1: pass everything to the kernel */
	__u8 require_auth;      /* 1: the site has a key; drop control frames without AUTH */
};

enum pfs_steer_stat {
	PFS_STEER_STEERED = 0,  /* UDP/TCP to the port, handed to the AF_XDP map */
	PFS_STEER_PASSED,       /* everything else, to the kernel */
	PFS_STEER_MALFORMED,    /* a header cut short or inconsistent; passed */
	PFS_STEER_TTL_DROP,     /* UDP to the port without IP TTL 255: dropped */
	PFS_STEER_UNAUTH_DROP,  /* require_auth: a control message without AUTH: dropped */
	PFS_STEER_STAT_MAX,
};

#endif
