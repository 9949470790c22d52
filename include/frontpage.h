/*
 * frontpage: what a person sees at the mirror's root (one small HTML page:
 * how to point the go command here, a search of the cached modules, the
 * most recently cached versions, the upstreams' health, the cache's size),
 * and the /catalog JSON, each rendered from a snapshot that ops.c fills.
 *
 * Contract: pure.  Nothing here touches a socket, the disk or global
 * state, so the unit tests drive it without a server; it runs on the
 * serving threads.  Every string that came from outside (the Host header,
 * the query, module paths and versions, upstream URLs, patterns) reaches
 * the page through one escaping function, so none can add markup.  The
 * page needs no external asset and no JavaScript.  Rendering functions
 * return a malloc'd, NUL-terminated body (the caller frees it) or NULL when
 * out of memory.
 */
#ifndef GOPROXYD_FRONTPAGE_H
#define GOPROXYD_FRONTPAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modpath.h"

#define FRONT_HOST_MAX 256        /* a longer Host is cut */
#define FRONT_QUERY_MAX 128       /* a longer search is cut */
#define FRONT_MAX_RESULTS 200     /* versions listed for a search */
#define FRONT_MAX_RECENT 20
#define FRONT_MAX_UPSTREAMS 16
#define FRONT_MAX_SUMDBS 8
#define CATALOG_PAGE_DEFAULT 1000 /* Athens's default pagesize */
#define CATALOG_PAGE_MAX 10000    /* Athens has no maximum; one answer stays bounded */

/* One cached version, in the cache's escaped forms. */
struct front_version {
	char esc_path[MP_PATH_MAX];
	char esc_version[MP_VERSION_MAX];
	unsigned files;               /* catalog.h's CATALOG_INFO|MOD|ZIP */
	int64_t time_s;               /* when it was cached */
};

/* An upstream (a -proxy entry, or the checksum databases together). */
struct front_upstream {
	const char *name;             /* URL or database name */
	const char *outcome;          /* "ok", "not found", "error", or NULL: not asked yet */
	int64_t when_s;               /* of the outcome */
};

struct front_snapshot {
	const char *version;          /* goproxyd's */
	int64_t now_s;
	/* The URL the client used: scheme, Host, -pathPrefix ("" or "/a/b"). */
	bool tls;
	char host[FRONT_HOST_MAX];
	const char *prefix;
	/* What the go command needs to know. */
	const char *sumdb;            /* first -sumdb database (name or key), or NULL */
	const char *sumdb_name;
	const char *const *nosum[2];  /* -exclude and -noSumPatterns */
	size_t n_nosum[2];
	/* Health. */
	bool offline;                 /* -proxy off */
	struct front_upstream ups[FRONT_MAX_UPSTREAMS];
	size_t n_ups;
	const char *sumdb_names[FRONT_MAX_SUMDBS];
	size_t n_sumdbs;
	struct front_upstream sumdb_health;
	const char *cache_problem;    /* NULL: the cache directory takes writes */
	/* The cache. */
	uint64_t files, bytes, max_bytes;
	uint64_t requests, hits, misses, stale;
	size_t versions, modules;
	bool index_building, index_full;
	/* The search (has_query) and its results, then the newest versions. */
	bool has_query;
	char query[FRONT_QUERY_MAX];
	struct front_version results[FRONT_MAX_RESULTS];
	size_t n_results;
	bool more_results;
	struct front_version recent[FRONT_MAX_RECENT];
	size_t n_recent;
};

/* The whole page. */
char *frontpage_render(const struct front_snapshot *s, size_t *len);

/* Does an Accept header ask for HTML (text/html with a q above 0)?  NULL
 * (no header) does not. */
bool frontpage_wants_html(const char *accept);

/* A query parameter as libmicrohttpd hands it over (goproxyd keeps its
 * percent-escapes): '+' is a space, %XX a byte.  False for a malformed
 * escape or a control character; the result is cut to n - 1 bytes. */
bool frontpage_decode_query(const char *raw, char *out, size_t n);

/* /catalog's pagesize: NULL or "" gives CATALOG_PAGE_DEFAULT, a larger one
 * CATALOG_PAGE_MAX; 0 for anything but a positive decimal number. */
size_t frontpage_page_size(const char *raw);
/* /catalog's token "<module>|<version>" (Athens's form, as the go command
 * writes them) in the escaped forms the index sorts by; false if malformed. */
bool frontpage_parse_token(const char *token, char *esc_path, char *esc_version);
/* A growing text body (for the /catalog builder below). */
struct front_out {
	char *buf;
	size_t len, cap;
	bool failed;                  /* out of memory: the body is unusable */
};

/* /catalog's answer, {"modules":[{"module":..,"version":..}],"next":..},
 * built one version at a time (the versions come from the index while it
 * is locked, and none is copied twice).  "next", the token of the last
 * version listed, is there only when more versions follow: Athens leaves
 * it out on the last page. */
struct catalog_json {
	struct front_out out;
	size_t n;
	char last_path[MP_PATH_MAX];  /* the last added, as the go command writes it */
	char last_version[MP_VERSION_MAX];
};
void frontpage_catalog_begin(struct catalog_json *j);
void frontpage_catalog_add(struct catalog_json *j, const char *esc_path, const char *esc_version);
/* The body (the caller frees it), or NULL when out of memory. */
char *frontpage_catalog_end(struct catalog_json *j, bool more, size_t *len);

#endif
