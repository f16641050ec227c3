/* gso.h - a batch of datagrams as few sendmmsg messages as UDP GSO allows.
 *
 * A node relaying a file sends each chunk to each of its children: under
 * load a loop turn queues runs of equal-sized DATA datagrams to the same
 * few destinations. With UDP_SEGMENT (Linux 4.18) a run to one destination
 * goes down as one message, one pass through the socket, UDP and IP layers,
 * and is cut into its datagrams below them (by the NIC where it can, else
 * in software at the device). What the wire carries is the same datagrams;
 * a receiver cannot tell. Measured in bench/RESULTS.md 3.8.
 *
 * The rules the kernel sets for one segmented message, which gso_plan keeps:
 * one destination; every datagram but the last exactly the segment size,
 * the last at most that; the segment size within the path's MTU; the sum
 * at most GSO_MAX_BYTES and at most GSO_MAX_SEGS datagrams. A broadcast
 * is never segmented. Order: each destination's datagrams leave in the order
 * they were queued; between destinations, order is not kept (UDP never
 * promised it between two receivers).
 *
 * Pure: no socket here (peer/udp.c sends the plan), so it is unit-tested
 * against every rule (tests/test_gso.c).
 */
#ifndef PFS_PEER_GSO_H
#define PFS_PEER_GSO_H

#include <stdbool.h>
#include <stdint.h>

#define GSO_MAX_SEGS    64              /* the kernel's UDP_MAX_SEGMENTS from 4.18 on */
#define GSO_MAX_BYTES   (65535 - 20 - 8) /* one IPv4 datagram's UDP payload */
#define GSO_BATCH_MAX   256             /* datagrams one plan takes at most */

/* One queued datagram: where it goes and how long it is. */
struct gso_dgram {
	uint32_t ip;                    /* host order */
	uint16_t port;
	bool bcast;
	uint32_t len;
};

/* One message of the plan: order[first .. first + count), all to one
 * destination; seg: the segment size to ask for, 0 when count is 1 (a
 * plain datagram). */
struct gso_msg {
	uint16_t first, count;
	uint16_t seg;
};

/* Plan n (<= GSO_BATCH_MAX) datagrams: order[] gets their indices grouped
 * by destination, msgs[] the messages over it (at most n); max_seg: the
 * largest datagram the path carries unfragmented (MTU - 28), 0 to segment
 * nothing. Returns the number of messages. */
unsigned gso_plan(const struct gso_dgram *d, unsigned n, uint32_t max_seg, uint16_t *order,
		  struct gso_msg *msgs);

#endif /* PFS_PEER_GSO_H */
