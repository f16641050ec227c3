/* pfs_shm.h - the appliance's shared segment: two rings between the control
 * process and the dataplane, and each side's liveness (docs/appliance.md 3).
 *
 * One file (on /dev/shm, or on hugetlbfs) mapped by both processes, at
 * whatever address each gets: nothing in it is a pointer. It holds
 *
 *   header | ring control->dataplane | ring dataplane->control | (cache)
 *
 * Each ring is a DPDK rte_ring (element API, single producer, single
 * consumer) placed in the segment with rte_ring_init(); neither side needs
 * EAL for it. Fixed-size messages (struct pfs_ring_msg).
 *
 * Either process may start first, and either may restart while the other
 * runs: attaching creates and lays out the segment if it is new (or its
 * layout is not ours), else joins it; each attach bumps that side's
 * generation, so the other side sees the restart, and repairs the half of
 * each ring it owns in case its previous incarnation died in mid-operation.
 *
 * Functions return 0 or a negative errno.
 */
#ifndef PFS_SHM_H
#define PFS_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rte_ring;

enum pfs_shm_role {
	PFS_SHM_CONTROL = 0,    /* produces ring c2d, consumes ring d2c */
	PFS_SHM_DATAPLANE = 1,  /* produces ring d2c, consumes ring c2d */
};

#define PFS_RMSG_DATA 1480     /* a whole datagram of a 1500-byte MTU */

/* Message types on the rings (docs/appliance.md 3.2). */
enum pfs_rmsg_type {
	PFS_RMSG_PFS_RX = 1,    /* d2c: a PFS datagram the dataplane received (from ip:port) */
	PFS_RMSG_PFS_TX = 2,    /* c2d: send this PFS datagram to ip:port, or broadcast */
	PFS_RMSG_CONFIG = 3,    /* c2d: ip = our address, slot = broadcast address,
				 * value = node id, port = PFS port, hier = the
				 * sender's generation (its side's, pfs_shm_self):
				 * a new one drops the ranges queued before it */
	PFS_RMSG_SEND_CHUNKS = 4, /* c2d: send chunks [value>>32, +(value&0xffffffff))
				 * of cache file `slot` (hierarchy hier) to ip:port;
				 * data, struct pfs_rmsg_range: the file's own key
				 * (another hierarchy's when two models share one
				 * copy; a file that is not that key's is never
				 * sent) and the generation of the CONFIG it
				 * follows (another one's range is dropped) */
	PFS_RMSG_FANOUT = 5,    /* c2d: hierarchy hier, stored in cache file `slot`, is
				 * relayed by the dataplane itself: data holds a struct
				 * pfs_rmsg_fanout, value its generation; F_DELETE ends it */
	PFS_RMSG_CHUNKS_STORED = 6, /* d2c: chunks [value>>32, +(value&0xffffffff)) of hier
				 * came from ip:port (the parent), are in the cache and
				 * went to the children of struct pfs_rmsg_stored.mask */
	PFS_RMSG_TEST = 100,    /* tests */
};

struct pfs_rmsg_range {
	uint64_t entry;                 /* the cache file's own key */
	uint64_t generation;            /* the sender's, as in its CONFIG */
};

#define PFS_RMSG_F_BCAST  0x0001
#define PFS_RMSG_F_DELETE 0x0002

/* Local fan-out (docs/appliance.md 2.3): chunks of a hierarchy the appliance
 * is a member of (not root) are stored and replicated by the dataplane as
 * they arrive from the parent, without the round trip through pfs-control.
 * Children sit in the engine's slots, so a mask names them across messages;
 * a message of another generation than the table control holds is ignored. */
#define PFS_FANOUT_SLOTS 16

struct pfs_rmsg_fanout {
	uint32_t parent_ip;
	uint16_t parent_port;
	uint16_t pad;
	uint32_t chunk_size;
	uint32_t generation;
	struct {
		uint32_t ip;            /* 0: slot empty or child not ready */
		uint16_t port;
		uint16_t pad;
	} child[PFS_FANOUT_SLOTS];
	/* With PFS_FANOUT_VERIFY, chunk i must match the 16 bytes at
	 * digests_off + 16 i of cache file digests_fi (a signed manifest's
	 * digest list) before it is stored or relayed; digests_gen: that
	 * file's generation, which the dataplane holds it at (another file
	 * in the slot has other bytes there). */
	uint32_t flags;
	uint32_t digests_fi;
	uint32_t digests_off;
	uint32_t digests_gen;
};

#define PFS_FANOUT_VERIFY 0x1

struct pfs_rmsg_stored {
	uint32_t generation;    /* of the table the chunks were relayed with */
	uint32_t sender;        /* node id in the parent's DATA headers */
	uint32_t chunk_len;     /* every chunk of the run has this length */
	uint16_t mask;          /* child slots each chunk was sent to */
	uint16_t pad;
};

struct pfs_ring_msg {
	uint16_t type;
	uint16_t len;           /* bytes of data used */
	uint16_t flags;
	uint16_t port;          /* peer UDP port, host order */
	uint32_t ip;            /* peer IPv4, host order */
	uint32_t slot;
	uint64_t hier;
	uint64_t value;
	uint8_t data[PFS_RMSG_DATA];
};
_Static_assert(sizeof(struct pfs_ring_msg) == 1512, "ring message layout");
_Static_assert(sizeof(struct pfs_ring_msg) % 8 == 0, "rte_ring element size");

struct pfs_shm_params {
	uint32_t ring_count;    /* slots per ring, a power of two (capacity is one less) */
	uint64_t cache_bytes;   /* reserved for the chunk cache */
};

struct pfs_shm_side_info {
	uint64_t generation;    /* attaches so far; 0 = never attached */
	uint64_t heartbeat_ns;  /* CLOCK_MONOTONIC of its last beat */
	int32_t pid;            /* 0 once it detached cleanly */
};

struct pfs_shm;

/* Attach as role to the segment file at path, creating it if needed. A
 * segment laid out with other parameters is re-laid out only if no other
 * process is attached to it (-EBUSY otherwise). With p->ring_count 0, adopt
 * the layout the segment has: -ENOENT while nobody has laid it out. */
int pfs_shm_attach(const char *path, enum pfs_shm_role role,
		   const struct pfs_shm_params *p, struct pfs_shm **out);
/* Detach: mark this side gone (pid 0) and unmap. The segment stays. */
void pfs_shm_detach(struct pfs_shm *s);
int pfs_shm_unlink(const char *path);

/* Enqueue on this side's outgoing ring: 0, or -ENOBUFS when it is full. */
int pfs_shm_send(struct pfs_shm *s, const struct pfs_ring_msg *m);
/* Dequeue from the incoming ring: 1 and *m, or 0 when it is empty. */
int pfs_shm_recv(struct pfs_shm *s, struct pfs_ring_msg *m);
/* Bulk variants for the dataplane's burst loop: how many moved. */
unsigned pfs_shm_send_burst(struct pfs_shm *s, const struct pfs_ring_msg *m, unsigned n);
unsigned pfs_shm_recv_burst(struct pfs_shm *s, struct pfs_ring_msg *m, unsigned n);

/* Publish our heartbeat (call every few hundred ms). */
void pfs_shm_beat(struct pfs_shm *s, uint64_t now_ns);
void pfs_shm_peer(const struct pfs_shm *s, struct pfs_shm_side_info *out);
void pfs_shm_self(const struct pfs_shm *s, struct pfs_shm_side_info *out);
/* True when the other side is attached and beat within timeout_ns. */
bool pfs_shm_peer_alive(const struct pfs_shm *s, uint64_t now_ns, uint64_t timeout_ns);
/* True once after each restart of the other side (its generation moved):
 * the caller re-sends whatever state the other side needs. */
bool pfs_shm_peer_restarted(struct pfs_shm *s);

/* The doorbell (pfs-control sleeps in epoll instead of polling its ring):
 * the reader (control) makes and opens the FIFO at path and gets its fd to
 * wait on; the writer (dataplane) opens it, -ENXIO until the reader has,
 * and from then on rings it when it enqueues to a sleeping reader. */
int pfs_shm_bell_open(struct pfs_shm *s, const char *path, bool reader);
/* Reader, before waiting: true if it may sleep (the writer can ring, and
 * nothing is queued: checked after saying so, so no message is missed). */
bool pfs_shm_sleep(struct pfs_shm *s);
/* Reader, after waiting: not sleeping any more; the FIFO emptied. */
void pfs_shm_woken(struct pfs_shm *s);
/* Writer: rings made so far. */
uint64_t pfs_shm_bell_rings(const struct pfs_shm *s);

unsigned pfs_shm_capacity(const struct pfs_shm *s);
unsigned pfs_shm_out_count(const struct pfs_shm *s);
void *pfs_shm_cache(const struct pfs_shm *s, uint64_t *bytes);
/* A page the dataplane publishes its counters in (struct pfs_dp_stats). */
#define PFS_SHM_STATS_BYTES 4096
void *pfs_shm_stats(const struct pfs_shm *s);
/* This side's outgoing ring, for diagnostics and tests. */
struct rte_ring *pfs_shm_out_ring(struct pfs_shm *s);

#endif /* PFS_SHM_H */
