/* pfs_shm.c - the appliance's shared segment (see pfs_shm.h).
 *
 * Setup races (both processes starting at once) are settled by an exclusive
 * flock() on the segment file held while creating or checking the layout.
 * After that, the rings are lock-free: each has one producer and one
 * consumer, and the liveness words are written by their owner only.
 */
#include "pfs_shm.h"

#include <errno.h>
#include <fcntl.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHM_MAGIC   0x3130304d48534650ull   /* "PFSHM001" little-endian */
#define SHM_VERSION 2
#define SHM_ALIGN   4096

struct shm_side {
	_Atomic uint64_t generation;
	_Atomic uint64_t heartbeat_ns;
	_Atomic int32_t pid;
	_Atomic uint32_t sleeping;      /* doorbell: ring me on the next enqueue */
	_Atomic uint32_t bell_ok;       /* doorbell: I can ring the other side */
	uint8_t pad[64 - 28];           /* one cache line per writer */
};

struct shm_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t msg_size;
	uint32_t ring_count;
	uint32_t reserved;
	uint64_t total_size;
	uint64_t ring_off[2];           /* [0] control->dataplane, [1] dataplane->control */
	uint64_t cache_off, cache_bytes;
	uint64_t stats_off;
	uint8_t pad[56];
	struct shm_side side[2];        /* indexed by enum pfs_shm_role */
};

struct pfs_shm {
	int fd;
	int bell_fd;                    /* the doorbell FIFO, -1 none */
	uint64_t rings;                 /* doorbell writes made */
	enum pfs_shm_role role;
	uint8_t *base;
	size_t size;
	struct shm_hdr *h;
	struct rte_ring *out, *in;
	uint64_t peer_gen_seen;
};

static uint64_t align_up(uint64_t v) { return (v + SHM_ALIGN - 1) & ~(uint64_t)(SHM_ALIGN - 1); }

static int layout(const struct pfs_shm_params *p, struct shm_hdr *want)
{
	ssize_t ring_bytes;

	if (p->ring_count < 2 || (p->ring_count & (p->ring_count - 1)))
		return -EINVAL;
	ring_bytes = rte_ring_get_memsize_elem(sizeof(struct pfs_ring_msg), p->ring_count);
	if (ring_bytes < 0)
		return (int)ring_bytes;
	memset(want, 0, sizeof(*want));
	want->magic = SHM_MAGIC;
	want->version = SHM_VERSION;
	want->msg_size = sizeof(struct pfs_ring_msg);
	want->ring_count = p->ring_count;
	want->stats_off = align_up(sizeof(struct shm_hdr));
	want->ring_off[0] = want->stats_off + align_up(PFS_SHM_STATS_BYTES);
	want->ring_off[1] = want->ring_off[0] + align_up((uint64_t)ring_bytes);
	want->cache_off = want->ring_off[1] + align_up((uint64_t)ring_bytes);
	want->cache_bytes = align_up(p->cache_bytes);
	want->total_size = want->cache_off + want->cache_bytes;
	return 0;
}

static bool same_layout(const struct shm_hdr *a, const struct shm_hdr *b)
{
	return a->magic == b->magic && a->version == b->version && a->msg_size == b->msg_size &&
	       a->ring_count == b->ring_count && a->total_size == b->total_size &&
	       a->ring_off[0] == b->ring_off[0] && a->ring_off[1] == b->ring_off[1] &&
	       a->cache_off == b->cache_off && a->cache_bytes == b->cache_bytes &&
	       a->stats_off == b->stats_off;
}

/* A process that attached and has not detached, and still exists. */
static bool side_present(const struct shm_side *s)
{
	int32_t pid = atomic_load(&s->pid);
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static int init_segment(struct pfs_shm *s, const struct shm_hdr *want)
{
	struct shm_hdr *h = (struct shm_hdr *)s->base;

	memset(s->base, 0, want->cache_off);    /* the cache region is the cache's */
	*h = *want;
	for (int i = 0; i < 2; i++) {
		struct rte_ring *r = (struct rte_ring *)(s->base + h->ring_off[i]);
		int rc = rte_ring_init(r, i ? "pfs_d2c" : "pfs_c2d", h->ring_count,
				       RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Our previous incarnation may have died between moving a ring head and
 * publishing the tail: whatever it half-did is dropped, so the slots it
 * claimed are neither lost for good nor delivered half-written. */
static void repair_own_halves(struct pfs_shm *s)
{
	__atomic_store_n(&s->out->prod.head, __atomic_load_n(&s->out->prod.tail, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
	__atomic_store_n(&s->in->cons.head, __atomic_load_n(&s->in->cons.tail, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
}

static int map_file(struct pfs_shm *s, size_t size)
{
	struct stat st;

	if (fstat(s->fd, &st) < 0)
		return -errno;
	if ((size_t)st.st_size != size && ftruncate(s->fd, (off_t)size) < 0)
		return -errno;
	s->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
	if (s->base == MAP_FAILED) {
		s->base = NULL;
		return -errno;
	}
	s->size = size;
	return 0;
}

int pfs_shm_attach(const char *path, enum pfs_shm_role role,
		   const struct pfs_shm_params *p, struct pfs_shm **out)
{
	struct shm_hdr want, have;
	struct pfs_shm *s;
	struct stat st;
	int rc;

	bool adopt = p->ring_count == 0;

	if (role != PFS_SHM_CONTROL && role != PFS_SHM_DATAPLANE)
		return -EINVAL;
	if (!adopt && (rc = layout(p, &want)) < 0)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->role = role;
	s->bell_fd = -1;
	s->fd = open(path, O_RDWR | O_CLOEXEC | (adopt ? 0 : O_CREAT), 0660);
	if (s->fd < 0) {
		rc = errno == ENOENT && adopt ? -ENOENT : -errno;
		goto err_free;
	}
	if (flock(s->fd, LOCK_EX) < 0 || fstat(s->fd, &st) < 0) {
		rc = -errno;
		goto err_close;
	}
	memset(&have, 0, sizeof(have));
	if ((size_t)st.st_size >= sizeof(have) && pread(s->fd, &have, sizeof(have), 0) < 0) {
		rc = -errno;
		goto err_close;
	}
	if (adopt) {
		/* Take the layout the segment has; none yet is "not there yet". */
		if (have.magic != SHM_MAGIC || have.version != SHM_VERSION ||
		    have.msg_size != sizeof(struct pfs_ring_msg) ||
		    (uint64_t)st.st_size != have.total_size) {
			rc = -ENOENT;
			goto err_close;
		}
		want = have;
	}
	if (!same_layout(&have, &want)) {
		/* New, or laid out by another build or configuration: lay it out
		 * again, unless the other side still uses it. */
		if (have.magic == SHM_MAGIC && side_present(&have.side[!role])) {
			rc = -EBUSY;
			goto err_close;
		}
		if ((rc = map_file(s, want.total_size)) < 0 || (rc = init_segment(s, &want)) < 0)
			goto err_unmap;
	} else if ((rc = map_file(s, want.total_size)) < 0) {
		goto err_unmap;
	}
	s->h = (struct shm_hdr *)s->base;
	s->out = (struct rte_ring *)(s->base + s->h->ring_off[role == PFS_SHM_CONTROL ? 0 : 1]);
	s->in = (struct rte_ring *)(s->base + s->h->ring_off[role == PFS_SHM_CONTROL ? 1 : 0]);
	repair_own_halves(s);
	atomic_fetch_add(&s->h->side[role].generation, 1);
	atomic_store(&s->h->side[role].pid, (int32_t)getpid());
	s->peer_gen_seen = atomic_load(&s->h->side[!role].generation);
	flock(s->fd, LOCK_UN);
	*out = s;
	return 0;

err_unmap:
	if (s->base)
		munmap(s->base, s->size);
err_close:
	close(s->fd);
err_free:
	free(s);
	return rc;
}

void pfs_shm_detach(struct pfs_shm *s)
{
	if (!s)
		return;
	atomic_store(&s->h->side[s->role].pid, 0);
	atomic_store(&s->h->side[s->role].bell_ok, 0);
	atomic_store(&s->h->side[s->role].sleeping, 0);
	if (s->bell_fd >= 0)
		close(s->bell_fd);
	munmap(s->base, s->size);
	close(s->fd);
	free(s);
}

int pfs_shm_unlink(const char *path)
{
	return unlink(path) < 0 ? -errno : 0;
}

/* After an enqueue: if the other side said it sleeps, wake it (once). The
 * fence pairs with pfs_shm_sleep's: either it sees our message before it
 * sleeps, or we see its flag here. */
static void ring_bell(struct pfs_shm *s)
{
	struct shm_side *peer = &s->h->side[!s->role];

	if (s->bell_fd < 0)
		return;
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&peer->sleeping, memory_order_relaxed) &&
	    atomic_exchange(&peer->sleeping, 0)) {
		static const char b = 1;
		if (write(s->bell_fd, &b, 1) == 1)      /* EAGAIN: already ringing */
			s->rings++;
	}
}

int pfs_shm_send(struct pfs_shm *s, const struct pfs_ring_msg *m)
{
	if (rte_ring_sp_enqueue_elem(s->out, (void *)(uintptr_t)m, sizeof(*m)) != 0)
		return -ENOBUFS;
	ring_bell(s);
	return 0;
}

int pfs_shm_recv(struct pfs_shm *s, struct pfs_ring_msg *m)
{
	return rte_ring_sc_dequeue_elem(s->in, m, sizeof(*m)) == 0;
}

unsigned pfs_shm_send_burst(struct pfs_shm *s, const struct pfs_ring_msg *m, unsigned n)
{
	unsigned sent = rte_ring_sp_enqueue_burst_elem(s->out, m, sizeof(*m), n, NULL);

	if (sent)
		ring_bell(s);
	return sent;
}

/* The doorbell is a FIFO beside the segment: the side that sleeps reads it
 * (it makes it, and opens it read-write so it never sees an end), the other
 * writes a byte when it enqueues to a sleeper. */
int pfs_shm_bell_open(struct pfs_shm *s, const char *path, bool reader)
{
	int fd;

	if (s->bell_fd >= 0)
		return reader ? s->bell_fd : 0;
	if (reader && mkfifo(path, 0600) < 0 && errno != EEXIST)
		return -errno;
	fd = open(path, (reader ? O_RDWR : O_WRONLY) | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;          /* writer: ENXIO until the reader has it open */
	s->bell_fd = fd;
	if (!reader)
		atomic_store(&s->h->side[s->role].bell_ok, 1);
	return reader ? fd : 0;
}

bool pfs_shm_sleep(struct pfs_shm *s)
{
	struct shm_side *me = &s->h->side[s->role];

	if (s->bell_fd < 0 || !atomic_load(&s->h->side[!s->role].bell_ok))
		return false;
	atomic_store(&me->sleeping, 1);
	atomic_thread_fence(memory_order_seq_cst);
	if (rte_ring_count(s->in)) {
		atomic_store(&me->sleeping, 0);
		return false;
	}
	return true;
}

void pfs_shm_woken(struct pfs_shm *s)
{
	char buf[64];

	atomic_store(&s->h->side[s->role].sleeping, 0);
	while (s->bell_fd >= 0 && read(s->bell_fd, buf, sizeof(buf)) > 0)
		;
}

uint64_t pfs_shm_bell_rings(const struct pfs_shm *s)
{
	return s->rings;
}

unsigned pfs_shm_recv_burst(struct pfs_shm *s, struct pfs_ring_msg *m, unsigned n)
{
	return rte_ring_sc_dequeue_burst_elem(s->in, m, sizeof(*m), n, NULL);
}

void pfs_shm_beat(struct pfs_shm *s, uint64_t now_ns)
{
	atomic_store_explicit(&s->h->side[s->role].heartbeat_ns, now_ns, memory_order_release);
}

static void side_info(const struct shm_side *side, struct pfs_shm_side_info *o)
{
	o->generation = atomic_load(&side->generation);
	o->heartbeat_ns = atomic_load(&side->heartbeat_ns);
	o->pid = atomic_load(&side->pid);
}

void pfs_shm_peer(const struct pfs_shm *s, struct pfs_shm_side_info *o)
{
	side_info(&s->h->side[!s->role], o);
}

void pfs_shm_self(const struct pfs_shm *s, struct pfs_shm_side_info *o)
{
	side_info(&s->h->side[s->role], o);
}

bool pfs_shm_peer_alive(const struct pfs_shm *s, uint64_t now_ns, uint64_t timeout_ns)
{
	struct pfs_shm_side_info p;

	pfs_shm_peer(s, &p);
	/* The peer may beat between the caller reading its clock and this
	 * load: a beat from "the future" is alive, not a wrapped difference. */
	return p.pid > 0 && p.heartbeat_ns && p.heartbeat_ns + timeout_ns >= now_ns;
}

bool pfs_shm_peer_restarted(struct pfs_shm *s)
{
	uint64_t g = atomic_load(&s->h->side[!s->role].generation);

	if (g == s->peer_gen_seen)
		return false;
	s->peer_gen_seen = g;
	return true;
}

unsigned pfs_shm_capacity(const struct pfs_shm *s) { return rte_ring_get_capacity(s->out); }
unsigned pfs_shm_out_count(const struct pfs_shm *s) { return rte_ring_count(s->out); }

void *pfs_shm_cache(const struct pfs_shm *s, uint64_t *bytes)
{
	*bytes = s->h->cache_bytes;
	return s->base + s->h->cache_off;
}

struct rte_ring *pfs_shm_out_ring(struct pfs_shm *s) { return s->out; }

void *pfs_shm_stats(const struct pfs_shm *s)
{
	return s->base + s->h->stats_off;
}
