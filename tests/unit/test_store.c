/*
 * test_store: a finished transfer's temp file becomes a cache file.  A
 * real cache (mkdtemp), real flights and the store's real disk pool;
 * the checksum-database verifier and the disk cap are stubs defined here
 * (a seam: verify.o and gc.o are not linked), so each test decides what
 * verification answers, and when.
 *
 * Callbacks (done(), a waiter's wake(), the stubs) run on the store's
 * and the stub verifier's threads; they record under one mutex and
 * broadcast, and the test waits on that with a 5 s bound, never a sleep.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "flight.h"
#include "gc.h"
#include "route.h"
#include "store.h"
#include "verify.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define WAIT_SECONDS 5

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

/* Waits (under mu) until cond holds, at most WAIT_SECONDS. */
#define WAIT_FOR(cond)                                                          \
	do {                                                                    \
		struct timespec until_;                                         \
		bool ok_;                                                       \
		clock_gettime(CLOCK_REALTIME, &until_);                         \
		until_.tv_sec += WAIT_SECONDS;                                  \
		pthread_mutex_lock(&mu);                                        \
		while (!(ok_ = (cond)) &&                                       \
		       pthread_cond_timedwait(&cv, &mu, &until_) != ETIMEDOUT)  \
			;                                                       \
		ok_ = ok_ || (cond);                                            \
		pthread_mutex_unlock(&mu);                                      \
		if (!ok_)                                                       \
			fail_msg("timed out waiting for %s", #cond);            \
	} while (0)

/* ---- stubs: verify.h and gc.h ------------------------------------------ */

enum verdict { ACCEPT, REJECT, HOLD };

static struct {
	bool wanted;              /* verify_wanted() for .mod and .zip */
	enum verdict verdict;
	int submits;              /* verify_submit() calls */
	char seen[256];           /* what the last one read from its fd */
	bool gate_open;           /* HOLD: answer once this is set */
	pthread_t held[16];       /* HOLD: the threads that will answer */
	int n_held;
} vs;

static atomic_int gc_checks;

struct held_call {
	verify_done_fn done;
	void *arg;
};

bool
verify_wanted(const struct request *r)
{
	return vs.wanted && (r->kind == REQ_MOD || r->kind == REQ_ZIP);
}

static void *
held_verifier(void *p)
{
	struct held_call *h = p;

	pthread_mutex_lock(&mu);
	while (!vs.gate_open)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	h->done(h->arg, NULL);
	free(h);
	return NULL;
}

void
verify_submit(const struct request *r, int fd, verify_done_fn done, void *arg)
{
	char buf[sizeof vs.seen] = "";
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	struct held_call *h;

	(void)r;
	pthread_mutex_lock(&mu);
	vs.submits++;
	snprintf(vs.seen, sizeof vs.seen, "%s", n >= 0 ? buf : "(unreadable)");
	if (vs.verdict == HOLD) {
		/* Started under mu, so vs.held[] is set before it can answer. */
		h = malloc(sizeof *h);
		assert_non_null(h);
		h->done = done;
		h->arg = arg;
		assert_true(vs.n_held < (int)N(vs.held));
		assert_int_equal(pthread_create(&vs.held[vs.n_held], NULL, held_verifier, h), 0);
		vs.n_held++;
	}
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);

	if (vs.verdict == ACCEPT)
		done(arg, NULL);
	else if (vs.verdict == REJECT)
		done(arg, "h1:stub= does not match the checksum database");
}

void
gc_check(void)
{
	atomic_fetch_add(&gc_checks, 1);
}

/* ---- a fetch handed to the store ---------------------------------------- */

struct job {
	struct waiter w;            /* first: wake() gets &w */
	struct request req;
	struct flight *f;
	char key[CACHE_KEY_MAX];
	int wakes;                  /* under mu */
	int dones;                  /* under mu */
	enum store_outcome outcome;
	char reason[512];
};

static void
job_wake(struct waiter *w)
{
	struct job *j = (struct job *)w;

	pthread_mutex_lock(&mu);
	j->wakes++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void
job_done(void *arg, enum store_outcome o, const char *reason)
{
	struct job *j = arg;

	pthread_mutex_lock(&mu);
	j->dones++;
	j->outcome = o;
	snprintf(j->reason, sizeof j->reason, "%s", reason ? reason : "");
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void
no_hold(void *arg)
{
	(void)arg;
}

/* Joins the flight for url (as a request that missed the cache would). */
static void
job_join(struct job *j, const char *url)
{
	const char *why = NULL;

	memset(j, 0, sizeof *j);
	j->w.wake = job_wake;
	j->w.result.res_fd = -1;
	if (route_parse(url, &j->req, &why) != 0)
		fail_msg("route_parse(%s): %s", url, why);
	assert_int_equal(cache_key(&j->req, j->key, sizeof j->key), 0);
	j->f = flight_join(&j->req, j->key, &j->w, no_hold, NULL);
	assert_non_null(j->f);
}

/* The fetcher's part: the body in a temp file, handed to the store. */
static void
job_submit(struct job *j, const char *body)
{
	struct cache_tmp t;
	size_t len = strlen(body);

	assert_int_equal(cache_tmp_create(j->key, &t), 0);
	assert_int_equal(write(t.tmp_fd, body, len), (ssize_t)len);
	store_submit(j->f, &t, len, "https://proxy.example/m", job_done, j);
}

static int
job_dones(struct job *j)
{
	int n;

	pthread_mutex_lock(&mu);
	n = j->dones;
	pthread_mutex_unlock(&mu);
	return n;
}

static int
job_wakes(struct job *j)
{
	int n;

	pthread_mutex_lock(&mu);
	n = j->wakes;
	pthread_mutex_unlock(&mu);
	return n;
}

/* ---- fixture ------------------------------------------------------------ */

static char dir[PATH_MAX - 64];

static int
rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static int
setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	(void)state;
	snprintf(dir, sizeof dir, "%s/test_store.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL || cache_init(dir, false) != 0 || store_start() != 0)
		return -1;
	memset(&vs, 0, sizeof vs);
	vs.wanted = true;
	atomic_store(&gc_checks, 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	/* As the daemon does: the verifier first, then the store. */
	pthread_mutex_lock(&mu);
	vs.gate_open = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < vs.n_held; i++)
		pthread_join(vs.held[i], NULL);
	store_stop();
	cache_shutdown();
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return flight_count() == 0 ? 0 : -1;   /* every test ends its flights */
}

/* ---- checks ------------------------------------------------------------- */

/* The names in <dir>/<rel>, space-separated and sorted ("" if none or
 * missing): no temp file may be left behind. */
static void
names_in(const char *rel, char *out, size_t n)
{
	char path[PATH_MAX];
	struct dirent **names;
	int k;
	size_t off = 0;

	snprintf(path, sizeof path, "%s/%s", dir, rel);
	out[0] = '\0';
	if ((k = scandir(path, &names, NULL, alphasort)) < 0)
		return;
	for (int i = 0; i < k; i++) {
		const char *s = names[i]->d_name;

		if (strcmp(s, ".") != 0 && strcmp(s, "..") != 0)
			off += (size_t)snprintf(out + off, n - off, "%s%s", off ? " " : "", s);
		free(names[i]);
	}
	free(names);
	assert_true(off < n);
}

static void
expect_cached(const char *key, const char *body)
{
	struct cache_entry e;
	char buf[512] = "";

	if (cache_open(key, &e) != 0)
		fail_msg("%s is not in the cache", key);
	assert_int_equal(e.size, strlen(body));
	assert_true(pread(e.ce_fd, buf, sizeof buf - 1, 0) >= 0);
	close(e.ce_fd);
	assert_string_equal(buf, body);
}

/* The waiter got FETCH_OK with its own fd to the published body. */
static void
expect_served(struct job *j, const char *body)
{
	struct fetch_result *res = &j->w.result;
	char buf[512] = "";

	assert_int_equal(job_wakes(j), 1);
	assert_int_equal(res->status, FETCH_OK);
	assert_int_equal(res->size, strlen(body));
	assert_true(res->res_fd >= 0);
	assert_true(pread(res->res_fd, buf, sizeof buf - 1, 0) >= 0);
	assert_string_equal(buf, body);
	close(res->res_fd);
	res->res_fd = -1;
}

/* ---- tests ------------------------------------------------------------- */

static const char info_body[] = "{\"Version\":\"v1.0.0\",\"Time\":\"2020-01-01T00:00:00Z\"}";
static const char mod_body[] = "module example.com/m\n\ngo 1.21\n";

static void
test_info_published(void **state)
{
	struct job j;
	char names[1024];

	(void)state;
	job_join(&j, "/example.com/m/@v/v1.0.0.info");
	job_submit(&j, info_body);
	WAIT_FOR(j.dones > 0);
	assert_int_equal(j.outcome, STORE_FINISHED);
	assert_string_equal(j.reason, "");
	/* The flight was ended before done(): the waiter has the answer. */
	expect_served(&j, info_body);
	assert_int_equal(flight_count(), 0);
	expect_cached("example.com/m/@v/v1.0.0.info", info_body);
	names_in("example.com/m/@v", names, sizeof names);
	assert_string_equal(names, "v1.0.0.info");
	assert_int_equal(vs.submits, 0);       /* an .info is not verified */
	assert_int_equal(atomic_load(&gc_checks), 1);
	assert_int_equal(job_dones(&j), 1);
}

/* A query's answer is kept under the query and under the version. */
static void
test_query_info_published(void **state)
{
	struct job j;

	(void)state;
	job_join(&j, "/example.com/m/@v/master.info");
	assert_false(j.req.immutable);
	job_submit(&j, info_body);
	WAIT_FOR(j.dones > 0);
	assert_int_equal(j.outcome, STORE_FINISHED);
	expect_served(&j, info_body);
	expect_cached("example.com/m/@query/master.info", info_body);
	expect_cached("example.com/m/@v/v1.0.0.info", info_body);
}

static void
test_info_rejected(void **state)
{
	static const struct {
		const char *url, *body, *why;
	} cases[] = {
		{ "/example.com/m/@v/v1.0.0.info", "not json", "not a JSON object" },
		{ "/example.com/m/@v/v1.0.0.info", "{\"Time\":\"2020-01-01T00:00:00Z\"}", "no Version" },
		{ "/example.com/m/@v/v1.0.0.info", "{\"Version\":\"v1.0.1\"}", "another version" },
		{ "/example.com/m/@v/master.info", "{\"Version\":\"v2.0.0\"}", "does not fit" },
		{ "/example.com/m/@latest", "{\"Version\":\"1.0\"}", "non-canonical" },
	};
	struct fetch_result failed = { .status = FETCH_FAILED, .res_fd = -1 };

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct job j;
		char names[1024];

		job_join(&j, cases[i].url);
		job_submit(&j, cases[i].body);
		WAIT_FOR(j.dones > 0);
		assert_int_equal(j.outcome, STORE_REJECTED);
		if (strstr(j.reason, cases[i].why) == NULL ||
		    strstr(j.reason, "https://proxy.example/m") == NULL)
			fail_msg("%s: reason \"%s\", want the origin and \"%s\"",
			         cases[i].body, j.reason, cases[i].why);
		/* The flight is still open: the fetcher may try elsewhere. */
		assert_int_equal(flight_count(), 1);
		assert_int_equal(job_wakes(&j), 0);
		/* Nothing cached, no temp file left. */
		names_in("example.com/m/@v", names, sizeof names);
		assert_string_equal(names, "");
		names_in("example.com/m/@query", names, sizeof names);
		assert_string_equal(names, "");
		names_in("example.com/m", names, sizeof names);
		assert_true(strstr(names, CACHE_TMP_PREFIX) == NULL);
		assert_true(strstr(names, "@latest") == NULL);

		flight_finish(j.f, &failed);
		assert_int_equal(job_wakes(&j), 1);
		assert_int_equal(j.w.result.status, FETCH_FAILED);
		assert_int_equal(job_dones(&j), 1);
	}
	assert_int_equal(atomic_load(&gc_checks), 0);
}

static void
test_mod_verified_published(void **state)
{
	struct job j;

	(void)state;
	vs.verdict = ACCEPT;
	job_join(&j, "/example.com/m/@v/v1.0.0.mod");
	job_submit(&j, mod_body);
	WAIT_FOR(j.dones > 0);
	assert_int_equal(j.outcome, STORE_FINISHED);
	assert_int_equal(vs.submits, 1);
	assert_string_equal(vs.seen, mod_body);   /* the verifier read the temp file */
	expect_served(&j, mod_body);
	expect_cached("example.com/m/@v/v1.0.0.mod", mod_body);
	assert_int_equal(atomic_load(&gc_checks), 1);
}

/* With no checksum database to ask, a .mod is published unverified. */
static void
test_mod_unverified_published(void **state)
{
	struct job j;

	(void)state;
	vs.wanted = false;
	job_join(&j, "/example.com/m/@v/v1.0.0.mod");
	job_submit(&j, mod_body);
	WAIT_FOR(j.dones > 0);
	assert_int_equal(j.outcome, STORE_FINISHED);
	assert_int_equal(vs.submits, 0);
	expect_served(&j, mod_body);
	expect_cached("example.com/m/@v/v1.0.0.mod", mod_body);
}

static void
test_mod_verification_rejects(void **state)
{
	struct job j;
	struct cache_entry e;
	char names[1024];
	const char *why;

	(void)state;
	vs.verdict = REJECT;
	job_join(&j, "/example.com/m/@v/v1.0.0.mod");
	job_submit(&j, mod_body);
	WAIT_FOR(j.dones > 0);
	/* Verification's refusal ends the flight itself. */
	assert_int_equal(j.outcome, STORE_FINISHED);
	assert_int_equal(vs.submits, 1);
	assert_int_equal(job_wakes(&j), 1);
	assert_int_equal(flight_count(), 0);
	why = j.w.result.reason;
	assert_int_equal(j.w.result.status, FETCH_FAILED);
	if (strstr(why, "rejected") == NULL || strstr(why, "does not match the checksum database") == NULL ||
	    strstr(why, "https://proxy.example/m") == NULL)
		fail_msg("reason \"%s\"", why);
	assert_int_equal(cache_open("example.com/m/@v/v1.0.0.mod", &e), -ENOENT);
	names_in("example.com/m/@v", names, sizeof names);
	assert_string_equal(names, "");
	assert_int_equal(atomic_load(&gc_checks), 0);
}

/* Verifications that take their time hold no disk thread: with more
 * .mod files waiting for their verdict than the store has disk threads
 * (4), an .info submitted after them is still published meanwhile. */
#define SLOW_MODS 8

static void
test_slow_verification_does_not_block(void **state)
{
	static struct job mods[SLOW_MODS];
	struct job info;
	struct cache_entry e;
	char url[128], key[128];

	(void)state;
	vs.verdict = HOLD;
	for (int i = 0; i < SLOW_MODS; i++) {
		snprintf(url, sizeof url, "/example.com/m%d/@v/v1.0.0.mod", i);
		job_join(&mods[i], url);
		job_submit(&mods[i], mod_body);
	}
	WAIT_FOR(vs.submits == SLOW_MODS);   /* the verifier has them all */

	job_join(&info, "/example.com/m/@v/v1.0.0.info");
	job_submit(&info, info_body);
	WAIT_FOR(info.dones > 0);
	assert_int_equal(info.outcome, STORE_FINISHED);
	expect_served(&info, info_body);
	expect_cached("example.com/m/@v/v1.0.0.info", info_body);

	/* The .mod files still wait for their verdict. */
	for (int i = 0; i < SLOW_MODS; i++) {
		assert_int_equal(job_dones(&mods[i]), 0);
		assert_int_equal(job_wakes(&mods[i]), 0);
		assert_int_equal(cache_open(mods[i].key, &e), -ENOENT);
	}
	assert_int_equal(flight_count(), SLOW_MODS);

	pthread_mutex_lock(&mu);
	vs.gate_open = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < SLOW_MODS; i++) {
		WAIT_FOR(mods[i].dones > 0);
		assert_int_equal(mods[i].outcome, STORE_FINISHED);
		expect_served(&mods[i], mod_body);
		snprintf(key, sizeof key, "example.com/m%d/@v/v1.0.0.mod", i);
		expect_cached(key, mod_body);
	}
}

/* store_stop() stores everything already queued before it returns. */
static void
test_stop_drains(void **state)
{
	static struct job jobs[40];
	char url[128];

	(void)state;
	vs.verdict = ACCEPT;
	for (size_t i = 0; i < N(jobs); i++) {
		snprintf(url, sizeof url, "/example.com/m%zu/@v/v1.0.0.%s", i, i % 2 ? "mod" : "info");
		job_join(&jobs[i], url);
	}
	for (size_t i = 0; i < N(jobs); i++)
		job_submit(&jobs[i], i % 2 ? "module x\n" : info_body);
	store_stop();
	/* No waiting: all done by now. */
	for (size_t i = 0; i < N(jobs); i++) {
		if (job_dones(&jobs[i]) != 1)
			fail_msg("job %zu: done() called %d times", i, job_dones(&jobs[i]));
		assert_int_equal(jobs[i].outcome, STORE_FINISHED);
		expect_served(&jobs[i], i % 2 ? "module x\n" : info_body);
	}
	assert_int_equal(vs.submits, (int)N(jobs) / 2);
	assert_int_equal(atomic_load(&gc_checks), (int)N(jobs));
	assert_int_equal(flight_count(), 0);

	/* Once stopped, a submission is stored on the caller's thread. */
	job_join(&jobs[0], "/example.com/m/@v/v1.0.0.info");
	job_submit(&jobs[0], info_body);
	assert_int_equal(job_dones(&jobs[0]), 1);
	expect_served(&jobs[0], info_body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_info_published, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_info_published, setup, teardown),
		cmocka_unit_test_setup_teardown(test_info_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mod_verified_published, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mod_unverified_published, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mod_verification_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_verification_does_not_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_drains, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
