/*
 * fuzz_route: route_parse() (src/route.c) on any request path, and the
 * module path and version unescaping it relies on (src/modpath.c) on the
 * same bytes.
 *
 * Invariants, for a routed module request: the module path passes
 * mp_check_path, re-escapes to esc_path, and esc_path is what the
 * (percent-decoded) input names: "/<esc_path>/@v/..." or "/<esc_path>/@latest",
 * after an optional "/cached-only"; a versioned request's version
 * re-escapes to esc_version, which the input ends with before the
 * extension; .mod and .zip are canonical, fit the path and are immutable.
 * A routed tile re-prints (tlog_tile_path) to its own sumdb_rest.  An
 * error has a one-line reason and status 400 or 404.  Directly:
 * whatever mp_unescape_path or mp_unescape_version accepts re-escapes to
 * the input byte for byte and passes the check it promises.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modpath.h"
#include "route.h"
#include "tlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT 4096

static void check(int ok)
{
	if (!ok)
		abort();
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* An independent percent-decoder: the routed path must come from this. */
static void pct_decode(const char *in, char *out)
{
	for (; *in; in++) {
		if (in[0] == '%' && hexval(in[1]) >= 0 && hexval(in[2]) >= 0) {
			*out++ = (char)(hexval(in[1]) * 16 + hexval(in[2]));
			in += 2;
		} else {
			*out++ = *in;
		}
	}
	*out = '\0';
}

static void check_module(const struct request *r, const char *decoded)
{
	char esc[MP_PATH_MAX], back[MP_PATH_MAX];
	const char *p = decoded, *ext;
	size_t n = strlen(r->esc_path), dn;

	check(mp_check_path(r->path) == NULL);
	check(mp_escape(r->path, esc, sizeof esc) == NULL && strcmp(esc, r->esc_path) == 0);
	check(mp_unescape_path(r->esc_path, back, sizeof back) == NULL &&
	      strcmp(back, r->path) == 0);
	if (r->cached_only)
		p += strlen("/cached-only");
	check(p[0] == '/' && strncmp(p + 1, r->esc_path, n) == 0);
	p += 1 + n;
	if (r->kind == REQ_LATEST) {
		check(strcmp(p, "/@latest") == 0);
		return;
	}
	check(strncmp(p, "/@v/", 4) == 0);
	if (r->kind == REQ_LIST) {
		check(strcmp(p + 4, "list") == 0);
		return;
	}
	ext = route_ext(r->kind);
	check(ext != NULL);
	check(mp_escape(r->version, esc, sizeof esc) == NULL && strcmp(esc, r->esc_version) == 0);
	check(r->version[0] != '\0' && r->version[0] != '.');
	dn = strlen(r->esc_version);
	check(strncmp(p + 4, r->esc_version, dn) == 0 && p[4 + dn] == '.' &&
	      strcmp(p + 5 + dn, ext) == 0);
	if (r->kind != REQ_INFO)
		check(r->immutable);
	if (r->immutable)
		check(mp_is_canonical(r->version) &&
		      mp_check_path_major(r->path, r->version) == NULL);
}

static void check_sumdb(const struct request *r)
{
	struct tlog_tile t;
	char buf[TLOG_TILE_PATH_MAX];

	check(r->sumdb_name[0] == '\0' || route_sumdb_name_ok(r->sumdb_name, strlen(r->sumdb_name)));
	switch (r->sumdb_kind) {
	case SUMDB_TILE:
	case SUMDB_DATA_TILE:
		check(tlog_parse_tile_path(r->sumdb_rest, &t) == NULL);
		check(tlog_tile_path(&t, buf, sizeof buf) == NULL && strcmp(buf, r->sumdb_rest) == 0);
		check((t.l < 0) == (r->sumdb_kind == SUMDB_DATA_TILE) && (unsigned)t.w == r->tile_width);
		check(r->immutable);
		break;
	case SUMDB_LOOKUP:
		check(mp_check_path(r->path) == NULL && mp_semver_valid(r->version));
		check(r->immutable);
		break;
	case SUMDB_LATEST:
	case SUMDB_SUPPORTED:
		check(!r->immutable);
		break;
	}
}

static void check_route(const char *raw, char *decoded)
{
	static struct request r;
	const char *reason = NULL;
	int st = route_parse(raw, &r, &reason);

	if (st != 0) {
		check((st == 400 || st == 404) && reason != NULL && reason[0] != '\0' &&
		      strchr(reason, '\n') == NULL);
		return;
	}
	if (r.op != OP_NONE)
		return;
	pct_decode(raw, decoded);
	if (r.kind == REQ_SUMDB)
		check_sumdb(&r);
	else
		check_module(&r, decoded);
}

/* back has room for any input: the re-escaped form is as long as s. */
static void check_unescape(const char *s)
{
	static char out[MP_PATH_MAX], back[MAX_INPUT + 1];

	if (mp_unescape_path(s, out, sizeof out) == NULL) {
		check(mp_check_path(out) == NULL);
		check(mp_escape(out, back, sizeof back) == NULL && strcmp(back, s) == 0);
	}
	if (mp_unescape_version(s, out, sizeof out) == NULL) {
		check(mp_check_version_elem(out) == NULL);
		check(mp_escape(out, back, sizeof back) == NULL && strcmp(back, s) == 0);
	}
	if (mp_is_canonical(s) || mp_is_pseudo(s))
		check(mp_semver_valid(s));
	if (mp_semver_valid(s))
		check(mp_semver_compare(s, s) == 0 && mp_semver_compare(s, "x") > 0);
	(void)mp_check_file_path(s, strlen(s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exactly sized heap copies, so ASan sees a read past the NUL. */
	char *raw, *decoded;

	if (size > MAX_INPUT)
		return 0;
	raw = malloc(size + 1);
	decoded = malloc(size + 1);
	check(raw != NULL && decoded != NULL);
	memcpy(raw, data, size);
	raw[size] = '\0';
	check_route(raw, decoded);
	check_unescape(raw);
	if (raw[0] == '/')
		check_unescape(raw + 1);
	free(raw);
	free(decoded);
	return 0;
}
