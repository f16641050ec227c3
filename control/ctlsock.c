/* ctlsock.c - the operator's control sockets: Unix stream sockets, one
 * JSON request per line, one JSON reply per line (docs/appliance.md 5).
 * control.socket (owner and group by default) runs every command;
 * control.ro_socket (anyone on the host by default) only those that read
 * (ctl_commands.h), so that monitoring needs no power to change anything.
 *
 * The daemon never blocks on a client: requests are read as they come, a
 * line longer than CTL_REQ_MAX or a client that does not read its replies
 * is disconnected, and every malformed or unknown request gets
 * {"ok": false, "code": N, "error": "..."} naming the problem (ctlcmds.c
 * runs the commands). A client that asks for "events" is pushed every event
 * from then on (events.c); it is never swept as idle, and is dropped if it
 * does not read them.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlcmds.h"

static void client_close(struct ctl *c, struct ctl_client *cl)
{
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, cl->fd, NULL);
	close(cl->fd);
	cl->fd = -1;
	cl->len = 0;
	cl->subscribed = false;
}

void ctl_sock_drop(struct ctl *c, struct ctl_client *cl)
{
	client_close(c, cl);
}

/* Reply, or drop a client whose socket buffer is full: never wait. */
static bool reply(struct ctl *c, struct ctl_client *cl, json_t *r)
{
	char *s = json_dumps(r, JSON_COMPACT);
	bool ok = false;

	if (!json_is_true(json_object_get(r, "ok")))
		c->st.ctl_errors++;
	json_decref(r);
	if (s) {
		size_t n = strlen(s);
		s[n] = '\n';
		ok = send(cl->fd, s, n + 1, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)(n + 1);
		free(s);
	}
	if (!ok)
		client_close(c, cl);
	return ok;
}

static void client_read(struct ctl *c, struct ctl_client *cl)
{
	for (;;) {
		ssize_t n = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len, MSG_DONTWAIT);
		char *nl;

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			client_close(c, cl);
			return;
		}
		if (n < 0)
			return;
		cl->last_active = ctl_now();
		cl->len += (size_t)n;
		while ((nl = memchr(cl->buf, '\n', cl->len))) {
			json_error_t jerr;
			size_t line = (size_t)(nl - cl->buf);
			json_t *req = json_loadb(cl->buf, line, 0, &jerr), *r;

			c->st.ctl_requests++;
			r = req ? ctl_cmd_dispatch(c, cl, req) :
				  ctl_err(CTL_E_malformed, "malformed JSON: %s", jerr.text);
			json_decref(req);
			memmove(cl->buf, nl + 1, cl->len - line - 1);
			cl->len -= line + 1;
			if (!reply(c, cl, r))
				return;
		}
		if (cl->len == sizeof(cl->buf)) {
			reply(c, cl, ctl_err(CTL_E_too_long, "request longer than %d bytes",
					     CTL_REQ_MAX));
			if (cl->fd >= 0)
				client_close(c, cl);
			return;
		}
	}
}

void ctl_sock_sweep(struct ctl *c, int64_t now)
{
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (c->clients[i].fd >= 0 && !c->clients[i].subscribed &&
		    now - c->clients[i].last_active > (int64_t)(c->cfg.client_idle_s * 1e9))
			client_close(c, &c->clients[i]);
}

/* A slot for a new connection: a free one, else the longest idle one if it
 * has been idle a second (an operator is never locked out by clients that
 * connect and say nothing), else none. */
static struct ctl_client *client_slot(struct ctl *c, int64_t now)
{
	struct ctl_client *idle = NULL;
	int used = 0;

	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *cl = &c->clients[i];
		if (cl->fd < 0)
			continue;
		used++;
		if (!cl->subscribed && (!idle || cl->last_active < idle->last_active))
			idle = cl;
	}
	if (used < c->cfg.max_clients) {
		for (int i = 0; i < CTL_MAX_CLIENTS; i++)
			if (c->clients[i].fd < 0)
				return &c->clients[i];
	}
	if (idle && now - idle->last_active >= 1000000000) {
		client_close(c, idle);
		return idle;
	}
	return NULL;
}

static void accept_clients(struct ctl *c, int lsock)
{
	int fd;

	while ((fd = accept4(lsock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
		struct ctl_client *cl = client_slot(c, ctl_now());
		if (!cl || epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			static const char busy[] = "{\"ok\":false,\"code\":8,"
						   "\"error\":\"too many clients\"}\n";
			_Static_assert(CTL_E_busy == 8, "the code in the busy reply");
			if (send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
				c->st.ctl_errors++;
			close(fd);
			continue;
		}
		cl->fd = fd;
		cl->len = 0;
		cl->subscribed = false;
		cl->read_only = lsock == c->lsock_ro;
		cl->last_active = ctl_now();
	}
}

bool ctl_sock_event(struct ctl *c, int fd, uint32_t events)
{
	(void)events;
	if (fd == c->lsock || fd == c->lsock_ro) {
		accept_clients(c, fd);
		return true;
	}
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		if (c->clients[i].fd == fd) {
			client_read(c, &c->clients[i]);
			return true;
		}
	}
	return false;
}

/* A listening socket at path with mode, in the event loop. A socket file
 * nobody answers on is a leftover of a crash and is replaced; anything
 * else at path is refused. */
static int listen_at(struct ctl *c, const char *path, int mode, const char *key, int *out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN };
	struct stat st;
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		pfs_log(PFS_LOG_ERR, "%s: path longer than %zu bytes", key,
			sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN) {
		pfs_log(PFS_LOG_ERR, "%s: another pfs-control is running", path);
		rc = -EADDRINUSE;
		goto err;
	}
	close(fd);
	/* Only a stale socket is removed: a path naming anything else is a
	 * configuration mistake, and deleting it would lose someone's file. */
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		pfs_log(PFS_LOG_ERR, "%s %s exists and is not a socket: refusing to "
			"replace it", key, path);
		return -EEXIST;
	}
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, (mode_t)mode) < 0 ||
	    listen(fd, 16) < 0) {
		rc = -errno;
		pfs_log(PFS_LOG_ERR, "%s: %s", path, strerror(-rc));
		goto err;
	}
	ev.data.fd = fd;
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	*out = fd;
	return 0;
err_unlink:
	unlink(path);
err:
	close(fd);
	return rc;
}

int ctl_sock_open(struct ctl *c)
{
	int rc;

	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		c->clients[i].fd = -1;
	c->lsock = c->lsock_ro = -1;
	if ((rc = listen_at(c, c->cfg.socket, c->cfg.socket_mode, "control.socket",
			    &c->lsock)) < 0)
		return rc;
	if (c->cfg.ro_socket[0] &&
	    (rc = listen_at(c, c->cfg.ro_socket, c->cfg.ro_socket_mode, "control.ro_socket",
			    &c->lsock_ro)) < 0) {
		ctl_sock_close(c);
		return rc;
	}
	return 0;
}

void ctl_sock_close(struct ctl *c)
{
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (c->clients[i].fd >= 0)
			client_close(c, &c->clients[i]);
	if (c->lsock >= 0) {
		close(c->lsock);
		unlink(c->cfg.socket);
		c->lsock = -1;
	}
	if (c->lsock_ro >= 0) {
		close(c->lsock_ro);
		unlink(c->cfg.ro_socket);
		c->lsock_ro = -1;
	}
}
