/* server: see include/server.h. */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "flight.h"
#include "log.h"
#include "route.h"
#include "server.h"

#define IMMUTABLE_CC "public, max-age=31536000, immutable"

enum outcome { HIT, MISS, STALE };
static const char *const outcome_name[] = { "hit", "miss", "stale" };

/* One request's state, from its first access-handler call to completion. */
struct ctx {
	struct MHD_Connection *conn;
	struct waiter w;             /* while suspended on a fetch */
	bool waiting;
	bool head;
	struct request req;
	char key[CACHE_KEY_MAX];
};

static const struct config *cfg;
static struct MHD_Daemon *daemon_;
static atomic_uint inflight;

/* --- responses ------------------------------------------------------------ */

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r)
{
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;   /* out of memory: MHD closes the connection */
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status,
                                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The one place that turns a status and reason into a response: a single
 * line of text/plain, which the go command shows to its user. */
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status,
                                  const char *fmt, ...)
{
	char body[1024];
	struct MHD_Response *r;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof body - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof body - 2)
		n = sizeof body - 2;
	body[n++] = '\n';
	r = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	return queue(c, status, r);
}

static const char *content_type(const struct request *r)
{
	switch (r->kind) {
	case REQ_SUMDB:
		if (r->sumdb_kind == SUMDB_TILE)
			return "application/octet-stream";
		break;
	case REQ_INFO:
	case REQ_LATEST:
		return "application/json";
	case REQ_ZIP:
		return "application/zip";
	case REQ_LIST:
	case REQ_MOD:
		break;
	}
	return "text/plain; charset=utf-8";
}

/* What a client may cache: immutable files for a year, mutable answers for
 * what is left of their freshness. */
static void set_cache_control(struct MHD_Response *r, const struct ctx *x,
                              const struct cache_entry *e)
{
	char cc[64];
	int64_t left = cfg->cache_expire_ms - cache_age_ms(e);

	if (x->req.immutable) {
		MHD_add_response_header(r, "Cache-Control", IMMUTABLE_CC);
		return;
	}
	snprintf(cc, sizeof cc, "public, max-age=%lld", left > 0 ? (long long)(left / 1000) : 0LL);
	MHD_add_response_header(r, "Cache-Control", cc);
}

/* A strong validator for a file that never changes once published. */
static void make_etag(char *buf, size_t n, const struct cache_entry *e)
{
	snprintf(buf, n, "\"%llx-%llx.%lx\"", (unsigned long long)e->size,
	         (unsigned long long)e->mtime.tv_sec, (unsigned long)e->mtime.tv_nsec);
}

/* Parses a single "bytes=" range against size.  Returns 1 with the range
 * set, 0 when the header should be ignored (absent, malformed, several
 * ranges: the whole file is sent), or -1 when it cannot be satisfied. */
static int parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
	unsigned long long a, b;
	char *end;

	if (h == NULL || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 0;
	h += 6;
	if (*h == '-') {                      /* suffix: the last N bytes */
		b = strtoull(h + 1, &end, 10);
		if (end == h + 1 || *end)
			return 0;
		if (b == 0 || size == 0)
			return -1;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return 1;
	}
	a = strtoull(h, &end, 10);
	if (end == h || *end != '-')
		return 0;
	h = end + 1;
	if (*h == '\0')
		b = size ? size - 1 : 0;
	else {
		b = strtoull(h, &end, 10);
		if (*end || b < a)
			return 0;
		if (b >= size)
			b = size - 1;
	}
	if (a >= size)
		return -1;
	*first = a;
	*last = b;
	return 1;
}

/* Serves e (taking ownership of its fd), honouring a Range request. */
static enum MHD_Result send_file(struct ctx *x, struct cache_entry *e, enum outcome o)
{
	const char *range = MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, "Range");
	const char *if_range = MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, "If-Range");
	char etag[64], crange[96];
	uint64_t first = 0, last = 0;
	unsigned status = MHD_HTTP_OK;
	struct MHD_Response *r;
	int rr;

	make_etag(etag, sizeof etag, e);
	if (!x->req.immutable || (if_range && strcmp(if_range, etag) != 0))
		range = NULL;   /* ranges only over bytes that cannot change */
	rr = parse_range(range, e->size, &first, &last);
	if (rr < 0) {
		close(e->fd);
		r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		snprintf(crange, sizeof crange, "bytes */%llu", (unsigned long long)e->size);
		if (r) {
			MHD_add_response_header(r, "Content-Range", crange);
			MHD_add_response_header(r, "Cache-Control", "no-store");
		}
		return queue(x->conn, MHD_HTTP_RANGE_NOT_SATISFIABLE, r);
	}
	if (rr == 0) {
		first = 0;
		last = e->size ? e->size - 1 : 0;
	} else {
		status = MHD_HTTP_PARTIAL_CONTENT;
		snprintf(crange, sizeof crange, "bytes %llu-%llu/%llu", (unsigned long long)first,
		         (unsigned long long)last, (unsigned long long)e->size);
	}
	r = MHD_create_response_from_fd_at_offset64(e->size ? last - first + 1 : 0, e->fd, first);
	if (r == NULL) {
		close(e->fd);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", content_type(&x->req));
	set_cache_control(r, x, e);
	if (x->req.immutable) {
		MHD_add_response_header(r, "ETag", etag);
		MHD_add_response_header(r, "Accept-Ranges", "bytes");
	}
	if (status == MHD_HTTP_PARTIAL_CONTENT)
		MHD_add_response_header(r, "Content-Range", crange);
	MHD_add_response_header(r, "X-Goproxyd-Cache", outcome_name[o]);
	return queue(x->conn, status, r);
}

/* A seeded cache may hold versions but no @v/list: answer one built from
 * the cached .info files rather than fail. */
static enum MHD_Result send_built_list(struct ctx *x, enum outcome o)
{
	struct MHD_Response *r;
	char *body;
	size_t len;

	if (cache_list_from_infos(x->req.esc_path, &body, &len) < 0)
		return MHD_NO;
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", content_type(&x->req));
	MHD_add_response_header(r, "Cache-Control", "public, max-age=0");
	MHD_add_response_header(r, "X-Goproxyd-Cache", outcome_name[o]);
	return queue(x->conn, MHD_HTTP_OK, r);
}

/* --- the request path ------------------------------------------------------ */

static void hold(void *arg)
{
	struct ctx *x = arg;

	MHD_suspend_connection(x->conn);
}

static void wake(struct waiter *w)
{
	struct ctx *x = (struct ctx *)((char *)w - offsetof(struct ctx, w));

	MHD_resume_connection(x->conn);
}

/* Nothing usable came from upstream: a stale copy, a built list, or 404
 * with no-store so the client's ",direct" fallback still runs. */
static enum MHD_Result answer_failed(struct ctx *x, const char *reason)
{
	struct cache_entry e;

	if (cache_open(x->key, &e) == 0) {
		log_warn("serving stale %s: upstream failed: %s", x->key, reason);
		return send_file(x, &e, x->req.immutable ? HIT : STALE);
	}
	if (x->req.kind == REQ_LIST && send_built_list(x, STALE) == MHD_YES)
		return MHD_YES;
	return send_error(x->conn, MHD_HTTP_NOT_FOUND, "upstream error: %s", reason);
}

static enum MHD_Result answer_fetched(struct ctx *x)
{
	struct fetch_result *res = &x->w.result;
	struct cache_entry e;

	x->waiting = false;
	switch (res->status) {
	case FETCH_OK:
		e.fd = res->fd;
		e.size = res->size;
		e.mtime = res->mtime;
		return send_file(x, &e, MISS);
	case FETCH_NOTFOUND:
		return send_error(x->conn, MHD_HTTP_NOT_FOUND, "not found: %s", res->reason);
	case FETCH_FAILED:
		break;
	}
	return answer_failed(x, res->reason);
}

static enum MHD_Result answer_offline_miss(struct ctx *x)
{
	if (x->req.kind == REQ_LIST && send_built_list(x, HIT) == MHD_YES)
		return MHD_YES;
	return send_error(x->conn, MHD_HTTP_NOT_FOUND,
	                  "not found: %s is not cached and goproxyd runs with -proxy off", x->req.path);
}

static bool private_module(const struct request *r)
{
	return config_match_patterns(cfg->exclude, cfg->n_exclude, r->path) ||
	       (r->kind == REQ_SUMDB && config_match_patterns(cfg->nosum, cfg->n_nosum, r->path));
}

/* Binds a checksum-database request to a configured database (the root
 * form means the first one).  Only configured names are ever proxied, and
 * /supported is answered here: 200 for those, 404 for the rest. */
static unsigned resolve_sumdb(struct request *r, const char **reason)
{
	size_t i;

	if (r->sumdb_name[0] == '\0' && cfg->n_sumdbs > 0)
		snprintf(r->sumdb_name, sizeof r->sumdb_name, "%s", cfg->sumdbs[0].name);
	for (i = 0; i < cfg->n_sumdbs; i++)
		if (strcmp(cfg->sumdbs[i].name, r->sumdb_name) == 0)
			break;
	if (i == cfg->n_sumdbs) {
		*reason = "not found: this proxy does not serve that checksum database";
		return MHD_HTTP_NOT_FOUND;
	}
	r->sumdb_db = (unsigned)i;
	if (r->sumdb_kind == SUMDB_LOOKUP && private_module(r)) {
		*reason = "not found: lookups of private modules are not forwarded (-exclude, -noSumPatterns)";
		return MHD_HTTP_NOT_FOUND;
	}
	return 0;
}

static enum MHD_Result send_supported(struct ctx *x)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);

	if (r) {
		MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
		MHD_add_response_header(r, "Cache-Control", "no-store");
	}
	return queue(x->conn, MHD_HTTP_OK, r);
}

static enum MHD_Result answer(struct ctx *x, const char *url, const char *method)
{
	const char *reason;
	char neg[512];
	struct cache_entry e;
	int st;

	x->head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (!x->head && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return send_error(x->conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		                  "method %s not allowed: goproxyd answers GET and HEAD", method);
	if ((st = route_parse(url, &x->req, &reason)) != 0)
		return send_error(x->conn, (unsigned)st, "%s", reason);
	if (x->req.kind == REQ_SUMDB) {
		if ((st = (int)resolve_sumdb(&x->req, &reason)) != 0)
			return send_error(x->conn, (unsigned)st, "%s", reason);
		if (x->req.sumdb_kind == SUMDB_SUPPORTED)
			return send_supported(x);
	} else if (private_module(&x->req))
		return send_error(x->conn, MHD_HTTP_NOT_FOUND,
		                  "not found: %s is excluded by this proxy (-exclude); fetch it directly",
		                  x->req.path);
	if (cache_key(&x->req, x->key, sizeof x->key) < 0)
		return send_error(x->conn, MHD_HTTP_BAD_REQUEST, "module path too long");

	if (cache_open(x->key, &e) == 0) {
		if (x->req.immutable || cfg->offline || cache_age_ms(&e) < cfg->cache_expire_ms)
			return send_file(x, &e, HIT);
		close(e.fd);   /* stale: refresh it, and fall back to it on failure */
	}
	if (cfg->offline)
		return answer_offline_miss(x);
	if (x->req.immutable && negcache_get(x->key, neg, sizeof neg))
		return send_error(x->conn, MHD_HTTP_NOT_FOUND, "not found: %s", neg);

	x->waiting = true;
	x->w.wake = wake;
	flight_join(&x->req, x->key, &x->w, hold, x);
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **req_cls)
{
	struct ctx *x = *req_cls;

	(void)cls;
	(void)version;
	(void)upload;
	if (x == NULL) {
		/* Answering on the first call makes libmicrohttpd close the
		 * connection; waiting for the second keeps it alive. */
		if ((x = calloc(1, sizeof *x)) == NULL)
			return MHD_NO;
		x->conn = c;
		*req_cls = x;
		atomic_fetch_add(&inflight, 1);
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;   /* no endpoint takes a body: discard it */
		return MHD_YES;
	}
	if (x->waiting)
		return answer_fetched(x);
	return answer(x, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct ctx *x = *req_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (x == NULL)
		return;
	free(x);
	*req_cls = NULL;
	atomic_fetch_sub(&inflight, 1);
}

/* The URL reaches route_parse() undecoded: it decodes exactly once, and
 * must see "%00" and friends to reject them. */
static size_t keep_raw_url(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof buf, fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_warn("libmicrohttpd: %s", buf);
}

int server_start(const struct config *c, int listen_fd)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = c->threads > 0 ? (unsigned)c->threads : (unsigned)(cpus > 0 ? cpus : 1);
	unsigned timeout = (unsigned)((c->client_timeout_ms + 999) / 1000);

	cfg = c;
	daemon_ = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	        MHD_USE_ERROR_LOG,
	    0, NULL, NULL, on_request, NULL,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,   /* first, to catch every message */
	    MHD_OPTION_LISTEN_SOCKET, listen_fd,
	    MHD_OPTION_THREAD_POOL_SIZE, threads,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_conns,
	    MHD_OPTION_CONNECTION_TIMEOUT, timeout ? timeout : 1u,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)c->max_header_bytes * 2,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    MHD_OPTION_UNESCAPE_CALLBACK, keep_raw_url, NULL,
	    MHD_OPTION_END);
	return daemon_ ? 0 : -1;
}

void server_quiesce(void)
{
	MHD_socket s = MHD_quiesce_daemon(daemon_);

	if (s != MHD_INVALID_SOCKET)
		close(s);
}

unsigned server_inflight(void)
{
	return atomic_load(&inflight);
}

void server_stop(void)
{
	MHD_stop_daemon(daemon_);
	daemon_ = NULL;
}
