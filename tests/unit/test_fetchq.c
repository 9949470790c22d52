/*
 * test_fetchq: the order in which waiting fetches start (FIFO per group,
 * the least-served group first), the total / per-group / per-upstream
 * caps, retry backoff, the limits -maxFetches implies, and the running
 * counts per group under many groups (checked against a reference model,
 * which exercises the open-addressing table's backward-shift deletion).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetchq.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---------------------------------------------------------- */

static struct fetchq_limits
limits(unsigned total, unsigned per_group, unsigned per_upstream)
{
	struct fetchq_limits l = { .total = total, .per_group = per_group, .per_upstream = per_upstream };
	return l;
}

static void
init(struct fetchq *q, unsigned total, unsigned per_group, unsigned per_upstream,
     unsigned n_upstreams)
{
	struct fetchq_limits l = limits(total, per_group, per_upstream);

	assert_int_equal(fetchq_init(q, &l, n_upstreams), 0);
}

static void
entry(struct fetchq_entry *e, uint64_t group, unsigned upstream, int64_t not_before)
{
	memset(e, 0, sizeof *e);
	e->group = group;
	e->upstream = upstream;
	e->not_before = not_before;
}

/* Pops at time `now` and expects `want` (NULL: nothing may start). */
static struct fetchq_entry *
pop_expect(struct fetchq *q, int64_t now, struct fetchq_entry *want)
{
	int64_t due = 12345;
	struct fetchq_entry *got = fetchq_pop(q, now, &due);

	assert_ptr_equal(got, want);
	return got;
}

/* ---- order ------------------------------------------------------------ */

static void
test_fifo_within_group(void **state)
{
	struct fetchq q;
	struct fetchq_entry e[6];

	(void)state;
	init(&q, 16, 16, 16, 1);
	for (size_t i = 0; i < N(e); i++) {
		entry(&e[i], 7, 0, 0);
		fetchq_push(&q, &e[i]);
	}
	assert_int_equal(q.waiting, 6);
	for (size_t i = 0; i < N(e); i++)
		pop_expect(&q, 0, &e[i]);
	pop_expect(&q, 0, NULL);
	assert_int_equal(q.waiting, 0);
	assert_int_equal(q.running, 6);
	for (size_t i = 0; i < N(e); i++)
		fetchq_done(&q, &e[i]);
	assert_int_equal(q.running, 0);
	fetchq_free(&q);
}

static void
test_least_served_group_first(void **state)
{
	struct fetchq q;
	struct fetchq_entry a1, a2, a3, b1, b2, b3, c1;

	(void)state;
	init(&q, 16, 16, 16, 1);
	entry(&a1, 1, 0, 0);
	entry(&a2, 1, 0, 0);
	entry(&a3, 1, 0, 0);
	entry(&b1, 2, 0, 0);
	entry(&b2, 2, 0, 0);
	fetchq_push(&q, &a1);
	fetchq_push(&q, &a2);
	fetchq_push(&q, &a3);
	fetchq_push(&q, &b1);
	fetchq_push(&q, &b2);

	pop_expect(&q, 0, &a1);   /* oldest; A has none running */
	pop_expect(&q, 0, &b1);   /* A has 1 running, B none */
	pop_expect(&q, 0, &a2);   /* 1 each: the oldest */
	pop_expect(&q, 0, &b2);   /* A 2, B 1 */

	/* A newcomer group overtakes the older entries of a busy group. */
	entry(&c1, 3, 0, 0);
	fetchq_push(&q, &c1);
	pop_expect(&q, 0, &c1);
	pop_expect(&q, 0, &a3);
	pop_expect(&q, 0, NULL);

	/* After its entries end, A counts as least served again. */
	fetchq_done(&q, &a1);
	fetchq_done(&q, &a2);
	fetchq_done(&q, &a3);
	fetchq_done(&q, &b2);       /* B keeps b1 running, C c1 */
	entry(&b3, 2, 0, 0);
	fetchq_push(&q, &b3);
	fetchq_push(&q, &a1);       /* an ended entry may be pushed again */
	pop_expect(&q, 0, &a1);   /* A 0 < B 1, although b3 is older */
	pop_expect(&q, 0, &b3);
	fetchq_free(&q);
}

/* ---- caps ------------------------------------------------------------- */

static void
test_per_group_cap(void **state)
{
	struct fetchq q;
	struct fetchq_entry a[4], b;
	int64_t due;

	(void)state;
	init(&q, 16, 2, 16, 1);
	for (size_t i = 0; i < N(a); i++) {
		entry(&a[i], 42, 0, 0);
		fetchq_push(&q, &a[i]);
	}
	pop_expect(&q, 0, &a[0]);
	pop_expect(&q, 0, &a[1]);
	assert_null(fetchq_pop(&q, 0, &due));
	assert_int_equal(due, -1);   /* full, not in backoff */
	assert_int_equal(q.waiting, 2);

	/* Another group is not held up by the full one. */
	entry(&b, 43, 0, 0);
	fetchq_push(&q, &b);
	pop_expect(&q, 0, &b);
	pop_expect(&q, 0, NULL);

	fetchq_done(&q, &a[1]);
	pop_expect(&q, 0, &a[2]);
	pop_expect(&q, 0, NULL);
	fetchq_done(&q, &a[0]);
	fetchq_done(&q, &a[2]);
	pop_expect(&q, 0, &a[3]);
	assert_int_equal(q.running, 2);   /* a[3] and b */
	fetchq_free(&q);
}

static void
test_per_upstream_cap(void **state)
{
	struct fetchq q;
	struct fetchq_entry u0[3], u1, far;

	(void)state;
	init(&q, 16, 16, 2, 2);
	for (size_t i = 0; i < N(u0); i++) {
		entry(&u0[i], 100 + i, 0, 0);   /* distinct groups */
		fetchq_push(&q, &u0[i]);
	}
	entry(&u1, 200, 1, 0);
	fetchq_push(&q, &u1);

	pop_expect(&q, 0, &u0[0]);
	pop_expect(&q, 0, &u0[1]);
	pop_expect(&q, 0, &u1);        /* upstream 0 is full, 1 has room */
	pop_expect(&q, 0, NULL);
	assert_int_equal(q.upstream_running[0], 2);
	assert_int_equal(q.upstream_running[1], 1);

	/* An out-of-range upstream counts as the last one (1): 2 running. */
	entry(&far, 300, 9, 0);
	fetchq_push(&q, &far);
	pop_expect(&q, 0, &far);
	assert_int_equal(q.upstream_running[1], 2);
	pop_expect(&q, 0, NULL);

	fetchq_done(&q, &u0[0]);
	pop_expect(&q, 0, &u0[2]);
	fetchq_done(&q, &far);
	assert_int_equal(q.upstream_running[1], 1);
	fetchq_free(&q);
}

static void
test_total_cap(void **state)
{
	struct fetchq q;
	struct fetchq_entry e[5];
	int64_t due;

	(void)state;
	init(&q, 3, 3, 3, 4);
	for (size_t i = 0; i < N(e); i++) {
		entry(&e[i], 1000 + i, (unsigned)i % 4, 0);
		fetchq_push(&q, &e[i]);
	}
	pop_expect(&q, 0, &e[0]);
	pop_expect(&q, 0, &e[1]);
	pop_expect(&q, 0, &e[2]);
	assert_null(fetchq_pop(&q, 0, &due));
	assert_int_equal(due, -1);
	assert_int_equal(q.running, 3);
	fetchq_done(&q, &e[1]);
	pop_expect(&q, 0, &e[3]);
	pop_expect(&q, 0, NULL);
	fetchq_done(&q, &e[0]);
	fetchq_done(&q, &e[2]);
	pop_expect(&q, 0, &e[4]);
	assert_int_equal(q.running, 2);
	fetchq_free(&q);
}

/* Ending an entry that was never counted running changes nothing. */
static void
test_done_of_uncounted(void **state)
{
	struct fetchq q;
	struct fetchq_entry a, b, c;

	(void)state;
	init(&q, 4, 1, 4, 1);
	entry(&a, 5, 0, 0);
	entry(&b, 6, 0, 0);
	fetchq_done(&q, &b);
	assert_int_equal(q.running, 0);
	assert_int_equal(q.upstream_running[0], 0);
	fetchq_push(&q, &a);
	pop_expect(&q, 0, &a);
	fetchq_done(&q, &b);   /* other group: a stays counted */
	assert_int_equal(q.running, 1);
	entry(&c, 5, 0, 0);    /* a's group: per_group 1 holds it */
	fetchq_push(&q, &c);
	pop_expect(&q, 0, NULL);
	fetchq_free(&q);
}

/* ---- backoff ---------------------------------------------------------- */

static void
test_backoff(void **state)
{
	struct fetchq q;
	struct fetchq_entry late, soon, now;
	int64_t due = 0;

	(void)state;
	init(&q, 16, 16, 16, 1);
	assert_null(fetchq_pop(&q, 10, &due));
	assert_int_equal(due, -1);           /* nothing at all */

	entry(&late, 1, 0, 100);
	entry(&soon, 2, 0, 50);
	entry(&now, 3, 0, 10);
	fetchq_push(&q, &late);
	fetchq_push(&q, &soon);
	fetchq_push(&q, &now);

	pop_expect(&q, 10, &now);            /* not_before == now may start */
	assert_null(fetchq_pop(&q, 10, &due));
	assert_int_equal(due, 50);           /* the earliest, not the oldest */
	assert_null(fetchq_pop(&q, 49, &due));
	assert_int_equal(due, 50);
	pop_expect(&q, 60, &soon);
	assert_null(fetchq_pop(&q, 60, &due));
	assert_int_equal(due, 100);
	pop_expect(&q, 100, &late);
	assert_null(fetchq_pop(&q, 100, &due));
	assert_int_equal(due, -1);
	fetchq_free(&q);
}

/* An entry in backoff does not hold up younger ones of its group. */
static void
test_backoff_skipped_in_group(void **state)
{
	struct fetchq q;
	struct fetchq_entry a1, a2;
	int64_t due;

	(void)state;
	init(&q, 16, 16, 16, 1);
	entry(&a1, 1, 0, 1000);
	entry(&a2, 1, 0, 0);
	fetchq_push(&q, &a1);
	fetchq_push(&q, &a2);
	pop_expect(&q, 5, &a2);
	assert_null(fetchq_pop(&q, 5, &due));
	assert_int_equal(due, 1000);
	fetchq_free(&q);
}

/* ---- limits ----------------------------------------------------------- */

static void
test_limits_for(void **state)
{
	static const struct {
		unsigned max, total, per_group, per_upstream;
	} cases[] = {
		{ 0, 1, 1, 1 },
		{ 1, 1, 1, 1 },
		{ 2, 2, 1, 1 },
		{ 4, 4, 1, 3 },
		{ 16, 16, 4, 12 },
		{ 256, 256, 64, 192 },
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct fetchq_limits l = fetchq_limits_for(cases[i].max);

		if (l.total != cases[i].total || l.per_group != cases[i].per_group ||
		    l.per_upstream != cases[i].per_upstream)
			fail_msg("fetchq_limits_for(%u) = {%u, %u, %u}, want {%u, %u, %u}",
			         cases[i].max, l.total, l.per_group, l.per_upstream,
			         cases[i].total, cases[i].per_group, cases[i].per_upstream);
	}
}

/* ---- take_all --------------------------------------------------------- */

static void
test_take_all(void **state)
{
	struct fetchq q;
	struct fetchq_entry e[4], *list;

	(void)state;
	init(&q, 16, 16, 16, 1);
	assert_null(fetchq_take_all(&q));
	for (size_t i = 0; i < N(e); i++) {
		entry(&e[i], 9, 0, i == 3 ? 1000 : 0);
		fetchq_push(&q, &e[i]);
	}
	pop_expect(&q, 0, &e[0]);
	list = fetchq_take_all(&q);
	assert_int_equal(q.waiting, 0);
	assert_int_equal(q.running, 1);   /* running entries stay counted */
	assert_ptr_equal(list, &e[1]);
	assert_ptr_equal(e[1].next, &e[2]);
	assert_ptr_equal(e[2].next, &e[3]);   /* in backoff too */
	assert_null(e[3].next);
	pop_expect(&q, 2000, NULL);

	/* The queue works again afterwards (its tail was reset). */
	fetchq_push(&q, &e[1]);
	fetchq_push(&q, &e[2]);
	pop_expect(&q, 0, &e[1]);
	pop_expect(&q, 0, &e[2]);
	fetchq_free(&q);
}

/* ---- many groups against a reference model ---------------------------- */

#define M_GROUPS 1000
#define M_PER_GROUP 3
#define M_ENTRIES (M_GROUPS * M_PER_GROUP)
#define M_UPSTREAMS 3

static uint64_t rng_state;

static uint64_t
rng(void)
{
	/* xorshift64*: deterministic for a given seed. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

struct model {
	struct fetchq_entry *wait[M_ENTRIES];   /* oldest first */
	size_t n_wait;
	unsigned group_running[M_GROUPS];
	unsigned upstream_running[M_UPSTREAMS];
	unsigned running;
};

static struct fetchq_entry ents[M_ENTRIES];
static unsigned ent_group[M_ENTRIES];   /* model's group index */
static int ent_state[M_ENTRIES];        /* 0 new, 1 waiting, 2 running, 3 ended */
static struct model mdl;

/*
 * Group ids whose home slots (in a table of `slots`) crowd into a few
 * slots at the end and start of the table, so probe runs are long and
 * wrap around, and many plain random ids besides.
 */
static uint64_t
group_id(unsigned i, unsigned slots)
{
	if (i % 2 == 0) {
		uint64_t home = (slots - 3 + i % 5) & (slots - 1);
		uint64_t hi = i + 1;
		/* home() is (g ^ g >> 32) & (slots - 1) */
		return hi << 32 | (uint32_t)(home ^ hi);
	}
	return rng();
}

/* What the rules say fetchq_pop() must return; NULL and *due otherwise. */
static struct fetchq_entry *
model_pop(const struct fetchq_limits *l, int64_t now, int64_t *due, size_t *at)
{
	struct fetchq_entry *best = NULL;
	unsigned best_n = 0;

	*due = -1;
	if (mdl.running >= l->total)
		return NULL;
	for (size_t i = 0; i < mdl.n_wait; i++) {
		struct fetchq_entry *e = mdl.wait[i];
		unsigned g = ent_group[e - ents];

		if (e->not_before > now) {
			if (*due < 0 || e->not_before < *due)
				*due = e->not_before;
			continue;
		}
		if (mdl.upstream_running[e->upstream] >= l->per_upstream ||
		    mdl.group_running[g] >= l->per_group)
			continue;
		if (best == NULL || mdl.group_running[g] < best_n) {
			best = e;
			best_n = mdl.group_running[g];
			*at = i;
		}
	}
	return best;
}

static void
check_counts(const struct fetchq *q)
{
	assert_int_equal(q->waiting, mdl.n_wait);
	assert_int_equal(q->running, mdl.running);
	for (unsigned u = 0; u < M_UPSTREAMS; u++)
		assert_int_equal(q->upstream_running[u], mdl.upstream_running[u]);
}

static void
run_many_groups(uint64_t seed)
{
	struct fetchq_limits l = limits(64, 2, 40);
	struct fetchq q;
	size_t pushed = 0, ended = 0, steps = 0, pops = 0;
	size_t order[M_ENTRIES];
	int64_t now = 0;

	rng_state = seed;
	memset(&mdl, 0, sizeof mdl);
	assert_int_equal(fetchq_init(&q, &l, M_UPSTREAMS), 0);
	for (unsigned g = 0; g < M_GROUPS; g++) {
		uint64_t id = group_id(g, q.n_slots);

		for (unsigned k = 0; k < M_PER_GROUP; k++) {
			size_t i = g * M_PER_GROUP + k;

			entry(&ents[i], id, (unsigned)(rng() % M_UPSTREAMS), 0);
			ent_group[i] = g;
			ent_state[i] = 0;
		}
	}
	/* Pushed in a random order. */
	for (size_t i = 0; i < M_ENTRIES; i++)
		order[i] = i;
	for (size_t i = M_ENTRIES - 1; i > 0; i--) {
		size_t j = rng() % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}

	while (ended < M_ENTRIES) {
		unsigned op = (unsigned)(rng() % 10);

		assert_true(++steps < 100 * M_ENTRIES);
		if (op < 3 && pushed < M_ENTRIES) {
			size_t i = order[pushed++];

			/* Some wait out a backoff of up to 20 ticks. */
			ents[i].not_before = rng() % 4 == 0 ? now + (int64_t)(rng() % 20) : 0;
			fetchq_push(&q, &ents[i]);
			mdl.wait[mdl.n_wait++] = &ents[i];
			ent_state[i] = 1;
		} else if (op < 7) {
			int64_t due, mdue;
			size_t at = 0;
			struct fetchq_entry *want = model_pop(&l, now, &mdue, &at);
			struct fetchq_entry *got = fetchq_pop(&q, now, &due);

			if (got != want)
				fail_msg("seed %llu step %zu: popped entry %td, want %td",
				         (unsigned long long)seed, steps,
				         got ? got - ents : -1, want ? want - ents : -1);
			if (got == NULL) {
				assert_int_equal(due, mdue);
			} else {
				size_t i = (size_t)(got - ents);

				assert_int_equal(ent_state[i], 1);   /* returned once */
				ent_state[i] = 2;
				memmove(&mdl.wait[at], &mdl.wait[at + 1],
				        (mdl.n_wait - at - 1) * sizeof mdl.wait[0]);
				mdl.n_wait--;
				mdl.group_running[ent_group[i]]++;
				mdl.upstream_running[got->upstream]++;
				mdl.running++;
				pops++;
			}
		} else if (op < 9) {
			/* End a random running entry. */
			size_t start = rng() % M_ENTRIES;

			for (size_t k = 0; k < M_ENTRIES; k++) {
				size_t i = (start + k) % M_ENTRIES;

				if (ent_state[i] != 2)
					continue;
				fetchq_done(&q, &ents[i]);
				ent_state[i] = 3;
				mdl.group_running[ent_group[i]]--;
				mdl.upstream_running[ents[i].upstream]--;
				mdl.running--;
				ended++;
				break;
			}
		} else {
			now += (int64_t)(rng() % 5);
		}
		check_counts(&q);
		assert_true(mdl.running <= l.total);
	}
	assert_int_equal(pops, M_ENTRIES);
	for (size_t i = 0; i < M_ENTRIES; i++)
		assert_int_equal(ent_state[i], 3);
	assert_int_equal(q.running, 0);
	assert_int_equal(q.waiting, 0);
	fetchq_free(&q);
}

static void
test_many_groups(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 5; seed++)
		run_many_groups(seed * 0x9E3779B97F4A7C15ULL);
}

/* ---- low priority (warming) ------------------------------------------- */

/* Entries whose group has bit 63 set are low priority; promoted[] lists
 * entries a client has since joined. */
static const struct fetchq_entry *promoted[4];

static bool is_low(const struct fetchq_entry *e)
{
	for (size_t i = 0; i < N(promoted); i++)
		if (promoted[i] == e)
			return false;
	return (e->group >> 63) != 0;
}

#define LOW (1ull << 63)

static void
test_low_priority(void **state)
{
	struct fetchq q;
	struct fetchq_limits l = limits(8, 8, 8);
	struct fetchq_entry w[6], c[4];
	int64_t due;

	(void)state;
	memset(promoted, 0, sizeof promoted);
	l.low_running = 3;
	l.low_reserve = 2;
	assert_int_equal(fetchq_init(&q, &l, 1), 0);
	fetchq_set_low(&q, is_low);
	for (int i = 0; i < 6; i++) {
		entry(&w[i], LOW | (uint64_t)i, 0, 0);
		fetchq_push(&q, &w[i]);
	}
	entry(&c[0], 100, 0, 0);
	fetchq_push(&q, &c[0]);
	/* the client's entry goes first, though it is the newest */
	pop_expect(&q, 0, &c[0]);
	assert_false(c[0].ran_low);
	/* then low ones, oldest first, at most low_running of them */
	pop_expect(&q, 0, &w[0]);
	assert_true(w[0].ran_low);
	pop_expect(&q, 0, &w[1]);
	pop_expect(&q, 0, &w[2]);
	assert_null(fetchq_pop(&q, 0, &due));
	assert_int_equal(q.running_low, 3);
	/* a client joins w[4]: it starts at once, ahead of w[3] */
	promoted[0] = &w[4];
	pop_expect(&q, 0, &w[4]);
	assert_false(w[4].ran_low);
	/* a low one ends: room for one more, but not into the reserve */
	fetchq_done(&q, &w[0]);
	assert_int_equal(q.running_low, 2);
	for (int i = 1; i < 4; i++) {
		entry(&c[i], 100 + (uint64_t)i, 0, 0);
		fetchq_push(&q, &c[i]);
	}
	pop_expect(&q, 0, &c[1]);
	pop_expect(&q, 0, &c[2]);
	pop_expect(&q, 0, &c[3]);   /* clients may use the reserve */
	assert_null(fetchq_pop(&q, 0, &due));   /* 7 running: w[3], w[5] would eat into the reserve */
	fetchq_done(&q, &c[1]);
	fetchq_done(&q, &c[2]);
	fetchq_done(&q, &c[3]);
	pop_expect(&q, 0, &w[3]);   /* 4 running: 4 + the reserve < 8 */
	assert_null(fetchq_pop(&q, 0, &due));   /* low_running is 3 again */
	/* counts come back to zero */
	fetchq_done(&q, &w[1]);
	fetchq_done(&q, &w[2]);
	fetchq_done(&q, &w[3]);
	fetchq_done(&q, &w[4]);
	fetchq_done(&q, &c[0]);
	assert_int_equal(q.running, 0);
	assert_int_equal(q.running_low, 0);
	pop_expect(&q, 0, &w[5]);
	fetchq_done(&q, &w[5]);
	fetchq_free(&q);
}

/* Here the low entries are the ones listed, whatever their group. */
static const struct fetchq_entry *low_set[2];

static bool in_low_set(const struct fetchq_entry *e)
{
	return e == low_set[0] || e == low_set[1];
}

/* A low entry running in a module does not hold back that module's
 * client entries (per_group 1 here), but counts against later low ones. */
static void
test_low_in_group(void **state)
{
	struct fetchq q;
	struct fetchq_limits l = limits(8, 1, 8);
	struct fetchq_entry w, w2, c, c2;
	int64_t due;

	(void)state;
	l.low_running = 4;
	l.low_reserve = 1;
	assert_int_equal(fetchq_init(&q, &l, 1), 0);
	fetchq_set_low(&q, in_low_set);
	entry(&w, 7, 0, 0);
	entry(&w2, 7, 0, 0);
	low_set[0] = &w;
	low_set[1] = &w2;
	fetchq_push(&q, &w);
	fetchq_push(&q, &w2);
	pop_expect(&q, 0, &w);
	assert_null(fetchq_pop(&q, 0, &due));   /* w2: its group is full */
	entry(&c, w.group, 0, 0);               /* a client, same module */
	fetchq_push(&q, &c);
	pop_expect(&q, 0, &c);
	entry(&c2, w.group, 0, 0);
	fetchq_push(&q, &c2);
	assert_null(fetchq_pop(&q, 0, &due));   /* one client running there */
	fetchq_done(&q, &w);
	assert_null(fetchq_pop(&q, 0, &due));   /* still c: w2 and c2 wait */
	fetchq_done(&q, &c);
	pop_expect(&q, 0, &c2);                 /* the client first */
	fetchq_done(&q, &c2);
	pop_expect(&q, 0, &w2);
	fetchq_done(&q, &w2);
	assert_int_equal(q.running, 0);
	fetchq_free(&q);
}

static void
test_low_limits_for(void **state)
{
	struct fetchq_limits l;

	(void)state;
	l = fetchq_limits_for(1);
	assert_int_equal(l.low_running, 1);
	assert_int_equal(l.low_reserve, 0);
	l = fetchq_limits_for(2);
	assert_int_equal(l.low_running, 1);
	assert_int_equal(l.low_reserve, 1);
	l = fetchq_limits_for(256);
	assert_int_equal(l.low_running, 128);
	assert_int_equal(l.low_reserve, 64);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_within_group),
		cmocka_unit_test(test_least_served_group_first),
		cmocka_unit_test(test_per_group_cap),
		cmocka_unit_test(test_per_upstream_cap),
		cmocka_unit_test(test_total_cap),
		cmocka_unit_test(test_done_of_uncounted),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_backoff_skipped_in_group),
		cmocka_unit_test(test_limits_for),
		cmocka_unit_test(test_take_all),
		cmocka_unit_test(test_many_groups),
		cmocka_unit_test(test_low_priority),
		cmocka_unit_test(test_low_in_group),
		cmocka_unit_test(test_low_limits_for),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
