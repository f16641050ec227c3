/* simrand.h - the simulator's random numbers: splitmix64, one stream per
 * seed, so a seeded run replays exactly (netsim and pfs-sim share it). */
#ifndef PFS_SIMRAND_H
#define PFS_SIMRAND_H

#include <stdint.h>

static inline uint64_t sim_splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1), 53 bits. */
static inline double sim_unit(uint64_t *s)
{
	return (double)(sim_splitmix(s) >> 11) / 9007199254740992.0;
}

#endif
