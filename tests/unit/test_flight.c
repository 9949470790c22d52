/*
 * test_flight: one fetch per key however many join it; flight_finish()
 * wakes each waiter exactly once with its own fd (or the failure); many
 * keys sharing hash buckets stay distinct; the negative cache's ttl and
 * reasons.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "flight.h"
#include "text.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Bucket count of flight.c's table, to build keys that share a bucket. */
#define FLIGHT_BUCKETS 1024

/* ---- helpers ---------------------------------------------------------- */

struct tw {
	struct waiter w;   /* first: wake() gets &w */
	int id;
	int woken;         /* wake() calls */
};

static int wakes;   /* all wake() calls */

static void
on_wake(struct waiter *w)
{
	struct tw *t = (struct tw *)w;

	t->woken++;
	wakes++;
}

static int holds;
static void *held_arg;

static void
on_hold(void *arg)
{
	holds++;
	held_arg = arg;
}

static void
tw_init(struct tw *t, int id)
{
	memset(t, 0, sizeof *t);
	t->w.wake = on_wake;
	t->id = id;
	t->w.result.res_fd = -2;   /* to see it was filled */
}

static void
req_for(struct request *r, const char *path, const char *version)
{
	memset(r, 0, sizeof *r);
	r->kind = REQ_MOD;
	snprintf(r->path, sizeof r->path, "%s", path);
	snprintf(r->esc_path, sizeof r->esc_path, "%s", path);
	snprintf(r->version, sizeof r->version, "%s", version);
	snprintf(r->esc_version, sizeof r->esc_version, "%s", version);
	r->immutable = true;
}

/* A temp file with known content, already unlinked. */
static int
temp_file(const char *body)
{
	char name[] = "/tmp/test_flight.XXXXXX";
	int fd = mkstemp(name);

	assert_true(fd >= 0);
	unlink(name);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	return fd;
}

static bool
fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static int
reset(void **state)
{
	(void)state;
	wakes = holds = 0;
	held_arg = NULL;
	return 0;
}

/* ---- joining and finishing ------------------------------------------- */

static void
test_join_and_finish_ok(void **state)
{
	struct tw w[4];
	struct request r;
	struct flight *f;
	struct fetch_result res = { .status = FETCH_OK };
	struct stat orig, st;
	const char *key = "example.com/m/@v/v1.0.0.mod";
	int arg[4];

	(void)state;
	assert_int_equal(flight_count(), 0);
	assert_int_equal(flight_waiters(), 0);
	req_for(&r, "example.com/m", "v1.0.0");
	for (int i = 0; i < 4; i++)
		tw_init(&w[i], i);

	f = flight_join(&r, key, &w[0].w, on_hold, &arg[0]);
	assert_non_null(f);                    /* the first joiner starts it */
	assert_string_equal(f->key, key);
	assert_string_equal(f->req.path, "example.com/m");
	assert_int_equal(f->req.kind, REQ_MOD);
	assert_int_equal(holds, 1);
	assert_ptr_equal(held_arg, &arg[0]);
	for (int i = 1; i < 4; i++) {
		assert_null(flight_join(&r, key, &w[i].w, on_hold, &arg[i]));
		assert_int_equal(holds, i + 1);    /* once per join */
		assert_ptr_equal(held_arg, &arg[i]);
	}
	assert_int_equal(flight_count(), 1);
	assert_int_equal(flight_waiters(), 4);
	assert_int_equal(wakes, 0);            /* nobody woken by joining */

	res.res_fd = temp_file("module example.com/m\n");
	res.size = 21;
	assert_int_equal(fstat(res.res_fd, &orig), 0);
	res.mtime = orig.st_mtim;
	flight_finish(f, &res);

	assert_int_equal(flight_count(), 0);
	assert_int_equal(flight_waiters(), 0);
	assert_int_equal(wakes, 4);
	assert_false(fd_is_open(res.res_fd));  /* the finisher's fd is closed */
	for (int i = 0; i < 4; i++) {
		struct fetch_result *got = &w[i].w.result;
		char buf[64] = "";

		assert_int_equal(w[i].woken, 1);
		assert_int_equal(got->status, FETCH_OK);
		assert_int_equal(got->size, 21);
		assert_int_equal(got->mtime.tv_sec, orig.st_mtim.tv_sec);
		assert_int_equal(got->mtime.tv_nsec, orig.st_mtim.tv_nsec);
		/* Its own fd to the same file. */
		assert_true(got->res_fd >= 0);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(got->res_fd, w[j].w.result.res_fd);
		assert_int_equal(fstat(got->res_fd, &st), 0);
		assert_int_equal(st.st_ino, orig.st_ino);
		assert_int_equal(st.st_dev, orig.st_dev);
		assert_int_equal(pread(got->res_fd, buf, sizeof buf - 1, 0), 21);
		assert_string_equal(buf, "module example.com/m\n");
	}
	for (int i = 0; i < 4; i++)
		close(w[i].w.result.res_fd);

	/* The key is free again: the next join starts a new fetch. */
	tw_init(&w[0], 0);
	f = flight_join(&r, key, &w[0].w, on_hold, NULL);
	assert_non_null(f);
	res = (struct fetch_result){ .status = FETCH_FAILED, .res_fd = -1 };
	flight_finish(f, &res);
	assert_int_equal(w[0].woken, 1);
	assert_int_equal(flight_count(), 0);
}

static void
test_finish_failure(void **state)
{
	static const enum fetch_status sts[] = { FETCH_NOTFOUND, FETCH_FAILED };
	struct tw w[3];
	struct request r;

	(void)state;
	req_for(&r, "example.com/gone", "v1.0.0");
	for (size_t k = 0; k < N(sts); k++) {
		struct fetch_result res = { .status = sts[k], .res_fd = -1 };
		struct flight *f;

		snprintf(res.reason, sizeof res.reason, "reason %zu: not found upstream", k);
		wakes = 0;
		for (int i = 0; i < 3; i++)
			tw_init(&w[i], i);
		f = flight_join(&r, "example.com/gone/@v/v1.0.0.mod", &w[0].w, on_hold, NULL);
		assert_non_null(f);
		assert_null(flight_join(&r, "example.com/gone/@v/v1.0.0.mod", &w[1].w, on_hold, NULL));
		assert_null(flight_join(&r, "example.com/gone/@v/v1.0.0.mod", &w[2].w, on_hold, NULL));
		flight_finish(f, &res);
		assert_int_equal(wakes, 3);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(w[i].woken, 1);
			assert_int_equal(w[i].w.result.status, sts[k]);
			assert_int_equal(w[i].w.result.res_fd, -1);
			assert_string_equal(w[i].w.result.reason, res.reason);
		}
	}
	assert_int_equal(flight_count(), 0);
	assert_int_equal(flight_waiters(), 0);
}

/* No fd left for a waiter's copy: that waiter fails, the others do not. */
static void
test_finish_out_of_fds(void **state)
{
	struct tw w[2];
	struct request r;
	struct flight *f;
	struct fetch_result res = { .status = FETCH_OK };
	struct rlimit old, low;
	int lowest;

	(void)state;
	req_for(&r, "example.com/m", "v1.0.0");
	tw_init(&w[0], 0);
	tw_init(&w[1], 1);
	f = flight_join(&r, "k", &w[0].w, on_hold, NULL);
	assert_non_null(f);
	assert_null(flight_join(&r, "k", &w[1].w, on_hold, NULL));
	res.res_fd = temp_file("x");

	/* Every fd below the lowest free one is in use: a limit there makes
	 * dup() fail. */
	lowest = dup(0);
	assert_true(lowest >= 0);
	close(lowest);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	flight_finish(f, &res);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);

	for (int i = 0; i < 2; i++) {
		assert_int_equal(w[i].woken, 1);
		assert_int_equal(w[i].w.result.status, FETCH_FAILED);
		assert_string_equal(w[i].w.result.reason, "out of file descriptors");
	}
	assert_false(fd_is_open(res.res_fd));
	assert_int_equal(flight_count(), 0);
	assert_int_equal(flight_waiters(), 0);
}

/* ---- many keys, shared buckets --------------------------------------- */

#define MANY 3000   /* about three keys per bucket */

static void
test_many_keys(void **state)
{
	static struct tw first[MANY], second[MANY], third[MANY];
	static struct flight *fl[MANY];
	static char keys[MANY][64];
	struct request r;
	int order[MANY];
	unsigned seed = 12345;

	(void)state;
	req_for(&r, "example.com/m", "v1.0.0");
	for (int i = 0; i < MANY; i++) {
		snprintf(keys[i], sizeof keys[i], "example.com/m%d/@v/v1.0.0.mod", i);
		tw_init(&first[i], i);
		tw_init(&second[i], i);
		fl[i] = flight_join(&r, keys[i], &first[i].w, on_hold, NULL);
		assert_non_null(fl[i]);
	}
	assert_int_equal(flight_count(), MANY);
	/* Every second join finds its own key's flight, wherever it sits in
	 * its bucket's chain. */
	for (int i = 0; i < MANY; i++)
		assert_null(flight_join(&r, keys[i], &second[i].w, on_hold, NULL));
	assert_int_equal(flight_count(), MANY);
	assert_int_equal(flight_waiters(), 2 * MANY);
	for (int i = 0; i < MANY; i++)
		assert_ptr_equal(fl[i]->waiters, &second[i].w);

	/* The pigeonhole principle promises shared buckets; check it. */
	{
		int seen[FLIGHT_BUCKETS] = { 0 }, max = 0;

		for (int i = 0; i < MANY; i++) {
			int b = (int)(text_hash_str(keys[i]) % FLIGHT_BUCKETS);
			if (++seen[b] > max)
				max = seen[b];
		}
		assert_true(max >= 3);
	}

	/* Half finished in a shuffled order: each wakes exactly its own two
	 * waiters, and removing it leaves the rest of its chain intact. */
	for (int i = 0; i < MANY; i++)
		order[i] = i;
	for (int i = MANY - 1; i > 0; i--) {
		int j = (int)(rand_r(&seed) % (unsigned)(i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (int n = 0; n < MANY; n++) {
		int i = order[n];
		struct fetch_result res = { .status = FETCH_NOTFOUND, .res_fd = -1 };

		if (n == MANY / 2) {
			/* The unfinished keys still join their own flights. */
			for (int m = n; m < MANY; m++) {
				int k = order[m];

				tw_init(&third[k], k);
				assert_null(flight_join(&r, keys[k], &third[k].w, on_hold, NULL));
				assert_ptr_equal(fl[k]->waiters, &third[k].w);
			}
			assert_int_equal(flight_waiters(), 3 * (MANY - n));
		}
		snprintf(res.reason, sizeof res.reason, "%d", i);
		assert_int_equal(first[i].woken, 0);
		wakes = 0;
		flight_finish(fl[i], &res);
		assert_int_equal(first[i].woken, 1);
		assert_int_equal(second[i].woken, 1);
		assert_int_equal(atoi(first[i].w.result.reason), i);
		assert_int_equal(atoi(second[i].w.result.reason), i);
		if (n >= MANY / 2) {
			assert_int_equal(third[i].woken, 1);
			assert_int_equal(atoi(third[i].w.result.reason), i);
		}
		assert_int_equal(wakes, n >= MANY / 2 ? 3 : 2);   /* nobody else */
		assert_int_equal(flight_count(), (unsigned)(MANY - n - 1));
	}
	assert_int_equal(flight_waiters(), 0);
	assert_int_equal(flight_count(), 0);
}

/* ---- negative cache --------------------------------------------------- */

static void
test_negcache(void **state)
{
	char reason[128], small[5];

	(void)state;
	negcache_add("neg/zero", "gone", 0);
	assert_false(negcache_get("neg/zero", reason, sizeof reason));
	negcache_add("neg/minus", "gone", -5);
	assert_false(negcache_get("neg/minus", reason, sizeof reason));

	negcache_add("neg/a", "not found: example.com/a", 60000);
	strcpy(reason, "unchanged");
	assert_true(negcache_get("neg/a", reason, sizeof reason));
	assert_string_equal(reason, "not found: example.com/a");
	/* The reason is copied, truncated to the buffer. */
	assert_true(negcache_get("neg/a", small, sizeof small));
	assert_string_equal(small, "not ");
	assert_false(negcache_get("neg/b", reason, sizeof reason));

	/* Added again: the newer reason. */
	negcache_add("neg/a", "410 gone", 60000);
	assert_true(negcache_get("neg/a", reason, sizeof reason));
	assert_string_equal(reason, "410 gone");
}

static void
test_negcache_expires(void **state)
{
	struct timespec nap = { 0, 40 * 1000 * 1000 };
	char reason[64];

	(void)state;
	negcache_add("neg/short", "briefly gone", 20);
	negcache_add("neg/long", "gone a while", 60000);
	assert_true(negcache_get("neg/short", reason, sizeof reason));
	nanosleep(&nap, NULL);
	strcpy(reason, "unchanged");
	assert_false(negcache_get("neg/short", reason, sizeof reason));
	assert_string_equal(reason, "unchanged");
	assert_true(negcache_get("neg/long", reason, sizeof reason));
	/* Nanoseconds past a whole second carry into tv_sec: 999 ms from
	 * now, not 1 ms ago (unless the clock was within 1 ms of a whole
	 * second, which three tries in a row will not all be). */
	for (int i = 0; i < 3; i++) {
		negcache_add("neg/999", "x", 999);
		assert_true(negcache_get("neg/999", reason, sizeof reason));
		nanosleep(&nap, NULL);
	}
}

/* Two keys in one slot (4096 slots): the newer evicts the older, and
 * neither is ever answered with the other's reason. */
static void
test_negcache_collision(void **state)
{
	char a[32], b[32], reason[64];
	uint64_t slot;
	int i;

	(void)state;
	snprintf(a, sizeof a, "neg/c0");
	slot = text_hash_str(a) % 4096;
	for (i = 1;; i++) {
		snprintf(b, sizeof b, "neg/c%d", i);
		if (text_hash_str(b) % 4096 == slot)
			break;
		assert_true(i < 1000000);
	}
	negcache_add(a, "reason a", 60000);
	assert_false(negcache_get(b, reason, sizeof reason));
	/* A ttl of 0 stores nothing, so it evicts nothing either. */
	negcache_add(b, "reason b", 0);
	assert_false(negcache_get(b, reason, sizeof reason));
	assert_true(negcache_get(a, reason, sizeof reason));
	assert_string_equal(reason, "reason a");
	negcache_add(b, "reason b", 60000);
	assert_true(negcache_get(b, reason, sizeof reason));
	assert_string_equal(reason, "reason b");
	assert_false(negcache_get(a, reason, sizeof reason));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_join_and_finish_ok, reset),
		cmocka_unit_test_setup(test_finish_failure, reset),
		cmocka_unit_test_setup(test_finish_out_of_fds, reset),
		cmocka_unit_test_setup(test_many_keys, reset),
		cmocka_unit_test_setup(test_negcache, reset),
		cmocka_unit_test_setup(test_negcache_expires, reset),
		cmocka_unit_test_setup(test_negcache_collision, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
