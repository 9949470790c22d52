/* fetchq: see include/fetchq.h.  Pure; the fetcher thread owns a queue. */
#include <stdbool.h>
#include <stdlib.h>

#include "fetchq.h"

struct fetchq_group {
	uint64_t group;
	unsigned running;   /* 0: the slot is free */
	unsigned low;       /* of which low priority */
};

struct fetchq_limits fetchq_limits_for(unsigned max_fetches)
{
	struct fetchq_limits l = { max_fetches, max_fetches / 4, max_fetches * 3 / 4,
	                           max_fetches / 2, max_fetches / 4 };

	if (l.total == 0)
		l.total = 1;
	if (l.per_group == 0)
		l.per_group = 1;
	if (l.per_upstream == 0)
		l.per_upstream = 1;
	if (l.low_running == 0)
		l.low_running = 1;
	if (l.low_reserve == 0 && l.total > 1)
		l.low_reserve = 1;
	return l;
}

int fetchq_init(struct fetchq *q, const struct fetchq_limits *lim, unsigned n_upstreams)
{
	unsigned slots = 16;

	/* At most lim->total groups run at once: keep the table half empty. */
	while (slots < 2 * lim->total)
		slots *= 2;
	*q = (struct fetchq){ .lim = *lim, .n_upstreams = n_upstreams ? n_upstreams : 1,
	                      .n_slots = slots };
	q->tail = &q->head;
	q->upstream_running = calloc(q->n_upstreams, sizeof *q->upstream_running);
	q->groups = calloc(slots, sizeof *q->groups);
	if (q->upstream_running == NULL || q->groups == NULL) {
		fetchq_free(q);
		return -1;
	}
	return 0;
}

void fetchq_set_low(struct fetchq *q, bool (*is_low)(const struct fetchq_entry *e))
{
	q->is_low = is_low;
}

void fetchq_free(struct fetchq *q)
{
	free(q->upstream_running);
	free(q->groups);
	q->upstream_running = NULL;
	q->groups = NULL;
}

/* --- running counts per group: linear probing, backward-shift deletion --- */

static unsigned home(const struct fetchq *q, uint64_t group)
{
	return (unsigned)(group ^ group >> 32) & (q->n_slots - 1);
}

/* The group's slot, or the free slot where it would go. */
static struct fetchq_group *find(const struct fetchq *q, uint64_t group)
{
	unsigned i = home(q, group);

	while (q->groups[i].running && q->groups[i].group != group)
		i = (i + 1) & (q->n_slots - 1);
	return &q->groups[i];
}

/* What counts against an entry's group share: every running entry for a
 * low-priority one, the clients' only for a client's (warming never holds
 * a client back in its own module). */
static unsigned group_running(const struct fetchq *q, uint64_t group, bool low)
{
	const struct fetchq_group *g = find(q, group);

	return low ? g->running : g->running - g->low;
}

/* Empties slot i and moves later entries of its probe run back into the
 * hole, so that every entry stays reachable from its home slot. */
static void remove_slot(struct fetchq *q, unsigned i)
{
	unsigned mask = q->n_slots - 1, j = i;

	q->groups[i].running = 0;
	for (;;) {
		unsigned h;

		j = (j + 1) & mask;
		if (q->groups[j].running == 0)
			return;
		h = home(q, q->groups[j].group);
		/* Leave j where it is if its home lies cyclically in (i, j]. */
		if (i <= j ? (i < h && h <= j) : (i < h || h <= j))
			continue;
		q->groups[i] = q->groups[j];
		q->groups[j].running = 0;
		i = j;
	}
}

/* --- the queue ---------------------------------------------------------------- */

void fetchq_push(struct fetchq *q, struct fetchq_entry *e)
{
	e->next = NULL;
	*q->tail = e;
	q->tail = &e->next;
	q->waiting++;
}

/* An out-of-range upstream counts as the last one. */
static unsigned *upstream_count(const struct fetchq *q, const struct fetchq_entry *e)
{
	return &q->upstream_running[e->upstream < q->n_upstreams ? e->upstream : q->n_upstreams - 1];
}

static bool may_start(const struct fetchq *q, const struct fetchq_entry *e, bool low,
                      unsigned *in_group)
{
	if (*upstream_count(q, e) >= q->lim.per_upstream)
		return false;
	*in_group = group_running(q, e->group, low);
	return *in_group < q->lim.per_group;
}

static void count_running(struct fetchq *q, struct fetchq_entry *e, bool low)
{
	struct fetchq_group *g = find(q, e->group);

	g->group = e->group;
	g->running++;
	g->low += low;
	++*upstream_count(q, e);
	q->running++;
	e->ran_low = low;
	q->running_low += low;
}

/* May a low-priority entry start now, as far as the totals go? */
static bool low_room(const struct fetchq *q)
{
	return q->running_low < q->lim.low_running && q->running + q->lim.low_reserve < q->lim.total;
}

/* Keeps *best (with *best_n running in its group) the better of itself
 * and ep: the group with fewer running, then the older. */
static void consider(struct fetchq_entry **ep, unsigned n, struct fetchq_entry ***best,
                     unsigned *best_n)
{
	if (*best == NULL || n < *best_n) {
		*best = ep;
		*best_n = n;
	}
}

struct fetchq_entry *fetchq_pop(struct fetchq *q, int64_t now, int64_t *next_due)
{
	struct fetchq_entry **ep, **best = NULL, **best_low = NULL, *e;
	unsigned best_n = 0, low_n = 0, n;
	bool low_ok = low_room(q);

	*next_due = -1;
	if (q->running >= q->lim.total)
		return NULL;   /* an ending transfer makes room, not a clock */
	for (ep = &q->head; (e = *ep) != NULL; ep = &e->next) {
		bool low = q->is_low != NULL && q->is_low(e);

		if (e->not_before > now) {
			if (*next_due < 0 || e->not_before < *next_due)
				*next_due = e->not_before;
			continue;
		}
		if ((low && !low_ok) || !may_start(q, e, low, &n))
			continue;
		consider(ep, n, low ? &best_low : &best, low ? &low_n : &best_n);
		if (!low && n == 0)
			break;   /* the oldest client entry of a group with none running */
	}
	if (best == NULL && best_low == NULL)
		return NULL;
	if (best == NULL)
		best = best_low;
	e = *best;
	*best = e->next;
	if (*best == NULL)
		q->tail = best;
	e->next = NULL;
	q->waiting--;
	count_running(q, e, best == best_low);
	return e;
}

void fetchq_done(struct fetchq *q, const struct fetchq_entry *e)
{
	struct fetchq_group *g = find(q, e->group);

	if (g->running == 0)
		return;   /* not counted: a caller's mistake, but not ours to crash on */
	if (e->ran_low && g->low > 0)
		g->low--;
	if (--g->running == 0)
		remove_slot(q, (unsigned)(g - q->groups));
	--*upstream_count(q, e);
	q->running--;
	if (e->ran_low && q->running_low > 0)
		q->running_low--;
}

struct fetchq_entry *fetchq_take_all(struct fetchq *q)
{
	struct fetchq_entry *list = q->head;

	q->head = NULL;
	q->tail = &q->head;
	q->waiting = 0;
	return list;
}
