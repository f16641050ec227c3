/* test_codec.c - the PFS v1 codec: round trips, truncations, bad headers. */
#include <criterion/criterion.h>
#include <string.h>

#include "pfs_codec.h"

#include "msg_samples.h"
#include "pfs_bcast.h"

#define PATH  SAMPLE_PATH
static const struct pfs_str model = { SAMPLE_MODEL, sizeof(SAMPLE_MODEL) - 1 };
static const struct pfs_str path = { SAMPLE_PATH, sizeof(SAMPLE_PATH) - 1 };
#define sample msg_sample

Test(codec, crc32c_check_value)
{
	cr_assert_eq(pfs_crc32c("123456789", 9), 0xe3069283u);
}

Test(codec, roundtrip_every_type)
{
	uint8_t buf[PFS_DGRAM_MAX], buf2[PFS_DGRAM_MAX];

	for (unsigned t = 1; t <= PFS_MSG_TYPE_MAX; t++) {
		struct pfs_msg m, d;
		cr_assert_eq(sample(t, &m), 0);
		int len = pfs_encode(&m, buf, sizeof(buf));
		cr_assert_gt(len, PFS_HDR_LEN, "encode %s: %d", pfs_msg_type_name(t), len);
		cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_OK, "decode %s",
			     pfs_msg_type_name(t));
		cr_assert_eq(d.type, t);
		cr_assert_eq(d.sender, m.sender);
		cr_assert_eq(d.hier, m.hier);
		int len2 = pfs_encode(&d, buf2, sizeof(buf2));
		cr_assert_eq(len2, len, "%s re-encodes to %d, not %d", pfs_msg_type_name(t),
			     len2, len);
		cr_assert_eq(memcmp(buf, buf2, (size_t)len), 0, "%s bytes differ",
			     pfs_msg_type_name(t));
	}
}

Test(codec, decoded_fields)
{
	uint8_t buf[PFS_DGRAM_MAX];
	struct pfs_msg m, d;

	sample(PFS_MSG_CLAIM, &m);
	int len = pfs_encode(&m, buf, sizeof(buf));
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), 0);
	cr_assert_eq(d.u.claim.strength, 0x131d4d43u);
	cr_assert_eq(d.u.claim.ad, 2);
	cr_assert_eq(d.u.claim.model.len, model.len);
	cr_assert_eq(memcmp(d.u.claim.path.p, PATH, path.len), 0);

	sample(PFS_MSG_ACCEPT, &m);
	len = pfs_encode(&m, buf, sizeof(buf));
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), 0);
	cr_assert_eq(d.u.accept.st.size, 123456789u);
	cr_assert_eq(d.u.accept.st.npath, 3);
	cr_assert_eq(d.u.accept.st.path[2], 30u);
	cr_assert_eq(d.u.accept.st.sha256[31], (uint8_t)(31 * 7));

	sample(PFS_MSG_ACK, &m);
	len = pfs_encode(&m, buf, sizeof(buf));
	cr_assert_eq(len, PFS_HDR_LEN + 20 + 16);
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), 0);
	cr_assert_eq(d.u.ack.ranges[1].start, 20u);
	cr_assert_eq(d.u.ack.ranges[1].count, 10u);

	sample(PFS_MSG_DATA, &m);
	len = pfs_encode(&m, buf, sizeof(buf));
	cr_assert_eq(len, PFS_HDR_LEN + 8 + 1408, "a default chunk fills 1436 bytes");
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), 0);
	cr_assert_eq(d.u.data.len, 1408);
	cr_assert_eq(d.u.data.payload[4], 5);
}

/* Wire layout as docs/protocol.md 3.1 gives it. */
Test(codec, header_layout)
{
	uint8_t buf[PFS_DGRAM_MAX];
	struct pfs_msg m;

	sample(PFS_MSG_LEAVE, &m);
	int len = pfs_encode(&m, buf, sizeof(buf));
	cr_assert_eq(len, 24);
	cr_assert_eq(buf[0], 0x50); cr_assert_eq(buf[1], 0x46);
	cr_assert_eq(buf[2], PFS_VERSION);
	cr_assert_eq(buf[3], PFS_MSG_LEAVE);
	cr_assert_eq(buf[6], 0); cr_assert_eq(buf[7], 4);
	cr_assert_eq(buf[8], 0x0a); cr_assert_eq(buf[11], 0x05);
	cr_assert_eq(buf[20], PFS_REASON_LOOP);
}

Test(codec, every_truncation_rejected)
{
	uint8_t buf[PFS_DGRAM_MAX], cut[PFS_DGRAM_MAX];

	for (unsigned t = 1; t <= PFS_MSG_TYPE_MAX; t++) {
		struct pfs_msg m, d;
		sample(t, &m);
		int len = pfs_encode(&m, buf, sizeof(buf));
		for (int n = 0; n < len; n++) {
			/* As received: a short datagram. */
			int rc = pfs_decode(buf, (size_t)n, &d);
			cr_assert_lt(rc, 0, "%s cut to %d accepted", pfs_msg_type_name(t), n);
			cr_assert(rc == PFS_E_SHORT || rc == PFS_E_LENGTH,
				  "%s cut to %d: %s", pfs_msg_type_name(t), n,
				  pfs_codec_strerror(rc));
			/* As forged: body_len rewritten to agree with the cut. */
			if (n < PFS_HDR_LEN)
				continue;
			memcpy(cut, buf, (size_t)n);
			cut[6] = (uint8_t)((n - PFS_HDR_LEN) >> 8);
			cut[7] = (uint8_t)(n - PFS_HDR_LEN);
			rc = pfs_decode(cut, (size_t)n, &d);
			if (t == PFS_MSG_DATA && n >= PFS_HDR_LEN + 9)
				cr_assert_eq(rc, PFS_E_CRC, "DATA cut to %d", n);
			else
				cr_assert(rc == PFS_E_BODY || rc == PFS_E_FIELD,
					  "%s forged to %d: %s", pfs_msg_type_name(t), n,
					  pfs_codec_strerror(rc));
		}
	}
}

Test(codec, bad_headers)
{
	uint8_t buf[PFS_DGRAM_MAX], bad[PFS_DGRAM_MAX];
	struct pfs_msg m, d;

	sample(PFS_MSG_ROOT, &m);
	int len = pfs_encode(&m, buf, sizeof(buf));

	memcpy(bad, buf, (size_t)len); bad[0] ^= 0xff;
	cr_assert_eq(pfs_decode(bad, (size_t)len, &d), PFS_E_MAGIC);
	memcpy(bad, buf, (size_t)len); bad[2] = 2;
	cr_assert_eq(pfs_decode(bad, (size_t)len, &d), PFS_E_VERSION);
	memcpy(bad, buf, (size_t)len); bad[3] = 0;
	cr_assert_eq(pfs_decode(bad, (size_t)len, &d), PFS_E_TYPE);
	memcpy(bad, buf, (size_t)len); bad[3] = PFS_MSG_TYPE_MAX + 1;
	cr_assert_eq(pfs_decode(bad, (size_t)len, &d), PFS_E_TYPE);
	memcpy(bad, buf, (size_t)len); bad[4] = 0x80;
	cr_assert_eq(pfs_decode(bad, (size_t)len, &d), PFS_E_FLAGS);
	memcpy(bad, buf, (size_t)len); bad[4] = PFS_HF_AUTH;     /* flag, no tag */
	cr_assert_eq(pfs_decode(bad, (size_t)len, &d), PFS_E_FLAGS);
	memcpy(bad, buf, (size_t)len); bad[7]++;                 /* body_len too long */
	cr_assert_eq(pfs_decode(bad, (size_t)len, &d), PFS_E_LENGTH);
	memcpy(bad, buf, (size_t)len); bad[len] = 0;             /* trailing byte */
	cr_assert_eq(pfs_decode(bad, (size_t)len + 1, &d), PFS_E_LENGTH);
	memcpy(bad, buf, (size_t)len); memset(bad + 8, 0, 4);    /* sender 0 */
	cr_assert_eq(pfs_decode(bad, (size_t)len, &d), PFS_E_FIELD);
	memcpy(bad, buf, (size_t)len); memset(bad + 12, 0, 8);   /* hierarchy 0 */
	cr_assert_eq(pfs_decode(bad, (size_t)len, &d), PFS_E_FIELD);
	cr_assert_eq(pfs_decode(buf, 0, &d), PFS_E_SHORT);
	cr_assert_eq(pfs_decode(NULL, 0, &d), PFS_E_SHORT);
}

Test(codec, auth_tag_reserved_roundtrip)
{
	uint8_t buf[PFS_DGRAM_MAX], tag[16];
	struct pfs_msg m, d;

	memset(tag, 0xab, sizeof(tag));
	sample(PFS_MSG_CLAIM, &m);
	m.flags = PFS_HF_AUTH;
	m.auth_len = sizeof(tag);
	m.auth = tag;
	int len = pfs_encode(&m, buf, sizeof(buf));
	cr_assert_gt(len, 0);
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), 0);
	cr_assert_eq(d.auth_len, 16);
	cr_assert_eq(memcmp(d.auth, tag, 16), 0);
	cr_assert_eq(d.u.claim.path.len, path.len, "the tag is not part of the body");
}

Test(codec, data_crc_checked)
{
	uint8_t buf[PFS_DGRAM_MAX];
	struct pfs_msg m, d;

	sample(PFS_MSG_DATA, &m);
	int len = pfs_encode(&m, buf, sizeof(buf));
	buf[len - 1] ^= 1;
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_E_CRC);
}

Test(codec, bad_fields)
{
	uint8_t buf[PFS_DGRAM_MAX];
	struct pfs_msg m;

	sample(PFS_MSG_CLAIM, &m);
	m.u.claim.model = (struct pfs_str){ "bad model", 9 };
	cr_assert_eq(pfs_encode(&m, buf, sizeof(buf)), PFS_E_FIELD);
	sample(PFS_MSG_JOIN, &m);
	m.u.join.path = (struct pfs_str){ "/x/../etc/passwd", 16 };
	cr_assert_eq(pfs_encode(&m, buf, sizeof(buf)), PFS_E_FIELD);

	/* Overlapping and out-of-window NACK ranges, forged on the wire. */
	struct pfs_msg d;
	sample(PFS_MSG_ACK, &m);
	int len = pfs_encode(&m, buf, sizeof(buf));
	buf[PFS_HDR_LEN + 20 + 8 + 3] = 6;      /* second range starts at 6: overlaps */
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_E_FIELD);
	m.u.ack.ranges[1] = (struct pfs_range){ 35, 10 };       /* past highest */
	len = pfs_encode(&m, buf, sizeof(buf));
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_E_FIELD);

	sample(PFS_MSG_HEARTBEAT, &m);
	m.u.heartbeat.chunk_size = PFS_CHUNK_MAX + 1;
	cr_assert_eq(pfs_encode(&m, buf, sizeof(buf)), PFS_E_FIELD);
	sample(PFS_MSG_DATA, &m);
	cr_assert_eq(pfs_encode(&m, buf, 100), PFS_E_NOSPACE);
}

Test(codec, validators)
{
	cr_assert(pfs_filepath_valid("SCCP41.loads", 12));
	cr_assert(pfs_filepath_valid("/dnld/a..b", 10));
	cr_assert_not(pfs_filepath_valid("..", 2));
	cr_assert_not(pfs_filepath_valid("a/../b", 6));
	cr_assert_not(pfs_filepath_valid("///", 3));
	cr_assert_not(pfs_filepath_valid("a b", 3));
	cr_assert(pfs_model_valid("CP-7961G", 8));
	cr_assert_not(pfs_model_valid("", 0));
}

Test(codec, hierarchy_key_per_model_and_file)
{
	uint64_t a = pfs_hier_key("A", 1, "f", 1);
	cr_assert_eq(a, pfs_hier_key("A", 1, "f", 1));
	cr_assert_neq(a, pfs_hier_key("B", 1, "f", 1));
	cr_assert_neq(a, pfs_hier_key("A", 1, "g", 1));
	cr_assert_neq(pfs_hier_key("AB", 2, "C", 1), pfs_hier_key("A", 1, "BC", 2));
}

/* MREQ, MANIFEST and the SIGNED status (docs/protocol.md 3.2, 6.7). */
Test(codec, manifest_transfer_field_rules)
{
	uint8_t buf[PFS_DGRAM_MAX];
	struct pfs_msg m, d;
	int len;

	cr_assert_eq(msg_sample(PFS_MSG_MANIFEST, &m), 0);
	len = pfs_encode(&m, buf, sizeof(buf));
	cr_assert_gt(len, 0);
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_OK);
	buf[PFS_HDR_LEN + 7] ^= 1;              /* offset no longer a multiple of 1024 */
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_E_FIELD);
	m.u.mpiece.len--;                       /* a short piece that is not the last */
	cr_assert_eq(pfs_encode(&m, buf, sizeof(buf)), PFS_E_FIELD);
	cr_assert_eq(msg_sample(PFS_MSG_MREQ, &m), 0);
	m.u.mreq.offset = m.u.mreq.total;       /* past the end */
	cr_assert_eq(pfs_encode(&m, buf, sizeof(buf)), PFS_E_FIELD);
	cr_assert_eq(msg_sample(PFS_MSG_HEARTBEAT, &m), 0);
	m.u.heartbeat.mflags = PFS_MF_SIGNED;   /* SIGNED needs FINAL */
	cr_assert_eq(pfs_encode(&m, buf, sizeof(buf)), PFS_E_FIELD);
	m.u.heartbeat.mflags = PFS_MF_FINAL;    /* a length without SIGNED */
	cr_assert_eq(pfs_encode(&m, buf, sizeof(buf)), PFS_E_FIELD);
	m.u.heartbeat.manifest_len = 0;
	cr_assert_gt(pfs_encode(&m, buf, sizeof(buf)), 0);
}

/* The failure additions (docs/protocol.md 3.2, 6.5): status bit NOT_FOUND
 * and LEAVE reasons 6 (root gone) and 7 (root failed) round-trip; the next
 * bit and the next reason are refused, on encode and on decode. */
Test(codec, failure_flags_and_reasons)
{
	uint8_t buf[PFS_DGRAM_MAX];
	struct pfs_msg m, d;
	int len;

	cr_assert_eq(msg_sample(PFS_MSG_HEARTBEAT, &m), 0);
	m.u.heartbeat.mflags |= PFS_MF_FAILED | PFS_MF_NOT_FOUND;
	len = pfs_encode(&m, buf, sizeof(buf));
	cr_assert_gt(len, 0);
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_OK);
	cr_assert_eq(d.u.heartbeat.mflags, m.u.heartbeat.mflags);
	buf[PFS_HDR_LEN] |= PFS_MF_NOT_FOUND << 1;      /* a bit nobody defined */
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_E_FIELD);
	m.u.heartbeat.mflags |= PFS_MF_NOT_FOUND << 1;
	cr_assert_eq(pfs_encode(&m, buf, sizeof(buf)), PFS_E_FIELD);

	cr_assert_eq(msg_sample(PFS_MSG_LEAVE, &m), 0);
	for (unsigned r = PFS_REASON_ROOT_GONE; r <= PFS_REASON_ROOT_FAILED; r++) {
		m.u.reason.reason = (uint8_t)r;
		len = pfs_encode(&m, buf, sizeof(buf));
		cr_assert_gt(len, 0, "reason %u", r);
		cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_OK, "reason %u", r);
		cr_assert_eq(d.u.reason.reason, r);
	}
	buf[PFS_HDR_LEN] = PFS_REASON_MAX + 1;
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_E_FIELD);
	m.u.reason.reason = PFS_REASON_MAX + 1;
	cr_assert_lt(pfs_encode(&m, buf, sizeof(buf)), 0);

	/* A REFUSE says what it answers: a JOIN, an ACK, or nothing (an older
	 * sender); anything else is refused both ways. A LEAVE's byte is
	 * reserved: sent as 0, not read. */
	cr_assert_eq(msg_sample(PFS_MSG_REFUSE, &m), 0);
	const uint8_t answers[] = { 0, PFS_MSG_JOIN, PFS_MSG_ACK };
	for (unsigned i = 0; i < sizeof(answers); i++) {
		m.u.reason.answers = answers[i];
		len = pfs_encode(&m, buf, sizeof(buf));
		cr_assert_gt(len, 0);
		cr_assert_eq(buf[PFS_HDR_LEN + 1], answers[i]);
		cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_OK);
		cr_assert_eq(d.u.reason.answers, answers[i]);
	}
	buf[PFS_HDR_LEN + 1] = PFS_MSG_DATA;
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_E_FIELD);
	m.u.reason.answers = PFS_MSG_DATA;
	cr_assert_eq(pfs_encode(&m, buf, sizeof(buf)), PFS_E_FIELD);
	cr_assert_eq(msg_sample(PFS_MSG_LEAVE, &m), 0);
	m.u.reason.answers = PFS_MSG_ACK;
	len = pfs_encode(&m, buf, sizeof(buf));
	cr_assert_eq(buf[PFS_HDR_LEN + 1], 0, "LEAVE sends its reserved byte as 0");
	buf[PFS_HDR_LEN + 1] = 0x5a;
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_OK);
	cr_assert_eq(d.u.reason.answers, 0);
}

/* RELAY (docs/protocol.md 3.2, 4.4): a class and CONFIRMED, a hold, one
 * model or none (every model), hier all ones, no flags; each rule refused
 * both ways. */
Test(codec, relay_field_rules)
{
	uint8_t buf[PFS_DGRAM_MAX];
	struct pfs_msg m, d;
	int len;

	cr_assert_eq(msg_sample(PFS_MSG_RELAY, &m), 0);
	len = pfs_encode(&m, buf, sizeof(buf));
	cr_assert_eq(len, PFS_HDR_LEN + 8 + (int)m.u.relay.model.len);
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_OK);
	cr_assert_eq(d.u.relay.strength, m.u.relay.strength);
	cr_assert_eq(d.u.relay.hold_ms, 3000);
	cr_assert_eq(d.u.relay.model.len, m.u.relay.model.len);
	cr_assert_eq(memcmp(d.u.relay.model.p, m.u.relay.model.p, m.u.relay.model.len), 0);
	buf[PFS_HDR_LEN + 7] = 1;                       /* a flag nobody defined */
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_E_FIELD);
	buf[PFS_HDR_LEN + 7] = 0;
	buf[PFS_HDR_LEN + 6] = (uint8_t)(m.u.relay.model.len + 1);     /* model runs past */
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_E_BODY);

	struct pfs_msg any = m;                         /* every model: no model bytes */
	any.u.relay.model.len = 0;
	len = pfs_encode(&any, buf, sizeof(buf));
	cr_assert_eq(len, PFS_HDR_LEN + 8);
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_OK);
	cr_assert_eq(d.u.relay.model.len, 0);

	struct pfs_msg bad[5];
	for (int i = 0; i < 5; i++)
		bad[i] = m;
	bad[0].hier = 0x1234;                           /* RELAY speaks for every hierarchy */
	bad[1].u.relay.strength &= ~PFS_STRENGTH_CONFIRMED;
	bad[2].u.relay.strength &= (1u << PFS_STRENGTH_CLASS_SHIFT) - 1;      /* class 0 */
	bad[3].u.relay.hold_ms = 0;
	bad[4].u.relay.model.len = PFS_MODEL_MAX + 1;
	for (int i = 0; i < 5; i++)
		cr_assert_eq(pfs_encode(&bad[i], buf, sizeof(buf)), PFS_E_FIELD, "rule %d", i);
	/* The same on the wire: take a valid datagram and break one field. */
	len = pfs_encode(&m, buf, sizeof(buf));
	memset(buf + 12, 0x11, 8);                      /* hier */
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_E_FIELD);
	len = pfs_encode(&m, buf, sizeof(buf));
	buf[PFS_HDR_LEN] &= 0x0f;                       /* class 0 */
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_E_FIELD);
	len = pfs_encode(&m, buf, sizeof(buf));
	buf[PFS_HDR_LEN + 4] = buf[PFS_HDR_LEN + 5] = 0; /* hold 0 */
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_E_FIELD);
}

/* A FINAL size near 2^64 must not wrap into a small chunk count. */
Test(codec, final_size_near_2_64_rejected)
{
	uint8_t buf[PFS_DGRAM_MAX];
	struct pfs_msg m, d;
	int len;

	cr_assert_eq(msg_sample(PFS_MSG_HEARTBEAT, &m), 0);
	len = pfs_encode(&m, buf, sizeof(buf));
	cr_assert_gt(len, 0);
	memset(buf + PFS_HDR_LEN + 8, 0xff, 8);         /* size = 2^64 - 1 */
	cr_assert_eq(pfs_decode(buf, (size_t)len, &d), PFS_E_FIELD);
}

/* pfs_bcast.h: an interface's broadcast report replaced when it reaches no
 * peer (none, or our own address: an address added without `brd`). */
Test(codec, broadcast_address_derived_when_unusable)
{
	uint32_t ip = 0x0a4d000b, m24 = pfs_prefix_mask(24);   /* 10.77.0.11/24 */
	bool derived;

	cr_assert_eq(pfs_broadcast_for(ip, m24, 0, &derived), 0x0a4d00ff);
	cr_assert(derived);
	cr_assert_eq(pfs_broadcast_for(ip, m24, ip, &derived), 0x0a4d00ff);
	cr_assert(derived);
	cr_assert_eq(pfs_broadcast_for(ip, m24, 0x0a4d00ff, &derived), 0x0a4d00ff);
	cr_assert_not(derived);
	cr_assert_eq(pfs_broadcast_for(ip, pfs_prefix_mask(20), 0, &derived), 0x0a4d0fff);
	cr_assert_eq(pfs_broadcast_for(ip, pfs_prefix_mask(32), ip, &derived), 0xffffffff);
	cr_assert_eq(pfs_broadcast_for(ip, pfs_prefix_mask(31), 0, &derived), 0xffffffff);
	cr_assert_eq(pfs_prefix_mask(0), 0);
	cr_assert_eq(pfs_prefix_mask(8), 0xff000000);
}
