/*
 * fuzz_note: signed notes (src/note.c) on any bytes: note_verify() with a
 * fixed verifier (tests/lib/fakesumdb.py's key, whose real signed tree
 * note is a seed), note_parse_vkey() on the input as a verifier key, and
 * the base64 decoder the signatures and keys go through.
 *
 * Invariants: a verified note's text is a prefix of the input ending in
 * "\n", followed by the blank line; a parsed key has a valid name of the
 * recorded length, which the input starts with, followed by '+'; decoded
 * base64 is never longer than 3/4 of its text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TEST_VKEY "sum.test.example+6724f847+ARQMCoXmY8wz6L7iOfLvOcetnNzDHn2czlMHcJ6KCMS5"

static void check(int ok)
{
	if (!ok)
		abort();
}

static void check_verify(const char *msg, size_t len)
{
	static struct note_verifier v;
	static int have_v;
	size_t tlen = 0;

	if (!have_v) {
		check(note_parse_vkey(TEST_VKEY, &v) == NULL);
		have_v = 1;
	}
	if (note_verify(msg, len, &v, &tlen) != NULL)
		return;
	check(tlen > 0 && tlen < len && msg[tlen - 1] == '\n' && msg[tlen] == '\n');
	check(note_valid_text(msg, len));
}

static void check_vkey(const char *s)
{
	struct note_verifier v;

	if (note_parse_vkey(s, &v) != NULL)
		return;
	check(v.name_len > 0 && v.name_len <= NOTE_NAME_MAX && strlen(v.name) == v.name_len);
	check(note_valid_name(v.name, v.name_len));
	check(strncmp(s, v.name, v.name_len) == 0 && s[v.name_len] == '+');
}

static void check_b64(const char *s, size_t n)
{
	uint8_t out[256];
	size_t outlen = 0;

	if (note_b64_decode(s, n, out, sizeof out, &outlen) != NULL)
		return;
	check(outlen <= sizeof out && outlen <= n / 4 * 3 && n % 4 == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exactly sized heap copies, so ASan sees any read past the input. */
	char *msg = malloc(size ? size : 1), *str = malloc(size + 1);

	check(msg != NULL && str != NULL);
	memcpy(msg, data, size);
	memcpy(str, data, size);
	str[size] = '\0';
	check_verify(msg, size);
	check_vkey(str);
	check_b64(msg, size);
	(void)note_valid_name(msg, size);
	free(msg);
	free(str);
	return 0;
}
