/* msg_samples.c - one valid message of every type, for tests and the fuzz corpus. */
#include "msg_samples.h"

#include <stdlib.h>
#include <string.h>

#include "pfs_manifest.h"

/* Fixed, public: a seed for fuzzing, never a key anyone trusts. */
static const uint8_t sample_seed[32] = { 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42 };

static const struct pfs_str model = { SAMPLE_MODEL, sizeof(SAMPLE_MODEL) - 1 };
static const struct pfs_str path = { SAMPLE_PATH, sizeof(SAMPLE_PATH) - 1 };
static const uint8_t payload[1408] = { 1, 2, 3, 4, 5 };

static struct pfs_status sample_status(void)
{
	struct pfs_status st = { .mflags = PFS_MF_FINAL | PFS_MF_SIGNED, .npath = 3,
				 .chunk_size = 1408, .size = 123456789, .parent_prefix = 77,
				 .manifest_len = 1403000,
				 .path = { 10, 20, 30 } };
	for (int i = 0; i < 32; i++)
		st.sha256[i] = (uint8_t)(i * 7);
	return st;
}

int msg_sample(unsigned type, struct pfs_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = (uint8_t)type;
	m->sender = 0x0a000005;
	m->hier = pfs_hier_key(model.p, model.len, path.p, path.len);
	switch (type) {
	case PFS_MSG_CLAIM:
		m->u.claim = (struct pfs_msg_claim){ 0x131d4d43, 2, model, path };
		break;
	case PFS_MSG_ROOT:
		m->u.root = (struct pfs_msg_root){ 0x1bd4d43d, 16, 0, model, path };
		break;
	case PFS_MSG_JOIN:
		m->u.join = (struct pfs_msg_join){ 3, 1, model, path };
		break;
	case PFS_MSG_ACCEPT:
		m->u.accept.slot = 1;
		m->u.accept.st = sample_status();
		break;
	case PFS_MSG_REDIRECT:
		m->u.redirect = (struct pfs_msg_redirect){ 42, 0x0a000007, PFS_PORT };
		break;
	case PFS_MSG_REFUSE:
		m->u.reason.reason = PFS_REASON_LOOP;
		m->u.reason.answers = PFS_MSG_JOIN;
		break;
	case PFS_MSG_LEAVE:
		m->u.reason.reason = PFS_REASON_LOOP;
		break;
	case PFS_MSG_HEARTBEAT:
		m->u.heartbeat = sample_status();
		break;
	case PFS_MSG_DATA:
		m->u.data = (struct pfs_msg_data){ 9, 0, payload, sizeof(payload) };
		break;
	case PFS_MSG_ACK:
		m->u.ack = (struct pfs_msg_ack){ .cum = 5, .highest = 40, .limit = 168,
			.subtree_nodes = 3, .nranges = 2,
			.ranges = { { 5, 3 }, { 20, 10 } } };
		break;
	case PFS_MSG_MREQ:
		m->u.mreq = (struct pfs_msg_mreq){ 4 * PFS_MPIECE_LEN, 1403000 };
		break;
	case PFS_MSG_MANIFEST:
		m->u.mpiece = (struct pfs_msg_mpiece){ 1403000, 1370 * PFS_MPIECE_LEN, payload,
			1403000 - 1370 * PFS_MPIECE_LEN };
		break;
	case PFS_MSG_RELAY:
		m->hier = PFS_HIER_ALL;
		m->u.relay = (struct pfs_msg_relay){ (uint32_t)PFS_CLASS_APPLIANCE <<
			PFS_STRENGTH_CLASS_SHIFT | PFS_STRENGTH_CONFIRMED | 0x1234, 3000, model };
		break;
	default:
		return -1;
	}
	return 0;
}


void manifest_sample_key(uint8_t pub[32])
{
	pfs_keypair_public(sample_seed, pub);
}

uint8_t *manifest_sample(size_t *len)
{
	uint8_t pub[32], data[5000];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 1);
	manifest_sample_key(pub);
	return pfs_manifest_from_buffer(data, sizeof(data), &SAMPLE_PATH[1], 1408, 3,
					pfs_key_id(pub), sample_seed, len);
}
