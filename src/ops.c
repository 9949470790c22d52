/*
 * ops: see include/ops.h.  Everything here runs on the serving threads
 * (libmicrohttpd's), except ops_init() on the main thread.
 */
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "cache.h"
#include "metrics.h"
#include "ops.h"
#include "respond.h"
#include "fetch.h"
#include "s3.h"

static const struct config *cfg;

void ops_init(const struct config *c)
{
	cfg = c;
}

bool ops_authorized(struct MHD_Connection *c, const struct request *req)
{
	char *pass = NULL, *user;
	bool ok;

	if (!auth_enabled() || req->op == OP_HEALTHZ || req->op == OP_READYZ)
		return true;
	user = MHD_basic_auth_get_username_password(c, &pass);
	ok = auth_check(user, pass);
	if (pass) {
		explicit_bzero(pass, strlen(pass));
		MHD_free(pass);
	}
	if (user)
		MHD_free(user);
	return ok;
}

enum MHD_Result ops_unauthorized(struct reply *rp)
{
	static const char body[] = "authentication required\n";
	struct MHD_Response *r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body,
	                                                         MHD_RESPMEM_PERSISTENT);

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", TEXT_PLAIN);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "WWW-Authenticate", "Basic realm=\"goproxyd\", charset=\"UTF-8\"");
	return respond_queue(rp, MHD_HTTP_UNAUTHORIZED, r, sizeof body - 1);
}

/* Ready: the cache directory takes writes, and the upstreams answered the
 * last time they were asked (or nothing is fetched). */
static enum MHD_Result answer_readyz(struct reply *rp)
{
	const char *why = cache_unwritable();

	if (why)
		return respond_error(rp, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: cache directory %s", why);
	if ((why = s3_unready()) != NULL)
		return respond_error(rp, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: %s", why);
	if (!cfg->offline && !fetch_reachable())
		return respond_error(rp, MHD_HTTP_SERVICE_UNAVAILABLE,
		                     "not ready: no upstream answered the last attempt");
	return respond_text(rp, MHD_HTTP_OK, TEXT_PLAIN, "ready\n", 6, MHD_RESPMEM_PERSISTENT);
}

enum MHD_Result ops_answer(struct reply *rp, enum req_op op)
{
	char *body;
	size_t len;

	switch (op) {
	case OP_HEALTHZ:
		return respond_text(rp, MHD_HTTP_OK, TEXT_PLAIN, "ok\n", 3, MHD_RESPMEM_PERSISTENT);
	case OP_READYZ:
		return answer_readyz(rp);
	case OP_METRICS:
	case OP_NONE:
		break;
	}
	if ((body = metrics_render(&len)) == NULL)
		return MHD_NO;
	return respond_text(rp, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len,
	                    MHD_RESPMEM_MUST_FREE);
}
