/*
 * respond: see include/respond.h.  Everything here runs on the serving
 * threads (libmicrohttpd's), except respond_init() on the main thread.
 */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "clock.h"
#include "hot.h"
#include "metrics.h"
#include "range.h"
#include "respond.h"
#include "route.h"

#define IMMUTABLE_CC "public, max-age=31536000, immutable"
#define SMALL_BODY (32 * 1024)   /* bodies up to this are sent from memory */

static const char *const outcome_name[MC_COUNT] = { "hit", "miss", "stale" };
static const struct config *cfg;

void respond_init(const struct config *c)
{
	cfg = c;
}

enum MHD_Result respond_queue(struct reply *rp, unsigned status, struct MHD_Response *r,
                              uint64_t bytes)
{
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;   /* out of memory: MHD closes the connection */
	rp->rp_status = status;
	rp->rp_bytes = rp->rp_head ? 0 : bytes;   /* a HEAD answer carries no body */
	ret = MHD_queue_response(rp->rp_conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result respond_error(struct reply *rp, unsigned status, const char *fmt, ...)
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
	MHD_add_response_header(r, "Content-Type", TEXT_PLAIN);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	return respond_queue(rp, status, r, (uint64_t)n);
}

/* "HTTP/1.1 <status> <phrase>" and the headers of a one-line error, with
 * Connection: close, then the body unless rp is a HEAD; its length. */
static int direct_answer(const struct reply *rp, unsigned status, const char *body, int n,
                         char *out, size_t outsz)
{
	char date[64];
	struct tm tm;
	time_t now = time(NULL);

	/* Goproxyd never calls setlocale(): these are the C locale's names. */
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
	return snprintf(out, outsz,
	                "HTTP/1.1 %u %s\r\nDate: %s\r\nConnection: close\r\n"
	                "Content-Type: " TEXT_PLAIN "\r\nCache-Control: no-store\r\n"
	                "Content-Length: %d\r\n\r\n%s",
	                status, MHD_get_reason_phrase_for(status), date, n, rp->rp_head ? "" : body);
}

bool respond_error_direct(struct reply *rp, unsigned status, const char *fmt, ...)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(rp->rp_conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	char body[512], out[1024];
	va_list ap;
	int n, len;
	ssize_t sent;

	if (cfg->tls_cert != NULL || ci == NULL)
		return false;
	va_start(ap, fmt);
	n = vsnprintf(body, sizeof body - 1, fmt, ap);
	va_end(ap);
	n = n < 0 ? 0 : n > (int)sizeof body - 2 ? (int)sizeof body - 2 : n;
	body[n++] = '\n';
	body[n] = '\0';
	len = direct_answer(rp, status, body, n, out, sizeof out);
	if (len <= 0 || (size_t)len >= sizeof out)
		return false;
	sent = send(ci->connect_fd, out, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (sent <= 0)
		return false;
	shutdown(ci->connect_fd, SHUT_WR);   /* nothing of libmicrohttpd's follows */
	rp->rp_status = status;
	rp->rp_bytes = rp->rp_head ? 0 : (uint64_t)n;
	return true;
}

enum MHD_Result respond_text(struct reply *rp, unsigned status, const char *type, char *body,
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
	return respond_queue(rp, status, r, len);
}

/* --- files ------------------------------------------------------------------ */

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
	return TEXT_PLAIN;
}

/* What a client may cache: immutable files for a year, mutable answers for
 * what is left of their freshness. */
static void set_cache_control(struct MHD_Response *r, const struct request *req,
                              const struct cache_entry *e)
{
	char cc[64];
	int64_t left = cfg->cache_expire_ms - cache_age_ms(e);

	if (req->immutable) {
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

/*
 * The body of a file answer; takes ownership of fd.  Large bodies go out
 * with sendfile from the fd and are never read into memory.  Small ones
 * (every .info, .mod and list, most zips) are read into one buffer:
 * libmicrohttpd then sends header and body in one segment, where an fd
 * response costs a send for the header and a sendfile for the body, two
 * segments and twice the ACKs.  That halves the packets per hit and
 * roughly doubles the small-file rate (docs/benchmarks.md).
 */
static struct MHD_Response *body_response(const struct reply *rp, int fd, uint64_t off,
                                          uint64_t len)
{
	struct MHD_Response *r;
	char *buf;

	if (len <= SMALL_BODY && !rp->rp_head && (buf = malloc(len ? len : 1)) != NULL) {
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
static int64_t hot_deadline(const struct request *req, const struct cache_entry *e)
{
	int64_t now = monotonic_ms(), left = cfg->cache_expire_ms - cache_age_ms(e);

	if (req->immutable)
		return 0;
	if (cfg->offline || left > 1000)
		left = 1000;
	return now + (left > 0 ? left : 0);
}

/* 416, for a range past the end of e (whose fd is closed here). */
static enum MHD_Result unsatisfiable(struct reply *rp, struct cache_entry *e)
{
	struct MHD_Response *r;
	char crange[96];

	close(e->ce_fd);
	r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	snprintf(crange, sizeof crange, "bytes */%llu", (unsigned long long)e->size);
	if (r) {
		MHD_add_response_header(r, "Content-Range", crange);
		MHD_add_response_header(r, "Cache-Control", "no-store");
	}
	return respond_queue(rp, MHD_HTTP_RANGE_NOT_SATISFIABLE, r, 0);
}

enum MHD_Result respond_file(struct reply *rp, const struct request *req, struct cache_entry *e,
                             enum metric_cache o, const char *keep_key)
{
	const char *range = MHD_lookup_connection_value(rp->rp_conn, MHD_HEADER_KIND, "Range");
	const char *if_range = MHD_lookup_connection_value(rp->rp_conn, MHD_HEADER_KIND, "If-Range");
	char etag[64], crange[96];
	uint64_t first = 0, last = 0;
	unsigned status = MHD_HTTP_OK;
	struct MHD_Response *r;
	int rr;

	make_etag(etag, sizeof etag, e);
	if (!req->immutable || (if_range && strcmp(if_range, etag) != 0))
		range = NULL;   /* ranges only over bytes that cannot change */
	rr = range_parse(range, e->size, &first, &last);
	if (rr < 0)
		return unsatisfiable(rp, e);
	if (rr == 0) {
		first = 0;
		last = e->size ? e->size - 1 : 0;
	} else {
		status = MHD_HTTP_PARTIAL_CONTENT;
		snprintf(crange, sizeof crange, "bytes %llu-%llu/%llu", (unsigned long long)first,
		         (unsigned long long)last, (unsigned long long)e->size);
	}
	r = body_response(rp, e->ce_fd, first, e->size ? last - first + 1 : 0);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", content_type(req));
	set_cache_control(r, req, e);
	if (req->immutable) {
		MHD_add_response_header(r, "ETag", etag);
		MHD_add_response_header(r, "Accept-Ranges", "bytes");
	}
	if (status == MHD_HTTP_PARTIAL_CONTENT)
		MHD_add_response_header(r, "Content-Range", crange);
	MHD_add_response_header(r, "X-Goproxyd-Cache", outcome_name[o]);
	rp->rp_outcome = outcome_name[o];
	metrics_cache(o);
	if (keep_key && status == MHD_HTTP_OK && !rp->rp_head && e->size <= SMALL_BODY) {
		enum MHD_Result ret;

		rp->rp_status = status;
		rp->rp_bytes = e->size;
		ret = MHD_queue_response(rp->rp_conn, status, r);
		if (!hot_put(keep_key, e, r, hot_deadline(req, e)))   /* kept: the table holds our reference */
			MHD_destroy_response(r);
		return ret;
	}
	return respond_queue(rp, status, r, e->size ? last - first + 1 : 0);
}

bool respond_hot(struct reply *rp, const char *key)
{
	uint64_t size;

	if (MHD_lookup_connection_value(rp->rp_conn, MHD_HEADER_KIND, "Range"))
		return false;
	if (!hot_queue(key, rp->rp_conn, &size))
		return false;
	rp->rp_status = MHD_HTTP_OK;
	rp->rp_bytes = rp->rp_head ? 0 : size;
	rp->rp_outcome = outcome_name[MC_HIT];
	metrics_cache(MC_HIT);
	return true;
}

enum MHD_Result respond_built(struct reply *rp, const struct request *req,
                                   enum metric_cache o)
{
	struct MHD_Response *r;
	char *body;
	size_t len;

	if ((req->kind == REQ_LATEST ? cache_latest_from_infos(req->esc_path, &body, &len)
	                             : cache_list_from_infos(req->esc_path, &body, &len)) < 0)
		return MHD_NO;
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", content_type(req));
	MHD_add_response_header(r, "Cache-Control", "public, max-age=0");
	MHD_add_response_header(r, "X-Goproxyd-Cache", outcome_name[o]);
	rp->rp_outcome = outcome_name[o];
	metrics_cache(o);
	return respond_queue(rp, MHD_HTTP_OK, r, len);
}
