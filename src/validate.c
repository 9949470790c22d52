/* validate: see include/validate.h.  Pure checks; run on the store threads. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "gomod.h"
#include "text.h"
#include "unicode.h"
#include "validate.h"

#define MAX_ZIP    524288000ULL   /* modfetch MaxZipFile: 500 MiB */
#define MAX_MOD    (16ULL << 20)  /* modfetch MaxGoMod */
#define MAX_INFO   (64ULL << 10)
#define MAX_LIST   (16ULL << 20)
#define MAX_SUMDB  (4ULL << 20)

uint64_t validate_limit(const struct request *r)
{
	switch (r->kind) {
	case REQ_SUMDB:
		return MAX_SUMDB;
	case REQ_ZIP:
		return MAX_ZIP;
	case REQ_MOD:
		return MAX_MOD;
	case REQ_LIST:
		return MAX_LIST;
	case REQ_INFO:
	case REQ_LATEST:
		break;
	}
	return MAX_INFO;
}

const char *validate_info(const char *buf, size_t len, const char *path,
                          const char *want, char *version)
{
	const char *reason = NULL;
	cJSON *root = cJSON_ParseWithLength(buf, len);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "Version");

	if (!cJSON_IsObject(root))
		reason = "upstream .info is not a JSON object";
	else if (!cJSON_IsString(v) || strlen(v->valuestring) >= MP_VERSION_MAX)
		reason = "upstream .info has no Version string";
	else if (!mp_is_canonical(v->valuestring))
		reason = "upstream .info names a non-canonical version";
	else if (mp_check_path_major(path, v->valuestring) != NULL)
		reason = "upstream .info names a version that does not fit the module path";
	else if (want != NULL && strcmp(want, v->valuestring) != 0)
		reason = "upstream .info names another version than the one requested";
	else
		strcpy(version, v->valuestring);
	cJSON_Delete(root);
	return reason;
}

/* The go command keeps field 0 of each line if semver.IsValid; a line it
 * would drop is a sign of a broken upstream, so the list is refused. */
const char *validate_list(const char *buf, size_t len)
{
	char v[MP_VERSION_MAX];
	const char *p = buf, *end = buf + len;

	if (memchr(buf, '\0', len))
		return "upstream list contains NUL bytes";
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end, *f = p;
		size_t n = 0;

		/* Only buf[0..len): the body need not end in a NUL. */
		while (f < eol && strchr(" \t\r\v\f", *f))
			f++;
		while (f + n < eol && !strchr(" \t\r\v\f", f[n]))
			n++;
		if (n >= sizeof v)
			return "upstream list has a line that is not a valid version";
		memcpy(v, f, n);
		v[n] = '\0';
		if (n > 0 && !mp_semver_valid(v))
			return "upstream list has a line that is not a valid version";
		p = eol + 1;
	}
	return NULL;
}

const char *validate_mod(const char *buf, size_t len)
{
	struct gomod m;

	return gomod_parse(buf, len, &m, NULL, NULL);
}

const char *validate_sumdb(const struct request *r, const char *buf, size_t len)
{
	static const char tree[] = "go.sum database tree\n";
	size_t digits = 0;

	while (digits < len && buf[digits] >= '0' && buf[digits] <= '9')
		digits++;

	switch (r->sumdb_kind) {
	case SUMDB_TILE:
		return len == (size_t)r->tile_width * 32 ? NULL : "upstream tile has the wrong size";
	case SUMDB_LOOKUP:
		return digits > 0 && digits < len && buf[digits] == '\n' ? NULL
		       : "upstream lookup does not start with a record id";
	case SUMDB_LATEST:
		return len > sizeof tree && memcmp(buf, tree, sizeof tree - 1) == 0 ? NULL
		       : "upstream latest is not a tree note";
	case SUMDB_DATA_TILE:
	case SUMDB_SUPPORTED:
		break;
	}
	return memchr(buf, '\0', len) ? "upstream answer contains NUL bytes" : NULL;
}

/* One name in the collision check: an entry's path below the prefix, or
 * one of its parent directories (a prefix of it, not a copy). */
struct zname {
	const char *s;
	size_t n;
	bool dir;
};

/* Orders names by x/mod zip's strToFold: rune by rune, each folded.  The
 * names are valid UTF-8 by then (mp_check_file_path). */
static int fold_cmp(const struct zname *a, const struct zname *b)
{
	size_t i = 0, j = 0, sa, sb;

	while (i < a->n && j < b->n) {
		int32_t x = uni_fold(text_decode_rune(a->s + i, a->n - i, &sa));
		int32_t y = uni_fold(text_decode_rune(b->s + j, b->n - j, &sb));

		if (x != y)
			return x < y ? -1 : 1;
		i += sa;
		j += sb;
	}
	return (i < a->n) - (j < b->n);
}

static int zname_cmp(const void *a, const void *b)
{
	return fold_cmp(a, b);
}

/* x/mod zip's collisionChecker over every name and parent directory:
 * names equal under case folding must be the same name, a name is not
 * both a file and a directory, and no file appears twice.  Names that
 * fold alike may differ in length (K and U+212A KELVIN SIGN). */
static const char *check_collisions(struct zname *v, size_t n)
{
	qsort(v, n, sizeof *v, zname_cmp);
	for (size_t i = 1; i < n; i++) {
		if (fold_cmp(&v[i - 1], &v[i]) != 0)
			continue;
		if (v[i - 1].n != v[i].n || memcmp(v[i - 1].s, v[i].s, v[i].n) != 0)
			return "upstream zip has a case-insensitive file name collision";
		if (v[i - 1].dir != v[i].dir)
			return "upstream zip has an entry that is both a file and a directory";
		if (!v[i].dir)
			return "upstream zip has multiple entries for one file";
	}
	return NULL;
}

/* Adds name and each of its parent directories to v (room: cap). */
static const char *add_names(struct zname *v, size_t *n, size_t cap,
                             const char *name, size_t len, bool dir)
{
	for (size_t i = 0; i < len; i++)
		if (name[i] == '/') {
			if (*n == cap)
				return "upstream zip has too many path elements";
			v[(*n)++] = (struct zname){ name, i, true };
		}
	if (*n == cap)
		return "upstream zip has too many path elements";
	v[(*n)++] = (struct zname){ name, len, dir };
	return NULL;
}

/* One entry's name and size, after the prefix (checkZip's per-file rules). */
static const char *check_entry(const char *name, uint64_t size, bool *dir, size_t *len)
{
	size_t n = strlen(name);

	*dir = n > 0 && name[n - 1] == '/';
	*len = *dir ? n - 1 : n;
	if (mp_check_file_path(name, *len) != NULL)
		return "upstream zip has an invalid file path (module.CheckFilePath)";
	if (*dir)
		return NULL;
	if (*len == 6 && memcmp(name, "go.mod", 6) == 0 && size > MAX_MOD)
		return "upstream zip has a go.mod larger than 16 MiB";
	if (*len == 7 && memcmp(name, "LICENSE", 7) == 0 && size > MAX_MOD)
		return "upstream zip has a LICENSE larger than 16 MiB";
	return NULL;
}

static const char *check_entries(zip_t *z, const char *prefix, struct zname *v, size_t cap)
{
	size_t plen = strlen(prefix), nv = 0, len;
	zip_int64_t n = zip_get_num_entries(z, 0);
	uint64_t total = 0;
	const char *bad;
	bool dir;

	for (zip_int64_t i = 0; i < n; i++) {
		zip_stat_t st;

		if (zip_stat_index(z, (zip_uint64_t)i, ZIP_FL_ENC_RAW, &st) < 0 ||
		    !(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE))
			return "upstream zip has an unreadable entry";
		if (strncmp(st.name, prefix, plen) != 0)
			return "upstream zip has an entry outside <module>@<version>/";
		total += st.size;
		if (total > MAX_ZIP)
			return "upstream zip expands beyond 500 MiB";
		if (st.name[plen] == '\0')
			continue;   /* the prefix itself: ignored, as checkZip does */
		if ((bad = check_entry(st.name + plen, st.size, &dir, &len)) != NULL ||
		    (bad = add_names(v, &nv, cap, st.name + plen, len, dir)) != NULL)
			return bad;
	}
	return check_collisions(v, nv);
}

/* Room for every name and parent directory: at most one per '/' in the
 * names, which are bounded by the zip's central directory. */
static const char *check_names(zip_t *z, const char *prefix)
{
	zip_int64_t n = zip_get_num_entries(z, 0);
	size_t cap = 0;
	struct zname *v;
	const char *bad;

	for (zip_int64_t i = 0; i < n; i++) {
		const char *name = zip_get_name(z, (zip_uint64_t)i, ZIP_FL_ENC_RAW);

		cap += 1;
		for (; name && *name; name++)
			cap += *name == '/';
	}
	v = malloc((cap ? cap : 1) * sizeof *v);
	if (v == NULL)
		return "out of memory while checking the zip";
	bad = check_entries(z, prefix, v, cap);
	free(v);
	return bad;
}

const char *validate_zip(int fd, const char *path, const char *version)
{
	char prefix[MP_PATH_MAX + MP_VERSION_MAX + 2];
	const char *reason;
	int dfd = dup(fd), err = 0;
	zip_t *z;

	if (dfd < 0)
		return "out of file descriptors while checking the zip";
	if (lseek(dfd, 0, SEEK_SET) < 0) {
		close(dfd);
		return "cannot read the fetched zip";
	}
	/* On success zip_fdopen owns dfd; on failure it is still ours. */
	z = zip_fdopen(dfd, ZIP_CHECKCONS, &err);
	if (z == NULL) {
		close(dfd);
		/* libzip refuses a duplicate entry name itself (ZIP_ER_EXISTS). */
		if (err == ZIP_ER_EXISTS)
			return "upstream zip has multiple entries for one file";
		return err == ZIP_ER_INCONS ? "upstream zip is inconsistent (bad central directory)"
		                            : "upstream zip is not a readable zip file";
	}
	snprintf(prefix, sizeof prefix, "%s@%s/", path, version);
	reason = check_names(z, prefix);
	zip_discard(z);
	return reason;
}
