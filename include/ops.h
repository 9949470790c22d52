/*
 * ops: what goproxyd answers itself rather than from the cache: the
 * operational endpoints (/healthz, /readyz, /metrics), the front page (/,
 * for a client that asks for HTML) and /catalog, and the 401 that
 * -authFile asks of every other request.
 *
 * Contract: /healthz and /readyz are always open (a load balancer's probe
 * has no password); everything else, / and /catalog included, needs a user
 * when -authFile is set.  Answers are sent with Cache-Control: no-store,
 * queued through respond.h: text/plain, except the page (text/html, built
 * by frontpage.h from a snapshot of the config, the metrics, the cache and
 * the catalog index) and /catalog (application/json).  Neither reads the
 * cache directory.  Runs on the serving threads; ops_init() runs once, before
 * the first request.
 */
#ifndef GOPROXYD_OPS_H
#define GOPROXYD_OPS_H

#include <microhttpd.h>
#include <stdbool.h>

#include "config.h"
#include "respond.h"
#include "route.h"

void ops_init(const struct config *cfg);

/* May the client on c ask for req (-authFile basic auth)? */
bool ops_authorized(struct MHD_Connection *c, const struct request *req);
/* 401, asking for basic-auth credentials. */
enum MHD_Result ops_unauthorized(struct reply *rp);

/* Answers an operational endpoint (op != OP_NONE). */
enum MHD_Result ops_answer(struct reply *rp, enum req_op op);

#endif
