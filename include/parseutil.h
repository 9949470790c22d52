/*
 * parseutil: the few helpers the command-line grammars share (config.c,
 * addr.c, proxylist.c, units.c): allocation that aborts when memory runs
 * out, ASCII character classes, and spans of a string.
 *
 * Contract: these run while the command line is parsed, at start-up, where
 * running out of memory leaves nothing sensible to do: the x* allocators
 * print one line and abort() instead of returning NULL.  Everything else
 * is pure.  Any thread.  Static inline, so each grammar file stays a leaf
 * with no link-time dependency on the others.
 */
#ifndef GOPROXYD_PARSEUTIL_H
#define GOPROXYD_PARSEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void
oom(void)
{
	fputs("goproxyd: out of memory\n", stderr);
	abort();
}

static inline void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		oom();
	return p;
}

static inline void *
xreallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		oom();
	if ((p = realloc(p, n * size > 0 ? n * size : 1)) == NULL)
		oom();
	return p;
}

static inline char *
xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		oom();
	return p;
}

static inline char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

static inline int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	    c == '\v' || c == '\f';
}

static inline int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static inline int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Trims ASCII white space from both ends of [*s, *e). */
static inline void
trim(const char **s, const char **e)
{
	while (*s < *e && is_space((unsigned char)**s))
		(*s)++;
	while (*e > *s && is_space((unsigned char)(*e)[-1]))
		(*e)--;
}

/* The next non-empty, trimmed element of a comma-separated list at *p, as
 * [*s, *e); advances *p past it.  False at the end of the list. */
static inline int
next_element(const char **p, const char **s, const char **e)
{
	while (**p != '\0') {
		*s = *p;
		*e = *p + strcspn(*p, ",");
		*p = **e ? *e + 1 : *e;
		trim(s, e);
		if (*s != *e)
			return 1;
	}
	return 0;
}

/* Is [s, e) exactly word? */
static inline int
span_is(const char *s, const char *e, const char *word)
{
	size_t n = strlen(word);

	return (size_t)(e - s) == n && memcmp(s, word, n) == 0;
}

#endif
