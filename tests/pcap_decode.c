/* pcap_decode.c - the project's own reading of a capture, for the
 * dissector test (tests/test_dissector.py): every UDP 4051 datagram of a
 * pcap decoded by the codec (pfs_decode), one line per frame:
 *
 *   frame=N pfs.type=T pfs.sender=S pfs.hier=H [field=value ...]   a message
 *   frame=N pfs.error=NAME                       malformed, the codec's name
 *
 * tab-separated.
 *
 * Field names are the Wireshark dissector's (tools/wireshark/pfs.lua), so
 * the test compares the two frame by frame. Frames that are not IPv4 UDP
 * to or from port 4051 are counted (frame numbers match tshark's) but not
 * printed.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <string.h>

#include "pfs_codec.h"

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The UDP payload of an Ethernet frame to or from port 4051, or NULL. */
static const uint8_t *pfs_payload(const uint8_t *f, size_t caplen, size_t *len)
{
	size_t off = 14;
	uint16_t et;

	if (caplen < 14)
		return NULL;
	et = (uint16_t)(f[12] << 8 | f[13]);
	if (et != 0x0800 || caplen < off + 20 || (f[off] >> 4) != 4 || f[off + 9] != 17)
		return NULL;
	if ((f[off + 6] & 0x3f) || f[off + 7])
		return NULL;                    /* a fragment */
	off += (size_t)(f[off] & 0x0f) * 4;
	if (caplen < off + 8)
		return NULL;
	uint16_t sport = (uint16_t)(f[off] << 8 | f[off + 1]);
	uint16_t dport = (uint16_t)(f[off + 2] << 8 | f[off + 3]);
	uint16_t ulen = (uint16_t)(f[off + 4] << 8 | f[off + 5]);
	if ((sport != PFS_PORT && dport != PFS_PORT) || ulen < 8 || caplen < off + ulen)
		return NULL;
	*len = ulen - 8u;
	return f + off + 8;
}

static void print_status(const struct pfs_status *st)
{
	printf("\tpfs.status.size=%" PRIu64 "\tpfs.status.npath=%u\tpfs.status.chunk_size=%u"
	       "\tpfs.status.manifest_len=%u", st->size, st->npath, st->chunk_size,
	       st->manifest_len);
}

static void print_msg(const struct pfs_msg *m)
{
	printf("\tpfs.type=%u\tpfs.sender=%u\tpfs.hier=%" PRIu64, m->type, m->sender, m->hier);
	switch (m->type) {
	case PFS_MSG_CLAIM:
		printf("\tpfs.claim.strength=%u\tpfs.model=%.*s\tpfs.path=%.*s", m->u.claim.strength,
		       m->u.claim.model.len, m->u.claim.model.p, m->u.claim.path.len,
		       m->u.claim.path.p);
		break;
	case PFS_MSG_ROOT:
		printf("\tpfs.root.strength=%u\tpfs.root.tree_nodes=%u\tpfs.model=%.*s\tpfs.path=%.*s",
		       m->u.root.strength, m->u.root.tree_nodes, m->u.root.model.len,
		       m->u.root.model.p, m->u.root.path.len, m->u.root.path.p);
		break;
	case PFS_MSG_JOIN:
		printf("\tpfs.join.subtree=%u\tpfs.model=%.*s\tpfs.path=%.*s", m->u.join.subtree_nodes,
		       m->u.join.model.len, m->u.join.model.p, m->u.join.path.len, m->u.join.path.p);
		break;
	case PFS_MSG_ACCEPT:
		printf("\tpfs.accept.slot=%u", m->u.accept.slot);
		print_status(&m->u.accept.st);
		break;
	case PFS_MSG_HEARTBEAT:
		print_status(&m->u.heartbeat);
		break;
	case PFS_MSG_REDIRECT:
		printf("\tpfs.redirect.target_id=%u\tpfs.redirect.target_port=%u",
		       m->u.redirect.target_id, m->u.redirect.target_port);
		break;
	case PFS_MSG_REFUSE:
		printf("\tpfs.reason=%u\tpfs.refuse.answers=%u", m->u.reason.reason,
		       m->u.reason.answers);
		break;
	case PFS_MSG_LEAVE:
		printf("\tpfs.reason=%u", m->u.reason.reason);
		break;
	case PFS_MSG_DATA:
		printf("\tpfs.data.index=%u\tpfs.data.len=%u", m->u.data.index, m->u.data.len);
		break;
	case PFS_MSG_ACK:
		printf("\tpfs.ack.cum=%u\tpfs.ack.limit=%u\tpfs.ack.nranges=%u", m->u.ack.cum,
		       m->u.ack.limit, m->u.ack.nranges);
		if (m->u.ack.nranges) {
			printf("\tpfs.ack.ranges=");
			for (unsigned i = 0; i < m->u.ack.nranges; i++)
				printf("%s%u+%u", i ? ";" : "", m->u.ack.ranges[i].start,
				       m->u.ack.ranges[i].count);
		}
		break;
	case PFS_MSG_MREQ:
		printf("\tpfs.mreq.offset=%u\tpfs.mreq.total=%u", m->u.mreq.offset, m->u.mreq.total);
		break;
	case PFS_MSG_MANIFEST:
		printf("\tpfs.manifest.offset=%u\tpfs.manifest.total=%u", m->u.mpiece.offset,
		       m->u.mpiece.total);
		break;
	case PFS_MSG_RELAY:
		printf("\tpfs.relay.strength=%u\tpfs.relay.hold_ms=%u", m->u.relay.strength,
		       m->u.relay.hold_ms);
		if (m->u.relay.model.len)
			printf("\tpfs.model=%.*s", m->u.relay.model.len, m->u.relay.model.p);
		break;
	}
	if (m->auth && m->auth_len == PFS_TAG_LEN)
		printf("\tpfs.tag.key_id=%u\tpfs.tag.seq=%" PRIu64, m->auth[0], be64(m->auth + 1));
}

int main(int argc, char **argv)
{
	char err[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const uint8_t *frame;
	unsigned long n = 0;
	pcap_t *p;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: pcap_decode CAPTURE.pcap\n");
		return 2;
	}
	if (!(p = pcap_open_offline(argv[1], err))) {
		fprintf(stderr, "pcap_decode: %s\n", err);
		return 1;
	}
	if (pcap_datalink(p) != DLT_EN10MB) {
		fprintf(stderr, "pcap_decode: %s: not an Ethernet capture\n", argv[1]);
		pcap_close(p);
		return 1;
	}
	while ((rc = pcap_next_ex(p, &h, &frame)) == 1) {
		struct pfs_msg m;
		const uint8_t *dgram;
		size_t len;

		n++;
		if (!(dgram = pfs_payload(frame, h->caplen, &len)))
			continue;
		printf("frame=%lu", n);
		rc = pfs_decode(dgram, len, &m);
		if (rc < 0)
			printf("\tpfs.error=%s", pfs_codec_strerror(rc));
		else
			print_msg(&m);
		putchar('\n');
	}
	pcap_close(p);
	return rc == PCAP_ERROR ? 1 : 0;
}
