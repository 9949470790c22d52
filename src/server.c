/*
 * server: see include/server.h.  The daemon glue (listening sockets, TLS,
 * connection limits, the access log) and the request path: route ->
 * cache -> flight.  Responses are built by respond.c, the operational
 * endpoints and basic auth answered by ops.c.
 *
 * server_start/quiesce/stop run on the main thread; serve() and the
 * libmicrohttpd callbacks (on_request and below) on the serving threads;
 * wake() on the thread that ends a fetch (flight.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "clients.h"
#include "clock.h"
#include "fetch.h"
#include "flight.h"
#include "gc.h"
#include "hot.h"
#include "log.h"
#include "metrics.h"
#include "ops.h"
#include "respond.h"
#include "route.h"
#include "server.h"
#include "warm.h"

/* A request waiting for a fetch: what it asked for, and how to wake it. */
struct pending {
	struct waiter w;
	struct ctx *x;
	struct serving *sv;          /* the thread serving x: wake() nudges it */
	struct request req;
};

/* One request's state, from its first access-handler call to completion.
 * It stays small, because every open connection holds one: the routed
 * request (over 2 KiB) lives on answer()'s stack, or in a pending while
 * the request waits for a fetch. */
struct ctx {
	struct reply rp;             /* the connection, and what was answered */
	struct request *req;         /* while being answered, else NULL */
	struct pending *pending;     /* while waiting for a fetch, else NULL */
	/* For metrics and the access log. */
	enum metric_endpoint endpoint;   /* ME_OTHER until routed */
	int64_t start_us;
	char method[16];
	char *url;               /* a copy, only when the access log is on */
};

static const struct config *cfg;
/* A serving thread and the daemon it runs.  sv_want is how the main
 * thread asks it to stop accepting or to stop: it sets the word, then
 * writes sv_wake_fd; every libmicrohttpd call on the daemon but
 * MHD_start_daemon() and MHD_resume_connection() is made by the thread. */
enum serving_want { SV_RUN, SV_QUIESCE, SV_STOP };
struct serving {
	struct MHD_Daemon *sv_daemon;
	pthread_t sv_thread;
	int sv_wake_fd;               /* an eventfd */
	_Atomic int sv_want;          /* enum serving_want */
};
#define MAX_DAEMONS 64
static struct serving servings[MAX_DAEMONS];
static unsigned n_servings;
static _Thread_local struct serving *this_serving;   /* on a serving thread */

/* Makes sv's thread run its daemon once more.  Any thread. */
static void nudge(struct serving *sv)
{
	uint64_t one = 1;

	if (write(sv->sv_wake_fd, &one, sizeof one) < 0)
		log_error("serving thread: eventfd: %s", strerror(errno));
}

static atomic_uint inflight;
static atomic_uint open_conns;
static atomic_ullong refused_conns;

/* --- the request path ------------------------------------------------------ */

static void hold(void *arg)
{
	struct ctx *x = arg;

	MHD_suspend_connection(x->rp.rp_conn);
}

static void wake(struct waiter *w)
{
	struct pending *p = (struct pending *)((char *)w - offsetof(struct pending, w));

	MHD_resume_connection(p->x->rp.rp_conn);
	nudge(p->sv);   /* outside its own thread, the daemon is not woken by resuming */
}

/* Nothing usable came from upstream: a stale copy, a built list, or 404
 * with no-store so the client's ",direct" fallback still runs. */
static enum MHD_Result answer_failed(struct ctx *x, const char *reason)
{
	char key[CACHE_KEY_MAX];
	struct cache_entry e;

	if (cache_key(x->req, key, sizeof key) == 0 && cache_open(key, &e) == 0) {
		log_warn("serving stale %s: upstream failed: %s", key, reason);
		return respond_file(&x->rp, x->req, &e, x->req->immutable ? MC_HIT : MC_STALE, NULL);
	}
	if (x->req->kind == REQ_LIST && respond_built(&x->rp, x->req, MC_STALE) == MHD_YES)
		return MHD_YES;
	return respond_error(&x->rp, MHD_HTTP_NOT_FOUND, "upstream error: %s", reason);
}

static enum MHD_Result answer_result(struct ctx *x, struct fetch_result *res)
{
	struct cache_entry e;

	switch (res->status) {
	case FETCH_OK:
		e.ce_fd = res->res_fd;
		e.ino = 0;   /* not kept in hot.c, which is only for hits */
		e.size = res->size;
		e.mtime = res->mtime;
		return respond_file(&x->rp, x->req, &e, MC_MISS, NULL);
	case FETCH_NOTFOUND:
		return respond_error(&x->rp, MHD_HTTP_NOT_FOUND, "not found: %s", res->reason);
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

	if ((x->req->kind == REQ_LIST || x->req->kind == REQ_LATEST) &&
	    respond_built(&x->rp, x->req, cached_only ? MC_STALE : MC_HIT) == MHD_YES)
		return MHD_YES;
	return respond_error(&x->rp, MHD_HTTP_NOT_FOUND, "not found: %s is not cached and %s",
	                     x->req->path, cached_only ? "was asked for under /cached-only/"
	                                               : "goproxyd runs with -proxy off");
}

/* A lookup that must not reach a checksum database: a private module's
 * (-exclude), a -noSumPatterns one's, or a refused one's (-deny). */
static bool private_lookup(const struct request *r)
{
	return config_excluded(cfg, r->path) || config_denied(cfg, r->path) ||
	       config_match_patterns(cfg->nosum, cfg->n_nosum, r->path);
}

bool server_refuses(const struct request *r)
{
	if (r->kind == REQ_SUMDB)
		return r->sumdb_kind == SUMDB_LOOKUP && private_lookup(r);
	return config_excluded(cfg, r->path) || config_denied(cfg, r->path);
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
	if (r->sumdb_kind == SUMDB_LOOKUP && private_lookup(r)) {
		*reason = "not found: lookups of private modules are not forwarded (-exclude, -deny, -noSumPatterns)";
		return MHD_HTTP_NOT_FOUND;
	}
	return 0;
}

/* Suspends the request until the fetch of key ends (see answer_fetched()). */
static enum MHD_Result wait_for_fetch(struct ctx *x, const char *key)
{
	struct pending *p = malloc(sizeof *p);
	struct flight *f;

	if (p == NULL)
		return respond_error(&x->rp, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
	p->x = x;
	p->sv = this_serving;
	p->req = *x->req;
	p->w.wake = wake;
	x->pending = p;
	x->req = &p->req;
	if ((f = flight_join(&p->req, key, &p->w, hold, x)) != NULL)
		fetch_submit(f);
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

/* A routed file request: from the cache when it can be, else suspended
 * behind its fetch. */
static enum MHD_Result answer_file(struct ctx *x)
{
	struct request *req = x->req;
	char key[CACHE_KEY_MAX], neg[512];
	struct cache_entry e;
	enum MHD_Result ret;

	if (cache_key(req, key, sizeof key) < 0)
		return respond_error(&x->rp, MHD_HTTP_BAD_REQUEST, "module path too long");
	if (respond_hot(&x->rp, key)) {
		gc_note_use(key);
		warm_request(req, key);
		return MHD_YES;
	}
	if (cache_open(key, &e) == 0) {
		if (req->immutable || cfg->offline || cache_age_ms(&e) < cfg->cache_expire_ms) {
			gc_note_use(key);
			warm_request(req, key);
			return respond_file(&x->rp, req, &e, MC_HIT, key);
		}
		if (req->cached_only)
			return respond_file(&x->rp, req, &e, MC_STALE, NULL);
		close(e.ce_fd);   /* stale: refresh it, and fall back to it on failure */
	}
	if (cfg->offline || req->cached_only)
		return answer_offline_miss(x);
	if (req->immutable && negcache_get(key, neg, sizeof neg))
		return respond_error(&x->rp, MHD_HTTP_NOT_FOUND, "not found: %s", neg);
	ret = wait_for_fetch(x, key);
	warm_request(req, key);   /* after: the client's own fetch is queued first */
	return ret;
}

static enum MHD_Result route_and_answer(struct ctx *x, const char *url, const char *method)
{
	struct reply *rp = &x->rp;
	struct request *req = x->req;
	const char *reason;
	int st;

	rp->rp_head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (!rp->rp_head && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return respond_error(rp, MHD_HTTP_METHOD_NOT_ALLOWED,
		                     "method %s not allowed: goproxyd answers GET and HEAD", method);
	if ((url = under_prefix(url)) == NULL)
		return respond_error(rp, MHD_HTTP_NOT_FOUND, "not found: goproxyd serves paths under %s/",
		                     cfg->path_prefix);
	if ((st = route_parse(url, req, &reason)) != 0)
		return respond_error(rp, (unsigned)st, "%s", reason);
	x->endpoint = metrics_endpoint(req);
	if (!ops_authorized(rp->rp_conn, req))
		return ops_unauthorized(rp);
	if (req->op != OP_NONE)
		return ops_answer(rp, req->op);
	if (req->kind == REQ_SUMDB) {
		if ((st = (int)resolve_sumdb(req, &reason)) != 0)
			return respond_error(rp, (unsigned)st, "%s", reason);
		if (req->sumdb_kind == SUMDB_SUPPORTED)
			return respond_text(rp, MHD_HTTP_OK, TEXT_PLAIN, NULL, 0, MHD_RESPMEM_PERSISTENT);
	} else if (config_denied(cfg, req->path))
		return respond_error(rp, MHD_HTTP_NOT_FOUND, "not found: %s is refused by this proxy (-deny)",
		                     req->path);
	return answer_file(x);
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

/* -maxHeaderBytes, enforced here so that the answer is goproxyd's: 414
 * when the request line alone is over it, else 431.  libmicrohttpd's own
 * limit (its memory pool, 4 KiB more) only catches what is far larger.
 * The answer goes straight to the socket (respond_error_direct): a
 * request this large may leave libmicrohttpd no memory to build one.
 * Under TLS it is queued as usual.  *ret: what on_request returns. */
static bool too_large(struct ctx *x, const char *url, const char *method, const char *version,
                      enum MHD_Result *ret)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(x->rp.rp_conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	bool line = strlen(method) + strlen(url) + strlen(version) + 4 > cfg->max_header_bytes;
	unsigned status = line ? MHD_HTTP_URI_TOO_LONG : MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE;
	const char *what = line ? "request line" : "request line and headers";

	if (ci == NULL || ci->header_size <= cfg->max_header_bytes)
		return false;
	x->rp.rp_head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;   /* no body then */
	if (respond_error_direct(&x->rp, status, "%s longer than %zu bytes (-maxHeaderBytes)",
	                         what, cfg->max_header_bytes))
		*ret = MHD_NO;   /* answered: libmicrohttpd closes the connection */
	else
		*ret = respond_error(&x->rp, status, "%s longer than %zu bytes (-maxHeaderBytes)",
		                     what, cfg->max_header_bytes);
	return true;
}

/*
 * A request whose Content-Length libmicrohttpd 0.9.75 cannot parse
 * (negative, not a number, 2^64 or more) is answered by the library
 * itself, 400 or 413, before any callback of ours, and it builds that
 * answer's status line and headers twice (it queues the answer while
 * parsing the headers, then goes on as if it had not).  Its log line for
 * the error is the one hook: it comes on the thread serving the
 * connection, before anything is sent.  The connection is known when just
 * one connection of this thread has had its request line parsed (the URI
 * callback) and not yet reached on_request(), as every request at the
 * header checks has; goproxyd's one-line answer then goes out in its
 * place, and the socket is shut for writing so that the library's never
 * does.  Otherwise (several such connections on the thread, or TLS) the
 * library's answer stands.  Each serving thread runs one daemon, so these
 * counts are per thread.
 */
static _Thread_local struct {
	struct MHD_Connection *pc_one;   /* the one connection, if known */
	unsigned pc_n;                    /* connections between line and on_request() */
} parsing;
static char line_seen;   /* the req_cls of a request not yet at on_request() */

static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *c)
{
	(void)cls;
	(void)uri;
	parsing.pc_n++;
	parsing.pc_one = c;
	return &line_seen;
}

/* c's request has left the header checks (or its connection is closing). */
static void line_done(struct MHD_Connection *c)
{
	parsing.pc_n--;
	if (parsing.pc_one == c || parsing.pc_n == 0)
		parsing.pc_one = NULL;
}

/* From mhd_log(): msg is libmicrohttpd's "Error processing request" line. */
static void answer_bad_length(const char *msg)
{
	bool big = strstr(msg, "code is 413") != NULL;
	struct reply rp = { .rp_conn = parsing.pc_one };

	if (parsing.pc_n != 1 || rp.rp_conn == NULL || !strstr(msg, "Content-Length"))
		return;
	respond_error_direct(&rp, big ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST,
	                     big ? "Content-Length too large (goproxyd takes no request body)"
	                         : "bad request: invalid Content-Length");
}

/* The connection's clients.h handle (its socket context). */
static struct client_conn *conn_client(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **req_cls)
{
	struct ctx *x = *req_cls;
	enum MHD_Result ret;

	(void)cls;
	(void)upload;
	if ((void *)x == &line_seen) {
		line_done(c);
		x = NULL;
	}
	if (x == NULL) {
		/* Answering on the first call makes libmicrohttpd close the
		 * connection; waiting for the second keeps it alive. */
		/* Not calloc: every member is set just below.  The ctx is
		 * under 100 bytes; the big buffers (the routed request and
		 * the cache key, over 3 KiB) live on answer()'s and
		 * answer_file()'s stacks, the request then in a pending
		 * while it waits for a fetch. */
		if ((x = malloc(sizeof *x)) == NULL)
			return MHD_NO;
		x->rp.rp_conn = c;
		x->rp.rp_head = false;
		x->rp.rp_status = 0;
		x->rp.rp_bytes = 0;
		x->rp.rp_outcome = "-";
		x->req = NULL;
		x->pending = NULL;
		x->endpoint = ME_OTHER;
		x->start_us = monotonic_us();
		snprintf(x->method, sizeof x->method, "%s", method);
		x->url = accesslog_enabled() ? strdup(url) : NULL;
		*req_cls = x;
		atomic_fetch_add(&inflight, 1);
		clients_headers_done(conn_client(c));
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;   /* no endpoint takes a body: discard it */
		return MHD_YES;
	}
	if (x->pending)
		return answer_fetched(x);
	if (too_large(x, url, method, version, &ret))
		return ret;
	/* RFC 9112 section 3.2: an HTTP/1.1 request without Host is a 400. */
	if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST) == NULL)
		return respond_error(&x->rp, MHD_HTTP_BAD_REQUEST,
		                     "bad request: an HTTP/1.1 request needs a Host header");
	return answer(x, url, method);
}

static void format_addr(const struct sockaddr *sa, char *out, size_t n);

static void log_completed(struct MHD_Connection *c, const struct ctx *x)
{
	int64_t usec = monotonic_us() - x->start_us;
	const union MHD_ConnectionInfo *ci;
	char remote[64] = "-";

	metrics_request(x->endpoint, x->rp.rp_status, x->rp.rp_bytes, usec);
	if (!accesslog_enabled())
		return;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr)
		format_addr(ci->client_addr, remote, sizeof remote);
	accesslog_write(&(struct access_entry){
	    .remote = remote, .method = x->method, .path = x->url ? x->url : "-",
	    .status = x->rp.rp_status, .bytes = x->rp.rp_bytes, .usec = usec,
	    .cache = x->rp.rp_outcome });
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct ctx *x = *req_cls;

	(void)cls;
	(void)toe;
	clients_answered(conn_client(c));   /* the next request's headers are due */
	if ((void *)x == &line_seen) {       /* ended before on_request() */
		line_done(c);
		*req_cls = NULL;
		return;
	}
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

/* -maxConns and -maxConnsPerIP: a connection past a limit is closed at
 * once, rather than left waiting in the kernel's accept queue as
 * libmicrohttpd's own limit would leave it. */
static enum MHD_Result admit(void *cls, const struct sockaddr *addr, socklen_t len)
{
	(void)cls, (void)len;
	if (atomic_load(&open_conns) >= (unsigned)cfg->max_conns) {
		atomic_fetch_add(&refused_conns, 1);
		return MHD_NO;
	}
	return clients_admit(addr) ? MHD_YES : MHD_NO;   /* -maxConnsPerIP */
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
	const union MHD_ConnectionInfo *fd, *sa;

	(void)cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		atomic_fetch_add(&open_conns, 1);
		fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		sa = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		*socket_ctx = fd ? clients_open(fd->connect_fd, sa ? sa->client_addr : NULL) : NULL;
	} else {
		clients_close(*socket_ctx);   /* before libmicrohttpd closes the socket */
		*socket_ctx = NULL;
		atomic_fetch_sub(&open_conns, 1);
	}
}

void server_connections(unsigned *open, uint64_t *refused)
{
	uint64_t per_addr, header_timeouts;

	clients_counts(&per_addr, &header_timeouts);
	*open = atomic_load(&open_conns);
	*refused = atomic_load(&refused_conns) + per_addr;
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
	if (strncmp(buf, "Error processing request (HTTP response code is 4", 49) == 0)
		answer_bad_length(buf);
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
	    /* main() ignores SIGPIPE; without this, a daemon run by threads
	     * of ours copies files with pread() and send() instead of
	     * sendfile(). */
	    MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1,
	    /* admit() enforces -maxConns; this only bounds a burst it lets by. */
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_conns + 16,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
	    MHD_OPTION_CONNECTION_TIMEOUT, timeout ? timeout : 1u,
	    /* The request line and headers, plus room for the answer's headers
	     * (under 512 bytes) and for a request a little over the limit,
	     * which too_large() answers.  Every connection holds this much. */
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)c->max_header_bytes + 4096,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    MHD_OPTION_UNESCAPE_CALLBACK, keep_raw_url, NULL,
	    MHD_OPTION_URI_LOG_CALLBACK, on_request_line, NULL,
	    MHD_OPTION_ARRAY, tls,
	    MHD_OPTION_END);
}

/* A serving thread: waits on the daemon's epoll set and runs the daemon.
 * libmicrohttpd's own epoll thread is not used: in 0.9.75 (Debian 12),
 * when epoll_wait() returns exactly its 128 events it calls it again with
 * the full timeout (up to -clientTimeout) before serving them, so 128 or
 * more busy keep-alive clients on one thread stall until a new event
 * comes (measured: 246 req/s instead of 60,000; test_load.py).  Its poll
 * mode has no such stall, but walks every connection per wake-up: three
 * times the CPU of epoll serving 8 MiB zips to 256 clients
 * (docs/benchmarks.md).  MHD_run() drains the set without waiting. */
static void *serve(void *arg)
{
	struct serving *sv = arg;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(sv->sv_daemon, MHD_DAEMON_INFO_EPOLL_FD);
	struct pollfd fds[2] = { { info->epoll_fd, POLLIN, 0 }, { sv->sv_wake_fd, POLLIN, 0 } };
	bool quiesced = false;

	this_serving = sv;
	pthread_setname_np(pthread_self(), "serve");
	for (;;) {
		int want = atomic_load(&sv->sv_want);
		MHD_UNSIGNED_LONG_LONG left;
		int wait_ms = -1;
		uint64_t n;

		if (want == SV_STOP)
			break;
		if (want == SV_QUIESCE && !quiesced) {
			MHD_socket ls = MHD_quiesce_daemon(sv->sv_daemon);

			if (ls != MHD_INVALID_SOCKET)
				close(ls);
			quiesced = true;
		}
		if (MHD_get_timeout(sv->sv_daemon, &left) == MHD_YES)
			wait_ms = left > INT_MAX ? INT_MAX : (int)left;
		if (poll(fds, 2, wait_ms) < 0 && errno != EINTR) {
			log_error("serving thread: poll: %s", strerror(errno));
			usleep(10 * 1000);   /* ENOMEM: try again rather than stop serving */
		}
		if (fds[1].revents & POLLIN && read(sv->sv_wake_fd, &n, sizeof n) < 0 && errno != EAGAIN)
			log_error("serving thread: eventfd: %s", strerror(errno));
		MHD_run(sv->sv_daemon);
	}
	MHD_stop_daemon(sv->sv_daemon);   /* closes its connections, on this thread */
	return NULL;
}

static void tell(struct serving *sv, enum serving_want want)
{
	atomic_store(&sv->sv_want, want);
	nudge(sv);
}

/* Starts a daemon on fd and the thread that serves it.  fd is the
 * daemon's from then on; on failure it is still the caller's. */
static int start_serving(struct serving *sv, const struct config *c, unsigned flags, int fd)
{
	int err;

	sv->sv_want = SV_RUN;
	if ((sv->sv_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		log_error("serving thread: eventfd: %s", strerror(errno));
		return -1;
	}
	if ((sv->sv_daemon = start_one(c, flags, fd)) == NULL) {
		close(sv->sv_wake_fd);
		return -1;
	}
	if ((err = pthread_create(&sv->sv_thread, NULL, serve, sv)) != 0) {
		log_error("cannot start a serving thread: %s", strerror(err));
		MHD_quiesce_daemon(sv->sv_daemon);   /* so that stopping it leaves fd open */
		MHD_stop_daemon(sv->sv_daemon);
		close(sv->sv_wake_fd);
		return -1;
	}
	return 0;
}

int server_start(const struct config *c, int listen_fd, bool shared)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = c->threads > 0 ? (unsigned)c->threads : (unsigned)(cpus > 0 ? cpus : 1);
	/* No MHD_USE_INTERNAL_POLLING_THREAD: serve() runs each daemon. */
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

	cfg = c;
	respond_init(c);
	ops_init(c);
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
	if (clients_start(c->header_timeout_ms, (unsigned)c->max_conns_per_ip) < 0)
		return -1;
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
		if (start_serving(&servings[n_servings], c, flags, fd) < 0) {
			if (i > 0)
				close(fd);
			return -1;
		}
		n_servings++;
	}
	return 0;
}

void server_quiesce(void)
{
	for (unsigned i = 0; i < n_servings; i++)
		tell(&servings[i], SV_QUIESCE);
}

unsigned server_inflight(void)
{
	return atomic_load(&inflight);
}

void server_stop(void)
{
	for (unsigned i = 0; i < n_servings; i++)
		tell(&servings[i], SV_STOP);
	for (unsigned i = 0; i < n_servings; i++) {
		pthread_join(servings[i].sv_thread, NULL);
		close(servings[i].sv_wake_fd);
	}
	n_servings = 0;
	clients_stop();   /* after every connection has closed */
	hot_clear();
	free(tls_cert);
	free(tls_key);
	tls_cert = tls_key = NULL;
}
