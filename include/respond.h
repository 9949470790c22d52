/*
 * respond: an answer turned into a libmicrohttpd response.  A cached file
 * goes out with its Content-Type, Cache-Control, ETag and Range handling
 * (small bodies from memory, large ones with sendfile, repeated small hits
 * from hot.h); an error as one line of text/plain; an operational answer
 * as a small text body.
 *
 * Contract: each respond_* function that returns an MHD_Result queues at
 * most one response on rp's connection and records its status and body
 * bytes in *rp (a HEAD answer counts 0 bytes); MHD_NO means none was
 * queued (out of memory) and libmicrohttpd closes the connection.  They
 * run on the serving threads and never wait on the network; an fd handed
 * to them is theirs.  respond_init() runs once, before the first request.
 */
#ifndef GOPROXYD_RESPOND_H
#define GOPROXYD_RESPOND_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "config.h"
#include "metrics.h"
#include "route.h"

#define TEXT_PLAIN "text/plain; charset=utf-8"

/* One request's answer: where it goes, and what went. */
struct reply {
	struct MHD_Connection *rp_conn;
	bool rp_head;               /* HEAD: the same headers, no body */
	/* Set when a response is queued; for metrics and the access log. */
	unsigned rp_status;         /* 0 until then */
	uint64_t rp_bytes;          /* body bytes queued */
	const char *rp_outcome;     /* "hit", "miss", "stale"; "-" for no file */
};

void respond_init(const struct config *cfg);

/* Queues r (NULL: out of memory) with status, and drops our reference. */
enum MHD_Result respond_queue(struct reply *rp, unsigned status, struct MHD_Response *r,
                              uint64_t bytes);

/* An error: the reason as a single line of text/plain, which the go
 * command shows to its user, with Cache-Control: no-store (and Allow for
 * 405). */
enum MHD_Result respond_error(struct reply *rp, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same one-line error, with Connection: close, written straight to
 * the connection's socket instead of queued.  For a request whose line
 * and headers filled the connection's libmicrohttpd memory: 0.9.75 builds
 * an answer's headers in that memory, and closes without any answer when
 * they do not fit.  Plain HTTP only: false (nothing written) under TLS or
 * when the socket takes none of it; true when written (a socket that
 * took only part of it has the rest cut off).  The socket is then shut for
 * writing: nothing libmicrohttpd might still send reaches the client, and
 * the caller returns MHD_NO, where it can, so that it closes the
 * connection. */
bool respond_error_direct(struct reply *rp, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* body[0..len) as type, Cache-Control: no-store; with MHD_RESPMEM_MUST_FREE
 * the body is freed in every case. */
enum MHD_Result respond_text(struct reply *rp, unsigned status, const char *type, char *body,
                             size_t len, enum MHD_ResponseMemoryMode mode);

/* The cached file e answering req (e->ce_fd is taken), honouring a Range
 * request over immutable bytes; o is counted and shown in X-Goproxyd-Cache.
 * With keep_key, a whole small body is also kept ready in hot.h. */
enum MHD_Result respond_file(struct reply *rp, const struct request *req, struct cache_entry *e,
                             enum metric_cache o, const char *keep_key);

/* A repeated hit answered from hot.h; false (nothing queued) when key is
 * not kept there or the request has a Range. */
bool respond_hot(struct reply *rp, const char *key);

/* An @v/list (or, for REQ_LATEST, an @latest answer) built from the
 * cached .info files of req's module, for a seeded cache that never
 * fetched one; MHD_NO if there are none. */
enum MHD_Result respond_built(struct reply *rp, const struct request *req,
                                   enum metric_cache o);

#endif
