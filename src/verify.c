/* verify: see include/verify.h.  verify_file() on the verifier pool (or
 * in `goproxyd verify`); verify_submit() from any thread. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "clock.h"
#include "dirhash.h"
#include "httpget.h"
#include "log.h"
#include "note.h"
#include "sumdburl.h"
#include "text.h"
#include "tlog.h"
#include "verify.h"
#include "workq.h"

#define TILE_HEIGHT 8            /* every known database uses 8 */
#define SUMDB_BODY_MAX (4u << 20)
#define MOD_MAX (16u << 20)
#define TOOLCHAIN "golang.org/toolchain"
/* Verifier threads.  A check blocks while the database answers; the pool
 * grows while every thread is busy, so a slow lookup holds up its own
 * file, not the verification of another. */
#define VERIFIERS_MIN 1
#define VERIFIERS_MAX 32

/* The database that verifies, with the latest tree proved so far. */
struct vdb {
	const struct sumdb_conf *conf;
	struct note_verifier key;
	pthread_mutex_t lock;
	bool have_latest;
	struct tlog_tree latest;
};

struct item {
	struct request req;
	int fd;
	verify_done_fn done;
	void *arg;
};

static const struct config *cfg;
static struct vdb db = { .lock = PTHREAD_MUTEX_INITIALIZER };
static bool have_db;
static atomic_ullong rejected;
static struct workq *pool;
static atomic_llong stop_deadline;   /* 0 while running */

/* --- bytes from the cache or the database ---------------------------------- */

struct body {
	char *data;
	size_t len;
};

/* verify_set_source(): the database's answers come from here, not the
 * network (`goproxyd import`: the bundle's records and tiles). */
static verify_source_fn source;
static void *source_arg;

void verify_set_source(verify_source_fn fn, void *arg)
{
	source = fn;
	source_arg = arg;
}

/* True once the daemon's shutdown deadline has passed. */
static bool past_deadline(void)
{
	int64_t d = atomic_load(&stop_deadline);

	return d != 0 && monotonic_ms() >= d;
}

/* GET <database URL>/<rest> into memory.  Returns the HTTP status, or -1
 * with a reason for a transport failure. */
static long db_get(const char *rest, struct body *b, char *reason, size_t n)
{
	const struct http_limits lim = {
		.max_bytes = SUMDB_BODY_MAX,
		.stall_ms = cfg->stall_timeout_ms,
		.cancel = past_deadline,
	};
	char url[4096], why[512];
	const char *base;
	struct http_body hb;
	long status;

	if (source != NULL) {
		b->data = NULL;
		if (source(source_arg, db.conf->name, rest, &b->data, &b->len) < 0)
			return 404;
		return 200;
	}
	if ((base = sumdb_url(db.conf, reason, n)) == NULL)
		return -1;
	snprintf(url, sizeof url, "%s/%s", base, rest);
	status = http_get(url, &lim, &hb, why, sizeof why);
	if (status < 0)
		text_fail(reason, n, "checksum database %s", why);
	b->data = hb.data;
	b->len = hb.len;
	return status;
}

/* The whole of a small cached file, or -ENOENT. */
static int read_cached(const char *key, struct body *b, size_t max)
{
	struct cache_entry e;
	int r = cache_open(key, &e);

	if (r < 0)
		return r;
	b->len = e.size;
	b->data = e.size <= max ? malloc(e.size + 1) : NULL;
	if (b->data == NULL || pread(e.ce_fd, b->data, e.size, 0) != (ssize_t)e.size) {
		close(e.ce_fd);
		free(b->data);
		b->data = NULL;
		return -EIO;
	}
	b->data[b->len] = '\0';
	close(e.ce_fd);
	return 0;
}

static void db_key(char *key, size_t n, const char *rest)
{
	snprintf(key, n, "sumdb/%s/%s", db.conf->name, rest);
}

/* --- tiles ------------------------------------------------------------------ */

/* Tiles fetched for one proof; stored only once the proof holds. */
struct fetched {
	struct fetched *next;
	char key[CACHE_KEY_MAX];
	struct body b;
};

struct reader {
	struct fetched *fetched;
	char reason[256];
};

/* A tile from the cache or the database.  A database may no longer serve
 * a partial tile once the full one exists; like the go command, fall back
 * to the full tile and keep its first W hashes. */
static long fetch_tile(const struct tlog_tile *t, const char *path, struct body *b, char *reason,
                       size_t n)
{
	struct tlog_tile full = *t;
	char full_path[TLOG_TILE_PATH_MAX];
	long st = db_get(path, b, reason, n);

	if (st == 200 || t->l < 0 || t->w == (1 << t->h))
		return st;
	full.w = 1 << t->h;
	if (tlog_tile_path(&full, full_path, sizeof full_path) != NULL)
		return st;
	st = db_get(full_path, b, reason, n);
	if (st == 200 && b->len > (size_t)t->w * TLOG_HASH_SIZE)
		b->len = (size_t)t->w * TLOG_HASH_SIZE;
	return st;
}

static const char *read_tile(void *arg, const struct tlog_tile *t, uint8_t **data, size_t *len)
{
	struct reader *rd = arg;
	char path[TLOG_TILE_PATH_MAX], key[CACHE_KEY_MAX];
	struct fetched *f;
	struct body b;
	long st;

	if (tlog_tile_path(t, path, sizeof path) != NULL)
		return "bad tile";
	db_key(key, sizeof key, path);
	if (read_cached(key, &b, SUMDB_BODY_MAX) < 0) {
		st = fetch_tile(t, path, &b, rd->reason, sizeof rd->reason);
		if (st != 200) {
			if (st > 0)
				snprintf(rd->reason, sizeof rd->reason,
				         "checksum database answered %ld for %s", st, path);
			return rd->reason;
		}
		/* Kept aside until the proof holds; the caller frees b. */
		if ((f = calloc(1, sizeof *f)) == NULL || (f->b.data = malloc(b.len + 1)) == NULL) {
			free(f);
			free(b.data);
			return "out of memory";
		}
		snprintf(f->key, sizeof f->key, "%s", key);
		memcpy(f->b.data, b.data, b.len);
		f->b.len = b.len;
		f->next = rd->fetched;
		rd->fetched = f;
	}
	*data = (uint8_t *)b.data;
	*len = b.len;
	return NULL;
}

/* Keeps the proved tiles (store) or drops them. */
static void release_tiles(struct reader *rd, bool store)
{
	while (rd->fetched) {
		struct fetched *f = rd->fetched;

		rd->fetched = f->next;
		if (store && cache_store_bytes(f->key, f->b.data, f->b.len) < 0)
			log_warn("cannot cache %s", f->key);
		free(f->b.data);
		free(f);
	}
}

/* --- the tree timeline ------------------------------------------------------- */

static void latest_key(char *key, size_t n)
{
	/* Not a protocol path: route.c never maps a request here. */
	db_key(key, n, "goproxyd-verified-tree");
}

/* The signed tree must extend, or be a prefix of, the latest one proved;
 * anything else means the database forked or rewound.  Called locked. */
static int merge_tree(const struct tlog_tree *t, const char *note, size_t note_len,
                      struct reader *rd, char *reason, size_t n)
{
	const char *bad = NULL;
	char key[CACHE_KEY_MAX];

	if (db.have_latest && t->n == db.latest.n) {
		if (memcmp(t->hash, db.latest.hash, TLOG_HASH_SIZE) != 0)
			return text_fail(reason, n, "checksum database forked: two trees of size %lld",
			            (long long)t->n);
		return 0;
	}
	if (db.have_latest && t->n < db.latest.n)
		bad = tlog_check_consistency(TILE_HEIGHT, t, &db.latest, read_tile, rd);
	else if (db.have_latest)
		bad = tlog_check_consistency(TILE_HEIGHT, &db.latest, t, read_tile, rd);
	if (bad)
		return text_fail(reason, n, "checksum database tree is inconsistent with the one verified before (%s)",
		            bad);
	if (!db.have_latest || t->n > db.latest.n) {
		db.latest = *t;
		db.have_latest = true;
		latest_key(key, sizeof key);
		if (cache_store_bytes(key, note, note_len) < 0)
			log_warn("cannot store %s", key);
	}
	return 0;
}

static int open_tree(const char *note, size_t len, struct tlog_tree *t, char *reason, size_t n)
{
	size_t text_len;
	const char *bad = note_verify(note, len, &db.key, &text_len);

	if (bad == NULL)
		bad = tlog_parse_tree(note, text_len, t);
	return bad ? text_fail(reason, n, "checksum database note: %s", bad) : 0;
}

/* --- one file ------------------------------------------------------------- */

int verify_hash(const struct request *r, int fd, char *hash, char *reason, size_t n)
{
	struct stat st;
	char *buf;
	const char *bad;

	if (r->kind == REQ_ZIP) {
		if ((bad = dirhash_zip(fd, NULL, hash)) != NULL)
			return text_fail(reason, n, "cannot hash the zip: %s", bad);
		return 0;
	}
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size > MOD_MAX)
		return text_fail(reason, n, "cannot read the go.mod");
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		return text_fail(reason, n, "out of memory");
	if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		return text_fail(reason, n, "cannot read the go.mod");
	}
	dirhash_mod(buf, (size_t)st.st_size, hash);
	free(buf);
	return 0;
}

/* The record's line for this file must carry this hash. */
static int check_line(const struct request *r, const char *rec, size_t len, const char *hash,
                      char *reason, size_t n)
{
	char want[MP_PATH_MAX + MP_VERSION_MAX + 16];
	size_t wl = (size_t)snprintf(want, sizeof want, "%s %s%s ", r->path, r->version,
	                             r->kind == REQ_MOD ? "/go.mod" : "");
	const char *p = rec, *end = rec + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (ll > wl && memcmp(p, want, wl) == 0) {
			if (ll - wl == strlen(hash) && memcmp(p + wl, hash, ll - wl) == 0)
				return 0;
			return text_fail(reason, n, "checksum mismatch for %s@%s%s: downloaded %s, checksum database has %.*s",
			            r->path, r->version, r->kind == REQ_MOD ? "/go.mod" : "", hash,
			            (int)(ll - wl), p + wl);
		}
		p += ll + 1;
	}
	return text_fail(reason, n, "checksum database has no record of %s@%s", r->path, r->version);
}

/* The lookup answer for r: cached, or fetched (*fresh set). */
static int get_lookup(const struct request *r, struct body *b, char *rest, size_t rn, bool *fresh,
                      char *reason, size_t n)
{
	char key[CACHE_KEY_MAX];
	long st;

	snprintf(rest, rn, "lookup/%s@%s", r->esc_path, r->esc_version);
	db_key(key, sizeof key, rest);
	*fresh = false;
	if (read_cached(key, b, SUMDB_BODY_MAX) == 0)
		return 0;
	st = db_get(rest, b, reason, n);
	if (st == 404 || st == 410)
		return text_fail(reason, n, "checksum database has no record of %s@%s", r->path, r->version);
	if (st != 200)
		return st < 0 ? -1 : text_fail(reason, n, "checksum database answered %ld for %s", st, rest);
	*fresh = true;
	return 0;
}

static int check_lookup(const struct request *r, const struct body *b, const char *hash,
                        struct reader *rd, char *reason, size_t n)
{
	const char *rec, *note, *bad;
	size_t rec_len, note_len;
	struct tlog_tree tree;
	int64_t id;
	int ret;

	if ((bad = sumdb_parse_lookup(b->data, b->len, &id, &rec, &rec_len, &note, &note_len)) != NULL)
		return text_fail(reason, n, "checksum database lookup: %s", bad);
	if (open_tree(note, note_len, &tree, reason, n) < 0)
		return -1;
	if (id >= tree.n)
		return text_fail(reason, n, "checksum database record %lld is beyond its tree of size %lld",
		            (long long)id, (long long)tree.n);
	if ((bad = tlog_check_record(TILE_HEIGHT, &tree, id, rec, rec_len, read_tile, rd)) != NULL)
		return text_fail(reason, n, "checksum database record not proved in its tree: %s", bad);
	pthread_mutex_lock(&db.lock);
	ret = merge_tree(&tree, note, note_len, rd, reason, n);
	pthread_mutex_unlock(&db.lock);
	if (ret < 0)
		return -1;
	return check_line(r, rec, rec_len, hash, reason, n);
}

int verify_file(const struct request *r, int fd, char *reason, size_t n)
{
	char hash[DIRHASH_SIZE], rest[SUMDB_REST_MAX + 16], key[CACHE_KEY_MAX];
	struct reader rd = { 0 };
	struct body b = { 0 };
	bool fresh;
	int ret;

	if (!have_db) {
		atomic_fetch_add(&rejected, 1);
		return text_fail(reason, n, "cannot verify %s@%s: no checksum database with a key (-sumdb)",
		            r->path, r->version);
	}
	if (verify_hash(r, fd, hash, reason, n) < 0 ||
	    get_lookup(r, &b, rest, sizeof rest, &fresh, reason, n) < 0) {
		atomic_fetch_add(&rejected, 1);
		return -1;
	}
	ret = check_lookup(r, &b, hash, &rd, reason, n);
	release_tiles(&rd, ret == 0);
	if (ret == 0 && fresh) {
		db_key(key, sizeof key, rest);
		if (cache_store_bytes(key, b.data, b.len) < 0)
			log_warn("cannot cache %s", key);
	}
	free(b.data);
	if (ret < 0)
		atomic_fetch_add(&rejected, 1);
	return ret;
}

bool verify_wanted(const struct request *r)
{
	if (r->kind != REQ_MOD && r->kind != REQ_ZIP)
		return false;
	if (strcmp(r->path, TOOLCHAIN) == 0)
		return true;   /* the go command insists, whatever GONOSUMDB says */
	return have_db && !config_match_patterns(cfg->nosum, cfg->n_nosum, r->path) &&
	       !config_excluded(cfg, r->path);
}

uint64_t verify_rejected(void)
{
	return atomic_load(&rejected);
}

/* --- start-up and the verifier thread -------------------------------------- */

static void load_latest(void)
{
	char key[CACHE_KEY_MAX], reason[256];
	struct tlog_tree t;
	struct body b;

	latest_key(key, sizeof key);
	if (read_cached(key, &b, SUMDB_BODY_MAX) < 0)
		return;
	if (open_tree(b.data, b.len, &t, reason, sizeof reason) == 0) {
		db.latest = t;
		db.have_latest = true;
	} else
		log_warn("ignoring %s: %s", key, reason);
	free(b.data);
}

int verify_init(const struct config *c)
{
	const char *bad;

	cfg = c;
	for (size_t i = 0; i < c->n_sumdbs; i++) {
		if (c->sumdbs[i].key == NULL)
			continue;
		if ((bad = note_parse_vkey(c->sumdbs[i].key, &db.key)) != NULL) {
			log_error("-sumdb %s: bad verifier key: %s", c->sumdbs[i].name, bad);
			return -1;
		}
		db.conf = &c->sumdbs[i];
		have_db = true;
		load_latest();
		break;
	}
	return 0;
}

static void verify_task(void *arg)
{
	struct item *it = arg;
	char reason[512];

	if (past_deadline())
		it->done(it->arg, "goproxyd is shutting down");
	else if (verify_file(&it->req, it->fd, reason, sizeof reason) < 0) {
		log_warn("rejected %s@%s: %s", it->req.path, it->req.version, reason);
		it->done(it->arg, reason);
	} else
		it->done(it->arg, NULL);
	free(it);
}

int verify_start(void)
{
	return (pool = workq_start(VERIFIERS_MIN, VERIFIERS_MAX)) ? 0 : -1;
}

void verify_submit(const struct request *r, int fd, verify_done_fn done, void *arg)
{
	struct item *it = malloc(sizeof *it);

	if (it == NULL) {
		done(arg, "out of memory");
		return;
	}
	it->req = *r;
	it->fd = fd;
	it->done = done;
	it->arg = arg;
	if (pool == NULL || workq_submit(pool, verify_task, it) < 0) {
		free(it);
		done(arg, "goproxyd is shutting down");
	}
}

void verify_stop(int64_t deadline_ms)
{
	if (pool == NULL)
		return;
	atomic_store(&stop_deadline, deadline_ms > 0 ? deadline_ms : 1);
	workq_stop(pool);
	pool = NULL;
}
