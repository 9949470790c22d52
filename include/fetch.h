/*
 * fetch: the fetcher thread.  It drives every upstream transfer through
 * libcurl's multi interface, walks the -proxy list with the GOPROXY rules
 * (',' = next entry only after 404/410, '|' = next entry after any error),
 * retries transient failures with backoff, and streams each body into a
 * temp file beside its final cache name (created while the request
 * travels).  A finished body goes to the store (store.h), which validates,
 * verifies and publishes it on threads of its own, so the curl loop never
 * waits on the disk or the checksum database.  Which queued fetch starts
 * next is fetchq.h's decision: a stalled upstream or module can hold only
 * its share of the transfers.  A checksum-database request is sent once
 * its database's URL is decided (sumdburl.h, on the locator thread).
 * A "direct" entry of -proxy, and every -exclude module (which never
 * reaches an upstream), is fetched by the go command instead (direct.h)
 * and stored the same way; a -deny module is refused, never fetched.
 *
 * Contract: fetch_submit() never blocks on the network; every submitted
 * flight is finished exactly once (with FETCH_FAILED if the daemon stops
 * first).  The config must outlive the thread.  Needs httpget_init().
 */
#ifndef GOPROXYD_FETCH_H
#define GOPROXYD_FETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "flight.h"

int fetch_start(const struct config *cfg);
/* Queues the fetch of a flight that flight_join() or flight_start_warm()
 * just created.  A warming flight waits behind every client's (fetchq.h). */
void fetch_submit(struct flight *f);
/* A queued warming flight became a client's: look at the queue again now.
 * Any thread. */
void fetch_nudge(void);
/* Lets running and queued fetches go on until deadline_ms (CLOCK_MONOTONIC
 * milliseconds), aborts what is left, and joins the thread.  Fetches that
 * the store holds end there.  A no-op when the thread is not running. */
void fetch_stop(int64_t deadline_ms);

/* False once the latest upstream attempt failed to get any HTTP answer
 * (refused, reset, timed out); true again after the next answer, from a
 * request or from the probe the fetcher sends every 5 s meanwhile. */
bool fetch_reachable(void);

#endif
