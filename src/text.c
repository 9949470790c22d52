/* text: see include/text.h.  Pure; any thread. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

uint64_t text_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;   /* FNV-1a offset basis */

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
	return h;
}

uint64_t text_hash_str(const char *s)
{
	return text_hash(s, strlen(s));
}

int text_fail(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return -1;
}

int32_t text_decode_rune(const char *str, size_t n, size_t *size)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned c, lo = 0x80, hi = 0xBF;
	size_t need;
	int32_t r;

	*size = n > 0;
	if (n == 0)
		return -1;
	c = s[0];
	if (c < 0x80)
		return (int32_t)c;
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1, r = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2, r = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0;        /* overlong */
		else if (c == 0xED)
			hi = 0x9F;        /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3, r = c & 0x07;
		if (c == 0xF0)
			lo = 0x90;        /* overlong */
		else if (c == 0xF4)
			hi = 0x8F;        /* past U+10FFFF */
	} else {
		return -1;
	}
	if (n < need + 1 || s[1] < lo || s[1] > hi)
		return -1;
	for (size_t i = 1; i <= need; i++) {
		if (i > 1 && (s[i] < 0x80 || s[i] > 0xBF))
			return -1;
		r = (r << 6) | (s[i] & 0x3F);
	}
	*size = need + 1;
	return r;
}

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int text_percent_byte(const char *p)
{
	int hi = hex_value((unsigned char)p[1]), lo = hi < 0 ? -1 : hex_value((unsigned char)p[2]);

	return lo < 0 ? -1 : hi * 16 + lo;
}
