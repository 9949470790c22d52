/*
 * config: the command line.  Flags are parsed the way Go's flag package
 * parses them (-flag value, -flag=value, --flag, --flag=value; bool flags
 * alone or as -flag=true|false; parsing stops at "--" or the first non-flag
 * argument), because goproxyd's users are Go developers.
 *
 * Contract: config_parse_args() fills a struct config that owns every
 * string it points to (config_free releases them).  Errors are reported as
 * exactly one line on the given stream, naming the flag.  These functions
 * run at start-up, on the main thread; once filled, the config is only
 * read, from any thread.  The grammars of the flags' values are pure, have
 * their own headers and are what the unit tests exercise: proxylist.h
 * (-proxy, -sumdb; struct upstream and struct sumdb_conf), glob.h
 * (-exclude, -noSumPatterns), units.h (durations, sizes), addr.h (-listen).
 */
#ifndef GOPROXYD_CONFIG_H
#define GOPROXYD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "glob.h"         /* matches the -exclude, -deny and -noSumPatterns lists */
#include "proxylist.h"    /* struct upstream, struct sumdb_conf */

#define GOPROXYD_VERSION "0.1.0"

struct config {
	char *listen_host;       /* NULL: every address */
	char *listen_port;       /* decimal port, e.g. "8080" */
	char *cache_dir;
	char *path_prefix;           /* -pathPrefix: "/a/b" (no trailing '/'), or NULL */
	struct upstream *upstreams;
	size_t n_upstreams;
	bool offline;            /* -proxy off: cache only, nothing fetched */
	char **exclude;          /* -exclude: private, fetched from origin only */
	size_t n_exclude;
	char **deny;             /* -deny: refused with 404 */
	size_t n_deny;
	char *go_bin;            /* -goBin: the go command for direct fetches */
	int64_t direct_timeout_ms;   /* -directTimeout: a go command's time limit */
	int max_direct;              /* -maxDirect: go commands at once */
	struct sumdb_conf *sumdbs;   /* -sumdb; none when "off" */
	size_t n_sumdbs;
	char **nosum;                /* -noSumPatterns: never looked up or verified */
	size_t n_nosum;
	char *access_log;            /* -accessLog: NULL none, "-" stderr, or a file */
	bool log_json;               /* -logFormat json */
	char *tls_cert, *tls_key;    /* -tlsCert, -tlsKey: PEM files, or NULL */
	char *auth_file;             /* -authFile: user:crypt-hash lines, or NULL */
	char *netrc;                 /* -netrc: upstream credentials, or NULL */
	char *s3_url;                /* -s3: http(s)://host[:port]/bucket[/prefix], or NULL */
	bool s3_virtual;             /* -s3AddressingStyle virtual: http(s)://bucket.host[:port][/prefix] */
	char *s3_region;             /* -s3Region */
	char *s3_creds_file;         /* -s3CredentialsFile, or NULL: the environment */
	uint64_t cache_max_bytes;    /* -cacheMaxSize: 0 = no cap */
	int64_t cache_expire_ms;     /* -cacheExpire: freshness of mutable answers */
	int64_t neg_cache_ms;        /* -negativeCacheExpire: remembered 404s */
	int64_t connect_timeout_ms;  /* -connectTimeout: upstream connect */
	int64_t stall_timeout_ms;    /* -stallTimeout: upstream sends nothing */
	int64_t client_timeout_ms;   /* -clientTimeout: idle or slow client */
	int64_t header_timeout_ms;   /* -headerTimeout: all of a request's headers */
	int64_t shutdown_timeout_ms; /* -shutdownTimeout: drain deadline */
	int max_fetches;             /* -maxFetches: upstream transfers at once (fetchq.h) */
	int warm;                    /* -warm: warming fetches at once, and per trigger; 0 = off (warm.h) */
	int max_conns;               /* -maxConns: client connections */
	int max_conns_per_ip;        /* -maxConnsPerIP: from one address, 0 = no limit */
	int threads;                 /* -threads: serving threads, 0 = one per CPU */
	size_t max_header_bytes;     /* -maxHeaderBytes: request line + headers */
};

enum {
	CONFIG_RUN = 0,          /* start the daemon */
	CONFIG_EXIT_OK = 1,      /* -h or -version was printed: exit 0 */
	CONFIG_EXIT_USAGE = 2,   /* a bad flag was reported: exit 2 */
};

/* Sets every default, then applies argv[1..argc-1]. Returns CONFIG_*. */
int config_parse_args(struct config *cfg, int argc, char **argv,
                      FILE *out, FILE *err);
/* A subcommand's own flags (each takes a value), tried before the daemon's:
 * set(arg, value) returns NULL or a one-line reason. */
struct config_cmdflag {
	const char *name;
	const char *(*set)(void *arg, const char *value);
};
struct config_cmdflags {
	const char *cmd;                     /* "prefetch", for messages */
	const struct config_cmdflag *flags;
	size_t n;
	void *arg;
};
/* config_parse_args() for a subcommand: also takes cf's flags (cf may be
 * NULL) and, when first_arg is not NULL, stops at the first argument that
 * is not a flag (Go's flag.Args()) and stores its index there instead of
 * refusing it. */
int config_parse_cmd(struct config *cfg, int argc, char **argv, FILE *out, FILE *err,
                     const struct config_cmdflags *cf, int *first_arg);
void config_free(struct config *cfg);
void config_usage(FILE *out);
/* Does anything need the go command: a "direct" -proxy entry or -exclude? */
bool config_uses_direct(const struct config *cfg);
/* -exclude: a private module, fetched from its origin only (fetch.h). */
bool config_excluded(const struct config *cfg, const char *modpath);
/* -deny: a refused module, never fetched (server.c answers 404; fetch.c
 * refuses it too, so every way into the fetch pipeline does). */
bool config_denied(const struct config *cfg, const char *modpath);

#endif
