/*
 * note: see include/note.h.
 *
 * A port of the verification half of golang.org/x/mod/sumdb/note
 * (NewVerifier, Open, isValidName, keyHash). SHA-256 and Ed25519 come
 * from OpenSSL's EVP interface.  Pure: any thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "note.h"
#include "text.h"

#define ALG_ED25519 1
#define MAX_SIGS 100
#define SIG_MAX 1024  /* longest decoded signature (any signer) accepted */

static const char em_dash_space[] = "\xE2\x80\x94 ";

/* ---------------------------------------------------------------------
 * UTF-8 and names
 */

/* unicode.IsSpace. */
static bool is_space(int32_t r)
{
	switch (r) {
	case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
	case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
	case 0x202F: case 0x205F: case 0x3000:
		return true;
	}
	return r >= 0x2000 && r <= 0x200A;
}

int note_valid_name(const char *name, size_t len)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t i = 0, size;

	if (len == 0)
		return 0;
	while (i < len) {
		int32_t r = text_decode_rune((const char *)s + i, len - i, &size);
		if (r < 0 || r == '+' || is_space(r))
			return 0;
		i += size;
	}
	return 1;
}

int note_valid_text(const char *text, size_t n)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0, size;

	while (i < n) {
		int32_t r = text_decode_rune((const char *)s + i, n - i, &size);
		if (r < 0 || (r < 0x20 && r != '\n'))
			return 0;
		i += size;
	}
	return 1;
}

/* ---------------------------------------------------------------------
 * Base64 and hex
 */

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

const char *note_b64_decode(const char *s, size_t n, uint8_t *out, size_t outsz,
    size_t *outlen)
{
	size_t o = 0;

	if (n % 4 != 0)
		return "malformed base64: length not a multiple of 4";
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;
		for (int j = 0; j < 4; j++) {
			unsigned char c = (unsigned char)s[i + j];
			if (c == '=' && i + 4 == n && j >= 2 && (j == 3 || s[i + 3] == '=')) {
				v[j] = 0, pad++;
				continue;
			}
			if ((v[j] = b64_value(c)) < 0 || pad > 0)
				return "malformed base64: invalid character";
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
		    (uint32_t)v[2] << 6 | (uint32_t)v[3];
		if (o + 3 - (size_t)pad > outsz)
			return "malformed base64: decoded value too long";
		out[o++] = (uint8_t)(w >> 16);
		if (pad < 2)
			out[o++] = (uint8_t)(w >> 8);
		if (pad < 1)
			out[o++] = (uint8_t)w;
	}
	*outlen = o;
	return NULL;
}

/* strconv.ParseUint(s, 16, 32) on exactly 8 hex digits. */
static bool parse_hex32(const char *s, size_t n, uint32_t *out)
{
	uint32_t v = 0;

	if (n != 8)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' :
		    c >= 'a' && c <= 'f' ? c - 'a' + 10 :
		    c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return true;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---------------------------------------------------------------------
 * Keys
 */

/* keyHash: first 4 bytes (big-endian) of SHA-256(name "\n" key). */
static const char *key_hash(const char *name, size_t nlen, const uint8_t *key,
    size_t klen, uint32_t *out)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char sum[EVP_MAX_MD_SIZE];
	int ok;

	if (ctx == NULL)
		return "out of memory";
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(ctx, name, nlen) &&
	    EVP_DigestUpdate(ctx, "\n", 1) &&
	    EVP_DigestUpdate(ctx, key, klen) &&
	    EVP_DigestFinal_ex(ctx, sum, NULL);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return "SHA-256 failed";
	*out = be32(sum);
	return NULL;
}

const char *note_parse_vkey(const char *vkey, struct note_verifier *v)
{
	const char *p1 = strchr(vkey, '+'), *p2, *k64;
	uint8_t key[64];
	size_t nlen, klen;
	uint32_t hash, want;
	const char *err;

	if (p1 == NULL || (p2 = strchr(p1 + 1, '+')) == NULL)
		return "malformed verifier key: want name+hash+key";
	nlen = (size_t)(p1 - vkey);
	k64 = p2 + 1;
	if (!note_valid_name(vkey, nlen))
		return "malformed verifier key: invalid name";
	if (nlen > NOTE_NAME_MAX)
		return "malformed verifier key: name too long";
	if (!parse_hex32(p1 + 1, (size_t)(p2 - p1 - 1), &hash))
		return "malformed verifier key: key hash is not 8 hex digits";
	if (note_b64_decode(k64, strlen(k64), key, sizeof key, &klen) != NULL || klen == 0)
		return "malformed verifier key: bad base64 key";
	if ((err = key_hash(vkey, nlen, key, klen, &want)) != NULL)
		return err;
	if (want != hash)
		return "invalid verifier key: key hash does not match name and key";
	if (key[0] != ALG_ED25519)
		return "unknown verifier key algorithm";
	if (klen != 33)
		return "malformed verifier key: Ed25519 key is not 32 bytes";
	memcpy(v->name, vkey, nlen);
	v->name[nlen] = '\0';
	v->name_len = nlen;
	v->hash = hash;
	memcpy(v->key, key + 1, 32);
	return NULL;
}

/* ---------------------------------------------------------------------
 * Signed notes
 */

/* ed25519.Verify(key, msg, sig): 1 if valid, 0 if not, -1 on an OpenSSL
 * failure unrelated to the signature. */
static int ed25519_verify(const uint8_t key[32], const void *msg, size_t len,
    const uint8_t *sig, size_t siglen)
{
	EVP_PKEY *pk;
	EVP_MD_CTX *ctx;
	int rc = -1;

	if (siglen != 64)
		return 0;
	pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key, 32);
	if (pk == NULL)
		return 0;   /* not a valid point: no signature can verify */
	ctx = EVP_MD_CTX_new();
	if (ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1)
		rc = EVP_DigestVerify(ctx, sig, siglen, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return rc;
}

/* Last occurrence of "\n\n" in s[0..n), or NULL. */
static const char *last_blank(const char *s, size_t n)
{
	for (size_t i = n; i >= 2; i--)
		if (s[i - 1] == '\n' && s[i - 2] == '\n')
			return s + i - 2;
	return NULL;
}

/* One signature line (without its '\n'). Sets *mine if it is v's and
 * verifies; returns an error for malformed lines or v's bad signatures.
 * With v NULL only the syntax is checked. */
static const char *check_sig_line(const char *line, size_t n, const char *text,
    size_t tlen, const struct note_verifier *v, bool *mine)
{
	size_t plen = sizeof em_dash_space - 1, nlen, slen;
	const char *name, *sp, *b64;
	uint8_t sig[SIG_MAX];
	int ok;

	if (n < plen || memcmp(line, em_dash_space, plen) != 0)
		return "malformed note: signature line does not start with an em dash";
	name = line + plen;
	sp = memchr(name, ' ', n - plen);
	if (sp == NULL)
		return "malformed note: signature line without signature";
	nlen = (size_t)(sp - name);
	b64 = sp + 1;
	slen = (size_t)(line + n - b64);
	if (!note_valid_name(name, nlen) || slen == 0 ||
	    note_b64_decode(b64, slen, sig, sizeof sig, &slen) != NULL || slen < 5)
		return "malformed note: bad signature line";
	*mine = false;
	if (v == NULL || nlen != v->name_len || memcmp(name, v->name, nlen) != 0 || be32(sig) != v->hash)
		return NULL;   /* unknown signer: ignored */
	ok = ed25519_verify(v->key, text, tlen, sig + 4, slen - 4);
	if (ok < 0)
		return "Ed25519 verification failed to run";
	if (!ok)
		return "invalid signature for the checksum database key";
	*mine = true;
	return NULL;
}

const char *note_verify(const char *msg, size_t len, const struct note_verifier *v,
    size_t *text_len)
{
	const char *split, *sigs, *end = msg + len, *err;
	size_t tlen;
	int nsig = 0;
	bool verified = false;

	if (!note_valid_text(msg, len))
		return "malformed note: invalid UTF-8 or control character";
	if ((split = last_blank(msg, len)) == NULL)
		return "malformed note: no signature block";
	tlen = (size_t)(split - msg) + 1;
	sigs = split + 2;
	if (sigs == end || end[-1] != '\n')
		return "malformed note: signature block does not end in a newline";
	while (sigs < end) {
		const char *nl = memchr(sigs, '\n', (size_t)(end - sigs));
		bool mine = false;
		if (++nsig > MAX_SIGS)
			return "malformed note: more than 100 signatures";
		/* Like Go, repeated lines by v after a good one are not checked. */
		err = check_sig_line(sigs, (size_t)(nl - sigs), msg, tlen,
		    verified ? NULL : v, &mine);
		if (err != NULL)
			return err;
		verified = verified || mine;
		sigs = nl + 1;
	}
	if (!verified)
		return "note has no verifiable signatures";
	if (text_len != NULL)
		*text_len = tlen;
	return NULL;
}
