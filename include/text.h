/*
 * text: small pure helpers on bytes that several files need: one hash for
 * in-memory tables, one UTF-8 decoder with Go's rules, and one %XX decoder.
 *
 * Contract: pure functions, no allocation, safe from any thread.
 */
#ifndef GOPROXYD_TEXT_H
#define GOPROXYD_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit FNV-1a of s[0..n): for hash tables, never for anything an
 * attacker must not be able to collide (a collision costs one chain step
 * or one evicted slot). */
uint64_t text_hash(const char *s, size_t n);
/* text_hash() of a NUL-terminated string. */
uint64_t text_hash_str(const char *s);

/* Formats a one-line reason into buf[0..n) (cut to fit) and returns -1,
 * so that an error path can `return text_fail(reason, n, ...)`. */
int text_fail(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* utf8.DecodeRune: the rune at s[0..n) and its size in bytes.  An invalid
 * or truncated sequence (overlong forms, surrogates, past U+10FFFF) gives
 * -1 with size 1; n == 0 gives -1 with size 0. */
int32_t text_decode_rune(const char *s, size_t n, size_t *size);

/* The byte that "%XX" at p encodes (p[0] is '%', XX two hex digits of
 * either case), or -1 when what follows the '%' is not two hex digits. */
int text_percent_byte(const char *p);

#endif
