/* importcmd: see include/importcmd.h.  `goproxyd import`: one thread
 * (verify_file() runs on it too; the verifier pool is not started). */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archivelib.h"
#include "bundle.h"
#include "cache.h"
#include "config.h"
#include "gosum.h"
#include "importcmd.h"
#include "route.h"
#include "validate.h"
#include "verify.h"

#define COPY_BUF (256u << 10)

static const struct archivelib *ar;   /* libarchive, loaded by importcmd_main */

#define SUMDB_ENTRY_MAX (4u << 20)
#define HELD_MAX 3               /* .info, .mod, .zip of one version */
#define TEXT_MAX (16u << 20)     /* list, .mod, .info read back */

struct held {
	struct cache_tmp tmp;
	struct request req;
	char rel[CACHE_KEY_MAX];
	char sha[BUNDLE_SHA256_HEX];
};

struct sumfile {
	char *rel;
	char *data;
	size_t len;
};

static struct {
	struct config cfg;
	struct gosum sums;
	const char *file;
	struct archive *a;
	struct bundle_manifest m;
	struct sumfile *sf;
	size_t n_sf, cap_sf;
	char group[CACHE_KEY_MAX];   /* "<esc path>/@v/<esc version>" being gathered */
	struct held held[HELD_MAX];
	size_t n_held;
	bool group_failed;
	char *buf;
	unsigned imported, unchanged, failed, conflicts;
} run;

/* --- flags ------------------------------------------------------------------- */

static const char *add_gosum(void *arg, const char *v)
{
	static char why[600];

	(void)arg;
	return gosum_load(&run.sums, v, why, sizeof why) < 0 ? why : NULL;
}

static const struct config_cmdflag own_flags[] = { { "gosum", add_gosum } };

/* --- reporting ------------------------------------------------------------------ */

static void fail(const char *rel, const char *reason)
{
	printf("FAIL %s: %s\n", rel, reason);
	run.failed++;
}

/* --- reading entries ---------------------------------------------------------------- */

/* Reads the current entry into memory (at most max bytes). */
static int read_entry(char **data, size_t *len, size_t max)
{
	size_t cap = 8192, n = 0;
	char *b = malloc(cap + 1);
	la_ssize_t got;

	while (b && (got = ar->archive_read_data(run.a, b + n, cap - n)) > 0) {
		n += (size_t)got;
		if (n == cap) {
			char *g = cap >= max ? NULL : realloc(b, cap * 2 + 1);

			if (g == NULL) {
				free(b);
				return -1;
			}
			b = g;
			cap *= 2;
		}
	}
	if (b == NULL || got < 0) {
		free(b);
		return -1;
	}
	b[n] = '\0';
	*data = b;
	*len = n;
	return 0;
}

static void sha_hex(const void *data, size_t len, char hex[BUNDLE_SHA256_HEX])
{
	unsigned char d[32];

	EVP_Digest(data, len, d, NULL, EVP_sha256(), NULL);
	bundle_hex(d, hex);
}

static bool matches(const struct bundle_file *mf, uint64_t size, const char *hex)
{
	return mf->size == size && strcmp(mf->sha256, hex) == 0;
}

/* A checksum-database entry: kept in memory until a proof needs it. */
static void take_sumdb(const char *rel, const struct bundle_file *mf)
{
	char hex[BUNDLE_SHA256_HEX], *data;
	size_t len;

	if (read_entry(&data, &len, SUMDB_ENTRY_MAX) < 0) {
		fail(rel, "cannot read the entry (too large or corrupt)");
		return;
	}
	sha_hex(data, len, hex);
	if (!matches(mf, len, hex)) {
		fail(rel, "differs from the manifest (size or SHA-256)");
		free(data);
		return;
	}
	if (run.n_sf == run.cap_sf) {
		size_t cap = run.cap_sf ? run.cap_sf * 2 : 64;
		struct sumfile *g = realloc(run.sf, cap * sizeof *g);

		if (g == NULL) {
			free(data);
			fail(rel, "out of memory");
			return;
		}
		run.sf = g;
		run.cap_sf = cap;
	}
	run.sf[run.n_sf++] = (struct sumfile){ strdup(rel), data, len };
}

/* verify.h's source: the bundle's records and tiles. */
static int from_bundle(void *arg, const char *name, const char *rest, char **data, size_t *len)
{
	char rel[CACHE_KEY_MAX];

	(void)arg;
	snprintf(rel, sizeof rel, "sumdb/%s/%s", name, rest);
	for (size_t i = 0; i < run.n_sf; i++) {
		if (run.sf[i].rel == NULL || strcmp(run.sf[i].rel, rel) != 0)
			continue;
		if ((*data = malloc(run.sf[i].len + 1)) == NULL)
			return -1;
		memcpy(*data, run.sf[i].data, run.sf[i].len);
		(*data)[run.sf[i].len] = '\0';
		*len = run.sf[i].len;
		return 0;
	}
	return -1;
}

/* --- module files ---------------------------------------------------------------- */

static bool module_file(const char *rel, struct request *r)
{
	char raw[CACHE_KEY_MAX + 2], key[CACHE_KEY_MAX];
	const char *why;

	if (strlen(rel) + 2 > sizeof raw)
		return false;
	snprintf(raw, sizeof raw, "/%s", rel);
	if (route_parse(raw, r, &why) != 0 || r->op != OP_NONE || r->kind == REQ_SUMDB ||
	    r->cached_only || (r->kind == REQ_INFO && !r->immutable))
		return false;
	return cache_key(r, key, sizeof key) == 0 && strcmp(key, rel) == 0;
}

/* Streams the entry into a temp file for rel, hashing it. */
static int spool(const char *rel, struct cache_tmp *t, uint64_t *size, char hex[BUNDLE_SHA256_HEX])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char d[32];
	la_ssize_t got;
	int r;

	*size = 0;
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    (r = cache_tmp_create(rel, t)) < 0) {
		EVP_MD_CTX_free(md);
		return -1;
	}
	while ((got = ar->archive_read_data(run.a, run.buf, COPY_BUF)) > 0) {
		EVP_DigestUpdate(md, run.buf, (size_t)got);
		if (cache_tmp_write(t, run.buf, (size_t)got) < 0)
			break;
		*size += (uint64_t)got;
	}
	EVP_DigestFinal_ex(md, d, NULL);
	EVP_MD_CTX_free(md);
	bundle_hex(d, hex);
	if (got != 0 || t->tmp_err) {
		cache_tmp_discard(t);
		return -1;
	}
	return 0;
}

static int read_back(int fd, uint64_t size, char **buf)
{
	if (size > TEXT_MAX || (*buf = malloc(size + 1)) == NULL)
		return -1;
	if (pread(fd, *buf, size, 0) != (ssize_t)size) {
		free(*buf);
		return -1;
	}
	(*buf)[size] = '\0';
	return 0;
}

/* The checks a fetched answer passes before it is stored. */
static const char *check_content(const struct request *r, int fd, uint64_t size)
{
	char *b, version[MP_VERSION_MAX];
	const char *bad;

	if (size > validate_limit(r))
		return "larger than the go command accepts";
	if (r->kind == REQ_ZIP)
		return validate_zip(fd, r->path, r->version);
	if (read_back(fd, size, &b) < 0)
		return "cannot read the file back";
	if (r->kind == REQ_MOD)
		bad = validate_mod(b, size);
	else if (r->kind == REQ_LIST)
		bad = validate_list(b, size);
	else
		bad = validate_info(b, size, r->path, r->kind == REQ_INFO ? r->version : NULL, version);
	free(b);
	return bad;
}

/* --- one version, whole or not at all ---------------------------------------------- */

static int hash_cached(const char *rel, char hex[BUNDLE_SHA256_HEX])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char d[32];
	struct cache_entry e;
	ssize_t got = 0;

	if (md == NULL || cache_open(rel, &e) < 0) {
		EVP_MD_CTX_free(md);
		return -1;
	}
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while ((got = read(e.ce_fd, run.buf, COPY_BUF)) > 0)
		EVP_DigestUpdate(md, run.buf, (size_t)got);
	close(e.ce_fd);
	EVP_DigestFinal_ex(md, d, NULL);
	EVP_MD_CTX_free(md);
	bundle_hex(d, hex);
	return got < 0 ? -1 : 0;
}

/* A .mod/.zip against the bundled proofs, or the -gosum files. */
static const char *prove(struct held *h, char *why, size_t n)
{
	const struct request *r = &h->req;
	char got[DIRHASH_SIZE];
	const char *want;

	if (r->kind != REQ_MOD && r->kind != REQ_ZIP)
		return NULL;
	want = gosum_find(&run.sums, r->path, r->version, r->kind == REQ_MOD);
	if (verify_wanted(r)) {
		if (verify_file(r, h->tmp.tmp_fd, why, n) < 0)
			return why;
	} else if (want == NULL)
		return "not verified: no checksum database covers it (-sumdb, -noSumPatterns) and no -gosum file lists it";
	if (want == NULL)
		return NULL;
	if (verify_hash(r, h->tmp.tmp_fd, got, why, n) < 0)
		return why;
	if (strcmp(got, want) != 0) {
		snprintf(why, n, "checksum mismatch: bundle has %s, -gosum has %s", got, want);
		return why;
	}
	return NULL;
}

static void drop_group(const char *reason)
{
	for (size_t i = 0; i < run.n_held; i++) {
		printf("FAIL %s: not stored: %s\n", run.held[i].rel, reason);
		run.failed++;
		cache_tmp_discard(&run.held[i].tmp);
	}
	run.n_held = 0;
}

/* h's key is cached: with h's content (true), or with other content, a
 * conflict, reported (false). */
static bool cached_same(const struct held *h)
{
	char hex[BUNDLE_SHA256_HEX];

	if (hash_cached(h->rel, hex) == 0 && strcmp(hex, h->sha) == 0)
		return true;
	printf("CONFLICT %s: cached with other content; not overwritten\n", h->rel);
	run.conflicts++;
	return false;
}

/* Existing files: the same content is nothing to do; other content is a
 * conflict, and then nothing of the version is stored. */
static bool conflicts(bool *same)
{
	struct stat st;
	bool any = false;

	for (size_t i = 0; i < run.n_held; i++) {
		bool cached = cache_stat(run.held[i].rel, &st) == 0;

		same[i] = cached && cached_same(&run.held[i]);
		any |= cached && !same[i];
	}
	return any;
}

static void publish_group(void)
{
	bool same[HELD_MAX];
	int r;

	if (conflicts(same)) {
		drop_group("another file of this version conflicts with the cache");
		return;
	}
	for (size_t i = 0; i < run.n_held; i++) {
		if (same[i]) {
			cache_tmp_discard(&run.held[i].tmp);
			run.unchanged++;
		} else if ((r = cache_tmp_publish_new(&run.held[i].tmp)) == -EEXIST) {
			/* Published since conflicts() looked (by a daemon serving
			 * this directory): never replaced. */
			if (cached_same(&run.held[i]))
				run.unchanged++;
		} else if (r < 0) {
			fail(run.held[i].rel, strerror(-r));
		} else {
			close(run.held[i].tmp.tmp_fd);
			run.imported++;
		}
	}
	run.n_held = 0;
}

static void finish_group(void)
{
	char why[600];
	const char *bad;

	if (run.group_failed) {
		drop_group("another file of this version failed");
	} else {
		for (size_t i = 0; i < run.n_held; i++)
			if ((bad = prove(&run.held[i], why, sizeof why)) != NULL) {
				fail(run.held[i].rel, bad);
				cache_tmp_discard(&run.held[i].tmp);
				run.held[i] = run.held[--run.n_held];
				drop_group("another file of this version failed");
				break;
			}
		publish_group();
	}
	run.group[0] = '\0';
	run.group_failed = false;
}

/* --- mutable files: merged, never replaced blindly ----------------------------------- */

struct lines {
	char **v;
	size_t n, cap;
};

/* Adds the first field of every non-blank line of buf. */
static int add_lines(struct lines *l, char *buf)
{
	char *save = NULL;

	for (char *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
		t[strcspn(t, " \t\r")] = '\0';
		if (*t == '\0')
			continue;
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 32;
			char **g = realloc(l->v, cap * sizeof *g);

			if (g == NULL)
				return -1;
			l->v = g;
			l->cap = cap;
		}
		l->v[l->n++] = t;
	}
	return 0;
}

static int cmp_version(const void *a, const void *b)
{
	int c = mp_semver_compare(*(char *const *)a, *(char *const *)b);

	return c ? c : strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_cached_text(const char *rel, char **buf, size_t *len)
{
	struct cache_entry e;
	int r;

	if (cache_open(rel, &e) < 0) {
		*buf = NULL;
		*len = 0;
		return 0;
	}
	r = read_back(e.ce_fd, e.size, buf);
	*len = e.size;
	close(e.ce_fd);
	return r;
}

/* The union of the cached list and the bundle's, sorted. */
static void merge_list(const char *rel, struct cache_tmp *t, uint64_t size)
{
	char *mine = NULL, *theirs = NULL, *out = NULL;
	struct lines l = { 0 };
	size_t len, o = 0;

	if (read_back(t->tmp_fd, size, &theirs) < 0 || read_cached_text(rel, &mine, &len) < 0 ||
	    (out = malloc(size + 2 * len + 2)) == NULL) {
		fail(rel, "cannot merge the list");
		goto done;
	}
	if (mine)
		memcpy(out + size + len + 1, mine, len);   /* add_lines() cuts mine up */
	if (add_lines(&l, theirs) < 0 || (mine && add_lines(&l, mine) < 0)) {
		fail(rel, "cannot merge the list");
		goto done;
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof *l.v, cmp_version);
	for (size_t i = 0; i < l.n; i++)
		if (i == 0 || strcmp(l.v[i], l.v[i - 1]) != 0)
			o += (size_t)sprintf(out + o, "%s\n", l.v[i]);
	if (mine && o == len && memcmp(out, out + size + len + 1, o) == 0)
		run.unchanged++;
	else if (cache_store_bytes(rel, out, o) < 0)
		fail(rel, "cannot store the merged list");
	else
		run.imported++;
done:
	cache_tmp_discard(t);
	free(l.v);
	free(mine);
	free(theirs);
	free(out);
}

/* An @latest replaces the cached one only if it names a higher version. */
static void take_latest(const struct request *r, const char *rel, struct cache_tmp *t,
                        uint64_t size)
{
	char *mine = NULL, *theirs = NULL, v_new[MP_VERSION_MAX], v_old[MP_VERSION_MAX];
	size_t len;
	bool newer = true;
	int rc;

	if (read_back(t->tmp_fd, size, &theirs) < 0 || read_cached_text(rel, &mine, &len) < 0 ||
	    validate_info(theirs, size, r->path, NULL, v_new) != NULL) {
		fail(rel, "cannot read @latest");
		cache_tmp_discard(t);
	} else {
		if (mine && validate_info(mine, len, r->path, NULL, v_old) == NULL)
			newer = mp_semver_compare(v_new, v_old) > 0;
		if (!newer) {
			cache_tmp_discard(t);
			run.unchanged++;
		} else if ((rc = cache_tmp_publish(t)) < 0) {
			fail(rel, strerror(-rc));
		} else {
			close(t->tmp_fd);
			run.imported++;
		}
	}
	free(mine);
	free(theirs);
}

/* --- the entries, in order ---------------------------------------------------------- */

/* "<esc path>/@v/<esc version>" of a version's file, or "" for list/@latest. */
static void group_of(const char *rel, const struct request *r, char *g, size_t n)
{
	const char *dot = strrchr(rel, '.');

	if (r->kind == REQ_LIST || r->kind == REQ_LATEST || dot == NULL)
		g[0] = '\0';
	else
		snprintf(g, n, "%.*s", (int)(dot - rel), rel);
}

static void take_module_file(const char *rel, const struct request *r, const struct bundle_file *mf)
{
	char hex[BUNDLE_SHA256_HEX];
	struct cache_tmp t;
	uint64_t size;
	const char *bad = NULL;

	if (spool(rel, &t, &size, hex) < 0) {
		fail(rel, "cannot read the entry or write a temp file");
		run.group_failed = true;
		return;
	}
	if (!matches(mf, size, hex))
		bad = "differs from the manifest (size or SHA-256)";
	else
		bad = check_content(r, t.tmp_fd, size);
	if (bad != NULL) {
		fail(rel, bad);
		cache_tmp_discard(&t);
		run.group_failed = true;
	} else if (r->kind == REQ_LIST) {
		merge_list(rel, &t, size);
	} else if (r->kind == REQ_LATEST) {
		take_latest(r, rel, &t, size);
	} else if (run.n_held == HELD_MAX) {
		fail(rel, "too many files for one version");
		cache_tmp_discard(&t);
		run.group_failed = true;
	} else {
		struct held *h = &run.held[run.n_held++];

		h->tmp = t;
		h->req = *r;
		snprintf(h->rel, sizeof h->rel, "%s", rel);
		snprintf(h->sha, sizeof h->sha, "%s", hex);
	}
}

static void take_entry(struct archive_entry *e)
{
	const char *rel = ar->archive_entry_pathname(e);
	char g[CACHE_KEY_MAX];
	struct bundle_file *mf;
	struct request r;

	if (rel == NULL || ar->archive_entry_filetype(e) != AE_IFREG || !bundle_path_ok(rel)) {
		fail(rel ? rel : "(an entry without a name)", "not a regular file with a safe relative path");
		return;
	}
	if (strncmp(rel, "sumdb/", 6) != 0 && !module_file(rel, &r)) {
		fail(rel, "not a module file of the cache layout");
		return;
	}
	if (strncmp(rel, "sumdb/", 6) != 0) {
		group_of(rel, &r, g, sizeof g);
		if (strcmp(g, run.group) != 0)
			finish_group();
		snprintf(run.group, sizeof run.group, "%s", g);
	}
	if ((mf = bundle_manifest_find(&run.m, rel)) == NULL || mf->seen) {
		fail(rel, mf ? "in the bundle twice" : "not in the manifest");
		run.group_failed = true;
		return;
	}
	mf->seen = true;
	if (strncmp(rel, "sumdb/", 6) == 0)
		take_sumdb(rel, mf);
	else
		take_module_file(rel, &r, mf);
}

static int open_bundle(void)
{
	struct archive_entry *e;
	char *json;
	size_t len;
	const char *bad = NULL;

	run.a = ar->archive_read_new();
	if (run.a == NULL)
		return -1;
	ar->archive_read_support_filter_gzip(run.a);
	ar->archive_read_support_filter_zstd(run.a);
	ar->archive_read_support_format_tar(run.a);
	if (ar->archive_read_open_filename(run.a, run.file, COPY_BUF) != ARCHIVE_OK ||
	    ar->archive_read_next_header(run.a, &e) != ARCHIVE_OK) {
		fprintf(stderr, "goproxyd import: %s: %s\n", run.file, ar->archive_error_string(run.a));
		return -1;
	}
	if (strcmp(ar->archive_entry_pathname(e), BUNDLE_MANIFEST) != 0)
		bad = "the first entry is not " BUNDLE_MANIFEST;
	else if (read_entry(&json, &len, BUNDLE_MANIFEST_MAX) < 0)
		bad = "cannot read the manifest";
	else {
		bad = bundle_manifest_parse(&run.m, json, len);
		free(json);
	}
	if (bad)
		fprintf(stderr, "goproxyd import: %s: %s\n", run.file, bad);
	return bad ? -1 : 0;
}

static void import_all(void)
{
	struct archive_entry *e;
	int r;

	while ((r = ar->archive_read_next_header(run.a, &e)) == ARCHIVE_OK)
		take_entry(e);
	finish_group();
	if (r != ARCHIVE_EOF)
		fail(run.file, ar->archive_error_string(run.a) ? ar->archive_error_string(run.a) : "corrupt archive");
	for (size_t i = 0; i < run.m.n; i++)
		if (!run.m.files[i].seen)
			fail(run.m.files[i].path, "in the manifest but not in the bundle");
}

/* --- main ------------------------------------------------------------------------------ */

static int parse(int argc, char **argv)
{
	const struct config_cmdflags cf = { "import", own_flags, 1, NULL };
	int first = argc, r = config_parse_cmd(&run.cfg, argc, argv, stdout, stderr, &cf, &first);

	if (r == CONFIG_EXIT_OK)
		printf("\ngoproxyd import -cacheDir DIR [-sumdb KEY] [-gosum FILE]... FILE\n");
	if (r != CONFIG_RUN)
		return r == CONFIG_EXIT_OK ? 0 : 2;
	if (first != argc - 1) {
		fprintf(stderr, "goproxyd import: want exactly one bundle file\n");
		return 2;
	}
	run.file = argv[first];
	gosum_sort(&run.sums);
	return -1;
}

static void free_all(void)
{
	for (size_t i = 0; i < run.n_sf; i++) {
		free(run.sf[i].rel);
		free(run.sf[i].data);
	}
	free(run.sf);
	if (run.a)
		ar->archive_read_free(run.a);
	bundle_manifest_free(&run.m);
	gosum_free(&run.sums);
	free(run.buf);
	config_free(&run.cfg);
}

int importcmd_main(int argc, char **argv)
{
	int r;

	char err[512];

	if ((r = parse(argc, argv)) >= 0) {
		free_all();
		return r;
	}
	if ((ar = archivelib_load(err, sizeof err)) == NULL) {
		fprintf(stderr, "goproxyd import: %s\n", err);
		free_all();
		return 1;
	}
	if ((r = cache_init(run.cfg.cache_dir, true)) < 0) {
		fprintf(stderr, "goproxyd import: -cacheDir %s: %s\n", run.cfg.cache_dir, strerror(-r));
		free_all();
		return 1;
	}
	/* Proofs come from the bundle only: nothing is fetched. */
	verify_set_source(from_bundle, NULL);
	r = 1;
	if (verify_init(&run.cfg) < 0)
		r = 2;
	else if ((run.buf = malloc(COPY_BUF)) != NULL && open_bundle() == 0) {
		import_all();
		printf("imported %u, unchanged %u, failed %u, conflicts %u\n", run.imported, run.unchanged,
		       run.failed, run.conflicts);
		r = run.failed || run.conflicts ? 1 : 0;
	}
	cache_shutdown();
	free_all();
	return r;
}
