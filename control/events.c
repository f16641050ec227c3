/* events.c - `pfsctl events`: what happens on the appliance, pushed as it
 * happens to every control-socket client that asked for "events", one JSON
 * object a line:
 *
 *   {"t":12.345,"event":"child_added","model":"CP-8845","file":"fw/a.bin",
 *    "hier":"1e010d1ebbaaeb0f","peer":"10.88.0.12","a":0,"b":0}
 *   {"t":30.001,"event":"dataplane_down","detail":"no heartbeat"}
 *
 * Every engine event (elections, joins, children added and lost, manifests,
 * files complete or failed, verification failures, fallbacks, the site
 * relay) and our own (dataplane up and down). A subscriber whose socket
 * buffer is full is dropped at once (subscribers_dropped): the daemon never
 * waits for one, and a slow reader loses its stream, not everyone else's.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "control.h"

static void push(struct ctl *c, json_t *o)
{
	char *s;
	size_t n;
	bool any = false;

	for (int i = 0; i < CTL_MAX_CLIENTS && !any; i++)
		any = c->clients[i].fd >= 0 && c->clients[i].subscribed;
	if (!any || !(s = json_dumps(o, JSON_COMPACT))) {
		json_decref(o);
		return;
	}
	json_decref(o);
	n = strlen(s);
	s[n] = '\n';
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *cl = &c->clients[i];
		if (cl->fd < 0 || !cl->subscribed)
			continue;
		if (send(cl->fd, s, n + 1, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)(n + 1)) {
			c->st.events_sent++;
		} else {
			c->st.subscribers_dropped++;
			ctl_warn(c, "events: a subscriber does not keep up: dropped");
			ctl_sock_drop(c, cl);
		}
	}
	free(s);
}

void ctl_sock_event_out(struct ctl *c, const struct ctl_engine *ce,
			const struct pfs_action *act)
{
	char ip[16], key[17];
	uint32_t a = act->peer.ip;

	snprintf(ip, sizeof(ip), "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
	snprintf(key, sizeof(key), "%016llx", (unsigned long long)act->hier);
	push(c, json_pack("{s:f, s:s, s:s, s:s, s:s, s:s, s:I, s:I}",
			  "t", (ctl_now() - c->t0) / 1e9, "event", pfs_event_name(act->event),
			  "model", ce->model, "file", act->path ? act->path : "", "hier", key,
			  "peer", a ? ip : "", "a", (json_int_t)act->a, "b", (json_int_t)act->b));
}

void ctl_sock_notice(struct ctl *c, const char *event, const char *detail)
{
	push(c, json_pack("{s:f, s:s, s:s}", "t", (ctl_now() - c->t0) / 1e9, "event", event,
			  "detail", detail));
}
