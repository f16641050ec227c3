/* pfsctl.h - what pfsctl's one-shot commands (pfsctl.c) and its live ones
 * (pfsctl_live.c: watch, events) share: the connection, one request and
 * its reply, and the small helpers for printing replies. */
#ifndef PFSCTL_H
#define PFSCTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* A connected control socket (replies time out after 10 s), or -1, errno set. */
int pfsctl_connect(const char *path);
/* Send one request line, read one reply line (NULL and err on failure). */
json_t *pfsctl_call(int fd, json_t *req, char *err, size_t errlen);
/* A string member or "-", an integer member or 0. */
const char *pfsctl_s(json_t *o, const char *k);
long long pfsctl_i(json_t *o, const char *k);
/* A 20-cell progress bar and percentage into out (64 bytes). */
void pfsctl_bar(char *out, long long have, long long total);

/* pfsctl_live.c; exit codes as pfsctl's. */
int pfsctl_events(const char *sock, bool json);
int pfsctl_watch(const char *sock, double interval_s, long count);
/* Progress of (model, file) until it is complete (0) or failed (1). */
int pfsctl_follow(const char *sock, const char *model, const char *file);

#endif /* PFSCTL_H */
