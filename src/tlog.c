/*
 * tlog: see include/tlog.h.
 *
 * A port of golang.org/x/mod/sumdb/tlog (tlog.go, tile.go, note.go) and of
 * sumdb/client.go's checkRecord/checkTrees. Where a function mirrors a Go
 * function the Go name is given above it.  Pure: any thread (the
 * verifier pool, the serving threads for tile paths).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "note.h"
#include "tlog.h"

#define HS TLOG_HASH_SIZE

/* ---------------------------------------------------------------------
 * Hashing
 */

static void sha256_2(const void *a, size_t alen, const void *b, size_t blen,
    const void *c, size_t clen, uint8_t out[HS])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx != NULL &&
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(ctx, a, alen) &&
	    EVP_DigestUpdate(ctx, b, blen) &&
	    EVP_DigestUpdate(ctx, c, clen) &&
	    EVP_DigestFinal_ex(ctx, out, NULL);

	EVP_MD_CTX_free(ctx);
	if (!ok)
		abort();   /* SHA-256 cannot fail but for lack of memory */
}

void tlog_record_hash(const void *data, size_t len, uint8_t out[HS])
{
	static const uint8_t zero = 0x00;

	sha256_2(&zero, 1, data, len, "", 0, out);
}

void tlog_node_hash(const uint8_t left[HS], const uint8_t right[HS], uint8_t out[HS])
{
	static const uint8_t one = 0x01;

	sha256_2(&one, 1, left, HS, right, HS, out);
}

/* tileHash: the subtree hash over the 2^k hashes in data[0..n*HS). */
static void tile_hash(const uint8_t *data, size_t n, uint8_t out[HS])
{
	uint8_t l[HS], r[HS];

	if (n == 1) {
		memcpy(out, data, HS);
		return;
	}
	tile_hash(data, n / 2, l);
	tile_hash(data + n / 2 * HS, n / 2, r);
	tlog_node_hash(l, r, out);
}

/* ---------------------------------------------------------------------
 * Stored hash indexes
 */

int64_t tlog_stored_hash_index(int level, int64_t n)
{
	int64_t i = 0;

	for (int l = level; l > 0; l--)
		n = 2 * n + 1;
	for (; n > 0; n >>= 1)
		i += n;
	return i + level;
}

void tlog_split_stored_hash_index(int64_t index, int *level, int64_t *n)
{
	int64_t m = index / 2, at = tlog_stored_hash_index(0, m);

	for (;;) {
		/* Each new record m adds 1 + trailingZeros(m+1) hashes. */
		int64_t x = at + 1 + __builtin_ctzll((unsigned long long)(m + 1));
		if (x > index)
			break;
		m++;
		at = x;
	}
	*level = (int)(index - at);
	*n = m >> *level;
}

/* maxpow2: the largest power of two k < n (n >= 2), and log2 k. */
static int64_t maxpow2(int64_t n, int *lg)
{
	int l = 0;

	while (((int64_t)1 << (l + 1)) < n)
		l++;
	if (lg != NULL)
		*lg = l;
	return (int64_t)1 << l;
}

/* subTreeIndex: indexes of the hashes whose fold is the hash of records
 * [lo, hi); at most 64 of them. Returns the count. */
static int sub_tree_index(int64_t lo, int64_t hi, int64_t need[64])
{
	int cnt = 0, level;

	while (lo < hi) {
		int64_t k = maxpow2(hi - lo + 1, &level);
		need[cnt++] = tlog_stored_hash_index(level, lo >> level);
		lo += k;
	}
	return cnt;
}

/* ---------------------------------------------------------------------
 * Tiles
 */

/* tileForIndex, also giving the slice [*start, *end) in hashes. */
static struct tlog_tile tile_for_index(int h, int64_t index, int64_t *start, int64_t *end)
{
	struct tlog_tile t;
	int level;
	int64_t n;

	tlog_split_stored_hash_index(index, &level, &n);
	t.h = h;
	t.l = level / h;
	level -= t.l * h;   /* level within the tile */
	t.n = n << level >> h;
	n -= t.n << h >> level;   /* n within the tile, at that level */
	t.w = (int)((n + 1) << level);
	if (start != NULL) {
		*start = n << level;
		*end = (n + 1) << level;
	}
	return t;
}

struct tlog_tile tlog_tile_for_index(int h, int64_t index)
{
	return tile_for_index(h, index, NULL, NULL);
}

static bool tile_eq(const struct tlog_tile *a, const struct tlog_tile *b)
{
	return a->h == b->h && a->l == b->l && a->n == b->n && a->w == b->w;
}

/* tileParent: t's k'th parent in a tree of size n; w == 0 if none. */
static struct tlog_tile tile_parent(struct tlog_tile t, int k, int64_t n)
{
	int64_t max;

	t.l += k;
	if (t.l * t.h >= 63) {   /* above the root of any tree */
		t.w = 0;
		return t;
	}
	t.n >>= k * t.h;
	t.w = 1 << t.h;
	max = n >> (t.l * t.h);
	if ((t.n << t.h) + t.w >= max) {
		if ((t.n << t.h) >= max) {
			t.w = 0;
			return t;
		}
		t.w = (int)(max - (t.n << t.h));
	}
	return t;
}

/* HashFromTile: the hash with this index from tile t's data. */
static const char *hash_from_tile(const struct tlog_tile *t, const uint8_t *data,
    int64_t index, uint8_t out[HS])
{
	int64_t start, end;
	struct tlog_tile t1 = tile_for_index(t->h, index, &start, &end);

	if (t->l != t1.l || t->n != t1.n || t->w < t1.w)
		return "tlog: internal error: hash not in tile";
	tile_hash(data + start * HS, (size_t)(end - start), out);
	return NULL;
}

static void put_digits(char **p, int64_t v, int width)
{
	*p += sprintf(*p, "%0*lld", width, (long long)v);
}

const char *tlog_tile_path(const struct tlog_tile *t, char *buf, size_t bufsz)
{
	char tmp[TLOG_TILE_PATH_MAX + 32], *p = tmp;
	int64_t groups[8];
	int ng = 0;

	if (t->h < 1 || t->h > 30 || t->l < -1 || t->l > 63 || t->n < 0 ||
	    t->w < 1 || t->w > (1 << t->h))
		return "invalid tile";
	for (int64_t n = t->n; ng == 0 || n > 0; n /= 1000)
		groups[ng++] = n % 1000;
	p += sprintf(p, "tile/%d/", t->h);
	if (t->l == -1)
		p += sprintf(p, "data/");
	else
		p += sprintf(p, "%d/", t->l);
	while (ng-- > 1) {
		*p++ = 'x';
		put_digits(&p, groups[ng], 3);
		*p++ = '/';
	}
	put_digits(&p, groups[0], 3);
	if (t->w != 1 << t->h)
		p += sprintf(p, ".p/%d", t->w);
	if ((size_t)(p - tmp) + 1 > bufsz)
		return "tile path buffer too small";
	memcpy(buf, tmp, (size_t)(p - tmp) + 1);
	return NULL;
}

/* strconv.Atoi restricted to ASCII digits, value <= max; the canonical
 * re-encoding check rejects leading zeros and the like afterwards. */
static bool parse_num(const char *s, size_t n, int64_t max, int64_t *out)
{
	int64_t v = 0;

	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (max - (s[i] - '0')) / 10)
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* The largest index a tile path may name: six 3-digit groups, far more
 * than a tree of TLOG_MAX_N records has tiles. */
#define TILE_N_MAX 999999999999999999LL

const char *tlog_parse_tile_path(const char *path, struct tlog_tile *t)
{
	char canon[TLOG_TILE_PATH_MAX];
	const char *p, *slash, *dotp;
	int64_t h, l, w, n = 0, g;
	size_t len = strlen(path);

	if (len >= TLOG_TILE_PATH_MAX || strncmp(path, "tile/", 5) != 0)
		return "malformed tile path";
	p = path + 5;
	if ((slash = strchr(p, '/')) == NULL || !parse_num(p, (size_t)(slash - p), 30, &h) || h < 1)
		return "malformed tile path: height";
	p = slash + 1;
	if ((slash = strchr(p, '/')) == NULL)
		return "malformed tile path: level";
	if ((size_t)(slash - p) == 4 && memcmp(p, "data", 4) == 0)
		l = -1;
	else if (!parse_num(p, (size_t)(slash - p), 63, &l))
		return "malformed tile path: level";
	p = slash + 1;
	w = (int64_t)1 << h;
	if ((dotp = strstr(p, ".p/")) != NULL) {
		if (!parse_num(dotp + 3, strlen(dotp + 3), w - 1, &w) || w < 1)
			return "malformed tile path: width";
	} else {
		dotp = path + len;
	}
	/* N: groups "xNNN/" ... "NNN", each < 1000. */
	while (p < dotp) {
		const char *e = memchr(p, '/', (size_t)(dotp - p));
		if (e == NULL)
			e = dotp;
		if (*p == 'x')
			p++;
		if (!parse_num(p, (size_t)(e - p), 999, &g))
			return "malformed tile path: index";
		if (n > (TILE_N_MAX - 999) / 1000)
			return "malformed tile path: index too large";
		n = n * 1000 + g;
		p = e == dotp ? e : e + 1;
	}
	t->h = (int)h, t->l = (int)l, t->n = n, t->w = (int)w;
	if (tlog_tile_path(t, canon, sizeof canon) != NULL || strcmp(canon, path) != 0)
		return "tile path is not in canonical form";
	return NULL;
}

/* ---------------------------------------------------------------------
 * Tree notes and lookup records
 */

/* Canonical non-negative decimal s[0..n), at most max. */
static bool parse_canon(const char *s, size_t n, int64_t max, int64_t *out)
{
	if (n > 1 && s[0] == '0')
		return false;
	return parse_num(s, n, max, out);
}

const char *tlog_parse_tree(const char *text, size_t len, struct tlog_tree *t)
{
	static const char prefix[] = "go.sum database tree\n";
	static const char bad[] = "malformed tree note";
	const char *l1, *e1, *e2;
	size_t plen = sizeof prefix - 1, hlen;
	uint8_t hash[48];

	if (len > 1000000 || len < plen || memcmp(text, prefix, plen) != 0)
		return bad;
	l1 = text + plen;
	if ((e1 = memchr(l1, '\n', len - plen)) == NULL ||
	    (e2 = memchr(e1 + 1, '\n', (size_t)(text + len - e1 - 1))) == NULL)
		return bad;
	if (!parse_canon(l1, (size_t)(e1 - l1), TLOG_MAX_N, &t->n))
		return bad;
	if (note_b64_decode(e1 + 1, (size_t)(e2 - e1 - 1), hash, sizeof hash, &hlen) != NULL ||
	    hlen != HS)
		return bad;
	memcpy(t->hash, hash, HS);
	return NULL;
}

static const char *find2nl(const char *s, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		if (s[i] == '\n' && s[i + 1] == '\n')
			return s + i;
	return NULL;
}

const char *sumdb_parse_lookup(const char *body, size_t len, int64_t *id,
    const char **rec, size_t *rec_len, const char **note, size_t *note_len)
{
	static const char bad[] = "malformed lookup response record";
	const char *nl = memchr(body, '\n', len), *text, *blank, *end = body + len;

	if (nl == NULL || !parse_canon(body, (size_t)(nl - body), INT64_MAX, id))
		return bad;
	text = nl + 1;
	if ((blank = find2nl(text, (size_t)(end - text))) == NULL)
		return bad;
	*rec = text;
	*rec_len = (size_t)(blank - text) + 1;
	/* isValidRecordText: find2nl already excluded inner blank lines. */
	if (!note_valid_text(text, *rec_len))
		return bad;
	*note = blank + 2;
	*note_len = (size_t)(end - *note);
	return NULL;
}

/* ---------------------------------------------------------------------
 * TileHashReader
 */

/* The tiles of one proof, in fetch order, and their data. */
struct tileset {
	struct tlog_tile *tiles;
	uint8_t **data;
	int n, cap;
};

static void tileset_free(struct tileset *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->data[i]);
	free(s->tiles);
	free(s->data);
}

static int tileset_find(const struct tileset *s, const struct tlog_tile *t)
{
	for (int i = 0; i < s->n; i++)
		if (tile_eq(&s->tiles[i], t))
			return i;
	return -1;
}

static int tileset_add(struct tileset *s, const struct tlog_tile *t)
{
	if (s->n == s->cap)
		return -1;
	s->tiles[s->n] = *t;
	s->data[s->n] = NULL;
	return s->n++;
}

static const char *tileset_fetch(struct tileset *s, tlog_tile_reader rd, void *arg)
{
	for (int i = 0; i < s->n; i++) {
		size_t len = 0;
		uint8_t *d = NULL;
		const char *err = rd(arg, &s->tiles[i], &d, &len);
		if (err != NULL)
			return err;
		s->data[i] = d;
		if (d == NULL || len != (size_t)s->tiles[i].w * HS)
			return "tile has the wrong size";
	}
	return NULL;
}

/* tileHashReader.ReadHashes: out[i] = hash with index idx[i] in tree,
 * every tile used authenticated against tree->hash. */
static const char *read_hashes(int h, const struct tlog_tree *tree,
    const int64_t *idx, int nidx, tlog_tile_reader rd, void *arg, uint8_t (*out)[HS])
{
	struct tileset s = { 0 };
	int64_t stx[64];
	int stx_order[64], nstx, nstx_tiles, *idx_order;
	uint8_t th[HS] = { 0 }, x[HS];   /* n >= 1 sets th; gcc -O2 cannot see it */
	const char *err = NULL;

	if (h < 1 || h > 30)
		return "invalid tile height";
	if (tree->n < 1 || tree->n > TLOG_MAX_N)
		return "tree size out of range";
	nstx = sub_tree_index(0, tree->n, stx);
	s.cap = nstx + nidx * (64 / h + 2);
	s.tiles = calloc((size_t)s.cap, sizeof *s.tiles);
	s.data = calloc((size_t)s.cap, sizeof *s.data);
	idx_order = calloc((size_t)nidx + 1, sizeof *idx_order);
	if (s.tiles == NULL || s.data == NULL || idx_order == NULL) {
		err = "out of memory";
		goto out;
	}

	/* Plan the tiles needed to recompute the tree hash. */
	for (int i = 0; i < nstx; i++) {
		struct tlog_tile t = tile_parent(tlog_tile_for_index(h, stx[i]), 0, tree->n);
		int j = tileset_find(&s, &t);
		stx_order[i] = j >= 0 ? j : tileset_add(&s, &t);
		if (stx_order[i] < 0)
			goto full;
	}

	nstx_tiles = s.n;

	/* Plan the tiles holding the indexes, and the parents linking them
	 * to an already planned (so authenticated) tile. */
	for (int i = 0; i < nidx; i++) {
		struct tlog_tile t, p;
		int k, j;
		if (idx[i] < 0 || idx[i] >= tlog_stored_hash_index(0, tree->n)) {
			err = "indexes not in tree";
			goto out;
		}
		t = tlog_tile_for_index(h, idx[i]);
		for (k = 0;; k++) {
			p = tile_parent(t, k, tree->n);
			if ((j = tileset_find(&s, &p)) >= 0)
				break;
			if (p.w == 0 || k > 64) {
				err = "tlog: internal error: tile without authenticated parent";
				goto out;
			}
		}
		if (k == 0)
			idx_order[i] = j;
		for (k--; k >= 0; k--) {
			p = tile_parent(t, k, tree->n);
			if (p.w != 1 << p.h) {
				err = "tlog: internal error: partial tile with a parent";
				goto out;
			}
			if ((j = tileset_add(&s, &p)) < 0)
				goto full;
			if (k == 0)
				idx_order[i] = j;
		}
	}

	if ((err = tileset_fetch(&s, rd, arg)) != NULL)
		goto out;

	/* Authenticate the tree-hash tiles against the signed root. */
	for (int i = nstx - 1; i >= 0; i--) {
		int j = stx_order[i];
		if ((err = hash_from_tile(&s.tiles[j], s.data[j], stx[i], x)) != NULL)
			goto out;
		if (i == nstx - 1)
			memcpy(th, x, HS);
		else
			tlog_node_hash(x, th, th);
	}
	if (memcmp(th, tree->hash, HS) != 0) {
		err = "downloaded inconsistent tile: tiles do not match the signed tree hash";
		goto out;
	}

	/* Authenticate the remaining (full) tiles against their parents.
	 * (x/mod as vendored in Go 1.19 starts at len(stx), the number of
	 * decomposition hashes rather than of their distinct tiles, and so
	 * can skip tiles; every tile after the decomposition's is checked.) */
	for (int i = nstx_tiles; i < s.n; i++) {
		struct tlog_tile p = tile_parent(s.tiles[i], 1, tree->n);
		int j = tileset_find(&s, &p);
		if (j < 0 || j >= i) {
			err = "tlog: internal error: lost parent tile";
			goto out;
		}
		if ((err = hash_from_tile(&p, s.data[j],
		    tlog_stored_hash_index(p.l * p.h, s.tiles[i].n), x)) != NULL)
			goto out;
		tile_hash(s.data[i], (size_t)s.tiles[i].w, th);
		if (memcmp(th, x, HS) != 0) {
			err = "downloaded inconsistent tile: tile does not match its parent";
			goto out;
		}
	}

	for (int i = 0; i < nidx; i++) {
		int j = idx_order[i];
		if ((err = hash_from_tile(&s.tiles[j], s.data[j], idx[i], out[i])) != NULL)
			goto out;
	}
	goto out;
full:
	err = "tlog: internal error: too many tiles";
out:
	free(idx_order);
	tileset_free(&s);
	return err;
}

/* tlog.TreeHash(n, TileHashReader(tree, ...)). */
static const char *tree_hash_in(int h, const struct tlog_tree *tree, int64_t n,
    tlog_tile_reader rd, void *arg, uint8_t out[HS])
{
	int64_t idx[64];
	uint8_t (*hashes)[HS];
	const char *err;
	int cnt;

	if (n == 0) {
		memset(out, 0, HS);
		return NULL;
	}
	if (n < 0 || n > tree->n)
		return "tree size out of range";
	cnt = sub_tree_index(0, n, idx);
	if ((hashes = malloc((size_t)cnt * HS)) == NULL)
		return "out of memory";
	if ((err = read_hashes(h, tree, idx, cnt, rd, arg, hashes)) == NULL) {
		/* subTreeHash: fold from the right. */
		memcpy(out, hashes[cnt - 1], HS);
		for (int i = cnt - 2; i >= 0; i--)
			tlog_node_hash(hashes[i], out, out);
	}
	free(hashes);
	return err;
}

const char *tlog_tree_hash(int height, int64_t n, tlog_tile_reader rd, void *arg,
    uint8_t out[HS])
{
	int64_t idx[64];
	uint8_t (*hashes)[HS];
	const char *err = NULL;
	int cnt;

	if (n == 0) {
		memset(out, 0, HS);
		return NULL;
	}
	if (n < 0 || n > TLOG_MAX_N)
		return "tree size out of range";
	if (height < 1 || height > 30)
		return "invalid tile height";
	cnt = sub_tree_index(0, n, idx);
	if ((hashes = malloc((size_t)cnt * HS)) == NULL)
		return "out of memory";
	for (int i = 0; i < cnt && err == NULL; i++) {
		struct tlog_tile t = tile_parent(tlog_tile_for_index(height, idx[i]), 0, n);
		uint8_t *d = NULL;
		size_t len = 0;
		if ((err = rd(arg, &t, &d, &len)) != NULL)
			break;
		if (d == NULL || len != (size_t)t.w * HS)
			err = "tile has the wrong size";
		else
			err = hash_from_tile(&t, d, idx[i], hashes[i]);
		free(d);
	}
	if (err == NULL) {
		memcpy(out, hashes[cnt - 1], HS);
		for (int i = cnt - 2; i >= 0; i--)
			tlog_node_hash(hashes[i], out, out);
	}
	free(hashes);
	return err;
}

const char *tlog_check_record(int height, const struct tlog_tree *tree, int64_t id,
    const char *record, size_t len, tlog_tile_reader rd, void *arg)
{
	int64_t idx;
	uint8_t got[1][HS], want[HS];
	const char *err;

	if (id < 0 || id >= tree->n)
		return "cannot validate record: id not in tree";
	idx = tlog_stored_hash_index(0, id);
	if ((err = read_hashes(height, tree, &idx, 1, rd, arg, got)) != NULL)
		return err;
	tlog_record_hash(record, len, want);
	if (memcmp(got[0], want, HS) != 0)
		return "cannot authenticate record data in server response";
	return NULL;
}

const char *tlog_check_consistency(int height, const struct tlog_tree *old,
    const struct tlog_tree *newer, tlog_tile_reader rd, void *arg)
{
	uint8_t h[HS];
	const char *err;

	if (old->n < 0 || old->n > newer->n)
		return "consistency check: old tree is larger than new tree";
	if (newer->n == 0) {
		memset(h, 0, HS);
	} else if ((err = tree_hash_in(height, newer, old->n, rd, arg, h)) != NULL) {
		return err;
	}
	if (memcmp(h, old->hash, HS) != 0)
		return "SECURITY ERROR: checksum database server misbehavior: tree is not a prefix of the newer tree";
	return NULL;
}
