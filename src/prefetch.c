/* prefetch: see include/prefetch.h.  Main thread; wake() runs on the
 * fetcher or a store thread and only queues the finished item. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "clock.h"
#include "config.h"
#include "direct.h"
#include "fetch.h"
#include "flight.h"
#include "gomod.h"
#include "gosum.h"
#include "httpget.h"
#include "metrics.h"
#include "prefetch.h"
#include "progress.h"
#include "store.h"
#include "sumdburl.h"
#include "text.h"
#include "validate.h"
#include "verify.h"

#define TABLE_SLOTS 4096
#define DEFAULT_JOBS 8
#define READ_MAX (16u << 20)   /* a .mod or @latest read back: validate.c's limits */

struct item {
	struct waiter w;           /* first: wake() gets &w */
	struct item *hnext;        /* table chain */
	struct item *qnext;        /* pending list, or done list */
	struct request req;
	char key[CACHE_KEY_MAX];
	bool follow;               /* a .mod whose requirements join the graph */
	bool resolve;              /* an @latest whose version becomes a target */
	bool cached;               /* answered from the cache, not fetched */
	bool ok;                   /* finished, and the file is in the cache */
	struct fetch_result res;   /* once done */
};

static struct {
	struct config cfg;
	struct gosum sums;         /* the go.sum arguments: what to fetch, and anchors */
	int jobs;
	struct item *table[TABLE_SLOTS];
	struct item *pending, **pending_tail;
	unsigned known, done, outstanding;
	unsigned fetched, cached, failed;
	uint64_t bytes;
	char **failures;           /* "FAIL ..." lines */
	size_t n_failures;
	pthread_mutex_t lock;      /* the done list */
	pthread_cond_t cond;
	struct item *finished;
} run = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* --- the work list ------------------------------------------------------------ */

static struct item *lookup(const char *key)
{
	struct item *it = run.table[text_hash_str(key) % TABLE_SLOTS];

	while (it && strcmp(it->key, key) != 0)
		it = it->hnext;
	return it;
}

/* Adds the file at raw (a URL path) once; returns it (new or known), or
 * NULL (out of memory, or a path no request can name). */
static struct item *add_file(const char *raw)
{
	struct item *it = calloc(1, sizeof *it), *old;
	const char *why;
	unsigned slot;

	if (it == NULL)
		return NULL;
	if (route_parse(raw, &it->req, &why) != 0 || cache_key(&it->req, it->key, sizeof it->key) < 0) {
		fprintf(stderr, "goproxyd prefetch: %s: %s\n", raw, why ? why : "path too long");
		free(it);
		return NULL;
	}
	if ((old = lookup(it->key)) != NULL) {
		free(it);
		return old;
	}
	slot = (unsigned)(text_hash_str(it->key) % TABLE_SLOTS);
	it->hnext = run.table[slot];
	run.table[slot] = it;
	*run.pending_tail = it;
	run.pending_tail = &it->qnext;
	run.known++;
	return it;
}

static void follow(struct item *it, int fd);

/* A known file asked for again, maybe now to be followed: a file already
 * in the cache is followed at once. */
static void upgrade(struct item *it, bool follow_mod, bool resolve)
{
	bool more = (follow_mod && !it->follow) || (resolve && !it->resolve);
	struct cache_entry e;

	it->follow |= follow_mod;
	it->resolve |= resolve;
	if (more && it->ok && cache_open(it->key, &e) == 0) {
		follow(it, e.ce_fd);
		close(e.ce_fd);
	}
}

static int add_module(const char *path, bool latest_resolves)
{
	char esc[MP_PATH_MAX], raw[MP_PATH_MAX + 32];
	struct item *it;

	if (mp_escape(path, esc, sizeof esc) != NULL)
		return -1;
	snprintf(raw, sizeof raw, "/%s/@v/list", esc);
	if (add_file(raw) == NULL)
		return -1;
	snprintf(raw, sizeof raw, "/%s/@latest", esc);
	if ((it = add_file(raw)) == NULL)
		return -1;
	upgrade(it, false, latest_resolves);
	return 0;
}

enum { W_INFO = 1, W_MOD = 2, W_ZIP = 4, W_ALL = 7 };

/* path@version's files in want; follow: its .mod's requirements too. */
static int add_version(const char *path, const char *version, unsigned want, bool follow)
{
	static const char *const ext[] = { "info", "mod", "zip" };
	char esc[MP_PATH_MAX], escv[MP_VERSION_MAX], raw[MP_PATH_MAX + MP_VERSION_MAX + 16];

	if (mp_escape(path, esc, sizeof esc) != NULL || mp_escape(version, escv, sizeof escv) != NULL)
		return -1;
	for (unsigned i = 0; i < 3; i++) {
		struct item *it;

		if (!(want & (1u << i)))
			continue;
		snprintf(raw, sizeof raw, "/%s/@v/%s.%s", esc, escv, ext[i]);
		if ((it = add_file(raw)) == NULL)
			return -1;
		upgrade(it, follow && i == 1, false);
	}
	return add_module(path, false);
}

/* --- arguments ----------------------------------------------------------------- */

static int read_all(int fd, char **buf, size_t *len, size_t max)
{
	size_t cap = 8192, n = 0;
	char *b = malloc(cap);
	ssize_t got;

	if (b == NULL)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			char *g = cap >= max ? NULL : realloc(b, cap * 2);

			if (g == NULL) {
				free(b);
				return -EFBIG;
			}
			b = g;
			cap *= 2;
		}
		if ((got = read(fd, b + n, cap - n)) < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			free(b);
			return -errno;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	*buf = b;
	*len = n;
	return 0;
}

static const char *on_require(void *arg, const struct gomod_require *r)
{
	(void)arg;
	if (!mp_is_canonical(r->version) || mp_check_path(r->path) != NULL)
		return NULL;   /* the go command reports it; nothing to fetch */
	return add_version(r->path, r->version, W_ALL, true) < 0 ? "cannot add a requirement" : NULL;
}

static int add_gomod(const char *name, const char *buf, size_t len)
{
	struct gomod gm;
	const char *bad = gomod_parse(buf, len, &gm, on_require, NULL);

	if (bad != NULL) {
		fprintf(stderr, "goproxyd prefetch: %s: %s\n", name, bad);
		return -1;
	}
	return 0;
}

static int on_listed(void *arg, const char *path, const char *version)
{
	(void)arg;
	return add_version(path, version, W_ALL, false);
}

static int add_gosum(const char *name, const char *buf, size_t len)
{
	size_t first = run.sums.n;
	char why[600];

	if (gosum_parse(&run.sums, name, buf, len, why, sizeof why) < 0) {
		fprintf(stderr, "goproxyd prefetch: %s\n", why);
		return -1;
	}
	for (size_t i = first; i < run.sums.n; i++) {
		const struct gosum_line *l = &run.sums.lines[i];

		if (add_version(l->path, l->version, l->gomod ? W_MOD : W_ALL, false) < 0)
			return -1;
	}
	return 0;
}

static int add_stdin(void)
{
	char *buf, why[600];
	size_t len;
	int r = read_all(0, &buf, &len, 256u << 20);

	if (r < 0) {
		fprintf(stderr, "goproxyd prefetch: standard input: %s\n", strerror(-r));
		return -1;
	}
	r = gosum_modlist(buf, len, "standard input", on_listed, NULL, why, sizeof why);
	free(buf);
	if (r != 0)
		fprintf(stderr, "goproxyd prefetch: %s\n", r == -1 ? why : "cannot add a module");
	return r ? -1 : 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int add_file_arg(const char *arg)
{
	char *buf;
	size_t len;
	int fd = open(arg, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0 || (r = read_all(fd, &buf, &len, 64u << 20)) < 0) {
		fprintf(stderr, "goproxyd prefetch: %s: %s\n", arg, strerror(fd < 0 ? errno : -r));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	r = ends_with(arg, "go.mod") ? add_gomod(arg, buf, len) : add_gosum(arg, buf, len);
	free(buf);
	return r;
}

static int add_arg(const char *arg)
{
	char path[MP_PATH_MAX], version[MP_VERSION_MAX];
	const char *bad;

	if (strcmp(arg, "-") == 0)
		return add_stdin();
	if (ends_with(arg, "go.sum") || ends_with(arg, "go.mod") || strchr(arg, '@') == NULL)
		return add_file_arg(arg);
	if ((bad = gosum_split_at(arg, path, sizeof path, version, sizeof version)) != NULL) {
		fprintf(stderr, "goproxyd prefetch: %s: %s\n", arg, bad);
		return -1;
	}
	if (strcmp(version, "latest") == 0)
		return add_module(path, true);
	return add_version(path, version, W_ALL, false);
}

/* --- the go.sum anchor (a store thread) ------------------------------------------ */

static const char *anchor_check(const struct request *r, int fd, char *buf, size_t n)
{
	char got[DIRHASH_SIZE];
	const char *want;

	if (r->kind != REQ_MOD && r->kind != REQ_ZIP)
		return NULL;
	if ((want = gosum_find(&run.sums, r->path, r->version, r->kind == REQ_MOD)) == NULL)
		return NULL;
	if (verify_hash(r, fd, got, buf, n) < 0)
		return buf;
	if (strcmp(got, want) == 0)
		return NULL;
	snprintf(buf, n, "checksum mismatch: fetched %s has %s, go.sum has %s",
	         r->kind == REQ_MOD ? "go.mod" : "zip", got, want);
	return buf;
}

/* --- running ---------------------------------------------------------------------- */

static void wake(struct waiter *w)
{
	struct item *it = (struct item *)w;

	pthread_mutex_lock(&run.lock);
	it->res = w->result;
	it->qnext = run.finished;
	run.finished = it;
	pthread_cond_signal(&run.cond);
	pthread_mutex_unlock(&run.lock);
}

static void hold(void *arg)
{
	(void)arg;
}

static const char *file_name(const struct request *r)
{
	switch (r->kind) {
	case REQ_LIST: return "list";
	case REQ_LATEST: return "@latest";
	default: return route_ext(r->kind);
	}
}

static void fail(struct item *it, const char *reason)
{
	char **grown = realloc(run.failures, (run.n_failures + 1) * sizeof *grown);
	char line[1024];

	run.failed++;
	if (it->req.kind == REQ_LIST || it->req.kind == REQ_LATEST)
		snprintf(line, sizeof line, "FAIL %s %s: %s", it->req.path, file_name(&it->req), reason);
	else
		snprintf(line, sizeof line, "FAIL %s@%s %s: %s", it->req.path, it->req.version,
		         file_name(&it->req), reason);
	if (grown == NULL)
		return;
	run.failures = grown;
	run.failures[run.n_failures++] = strdup(line);
}

/* Follows what a finished .mod or @latest leads to. */
static void follow(struct item *it, int fd)
{
	char *buf, version[MP_VERSION_MAX];
	size_t len;
	struct gomod gm;

	if (lseek(fd, 0, SEEK_SET) < 0 || read_all(fd, &buf, &len, READ_MAX) < 0)
		return;
	if (it->follow)
		gomod_parse(buf, len, &gm, on_require, NULL);
	if (it->resolve && validate_info(buf, len, it->req.path, NULL, version) == NULL)
		add_version(it->req.path, version, W_ALL, false);
	free(buf);
}

/* A cached .mod or .zip must still match the go.sum line naming it. */
static bool cached_ok(struct item *it, int fd)
{
	char why[512];

	if (anchor_check(&it->req, fd, why, sizeof why) == NULL)
		return true;
	fail(it, strncmp(why, "checksum mismatch: fetched", 26) == 0 ? "cached file differs from go.sum"
	                                                             : why);
	return false;
}

static void complete(struct item *it)
{
	run.done++;
	if (it->res.status != FETCH_OK) {
		fail(it, it->res.reason[0] ? it->res.reason : "not found");
		return;
	}
	if (it->cached) {
		if (!cached_ok(it, it->res.res_fd))
			goto out;
		run.cached++;
	} else {
		run.fetched++;
		run.bytes += it->res.size;
	}
	it->ok = true;
	if (it->follow || it->resolve)
		follow(it, it->res.res_fd);
out:
	close(it->res.res_fd);
	it->res.res_fd = -1;
}

/* Answers it from the cache when the cache has it: true then. */
static bool from_cache(struct item *it)
{
	struct cache_entry e;

	if (cache_open(it->key, &e) < 0)
		return false;
	if (!it->req.immutable && cache_age_ms(&e) >= run.cfg.cache_expire_ms) {
		close(e.ce_fd);
		return false;
	}
	it->cached = true;
	it->res = (struct fetch_result){ .status = FETCH_OK, .res_fd = e.ce_fd, .size = e.size };
	return true;
}

static void start_one(struct item *it)
{
	struct flight *f;

	if (config_denied(&run.cfg, it->req.path)) {
		it->res = (struct fetch_result){ .status = FETCH_FAILED };
		snprintf(it->res.reason, sizeof it->res.reason, "refused by -deny");
		complete(it);
		return;
	}
	if (from_cache(it)) {
		complete(it);
		return;
	}
	it->w.wake = wake;
	run.outstanding++;
	if ((f = flight_join(&it->req, it->key, &it->w, hold, NULL)) != NULL)
		fetch_submit(f);
}

static void start_pending(void)
{
	while (run.pending) {
		struct item *it = run.pending;

		run.pending = it->qnext;
		if (run.pending == NULL)
			run.pending_tail = &run.pending;
		it->qnext = NULL;
		start_one(it);
	}
}

static struct item *take_finished(struct progress *p)
{
	struct item *list;
	struct timespec until;

	pthread_mutex_lock(&run.lock);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 100 * 1000 * 1000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	if (run.finished == NULL)
		pthread_cond_timedwait(&run.cond, &run.lock, &until);
	list = run.finished;
	run.finished = NULL;
	pthread_mutex_unlock(&run.lock);
	progress_tick(p, run.done, run.known, run.bytes);
	return list;
}

static void run_all(void)
{
	struct progress p;

	progress_init(&p, stderr, "prefetch");
	start_pending();
	while (run.outstanding > 0 || run.pending) {
		struct item *it = take_finished(&p), *next;

		for (; it; it = next) {
			next = it->qnext;
			run.outstanding--;
			complete(it);
		}
		start_pending();
	}
	progress_end(&p, run.done, run.known, run.bytes);
}

/* --- start-up and shutdown ------------------------------------------------------- */

/* The pipeline the daemon runs, bottom up as in main.c, without the
 * serving threads. */
static int start_pipeline(void)
{
	const struct httpget_conf http = { run.cfg.netrc, run.cfg.connect_timeout_ms };
	int r;

	if ((r = cache_init(run.cfg.cache_dir, true)) < 0) {
		fprintf(stderr, "goproxyd prefetch: -cacheDir %s: %s\n", run.cfg.cache_dir, strerror(-r));
		return 1;
	}
	if (httpget_init(&http) < 0 || sumdb_url_init(&run.cfg) < 0)
		return 1;
	if (verify_init(&run.cfg) < 0)
		return 2;
	metrics_init(&run.cfg);
	store_set_check(anchor_check);
	/* -exclude and `direct` fetch with the go command, as the daemon does. */
	if (direct_start(&run.cfg) < 0 || sumdb_locate_start() < 0 || verify_start() < 0 ||
	    store_start() < 0 || fetch_start(&run.cfg) < 0)
		return 1;
	return 0;
}

static void stop_pipeline(void)
{
	fetch_stop(monotonic_ms());
	direct_stop();
	verify_stop(monotonic_ms());
	store_stop();
	sumdb_locate_stop();
	sumdb_url_free();
	httpget_free();
	cache_shutdown();
}

static void report(void)
{
	for (size_t i = 0; i < run.n_failures; i++) {
		printf("%s\n", run.failures[i]);
		free(run.failures[i]);
	}
	free(run.failures);
	printf("fetched %u, cached %u, failed %u\n", run.fetched, run.cached, run.failed);
	fflush(stdout);
}

static void free_items(void)
{
	for (unsigned s = 0; s < TABLE_SLOTS; s++) {
		struct item *it = run.table[s], *next;

		for (; it; it = next) {
			next = it->hnext;
			free(it);
		}
	}
}

static const char *set_jobs(void *arg, const char *v)
{
	char *end;
	long n = strtol(v, &end, 10);

	(void)arg;
	if (*v == '\0' || *end != '\0' || n < 1 || n > 4096)
		return "want a number of transfers from 1 to 4096";
	run.jobs = (int)n;
	return NULL;
}

static const struct config_cmdflag own_flags[] = { { "j", set_jobs } };

static int parse(int argc, char **argv, int *first)
{
	const struct config_cmdflags cf = { "prefetch", own_flags, 1, NULL };
	int r = config_parse_cmd(&run.cfg, argc, argv, stdout, stderr, &cf, first);

	if (r == CONFIG_EXIT_OK)
		printf("\ngoproxyd prefetch [flags] [-j N] ARG...: ARG is a go.sum, a go.mod, "
		       "module@version, module@latest, or - (lines \"module version\" on standard input).\n");
	if (r != CONFIG_RUN)
		return r == CONFIG_EXIT_OK ? 0 : 2;
	if (*first >= argc) {
		fprintf(stderr, "goproxyd prefetch: nothing to fetch: give a go.sum, a go.mod, "
		        "module@version or -\n");
		return 2;
	}
	if (run.cfg.offline) {
		fprintf(stderr, "goproxyd prefetch: -proxy off: there is no upstream to fetch from\n");
		return 2;
	}
	run.cfg.max_fetches = run.jobs;
	return -1;
}

int prefetch_main(int argc, char **argv)
{
	int first = argc, r;

	run.jobs = DEFAULT_JOBS;
	run.pending_tail = &run.pending;
	if ((r = parse(argc, argv, &first)) >= 0) {
		config_free(&run.cfg);
		return r;
	}
	if ((r = start_pipeline()) != 0) {
		stop_pipeline();
		config_free(&run.cfg);
		return r;
	}
	for (int i = first; i < argc && r == 0; i++)
		if (add_arg(argv[i]) < 0)
			r = 2;
	gosum_sort(&run.sums);
	if (r == 0) {
		run_all();
		report();
		r = run.failed ? 1 : 0;
	}
	stop_pipeline();
	free_items();
	gosum_free(&run.sums);
	config_free(&run.cfg);
	return r;
}
