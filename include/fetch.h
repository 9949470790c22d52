/*
 * upstream: the one fetcher thread.  It drives every upstream transfer
 * through libcurl's multi interface, walks the -proxy list with the
 * GOPROXY rules (',' = next entry only after 404/410, '|' = next entry after
 * any error), retries transient failures with backoff, streams each body
 * into a temp file beside its final cache name; two storer threads then
 * validate it, publish it atomically and end the flight (flight.h), so the
 * curl loop never waits on the disk.  A checksum-database request is sent
 * once its database's URL is decided (sumdburl.h); the verifier thread
 * decides it, so the curl loop never waits for that either.
 *
 * Contract: upstream_submit() never blocks on the network; every submitted
 * flight is finished exactly once (with FETCH_FAILED if the daemon stops
 * first).  The config must outlive the thread.
 */
#ifndef GOPROXYD_UPSTREAM_H
#define GOPROXYD_UPSTREAM_H

#include <curl/curl.h>
#include <stdbool.h>

#include "config.h"
#include "flight.h"

/* What upstream_easy() needs, without the fetcher thread (goproxyd verify). */
int upstream_init(const struct config *cfg);
/* upstream_init(), then the fetcher thread. */
int upstream_start(const struct config *cfg);
void upstream_submit(struct flight *f);
/* Lets running and queued fetches go on until deadline_ms (CLOCK_MONOTONIC
 * milliseconds), aborts what is left, and joins the thread.  A no-op when
 * the thread is not running. */
void upstream_stop(int64_t deadline_ms);

/* False once the latest upstream attempt failed to get any HTTP answer
 * (refused, reset, timed out); true again after the next answer, from a
 * request or from the probe the fetcher sends every 5 s meanwhile. */
bool upstream_reachable(void);

/* A libcurl handle for url with the options every upstream transfer
 * shares (User-Agent, http(s) only, redirects never https -> http, TLS
 * verification with SSL_CERT_FILE/SSL_CERT_DIR, -netrc, connect timeout);
 * the checksum-database client uses it too.  Needs upstream_init(). */
CURL *upstream_easy(const char *url);

#endif
