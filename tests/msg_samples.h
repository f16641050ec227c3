/* msg_samples.h - one valid message of every type, for tests and the fuzz corpus. */
#ifndef PFS_MSG_SAMPLES_H
#define PFS_MSG_SAMPLES_H

#include "pfs_codec.h"

#define SAMPLE_MODEL "CP-7961G"
#define SAMPLE_PATH  "/dnld/SCCP41.9-4-2SR2-2S.loads"

/* Fill m with a valid message of the given type; -1 for an unknown type. */
int msg_sample(unsigned type, struct pfs_msg *m);

#endif
