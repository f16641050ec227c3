/* msg_samples.h - one valid message of every type, for tests and the fuzz corpus. */
#ifndef PFS_MSG_SAMPLES_H
#define PFS_MSG_SAMPLES_H

#include "pfs_codec.h"

#define SAMPLE_MODEL "CP-7961G"
#define SAMPLE_PATH  "/dnld/SCCP41.9-4-2SR2-2S.loads"

/* Fill m with a valid message of the given type; -1 for an unknown type. */
int msg_sample(unsigned type, struct pfs_msg *m);

/* A signed manifest of a small file for SAMPLE_PATH, by the fixed sample key
 * (fuzzing only: its secret is in this source). malloc'd; NULL on error. */
uint8_t *manifest_sample(size_t *len);
/* The sample key's public half. */
void manifest_sample_key(uint8_t pub[32]);

#endif
