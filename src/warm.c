/* warm: see include/warm.h.  warm_request() on the serving threads,
 * warm_fetched() on the thread that ends a fetch (fetcher or disk
 * threads); the tables are lock-free (relaxed atomics: a lost race costs
 * one redundant check or one miscounted file, never a wrong answer). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "clock.h"
#include "fetch.h"
#include "gomod.h"
#include "modpath.h"
#include "text.h"
#include "warm.h"

#define SEEN_SLOTS 8192            /* triggers handled lately */
#define SEEN_MS (10 * 60 * 1000)   /* ... and for how long */
#define WARMED_SLOTS 16384         /* warmed files not yet requested */
#define WASTED_MS (10 * 60 * 1000) /* unrequested this long: wasted */
#define MOD_READ_MAX (1 << 20)     /* a go.mod read for its requirements */

static const struct config *cfg;
static bool (*refused)(const struct request *r);
static bool enabled;

/* Direct-mapped tables of key hashes (0 = empty) and their times (ms). */
static atomic_ullong seen_hash[SEEN_SLOTS];
static atomic_llong seen_ms[SEEN_SLOTS];
static atomic_ullong warmed_hash[WARMED_SLOTS];
static atomic_llong warmed_ms[WARMED_SLOTS];

static atomic_uint outstanding;    /* warming flights queued or running */
static atomic_ullong n_useful, n_wasted, n_capped;
static atomic_ullong n_outcome[WARM_OUTCOMES];

void warm_init(const struct config *c, bool (*refused_fn)(const struct request *r))
{
	cfg = c;
	refused = refused_fn;
	enabled = c->warm > 0 && !c->offline && c->n_upstreams > 0;
}

static uint64_t key_hash(const char *key)
{
	return text_hash_str(key) | 1;   /* never 0, the empty slot */
}

/* --- accounting -------------------------------------------------------------- */

static void warmed_add(const char *key)
{
	uint64_t h = key_hash(key);
	size_t i = h % WARMED_SLOTS;
	uint64_t old = atomic_exchange_explicit(&warmed_hash[i], h, memory_order_relaxed);

	if (old != 0 && old != h)
		atomic_fetch_add_explicit(&n_wasted, 1, memory_order_relaxed);   /* pushed out */
	atomic_store_explicit(&warmed_ms[i], monotonic_ms(), memory_order_relaxed);
}

/* A request for key: was it warmed? */
static void warmed_use(const char *key)
{
	uint64_t h = key_hash(key), want = h;
	size_t i = h % WARMED_SLOTS;

	if (atomic_load_explicit(&warmed_hash[i], memory_order_relaxed) != h)
		return;
	if (atomic_compare_exchange_strong_explicit(&warmed_hash[i], &want, 0, memory_order_relaxed,
	                                            memory_order_relaxed))
		atomic_fetch_add_explicit(&n_useful, 1, memory_order_relaxed);
}

/* Moves entries older than WASTED_MS to the wasted count; returns how
 * many remain (warmed, not yet requested). */
static uint64_t sweep(void)
{
	int64_t now = monotonic_ms();
	uint64_t pending = 0;

	for (size_t i = 0; i < WARMED_SLOTS; i++) {
		uint64_t h = atomic_load_explicit(&warmed_hash[i], memory_order_relaxed);

		if (h == 0)
			continue;
		if (now - atomic_load_explicit(&warmed_ms[i], memory_order_relaxed) < WASTED_MS)
			pending++;
		else if (atomic_compare_exchange_strong_explicit(&warmed_hash[i], &h, 0,
		                                                 memory_order_relaxed, memory_order_relaxed))
			atomic_fetch_add_explicit(&n_wasted, 1, memory_order_relaxed);
	}
	return pending;
}

uint64_t warm_useful(void) { return atomic_load(&n_useful); }
uint64_t warm_wasted(void) { sweep(); return atomic_load(&n_wasted); }
uint64_t warm_pending(void) { return sweep(); }
uint64_t warm_fetches(enum warm_outcome o) { return atomic_load(&n_outcome[o]); }
uint64_t warm_skipped_capped(void) { return atomic_load(&n_capped); }

/* Was key's trigger handled in the last SEEN_MS?  Marks it handled now. */
static bool seen_lately(const char *key)
{
	uint64_t h = key_hash(key);
	size_t i = h % SEEN_SLOTS;
	int64_t now = monotonic_ms();

	if (atomic_load_explicit(&seen_hash[i], memory_order_relaxed) == h &&
	    now - atomic_load_explicit(&seen_ms[i], memory_order_relaxed) < SEEN_MS)
		return true;
	atomic_store_explicit(&seen_hash[i], h, memory_order_relaxed);
	atomic_store_explicit(&seen_ms[i], now, memory_order_relaxed);
	return false;
}

/* --- starting a warming fetch ------------------------------------------------ */

/* Is the cache within 10% of -cacheMaxSize? */
static bool disk_nearly_full(void)
{
	uint64_t files, bytes;

	if (cfg->cache_max_bytes == 0)
		return false;
	cache_usage(&files, &bytes);
	return bytes >= cfg->cache_max_bytes / 10 * 9;
}

/* Fills *r for path@version.kind; -1 unless both pass the go command's
 * rules with version canonical (a file that could be asked for). */
static int make_request(struct request *r, enum req_kind kind, const char *path,
                        const char *version)
{
	memset(r, 0, sizeof *r);
	r->op = OP_NONE;
	r->kind = kind;
	r->immutable = true;
	if (strlen(path) >= sizeof r->path || strlen(version) >= sizeof r->version ||
	    mp_check_path(path) != NULL || !mp_is_canonical(version) ||
	    mp_check_path_major(path, version) != NULL)
		return -1;
	strcpy(r->path, path);
	strcpy(r->version, version);
	if (mp_escape(path, r->esc_path, sizeof r->esc_path) != NULL ||
	    mp_escape(version, r->esc_version, sizeof r->esc_version) != NULL)
		return -1;
	return 0;
}

enum started { STARTED, SKIPPED, CAPPED };

/* Warms path@version.kind unless it is cached, being fetched, known
 * missing, refused or over the total cap. */
static enum started warm_file(enum req_kind kind, const char *path, const char *version)
{
	char key[CACHE_KEY_MAX], reason[8];
	struct request r;
	struct stat st;
	struct flight *f;

	if (make_request(&r, kind, path, version) < 0 || cache_key(&r, key, sizeof key) < 0)
		return SKIPPED;
	if (cache_stat(key, &st) == 0 || negcache_get(key, reason, sizeof reason) ||
	    (refused && refused(&r)) || disk_nearly_full())
		return SKIPPED;
	if (atomic_fetch_add(&outstanding, 1) >= (unsigned)cfg->warm) {
		atomic_fetch_sub(&outstanding, 1);
		atomic_fetch_add_explicit(&n_capped, 1, memory_order_relaxed);
		return CAPPED;
	}
	if ((f = flight_start_warm(&r, key)) == NULL) {
		atomic_fetch_sub(&outstanding, 1);   /* being fetched already */
		return SKIPPED;
	}
	fetch_submit(f);
	return STARTED;
}

/* --- what a go.mod says the go command reads next ---------------------------- */

struct expand {
	int left;   /* per go.mod cap: fetches it may still start */
};

static const char *on_require(void *arg, const struct gomod_require *req)
{
	struct expand *x = arg;
	enum started st = warm_file(REQ_MOD, req->path, req->version);

	if (st == STARTED)
		x->left--;
	return st == CAPPED || x->left <= 0 ? "cap" : NULL;   /* "cap" only stops the walk */
}

/* buf holds a go.mod that passed validation: if the go command will read
 * its requirements' go.mod files (an unpruned module), warm them. */
static void expand_mod(const char *buf, size_t len)
{
	struct gomod m;
	struct expand x = { cfg->warm };
	const char *bad;

	/* First the go line alone: a pruned go.mod warms nothing. */
	if ((bad = gomod_parse(buf, len, &m, NULL, NULL)) != NULL || gomod_pruned(&m))
		return;
	gomod_parse(buf, len, &m, on_require, &x);
}

/* Reads up to MOD_READ_MAX bytes of fd from offset 0 and expands them. */
static void expand_fd(int fd, uint64_t size)
{
	size_t n = size < MOD_READ_MAX ? (size_t)size : MOD_READ_MAX, got = 0;
	char *buf;
	ssize_t r;

	if (n == 0 || size > MOD_READ_MAX || (buf = malloc(n)) == NULL)
		return;
	while (got < n && (r = pread(fd, buf + got, n - got, (off_t)got)) > 0)
		got += (size_t)r;
	if (got == n)
		expand_mod(buf, n);
	free(buf);
}

/* A cached .mod a client asked for: its requirements, if unpruned. */
static void expand_cached(const char *key)
{
	struct cache_entry e;

	if (cache_open(key, &e) != 0)
		return;   /* a miss: warm_fetched() expands it once stored */
	expand_fd(e.ce_fd, e.size);
	close(e.ce_fd);
}

/* --- the hooks --------------------------------------------------------------- */

void warm_request(const struct request *r, const char *key)
{
	if (!enabled || r->kind == REQ_SUMDB || r->cached_only)
		return;
	warmed_use(key);
	if (!r->immutable || r->kind == REQ_LIST || r->kind == REQ_LATEST || seen_lately(key))
		return;
	switch (r->kind) {
	case REQ_MOD:
		warm_file(REQ_INFO, r->path, r->version);
		expand_cached(key);
		break;
	case REQ_ZIP:
		warm_file(REQ_MOD, r->path, r->version);
		warm_file(REQ_INFO, r->path, r->version);
		break;
	case REQ_INFO:
		warm_file(REQ_ZIP, r->path, r->version);
		break;
	default:
		break;
	}
}

void warm_fetched(const struct flight *f, const struct fetch_result *res, bool warm)
{
	const struct request *r = &f->req;

	if (!enabled)
		return;
	if (f->fl_started_warm) {
		enum warm_outcome o = res->status == FETCH_OK ? WARM_STORED
		                      : res->status == FETCH_NOTFOUND ? WARM_NOTFOUND : WARM_FAILED;

		atomic_fetch_sub(&outstanding, 1);
		atomic_fetch_add_explicit(&n_outcome[o], 1, memory_order_relaxed);
		if (!warm)
			atomic_fetch_add_explicit(&n_useful, 1, memory_order_relaxed);   /* joined */
		else if (res->status == FETCH_OK)
			warmed_add(f->key);
	}
	if (res->status == FETCH_OK && r->kind == REQ_MOD)
		expand_fd(res->res_fd, res->size);
}
