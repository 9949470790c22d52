/*
 * httpget: the libcurl set-up every request to an upstream shares, and a
 * blocking GET into memory for the few callers that may wait (checksum
 * verification, deciding where a checksum database is reached).
 *
 * Every handle gets: the User-Agent, http and https only, redirects
 * followed but never from https down to http, TLS verification with
 * SSL_CERT_FILE / SSL_CERT_DIR honoured as the go command does, -netrc
 * credentials, and -connectTimeout.
 *
 * Contract: httpget_init() runs once at start-up, before any other call
 * and before any thread that uses libcurl starts; httpget_free() after
 * they have all stopped.  http_easy() is safe from any thread;
 * http_get() blocks, so it never runs on a serving thread or the fetcher.
 */
#ifndef GOPROXYD_HTTPGET_H
#define GOPROXYD_HTTPGET_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct httpget_conf {
	const char *netrc;           /* -netrc file, or NULL */
	int64_t connect_timeout_ms;  /* -connectTimeout */
};

int httpget_init(const struct httpget_conf *conf);
void httpget_free(void);

/* A new handle for url with the shared options; NULL if out of memory. */
CURL *http_easy(const char *url);
/* Is cc a failure worth retrying on the same upstream (connection, DNS,
 * timeout, a transfer cut short)?  Pure. */
bool http_transient(CURLcode cc);

struct http_body {
	char *data;          /* malloc'd, NUL-terminated; NULL unless status 200 */
	size_t len;
};

/* Limits of one blocking GET. */
struct http_limits {
	size_t max_bytes;            /* a longer body fails the GET */
	int64_t stall_ms;            /* no byte for this long fails it; 0: none */
	int64_t total_ms;            /* the whole GET; 0: none */
	/* Polled while the GET runs: true aborts it (the daemon stops). */
	bool (*cancel)(void);
};

/* GET url.  Returns the HTTP status (body filled only for 200), or -1 with
 * a one-line reason in reason[0..n) when no HTTP answer came. */
long http_get(const char *url, const struct http_limits *lim, struct http_body *body,
              char *reason, size_t n);

#endif
