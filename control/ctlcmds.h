/* ctlcmds.h - the control socket's commands as pfs-control runs them
 * (ctlcmds.c), for ctlsock.c, which carries requests and replies. */
#ifndef PFS_CTLCMDS_H
#define PFS_CTLCMDS_H

#include <jansson.h>

#include "control.h"
#include "ctl_commands.h"

/* The reply to one request of client cl (never NULL but out of memory). */
json_t *ctl_cmd_dispatch(struct ctl *c, struct ctl_client *cl, json_t *req);
/* {"ok": false, "code": code, "error": the message}. */
json_t *ctl_err(enum ctl_error code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* PFS_CTLCMDS_H */
