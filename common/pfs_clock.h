/* pfs_clock.h - the monotonic clock every program of the project reads:
 * nanoseconds of CLOCK_MONOTONIC, the time base of the engine's pfs_time_t
 * in the drivers. */
#ifndef PFS_CLOCK_H
#define PFS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t pfs_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif /* PFS_CLOCK_H */
