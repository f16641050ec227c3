/* test_shm.c - the control/dataplane shared segment and its rings. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <rte_ring.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pfs_shm.h"

static char path[128];
static const struct pfs_shm_params small = { .ring_count = 8, .cache_bytes = 1 << 16 };

static void setup(void)
{
	static int n;
	snprintf(path, sizeof(path), "/dev/shm/pfs-test-%d-%d", getpid(), n++);
}

static void teardown(void)
{
	unlink(path);
}

TestSuite(shm, .init = setup, .fini = teardown);

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct pfs_ring_msg msg(uint64_t seq)
{
	struct pfs_ring_msg m = { .type = PFS_RMSG_TEST, .value = seq, .len = 16 };
	for (int i = 0; i < 16; i++)
		m.data[i] = (uint8_t)(seq * 31 + (uint64_t)i);
	return m;
}

static void check(const struct pfs_ring_msg *m, uint64_t seq)
{
	struct pfs_ring_msg want = msg(seq);
	cr_assert_eq(m->value, seq, "got message %llu, want %llu",
		     (unsigned long long)m->value, (unsigned long long)seq);
	cr_assert_eq(memcmp(m, &want, sizeof(want)), 0, "message %llu corrupted",
		     (unsigned long long)seq);
}

Test(shm, both_directions_across_two_mappings)
{
	struct pfs_shm *c, *d;
	struct pfs_ring_msg m, got;

	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_CONTROL, &small, &c), 0);
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_DATAPLANE, &small, &d), 0);
	m = msg(1);
	cr_assert_eq(pfs_shm_send(c, &m), 0);
	cr_assert_eq(pfs_shm_recv(c, &got), 0, "control must not read its own ring");
	cr_assert_eq(pfs_shm_recv(d, &got), 1);
	check(&got, 1);
	m = msg(2);
	cr_assert_eq(pfs_shm_send(d, &m), 0);
	cr_assert_eq(pfs_shm_recv(c, &got), 1);
	check(&got, 2);
	cr_assert_eq(pfs_shm_recv(d, &got), 0);
	uint64_t bytes;
	cr_assert_not_null(pfs_shm_cache(c, &bytes));
	cr_assert_eq(bytes, 1 << 16);
	pfs_shm_detach(c);
	pfs_shm_detach(d);
}

Test(shm, full_ring_refuses_then_accepts)
{
	struct pfs_shm *c, *d;
	struct pfs_ring_msg m = msg(0), got;
	unsigned sent = 0;

	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_CONTROL, &small, &c), 0);
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_DATAPLANE, &small, &d), 0);
	cr_assert_eq(pfs_shm_capacity(c), 7);
	while (pfs_shm_send(c, &m) == 0)
		m = msg(++sent);
	cr_assert_eq(sent, 7, "a ring of 8 slots holds 7");
	cr_assert_eq(pfs_shm_send(c, &m), -ENOBUFS);
	cr_assert_eq(pfs_shm_recv(d, &got), 1);
	check(&got, 0);
	cr_assert_eq(pfs_shm_send(c, &m), 0, "one slot freed, one accepted");
	for (uint64_t i = 1; i <= 7; i++) {
		cr_assert_eq(pfs_shm_recv(d, &got), 1);
		check(&got, i);
	}
	cr_assert_eq(pfs_shm_recv(d, &got), 0);
	pfs_shm_detach(c);
	pfs_shm_detach(d);
}

Test(shm, wrap_around_keeps_order)
{
	struct pfs_shm *c, *d;
	struct pfs_ring_msg batch[5], got[5];
	uint64_t next_send = 0, next_recv = 0;

	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_CONTROL, &small, &c), 0);
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_DATAPLANE, &small, &d), 0);
	/* Bursts of 5 through 7 slots: the indexes wrap every step or two. */
	while (next_recv < 10000) {
		for (int i = 0; i < 5; i++)
			batch[i] = msg(next_send + (uint64_t)i);
		next_send += pfs_shm_send_burst(c, batch, 5);
		unsigned n = pfs_shm_recv_burst(d, got, 3);
		for (unsigned i = 0; i < n; i++)
			check(&got[i], next_recv++);
	}
	pfs_shm_detach(c);
	pfs_shm_detach(d);
}

Test(shm, restart_keeps_queued_messages_and_bumps_generation)
{
	struct pfs_shm *c, *d;
	struct pfs_ring_msg m, got;
	struct pfs_shm_side_info info;

	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_CONTROL, &small, &c), 0);
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_DATAPLANE, &small, &d), 0);
	cr_assert(pfs_shm_peer_restarted(c), "control sees the dataplane arrive");
	cr_assert_not(pfs_shm_peer_restarted(c), "and only once");
	for (uint64_t i = 0; i < 3; i++) {
		m = msg(i);
		cr_assert_eq(pfs_shm_send(c, &m), 0);
	}
	pfs_shm_detach(d);                      /* the dataplane goes away */
	pfs_shm_peer(c, &info);
	cr_assert_eq(info.pid, 0, "a clean detach clears the pid");
	cr_assert_not(pfs_shm_peer_alive(c, now_ns(), 1000000000));
	m = msg(3);
	cr_assert_eq(pfs_shm_send(c, &m), 0, "control goes on queueing meanwhile");
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_DATAPLANE, &small, &d), 0);
	cr_assert(pfs_shm_peer_restarted(c), "control sees the restart");
	pfs_shm_peer(c, &info);
	cr_assert_eq(info.generation, 2);
	pfs_shm_beat(d, now_ns());
	cr_assert(pfs_shm_peer_alive(c, now_ns(), 1000000000));
	for (uint64_t i = 0; i < 4; i++) {
		cr_assert_eq(pfs_shm_recv(d, &got), 1, "message %llu lost", (unsigned long long)i);
		check(&got, i);
	}
	pfs_shm_detach(c);
	pfs_shm_detach(d);
}

/* A producer killed between claiming slots and publishing them. */
Test(shm, half_done_enqueue_is_repaired_on_reattach)
{
	struct pfs_shm *c, *d;
	struct pfs_ring_msg m = msg(0), got;
	struct rte_ring *r;

	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_CONTROL, &small, &c), 0);
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_DATAPLANE, &small, &d), 0);
	cr_assert_eq(pfs_shm_send(c, &m), 0);
	/* Forge the crash: the producer head moves two slots on, the tail
	 * (what the consumer may read) does not. */
	r = pfs_shm_out_ring(c);
	r->prod.head += 2;
	pfs_shm_detach(c);
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_CONTROL, &small, &c), 0);
	m = msg(1);
	cr_assert_eq(pfs_shm_send(c, &m), 0);
	cr_assert_eq(pfs_shm_recv(d, &got), 1);
	check(&got, 0);
	cr_assert_eq(pfs_shm_recv(d, &got), 1);
	check(&got, 1);                 /* not one of the two half-written slots */
	cr_assert_eq(pfs_shm_recv(d, &got), 0, "half-written slots were delivered");
	pfs_shm_detach(c);
	pfs_shm_detach(d);
}

Test(shm, other_layout_while_peer_alive_is_refused)
{
	struct pfs_shm *c, *d;
	const struct pfs_shm_params big = { .ring_count = 16, .cache_bytes = 1 << 16 };

	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_CONTROL, &small, &c), 0);
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_DATAPLANE, &big, &d), -EBUSY);
	pfs_shm_detach(c);
	/* Nobody left on it: the new layout wins. */
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_DATAPLANE, &big, &d), 0);
	pfs_shm_detach(d);
	const struct pfs_shm_params bad = { .ring_count = 12 };
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_CONTROL, &bad, &c), -EINVAL);
}

/* The dataplane side in a real process: echo every message back. */
static void echo_child(void)
{
	struct pfs_shm *d;
	struct pfs_ring_msg m;

	if (pfs_shm_attach(path, PFS_SHM_DATAPLANE, &small, &d) < 0)
		_exit(2);
	for (;;) {
		pfs_shm_beat(d, now_ns());
		if (pfs_shm_recv(d, &m) == 1) {
			while (pfs_shm_send(d, &m) < 0)
				;
		}
	}
}

/* Wait (bounded) for the next message from the peer. */
static int recv_wait(struct pfs_shm *s, struct pfs_ring_msg *m)
{
	uint64_t deadline = now_ns() + 5000000000ull;
	while (now_ns() < deadline) {
		if (pfs_shm_recv(s, m) == 1)
			return 1;
		sched_yield();
	}
	return 0;
}

Test(shm, peer_process_killed_and_restarted, .timeout = 30)
{
	struct pfs_shm *c;
	struct pfs_ring_msg m, got;
	uint64_t seq = 0;
	pid_t pid;

	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_CONTROL, &small, &c), 0);
	for (int round = 0; round < 2; round++) {
		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0)
			echo_child();
		for (int i = 0; i < 100; i++, seq++) {
			m = msg(seq);
			while (pfs_shm_send(c, &m) < 0)
				sched_yield();
			cr_assert_eq(recv_wait(c, &got), 1, "round %d: no echo of %llu", round,
				     (unsigned long long)seq);
			check(&got, seq);
		}
		cr_assert(pfs_shm_peer_restarted(c) || round > 0);
		cr_assert(pfs_shm_peer_alive(c, now_ns(), 2000000000ull));
		kill(pid, SIGKILL);                     /* no clean detach */
		cr_assert_eq(waitpid(pid, NULL, 0), pid);
		struct pfs_shm_side_info info;
		pfs_shm_peer(c, &info);
		cr_assert_eq(info.generation, (uint64_t)round + 1);
	}
	pfs_shm_detach(c);
}

Test(shm, dataplane_adopts_the_layout_control_made)
{
	struct pfs_shm *c, *d;
	const struct pfs_shm_params adopt = { 0 };

	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_DATAPLANE, &adopt, &d), -ENOENT);
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_CONTROL, &small, &c), 0);
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_DATAPLANE, &adopt, &d), 0);
	cr_assert_eq(pfs_shm_capacity(d), pfs_shm_capacity(c));
	struct pfs_ring_msg m = msg(7), got;
	cr_assert_eq(pfs_shm_send(c, &m), 0);
	cr_assert_eq(pfs_shm_recv(d, &got), 1);
	check(&got, 7);
	pfs_shm_detach(d);
	pfs_shm_detach(c);
}

static bool bell_rang(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* The doorbell: control may sleep only once the dataplane can ring it and
 * its ring is empty; an enqueue to a sleeper rings once; a ring with a
 * message waiting keeps control awake; a dataplane that goes away is not
 * waited for. */
Test(shm, doorbell_wakes_a_sleeping_reader_once)
{
	char bell[160];
	struct pfs_shm *c, *d;
	struct pfs_ring_msg m = msg(1), got;
	int fd;

	snprintf(bell, sizeof(bell), "%s.bell", path);
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_CONTROL, &small, &c), 0);
	cr_assert_eq(pfs_shm_attach(path, PFS_SHM_DATAPLANE, &small, &d), 0);
	cr_assert_eq(pfs_shm_bell_open(d, bell, false), -ENOENT, "no FIFO before the reader");
	fd = pfs_shm_bell_open(c, bell, true);
	cr_assert_geq(fd, 0);
	cr_assert_not(pfs_shm_sleep(c), "the dataplane cannot ring yet: poll");
	cr_assert_eq(pfs_shm_bell_open(d, bell, false), 0);
	cr_assert(pfs_shm_sleep(c));
	cr_assert_not(bell_rang(fd));
	cr_assert_eq(pfs_shm_send(d, &m), 0);
	cr_assert(bell_rang(fd), "an enqueue to a sleeper rings");
	cr_assert_eq(pfs_shm_send(d, &m), 0);
	cr_assert_eq(pfs_shm_bell_rings(d), 1, "rung once, not per message");
	pfs_shm_woken(c);
	cr_assert_not(bell_rang(fd), "woken: the FIFO is empty");
	cr_assert_not(pfs_shm_sleep(c), "messages wait: no sleeping");
	cr_assert_eq(pfs_shm_recv(c, &got), 1);
	cr_assert_eq(pfs_shm_recv(c, &got), 1);
	cr_assert(pfs_shm_sleep(c));
	pfs_shm_detach(d);
	pfs_shm_woken(c);
	cr_assert_not(pfs_shm_sleep(c), "the dataplane went away: poll again");
	pfs_shm_detach(c);
	unlink(bell);
}
