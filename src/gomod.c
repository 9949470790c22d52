/* gomod: see include/gomod.h.  A port of the parts of golang.org/x/mod's
 * modfile lexer and ParseLax that decide whether a go.mod is readable.
 * Pure: any thread; no allocation, fixed buffers on the stack. */
#include <string.h>

#include "gomod.h"
#include "modpath.h"
#include "text.h"

#define MAX_TOKENS 8    /* per line; more only counts (no directive needs more) */

struct token {
	const char *s;       /* as written, quotes included */
	size_t n;
	bool quoted;
};

struct line {
	struct token tok[MAX_TOKENS];
	size_t ntok;         /* may exceed MAX_TOKENS */
	size_t parens;       /* "(" and ")" tokens, counted past MAX_TOKENS too */
	const char *comment; /* text after "//", or NULL */
	size_t comment_len;
};

struct lexer {
	const char *p, *end;
};

static bool is_space(int c) { return c == ' ' || c == '\t' || c == '\r'; }
static bool is_punct(int c) { return c != '\0' && strchr("()[]{},", c) != NULL; }

/* isIdent: printable, not space, not punctuation, not a quote. */
static bool is_ident(int c)
{
	unsigned char u = (unsigned char)c;

	return u > 0x20 && u != 0x7f && !is_punct(c) && c != '"' && c != '`';
}

static void add_token(struct line *l, const char *s, size_t n, bool quoted)
{
	if (!quoted && n == 1 && (*s == '(' || *s == ')'))
		l->parens++;
	if (l->ntok < MAX_TOKENS)
		l->tok[l->ntok] = (struct token){ s, n, quoted };
	l->ntok++;
}

static const char *lex_string(struct lexer *lx, struct line *l)
{
	const char *start = lx->p;
	char q = *lx->p++;

	for (; lx->p < lx->end && *lx->p != q; lx->p++) {
		if (*lx->p == '\n')
			return "go.mod: unexpected newline in string";
		if (q == '"' && *lx->p == '\\' && lx->p + 1 < lx->end && lx->p[1] != '\n')
			lx->p++;
	}
	if (lx->p == lx->end)
		return "go.mod: unterminated string";
	lx->p++;
	add_token(l, start, (size_t)(lx->p - start), true);
	return NULL;
}

static void lex_comment(struct lexer *lx, struct line *l)
{
	const char *start = lx->p + 2;

	while (lx->p < lx->end && *lx->p != '\n')
		lx->p++;
	l->comment = start;
	l->comment_len = (size_t)(lx->p - start);
}

static const char *lex_ident(struct lexer *lx, struct line *l)
{
	const char *start = lx->p;

	while (lx->p < lx->end && is_ident(*lx->p)) {
		if (lx->end - lx->p >= 2 && lx->p[0] == '/' && lx->p[1] == '/')
			break;
		if (lx->end - lx->p >= 2 && lx->p[0] == '/' && lx->p[1] == '*')
			return "go.mod: mod files must use // comments";
		lx->p++;
	}
	if (lx->p == start)
		return "go.mod: unexpected input character";
	add_token(l, start, (size_t)(lx->p - start), false);
	return NULL;
}

/* Reads one line's tokens and comment; stops after its '\n'. */
static const char *lex_line(struct lexer *lx, struct line *l)
{
	const char *bad = NULL;

	memset(l, 0, sizeof *l);
	while (bad == NULL && lx->p < lx->end && *lx->p != '\n') {
		char c = *lx->p;

		if (is_space(c))
			lx->p++;
		else if (lx->end - lx->p >= 2 && c == '/' && lx->p[1] == '/')
			lex_comment(lx, l);
		else if (lx->end - lx->p >= 2 && c == '/' && lx->p[1] == '*')
			bad = "go.mod: mod files must use // comments";
		else if (is_punct(c)) {
			add_token(l, lx->p++, 1, false);
		} else if (c == '"' || c == '`')
			bad = lex_string(lx, l);
		else
			bad = lex_ident(lx, l);
	}
	if (lx->p < lx->end)
		lx->p++;
	return bad;
}

/* --- arguments -------------------------------------------------------------- */

static bool tok_is(const struct token *t, const char *word)
{
	return !t->quoted && strlen(word) == t->n && memcmp(t->s, word, t->n) == 0;
}

/* parseString: the token's value into out (size outsz), unquoted. */
static const char *unquote(const struct token *t, char *out, size_t outsz)
{
	const char *s = t->s, *e = t->s + t->n;
	size_t j = 0;

	if (t->quoted)
		s++, e--;
	for (; s < e; s++) {
		char c = *s;

		if (t->quoted && t->s[0] == '"' && c == '\\') {
			c = *++s;
			if (c != '\\' && c != '"')
				return "go.mod: unsupported escape in quoted string";
		}
		if (j + 1 >= outsz)
			return "go.mod: argument too long";
		out[j++] = c;
	}
	out[j] = '\0';
	return j == 0 ? "go.mod: empty argument" : NULL;
}

static bool is_punct_tok(const struct token *t)
{
	return !t->quoted && t->n == 1 && is_punct(t->s[0]);
}

static const char *version_arg(const struct token *t, char *out)
{
	const char *bad = is_punct_tok(t) ? "go.mod: unexpected punctuation"
	                                  : unquote(t, out, GOMOD_VERSION_MAX);

	if (bad == NULL && !mp_semver_valid(out))
		bad = "go.mod: invalid version (must be of the form v1.2.3)";
	return bad;
}

/* "indirect" or "indirect; ..." after "//", spaces trimmed. */
static bool is_indirect(const struct line *l)
{
	const char *s = l->comment;
	size_t n = l->comment_len;

	while (n > 0 && is_space(*s))
		s++, n--;
	while (n > 0 && is_space(s[n - 1]))
		n--;
	return s != NULL && n >= 8 && memcmp(s, "indirect", 8) == 0 && (n == 8 || s[8] == ';');
}

/* --- directives ------------------------------------------------------------- */

struct parse {
	struct gomod *out;
	struct gomod_visitor v;
	bool have_module, have_go;
};

static const char *do_module(struct parse *ps, const struct token *a, size_t n)
{
	if (ps->have_module)
		return "go.mod: repeated module statement";
	if (n != 1 || is_punct_tok(a))
		return "go.mod: usage: module module/path";
	ps->have_module = true;
	return unquote(a, ps->out->module, sizeof ps->out->module);
}

/* GoVersionRE, leniently: digits and dots, then an optional suffix. */
static const char *do_go(struct parse *ps, const struct token *a, size_t n)
{
	size_t i;

	if (ps->have_go)
		return "go.mod: repeated go statement";
	if (n != 1 || a->quoted || a->n >= GOMOD_VERSION_MAX || a->s[0] < '1' || a->s[0] > '9')
		return "go.mod: invalid go version (must look like 1.19)";
	for (i = 0; i < a->n; i++)
		if (!(a->s[i] >= '0' && a->s[i] <= '9') && a->s[i] != '.' &&
		    !(a->s[i] >= 'a' && a->s[i] <= 'z'))
			return "go.mod: invalid go version (must look like 1.19)";
	ps->have_go = true;
	memcpy(ps->out->go, a->s, a->n);
	ps->out->go[a->n] = '\0';
	return NULL;
}

static const char *do_require(struct parse *ps, const struct line *l, const struct token *a, size_t n)
{
	struct gomod_require r;
	const char *bad;

	if (n != 2 || is_punct_tok(&a[0]))
		return "go.mod: usage: require module/path v1.2.3";
	if ((bad = unquote(&a[0], r.path, sizeof r.path)) != NULL ||
	    (bad = version_arg(&a[1], r.version)) != NULL)
		return bad;
	r.indirect = is_indirect(l);
	return ps->v.on_require ? ps->v.on_require(ps->v.arg, &r) : NULL;
}

/* exclude module/path v1.2.3 */
static const char *do_exclude(struct parse *ps, const struct token *a, size_t n)
{
	struct gomod_require r = { .indirect = false };
	const char *bad;

	if (n != 2 || is_punct_tok(&a[0]))
		return "go.mod: usage: exclude module/path v1.2.3";
	if ((bad = unquote(&a[0], r.path, sizeof r.path)) != NULL ||
	    (bad = mp_check_path(r.path)) != NULL || (bad = version_arg(&a[1], r.version)) != NULL)
		return bad;
	return ps->v.on_exclude(ps->v.arg, &r);
}

/* modfile.IsDirectoryPath: rooted, ./ or ../ (either slash), or a drive. */
static bool is_dir_path(const char *s)
{
	return strncmp(s, "./", 2) == 0 || strncmp(s, "../", 3) == 0 || strcmp(s, ".") == 0 ||
	       strcmp(s, "..") == 0 || strncmp(s, ".\\", 2) == 0 || strncmp(s, "..\\", 3) == 0 ||
	       s[0] == '/' || s[0] == '\\' ||
	       (((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')) && s[1] == ':');
}

/* The replacement: NEW [NEW_VERSION], a[0..n) with n 1 or 2. */
static const char *replace_new(struct gomod_replace *r, const struct token *a, size_t n)
{
	const char *bad;

	if (is_punct_tok(&a[0]))
		return "go.mod: unexpected punctuation";
	if ((bad = unquote(&a[0], r->new_path, sizeof r->new_path)) != NULL)
		return bad;
	r->new_is_dir = is_dir_path(r->new_path);
	if (n == 1 && !r->new_is_dir)
		return "go.mod: replacement module without version must be directory path "
		       "(rooted or starting with ./ or ../)";
	if (n == 1 && strchr(r->new_path, '\\') != NULL)
		return "go.mod: replacement directory appears to be Windows path (on a non-windows system)";
	if (n == 2 && r->new_is_dir)
		return "go.mod: replacement module directory path cannot have version";
	if (n == 2 && (bad = version_arg(&a[1], r->new_version)) != NULL)
		return bad;
	if (n == 2 && !r->new_is_dir && (bad = mp_check_path(r->new_path)) != NULL)
		return bad;
	return NULL;
}

/* replace OLD [v] => NEW [v] */
static const char *do_replace(struct parse *ps, const struct token *a, size_t n)
{
	struct gomod_replace r;
	size_t arrow = n >= 2 && tok_is(&a[1], "=>") ? 1 : 2;
	const char *bad;

	memset(&r, 0, sizeof r);
	if (n < arrow + 2 || n > arrow + 3 || !tok_is(&a[arrow], "=>") || is_punct_tok(&a[0]))
		return "go.mod: usage: replace module/path [v1.2.3] => other/module v1.4 "
		       "| ../local/directory";
	if ((bad = unquote(&a[0], r.old_path, sizeof r.old_path)) != NULL ||
	    (bad = mp_check_path(r.old_path)) != NULL)
		return bad;
	if (arrow == 2 && (bad = version_arg(&a[1], r.old_version)) != NULL)
		return bad;
	if ((bad = replace_new(&r, a + arrow + 1, n - arrow - 1)) != NULL)
		return bad;
	return ps->v.on_replace(ps->v.arg, &r);
}

/* retract v1.2.3 | retract [v1.0.0, v1.1.0] */
static const char *do_retract(const struct token *a, size_t n)
{
	char v[GOMOD_VERSION_MAX];
	const char *bad;

	if (n == 1)
		return version_arg(&a[0], v);
	if (n != 5 || !tok_is(&a[0], "[") || !tok_is(&a[2], ",") || !tok_is(&a[4], "]"))
		return "go.mod: usage: retract version | retract [low, high]";
	if ((bad = version_arg(&a[1], v)) != NULL)
		return bad;
	return version_arg(&a[3], v);
}

/* One directive: verb with args a[0..n) (n may exceed MAX_TOKENS). */
static const char *directive(struct parse *ps, const struct line *l, const struct token *verb,
                             const struct token *a, size_t n)
{
	if (l->parens > 0)
		return "go.mod: unexpected parenthesis";
	if (verb->quoted || is_punct_tok(verb))
		return "go.mod: expected a directive name";
	if (tok_is(verb, "module"))
		return do_module(ps, a, n);
	if (tok_is(verb, "go"))
		return do_go(ps, a, n);
	if (tok_is(verb, "require"))
		return do_require(ps, l, a, n);
	if (tok_is(verb, "retract"))
		return do_retract(a, n);
	if (tok_is(verb, "exclude") && ps->v.on_exclude)
		return do_exclude(ps, a, n);
	if (tok_is(verb, "replace") && ps->v.on_replace)
		return do_replace(ps, a, n);
	return NULL;   /* toolchain, ... (and exclude, replace unasked): ParseLax skips them */
}

static const char *check_text(const char *buf, size_t len)
{
	size_t i = 0, sz;

	if (memchr(buf, '\0', len) != NULL)
		return "go.mod: contains NUL bytes";
	while (i < len) {
		if (text_decode_rune(buf + i, len - i, &sz) < 0)
			return "go.mod: invalid UTF-8";
		i += sz;
	}
	return NULL;
}

/* A line inside "verb ( ... )": ")" ends it, anything else is a directive. */
static const char *block_line(struct parse *ps, const struct line *l, const struct token *verb,
                              bool *in_block)
{
	if (l->ntok == 1 && tok_is(&l->tok[0], ")")) {
		*in_block = false;
		return NULL;
	}
	return directive(ps, l, verb, l->tok, l->ntok);
}

const char *gomod_parse(const char *buf, size_t len, struct gomod *out,
                        gomod_require_fn on_require, void *arg)
{
	struct gomod_visitor v = { .on_require = on_require, .arg = arg };

	return gomod_parse_visit(buf, len, out, &v);
}

const char *gomod_parse_visit(const char *buf, size_t len, struct gomod *out,
                              const struct gomod_visitor *v)
{
	struct parse ps = { out, { 0 }, false, false };
	struct lexer lx = { buf, buf + len };
	struct token verb = { 0 };
	struct line l;
	bool in_block = false;
	const char *bad = check_text(buf, len);

	if (v)
		ps.v = *v;
	memset(out, 0, sizeof *out);
	while (bad == NULL && lx.p < lx.end) {
		if ((bad = lex_line(&lx, &l)) != NULL || l.ntok == 0)
			continue;
		if (in_block)
			bad = block_line(&ps, &l, &verb, &in_block);
		else if (l.ntok == 2 && tok_is(&l.tok[1], "(")) {
			verb = l.tok[0];
			in_block = !verb.quoted && !is_punct_tok(&verb);
			if (!in_block)
				bad = "go.mod: expected a directive name";
		} else
			bad = directive(&ps, &l, &l.tok[0], l.tok + 1, l.ntok - 1);
	}
	if (bad == NULL && in_block)
		bad = "go.mod: unterminated block (missing ')')";
	if (bad == NULL && !ps.have_module)
		bad = "go.mod: no module line";
	return bad;
}

/* The go line's major.minor against 1.17; no go line means before 1.17. */
bool gomod_pruned(const struct gomod *m)
{
	const char *p = m->go;
	unsigned long major = 0, minor = 0;

	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9' && major < 1000; p++)
		major = major * 10 + (unsigned long)(*p - '0');
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9' && minor < 1000; p++)
			minor = minor * 10 + (unsigned long)(*p - '0');
	return major > 1 || (major == 1 && minor >= 17);
}
