/*
 * glob.c: GOPRIVATE-style globs, matched as the go command matches them:
 * Go's path.Match over spans, and module.MatchPrefixPatterns on top of it.
 *
 * Contract: see include/glob.h.  Pure functions, no allocation, no global
 * state: safe from any thread (serving threads and the verifier match every
 * request's module path; config.c checks each glob at start-up).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "glob.h"
#include "text.h"

#define RUNE_ERROR      0xfffdu

/* utf8.DecodeRuneInString: invalid input gives (RUNE_ERROR, 1). */
static size_t
utf8_decode(const char *s, size_t n, uint32_t *r)
{
	size_t k;
	int32_t c = text_decode_rune(s, n, &k);

	*r = c < 0 ? RUNE_ERROR : (uint32_t)c;
	return k;
}

/* Splits off a leading run of '*' and the chunk up to the next '*'. */
static bool
scan_chunk(const char **pat, size_t *plen, const char **chunk, size_t *clen)
{
	const char *p = *pat;
	size_t n = *plen, i;
	bool star = false, inrange = false;

	while (n > 0 && p[0] == '*') {
		p++, n--;
		star = true;
	}
	for (i = 0; i < n; i++) {
		if (p[i] == '\\') {
			if (i + 1 < n)
				i++;
		} else if (p[i] == '[') {
			inrange = true;
		} else if (p[i] == ']') {
			inrange = false;
		} else if (p[i] == '*' && !inrange) {
			break;
		}
	}
	*chunk = p;
	*clen = i;
	*pat = p + i;
	*plen = n - i;
	return star;
}

/* One (possibly escaped) character of a class; -1 if malformed. */
static int
get_esc(const char **c, size_t *cn, uint32_t *r)
{
	const char *p = *c;
	size_t n = *cn, k;

	if (n == 0 || p[0] == '-' || p[0] == ']')
		return -1;
	if (p[0] == '\\') {
		p++, n--;
		if (n == 0)
			return -1;
	}
	k = utf8_decode(p, n, r);
	if (*r == RUNE_ERROR && k == 1)
		return -1;
	p += k, n -= k;
	if (n == 0)
		return -1;
	*c = p;
	*cn = n;
	return 0;
}

/*
 * Matches a chunk (no '*') against the start of s.  1 with the rest of s
 * in *rest, 0 for no match, -1 for a malformed chunk.  Like Go, it keeps
 * parsing after a mismatch so that syntax errors are always reported.
 */
static int
match_chunk(const char *c, size_t cn, const char *s, size_t sn,
    const char **rest, size_t *rn)
{
	bool failed = false, neg, match;
	uint32_t r, lo, hi;
	size_t k;
	int nrange;

	while (cn > 0) {
		if (!failed && sn == 0)
			failed = true;
		switch (c[0]) {
		case '[':
			r = 0;
			if (!failed) {
				k = utf8_decode(s, sn, &r);
				s += k, sn -= k;
			}
			c++, cn--;
			neg = cn > 0 && c[0] == '^';
			if (neg)
				c++, cn--;
			match = false;
			for (nrange = 0;; nrange++) {
				if (cn > 0 && c[0] == ']' && nrange > 0) {
					c++, cn--;
					break;
				}
				if (get_esc(&c, &cn, &lo) < 0)
					return -1;
				hi = lo;
				if (c[0] == '-') {
					c++, cn--;
					if (get_esc(&c, &cn, &hi) < 0)
						return -1;
				}
				if (lo <= r && r <= hi)
					match = true;
			}
			if (match == neg)
				failed = true;
			break;
		case '?':
			if (!failed) {
				if (s[0] == '/')
					failed = true;
				k = utf8_decode(s, sn, &r);
				s += k, sn -= k;
			}
			c++, cn--;
			break;
		case '\\':
			c++, cn--;
			if (cn == 0)
				return -1;
			/* FALLTHROUGH */
		default:
			if (!failed) {
				if (c[0] != s[0])
					failed = true;
				s++, sn--;
			}
			c++, cn--;
			break;
		}
	}
	if (failed)
		return 0;
	*rest = s;
	*rn = sn;
	return 1;
}

/* Go's path.Match: 1 match, 0 no match, -1 malformed pattern. */
int
glob_path_match(const char *pat, size_t plen, const char *name, size_t nlen)
{
	const char *chunk, *t;
	size_t clen, tlen, i;
	bool star, found;
	int r;

	while (plen > 0) {
		star = scan_chunk(&pat, &plen, &chunk, &clen);
		if (star && clen == 0)
			return memchr(name, '/', nlen) == NULL;
		r = match_chunk(chunk, clen, name, nlen, &t, &tlen);
		if (r == 1 && (tlen == 0 || plen > 0)) {
			name = t, nlen = tlen;
			continue;
		}
		if (r < 0)
			return -1;
		found = false;
		for (i = 0; star && !found && i < nlen && name[i] != '/'; i++) {
			r = match_chunk(chunk, clen, name + i + 1, nlen - i - 1,
			    &t, &tlen);
			if (r < 0)
				return -1;
			if (r == 1 && !(plen == 0 && tlen > 0)) {
				name = t, nlen = tlen;
				found = true;
			}
		}
		if (found)
			continue;
		while (plen > 0) {
			scan_chunk(&pat, &plen, &chunk, &clen);
			if (match_chunk(chunk, clen, "", 0, &t, &tlen) < 0)
				return -1;
		}
		return 0;
	}
	return nlen == 0;
}

/* One glob of MatchPrefixPatterns: matches the first N+1 elements. */
static bool
match_prefix(const char *glob, size_t glen, const char *target)
{
	size_t n = 0, i, tlen = strlen(target), plen = tlen;

	if (glen > 0 && glob[glen - 1] == '/')
		glen--;
	if (glen == 0)
		return false;
	for (i = 0; i < glen; i++)
		n += glob[i] == '/';
	for (i = 0; i < tlen; i++) {
		if (target[i] != '/')
			continue;
		if (n == 0) {
			plen = i;
			break;
		}
		n--;
	}
	if (n > 0)
		return false;
	return glob_path_match(glob, glen, target, plen) == 1;
}

/* module.MatchPrefixPatterns over one comma-separated list. */
static bool
match_list(const char *globs, const char *target)
{
	const char *p = globs;
	size_t len;

	for (;;) {
		len = strcspn(p, ",");
		if (match_prefix(p, len, target))
			return true;
		if (p[len] == '\0')
			return false;
		p += len + 1;
	}
}

bool
config_match_patterns(char *const *globs, size_t n, const char *modpath)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (globs[i] != NULL && match_list(globs[i], modpath))
			return true;
	return false;
}
