/*
 * route: the request URL -> struct request.  Nothing else in goproxyd looks
 * at raw URLs.
 *
 * Contract: route_parse() receives the request path exactly as it arrived
 * (still percent-encoded, query string already removed), decodes it exactly
 * once, and either fills *req and returns 0, or returns an HTTP status
 * (400 for a malformed request, 404 for a well-formed path that names no
 * endpoint) and points *reason at a static one-line explanation.
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
};

struct request {
	enum req_kind kind;
	char path[MP_PATH_MAX];            /* module path, original case */
	char esc_path[MP_PATH_MAX];        /* case-escaped module path */
	char version[MP_VERSION_MAX];      /* INFO/MOD/ZIP: version or query */
	char esc_version[MP_VERSION_MAX];  /* its case-escaped form */
	/* INFO/MOD/ZIP whose version is canonical and fits the path: the
	 * answer never changes.  MOD and ZIP are always immutable (route
	 * rejects other versions with 400); INFO may be a mutable query. */
	bool immutable;
};

int route_parse(const char *raw_path, struct request *req, const char **reason);

/* The file-name extension of a versioned kind ("info", "mod", "zip"), or
 * NULL for LIST/LATEST. */
const char *route_ext(enum req_kind kind);

#endif
