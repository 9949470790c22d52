/*
 * catalog: see include/catalog.h.  catalog_note() runs on the disk threads
 * (store.c, cache.c), catalog_forget() on the collector (gc.c), the readers
 * on the serving threads, and the start-up walk on the catalog's own
 * thread.  One mutex guards the index.
 *
 * The index is one array of versions sorted by (escaped path, escaped
 * version), so /catalog pages by binary search and a module's versions sit
 * together and share one module block.  A published file costs a binary
 * search and, for a new version, a memmove of the pointers after it (under
 * a millisecond at a million versions); the walk collects what it finds on
 * its own, sorts it, and merges it in once.
 */
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalog.h"
#include "log.h"
#include "modpath.h"

struct cat_mod {
	size_t refs;                 /* versions pointing here */
	char esc_path[];
};

struct cat_ver {
	struct cat_mod *mod;
	int64_t time;                /* when the newest of its files was cached */
	unsigned files;              /* CATALOG_INFO | CATALOG_MOD | CATALOG_ZIP */
	char esc_version[];
};

/* A growable array of versions: the index itself, or what the walk found. */
struct vec {
	struct cat_ver **v;
	size_t n, cap;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct vec index_;
static size_t n_mods, mem_bytes;
static bool enabled, building, full;
/* Version units evicted while the walk runs ("<path>/@v/<version>"). */
static char **gone;
static size_t n_gone, cap_gone;

static pthread_t walker;
static bool walker_started;
static atomic_bool stop_walk;
static char *walk_root;

/* --- keys ----------------------------------------------------------------- */

static unsigned ext_bit(const char *dot)
{
	if (dot == NULL)
		return 0;
	if (strcmp(dot, ".info") == 0)
		return CATALOG_INFO;
	if (strcmp(dot, ".mod") == 0)
		return CATALOG_MOD;
	if (strcmp(dot, ".zip") == 0)
		return CATALOG_ZIP;
	return 0;
}

/* Splits "<path>/@v/<version>.ext" (or, with unit, "<path>/@v/<version>")
 * into its escaped path and version, checked as the go command would; bit
 * is the file's (0 for a unit). */
static bool parse_key(const char *key, bool unit, char *path, char *ver, unsigned *bit)
{
	const char *at = strstr(key, "/@v/"), *v;
	char plain[MP_PATH_MAX];
	size_t pn, vn;

	if (at == NULL)
		return false;
	pn = (size_t)(at - key);
	v = at + 4;
	*bit = ext_bit(strrchr(v, '.'));
	if (*bit != 0)
		vn = (size_t)(strrchr(v, '.') - v);
	else if (unit)
		vn = strlen(v);
	else
		return false;
	if (pn == 0 || pn >= MP_PATH_MAX || vn == 0 || vn >= MP_VERSION_MAX || memchr(v, '/', vn))
		return false;
	memcpy(path, key, pn);
	path[pn] = '\0';
	memcpy(ver, v, vn);
	ver[vn] = '\0';
	return mp_unescape_path(path, plain, sizeof plain) == NULL &&
	       mp_unescape_version(ver, plain, sizeof plain) == NULL && mp_is_canonical(plain);
}

/* --- the sorted array ------------------------------------------------------ */

static int cmp_key(const char *path, const char *ver, const struct cat_ver *e)
{
	int c = strcmp(path, e->mod->esc_path);

	return c != 0 ? c : strcmp(ver, e->esc_version);
}

/* The first entry of vec not below (path, ver), or (after) above it. */
static size_t bound(const struct vec *a, const char *path, const char *ver, bool after)
{
	size_t lo = 0, hi = a->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_key(path, ver, a->v[mid]);

		if (c > 0 || (after && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int vec_reserve(struct vec *a, size_t want)
{
	size_t cap = a->cap ? a->cap : 1024;
	struct cat_ver **nv;

	if (want <= a->cap)
		return 0;
	while (cap < want)
		cap *= 2;
	if ((nv = realloc(a->v, cap * sizeof *nv)) == NULL)
		return -1;
	if (a == &index_)
		mem_bytes += (cap - a->cap) * sizeof *nv;
	a->v = nv;
	a->cap = cap;
	return 0;
}

static struct cat_mod *mod_new(const char *path)
{
	size_t n = strlen(path) + 1;
	struct cat_mod *m = malloc(sizeof *m + n);

	if (m != NULL) {
		m->refs = 0;
		memcpy(m->esc_path, path, n);
	}
	return m;
}

static size_t mod_size(const struct cat_mod *m)
{
	return sizeof *m + strlen(m->esc_path) + 1;
}

static size_t ver_size(const struct cat_ver *e)
{
	return sizeof *e + strlen(e->esc_version) + 1;
}

/* Drops e's hold on its module; in the index, counts what is freed. */
static void mod_unref(struct cat_mod *m, bool counted)
{
	if (--m->refs > 0)
		return;
	if (counted) {
		n_mods--;
		mem_bytes -= mod_size(m);
	}
	free(m);
}

static struct cat_ver *ver_new(struct cat_mod *m, const char *ver, unsigned bit, int64_t t)
{
	size_t n = strlen(ver) + 1;
	struct cat_ver *e = malloc(sizeof *e + n);

	if (e == NULL)
		return NULL;
	e->mod = m;
	e->time = t;
	e->files = bit;
	memcpy(e->esc_version, ver, n);
	m->refs++;
	return e;
}

/* A new version at index position i (locked). */
static void insert_at(size_t i, const char *path, const char *ver, unsigned bit, int64_t t)
{
	struct vec *a = &index_;
	struct cat_mod *m = NULL;
	struct cat_ver *e;

	if (a->n >= CATALOG_MAX_VERSIONS || vec_reserve(a, a->n + 1) < 0) {
		full = true;
		return;
	}
	if (i > 0 && strcmp(a->v[i - 1]->mod->esc_path, path) == 0)
		m = a->v[i - 1]->mod;
	else if (i < a->n && strcmp(a->v[i]->mod->esc_path, path) == 0)
		m = a->v[i]->mod;
	if (m == NULL) {
		if ((m = mod_new(path)) == NULL)
			return;
		n_mods++;
		mem_bytes += mod_size(m);
	}
	if ((e = ver_new(m, ver, bit, t)) == NULL) {
		if (m->refs == 0) {
			n_mods--;
			mem_bytes -= mod_size(m);
			free(m);
		}
		return;
	}
	mem_bytes += ver_size(e);
	memmove(&a->v[i + 1], &a->v[i], (a->n - i) * sizeof a->v[0]);
	a->v[i] = e;
	a->n++;
}

static void remove_at(size_t i)
{
	struct vec *a = &index_;
	struct cat_ver *e = a->v[i];

	memmove(&a->v[i], &a->v[i + 1], (a->n - i - 1) * sizeof a->v[0]);
	a->n--;
	mem_bytes -= ver_size(e);
	mod_unref(e->mod, true);
	free(e);
}

/* --- events ---------------------------------------------------------------- */

void catalog_note(const char *key, int64_t time_s)
{
	char path[MP_PATH_MAX], ver[MP_VERSION_MAX];
	unsigned bit;
	size_t i;

	if (!parse_key(key, false, path, ver, &bit))
		return;
	pthread_mutex_lock(&lock);
	if (enabled) {
		i = bound(&index_, path, ver, false);
		if (i < index_.n && cmp_key(path, ver, index_.v[i]) == 0) {
			index_.v[i]->files |= bit;
			if (time_s > index_.v[i]->time)
				index_.v[i]->time = time_s;
		} else
			insert_at(i, path, ver, bit, time_s);
	}
	pthread_mutex_unlock(&lock);
}

/* While the walk runs, an evicted version is remembered, so that the walk
 * cannot bring it back (locked). */
static void remember_gone(const char *path, const char *ver)
{
	char *s;

	if (n_gone == cap_gone) {
		size_t cap = cap_gone ? cap_gone * 2 : 64;
		char **ng = realloc(gone, cap * sizeof *ng);

		if (ng == NULL)
			return;
		gone = ng;
		cap_gone = cap;
	}
	if (asprintf(&s, "%s/@v/%s", path, ver) >= 0)
		gone[n_gone++] = s;
}

void catalog_forget(const char *key)
{
	char path[MP_PATH_MAX], ver[MP_VERSION_MAX];
	unsigned bit;
	size_t i;

	if (!parse_key(key, true, path, ver, &bit))
		return;
	pthread_mutex_lock(&lock);
	if (enabled) {
		if (building)
			remember_gone(path, ver);
		i = bound(&index_, path, ver, false);
		if (i < index_.n && cmp_key(path, ver, index_.v[i]) == 0) {
			index_.v[i]->files &= bit ? ~bit : 0u;
			if (index_.v[i]->files == 0)
				remove_at(i);
		}
	}
	pthread_mutex_unlock(&lock);
}

/* --- the start-up walk ------------------------------------------------------ */

/* nftw has no user pointer: one walk at a time, into these. */
static struct vec found;
static struct cat_mod *found_mod;   /* the module of the last file found */
static size_t root_len;
static bool walk_full;

static int add_found(const char *path, const char *ver, unsigned bit, int64_t t)
{
	struct cat_ver *e;

	if (found_mod == NULL || strcmp(found_mod->esc_path, path) != 0) {
		if ((found_mod = mod_new(path)) == NULL)
			return -1;
	}
	if (found.n >= CATALOG_MAX_VERSIONS || vec_reserve(&found, found.n + 1) < 0) {
		if (found_mod->refs == 0) {
			free(found_mod);
			found_mod = NULL;
		}
		return -1;
	}
	if ((e = ver_new(found_mod, ver, bit, t)) == NULL)
		return -1;
	found.v[found.n++] = e;
	return 0;
}

static int visit(const char *fpath, const struct stat *st, int type, struct FTW *ftw)
{
	char path[MP_PATH_MAX], ver[MP_VERSION_MAX];
	unsigned bit;

	if (atomic_load(&stop_walk))
		return FTW_STOP;
	/* Checksum-database files, and any top directory no module path can
	 * name (a leading dot): the go command's GOPATH (direct.h) is one, and
	 * its tree of extracted sources is not worth walking. */
	if (ftw->level == 1 && type == FTW_D &&
	    (strcmp(fpath + ftw->base, "sumdb") == 0 || fpath[ftw->base] == '.'))
		return FTW_SKIP_SUBTREE;
	if (type != FTW_F || strlen(fpath) <= root_len)
		return FTW_CONTINUE;
	if (parse_key(fpath + root_len + 1, false, path, ver, &bit) &&
	    add_found(path, ver, bit, (int64_t)st->st_mtime) < 0) {
		walk_full = true;
		return FTW_STOP;
	}
	return FTW_CONTINUE;
}

static int by_key(const void *a, const void *b)
{
	const struct cat_ver *x = *(struct cat_ver *const *)a, *y = *(struct cat_ver *const *)b;

	return cmp_key(x->mod->esc_path, x->esc_version, y);
}

static void drop_found(struct cat_ver *e)
{
	mod_unref(e->mod, false);
	free(e);
}

/* Found versions that were evicted during the walk (locked). */
static void drop_gone(void)
{
	for (size_t g = 0; g < n_gone; g++) {
		char *at = strstr(gone[g], "/@v/");
		size_t i;

		*at = '\0';
		i = bound(&found, gone[g], at + 4, false);
		if (i < found.n && cmp_key(gone[g], at + 4, found.v[i]) == 0) {
			drop_found(found.v[i]);
			memmove(&found.v[i], &found.v[i + 1], (found.n - i - 1) * sizeof found.v[0]);
			found.n--;
		}
		free(gone[g]);
	}
	n_gone = 0;
}

static void release(struct cat_ver *e)
{
	mod_unref(e->mod, false);
	free(e);
}

/* Appends e to out: a duplicate of the last entry is folded into it, and
 * an entry of the same module as the last shares its module block. */
static void merge_one(struct vec *out, struct cat_ver *e)
{
	struct cat_ver *prev = out->n ? out->v[out->n - 1] : NULL;

	if (prev && cmp_key(e->mod->esc_path, e->esc_version, prev) == 0) {
		prev->files |= e->files;
		if (e->time > prev->time)
			prev->time = e->time;
		release(e);
		return;
	}
	if (out->n >= CATALOG_MAX_VERSIONS) {
		full = true;
		release(e);
		return;
	}
	if (prev && prev->mod != e->mod && strcmp(prev->mod->esc_path, e->mod->esc_path) == 0) {
		mod_unref(e->mod, false);
		e->mod = prev->mod;
		e->mod->refs++;
	}
	out->v[out->n++] = e;
}

/* n_mods and mem_bytes, counted afresh after a merge (locked). */
static void recount(void)
{
	const struct vec *a = &index_;

	n_mods = 0;
	mem_bytes = a->cap * sizeof a->v[0];
	for (size_t i = 0; i < a->n; i++) {
		mem_bytes += ver_size(a->v[i]);
		if (i == 0 || a->v[i]->mod != a->v[i - 1]->mod) {
			n_mods++;
			mem_bytes += mod_size(a->v[i]->mod);
		}
	}
}

/* What the walk found joins the index (locked): both sorted, merged. */
static void merge_found(void)
{
	struct vec out = { NULL, 0, 0 };
	size_t i = 0, j = 0;

	drop_gone();
	full = full || walk_full;
	if (vec_reserve(&out, index_.n + found.n) < 0) {
		full = true;
		while (found.n > 0)
			release(found.v[--found.n]);
		return;
	}
	while (i < index_.n || j < found.n) {
		bool take_index = j == found.n ||
		    (i < index_.n && by_key(&index_.v[i], &found.v[j]) <= 0);

		merge_one(&out, take_index ? index_.v[i++] : found.v[j++]);
	}
	free(index_.v);
	index_ = out;
	found.n = 0;
	recount();
}

int catalog_rebuild_now(const char *root)
{
	int r;

	found_mod = NULL;
	walk_full = false;
	root_len = strlen(root);
	r = nftw(root, visit, 32, FTW_PHYS | FTW_ACTIONRETVAL);
	if (found.n > 1)
		qsort(found.v, found.n, sizeof found.v[0], by_key);
	pthread_mutex_lock(&lock);
	merge_found();
	building = false;
	pthread_mutex_unlock(&lock);
	free(found.v);
	found = (struct vec){ NULL, 0, 0 };
	return r < 0 ? -1 : 0;
}

static void *walk_main(void *arg)
{
	struct catalog_stats st;

	(void)arg;
	if (catalog_rebuild_now(walk_root) < 0)
		log_warn("catalog: the walk of %s failed; the index lists what it found", walk_root);
	catalog_stats(&st);
	log_info("catalog: %zu versions of %zu modules indexed (%zu KiB)%s", st.versions, st.modules,
	         st.bytes / 1024, st.full ? "; the index is full, some versions are not listed" : "");
	return NULL;
}

void catalog_enable_for_test(void)
{
	pthread_mutex_lock(&lock);
	enabled = true;
	building = true;
	pthread_mutex_unlock(&lock);
}

int catalog_start(const char *root)
{
	if ((walk_root = strdup(root)) == NULL)
		return -1;
	catalog_enable_for_test();
	atomic_store(&stop_walk, false);
	if (pthread_create(&walker, NULL, walk_main, NULL) != 0) {
		log_error("catalog: cannot start the walk");
		return -1;
	}
	walker_started = true;
	return 0;
}

void catalog_stop(void)
{
	if (walker_started) {
		atomic_store(&stop_walk, true);
		pthread_join(walker, NULL);
		walker_started = false;
	}
	pthread_mutex_lock(&lock);
	while (index_.n > 0)
		release(index_.v[--index_.n]);
	free(index_.v);
	index_ = (struct vec){ NULL, 0, 0 };
	while (n_gone > 0)
		free(gone[--n_gone]);
	free(gone);
	gone = NULL;
	cap_gone = 0;
	n_mods = mem_bytes = 0;
	enabled = building = full = false;
	pthread_mutex_unlock(&lock);
	free(walk_root);
	walk_root = NULL;
}

/* --- readers ------------------------------------------------------------------ */

void catalog_stats(struct catalog_stats *st)
{
	pthread_mutex_lock(&lock);
	st->versions = index_.n;
	st->modules = n_mods;
	st->full = full;
	st->bytes = mem_bytes;
	st->building = building;
	pthread_mutex_unlock(&lock);
}

static int visit_one(const struct cat_ver *e, catalog_visit_fn fn, void *arg)
{
	return fn(arg, e->mod->esc_path, e->esc_version, e->files, e->time);
}

void catalog_walk(const char *after_path, const char *after_version, size_t max,
                  catalog_visit_fn fn, void *arg, bool *more)
{
	size_t i, k = 0;

	pthread_mutex_lock(&lock);
	i = after_path ? bound(&index_, after_path, after_version ? after_version : "", true) : 0;
	for (; i < index_.n && k < max; i++, k++)
		if (visit_one(index_.v[i], fn, arg) != 0)
			break;
	*more = i < index_.n;
	pthread_mutex_unlock(&lock);
}

/* Does the module's path, as the go command writes it, contain q when
 * case is ignored?  That path in lower case is the escaped one without its
 * '!'s, so no unescaping is needed. */
static bool path_matches(const struct cat_mod *m, const char *q)
{
	char lower[MP_PATH_MAX];
	size_t j = 0;

	for (const char *p = m->esc_path; *p && j + 1 < sizeof lower; p++)
		if (*p != '!')
			lower[j++] = *p;
	lower[j] = '\0';
	return strcasestr(lower, q) != NULL;
}

void catalog_search(const char *q, size_t max, catalog_visit_fn fn, void *arg, bool *more)
{
	const struct cat_mod *last = NULL;
	bool match = false;
	size_t k = 0;

	*more = false;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < index_.n; i++) {
		const struct cat_ver *e = index_.v[i];

		if (e->mod != last) {
			last = e->mod;
			match = path_matches(last, q);
		}
		if (!match)
			continue;
		if (k == max) {
			*more = true;
			break;
		}
		k++;
		if (visit_one(e, fn, arg) != 0)
			break;
	}
	pthread_mutex_unlock(&lock);
}

#define RECENT_MAX 100

void catalog_recent(size_t max, catalog_visit_fn fn, void *arg)
{
	const struct cat_ver *top[RECENT_MAX];
	size_t n = 0, j;

	if (max > RECENT_MAX)
		max = RECENT_MAX;
	pthread_mutex_lock(&lock);
	/* One pass, keeping the newest max in order (insertion into a short
	 * array): no second structure to keep in step. */
	for (size_t i = 0; i < index_.n && max > 0; i++) {
		const struct cat_ver *e = index_.v[i];

		if (n == max && e->time <= top[n - 1]->time)
			continue;
		j = n < max ? n++ : n - 1;
		for (; j > 0 && top[j - 1]->time < e->time; j--)
			top[j] = top[j - 1];
		top[j] = e;
	}
	for (j = 0; j < n; j++)
		if (visit_one(top[j], fn, arg) != 0)
			break;
	pthread_mutex_unlock(&lock);
}
