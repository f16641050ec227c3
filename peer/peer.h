/* peer.h - pfs-peer: the reference PFS node on kernel sockets.
 *
 * One context struct, passed everywhere; each file owns one resource:
 * args.c (command line), udp.c (the port-4051 socket), store.c (files on
 * disk), upstream.c (TFTP through libcurl), log.c (human and JSON logs),
 * actions.c (engine actions to I/O), main.c (init chain and event loop).
 */
#ifndef PFS_PEER_H
#define PFS_PEER_H

#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stdint.h>

#include "pfs_engine.h"
#include "pfs_fetch.h"
#include "gso.h"
#include "pfs_keys.h"
#include "prefix_hash.h"
#include "wcbuf.h"

#define PEER_MAX_WANTS  32

/* Exit codes (README "Exit codes"): the worst outcome over all files. */
enum peer_exit {
	PEER_EXIT_OK = 0,
	PEER_EXIT_FAILED = 1,   /* a wanted file could not be had from the server */
	PEER_EXIT_USAGE = 2,    /* bad command line */
	PEER_EXIT_STORAGE = 3,  /* --out: cannot write there (disk full, I/O error) */
	PEER_EXIT_SETUP = 4,    /* interface, keys, state, socket */
	PEER_EXIT_INTERRUPTED = 5, /* stopped by a signal before every file was had */
};

struct peer_args {
	const char *iface;
	const char *model;
	const char *wants[PEER_MAX_WANTS];
	int nwants;
	const char *server;             /* --tftp HOST[:PORT] or --upstream URL */
	const char *ca_file;            /* --ca-file: HTTPS's CA certificates */
	const char *out;
	int priority_class;
	int max_children;
	enum pfs_mode mode;
	uint32_t chunk_size;
	double linger_s;
	bool exit_when_done;
	bool log_json;
	uint16_t port;
	const char *trust[PFS_TRUST_MAX_KEYS];  /* --trust: publishers' public keys */
	int ntrust;
	bool allow_unsigned;
	const char *site_key[2];        /* --site-key: current, then previous */
	int nsite_keys;
	const char *state_dir;          /* rollback state; default: --out */
	const char *broadcast;          /* --broadcast: where claims go */
	struct pfs_fetch_limits limits; /* --connect-timeout, --stall-timeout, ... */
	int upstream_retries;
	double fallback_s;
	uint32_t min_parent_rate;       /* --min-parent-rate, 0: off */
	bool no_udp_offload;            /* --no-udp-offload: no UDP GSO, no GRO */
};

struct peer_file {                      /* one wanted file */
	char final_path[4096];
	char temp_path[4096];
	int fd;
	struct wcbuf wc;                /* writes on their way to fd */
	bool published, failed;
	bool local_failure;             /* failed because we could not store it */
	int store_err;                  /* the upstream write's error, for on_failed */
	char fail_reason[512];
	bool fetching_manifest;         /* upstream: PATH.pfsm before PATH */
	struct pfs_prefix_hash hash;    /* SHA-256 of the prefix written in order */
	bool hash_pending;              /* the engine asked (HASH_FILE): a slice a turn */
	uint64_t hash_read_back;        /* bytes read back to hash (written out of order) */
	uint64_t hash_size;
	struct pfs_membuf man;          /* the manifest as it arrives */
};

/* Datagrams a recvmmsg call moves at most, and a send batch holds: under
 * load one call, not one per datagram; idle, nothing changes (a batch of
 * one). A send batch is larger: its runs to one child become one message
 * each (gso.h), the longer the cheaper. */
#define PEER_BATCH      32
#define PEER_TX_BATCH   64

/* A receive buffer: one datagram, or a run of them from one sender that
 * the kernel coalesced (UDP GRO, at most one IPv4 datagram's worth). */
#define PEER_RX_BUF     65536

struct peer_rx_batch {
	struct mmsghdr msg[PEER_BATCH];
	struct iovec iov[PEER_BATCH];
	struct sockaddr_in from[PEER_BATCH];
	/* IP_TTL and UDP_GRO's segment size */
	union { char buf[2 * CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl[PEER_BATCH];
	uint8_t buf[PEER_BATCH][PEER_RX_BUF];
};

/* Datagrams queued since the last flush (udp.c). The last DATA queued is
 * remembered: the same chunk to another child reuses its encoded bytes. */
struct peer_tx_batch {
	struct mmsghdr msg[PEER_TX_BATCH];      /* one a datagram, as queued */
	struct iovec iov[PEER_TX_BATCH];
	struct sockaddr_in to[PEER_TX_BATCH];
	struct gso_dgram dg[PEER_TX_BATCH];
	uint8_t buf[PEER_TX_BATCH][PFS_DGRAM_MAX];
	unsigned n;
	int chunk_slot;                 /* -1: no DATA in this batch */
	int chunk_hidx;
	uint32_t chunk_index, chunk_len;
	/* UDP GSO (gso.h): the largest segment the interface's MTU carries;
	 * 0: off (a kernel without it, --no-udp-gso, or it refused once). */
	uint32_t max_seg;
	uint16_t order[PEER_TX_BATCH];
	struct gso_msg plan[PEER_TX_BATCH];
	struct mmsghdr out[PEER_TX_BATCH];      /* the plan's messages */
	struct iovec oiov[PEER_TX_BATCH];
	union { char buf[CMSG_SPACE(sizeof(uint16_t))]; struct cmsghdr align; } ctl[PEER_TX_BATCH];
};

struct peer {
	struct peer_args a;
	struct pfs_engine *e;
	int epfd, udp, sigfd;
	struct in_addr ip, bcast;
	bool bcast_derived;             /* the interface reported none usable */
	uint32_t bcast_reported;        /* what it reported, host order */
	bool alone_warned;
	char ip_str[INET_ADDRSTRLEN];
	struct pfs_fetch *fetch;        /* upstream TFTP */
	struct pfs_trust trust;
	struct pfs_seqstate *seqstate;  /* highest verified sequence per file */
	struct pfs_site_auth site;      /* with --site-key */
	uint64_t tx_seq;                /* boot count << 32 | messages sent */
	struct peer_file files[PEER_MAX_WANTS];
	uint64_t tx_errors, rx_ttl_drops, rx_errors;
	uint64_t rx_calls, tx_calls;    /* recvmmsg / sendmmsg calls that moved datagrams */
	uint64_t rx_datagrams, tx_datagrams;    /* and the datagrams they moved */
	uint64_t tx_segmented;          /* messages of several datagrams (UDP GSO) */
	uint64_t rx_coalesced;          /* and received (UDP GRO) */
	uint64_t chunks_read_back;      /* chunks sent from the file, not as received */
	uint64_t loop_turns;            /* event loop iterations (epoll_wait calls) */
	int64_t t0;
	int64_t done_at;
	int64_t linger_from;            /* last time our children moved, once done */
	uint64_t children_progress;     /* where they had got then */
	bool stop;
	/* The chunk WRITE_CHUNK just stored, valid until the drain ends (its
	 * bytes are in a receive buffer): a SEND_CHUNK of the same chunk sends
	 * them without reading them back from the file. */
	struct {
		int hidx;
		uint64_t offset;
		size_t len;
		const uint8_t *data;    /* NULL: none */
	} wrote;
	struct peer_rx_batch rx;
	struct peer_tx_batch tx;
	uint8_t encbuf[PFS_DGRAM_MAX];  /* pfs_drive's messages */
	uint8_t chunkbuf[PFS_CHUNK_MAX];
};

int64_t peer_now(void);

/* args.c */
int peer_args_parse(struct peer_args *a, int argc, char **argv);
void peer_usage(FILE *f);

/* udp.c */
int peer_udp_open(struct peer *p);
/* Queue msg[len] to the action's destination (sent by the next flush). */
void peer_udp_send(struct peer *p, const struct pfs_action *act, const uint8_t *msg, size_t len);
/* A SEND_CHUNK: queued again from the batch if the same chunk is there
 * (true), else the payload is encoded into the batch and queued. */
bool peer_udp_chunk_queued(struct peer *p, const struct pfs_action *act);
void peer_udp_send_chunk(struct peer *p, const struct pfs_action *act, const uint8_t *payload);
/* Send what is queued: before the loop waits, and when the batch is full. */
void peer_udp_flush(struct peer *p);
void peer_udp_recv_all(struct peer *p);

/* store.c */
int peer_store_open(struct peer *p, int hidx, const char *path);
int peer_store_write(struct peer *p, int hidx, uint64_t off, const void *buf, size_t len);
int peer_store_read(struct peer *p, int hidx, uint64_t off, void *buf, size_t len);
/* HASH_FILE: the digest of [0, size), reported to the engine once the
 * slices of peer_store_hash_step() have covered it. */
void peer_store_hash_start(struct peer *p, int hidx, uint64_t size);
/* One slice of every pending digest (a loop turn's worth); true while one
 * is still pending (the loop must not sleep). */
bool peer_store_hash_step(struct peer *p);
int peer_store_publish(struct peer *p, int hidx, uint64_t size);
void peer_store_strerror(struct peer *p, int hidx, int err, char *buf, size_t cap);
/* The file cannot be stored here: say why, hand the hierarchy over. */
void peer_store_failed(struct peer *p, int hidx, int err);
void peer_store_close_all(struct peer *p);

/* upstream.c */
int peer_upstream_init(struct peer *p);
int peer_upstream_start(struct peer *p, int hidx, const char *path, bool want_manifest);
void peer_upstream_abort(struct peer *p, int hidx);
void peer_upstream_cleanup(struct peer *p);

/* actions.c */
void peer_drain(struct peer *p);

/* log.c */
void peer_log_event(struct peer *p, const struct pfs_action *act);
void peer_log(struct peer *p, const char *level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void peer_log_json_kv(struct peer *p, const char *event, const char *file, const char *k1,
		      const char *v1, const char *k2, long long v2);
void peer_log_stats(struct peer *p);
const char *peer_addr_str(uint32_t ip, char *buf);

#endif /* PFS_PEER_H */
