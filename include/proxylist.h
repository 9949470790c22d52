/*
 * proxylist: the upstream grammars.  -proxy takes a GOPROXY list, read as
 * the go command reads one (',' and '|' separators, "off", entries without
 * a scheme are https); -sumdb takes the checksum databases to proxy.
 * struct upstream and struct sumdb_conf are what they produce and what the
 * rest of goproxyd reads (through struct config, config.h).
 *
 * Contract: pure functions, no global state, safe from any thread.  Each
 * parser returns NULL or a static one-line reason; on success the arrays
 * and strings it gives belong to the caller (free with the matching
 * config_free_*), on failure it gives nothing.  Allocation failure aborts
 * (parseutil.h).
 */
#ifndef GOPROXYD_PROXYLIST_H
#define GOPROXYD_PROXYLIST_H

#include <stdbool.h>
#include <stddef.h>

struct upstream {
	char *url;               /* absolute http(s) base URL, no trailing '/'; "direct" */
	bool direct;             /* the entry "direct": the origin, through the go command */
	bool fallback_on_error;  /* the separator after this entry was '|' */
};

/* A checksum database goproxyd proxies (-sumdb). */
struct sumdb_conf {
	char *name;              /* e.g. "sum.golang.org"; also its cache directory */
	char *url;               /* base URL, no trailing '/' (https://NAME unless given) */
	char *key;               /* verifier key "name+hash+base64", or NULL */
	bool discover;           /* no URL given: try the -proxy entries first (sumdburl.h) */
};

/* The go command's built-in key for sum.golang.org (modfetch/key.go). */
#define SUMDB_GOLANG_KEY "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"

/* GOPROXY grammar.  On success returns NULL and sets *ups, *n (owned by the
 * caller; free with config_free_upstreams) and *offline; "off" ends the list
 * and, when it is the first entry, means offline; "direct" is an entry of
 * its own (url "direct", direct set) and may appear anywhere; entries without a scheme get "https://" as the go command does. */
const char *config_parse_proxy(const char *list, struct upstream **ups,
                               size_t *n, bool *offline);
void config_free_upstreams(struct upstream *ups, size_t n);

/* -sumdb grammar: "off", or comma-separated entries NAME, KEY, NAME=URL or
 * KEY=URL, where KEY is a verifier key "name+hash+base64".  Without a URL,
 * url is https://NAME and discover is set; sum.golang.org's key is built
 * in. */
const char *config_parse_sumdb(const char *list, struct sumdb_conf **dbs, size_t *n);
void config_free_sumdbs(struct sumdb_conf *dbs, size_t n);

#endif
