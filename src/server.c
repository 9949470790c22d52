/* server: see include/server.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "cache.h"
#include "clock.h"
#include "flight.h"
#include "gc.h"
#include "hot.h"
#include "log.h"
#include "metrics.h"
#include "route.h"
#include "server.h"
#include "upstream.h"

#define IMMUTABLE_CC "public, max-age=31536000, immutable"
#define SMALL_BODY (32 * 1024)   /* bodies up to this are sent from memory */

enum outcome { HIT = MC_HIT, MISS = MC_MISS, STALE = MC_STALE };
static const char *const outcome_name[] = { "hit", "miss", "stale" };

/* A request waiting for a fetch: what it asked for, and how to wake it. */
struct pending {
	struct waiter w;
	struct ctx *x;
	struct request req;
};

/* One request's state, from its first access-handler call to completion.
 * It stays small, because every open connection holds one: the routed
 * request (over 2 KiB) lives on answer()'s stack, or in a pending while
 * the request waits for a fetch. */
struct ctx {
	struct MHD_Connection *conn;
	struct request *req;         /* while being answered, else NULL */
	struct pending *pending;     /* while waiting for a fetch, else NULL */
	bool head;
	/* For metrics and the access log. */
	enum metric_endpoint endpoint;   /* ME_OTHER until routed */
	int64_t start_us;
	unsigned status;
	uint64_t bytes;
	const char *outcome;
	char method[16];
	char *url;               /* a copy, only when the access log is on */
};

static const struct config *cfg;
#define MAX_DAEMONS 64
static struct MHD_Daemon *daemons[MAX_DAEMONS];   /* one per serving thread */
static unsigned n_daemons;
static atomic_uint inflight;
static atomic_uint open_conns;
static atomic_ullong refused_conns;

/* --- responses ------------------------------------------------------------ */

static enum MHD_Result queue(struct ctx *x, unsigned status, struct MHD_Response *r, uint64_t bytes)
{
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;   /* out of memory: MHD closes the connection */
	x->status = status;
	x->bytes = x->head ? 0 : bytes;   /* a HEAD answer carries no body */
	ret = MHD_queue_response(x->conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_error(struct ctx *x, unsigned status,
                                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The one place that turns a status and reason into a response: a single
 * line of text/plain, which the go command shows to its user. */
static enum MHD_Result send_error(struct ctx *x, unsigned status,
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
	return queue(x, status, r, (uint64_t)n);
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

	if (x->req->immutable) {
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

/*
 * The body of a file answer; takes ownership of fd.  Large bodies go out
 * with sendfile from the fd and are never read into memory.  Small ones
 * (every .info, .mod and list, most zips) are read into one buffer:
 * libmicrohttpd then sends header and body in one segment, where an fd
 * response costs a send for the header and a sendfile for the body, two
 * segments and twice the ACKs.  That halves the packets per hit and
 * roughly doubles the small-file rate (docs/benchmarks.md).
 */
static struct MHD_Response *body_response(const struct ctx *x, int fd, uint64_t off, uint64_t len)
{
	struct MHD_Response *r;
	char *buf;

	if (len <= SMALL_BODY && !x->head && (buf = malloc(len ? len : 1)) != NULL) {
		if (pread(fd, buf, len, (off_t)off) == (ssize_t)len) {
			close(fd);
			r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
			if (r == NULL)
				free(buf);
			return r;
		}
		free(buf);   /* a short read: let the fd response report it */
	}
	r = MHD_create_response_from_fd_at_offset64(len, fd, off);
	if (r == NULL)
		close(fd);
	return r;
}

/* How long a ready response for e stays right: an immutable file's for as
 * long as the file is there; a mutable one's for a second at most, since
 * its max-age counts down in seconds, and never past its freshness. */
static int64_t hot_deadline(const struct ctx *x, const struct cache_entry *e)
{
	int64_t now = monotonic_ms(), left = cfg->cache_expire_ms - cache_age_ms(e);

	if (x->req->immutable)
		return 0;
	if (cfg->offline || left > 1000)
		left = 1000;
	return now + (left > 0 ? left : 0);
}

/* Serves e (taking ownership of its fd), honouring a Range request.  With
 * keep_key, a whole small body is also kept ready in hot.c for the next hit. */
static enum MHD_Result send_file(struct ctx *x, struct cache_entry *e, enum outcome o,
                                 const char *keep_key)
{
	const char *range = MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, "Range");
	const char *if_range = MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, "If-Range");
	char etag[64], crange[96];
	uint64_t first = 0, last = 0;
	unsigned status = MHD_HTTP_OK;
	struct MHD_Response *r;
	int rr;

	make_etag(etag, sizeof etag, e);
	if (!x->req->immutable || (if_range && strcmp(if_range, etag) != 0))
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
		return queue(x, MHD_HTTP_RANGE_NOT_SATISFIABLE, r, 0);
	}
	if (rr == 0) {
		first = 0;
		last = e->size ? e->size - 1 : 0;
	} else {
		status = MHD_HTTP_PARTIAL_CONTENT;
		snprintf(crange, sizeof crange, "bytes %llu-%llu/%llu", (unsigned long long)first,
		         (unsigned long long)last, (unsigned long long)e->size);
	}
	r = body_response(x, e->fd, first, e->size ? last - first + 1 : 0);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", content_type(x->req));
	set_cache_control(r, x, e);
	if (x->req->immutable) {
		MHD_add_response_header(r, "ETag", etag);
		MHD_add_response_header(r, "Accept-Ranges", "bytes");
	}
	if (status == MHD_HTTP_PARTIAL_CONTENT)
		MHD_add_response_header(r, "Content-Range", crange);
	MHD_add_response_header(r, "X-Goproxyd-Cache", outcome_name[o]);
	x->outcome = outcome_name[o];
	metrics_cache((enum metric_cache)o);
	if (keep_key && status == MHD_HTTP_OK && !x->head && e->size <= SMALL_BODY) {
		enum MHD_Result ret;

		x->status = status;
		x->bytes = e->size;
		ret = MHD_queue_response(x->conn, status, r);
		if (!hot_put(keep_key, e, r, hot_deadline(x, e)))   /* kept: the table holds our reference */
			MHD_destroy_response(r);
		return ret;
	}
	return queue(x, status, r, e->size ? last - first + 1 : 0);
}

/* A repeated hit on a small file, answered from hot.c. */
static bool send_hot(struct ctx *x, const char *key)
{
	uint64_t size;

	if (MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, "Range"))
		return false;
	if (!hot_queue(key, x->conn, &size))
		return false;
	x->status = MHD_HTTP_OK;
	x->bytes = x->head ? 0 : size;
	x->outcome = outcome_name[HIT];
	metrics_cache(MC_HIT);
	gc_note_use(key);
	return true;
}

/* A seeded cache may hold versions but no @v/list: answer one built from
 * the cached .info files rather than fail. */
static enum MHD_Result send_built_list(struct ctx *x, enum outcome o)
{
	struct MHD_Response *r;
	char *body;
	size_t len;

	if (cache_list_from_infos(x->req->esc_path, &body, &len) < 0)
		return MHD_NO;
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", content_type(x->req));
	MHD_add_response_header(r, "Cache-Control", "public, max-age=0");
	MHD_add_response_header(r, "X-Goproxyd-Cache", outcome_name[o]);
	x->outcome = outcome_name[o];
	metrics_cache((enum metric_cache)o);
	return queue(x, MHD_HTTP_OK, r, len);
}

/* --- the request path ------------------------------------------------------ */

static void hold(void *arg)
{
	struct ctx *x = arg;

	MHD_suspend_connection(x->conn);
}

static void wake(struct waiter *w)
{
	struct pending *p = (struct pending *)((char *)w - offsetof(struct pending, w));

	MHD_resume_connection(p->x->conn);
}

/* Nothing usable came from upstream: a stale copy, a built list, or 404
 * with no-store so the client's ",direct" fallback still runs. */
static enum MHD_Result answer_failed(struct ctx *x, const char *reason)
{
	char key[CACHE_KEY_MAX];
	struct cache_entry e;

	if (cache_key(x->req, key, sizeof key) == 0 && cache_open(key, &e) == 0) {
		log_warn("serving stale %s: upstream failed: %s", key, reason);
		return send_file(x, &e, x->req->immutable ? HIT : STALE, NULL);
	}
	if (x->req->kind == REQ_LIST && send_built_list(x, STALE) == MHD_YES)
		return MHD_YES;
	return send_error(x, MHD_HTTP_NOT_FOUND, "upstream error: %s", reason);
}

static enum MHD_Result answer_result(struct ctx *x, struct fetch_result *res)
{
	struct cache_entry e;

	switch (res->status) {
	case FETCH_OK:
		e.fd = res->fd;
		e.ino = 0;   /* not kept in hot.c, which is only for hits */
		e.size = res->size;
		e.mtime = res->mtime;
		return send_file(x, &e, MISS, NULL);
	case FETCH_NOTFOUND:
		return send_error(x, MHD_HTTP_NOT_FOUND, "not found: %s", res->reason);
	case FETCH_FAILED:
		break;
	}
	return answer_failed(x, res->reason);
}

/* Answers a request that waited for a fetch, then lets its pending go. */
static enum MHD_Result answer_fetched(struct ctx *x)
{
	enum MHD_Result ret = answer_result(x, &x->pending->w.result);

	free(x->pending);
	x->pending = NULL;
	x->req = NULL;
	return ret;
}

/* Not in the cache, and nothing may be fetched: with -proxy off, or for a
 * request under /cached-only/. */
static enum MHD_Result answer_offline_miss(struct ctx *x)
{
	bool cached_only = x->req->cached_only;

	if (x->req->kind == REQ_LIST && send_built_list(x, cached_only ? STALE : HIT) == MHD_YES)
		return MHD_YES;
	return send_error(x, MHD_HTTP_NOT_FOUND, "not found: %s is not cached and %s", x->req->path,
	                  cached_only ? "was asked for under /cached-only/" : "goproxyd runs with -proxy off");
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
	return queue(x, MHD_HTTP_OK, r, 0);
}

/* --- operations: /healthz, /readyz, /metrics ------------------------------- */

static enum MHD_Result send_text(struct ctx *x, unsigned status, const char *type, char *body,
                                 size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);

	if (r == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	return queue(x, status, r, len);
}

/* Ready: the cache directory takes writes, and the upstreams answered the
 * last time they were asked (or nothing is fetched). */
static enum MHD_Result answer_readyz(struct ctx *x)
{
	const char *why = cache_unwritable();

	if (why)
		return send_error(x, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: cache directory %s", why);
	if (!cfg->offline && !upstream_reachable())
		return send_error(x, MHD_HTTP_SERVICE_UNAVAILABLE,
		                  "not ready: no upstream answered the last attempt");
	return send_text(x, MHD_HTTP_OK, "text/plain; charset=utf-8", "ready\n", 6,
	                 MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result answer_ops(struct ctx *x)
{
	char *body;
	size_t len;

	switch (x->req->op) {
	case OP_HEALTHZ:
		return send_text(x, MHD_HTTP_OK, "text/plain; charset=utf-8", "ok\n", 3,
		                 MHD_RESPMEM_PERSISTENT);
	case OP_READYZ:
		return answer_readyz(x);
	case OP_METRICS:
	case OP_NONE:
		break;
	}
	if ((body = metrics_render(&len)) == NULL)
		return MHD_NO;
	return send_text(x, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len,
	                 MHD_RESPMEM_MUST_FREE);
}

/* With -authFile, everything but the health probes needs a user. */
static bool authorized(struct ctx *x)
{
	char *pass = NULL, *user;
	bool ok;

	if (!auth_enabled() || x->req->op == OP_HEALTHZ || x->req->op == OP_READYZ)
		return true;
	user = MHD_basic_auth_get_username_password(x->conn, &pass);
	ok = auth_check(user, pass);
	if (pass) {
		explicit_bzero(pass, strlen(pass));
		MHD_free(pass);
	}
	if (user)
		MHD_free(user);
	return ok;
}

static enum MHD_Result send_unauthorized(struct ctx *x)
{
	static const char body[] = "authentication required\n";
	struct MHD_Response *r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body,
	                                                         MHD_RESPMEM_PERSISTENT);

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "WWW-Authenticate", "Basic realm=\"goproxyd\", charset=\"UTF-8\"");
	return queue(x, MHD_HTTP_UNAUTHORIZED, r, sizeof body - 1);
}

/* Suspends the request until the fetch of key ends (see answer_fetched()). */
static enum MHD_Result wait_for_fetch(struct ctx *x, const char *key)
{
	struct pending *p = malloc(sizeof *p);

	if (p == NULL)
		return send_error(x, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
	p->x = x;
	p->req = *x->req;
	p->w.wake = wake;
	x->pending = p;
	x->req = &p->req;
	flight_join(&p->req, key, &p->w, hold, x);
	return MHD_YES;
}

/* The part of url after -pathPrefix, or NULL when url is not under it. */
static const char *under_prefix(const char *url)
{
	size_t n;

	if (cfg->path_prefix == NULL)
		return url;
	n = strlen(cfg->path_prefix);
	return strncmp(url, cfg->path_prefix, n) == 0 && url[n] == '/' ? url + n : NULL;
}

static enum MHD_Result route_and_answer(struct ctx *x, const char *url, const char *method)
{
	char key[CACHE_KEY_MAX];
	const char *reason;
	char neg[512];
	struct cache_entry e;
	int st;

	x->head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (!x->head && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return send_error(x, MHD_HTTP_METHOD_NOT_ALLOWED,
		                  "method %s not allowed: goproxyd answers GET and HEAD", method);
	if ((url = under_prefix(url)) == NULL)
		return send_error(x, MHD_HTTP_NOT_FOUND, "not found: goproxyd serves paths under %s/",
		                  cfg->path_prefix);
	if ((st = route_parse(url, x->req, &reason)) != 0)
		return send_error(x, (unsigned)st, "%s", reason);
	x->endpoint = metrics_endpoint(x->req);
	if (!authorized(x))
		return send_unauthorized(x);
	if (x->req->op != OP_NONE)
		return answer_ops(x);
	if (x->req->kind == REQ_SUMDB) {
		if ((st = (int)resolve_sumdb(x->req, &reason)) != 0)
			return send_error(x, (unsigned)st, "%s", reason);
		if (x->req->sumdb_kind == SUMDB_SUPPORTED)
			return send_supported(x);
	} else if (private_module(x->req))
		return send_error(x, MHD_HTTP_NOT_FOUND,
		                  "not found: %s is excluded by this proxy (-exclude); fetch it directly",
		                  x->req->path);
	if (cache_key(x->req, key, sizeof key) < 0)
		return send_error(x, MHD_HTTP_BAD_REQUEST, "module path too long");

	if (send_hot(x, key))
		return MHD_YES;
	if (cache_open(key, &e) == 0) {
		if (x->req->immutable || cfg->offline || cache_age_ms(&e) < cfg->cache_expire_ms) {
			gc_note_use(key);
			return send_file(x, &e, HIT, key);
		}
		if (x->req->cached_only)
			return send_file(x, &e, STALE, NULL);
		close(e.fd);   /* stale: refresh it, and fall back to it on failure */
	}
	if (cfg->offline || x->req->cached_only)
		return answer_offline_miss(x);
	if (x->req->immutable && negcache_get(key, neg, sizeof neg))
		return send_error(x, MHD_HTTP_NOT_FOUND, "not found: %s", neg);

	return wait_for_fetch(x, key);
}

/* Routes and answers a request; x->req points at this frame's request
 * until an answer is queued. */
static enum MHD_Result answer(struct ctx *x, const char *url, const char *method)
{
	struct request req;
	enum MHD_Result ret;

	x->req = &req;
	ret = route_and_answer(x, url, method);
	if (x->pending == NULL)
		x->req = NULL;
	return ret;
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
		/* Not calloc: the request and key buffers (about 4 KiB) are
		 * written before they are read, and zeroing them showed in
		 * profiles of small hits. */
		if ((x = malloc(sizeof *x)) == NULL)
			return MHD_NO;
		x->conn = c;
		x->req = NULL;
		x->pending = NULL;
		x->endpoint = ME_OTHER;
		x->head = false;
		x->status = 0;
		x->bytes = 0;
		x->start_us = monotonic_us();
		x->outcome = "-";
		snprintf(x->method, sizeof x->method, "%s", method);
		x->url = accesslog_enabled() ? strdup(url) : NULL;
		*req_cls = x;
		atomic_fetch_add(&inflight, 1);
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;   /* no endpoint takes a body: discard it */
		return MHD_YES;
	}
	if (x->pending)
		return answer_fetched(x);
	return answer(x, url, method);
}

static void format_addr(const struct sockaddr *sa, char *out, size_t n);

static void log_completed(struct MHD_Connection *c, const struct ctx *x)
{
	int64_t usec = monotonic_us() - x->start_us;
	const union MHD_ConnectionInfo *ci;
	char remote[64] = "-";

	metrics_request(x->endpoint, x->status, x->bytes, usec);
	if (!accesslog_enabled())
		return;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr)
		format_addr(ci->client_addr, remote, sizeof remote);
	accesslog_write(&(struct access_entry){
	    .remote = remote, .method = x->method, .path = x->url ? x->url : "-", .status = x->status,
	    .bytes = x->bytes, .usec = usec, .cache = x->outcome });
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct ctx *x = *req_cls;

	(void)cls;
	(void)toe;
	if (x == NULL)
		return;
	log_completed(c, x);
	free(x->pending);
	free(x->url);
	free(x);
	*req_cls = NULL;
	atomic_fetch_sub(&inflight, 1);
}

static void format_addr(const struct sockaddr *sa, char *out, size_t n)
{
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

/* -maxConns: a connection past the limit is closed at once, rather than
 * left waiting in the kernel's accept queue as libmicrohttpd's own limit
 * would leave it. */
static enum MHD_Result admit(void *cls, const struct sockaddr *addr, socklen_t len)
{
	(void)cls, (void)addr, (void)len;
	if (atomic_load(&open_conns) < (unsigned)cfg->max_conns)
		return MHD_YES;
	atomic_fetch_add(&refused_conns, 1);
	return MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
	(void)cls, (void)c, (void)socket_ctx;
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add(&open_conns, 1);
	else
		atomic_fetch_sub(&open_conns, 1);
}

void server_connections(unsigned *open, uint64_t *refused)
{
	*open = atomic_load(&open_conns);
	*refused = atomic_load(&refused_conns);
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

/* A whole PEM file, NUL-terminated, for libmicrohttpd's TLS options. */
static char *read_pem(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	long n;

	if (f == NULL) {
		log_error("cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && n < (1L << 20) &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
		if (fread(buf, 1, (size_t)n, f) == (size_t)n)
			buf[n] = '\0';
		else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	if (buf == NULL)
		log_error("cannot read %s", path);
	return buf;
}

static char *tls_cert, *tls_key;
static struct MHD_OptionItem tls[3] = { { MHD_OPTION_END, 0, NULL } };

/*
 * Another listening socket on listen_fd's address.  Each serving thread is
 * a libmicrohttpd daemon of its own with its own socket, and SO_REUSEPORT
 * lets the kernel spread new connections across them by hash.  In a
 * shared thread pool, whichever thread woke first accepted every pending
 * connection, and one thread often ended up doing all the work.
 */
static int clone_listener(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss, vlen;
	int one = 1, v6only = 0, s;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    (s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return -1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	vlen = sizeof v6only;
	if (ss.ss_family == AF_INET6 &&
	    getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &vlen) == 0)
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
	if (bind(s, (struct sockaddr *)&ss, len) < 0 || listen(s, 1024) < 0) {
		close(s);
		return -1;
	}
	return s;
}

static struct MHD_Daemon *start_one(const struct config *c, unsigned flags, int fd)
{
	unsigned timeout = (unsigned)((c->client_timeout_ms + 999) / 1000);

	return MHD_start_daemon(
	    flags, 0, admit, NULL, on_request, NULL,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,   /* first, to catch every message */
	    MHD_OPTION_LISTEN_SOCKET, fd,
	    /* admit() enforces -maxConns; this only bounds a burst it lets by. */
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_conns + 16,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
	    MHD_OPTION_CONNECTION_TIMEOUT, timeout ? timeout : 1u,
	    /* The request line and headers, plus room for the answer's headers
	     * (under 512 bytes).  Every connection holds this much. */
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)c->max_header_bytes + 2048,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    MHD_OPTION_UNESCAPE_CALLBACK, keep_raw_url, NULL,
	    MHD_OPTION_ARRAY, tls,
	    MHD_OPTION_END);
}

int server_start(const struct config *c, int listen_fd, bool shared)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = c->threads > 0 ? (unsigned)c->threads : (unsigned)(cpus > 0 ? cpus : 1);
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	                 MHD_USE_ERROR_LOG;

	cfg = c;
	if (c->tls_cert) {
		if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
			log_error("-tlsCert: this libmicrohttpd was built without TLS");
			return -1;
		}
		if ((tls_cert = read_pem(c->tls_cert)) == NULL || (tls_key = read_pem(c->tls_key)) == NULL)
			return -1;
		flags |= MHD_USE_TLS;
		tls[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, tls_cert };
		tls[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, tls_key };
	}
	if (threads > MAX_DAEMONS)
		threads = MAX_DAEMONS;
	for (unsigned i = 0; i < threads; i++) {
		/* A dup per daemon: each closes its own when it stops. */
		int fd = i == 0 ? listen_fd
		         : shared ? fcntl(listen_fd, F_DUPFD_CLOEXEC, 0) : clone_listener(listen_fd);

		if (fd < 0) {
			log_warn("serving with %u threads: cannot add a listening socket: %s", i,
			         strerror(errno));
			break;
		}
		if ((daemons[n_daemons] = start_one(c, flags, fd)) == NULL) {
			if (i > 0)
				close(fd);
			return -1;
		}
		n_daemons++;
	}
	return 0;
}

void server_quiesce(void)
{
	for (unsigned i = 0; i < n_daemons; i++) {
		MHD_socket s = MHD_quiesce_daemon(daemons[i]);

		if (s != MHD_INVALID_SOCKET)
			close(s);
	}
}

unsigned server_inflight(void)
{
	return atomic_load(&inflight);
}

void server_stop(void)
{
	for (unsigned i = 0; i < n_daemons; i++)
		MHD_stop_daemon(daemons[i]);
	n_daemons = 0;
	hot_clear();
	free(tls_cert);
	free(tls_key);
	tls_cert = tls_key = NULL;
}
