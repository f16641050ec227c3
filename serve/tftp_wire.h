/* tftp_wire.h - TFTP packets as the appliance's load server sees them
 * (RFC 1350, with the options of RFC 2347 blksize 2348, timeout/tsize 2349
 * and windowsize 7440). One parser for everything a client sends; builders
 * for what the server sends. No I/O. Fuzzed (tests/fuzz/fuzz_tftp.c).
 */
#ifndef PFS_TFTP_WIRE_H
#define PFS_TFTP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define TFTP_PORT           69
#define TFTP_BLKSIZE_DEF    512
#define TFTP_BLKSIZE_MIN    8           /* RFC 2348 */
#define TFTP_BLKSIZE_MAX    65464
#define TFTP_WINDOW_MAX     65535       /* RFC 7440 */
#define TFTP_TIMEOUT_MAX    255         /* seconds, RFC 2349 */
#define TFTP_NAME_MAX       255         /* longest file name we take (PFS_FILEPATH_MAX) */
#define TFTP_PKT_MAX        (4 + TFTP_BLKSIZE_MAX)

enum tftp_op {
	TFTP_RRQ = 1, TFTP_WRQ = 2, TFTP_DATA = 3, TFTP_ACK = 4, TFTP_ERROR = 5, TFTP_OACK = 6,
};

/* Error codes (RFC 1350 5, RFC 2347 8). */
enum tftp_err {
	TFTP_EUNDEF = 0,        /* see the message */
	TFTP_ENOTFOUND = 1,
	TFTP_EACCESS = 2,
	TFTP_ENOSPACE = 3,
	TFTP_EBADOP = 4,
	TFTP_EBADID = 5,
	TFTP_EEXISTS = 6,
	TFTP_ENOUSER = 7,
	TFTP_EOPTNEG = 8,       /* option negotiation refused */
};

/* Why a datagram was not a request we can answer. */
enum tftp_parse_err {
	TFTP_P_OK = 0,
	TFTP_P_SHORT = -1,      /* under 4 bytes, or a field without its NUL */
	TFTP_P_OPCODE = -2,     /* not a request opcode where one was expected */
	TFTP_P_NAME = -3,       /* empty, overlong, or with bytes no file name has */
	TFTP_P_MODE = -4,       /* neither octet nor netascii */
	TFTP_P_OPTION = -5,     /* an option without a value, or a malformed value */
	TFTP_P_TRAILING = -6,   /* bytes after the last NUL */
};

/* A read (or write) request, options parsed; values 0 where not asked. */
struct tftp_request {
	enum tftp_op op;                /* RRQ or WRQ */
	char name[TFTP_NAME_MAX + 1];
	int octet;                      /* 1: octet, 0: netascii */
	uint32_t blksize;               /* asked, 0: none */
	uint32_t timeout_s;             /* asked, 0: none */
	int tsize;                      /* tsize asked */
	uint32_t windowsize;            /* asked, 0: none */
	int options;                    /* any option we know was asked */
};

/* What a client sends during a transfer: ACK n or ERROR. */
struct tftp_reply {
	enum tftp_op op;                /* ACK or ERROR */
	uint16_t block;                 /* ACK */
	uint16_t code;                  /* ERROR */
};

int tftp_parse_request(const uint8_t *buf, size_t len, struct tftp_request *r);
int tftp_parse_reply(const uint8_t *buf, size_t len, struct tftp_reply *r);
const char *tftp_parse_strerror(int err);

/* Builders: bytes written, or -1 when cap is too small. */
int tftp_build_data(uint8_t *buf, size_t cap, uint16_t block, const void *data, size_t len);
int tftp_build_error(uint8_t *buf, size_t cap, uint16_t code, const char *msg);
/* OACK with the options the server accepted (0: not included; tsize with
 * has_tsize). */
int tftp_build_oack(uint8_t *buf, size_t cap, uint32_t blksize, uint32_t timeout_s,
		    int has_tsize, uint64_t tsize, uint32_t windowsize);

#endif /* PFS_TFTP_WIRE_H */
