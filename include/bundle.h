/*
 * bundle: what `goproxyd export` writes and `goproxyd import` reads.
 *
 * A bundle is a tar archive (compressed with gzip or zstd when its name
 * ends in .gz or .zst), written and read with libarchive, holding cache
 * files under their cache paths (the cache's own layout), in this order:
 *
 *   goproxyd-manifest.json            first: every other entry's path,
 *                                     size and SHA-256
 *   sumdb/<name>/lookup/<m>@<v>       the records that prove each .mod/.zip
 *   sumdb/<name>/tile/...             and the tiles of their proofs
 *   <esc path>/@v/list, @latest       then the module files, the files of
 *   <esc path>/@v/<v>.info|.mod|.zip  one version next to each other
 *
 * The manifest is JSON: {"format": "goproxyd-bundle-1", "files":
 * [{"path": P, "size": N, "sha256": HEX}, ...]}.
 *
 * Contract: the manifest functions are pure (no I/O) and owned by the
 * caller (bundle_manifest_free()); the subcommands run on their main
 * thread.  A manifest path is accepted only if it is relative, without
 * "." or ".." elements, empty elements or a backslash: import checks each
 * path again against the cache layout before using it.
 */
#ifndef GOPROXYD_BUNDLE_H
#define GOPROXYD_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUNDLE_MANIFEST "goproxyd-manifest.json"
#define BUNDLE_FORMAT "goproxyd-bundle-1"
#define BUNDLE_SHA256_HEX 65     /* 64 hex digits and the NUL */
#define BUNDLE_MANIFEST_MAX (256u << 20)

struct bundle_file {
	char *path;
	uint64_t size;
	char sha256[BUNDLE_SHA256_HEX];
	bool seen;                   /* import: the entry arrived */
};

struct bundle_manifest {
	struct bundle_file *files;   /* sorted by path once parsed */
	size_t n, cap;
};

/* Appends a file (path copied). 0 or -1 (out of memory). */
int bundle_manifest_add(struct bundle_manifest *m, const char *path, uint64_t size,
                        const char *sha256);
/* The manifest as JSON text (malloc'd, caller frees); NULL if out of memory. */
char *bundle_manifest_json(const struct bundle_manifest *m);
/* Parses the manifest text; NULL or a static reason. */
const char *bundle_manifest_parse(struct bundle_manifest *m, const char *buf, size_t len);
/* The entry for path, or NULL (after bundle_manifest_parse()). */
struct bundle_file *bundle_manifest_find(const struct bundle_manifest *m, const char *path);
void bundle_manifest_free(struct bundle_manifest *m);

/* Is path a safe relative path (see above)? */
bool bundle_path_ok(const char *path);
/* Lowercase hex of a SHA-256 digest. */
void bundle_hex(const unsigned char digest[32], char out[BUNDLE_SHA256_HEX]);

#endif
