/* evheap.c - binary min-heap of simulator events (see evheap.h). */
#include "evheap.h"

#include <errno.h>
#include <stdlib.h>

static inline int ev_less(const struct ev *a, const struct ev *b)
{
	return a->t != b->t ? a->t < b->t : a->seq < b->seq;
}

int evheap_push(struct evheap *h, struct ev ev)
{
	size_t i;

	if (h->n == h->cap) {
		size_t nc = h->cap ? h->cap * 2 : 1024;
		struct ev *nv = realloc(h->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		h->v = nv;
		h->cap = nc;
	}
	ev.seq = h->seq++;
	i = h->n++;
	while (i > 0 && ev_less(&ev, &h->v[(i - 1) / 2])) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = ev;
	return 0;
}

struct ev evheap_pop(struct evheap *h)
{
	struct ev top = h->v[0], last = h->v[--h->n];
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct ev *mv = &last;
		if (l < h->n && ev_less(&h->v[l], mv)) { m = l; mv = &h->v[l]; }
		if (r < h->n && ev_less(&h->v[r], mv))
			m = r;
		if (m == i)
			break;
		h->v[i] = h->v[m];
		i = m;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

void evheap_free(struct evheap *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->v[i].dgram);
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}
