/*
 * dirhash: see include/dirhash.h.
 *
 * A port of golang.org/x/mod/sumdb/dirhash's Hash1 and HashZip, reading
 * zips with libzip and hashing with OpenSSL's EVP SHA-256.  Pure: any
 * thread (the verifier pool, `goproxyd verify`).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zip.h>

#include "dirhash.h"

#define CHUNK 65536

struct entry {
	const char *name;   /* owned by the zip_t */
	zip_uint64_t index;
};

static int entry_cmp(const void *a, const void *b)
{
	/* strcmp compares as unsigned char: Go's bytewise string order. */
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

/* "h1:" + base64(SHA-256 of what ctx has seen). */
static bool finish(EVP_MD_CTX *ctx, char out[DIRHASH_SIZE])
{
	unsigned char sum[EVP_MAX_MD_SIZE];

	if (!EVP_DigestFinal_ex(ctx, sum, NULL))
		return false;
	memcpy(out, "h1:", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, sum, 32);   /* 44 chars + NUL */
	return true;
}

/* Append "<hex>  <name>\n" for a file whose SHA-256 is sum. */
static bool add_line(EVP_MD_CTX *summary, const unsigned char sum[32], const char *name)
{
	static const char hexd[] = "0123456789abcdef";
	char hex[64 + 2];

	for (int i = 0; i < 32; i++) {
		hex[2 * i] = hexd[sum[i] >> 4];
		hex[2 * i + 1] = hexd[sum[i] & 15];
	}
	hex[64] = hex[65] = ' ';
	return EVP_DigestUpdate(summary, hex, sizeof hex) &&
	    EVP_DigestUpdate(summary, name, strlen(name)) &&
	    EVP_DigestUpdate(summary, "\n", 1);
}

void dirhash_mod(const void *buf, size_t len, char out[DIRHASH_SIZE])
{
	unsigned char sum[EVP_MAX_MD_SIZE];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx != NULL &&
	    EVP_Digest(buf, len, sum, NULL, EVP_sha256(), NULL) &&
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	    add_line(ctx, sum, "go.mod") &&
	    finish(ctx, out);

	EVP_MD_CTX_free(ctx);
	if (!ok)
		abort();
}

/* SHA-256 of entry e's content, streamed in chunks. */
static const char *hash_entry(zip_t *za, const struct entry *e, EVP_MD_CTX *ctx,
    unsigned char *buf, unsigned char sum[32])
{
	zip_file_t *zf = zip_fopen_index(za, e->index, 0);
	zip_int64_t n;
	const char *err = NULL;

	if (zf == NULL)
		return "cannot open zip entry (encrypted or unsupported compression?)";
	if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		err = "SHA-256 failed";
	while (err == NULL && (n = zip_fread(zf, buf, CHUNK)) > 0)
		if (!EVP_DigestUpdate(ctx, buf, (size_t)n))
			err = "SHA-256 failed";
	if (err == NULL && n < 0)
		err = "cannot read zip entry (corrupt data or CRC mismatch)";
	if (zip_fclose(zf) != 0 && err == NULL)
		err = "cannot read zip entry (corrupt data or CRC mismatch)";
	if (err == NULL && !EVP_DigestFinal_ex(ctx, sum, NULL))
		err = "SHA-256 failed";
	return err;
}

/* Collect and sort the entry names; check them. */
static const char *list_entries(zip_t *za, const char *prefix, struct entry **out,
    zip_uint64_t *count)
{
	zip_int64_t n = zip_get_num_entries(za, 0);
	struct entry *es;
	size_t plen = prefix != NULL ? strlen(prefix) : 0;

	if (n < 0)
		return "cannot read zip directory";
	if ((es = calloc((size_t)n + 1, sizeof *es)) == NULL)
		return "out of memory";
	for (zip_int64_t i = 0; i < n; i++) {
		const char *name = zip_get_name(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
		if (name == NULL) {
			free(es);
			return "cannot read zip entry name";
		}
		if (strchr(name, '\n') != NULL) {
			free(es);
			return "dirhash: filenames with newlines are not supported";
		}
		if (prefix != NULL && strncmp(name, prefix, plen) != 0) {
			free(es);
			return "zip entry outside the module's path@version/ prefix";
		}
		es[i].name = name;
		es[i].index = (zip_uint64_t)i;
	}
	qsort(es, (size_t)n, sizeof *es, entry_cmp);
	for (zip_int64_t i = 1; i < n; i++) {
		if (strcmp(es[i - 1].name, es[i].name) == 0) {
			free(es);
			return "zip has duplicate entries";
		}
	}
	*out = es;
	*count = (zip_uint64_t)n;
	return NULL;
}

static const char *hash_archive(zip_t *za, const char *prefix, char out[DIRHASH_SIZE])
{
	struct entry *es = NULL;
	zip_uint64_t n = 0;
	EVP_MD_CTX *summary = EVP_MD_CTX_new(), *file = EVP_MD_CTX_new();
	unsigned char *buf = malloc(CHUNK), sum[EVP_MAX_MD_SIZE];
	const char *err = NULL;

	if (summary == NULL || file == NULL || buf == NULL)
		err = "out of memory";
	else if (!EVP_DigestInit_ex(summary, EVP_sha256(), NULL))
		err = "SHA-256 failed";
	else
		err = list_entries(za, prefix, &es, &n);
	for (zip_uint64_t i = 0; err == NULL && i < n; i++) {
		if ((err = hash_entry(za, &es[i], file, buf, sum)) == NULL &&
		    !add_line(summary, sum, es[i].name))
			err = "SHA-256 failed";
	}
	if (err == NULL && !finish(summary, out))
		err = "SHA-256 failed";
	free(es);
	free(buf);
	EVP_MD_CTX_free(file);
	EVP_MD_CTX_free(summary);
	return err;
}

const char *dirhash_zip(int fd, const char *prefix, char out[DIRHASH_SIZE])
{
	int zerr = 0, fd2 = dup(fd);
	zip_t *za;
	const char *err;

	if (fd2 < 0)
		return "cannot dup zip file descriptor";
	if (lseek(fd2, 0, SEEK_SET) < 0) {
		close(fd2);
		return "zip file is not seekable";
	}
	if ((za = zip_fdopen(fd2, ZIP_CHECKCONS, &zerr)) == NULL) {
		close(fd2);   /* libzip closes fd only on success */
		return "not a valid zip file";
	}
	err = hash_archive(za, prefix, out);
	zip_discard(za);   /* read-only: closes fd2, writes nothing */
	return err;
}
