/* runs.c - the engines' chunk sends, batched into ranges for the dataplane
 * (SEND_CHUNKS, docs/appliance.md 3.2).
 *
 * An engine pumps one chunk per action, round-robin over its children;
 * consecutive chunks for one child become one range, so the ring carries a
 * message per run, not per chunk. While the root still fetches the file,
 * though, each drain has only the chunk that just arrived: one range per
 * chunk per child (5684 chunks went as about 5350 messages). So a run that
 * ends at the fetch's frontier (it will grow when the next chunk arrives) is
 * held across drains, for up to RUN_HOLD_NS or RUN_HOLD_MAX chunks; every
 * other run goes at the end of the drain that made it, as before. A chunk
 * waits at most RUN_HOLD_NS more for it: a file the WAN brings at its own
 * pace is not slowed by that, and a file already cached is never held.
 *
 * A run the ring has no room for stays here (it is not dropped): chunks
 * that follow it extend it, and it goes as one message once the dataplane
 * has made room, tried again RUN_RETRY_NS later (64 children's runs of a
 * WAN burst filled the ring and lost 2,866 messages a rollout before).
 * Only a run that finds the table full of runs kept so is dropped.
 */
#include <stdatomic.h>

#include "control.h"

#define RUNS_MAX     256                /* runs open at once */
#define RUN_HOLD_NS  2000000            /* longest a frontier run is held */
#define RUN_HOLD_MAX 64                 /* chunks: a run this long goes now */
#define RUN_RETRY_NS 1000000            /* the ring was full: try again then */

struct chunk_run {
	uint64_t hier;
	int fi;
	struct pfs_addr dst;
	uint32_t first, count;
	int64_t opened;                 /* ctl_now() when its first chunk came */
	bool deferred;                  /* the ring refused it once */
};

static struct chunk_run runs[RUNS_MAX];
static int nruns;
static int last_hit;                    /* the run ctl_runs_add extended last */
static int64_t retry_at;                /* the ring was full: no send before */

static bool send_run(struct ctl *c, const struct chunk_run *r)
{
	return ctl_dplink_send_chunks(c, r->hier, r->fi, r->dst, r->first, r->count) == 0;
}

/* Is the chunk after the run still to come into the cache file (whole), in
 * a file still arriving? Then the next drain will likely extend the run. */
static bool at_frontier(const struct ctl *c, const struct chunk_run *r)
{
	const struct pfs_cache_file *f = pfs_cache_file(c->cache, r->fi);
	uint64_t next;

	if (!f || atomic_load(&f->state) != PFS_CF_FILLING || !f->chunk_size)
		return false;
	next = (uint64_t)(r->first + r->count) * f->chunk_size;      /* its first byte */
	if (f->size && next >= f->size)
		return false;   /* the run ends the file */
	return next + f->chunk_size > atomic_load(&f->stored);
}

/* Send the runs that keep(c, run, now) says not to keep, in order; once
 * the ring refuses one, keep it and the rest until retry_at. */
static void flush_if(struct ctl *c, bool (*keep)(const struct ctl *, const struct chunk_run *,
						 int64_t), int64_t now)
{
	bool full = now < retry_at;
	int kept = 0;

	for (int i = 0; i < nruns; i++) {
		struct chunk_run *r = &runs[i];

		if (keep && keep(c, r, now)) {
			runs[kept++] = *r;
			continue;
		}
		if (!full && send_run(c, r))
			continue;
		if (!full) {
			full = true;
			retry_at = ctl_now() + RUN_RETRY_NS;
		}
		if (!r->deferred)
			c->st.ranges_deferred++;
		r->deferred = true;
		runs[kept++] = *r;
	}
	nruns = kept;
	last_hit = 0;
}

static bool keep_growing(const struct ctl *c, const struct chunk_run *r, int64_t now)
{
	return r->count < RUN_HOLD_MAX && now - r->opened < RUN_HOLD_NS && at_frontier(c, r);
}

static bool keep_young(const struct ctl *c, const struct chunk_run *r, int64_t now)
{
	(void)c;
	return now - r->opened < RUN_HOLD_NS;
}

static bool extends(const struct chunk_run *r, uint64_t hier, int fi, struct pfs_addr dst,
		    uint32_t index)
{
	return r->hier == hier && r->fi == fi && r->dst.ip == dst.ip && r->dst.port == dst.port &&
	       r->first + r->count == index;
}

void ctl_runs_add(struct ctl *c, uint64_t hier, int fi, struct pfs_addr dst, uint32_t index)
{
	c->st.chunk_sends++;
	/* A drain pumps children round-robin: the next run to extend is
	 * usually the one after the last. */
	for (int n = 0, i = last_hit; n < nruns; n++, i = i + 1 < nruns ? i + 1 : 0) {
		if (extends(&runs[i], hier, fi, dst, index)) {
			runs[i].count++;
			last_hit = i + 1 < nruns ? i + 1 : 0;
			return;
		}
	}
	if (nruns == RUNS_MAX)
		flush_if(c, NULL, ctl_now());
	if (nruns == RUNS_MAX) {
		c->st.tx_ring_full++;   /* every run waits for the ring: the protocol repairs */
		return;
	}
	runs[nruns++] = (struct chunk_run){ hier, fi, dst, index, 1, ctl_now(), false };
}

void ctl_runs_end_drain(struct ctl *c)
{
	if (nruns)
		flush_if(c, keep_growing, ctl_now());
}

void ctl_runs_flush_due(struct ctl *c, int64_t now)
{
	if (nruns)
		flush_if(c, keep_young, now);
}

void ctl_runs_flush_all(struct ctl *c)
{
	flush_if(c, NULL, INT64_MAX);   /* stopping: tried whatever retry_at says */
}

int64_t ctl_runs_deadline(void)
{
	int64_t t = INT64_MAX;

	for (int i = 0; i < nruns; i++)
		if (runs[i].opened + RUN_HOLD_NS < t)
			t = runs[i].opened + RUN_HOLD_NS;
	return t < retry_at ? retry_at : t;    /* INT64_MAX without runs */
}
