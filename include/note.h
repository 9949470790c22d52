/*
 * note: signed notes and verifier keys of the Go checksum database
 * (golang.org/x/mod/sumdb/note), verification side only, Ed25519 only.
 *
 * Contract: pure functions. Nothing keeps state, touches the filesystem or
 * the network; nothing returned needs freeing. Functions that can fail
 * return NULL on success and a static one-line reason on failure; outputs
 * are unspecified on failure.
 *
 * A verifier key is "<name>+<8 hex digits>+<base64(0x01 || 32-byte key)>";
 * the hex digits must equal the first 4 bytes (big-endian) of
 * SHA-256(name || "\n" || 0x01 || key).
 *
 * A signed note is "<text>\n" "\n" followed by signature lines
 * "\xE2\x80\x94 <name> <base64(4-byte key hash || signature)>\n"
 * (U+2014 em dash, then a space). The text ends at the LAST "\n\n".
 */
#ifndef GOPROXYD_NOTE_H
#define GOPROXYD_NOTE_H

#include <stddef.h>
#include <stdint.h>

#define NOTE_NAME_MAX 256   /* longest accepted key name, in bytes, without NUL */

struct note_verifier {
	char name[NOTE_NAME_MAX + 1];   /* NUL-terminated, valid per note_valid_name */
	size_t name_len;
	uint32_t hash;                  /* key hash, as in the key's 8 hex digits */
	uint8_t key[32];                /* Ed25519 public key */
};

/* note.NewVerifier: parse a NUL-terminated verifier key into *v. The hex
 * digits may be in either case (strconv.ParseUint); the base64 must be
 * standard, padded. Fails on a wrong key hash, an algorithm other than
 * Ed25519 (0x01), or a key that is not 32 bytes. */
const char *note_parse_vkey(const char *vkey, struct note_verifier *v);

/* note.Open with a single known verifier. msg[0..len) must be valid UTF-8
 * without control characters other than '\n', end in a signature block
 * preceded by a blank line, and hold at most 100 signature lines. Lines
 * by other signers (other name or key hash) are ignored; a line by v that
 * does not verify is an error, and at least one must verify. On success
 * *text_len (if text_len is not NULL) is the length of the signed text,
 * msg[0..*text_len), which ends in '\n'. */
const char *note_verify(const char *msg, size_t len, const struct note_verifier *v,
    size_t *text_len);

/* note's isValidName: non-empty valid UTF-8, no Unicode white space, no '+'. */
int note_valid_name(const char *name, size_t len);

/* Standard, padded base64 decoding of s[0..n) into out (at most outsz
 * bytes), as Go's base64.StdEncoding.DecodeString for inputs without
 * line breaks (unused trailing bits are not checked). *outlen gets the
 * decoded length. Shared with tlog.c. */
const char *note_b64_decode(const char *s, size_t n, uint8_t *out, size_t outsz,
    size_t *outlen);

/* Valid UTF-8 (utf8.DecodeRune never returns RuneError with size 1) with
 * no byte below 0x20 except '\n' (tlog's isValidRecordText and note.Open's
 * message check, minus the blank-line rule). Returns 1 if so. */
int note_valid_text(const char *s, size_t n);

#endif
