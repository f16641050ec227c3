/* pfs_driver.h - one way from the engine's actions to a driver's I/O.
 *
 * pfs-peer (sockets and files), pfs-control (the dataplane's rings and the
 * chunk cache) and pfs-sim (an in-memory network) each carry out the same
 * actions their own way. Each gives an ops table, a function per action
 * type, and pfs_drive() is the one drain loop they all run after giving
 * the engine an event:
 *
 *   event in (recv, timeout, upstream progress, file_hashed...)
 *     -> pfs_drive: while pfs_engine_poll() has an action -> ops->X(ctx, a)
 *
 * The rule for calling into the engine from an op: an op may call the
 * engine's entry points (pfs_engine_store_failed, _upstream_failed,
 * _file_hashed...); what they queue is carried out by the same pfs_drive
 * call. An op must not call pfs_drive itself. A WRITE_CHUNK's data points
 * into the buffer the event came in: drive before reusing it.
 */
#ifndef PFS_DRIVER_H
#define PFS_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "pfs_engine.h"

typedef void pfs_driver_op(void *ctx, const struct pfs_action *a);

struct pfs_driver_ops {
	pfs_time_t (*now)(void *ctx);   /* the time each poll is made at */
	bool need_user;                 /* drop the actions of a hierarchy the driver
					 * gave no user pointer (one it did not make) */
	pfs_driver_op *send;            /* PFS_ACT_SEND: msg[len] to dst, or broadcast */
	pfs_driver_op *send_chunk;      /* read chunk index, send it (pfs_chunk_datagram) */
	pfs_driver_op *write_chunk;     /* store data[len] at offset */
	pfs_driver_op *upstream_start;
	pfs_driver_op *upstream_abort;
	pfs_driver_op *manifest_ok;
	pfs_driver_op *hash_file;       /* answer with pfs_engine_file_hashed */
	pfs_driver_op *file_done;
	pfs_driver_op *file_failed;
	pfs_driver_op *event;
};

/* Every action the engine has now, each to its op (a NULL op: nothing to
 * do for it, as a node that is down has for any). buf holds encoded
 * messages: PFS_DGRAM_MAX bytes. The number of actions. */
unsigned pfs_drive(struct pfs_engine *e, const struct pfs_driver_ops *ops, void *ctx,
		   uint8_t *buf, size_t cap);

/* Upstream bytes [off, off + len) of hidx into the driver's storage, by
 * store(ctx, off, data, len), except those of chunks the engine already
 * holds checked against the signed manifest. A fetch that started over
 * (TFTP cannot resume) must not replace bytes that were checked, and maybe
 * sent on or served since, with what the server sends this time: a server
 * whose file changed, or a path that corrupts, would have them forwarded
 * unchecked. The engine still checks the new bytes
 * (pfs_engine_upstream_write(), called after this) and fails the fetch if
 * they differ. An unsigned file is stored whole, as it comes: its digest
 * is the last fetch's. 0, or store's first error. */
typedef int pfs_store_fn(void *ctx, uint64_t off, const uint8_t *data, size_t len);
int pfs_upstream_store(const struct pfs_engine *e, int hidx, uint64_t off, const uint8_t *data,
		       size_t len, pfs_store_fn *store, void *ctx);

/* The DATA datagram of a SEND_CHUNK action, its payload read by the driver
 * from its storage: its length in out, or a negative enum pfs_codec_err. */
int pfs_chunk_datagram(const struct pfs_action *a, uint32_t sender, const uint8_t *payload,
		       uint8_t *out, size_t cap);

#endif /* PFS_DRIVER_H */
