/* test_engine_relay.c - a site relay (docs/protocol.md 4.4): the appliance
 * beacons RELAY and is root at once, devices that hold its beacon JOIN it
 * without an election, and whatever the relay cannot take is elected for
 * as on a site without one.
 */
#include <criterion/criterion.h>

#include "sim_helpers.h"

#define RELAY_IP  0x0a000063u   /* 10.0.0.99 */
#define DEV_IP    0x0a000005u
#define MODEL     "CP-8845"

struct seen {
	int n;
	struct pfs_action act[64];
	struct pfs_msg msg[64];
	uint8_t buf[64][2048];
};

/* Drain every action; SENDs decoded (their bytes kept per action). */
static void drain_all(struct pfs_engine *e, pfs_time_t now, struct seen *s)
{
	s->n = 0;
	while (s->n < 64 && pfs_engine_poll(e, now, &s->act[s->n], s->buf[s->n],
					    sizeof(s->buf[0])) > 0) {
		if (s->act[s->n].type == PFS_ACT_SEND)
			cr_assert_eq(pfs_decode(s->act[s->n].msg, s->act[s->n].len, &s->msg[s->n]),
				     PFS_OK);
		s->n++;
	}
}

static int count_sends(const struct seen *s, uint8_t type)
{
	int n = 0;

	for (int i = 0; i < s->n; i++)
		n += s->act[i].type == PFS_ACT_SEND && s->msg[i].type == type;
	return n;
}

static const struct pfs_action *find(const struct seen *s, enum pfs_action_type t, uint8_t msg)
{
	for (int i = 0; i < s->n; i++)
		if (s->act[i].type == t && (t != PFS_ACT_SEND || s->msg[i].type == msg))
			return &s->act[i];
	return NULL;
}

static struct pfs_engine *relay_engine(const char *model, uint8_t class)
{
	struct pfs_engine_config c = base_config(model);

	c.node_id = RELAY_IP;
	c.self = (struct pfs_addr){ RELAY_IP, PFS_PORT };
	c.priority_class = class;
	c.relay = PFS_RELAY_ON;
	c.max_children = 16;
	c.random = 7;
	return pfs_engine_new(&c);
}

static struct pfs_engine *device_engine(void)
{
	struct pfs_engine_config c = base_config(MODEL);

	c.node_id = DEV_IP;
	c.self = (struct pfs_addr){ DEV_IP, PFS_PORT };
	c.random = 11;
	return pfs_engine_new(&c);
}

/* The relay's first beacon, as bytes a device receives. */
static int beacon_of(struct pfs_engine *relay, pfs_time_t now, uint8_t *out)
{
	struct seen *s = calloc(1, sizeof(*s));
	int len = -1;

	pfs_engine_timeout(relay, now);
	drain_all(relay, now, s);
	const struct pfs_action *a = find(s, PFS_ACT_SEND, PFS_MSG_RELAY);
	if (a) {
		memcpy(out, a->msg, a->len);
		len = (int)a->len;
	}
	free(s);
	return len;
}

static const struct pfs_addr relay_addr = { RELAY_IP, PFS_PORT };
static const struct pfs_addr dev_addr = { DEV_IP, PFS_PORT };

/* A REFUSE or LEAVE of fw/a.bin from `sender`, as bytes `to` receives. */
static void recv_reason(struct pfs_engine *to, pfs_time_t now, const struct pfs_addr *from,
			uint8_t type, uint32_t sender, uint8_t reason)
{
	struct pfs_msg m = { .type = type, .sender = sender,
			     .hier = pfs_hier_key(MODEL, strlen(MODEL), "fw/a.bin", 8) };
	uint8_t buf[128];
	int len;

	m.u.reason.reason = reason;
	len = pfs_encode(&m, buf, sizeof(buf));
	cr_assert_gt(len, 0);
	pfs_engine_recv(to, now, from, buf, (size_t)len);
}

Test(relay, beacons_and_is_root_at_once)
{
	struct pfs_engine *r = relay_engine(MODEL, PFS_CLASS_APPLIANCE);
	struct seen *s = calloc(1, sizeof(*s));

	cr_assert_not_null(r);
	cr_assert_eq(pfs_engine_next_deadline(r), 0, "a relay beacons from the start");
	pfs_engine_timeout(r, 0);
	drain_all(r, 0, s);
	cr_assert_eq(s->n, 1);
	cr_assert_eq(s->msg[0].type, PFS_MSG_RELAY);
	cr_assert(s->act[0].bcast);
	cr_assert_eq(s->msg[0].hier, PFS_HIER_ALL);
	cr_assert_eq(s->msg[0].u.relay.strength >> PFS_STRENGTH_CLASS_SHIFT, PFS_CLASS_APPLIANCE);
	cr_assert_eq(s->msg[0].u.relay.hold_ms, 3000, "three announce intervals");
	cr_assert_eq(s->msg[0].u.relay.model.len, strlen(MODEL));
	pfs_time_t next = pfs_engine_next_deadline(r);
	cr_assert(next >= PFS_MSEC(875) && next <= PFS_MSEC(1125), "next beacon at %llu",
		  (unsigned long long)next);

	/* A file: root at once, announced and fetched, with no claim. */
	int h = pfs_engine_want(r, PFS_MSEC(10), "fw/a.bin");
	cr_assert_geq(h, 0);
	drain_all(r, PFS_MSEC(10), s);
	cr_assert_eq(count_sends(s, PFS_MSG_CLAIM), 0);
	cr_assert_eq(count_sends(s, PFS_MSG_ROOT), 1);
	cr_assert_not_null(find(s, PFS_ACT_UPSTREAM_START, 0));
	struct pfs_hier_info info;
	pfs_engine_hier_info(r, h, &info);
	cr_assert(info.is_root);
	free(s);
	pfs_engine_free(r);
}

Test(relay, device_joins_a_relay_it_holds_without_electing)
{
	struct pfs_engine *r = relay_engine(MODEL, PFS_CLASS_APPLIANCE), *d = device_engine();
	struct seen *s = calloc(1, sizeof(*s));
	uint8_t b[256];
	int len = beacon_of(r, 0, b);

	cr_assert_gt(len, 0);
	cr_assert_eq(pfs_engine_recv(d, PFS_MSEC(1), &relay_addr, b, (size_t)len), 0);
	cr_assert_eq(pfs_engine_stats(d)->relay_heard, 1);
	cr_assert_geq(pfs_engine_want(d, PFS_MSEC(5), "fw/a.bin"), 0);
	drain_all(d, PFS_MSEC(5), s);
	cr_assert_eq(count_sends(s, PFS_MSG_CLAIM), 0);
	const struct pfs_action *j = find(s, PFS_ACT_SEND, PFS_MSG_JOIN);
	cr_assert_not_null(j, "JOIN to the relay at once");
	cr_assert(!j->bcast);
	cr_assert_eq(j->dst.ip, RELAY_IP);
	cr_assert_eq(j->peer_id, RELAY_IP);
	bool ev = false;
	for (int i = 0; i < s->n; i++)
		ev |= s->act[i].type == PFS_ACT_EVENT && s->act[i].event == PFS_EV_RELAY;
	cr_assert(ev, "the log says why there was no election");

	/* The relay takes the JOIN: root of that file at once, an ACCEPT. */
	cr_assert_geq(pfs_engine_want(r, PFS_MSEC(6), "fw/a.bin"), 0);
	pfs_engine_recv(r, PFS_MSEC(6), &(struct pfs_addr){ DEV_IP, PFS_PORT }, j->msg, j->len);
	drain_all(r, PFS_MSEC(6), s);
	const struct pfs_action *acc = find(s, PFS_ACT_SEND, PFS_MSG_ACCEPT);
	cr_assert_not_null(acc);
	pfs_engine_recv(d, PFS_MSEC(7), &relay_addr, acc->msg, acc->len);
	struct pfs_hier_info info;
	pfs_engine_hier_info(d, 0, &info);
	cr_assert_str_eq(info.state, "member");
	cr_assert_eq(info.parent_id, RELAY_IP);
	free(s);
	pfs_engine_free(r);
	pfs_engine_free(d);
}

/* Only a relay above our class, of our model (or every model), within
 * its hold is joined; anything else leaves the election as it was. */
Test(relay, weaker_foreign_or_expired_relays_are_not_joined)
{
	struct seen *s = calloc(1, sizeof(*s));
	uint8_t b[256];
	struct {
		const char *model;
		uint8_t class;
		pfs_time_t want_at;
		bool joins;
	} cases[] = {
		{ MODEL, PFS_CLASS_APPLIANCE, PFS_MSEC(100), true },
		{ "", PFS_CLASS_APPLIANCE, PFS_MSEC(100), true },           /* every model */
		{ "CP-7961G", PFS_CLASS_APPLIANCE, PFS_MSEC(100), false },  /* another model */
		{ MODEL, PFS_CLASS_DEVICE + 1, PFS_MSEC(100), true },
		{ MODEL, PFS_CLASS_APPLIANCE, PFS_MSEC(3001), false },      /* hold over */
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pfs_engine *r = relay_engine(cases[i].model, cases[i].class);
		struct pfs_engine *d = device_engine();
		cr_assert_not_null(r, "case %u", i);
		int len = beacon_of(r, 0, b);
		cr_assert_gt(len, 0, "case %u", i);
		pfs_engine_recv(d, 0, &relay_addr, b, (size_t)len);
		pfs_engine_want(d, cases[i].want_at, "fw/a.bin");
		drain_all(d, cases[i].want_at, s);
		cr_assert_eq(find(s, PFS_ACT_SEND, PFS_MSG_JOIN) != NULL, cases[i].joins,
			     "case %u", i);
		struct pfs_hier_info info;
		pfs_engine_hier_info(d, 0, &info);
		if (!cases[i].joins)
			cr_assert_str_eq(info.state, "claiming", "case %u", i);
		pfs_engine_free(r);
		pfs_engine_free(d);
	}
	/* A class the device has itself (or below) is no relay to it: the
	 * demoted appliance does not even beacon. */
	struct pfs_engine *r = relay_engine(MODEL, PFS_CLASS_DEVICE);
	cr_assert_eq(beacon_of(r, 0, b), -1);
	cr_assert_eq(pfs_engine_next_deadline(r), PFS_TIME_NEVER);
	pfs_engine_want(r, 0, "fw/a.bin");
	struct pfs_hier_info info;
	pfs_engine_hier_info(r, 0, &info);
	cr_assert_str_eq(info.state, "claiming", "demoted: an ordinary candidate");
	pfs_engine_free(r);
	free(s);
}

/* A device that is already listening or claiming when the beacon comes
 * joins at once; one the relay refuses elects for that file only. */
Test(relay, claimers_join_and_a_refusal_means_an_election)
{
	struct pfs_engine *r = relay_engine(MODEL, PFS_CLASS_APPLIANCE), *d = device_engine();
	struct seen *s = calloc(1, sizeof(*s));
	uint8_t b[256];
	int len = beacon_of(r, PFS_MSEC(50), b);

	pfs_engine_want(d, 0, "fw/a.bin");
	drain_all(d, 0, s);
	pfs_engine_recv(d, PFS_MSEC(50), &relay_addr, b, (size_t)len);
	drain_all(d, PFS_MSEC(50), s);
	cr_assert_not_null(find(s, PFS_ACT_SEND, PFS_MSG_JOIN), "listening: joins the relay now");

	/* The relay refuses (it is not serving this file); an older sender's
	 * REFUSE, which does not say what it answers. */
	recv_reason(d, PFS_MSEC(52), &relay_addr, PFS_MSG_REFUSE, RELAY_IP, PFS_REASON_NOT_MEMBER);
	drain_all(d, PFS_MSEC(52), s);
	struct pfs_hier_info info;
	pfs_engine_hier_info(d, 0, &info);
	cr_assert_str_eq(info.state, "claiming", "refused: elect for this file");
	/* Its next beacon does not send this file back to the relay... */
	pfs_engine_recv(d, PFS_MSEC(60), &relay_addr, b, (size_t)len);
	drain_all(d, PFS_MSEC(60), s);
	cr_assert_null(find(s, PFS_ACT_SEND, PFS_MSG_JOIN));
	/* ...but another file goes to it. */
	pfs_engine_want(d, PFS_MSEC(70), "fw/b.bin");
	drain_all(d, PFS_MSEC(70), s);
	cr_assert_not_null(find(s, PFS_ACT_SEND, PFS_MSG_JOIN));
	free(s);
	pfs_engine_free(r);
	pfs_engine_free(d);
}

/* The bytes of the first SEND of type `type` in s, copied to out. */
static size_t copy_send(const struct seen *s, uint8_t type, uint8_t *out)
{
	const struct pfs_action *a = find(s, PFS_ACT_SEND, type);

	cr_assert_not_null(a, "no %s sent", pfs_msg_type_name(type));
	memcpy(out, a->msg, a->len);
	return a->len;
}

/* Hand the first SEND of type `type` in s to engine `to`, from `from`;
 * its bytes are also copied to keep (if not NULL). Fails if there is none. */
static size_t hand(const struct seen *s, uint8_t type, struct pfs_engine *to, pfs_time_t now,
		   const struct pfs_addr *from, uint8_t *keep)
{
	const struct pfs_action *a = find(s, PFS_ACT_SEND, type);

	cr_assert_not_null(a, "no %s sent", pfs_msg_type_name(type));
	if (keep)
		memcpy(keep, a->msg, a->len);
	pfs_engine_recv(to, now, from, a->msg, a->len);
	return a->len;
}

static const char *state_of(struct pfs_engine *e)
{
	static struct pfs_hier_info info;

	pfs_engine_hier_info(e, 0, &info);
	return info.state;
}

/* The device holding the relay's beacon asks it for a slot (its JOIN in
 * s); the relay serves that file. */
static void device_joins(struct pfs_engine *r, struct pfs_engine *d, struct seen *s)
{
	uint8_t b[256];
	int len = beacon_of(r, PFS_MSEC(50), b);

	pfs_engine_recv(d, PFS_MSEC(50), &relay_addr, b, (size_t)len);
	cr_assert_geq(pfs_engine_want(d, PFS_MSEC(60), "fw/a.bin"), 0);
	drain_all(d, PFS_MSEC(60), s);
	cr_assert_geq(pfs_engine_want(r, PFS_MSEC(60), "fw/a.bin"), 0);  /* as auto-join does */
}

/* A parent that dropped a child answers each ACK it had on the way with
 * REFUSE; the child, back to JOINING that parent after the first, must not
 * take the next as the answer to its JOIN. It did: it left the relay as a
 * silent root and elected itself (found in a 64-device site under load:
 * a second WAN copy). A REFUSE now says what it answers (protocol.md 3.2). */
Test(relay, refusals_of_old_acks_do_not_refuse_a_join)
{
	struct pfs_engine *r = relay_engine(MODEL, PFS_CLASS_APPLIANCE), *d = device_engine();
	struct seen *s = calloc(1, sizeof(*s)), *t = calloc(1, sizeof(*t));
	uint8_t ack1[2048], ack2[2048];
	size_t ack1_len, ack2_len;

	device_joins(r, d, s);
	hand(s, PFS_MSG_JOIN, r, PFS_MSEC(61), &dev_addr, NULL);
	drain_all(r, PFS_MSEC(61), t);
	hand(t, PFS_MSG_ACCEPT, d, PFS_MSEC(62), &relay_addr, NULL);
	drain_all(d, PFS_MSEC(62), s);
	cr_assert_str_eq(state_of(d), "member");
	ack1_len = hand(s, PFS_MSG_ACK, r, PFS_MSEC(63), &dev_addr, ack1);
	drain_all(r, PFS_MSEC(63), t);
	pfs_engine_timeout(d, PFS_MSEC(120));
	drain_all(d, PFS_MSEC(120), s);
	ack2_len = hand(s, PFS_MSG_ACK, r, PFS_MSEC(121), &dev_addr, ack2);
	drain_all(r, PFS_MSEC(121), t);

	/* The relay drops it (here: a LEAVE from it), then both ACKs come. */
	recv_reason(r, PFS_MSEC(130), &dev_addr, PFS_MSG_LEAVE, DEV_IP, PFS_REASON_REPARENT);
	drain_all(r, PFS_MSEC(130), t);
	uint8_t refuse1[128], refuse2[128];
	size_t r1, r2;

	pfs_engine_recv(r, PFS_MSEC(131), &dev_addr, ack1, ack1_len);
	drain_all(r, PFS_MSEC(131), t);
	cr_assert_eq(count_sends(t, PFS_MSG_REFUSE), 1);
	cr_assert_eq(t->msg[0].u.reason.answers, PFS_MSG_ACK, "the REFUSE says it answers an ACK");
	r1 = copy_send(t, PFS_MSG_REFUSE, refuse1);
	pfs_engine_recv(r, PFS_MSEC(132), &dev_addr, ack2, ack2_len);
	drain_all(r, PFS_MSEC(132), t);
	r2 = copy_send(t, PFS_MSG_REFUSE, refuse2);

	/* The first: the child hears it was dropped and joins again. */
	pfs_engine_recv(d, PFS_MSEC(140), &relay_addr, refuse1, r1);
	drain_all(d, PFS_MSEC(140), s);
	cr_assert_str_eq(state_of(d), "joining");
	hand(s, PFS_MSG_JOIN, r, PFS_MSEC(150), &dev_addr, NULL);
	/* The second, the answer to its other ACK, comes before the ACCEPT. */
	pfs_engine_recv(d, PFS_MSEC(145), &relay_addr, refuse2, r2);
	drain_all(d, PFS_MSEC(145), s);
	cr_assert_str_eq(state_of(d), "joining", "an old ACK's REFUSE ended the JOIN");
	drain_all(r, PFS_MSEC(150), t);
	hand(t, PFS_MSG_ACCEPT, d, PFS_MSEC(151), &relay_addr, NULL);
	drain_all(d, PFS_MSEC(151), s);
	cr_assert_str_eq(state_of(d), "member");
	cr_assert_eq(pfs_engine_stats(d)->distrusted, 0);
	free(s);
	free(t);
	pfs_engine_free(r);
	pfs_engine_free(d);
}

/* A HEARTBEAT from the node we are joining: it took our JOIN and its ACCEPT
 * was lost. The joiner asks again at once. It sent LEAVE (as to any node
 * that counts it as a child by mistake), which freed the slot that the
 * ACCEPT of its retry came from: its ACKs were then refused. */
Test(relay, heartbeat_of_the_node_being_joined_asks_again)
{
	struct pfs_engine *r = relay_engine(MODEL, PFS_CLASS_APPLIANCE), *d = device_engine();
	struct seen *s = calloc(1, sizeof(*s)), *t = calloc(1, sizeof(*t));

	device_joins(r, d, s);
	hand(s, PFS_MSG_JOIN, r, PFS_MSEC(61), &dev_addr, NULL);
	drain_all(r, PFS_MSEC(61), t);
	cr_assert_not_null(find(t, PFS_ACT_SEND, PFS_MSG_ACCEPT));     /* lost */
	pfs_engine_timeout(r, PFS_MSEC(400));
	drain_all(r, PFS_MSEC(400), t);
	hand(t, PFS_MSG_HEARTBEAT, d, PFS_MSEC(401), &relay_addr, NULL);
	drain_all(d, PFS_MSEC(401), s);
	cr_assert_eq(count_sends(s, PFS_MSG_LEAVE), 0, "the joiner gave its slot back");
	cr_assert_eq(count_sends(s, PFS_MSG_JOIN), 1, "the joiner did not ask again");
	hand(s, PFS_MSG_JOIN, r, PFS_MSEC(402), &dev_addr, NULL);
	drain_all(r, PFS_MSEC(402), t);
	hand(t, PFS_MSG_ACCEPT, d, PFS_MSEC(403), &relay_addr, NULL);
	drain_all(d, PFS_MSEC(403), s);
	cr_assert_str_eq(state_of(d), "member");
	struct pfs_hier_info info;
	pfs_engine_hier_info(r, 0, &info);
	cr_assert_eq(info.nchildren, 1, "the relay holds %u children", info.nchildren);
	free(s);
	free(t);
	pfs_engine_free(r);
	pfs_engine_free(d);
}

static int add_appliance(struct netsim *ns, const char *path)
{
	struct pfs_engine_config c = base_config(MODEL);
	const char *wants[] = { path };

	c.priority_class = PFS_CLASS_APPLIANCE;
	c.relay = PFS_RELAY_ON;
	c.max_children = 16;
	int idx = netsim_add_node(ns, &c, wants, 1, 0);
	netsim_autojoin(ns, idx);
	netsim_lan_rate(ns, idx, 125000000);
	return idx;
}

/* A site of 40 devices and an appliance; devices want the file 1 ms apart
 * from `boot`, having been up since `up`. Every device must be in the tree
 * within `attach` of its want. */
static struct netsim *relay_site(pfs_time_t up, pfs_time_t boot, pfs_time_t attach,
				 const struct file_spec *f)
{
	struct netsim_params p = { .seed = 5, .latency = 200000, .upstream_rate = 2000000,
				   .lan_rate = 12500000 };
	struct netsim *ns = netsim_new(&p);
	const char *wants[] = { f->path };
	struct pfs_engine_config c = base_config(MODEL);

	netsim_add_file(ns, f->path, f->data, f->size);
	for (int i = 0; i < 40; i++) {
		int d = netsim_add_node(ns, &c, wants, 1, up < boot ? up : boot + PFS_MSEC(i));
		netsim_want_at(ns, d, boot + PFS_MSEC(i));
	}
	int app = add_appliance(ns, f->path);
	cr_assert(netsim_run(ns, PFS_SEC(30)));
	assert_all_files(ns, f, 1, 1);
	cr_assert_eq(netsim_upstream_starts(ns, MODEL, f->path), 1);
	cr_assert_eq(netsim_event_count(ns, PFS_EV_ROOT_CONFIRMED), 1);
	struct pfs_hier_info info;
	pfs_engine_hier_info(netsim_engine(ns, app), 0, &info);
	cr_assert(info.is_root);
	for (int i = 0; i < 40; i++) {
		pfs_time_t at = netsim_attached_at(ns, i, 0) - (boot + PFS_MSEC(i));
		cr_assert_lt(at, attach, "device %d attached %.3f s after boot", i, (double)at / 1e9);
	}
	return ns;
}

/* Devices up when the appliance beaconed, told of the file later: nobody
 * claims, the appliance fetches at the first JOIN, each device is in the
 * tree within milliseconds of wanting the file. */
Test(relay, devices_holding_the_beacon_skip_the_election)
{
	struct file_spec f = { "fw/site.bin", 300000, make_file(300000, 5) };
	struct netsim *ns = relay_site(0, PFS_MSEC(1500), PFS_MSEC(5), &f);

	cr_assert_eq(netsim_event_count(ns, PFS_EV_CLAIM_SENT), 0);
	cr_assert_eq(netsim_event_count(ns, PFS_EV_RELAY), 40);
	netsim_free(ns);
	free(f.data);
}

/* Devices that boot with it (no beacon heard yet): the first claim, after
 * at most the listen window, makes the appliance root at once; nobody
 * holds an election of four claims. */
Test(relay, devices_booting_with_the_relay_attach_within_the_listen_window)
{
	struct file_spec f = { "fw/site.bin", 300000, make_file(300000, 7) };
	struct netsim *ns = relay_site(PFS_SEC(9), PFS_MSEC(100), PFS_MSEC(250) + PFS_MSEC(20), &f);

	cr_assert_leq(netsim_event_count(ns, PFS_EV_CLAIM_SENT), 3,
		      "only the first listeners to wake claim, once");
	netsim_free(ns);
	free(f.data);
}

/* The appliance dies mid-transfer (its beacons' hold still running):
 * devices do not wait on it, they elect among themselves and finish. */
Test(relay, relay_lost_mid_transfer_devices_elect_and_finish)
{
	struct netsim_params p = { .seed = 6, .latency = 200000, .upstream_rate = 200000,
				   .lan_rate = 12500000 };
	struct netsim *ns = netsim_new(&p);
	struct file_spec f = { "fw/lost.bin", 400000, make_file(400000, 6) };
	const char *wants[] = { f.path };
	struct pfs_engine_config c = base_config(MODEL);

	netsim_add_file(ns, f.path, f.data, f.size);
	for (int i = 0; i < 12; i++)
		netsim_add_node(ns, &c, wants, 1, PFS_MSEC(100));
	int app = add_appliance(ns, f.path);
	netsim_kill_at(ns, app, PFS_MSEC(900));         /* about halfway */
	cr_assert(netsim_run(ns, PFS_SEC(60)));
	cr_assert(!netsim_alive(ns, app));
	assert_all_files(ns, &f, 1, 1);
	cr_assert_geq(netsim_event_count(ns, PFS_EV_CLAIM_SENT), 1, "an election after the loss");
	cr_assert_eq(netsim_upstream_starts(ns, MODEL, f.path), 2,
		     "the appliance's fetch and one device root's");
	cr_assert_eq(netsim_event_count(ns, PFS_EV_FALLBACK), 0);
	netsim_free(ns);
	free(f.data);
}
