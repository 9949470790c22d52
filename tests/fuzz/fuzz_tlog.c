/*
 * fuzz_tlog: the checksum database's tile and lookup parsing (src/tlog.c)
 * on any bytes, and the proofs over tiles an upstream supplies.
 *
 * Every input goes through tlog_parse_tile_path(), tlog_parse_tree() and
 * sumdb_parse_lookup().  An input of the form
 *   <lookup body> "\nTILES\n" <height byte> <tile bytes>
 * is also a proof: the lookup's record is checked with tlog_check_record()
 * against the tree in its note, reading hash tile (l, n) of width w from
 * the tile bytes at offset ((l * 4 + n) * 2^height * 32) mod their length
 * (tests/fuzz/mkseeds.py lays out real trees that way).
 *
 * Invariants: a parsed tile path is canonical (re-prints to the input)
 * and within the documented bounds; a parsed tree has 0 <= N <=
 * TLOG_MAX_N; a parsed lookup's record and note lie inside the body, the
 * record ends in "\n" and the note follows its blank line.  When a record
 * proof succeeds, the same tiles must give TreeHash(N) equal to the
 * tree's hash, and the tree of size id+1 computed from them must be
 * proven consistent with the tree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

struct tiles {
	const uint8_t *p;
	size_t n;
};

static const char *read_tile(void *arg, const struct tlog_tile *t, uint8_t **data, size_t *len)
{
	const struct tiles *ts = arg;
	size_t want = (size_t)t->w * TLOG_HASH_SIZE, off;

	check(t->l >= 0 && t->w >= 1 && t->w <= (1 << t->h));
	if (ts->n == 0)
		return "no tiles";
	off = (size_t)(((uint64_t)t->l * 4 + (uint64_t)t->n) % ts->n *
	               ((uint64_t)1 << t->h) * TLOG_HASH_SIZE % ts->n);
	if (want > ts->n - off)
		return "short tile";
	*data = malloc(want);
	check(*data != NULL);
	memcpy(*data, ts->p + off, want);
	*len = want;
	return NULL;
}

static void check_tile_path(const char *s)
{
	struct tlog_tile t;
	char buf[TLOG_TILE_PATH_MAX];

	if (tlog_parse_tile_path(s, &t) != NULL)
		return;
	check(t.h >= 1 && t.h <= 30 && t.l >= -1 && t.l <= 63 && t.n >= 0);
	check(t.w >= 1 && t.w <= (1 << t.h));
	check(tlog_tile_path(&t, buf, sizeof buf) == NULL && strcmp(buf, s) == 0);
}

/* The proof part: body is the lookup response, ts the tiles. */
static void check_proof(const char *body, size_t len, int height, const struct tiles *ts)
{
	const char *rec, *note;
	size_t rec_len, note_len;
	int64_t id;
	struct tlog_tree tree, old;
	uint8_t h[TLOG_HASH_SIZE];

	if (sumdb_parse_lookup(body, len, &id, &rec, &rec_len, &note, &note_len) != NULL ||
	    tlog_parse_tree(note, note_len, &tree) != NULL)
		return;
	if (tlog_check_record(height, &tree, id, rec, rec_len, read_tile, (void *)ts) != NULL)
		return;
	check(id >= 0 && id < tree.n);
	check(tlog_tree_hash(height, tree.n, read_tile, (void *)ts, h) == NULL &&
	      memcmp(h, tree.hash, sizeof h) == 0);
	old.n = id + 1;
	check(tlog_tree_hash(height, old.n, read_tile, (void *)ts, old.hash) == NULL);
	check(tlog_check_consistency(height, &old, &tree, read_tile, (void *)ts) == NULL);
}

static void check_parsers(const char *buf, size_t len)
{
	struct tlog_tree tree;
	const char *rec, *note;
	size_t rec_len, note_len;
	int64_t id;

	if (tlog_parse_tree(buf, len, &tree) == NULL)
		check(tree.n >= 0 && tree.n <= TLOG_MAX_N);
	if (sumdb_parse_lookup(buf, len, &id, &rec, &rec_len, &note, &note_len) == NULL) {
		check(id >= 0 && rec > buf && rec_len > 0 && rec[rec_len - 1] == '\n');
		check(note == rec + rec_len + 1 && note[-1] == '\n' && note + note_len == buf + len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char sep[] = "\nTILES\n";
	/* Exactly sized heap copies, so ASan sees any read past the input. */
	char *buf = malloc(size ? size : 1), *str = malloc(size + 1);
	const char *split;

	check(buf != NULL && str != NULL);
	memcpy(buf, data, size);
	memcpy(str, data, size);
	str[size] = '\0';
	check_tile_path(str);
	check_parsers(buf, size);
	split = memmem(buf, size, sep, sizeof sep - 1);
	if (split != NULL && (size_t)(split - buf) + sizeof sep <= size) {
		const uint8_t *hb = (const uint8_t *)split + sizeof sep - 1;
		struct tiles ts = { hb + 1, size - (size_t)(hb + 1 - (const uint8_t *)buf) };

		check_proof(buf, (size_t)(split - buf) + 1, *hb % 30 + 1, &ts);
	}
	free(buf);
	free(str);
	return 0;
}
