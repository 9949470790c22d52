/* gc: see include/gc.h.  gc_note_use() and gc_check() on any thread; the
 * passes on the collector thread (or in `goproxyd gc`). */
#include <errno.h>
#include <ftw.h>
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
#include "catalog.h"
#include "gc.h"
#include "log.h"
#include "text.h"

#define USE_SLOTS 4096
#define LOW_WATER(max) ((max) / 10 * 9)

/* One unit of eviction: a version (files sharing "<m>/@v/<v>.") or one file. */
struct unit {
	char *key;           /* relative path; for a version "<m>/@v/<v>" */
	uint64_t bytes;
	unsigned files;
	int64_t used;        /* seconds */
	bool version;
};

struct scan {
	const char *dir;
	size_t dirlen;
	struct unit *units;
	size_t n, cap;
	uint64_t files, bytes;
	int err;
};

static const struct config *cfg;
static _Atomic uint64_t use_hash[USE_SLOTS];
static _Atomic int64_t use_time[USE_SLOTS];
static atomic_ullong evicted_units, evicted_bytes;

static pthread_t thread;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool running, wanted, stopping;

/* A version's files share the key up to the extension. */
static size_t unit_len(const char *key, bool *version)
{
	const char *v = strstr(key, "/@v/"), *dot;

	*version = false;
	if (v == NULL || strcmp(v + 4, "list") == 0 || (dot = strrchr(v + 4, '.')) == NULL)
		return strlen(key);
	if (strcmp(dot, ".info") && strcmp(dot, ".mod") && strcmp(dot, ".zip") && strcmp(dot, ".ziphash"))
		return strlen(key);
	*version = true;
	return (size_t)(dot - key);
}

void gc_note_use(const char *key)
{
	bool version;
	size_t n;
	uint64_t h;

	if (cfg == NULL || cfg->cache_max_bytes == 0)
		return;
	n = unit_len(key, &version);
	h = text_hash(key, n);
	/* Two stores, not one atomic pair: a torn pair only costs a unit a
	 * slightly wrong age. */
	atomic_store_explicit(&use_hash[h % USE_SLOTS], h, memory_order_relaxed);
	atomic_store_explicit(&use_time[h % USE_SLOTS], (int64_t)time(NULL), memory_order_relaxed);
}

static int64_t noted_use(const char *key, size_t n)
{
	uint64_t h = text_hash(key, n);

	if (atomic_load_explicit(&use_hash[h % USE_SLOTS], memory_order_relaxed) != h)
		return 0;
	return atomic_load_explicit(&use_time[h % USE_SLOTS], memory_order_relaxed);
}

/* --- one pass ----------------------------------------------------------- */

static struct scan *scanning;   /* nftw has no user pointer; gc_run is serialized */

/* Every file starts as its own unit; merge_versions() joins a version's. */
static int add_file(struct scan *sc, const char *rel, const struct stat *st)
{
	bool version;
	size_t n = unit_len(rel, &version);
	struct unit *u;
	int64_t noted;

	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 1024;
		struct unit *grown = realloc(sc->units, cap * sizeof *grown);
		if (grown == NULL)
			return -ENOMEM;
		sc->units = grown;
		sc->cap = cap;
	}
	u = &sc->units[sc->n];
	if ((u->key = strndup(rel, n)) == NULL)
		return -ENOMEM;
	sc->n++;
	u->bytes = (uint64_t)st->st_size;
	u->files = 1;
	u->version = version;
	/* Mutable files age by their last refresh; versions by their last use. */
	u->used = st->st_mtim.tv_sec;
	if (version && st->st_atim.tv_sec > u->used)
		u->used = st->st_atim.tv_sec;
	if (version && (noted = noted_use(rel, n)) > u->used)
		u->used = noted;
	return 0;
}

static int visit(const char *fpath, const struct stat *st, int type, struct FTW *ftw)
{
	const char *base = fpath + ftw->base, *rel = fpath + scanning->dirlen + 1;

	if (type == FTW_D && ftw->level == 1 && strcmp(base, CACHE_DIRECT_DIR) == 0)
		return FTW_SKIP_SUBTREE;   /* the go command's GOPATH: never evicted */
	if (type != FTW_F)
		return 0;
	if (strncmp(base, CACHE_TMP_PREFIX, strlen(CACHE_TMP_PREFIX)) == 0) {
		/* A writer killed while a sibling runs on: nobody else sees it. */
		if (cache_temp_remove_if_dead(fpath, base, st) > 0)
			log_info("removed stale temp file %s", fpath);
		return 0;
	}
	scanning->files++;
	scanning->bytes += (uint64_t)st->st_size;
	if (strcmp(base, "goproxyd-verified-tree") == 0)
		return 0;
	if ((scanning->err = add_file(scanning, rel, st)) < 0)
		return FTW_STOP;
	return 0;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct unit *)a)->key, ((const struct unit *)b)->key);
}

/* One unit per version: the walk met its files one at a time. */
static void merge_versions(struct scan *sc)
{
	size_t out = 0;

	qsort(sc->units, sc->n, sizeof *sc->units, by_key);
	for (size_t i = 0; i < sc->n; i++) {
		struct unit *last = out ? &sc->units[out - 1] : NULL;

		if (last && last->version && sc->units[i].version &&
		    strcmp(last->key, sc->units[i].key) == 0) {
			last->bytes += sc->units[i].bytes;
			last->files += sc->units[i].files;
			if (sc->units[i].used > last->used)
				last->used = sc->units[i].used;
			free(sc->units[i].key);
			continue;
		}
		sc->units[out++] = sc->units[i];
	}
	sc->n = out;
}

static int by_age(const void *a, const void *b)
{
	const struct unit *x = a, *y = b;

	return (x->used > y->used) - (x->used < y->used);
}

/* Unlinks every file of u (an open reader keeps its file to the end). */
static void evict(const char *dir, const struct unit *u)
{
	static const char *const exts[] = { ".info", ".mod", ".zip", ".ziphash" };
	char path[4096];

	catalog_forget(u->key);   /* a version's unit forgets all its files */
	if (!u->version) {
		snprintf(path, sizeof path, "%s/%s", dir, u->key);
		unlink(path);
		return;
	}
	for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
		snprintf(path, sizeof path, "%s/%s%s", dir, u->key, exts[i]);
		unlink(path);
	}
}

int gc_run(const char *dir, uint64_t max_bytes, struct gc_result *res)
{
	static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
	struct scan sc = { .dir = dir, .dirlen = strlen(dir) };
	int r = 0;

	memset(res, 0, sizeof *res);
	pthread_mutex_lock(&run_lock);
	scanning = &sc;
	if (nftw(dir, visit, 32, FTW_PHYS | FTW_ACTIONRETVAL) < 0)
		r = -errno;
	if (sc.err < 0)
		r = sc.err;
	scanning = NULL;
	pthread_mutex_unlock(&run_lock);
	res->files = sc.files;
	res->bytes = sc.bytes;
	if (r == 0 && sc.bytes > max_bytes) {
		merge_versions(&sc);
		qsort(sc.units, sc.n, sizeof *sc.units, by_age);
		for (size_t i = 0; i < sc.n && res->bytes > LOW_WATER(max_bytes); i++) {
			evict(dir, &sc.units[i]);
			res->bytes -= sc.units[i].bytes;
			res->files -= sc.units[i].files;
			res->evicted_units++;
			res->evicted_bytes += sc.units[i].bytes;
		}
	}
	for (size_t i = 0; i < sc.n; i++)
		free(sc.units[i].key);
	free(sc.units);
	return r;
}

/* --- the thread ------------------------------------------------------------ */

static void *gc_main(void *arg)
{
	struct gc_result res;

	(void)arg;
	pthread_mutex_lock(&lock);
	for (;;) {
		while (!wanted && !stopping)
			pthread_cond_wait(&cond, &lock);
		if (stopping)
			break;
		wanted = false;
		pthread_mutex_unlock(&lock);
		if (gc_run(cache_root(), cfg->cache_max_bytes, &res) < 0)
			log_warn("cache gc of %s failed", cache_root());
		else if (res.evicted_units) {
			atomic_fetch_add(&evicted_units, res.evicted_units);
			atomic_fetch_add(&evicted_bytes, res.evicted_bytes);
			log_info("cache over -cacheMaxSize: evicted %llu entries, %llu bytes",
			         (unsigned long long)res.evicted_units,
			         (unsigned long long)res.evicted_bytes);
		}
		cache_set_usage(res.files, res.bytes);
		pthread_mutex_lock(&lock);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

int gc_start(const struct config *c)
{
	cfg = c;
	if (c->cache_max_bytes == 0)
		return 0;
	if (pthread_create(&thread, NULL, gc_main, NULL) != 0)
		return -1;
	running = true;
	gc_check();
	return 0;
}

void gc_check(void)
{
	uint64_t files, bytes;

	if (!running)
		return;
	cache_usage(&files, &bytes);
	if (bytes <= cfg->cache_max_bytes)
		return;
	pthread_mutex_lock(&lock);
	wanted = true;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}

void gc_evicted(uint64_t *units, uint64_t *bytes)
{
	*units = atomic_load(&evicted_units);
	*bytes = atomic_load(&evicted_bytes);
}

void gc_stop(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	running = false;
}

/* --- goproxyd gc -------------------------------------------------------------- */

int gccmd_main(int argc, char **argv)
{
	struct config c;
	struct gc_result res;
	int r = config_parse_args(&c, argc, argv, stdout, stderr);

	if (r != CONFIG_RUN)
		return r == CONFIG_EXIT_OK ? 0 : 2;
	if (c.cache_max_bytes == 0) {
		fprintf(stderr, "goproxyd gc: -cacheMaxSize is required\n");
		config_free(&c);
		return 2;
	}
	if ((r = cache_init(c.cache_dir, false)) == 0)
		r = gc_run(cache_root(), c.cache_max_bytes, &res);
	cache_shutdown();
	if (r < 0)
		fprintf(stderr, "goproxyd gc: -cacheDir %s: %s\n", c.cache_dir, strerror(-r));
	else
		printf("evicted %llu entries (%llu bytes); cache now %llu bytes\n",
		       (unsigned long long)res.evicted_units, (unsigned long long)res.evicted_bytes,
		       (unsigned long long)res.bytes);
	config_free(&c);
	return r < 0 ? 1 : 0;
}
