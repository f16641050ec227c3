/* gen_corpus.c - write one encoded sample of every message type into DIR,
 * the seed corpus for the fuzz_decode target; with --manifest, a signed
 * manifest, the seed corpus for fuzz_manifest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_samples.h"

int main(int argc, char **argv)
{
	uint8_t buf[PFS_DGRAM_MAX];
	char name[4096];

	if (argc == 3 && !strcmp(argv[1], "--manifest")) {
		size_t len;
		uint8_t *m = manifest_sample(&len);
		FILE *f;

		snprintf(name, sizeof(name), "%s/manifest", argv[2]);
		f = fopen(name, "wb");
		if (!m || !f || fwrite(m, 1, len, f) != len || fclose(f) != 0) {
			perror(name);
			return 1;
		}
		free(m);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR | gen_corpus --manifest DIR\n");
		return 2;
	}
	for (unsigned t = 1; t <= PFS_MSG_TYPE_MAX; t++) {
		struct pfs_msg m;
		int len;
		FILE *f;

		if (msg_sample(t, &m) < 0 || (len = pfs_encode(&m, buf, sizeof(buf))) < 0) {
			fprintf(stderr, "gen_corpus: cannot encode type %u\n", t);
			return 1;
		}
		snprintf(name, sizeof(name), "%s/%s", argv[1], pfs_msg_type_name(t));
		f = fopen(name, "wb");
		if (!f || fwrite(buf, 1, (size_t)len, f) != (size_t)len || fclose(f) != 0) {
			perror(name);
			return 1;
		}
	}
	return 0;
}
