/*
 * dirhash: the go command's "h1:" hash of module zips and go.mod files
 * (golang.org/x/mod/sumdb/dirhash Hash1 / HashZip).
 *
 *   summary = for each file, names sorted bytewise:
 *             lowercase hex SHA-256(content) "  " name "\n"
 *   hash    = "h1:" base64(SHA-256(summary))
 *
 * Contract: no global state, no network; dirhash_zip only reads the zip
 * open on fd. Failing functions return NULL on success and a static
 * one-line reason on failure (out is then unspecified). out receives a
 * NUL-terminated string of DIRHASH_LEN characters.
 */
#ifndef GOPROXYD_DIRHASH_H
#define GOPROXYD_DIRHASH_H

#include <stddef.h>

#define DIRHASH_LEN 47   /* "h1:" + 44 base64 characters */
#define DIRHASH_SIZE 48  /* buffer size, with the NUL */

/* HashZip over every entry of the zip file open (readable, seekable) on
 * fd: names are the raw bytes stored in the zip (no code-page
 * conversion); directory entries count, with empty content. Contents are
 * streamed through SHA-256, CRCs are checked. The caller keeps fd (it is
 * dup()ed; its file offset may change). Fails on a name containing '\n'
 * (as Go), on two entries with the same name (go's checkZip refuses those
 * zips), on unreadable, encrypted or corrupt entries, and, if prefix is
 * not NULL, on a name not starting with prefix (e.g. "path@version/",
 * unescaped). */
const char *dirhash_zip(int fd, const char *prefix, char out[DIRHASH_SIZE]);

/* Hash1 over a single file named "go.mod" holding buf[0..len): the hash
 * of a "<path> <version>/go.mod" go.sum line. Aborts only if OpenSSL
 * cannot allocate a digest context. */
void dirhash_mod(const void *buf, size_t len, char out[DIRHASH_SIZE]);

#endif
