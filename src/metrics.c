/* metrics: see include/metrics.h.  Recording on any thread; registration
 * at start-up, before the serving threads; rendering on a serving thread. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"

static const char *const endpoint_name[ME_COUNT] = {
	"list", "info", "mod", "zip", "latest", "sumdb", "ops", "other"
};
static const unsigned status_code[] = { 200, 206, 304, 400, 401, 404, 405, 416, 431, 500, 503 };
#define N_STATUS (sizeof status_code / sizeof status_code[0] + 1)   /* + "other" */
static const char *const cache_name[MC_COUNT] = { "hit", "miss", "stale" };
static const char *const upstream_outcome[MU_COUNT] = { "ok", "notfound", "error" };
static const char *const direct_outcome[MD_COUNT] = { "ok", "notfound", "error", "timeout" };

/* Seconds; the last bucket is +Inf. */
static const double bucket_le[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
#define N_BUCKETS (sizeof bucket_le / sizeof bucket_le[0] + 1)

struct histogram {
	atomic_ullong bucket[N_BUCKETS];
	atomic_ullong sum_usec;
	atomic_ullong count;
};

#define MAX_UPSTREAMS 16   /* further entries share the last row */

static const struct config *cfg;
static atomic_ullong requests[ME_COUNT][N_STATUS];
static atomic_ullong bytes_served;
static atomic_ullong cache_outcomes[MC_COUNT];
static atomic_ullong upstream_requests[MAX_UPSTREAMS + 1][MU_COUNT];   /* last row: sumdb */
static atomic_ullong bytes_fetched;
static atomic_ullong direct_fetches[MD_COUNT];
static atomic_int direct_last;
static atomic_llong direct_last_time;
/* Each row's last outcome and when (seconds since the epoch; 0: never). */
static atomic_int upstream_last[MAX_UPSTREAMS + 1];
static atomic_llong upstream_last_time[MAX_UPSTREAMS + 1];
static struct histogram request_seconds, upstream_seconds, direct_seconds,
                        s3_seconds;

/* Values other files own, read when /metrics is rendered. */
#define MAX_READERS 32
static struct reader {
	const char *name, *type, *help;
	uint64_t (*read)(void);
} readers[MAX_READERS];
static size_t n_readers;

int metrics_init(const struct config *c)
{
	cfg = c;
	return 0;
}

int metrics_register(const char *name, const char *type, const char *help, uint64_t (*read)(void))
{
	if (n_readers == MAX_READERS)
		return -1;
	readers[n_readers++] = (struct reader){ name, type, help, read };
	return 0;
}

enum metric_endpoint metrics_endpoint(const struct request *r)
{
	if (r->op != OP_NONE)
		return ME_OPS;
	switch (r->kind) {
	case REQ_LIST: return ME_LIST;
	case REQ_INFO: return ME_INFO;
	case REQ_MOD: return ME_MOD;
	case REQ_ZIP: return ME_ZIP;
	case REQ_LATEST: return ME_LATEST;
	case REQ_SUMDB: return ME_SUMDB;
	}
	return ME_OTHER;
}

static void observe(struct histogram *h, int64_t usec)
{
	size_t i = 0;

	if (usec < 0)
		usec = 0;
	while (i < N_BUCKETS - 1 && (double)usec > bucket_le[i] * 1e6)
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_usec, (unsigned long long)usec, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void metrics_request(enum metric_endpoint e, unsigned status, uint64_t bytes, int64_t usec)
{
	size_t s = 0;

	while (s < N_STATUS - 1 && status_code[s] != status)
		s++;
	atomic_fetch_add_explicit(&requests[e][s], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&bytes_served, bytes, memory_order_relaxed);
	observe(&request_seconds, usec);
}

void metrics_cache(enum metric_cache c)
{
	atomic_fetch_add_explicit(&cache_outcomes[c], 1, memory_order_relaxed);
}

void metrics_upstream(int upstream, enum metric_upstream o, uint64_t bytes, int64_t usec)
{
	int row = upstream < 0 ? MAX_UPSTREAMS : upstream < MAX_UPSTREAMS ? upstream : MAX_UPSTREAMS - 1;

	atomic_fetch_add_explicit(&upstream_requests[row][o], 1, memory_order_relaxed);
	atomic_store_explicit(&upstream_last[row], (int)o, memory_order_relaxed);
	atomic_store_explicit(&upstream_last_time[row], (long long)time(NULL), memory_order_relaxed);
	atomic_fetch_add_explicit(&bytes_fetched, bytes, memory_order_relaxed);
	observe(&upstream_seconds, usec);
}

void metrics_direct(enum metric_direct o, int64_t usec)
{
	atomic_fetch_add_explicit(&direct_fetches[o], 1, memory_order_relaxed);
	atomic_store_explicit(&direct_last, (int)o, memory_order_relaxed);
	atomic_store_explicit(&direct_last_time, (long long)time(NULL), memory_order_relaxed);
	observe(&direct_seconds, usec);
}

void metrics_upstream_last(int upstream, enum metric_upstream *o, int64_t *when_s)
{
	int row = upstream < 0 ? MAX_UPSTREAMS : upstream < MAX_UPSTREAMS ? upstream : MAX_UPSTREAMS - 1;

	*when_s = atomic_load_explicit(&upstream_last_time[row], memory_order_relaxed);
	*o = (enum metric_upstream)atomic_load_explicit(&upstream_last[row], memory_order_relaxed);
}

void metrics_direct_last(enum metric_direct *o, int64_t *when_s)
{
	*when_s = atomic_load_explicit(&direct_last_time, memory_order_relaxed);
	*o = (enum metric_direct)atomic_load_explicit(&direct_last, memory_order_relaxed);
}

void metrics_totals(uint64_t *requests_total, uint64_t cache[MC_COUNT])
{
	uint64_t n = 0;

	for (size_t e = 0; e < ME_COUNT; e++)
		for (size_t s = 0; s < N_STATUS; s++)
			n += atomic_load_explicit(&requests[e][s], memory_order_relaxed);
	*requests_total = n;
	for (size_t c = 0; c < MC_COUNT; c++)
		cache[c] = atomic_load_explicit(&cache_outcomes[c], memory_order_relaxed);
}

void metrics_s3(int64_t usec)
{
	observe(&s3_seconds, usec);
}

/* --- rendering ------------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, cap;
	int failed;
};

static void emit(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = 1;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		char *grown = realloc(o->buf, o->cap * 2 + (size_t)n);
		if (grown == NULL) {
			o->failed = 1;
			return;
		}
		o->buf = grown;
		o->cap = o->cap * 2 + (size_t)n;
	}
}

static unsigned long long get(atomic_ullong *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void header(struct out *o, const char *name, const char *type, const char *help)
{
	emit(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_histogram(struct out *o, const char *name, const char *help, struct histogram *h)
{
	unsigned long long cum = 0;

	header(o, name, "histogram", help);
	for (size_t i = 0; i < N_BUCKETS; i++) {
		cum += get(&h->bucket[i]);
		if (i < N_BUCKETS - 1)
			emit(o, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_le[i], cum);
		else
			emit(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
	}
	emit(o, "%s_sum %.6f\n%s_count %llu\n", name, (double)get(&h->sum_usec) / 1e6, name,
	     get(&h->count));
}

static void render_requests(struct out *o)
{
	header(o, "goproxyd_requests_total", "counter", "Requests answered, by endpoint kind and status.");
	for (size_t e = 0; e < ME_COUNT; e++)
		for (size_t s = 0; s < N_STATUS; s++) {
			unsigned long long v = get(&requests[e][s]);
			if (v == 0)
				continue;
			if (s < N_STATUS - 1)
				emit(o, "goproxyd_requests_total{endpoint=\"%s\",code=\"%u\"} %llu\n",
				     endpoint_name[e], status_code[s], v);
			else
				emit(o, "goproxyd_requests_total{endpoint=\"%s\",code=\"other\"} %llu\n",
				     endpoint_name[e], v);
		}
}

static void render_upstreams(struct out *o)
{
	size_t n = cfg->n_upstreams < MAX_UPSTREAMS ? cfg->n_upstreams : MAX_UPSTREAMS;

	header(o, "goproxyd_upstream_requests_total", "counter",
	       "Upstream transfers, by upstream and outcome.");
	for (size_t u = 0; u <= MAX_UPSTREAMS; u++) {
		const char *name = u == MAX_UPSTREAMS ? "sumdb" : u < n ? cfg->upstreams[u].url : NULL;
		if (name == NULL || (u < n && cfg->upstreams[u].direct))
			continue;   /* direct entries: goproxyd_direct_fetches_total */
		for (size_t k = 0; k < MU_COUNT; k++)
			emit(o, "goproxyd_upstream_requests_total{upstream=\"%s\",outcome=\"%s\"} %llu\n",
			     name, upstream_outcome[k], get(&upstream_requests[u][k]));
	}
}

char *metrics_render(size_t *len)
{
	struct out o = { .cap = 8192 };

	if ((o.buf = malloc(o.cap)) == NULL)
		return NULL;
	render_requests(&o);
	header(&o, "goproxyd_cache_requests_total", "counter",
	       "File answers by cache outcome: hit, miss (fetched), stale (served expired).");
	for (size_t c = 0; c < MC_COUNT; c++)
		emit(&o, "goproxyd_cache_requests_total{outcome=\"%s\"} %llu\n", cache_name[c],
		     get(&cache_outcomes[c]));
	render_upstreams(&o);
	header(&o, "goproxyd_direct_fetches_total", "counter",
	       "Go commands run to fetch from an origin repository, by outcome.");
	for (size_t k = 0; k < MD_COUNT; k++)
		emit(&o, "goproxyd_direct_fetches_total{outcome=\"%s\"} %llu\n", direct_outcome[k],
		     get(&direct_fetches[k]));
	header(&o, "goproxyd_bytes_served_total", "counter", "Response body bytes queued to clients.");
	emit(&o, "goproxyd_bytes_served_total %llu\n", get(&bytes_served));
	header(&o, "goproxyd_bytes_fetched_total", "counter", "Body bytes received from upstreams.");
	emit(&o, "goproxyd_bytes_fetched_total %llu\n", get(&bytes_fetched));
	for (size_t i = 0; i < n_readers; i++) {
		/* "name{label=...}": one header for the series of one name */
		size_t n = strcspn(readers[i].name, "{");

		if (i == 0 || strncmp(readers[i - 1].name, readers[i].name, n) != 0 ||
		    strcspn(readers[i - 1].name, "{") != n)
			emit(&o, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)n, readers[i].name,
			     readers[i].help ? readers[i].help : "", (int)n, readers[i].name,
			     readers[i].type);
		emit(&o, "%s %llu\n", readers[i].name, (unsigned long long)readers[i].read());
	}
	render_histogram(&o, "goproxyd_request_duration_seconds", "Time from request to response queued.",
	                 &request_seconds);
	render_histogram(&o, "goproxyd_upstream_duration_seconds", "Duration of upstream transfers.",
	                 &upstream_seconds);
	render_histogram(&o, "goproxyd_direct_duration_seconds",
	                 "Duration of go commands fetching from origin repositories.", &direct_seconds);
	if (cfg && cfg->s3_url)
		render_histogram(&o, "goproxyd_s3_duration_seconds",
		                 "Duration of S3 store requests (GETs and PUT attempts).", &s3_seconds);
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	*len = o.len;
	return o.buf;
}
