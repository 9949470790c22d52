/*
 * warm: fetch what a client will ask for next, before it asks (-warm N).
 *
 * The policy, from the go command's request sequences (docs/design.md,
 * "Warming"): a client's request for
 *   - M@v.mod   warms M@v.info; and, when that go.mod does not prune the
 *               module graph (no go line, or go before 1.17), the .mod of
 *               each of its requirements, as the go command will read them;
 *   - M@v.zip   warms M@v.mod and M@v.info;
 *   - M@v.info  (canonical v) warms M@v.zip.
 * A .mod fetched by warming warms its requirements' .mod files by the same
 * rule, so an unpruned graph is fetched at the speed of its depth.
 *
 * Warming fetches are flights like any other (flight.h), started with no
 * waiter and queued at low priority (fetchq.h): a request for the file
 * joins the fetch and makes it a client's.  A file is not warmed when it
 * is cached, already being fetched, in the negative cache, refused by the
 * server's rules for client requests (-exclude: the `refused` function),
 * or when the cache is within 10% of -cacheMaxSize; what is fetched is
 * validated and verified like a client's fetch.  At most N warming fetches
 * are queued or running at once, and one go.mod warms at most N files.
 *
 * Accounting: a warmed file requested later is useful; one not requested
 * within 10 minutes (or pushed out of the 16384-entry table) is wasted.
 *
 * Contract: warm_init() at start-up on the main thread, before the
 * serving threads; warm_request() from the serving threads (a few atomic
 * operations when nothing is to be warmed, nothing at all with -warm 0);
 * warm_fetched() is flight.h's finished hook, on whichever thread ends a
 * fetch.  The config must outlive every call.
 */
#ifndef GOPROXYD_WARM_H
#define GOPROXYD_WARM_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "flight.h"
#include "route.h"

/* refused(r): would the server refuse a client this request (-exclude)? */
void warm_init(const struct config *cfg, bool (*refused)(const struct request *r));

/* A client asked for r, whose cache key is key (hit or miss). */
void warm_request(const struct request *r, const char *key);

/* flight.h's finished hook. */
void warm_fetched(const struct flight *f, const struct fetch_result *res, bool warm);

/* For /metrics. */
uint64_t warm_useful(void);
uint64_t warm_wasted(void);
uint64_t warm_pending(void);
enum warm_outcome { WARM_STORED, WARM_NOTFOUND, WARM_FAILED, WARM_OUTCOMES };
uint64_t warm_fetches(enum warm_outcome o);
uint64_t warm_skipped_capped(void);

#endif
