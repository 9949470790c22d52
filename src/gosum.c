/* gosum: see include/gosum.h.  Pure apart from gosum_load() reading a
 * file; runs on the main thread of `goproxyd prefetch` and `import`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gosum.h"
#include "text.h"

#define FIELDS_MAX 4

/* Splits one line into at most FIELDS_MAX space- or tab-separated fields,
 * in place; returns how many (FIELDS_MAX + 1 if there are more). */
static int split_fields(char *line, char **f)
{
	int n = 0;
	char *save = NULL;

	for (char *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
		if (n == FIELDS_MAX)
			return FIELDS_MAX + 1;
		f[n++] = t;
	}
	return n;
}

/* A module path and a canonical version that fits it. */
static const char *check_module(const char *path, const char *version)
{
	const char *bad;

	if ((bad = mp_check_path(path)) != NULL)
		return bad;
	if (!mp_is_canonical(version))
		return "version is not canonical";
	return mp_check_path_major(path, version);
}

static int add_line(struct gosum *g, char **f, char *why, size_t n, const char *where)
{
	struct gosum_line *l;
	size_t vlen = strlen(f[1]);
	bool gomod = vlen > 7 && strcmp(f[1] + vlen - 7, "/go.mod") == 0;
	const char *bad;

	if (gomod)
		f[1][vlen - 7] = '\0';
	if ((bad = check_module(f[0], f[1])) != NULL)
		return text_fail(why, n, "%s: %s", where, bad);
	if (strncmp(f[2], "h1:", 3) != 0 || strlen(f[2]) != DIRHASH_LEN)
		return text_fail(why, n, "%s: not an h1: hash", where);
	if (strlen(f[0]) >= MP_PATH_MAX || strlen(f[1]) >= MP_VERSION_MAX)
		return text_fail(why, n, "%s: too long", where);
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 64;
		struct gosum_line *grown = realloc(g->lines, cap * sizeof *grown);

		if (grown == NULL)
			return text_fail(why, n, "%s: out of memory", where);
		g->lines = grown;
		g->cap = cap;
	}
	l = &g->lines[g->n++];
	strcpy(l->path, f[0]);
	strcpy(l->version, f[1]);
	l->gomod = gomod;
	strcpy(l->hash, f[2]);
	return 0;
}

/* Calls each(line, lineno) for every line of buf; stops at a non-zero. */
static int each_line(const char *buf, size_t len, int (*each)(void *, char *, unsigned),
                     void *arg)
{
	char line[4096];
	unsigned no = 0;
	int r = 0;

	for (size_t i = 0; i < len && r == 0;) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t l = (nl ? (size_t)(nl - buf) : len) - i;

		no++;
		if (l >= sizeof line)
			return -(int)no - 1;
		memcpy(line, buf + i, l);
		line[l] = '\0';
		if (memchr(line, '\0', l) != NULL)
			return -(int)no - 1;
		r = each(arg, line, no);
		i += l + 1;
	}
	return r;
}

struct parse_ctx {
	struct gosum *g;
	const char *name;
	char *why;
	size_t n;
	int (*fn)(void *arg, const char *path, const char *version);
	void *arg;
};

static int sum_line(void *arg, char *line, unsigned no)
{
	struct parse_ctx *c = arg;
	char where[600], *f[FIELDS_MAX];
	int nf = split_fields(line, f);

	snprintf(where, sizeof where, "%.500s:%u", c->name, no);
	if (nf == 0)
		return 0;
	if (nf != 3)
		return text_fail(c->why, c->n, "%s: want \"<module> <version>[/go.mod] h1:<hash>\"", where);
	return add_line(c->g, f, c->why, c->n, where);
}

static int fail_long_line(int r, const char *name, char *why, size_t n)
{
	if (r < -1)
		return text_fail(why, n, "%.500s:%d: line too long or holds a NUL byte", name, -r - 1);
	return r;
}

int gosum_parse(struct gosum *g, const char *name, const char *buf, size_t len,
                char *why, size_t n)
{
	struct parse_ctx c = { g, name, why, n, NULL, NULL };

	return fail_long_line(each_line(buf, len, sum_line, &c), name, why, n);
}

int gosum_load(struct gosum *g, const char *path, char *why, size_t n)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (f == NULL)
		return text_fail(why, n, "%.500s: %s", path, strerror(errno));
	{
		FILE *m = open_memstream(&buf, &len);
		char chunk[8192];
		size_t got;

		if (m == NULL) {
			fclose(f);
			return text_fail(why, n, "out of memory");
		}
		while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
			fwrite(chunk, 1, got, m);
		fclose(m);
	}
	r = ferror(f) ? text_fail(why, n, "%.500s: read error", path)
	              : gosum_parse(g, path, buf, len, why, n);
	fclose(f);
	free(buf);
	return r;
}

static int cmp_line(const void *a, const void *b)
{
	const struct gosum_line *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	if (c == 0)
		c = strcmp(x->version, y->version);
	return c ? c : (int)x->gomod - (int)y->gomod;
}

void gosum_sort(struct gosum *g)
{
	if (g->n > 1)
		qsort(g->lines, g->n, sizeof *g->lines, cmp_line);
}

const char *gosum_find(const struct gosum *g, const char *path, const char *version, bool gomod)
{
	struct gosum_line key;
	const struct gosum_line *l;

	if (strlen(path) >= sizeof key.path || strlen(version) >= sizeof key.version || g->n == 0)
		return NULL;
	strcpy(key.path, path);
	strcpy(key.version, version);
	key.gomod = gomod;
	l = bsearch(&key, g->lines, g->n, sizeof *g->lines, cmp_line);
	return l ? l->hash : NULL;
}

void gosum_free(struct gosum *g)
{
	free(g->lines);
	*g = (struct gosum){ 0 };
}

static int list_line(void *arg, char *line, unsigned no)
{
	struct parse_ctx *c = arg;
	char *f[FIELDS_MAX];
	int nf = split_fields(line, f);
	const char *bad;

	if (nf < 2)          /* blank, or the main module (no version) */
		return 0;
	if ((bad = check_module(f[0], f[1])) != NULL)
		return text_fail(c->why, c->n, "%.500s:%u: %s %s: %s", c->name, no, f[0], f[1], bad);
	return c->fn(c->arg, f[0], f[1]);
}

int gosum_modlist(const char *buf, size_t len, const char *name,
                  int (*fn)(void *arg, const char *path, const char *version), void *arg,
                  char *why, size_t n)
{
	struct parse_ctx c = { NULL, name, why, n, fn, arg };

	return fail_long_line(each_line(buf, len, list_line, &c), name, why, n);
}

const char *gosum_split_at(const char *arg, char *path, size_t pn, char *version, size_t vn)
{
	const char *at = strrchr(arg, '@'), *bad;

	if (at == NULL || at == arg || at[1] == '\0')
		return "want module@version";
	if ((size_t)(at - arg) >= pn || strlen(at + 1) >= vn)
		return "module path or version too long";
	memcpy(path, arg, (size_t)(at - arg));
	path[at - arg] = '\0';
	strcpy(version, at + 1);
	if ((bad = mp_check_path(path)) != NULL)
		return bad;
	if (strcmp(version, "latest") == 0)
		return NULL;
	if (!mp_is_canonical(version))
		return "version must be canonical (vX.Y.Z) or latest";
	return mp_check_path_major(path, version);
}
