/*
 * tlog: the Go checksum database's tamper-evident log
 * (golang.org/x/mod/sumdb/tlog): RFC 6962 hashing, tree notes, tiles and
 * the client's proofs (TileHashReader), plus the lookup-response parser.
 *
 * Contract: pure functions. Nothing keeps state or touches the filesystem
 * or the network; tiles come from a caller-supplied callback. Functions
 * that can fail return NULL on success and a static one-line reason on
 * failure; outputs are unspecified on failure. An error returned by the
 * tile callback is passed back unchanged (same pointer), so a caller can
 * tell its own fetch failures from verification failures: any other error
 * from tlog_tree_hash / tlog_check_record / tlog_check_consistency means
 * the data (tiles, record, tree) does not add up.
 *
 * Hashes are 32-byte SHA-256 values (the void hashing functions abort()
 * if OpenSSL cannot allocate a digest context). A "height" is the tile height H
 * (8 for sum.golang.org), 1..30.
 */
#ifndef GOPROXYD_TLOG_H
#define GOPROXYD_TLOG_H

#include <stddef.h>
#include <stdint.h>

#define TLOG_HASH_SIZE 32
#define TLOG_MAX_N     ((int64_t)1 << 56)   /* largest tree size handled */
#define TLOG_TILE_PATH_MAX 96               /* tlog_tile_path buffer, with NUL */

/* A signed tree head: N records, root hash. */
struct tlog_tree {
	int64_t n;
	uint8_t hash[TLOG_HASH_SIZE];
};

/* tlog.Tile: W consecutive hashes at level L*H starting at N * 2^H.
 * l == -1 is the record-data tile ("data"). 1 <= w <= 2^h. */
struct tlog_tile {
	int h;
	int l;
	int64_t n;
	int w;
};

/* RecordHash: SHA-256(0x00 || data). */
void tlog_record_hash(const void *data, size_t len, uint8_t out[TLOG_HASH_SIZE]);

/* NodeHash: SHA-256(0x01 || left || right). */
void tlog_node_hash(const uint8_t left[TLOG_HASH_SIZE],
    const uint8_t right[TLOG_HASH_SIZE], uint8_t out[TLOG_HASH_SIZE]);

/* StoredHashIndex(level, n) and its inverse. Arguments must describe a
 * node of a tree of at most TLOG_MAX_N records. */
int64_t tlog_stored_hash_index(int level, int64_t n);
void tlog_split_stored_hash_index(int64_t index, int *level, int64_t *n);

/* TileForIndex: the tile of height h and least width holding the stored
 * hash with this index. */
struct tlog_tile tlog_tile_for_index(int h, int64_t index);

/* tlog.ParseTree on the text of a tree note:
 * "go.sum database tree\n<N>\n<base64 hash>\n", extra lines ignored; N in
 * canonical decimal, at most TLOG_MAX_N. */
const char *tlog_parse_tree(const char *text, size_t len, struct tlog_tree *t);

/* Tile.Path into buf ("tile/8/0/x001/x234/067.p/1", "tile/8/data/000"). */
const char *tlog_tile_path(const struct tlog_tile *t, char *buf, size_t bufsz);

/* ParseTilePath on a NUL-terminated path starting with "tile/"; only
 * canonical paths (those tlog_tile_path would produce) are accepted.
 * Bounds: 1 <= h <= 30, l in 0..63 or "data" (-1), 1 <= w < 2^h with ".p",
 * n < 10^18 (at most six 3-digit groups).  The one tile-path parser:
 * route.c checks request paths with it too. */
const char *tlog_parse_tile_path(const char *path, struct tlog_tile *t);

/* Supplies the hash tile *t (never a data tile): on success *data is a
 * malloc'd buffer of exactly t->w * 32 bytes, owned (freed) by the caller
 * of tlog_*. Like the go command, a reader asked for a partial tile may
 * fall back to the full tile truncated to t->w * 32 bytes. Returns NULL or
 * a static reason (then *data is not freed and need not be set). */
typedef const char *(*tlog_tile_reader)(void *arg, const struct tlog_tile *t,
    uint8_t **data, size_t *len);

/* TreeHash(n) computed from the tiles of the tree of size n (each tile
 * fetched at the width it has for that size); the tree of size 0 hashes to
 * 32 zero bytes. Comparing the result with a signed root authenticates the
 * tiles read. */
const char *tlog_tree_hash(int height, int64_t n, tlog_tile_reader rd, void *arg,
    uint8_t out[TLOG_HASH_SIZE]);

/* Client.checkRecord: record[0..len) is record number id of tree, proven
 * with tiles (TileHashReader): the tiles of the tree-size decomposition
 * are checked against tree->hash, then each tile on the leaf's path is
 * checked against its parent, and RecordHash(record) must equal the leaf.
 * Fails if id < 0 or id >= tree->n. */
const char *tlog_check_record(int height, const struct tlog_tree *tree, int64_t id,
    const char *record, size_t len, tlog_tile_reader rd, void *arg);

/* Client.checkTrees: old is a prefix of newer, i.e. TreeHash(old->n)
 * recomputed from newer's authenticated tiles equals old->hash. Requires
 * old->n <= newer->n (swap otherwise). A mismatch (a fork, or a rewound
 * or rewritten log) is reported as "SECURITY ERROR: ...". */
const char *tlog_check_consistency(int height, const struct tlog_tree *old,
    const struct tlog_tree *newer, tlog_tile_reader rd, void *arg);

/* tlog.ParseRecord on a /lookup response body[0..len):
 * "<id>\n<record text>\n<signed tree note>". *rec points at the record
 * text up to the first "\n\n", including its final '\n' (valid UTF-8, no
 * control characters but '\n', no blank line); *note at the rest (not
 * checked here: pass it to note_verify). Pointers point into body. The id
 * must be canonical non-negative decimal. */
const char *sumdb_parse_lookup(const char *body, size_t len, int64_t *id,
    const char **rec, size_t *rec_len, const char **note, size_t *note_len);

#endif
