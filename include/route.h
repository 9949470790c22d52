/*
 * route: the request URL -> struct request.  Nothing else in goproxyd looks
 * at raw URLs.
 *
 * Contract: route_parse() receives the request path exactly as it arrived
 * (still percent-encoded, query string already removed), decodes it exactly
 * once, and either fills *req and returns 0, or returns an HTTP status
 * (400 for a malformed request, 404 for a well-formed path that names no
 * endpoint) and points *reason at a static one-line explanation.
 * /healthz, /readyz, /metrics, / and /catalog are operational endpoints:
 * they come out with req->op set (and kind meaningless); like the
 * checksum-database paths, they cannot be module paths (no dot).  Every other request has
 * op OP_NONE and a kind.
 * Checksum-database paths (/sumdb/<name>/..., and /lookup/, /tile/,
 * /latest at the root, which no module path can start with because a
 * module's first element has a dot) come out as REQ_SUMDB; whether <name>
 * is a database goproxyd proxies is the caller's question; a tile path is
 * taken only in the canonical form tlog_parse_tile_path() accepts (tlog.h).
 * It never touches the filesystem; every string it produces passed the
 * go command's rules (modpath.h), so the escaped forms are safe file names.
 */
#ifndef GOPROXYD_ROUTE_H
#define GOPROXYD_ROUTE_H

#include <stdbool.h>
#include "modpath.h"

enum req_kind {
	REQ_LIST,     /* /<m>/@v/list */
	REQ_INFO,     /* /<m>/@v/<v>.info */
	REQ_MOD,      /* /<m>/@v/<v>.mod */
	REQ_ZIP,      /* /<m>/@v/<v>.zip */
	REQ_LATEST,   /* /<m>/@latest */
	REQ_SUMDB,    /* /sumdb/<name>/<rest>, or /<rest> for the default database */
};

/* An operational endpoint: answered by goproxyd itself, never a file. */
enum req_op {
	OP_NONE,      /* a module or checksum-database file: see kind */
	OP_HEALTHZ,   /* /healthz: the process is alive */
	OP_READYZ,    /* /readyz: cache writable, an upstream reachable */
	OP_METRICS,   /* /metrics: Prometheus text format */
	OP_FRONT,     /* /: the front page for a browser, else ROUTE_NO_ENDPOINT */
	OP_CATALOG,   /* /catalog: the cached versions, as Athens's /catalog */
};

/* What a request for a path that is no endpoint is answered (404); also
 * what / answers a client that does not ask for HTML. */
#define ROUTE_NO_ENDPOINT "no such endpoint (want /<module>/@v/list, /<module>/@v/<version>.info|.mod|.zip or /<module>/@latest)"

/* What a checksum-database request asks for (the <rest> of its path). */
enum sumdb_kind {
	SUMDB_SUPPORTED,   /* supported: answered by goproxyd itself */
	SUMDB_LATEST,      /* latest: the signed tree head, mutable */
	SUMDB_LOOKUP,      /* lookup/<m>@<v>: record + signed tree, immutable */
	SUMDB_TILE,        /* tile/<H>/<L>/<K>[.p/<W>]: W hashes, immutable */
	SUMDB_DATA_TILE,   /* tile/<H>/data/<K>[.p/<W>]: records, immutable */
};

#define SUMDB_NAME_MAX 129
#define SUMDB_REST_MAX (MP_PATH_MAX + MP_VERSION_MAX + 16)

struct request {
	enum req_op op;
	enum req_kind kind;                /* only when op is OP_NONE */
	char path[MP_PATH_MAX];            /* module path, original case */
	char esc_path[MP_PATH_MAX];        /* case-escaped module path */
	char version[MP_VERSION_MAX];      /* INFO/MOD/ZIP: version or query */
	char esc_version[MP_VERSION_MAX];  /* its case-escaped form */
	/* INFO/MOD/ZIP whose version is canonical and fits the path: the
	 * answer never changes.  MOD and ZIP are always immutable (route
	 * rejects other versions with 400); INFO may be a mutable query. */
	bool immutable;
	/* REQ_SUMDB: the database name ("" in the root form, which means the
	 * default database), the validated, canonical <rest>, and for
	 * SUMDB_LOOKUP the module and version in path/version above. */
	enum sumdb_kind sumdb_kind;
	char sumdb_name[SUMDB_NAME_MAX];
	char sumdb_rest[SUMDB_REST_MAX];
	unsigned tile_width;               /* SUMDB_TILE/DATA_TILE: W */
	unsigned sumdb_db;                 /* set by the server: -sumdb index */
	/* Asked for under /cached-only/ (proxy.golang.org's form): answer
	 * from the cache alone, fetch nothing. */
	bool cached_only;
};

int route_parse(const char *raw_path, struct request *req, const char **reason);

/* Is s[0..n) a checksum-database name goproxyd can serve: host[/path] of
 * lowercase letters, digits, '.', '-', '_', no empty or dot-only element
 * (it is also a directory under the cache)?  config.c checks -sumdb with it. */
bool route_sumdb_name_ok(const char *s, size_t n);

/* The file-name extension of a versioned kind ("info", "mod", "zip"), or
 * NULL for LIST/LATEST. */
const char *route_ext(enum req_kind kind);

/* r's path below an upstream's base URL, percent-encoded for a URL
 * ("<esc path>/@v/<esc version>.zip", "<esc path>/@v/list", "<esc
 * path>/@latest", or a checksum database's <rest>).  Cut at n - 1 bytes,
 * which ROUTE_UPSTREAM_PATH_MAX never is. */
#define ROUTE_UPSTREAM_PATH_MAX (3 * SUMDB_REST_MAX + 16)
void route_upstream_path(const struct request *r, char *out, size_t n);

#endif
