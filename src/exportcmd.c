/* exportcmd: see include/exportcmd.h.  `goproxyd export`: one thread. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "archivelib.h"
#include "bundle.h"
#include "cache.h"
#include "config.h"
#include "exportcmd.h"
#include "gosum.h"
#include "route.h"
#include "units.h"

#define COPY_BUF (256u << 10)

static const struct archivelib *ar;   /* libarchive, loaded by exportcmd_main */

struct file {
	char *rel;               /* cache key */
	int order;               /* 0 lookups, 1 tiles, 2 module files */
};

static struct {
	struct config cfg;
	const char *out;
	int64_t since;           /* unix seconds; 0 = everything */
	struct gosum sums;
	bool use_sums;
	struct file *files;
	size_t n, cap;
	size_t root_len;
	bool failed;
} run;

/* --- flags ------------------------------------------------------------------ */

static const char *set_out(void *arg, const char *v)
{
	(void)arg;
	run.out = v;
	return *v ? NULL : "want a file name";
}

/* RFC 3339 ("2024-05-01T12:00:00Z"), a date (UTC), or a duration ago. */
static const char *set_since(void *arg, const char *v)
{
	struct tm tm = { 0 };
	const char *end;
	int64_t ms;

	(void)arg;
	if ((end = strptime(v, "%Y-%m-%dT%H:%M:%SZ", &tm)) != NULL && *end == '\0')
		run.since = (int64_t)timegm(&tm);
	else if (memset(&tm, 0, sizeof tm), (end = strptime(v, "%Y-%m-%d", &tm)) != NULL && *end == '\0')
		run.since = (int64_t)timegm(&tm);
	else if (config_parse_duration(v, &ms) == NULL)
		run.since = (int64_t)time(NULL) - ms / 1000;
	else
		return "want 2006-01-02T15:04:05Z, 2006-01-02 or a duration such as 24h";
	return NULL;
}

static const struct config_cmdflag own_flags[] = { { "o", set_out }, { "since", set_since } };

/* --- choosing files --------------------------------------------------------- */

static int add(const char *rel, int order)
{
	if (run.n == run.cap) {
		size_t cap = run.cap ? run.cap * 2 : 1024;
		struct file *g = realloc(run.files, cap * sizeof *g);

		if (g == NULL)
			return -1;
		run.files = g;
		run.cap = cap;
	}
	if ((run.files[run.n].rel = strdup(rel)) == NULL)
		return -1;
	run.files[run.n++].order = order;
	return 0;
}

/* Is rel a module file of the cache layout, named as route.c names it? */
static bool module_file(const char *rel, struct request *r)
{
	char raw[CACHE_KEY_MAX + 2], key[CACHE_KEY_MAX];
	const char *why;

	if (strncmp(rel, "sumdb/", 6) == 0 || strlen(rel) + 2 > sizeof raw)
		return false;
	snprintf(raw, sizeof raw, "/%s", rel);
	if (route_parse(raw, r, &why) != 0 || r->op != OP_NONE || r->kind == REQ_SUMDB)
		return false;
	if (r->kind == REQ_INFO && !r->immutable)
		return false;
	return cache_key(r, key, sizeof key) == 0 && strcmp(key, rel) == 0;
}

static bool selected_by_sums(const struct request *r)
{
	if (r->kind == REQ_LIST || r->kind == REQ_LATEST) {
		for (size_t i = 0; i < run.sums.n; i++)
			if (strcmp(run.sums.lines[i].path, r->path) == 0)
				return true;
		return false;
	}
	if (r->kind == REQ_MOD)
		return gosum_find(&run.sums, r->path, r->version, true) ||
		       gosum_find(&run.sums, r->path, r->version, false);
	return gosum_find(&run.sums, r->path, r->version, false) != NULL;
}

static void add_lookups(const struct request *r)
{
	char key[CACHE_KEY_MAX];
	struct stat st;

	for (size_t i = 0; i < run.cfg.n_sumdbs; i++) {
		snprintf(key, sizeof key, "sumdb/%s/lookup/%s@%s", run.cfg.sumdbs[i].name, r->esc_path,
		         r->esc_version);
		if (cache_stat(key, &st) == 0 && S_ISREG(st.st_mode) && add(key, 0) < 0)
			run.failed = true;
	}
}

static int visit(const char *fpath, const struct stat *st, int type, struct FTW *ftw)
{
	const char *rel = fpath + run.root_len + 1;
	struct request r;

	if (type == FTW_D && ftw->level == 1 && strcmp(fpath + ftw->base, CACHE_DIRECT_DIR) == 0)
		return FTW_SKIP_SUBTREE;   /* the go command's GOPATH (direct.h): not cache files */
	if (type != FTW_F || ftw->level == 0 || strstr(rel, CACHE_TMP_PREFIX) != NULL)
		return 0;
	if (!module_file(rel, &r))
		return 0;
	if (run.since && (int64_t)st->st_mtime < run.since)
		return 0;
	if (run.use_sums && !selected_by_sums(&r))
		return 0;
	if (add(rel, 2) < 0)
		return FTW_STOP;   /* out of memory: errno says so */
	if (r.kind == REQ_MOD || r.kind == REQ_ZIP)
		add_lookups(&r);
	return 0;
}

static const char *tile_db;   /* visit_tile()'s database */

static int visit_tile(const char *fpath, const struct stat *st, int type, struct FTW *ftw)
{
	const char *rel = fpath + run.root_len + 1;
	char raw[CACHE_KEY_MAX + 2];
	struct request r;
	const char *why;

	(void)st;
	(void)ftw;
	if (type != FTW_F || strstr(rel, CACHE_TMP_PREFIX) != NULL)
		return 0;
	/* Only canonical tile paths (route.c's parser decides). */
	snprintf(raw, sizeof raw, "/%s", rel);
	if (route_parse(raw, &r, &why) != 0 || r.kind != REQ_SUMDB ||
	    (r.sumdb_kind != SUMDB_TILE && r.sumdb_kind != SUMDB_DATA_TILE) ||
	    strcmp(r.sumdb_name, tile_db) != 0)
		return 0;
	return add(rel, 1);
}

/* Every tile of each database some selected record belongs to. */
static int add_tiles(void)
{
	char dir[4096];

	for (size_t i = 0; i < run.cfg.n_sumdbs; i++) {
		char prefix[512];
		bool used = false;

		snprintf(prefix, sizeof prefix, "sumdb/%s/lookup/", run.cfg.sumdbs[i].name);
		for (size_t k = 0; k < run.n && !used; k++)
			used = strncmp(run.files[k].rel, prefix, strlen(prefix)) == 0;
		if (!used)
			continue;
		tile_db = run.cfg.sumdbs[i].name;
		snprintf(dir, sizeof dir, "%s/sumdb/%s/tile", cache_root(), tile_db);
		if (nftw(dir, visit_tile, 32, FTW_PHYS) < 0 && errno != ENOENT)
			return -1;
	}
	return 0;
}

static int cmp_file(const void *a, const void *b)
{
	const struct file *x = a, *y = b;

	return x->order != y->order ? x->order - y->order : strcmp(x->rel, y->rel);
}

/* A .mod and a .zip of one version share their lookup record. */
static void drop_duplicates(void)
{
	size_t o = 0;

	for (size_t i = 0; i < run.n; i++) {
		if (o > 0 && strcmp(run.files[o - 1].rel, run.files[i].rel) == 0) {
			free(run.files[i].rel);
			continue;
		}
		run.files[o++] = run.files[i];
	}
	run.n = o;
}

/* --- hashing and writing ----------------------------------------------------- */

/* Streams the cache file through SHA-256 and, if a is not NULL, into the
 * archive's current entry.  0, or -1 with a message printed. */
static int stream(const char *rel, struct archive *a, char *buf, uint64_t *size,
                  char hex[BUNDLE_SHA256_HEX])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char digest[32];
	struct cache_entry e;
	uint64_t total = 0;
	ssize_t got;
	int r = cache_open(rel, &e);

	if (md == NULL || r < 0 || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		fprintf(stderr, "goproxyd export: %s: %s\n", rel, r < 0 ? strerror(-r) : "no SHA-256");
		EVP_MD_CTX_free(md);
		if (r == 0)
			close(e.ce_fd);
		return -1;
	}
	while ((got = read(e.ce_fd, buf, COPY_BUF)) > 0) {
		EVP_DigestUpdate(md, buf, (size_t)got);
		if (a && ar->archive_write_data(a, buf, (size_t)got) != got) {
			fprintf(stderr, "goproxyd export: %s: %s\n", run.out, ar->archive_error_string(a));
			got = -2;
			break;
		}
		total += (uint64_t)got;
	}
	close(e.ce_fd);
	EVP_DigestFinal_ex(md, digest, NULL);
	EVP_MD_CTX_free(md);
	if (got < 0) {
		if (got == -1)
			fprintf(stderr, "goproxyd export: %s: %s\n", rel, strerror(errno));
		return -1;
	}
	*size = total;
	bundle_hex(digest, hex);
	return 0;
}

static int write_header(struct archive *a, const char *path, uint64_t size)
{
	struct archive_entry *e = ar->archive_entry_new();
	int r;

	if (e == NULL)
		return -1;
	ar->archive_entry_set_pathname(e, path);
	ar->archive_entry_set_size(e, (la_int64_t)size);
	ar->archive_entry_set_filetype(e, AE_IFREG);
	ar->archive_entry_set_perm(e, 0644);
	ar->archive_entry_set_mtime(e, time(NULL), 0);
	r = ar->archive_write_header(a, e);
	ar->archive_entry_free(e);
	if (r != ARCHIVE_OK)
		fprintf(stderr, "goproxyd export: %s: %s\n", run.out, ar->archive_error_string(a));
	return r == ARCHIVE_OK ? 0 : -1;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static struct archive *open_out(const char *tmp)
{
	struct archive *a = ar->archive_write_new();
	int r = ARCHIVE_OK;

	if (a == NULL)
		return NULL;
	ar->archive_write_set_format_pax_restricted(a);
	if (ends_with(run.out, ".gz"))
		r = ar->archive_write_add_filter_gzip(a);
	else if (ends_with(run.out, ".zst"))
		r = ar->archive_write_add_filter_zstd(a);
	if (r != ARCHIVE_OK || ar->archive_write_open_filename(a, tmp) != ARCHIVE_OK) {
		fprintf(stderr, "goproxyd export: %s: %s\n", run.out, ar->archive_error_string(a));
		ar->archive_write_free(a);
		return NULL;
	}
	return a;
}

/* The manifest entry, then every file, each checked against its hash. */
static int write_all(struct archive *a, const struct bundle_manifest *m, char *buf)
{
	char *json = bundle_manifest_json(m), hex[BUNDLE_SHA256_HEX];
	size_t jl = json ? strlen(json) : 0;
	uint64_t size;

	if (json == NULL || write_header(a, BUNDLE_MANIFEST, jl) < 0 ||
	    ar->archive_write_data(a, json, jl) != (la_ssize_t)jl) {
		free(json);
		return -1;
	}
	free(json);
	for (size_t i = 0; i < run.n; i++) {
		if (write_header(a, run.files[i].rel, m->files[i].size) < 0 ||
		    stream(run.files[i].rel, a, buf, &size, hex) < 0)
			return -1;
		if (size != m->files[i].size || strcmp(hex, m->files[i].sha256) != 0) {
			fprintf(stderr, "goproxyd export: %s changed while it was exported; run export again\n",
			        run.files[i].rel);
			return -1;
		}
	}
	return 0;
}

static int hash_all(struct bundle_manifest *m, char *buf, uint64_t *bytes)
{
	char hex[BUNDLE_SHA256_HEX];
	uint64_t size;

	for (size_t i = 0; i < run.n; i++) {
		if (stream(run.files[i].rel, NULL, buf, &size, hex) < 0 ||
		    bundle_manifest_add(m, run.files[i].rel, size, hex) < 0)
			return -1;
		*bytes += size;
	}
	return 0;
}

/* Writes FILE by way of a temp file beside it. */
static int export_files(void)
{
	struct bundle_manifest m = { 0 };
	char *buf = malloc(COPY_BUF), tmp[4096];
	struct archive *a = NULL;
	uint64_t bytes = 0;
	int r = -1, fd;

	snprintf(tmp, sizeof tmp, "%s.tmp-%ld", run.out, (long)getpid());
	if (buf == NULL || hash_all(&m, buf, &bytes) < 0 || (a = open_out(tmp)) == NULL)
		goto out;
	r = write_all(a, &m, buf);
	if (ar->archive_write_close(a) != ARCHIVE_OK) {
		fprintf(stderr, "goproxyd export: %s: %s\n", run.out, ar->archive_error_string(a));
		r = -1;
	}
	if (r == 0 && ((fd = open(tmp, O_RDONLY | O_CLOEXEC)) < 0 || fsync(fd) < 0 ||
	               close(fd) < 0 || rename(tmp, run.out) < 0)) {
		fprintf(stderr, "goproxyd export: %s: %s\n", run.out, strerror(errno));
		r = -1;
	}
	if (r == 0)
		printf("exported %zu files, %llu bytes, to %s\n", run.n, (unsigned long long)bytes, run.out);
out:
	if (a)
		ar->archive_write_free(a);
	if (r < 0)
		unlink(tmp);
	free(buf);
	bundle_manifest_free(&m);
	return r;
}

/* --- main ------------------------------------------------------------------------ */

static int parse(int argc, char **argv)
{
	const struct config_cmdflags cf = { "export", own_flags, 2, NULL };
	char why[600];
	int first = argc, r = config_parse_cmd(&run.cfg, argc, argv, stdout, stderr, &cf, &first);

	if (r == CONFIG_EXIT_OK)
		printf("\ngoproxyd export -cacheDir DIR -o FILE[.gz|.zst] [-since TIME] [GOSUM...]\n");
	if (r != CONFIG_RUN)
		return r == CONFIG_EXIT_OK ? 0 : 2;
	if (run.out == NULL) {
		fprintf(stderr, "goproxyd export: -o FILE is required\n");
		return 2;
	}
	for (int i = first; i < argc; i++) {
		if (gosum_load(&run.sums, argv[i], why, sizeof why) < 0) {
			fprintf(stderr, "goproxyd export: %s\n", why);
			return 2;
		}
		run.use_sums = true;
	}
	gosum_sort(&run.sums);
	return -1;
}

int exportcmd_main(int argc, char **argv)
{
	int r;

	char err[512];

	if ((r = parse(argc, argv)) >= 0)
		goto out;
	if ((ar = archivelib_load(err, sizeof err)) == NULL) {
		fprintf(stderr, "goproxyd export: %s\n", err);
		r = 1;
		goto out;
	}
	if ((r = cache_init(run.cfg.cache_dir, false)) < 0) {
		fprintf(stderr, "goproxyd export: -cacheDir %s: %s\n", run.cfg.cache_dir, strerror(-r));
		r = 1;
		goto out;
	}
	run.root_len = strlen(cache_root());
	r = 1;
	if (nftw(cache_root(), visit, 32, FTW_PHYS | FTW_ACTIONRETVAL) == 0 && !run.failed && add_tiles() == 0) {
		if (run.n > 1)
			qsort(run.files, run.n, sizeof *run.files, cmp_file);
		drop_duplicates();
		r = export_files() == 0 ? 0 : 1;
	} else
		fprintf(stderr, "goproxyd export: walking %s: %s\n", cache_root(), strerror(errno));
	cache_shutdown();
out:
	for (size_t i = 0; i < run.n; i++)
		free(run.files[i].rel);
	free(run.files);
	gosum_free(&run.sums);
	config_free(&run.cfg);
	return r;
}
