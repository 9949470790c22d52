/*
 * metrics: what /metrics reports, in the Prometheus text format.
 *
 * Contract: every recording function is a handful of relaxed atomic adds,
 * safe from any thread and cheap enough for the hot path; nothing here
 * allocates except metrics_render().  Labels come from fixed tables (kinds,
 * statuses, upstream indexes), never from request text, so a client cannot
 * grow the output.  A leaf: values that other files own (connections,
 * cache size, ...) are registered at start-up as readers that
 * metrics_render() calls, so nothing here includes those files.
 */
#ifndef GOPROXYD_METRICS_H
#define GOPROXYD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "route.h"

enum metric_endpoint {
	ME_LIST, ME_INFO, ME_MOD, ME_ZIP, ME_LATEST, ME_SUMDB, ME_OPS, ME_OTHER, ME_COUNT
};
enum metric_cache { MC_HIT, MC_MISS, MC_STALE, MC_COUNT };
enum metric_upstream { MU_OK, MU_NOTFOUND, MU_ERROR, MU_COUNT };
enum metric_direct { MD_OK, MD_NOTFOUND, MD_ERROR, MD_TIMEOUT, MD_COUNT };

int metrics_init(const struct config *cfg);
/* The endpoint label of a routed request; ME_OTHER is for the rest. */
enum metric_endpoint metrics_endpoint(const struct request *r);

void metrics_request(enum metric_endpoint e, unsigned status, uint64_t bytes, int64_t usec);
void metrics_cache(enum metric_cache c);
/* upstream: index into -proxy, or -1 for a checksum database. */
void metrics_upstream(int upstream, enum metric_upstream o, uint64_t bytes, int64_t usec);
/* A go command run for a direct fetch ended, after usec. */
void metrics_direct(enum metric_direct o, int64_t usec);
/* The last outcome of upstream (as for metrics_upstream) and when, in
 * seconds since the epoch (0: never asked), for the front page.  Rows past
 * the sixteenth share one, as in /metrics. */
void metrics_upstream_last(int upstream, enum metric_upstream *o, int64_t *when_s);
/* The same for the go command's direct fetches (a "direct" -proxy entry,
 * -exclude'd modules). */
void metrics_direct_last(enum metric_direct *o, int64_t *when_s);
/* Requests answered since start, and the cache outcomes counted so far. */
void metrics_totals(uint64_t *requests_total, uint64_t cache[MC_COUNT]);
/* One request to the -s3 store (a GET, or one PUT attempt). */
void metrics_s3(int64_t usec);
/* A gauge or counter whose value read() returns when /metrics is
 * rendered; name, type ("gauge", "counter") and help are static strings.
 * A name may carry labels, `name{label="value"}`: the series of one name,
 * registered one after another, share the first one's HELP and TYPE.
 * Register at start-up only, before the serving threads run. */
int metrics_register(const char *name, const char *type, const char *help,
                     uint64_t (*read)(void));

/* The whole exposition, malloc'd; the caller frees it. */
char *metrics_render(size_t *len);

#endif
