/* site_seeds.c - seed sites for fuzz_site (site_script.h), written by
 * gen_corpus --site: a plain site; a signed one with an appliance relay,
 * a warm cache and a site key; one with every kind of trouble (loss, a
 * server outage, deaths, a node that alters chunks, one with a server of
 * its own) over two models; one whose digests come late (as the real
 * drivers hash in steps); and sites it found faults on. The fuzzer
 * mutates from there.
 */
#include <stdint.h>
#include <stdio.h>

#include "site_script.h"

struct seed {
	const char *name;
	uint8_t b[64];
	size_t n;
};

int site_seeds(const char *dir);

int site_seeds(const char *dir)
{
	static const struct seed seeds[] = {
		{ "plain", {
			0, 0, 1, 0, 2, 20, 3, 0x80, 0x00, 10, 4,
			0, 0, 0,   0, 0, 1,   0, 0, 2,   0, 0, 3 }, 23 },
		{ "signed-relay-site-key", {
			SS_F_SIGNED | SS_F_SITE_KEY, 0, 2, 1, 5, 40, 3, 0x50, 0x00, 10, 5,
			SS_A_APPLIANCE | SS_A_RELAY | SS_A_PRELOAD | SS_A_AUTOJOIN | SS_A_TWO_SLOTS,
			0, 0,
			0, 0, 1,   SS_A_MODE(1), 0, 2,   0, SS_B_WANT_LATER | 4, 3,
			SS_A_TWO_SLOTS, 0, 4 }, 26 },
		{ "signed-trouble", {
			SS_F_SIGNED | SS_F_SERVER_DOWN | SS_F_CORRUPT | SS_F_ROGUE | SS_F_KILLS,
			0, 3, 2, 3, 30, 1, 0x30, 0x00, 20, 5, 4, 8,
			SS_A_TWO_SLOTS, 0, 0,
			SS_A_CORRUPT, 0, 1,
			0, SS_B_ROGUE, 2,
			SS_A_TWO_SLOTS, SS_B_KILL, 3, 40,
			0, SS_B_MODEL_B, 4,
			SS_A_APPLIANCE, SS_B_MODEL_B | SS_B_KILL, 5, 60,
			SS_A_MODE(2), SS_B_MODEL_B, 6,
			0, SS_B_WANT_LATER | 8, 7 }, 39 },
		{ "unsigned-trouble", {
			SS_F_LAN_RATE | SS_F_KILLS, 0, 4, 3, 10, 60, 50, 2, 0x40, 0x00, 15, 6,
			SS_A_TWO_SLOTS, 0, 0,
			0, SS_B_KILL, 1, 30,
			SS_A_MODE(1), 0, 2,
			0, SS_B_MODEL_B, 3,
			SS_A_APPLIANCE | SS_A_AUTOJOIN, SS_B_MODEL_B, 4,
			0, SS_B_KILL, 5, 80 }, 32 },
		{ "slow-digests-trouble", {
			SS_F_SLOW_HASH | SS_F_CORRUPT | SS_F_KILLS, 0, 9, 1, 5, 80, 3, 0x30,
			0x00, 12, 5,
			SS_A_TWO_SLOTS, 0, 0,
			SS_A_CORRUPT, 0, 1,
			0, SS_B_KILL, 2, 50,
			SS_A_MODE(1), 0, 3,
			0, SS_B_WANT_LATER | 6, 4 }, 28 },
		/* Sites the fuzzer found faults on, kept as seeds: 40 kB/s ports
		 * with 16 % loss and a relay that alters its chunks (repairs
		 * outran the port: engine/repair_pace.c), and a root with a
		 * fetch retry due when it yielded (failure.c xfer_upstream_stop). */
		{ "found-slow-port", {
			0xfe, 0x56, 0x00, 0x18, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff,
			0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x25, 0x40, 0x09, 0x18, 0x00 }, 24 },
		{ "found-yield-retry", {
			0xfe, 0x56, 0x17, 0xfd, 0x00, 0x00, 0x00, 0xff, 0xfd, 0xff, 0xff, 0xff,
			0xff, 0xdf, 0x04, 0x00, 0xdf, 0x00, 0x00, 0xff, 0xff, 0x00 }, 22 },
	};

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, seeds[i].name);
		f = fopen(path, "wb");
		if (!f) {
			perror(path);
			return -1;
		}
		int ok = fwrite(seeds[i].b, 1, seeds[i].n, f) == seeds[i].n;
		if (fclose(f) != 0 || !ok) {
			perror(path);
			return -1;
		}
	}
	return 0;
}
