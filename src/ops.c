/*
 * ops: see include/ops.h.  Everything here runs on the serving threads
 * (libmicrohttpd's), except ops_init() on the main thread.  The front page
 * and /catalog are gathered here (a snapshot of the config, the metrics,
 * the cache and the catalog index) and rendered by frontpage.c.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "cache.h"
#include "catalog.h"
#include "fetch.h"
#include "frontpage.h"
#include "metrics.h"
#include "ops.h"
#include "respond.h"
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

/* --- the front page and /catalog ------------------------------------------- */

static const char *header(struct reply *rp, const char *name)
{
	return MHD_lookup_connection_value(rp->rp_conn, MHD_HEADER_KIND, name);
}

/* A query parameter, still percent-encoded (server.c keeps escapes). */
static const char *query_arg(struct reply *rp, const char *name)
{
	return MHD_lookup_connection_value(rp->rp_conn, MHD_GET_ARGUMENT_KIND, name);
}

static const char *outcome_name(enum metric_upstream o)
{
	switch (o) {
	case MU_OK: return "ok";
	case MU_NOTFOUND: return "not found";
	case MU_ERROR:
	case MU_COUNT:
		break;
	}
	return "error";
}

static void fill_upstream(struct front_upstream *u, const char *name, int row)
{
	enum metric_upstream o;

	metrics_upstream_last(row, &o, &u->when_s);
	u->name = name;
	u->outcome = u->when_s ? outcome_name(o) : NULL;
}

/* A "direct" entry: the go command's last fetch (a timeout is an error). */
static void fill_direct(struct front_upstream *u, const char *name)
{
	enum metric_direct o;

	metrics_direct_last(&o, &u->when_s);
	u->name = name;
	u->outcome = u->when_s == 0 ? NULL : o == MD_OK ? "ok" : o == MD_NOTFOUND ? "not found" : "error";
}

/* A front end that terminates TLS (docs/frontends.md) says so.  Only the
 * page's text depends on it, and a client that forges it misleads itself. */
static bool forwarded_https(struct reply *rp)
{
	const char *proto = header(rp, "X-Forwarded-Proto");

	return proto != NULL && strcasecmp(proto, "https") == 0;
}

/* How to reach the mirror and what to tell the go command. */
static void fill_usage(struct front_snapshot *s, struct reply *rp)
{
	const char *host = header(rp, MHD_HTTP_HEADER_HOST);
	const struct sumdb_conf *db = cfg->n_sumdbs ? &cfg->sumdbs[0] : NULL;

	s->version = GOPROXYD_VERSION;
	s->now_s = (int64_t)time(NULL);
	s->tls = cfg->tls_cert != NULL || forwarded_https(rp);
	snprintf(s->host, sizeof s->host, "%s", host && *host ? host : "localhost");
	s->prefix = cfg->path_prefix ? cfg->path_prefix : "";
	/* The go command knows sum.golang.org's key; any other needs it. */
	if (db && (strcmp(db->name, "sum.golang.org") == 0 || db->key)) {
		s->sumdb = strcmp(db->name, "sum.golang.org") == 0 ? db->name : db->key;
		s->sumdb_name = db->name;
	}
	s->nosum[0] = (const char *const *)cfg->exclude;
	s->n_nosum[0] = cfg->n_exclude;
	s->nosum[1] = (const char *const *)cfg->nosum;
	s->n_nosum[1] = cfg->n_nosum;
}

static void fill_health(struct front_snapshot *s)
{
	uint64_t cache[MC_COUNT];
	struct catalog_stats st;

	s->offline = cfg->offline;
	for (size_t i = 0; i < cfg->n_upstreams && i < FRONT_MAX_UPSTREAMS; i++, s->n_ups++) {
		if (cfg->upstreams[i].direct)
			fill_direct(&s->ups[i], cfg->upstreams[i].url);
		else
			fill_upstream(&s->ups[i], cfg->upstreams[i].url, (int)i);
	}
	for (size_t i = 0; i < cfg->n_sumdbs && i < FRONT_MAX_SUMDBS; i++, s->n_sumdbs++)
		s->sumdb_names[i] = cfg->sumdbs[i].name;
	fill_upstream(&s->sumdb_health, "", -1);
	s->cache_problem = cache_unwritable();
	cache_usage(&s->files, &s->bytes);
	s->max_bytes = cfg->cache_max_bytes;
	metrics_totals(&s->requests, cache);
	s->hits = cache[MC_HIT];
	s->misses = cache[MC_MISS];
	s->stale = cache[MC_STALE];
	catalog_stats(&st);
	s->versions = st.versions;
	s->modules = st.modules;
	s->index_building = st.building;
	s->index_full = st.full;
}

/* Collects versions from the index into one of the snapshot's arrays. */
struct collect {
	struct front_version *v;
	size_t n, max;
};

static int collect_one(void *arg, const char *esc_path, const char *esc_version, unsigned files,
                       int64_t time_s)
{
	struct collect *c = arg;
	struct front_version *v;

	if (c->n == c->max)
		return 1;
	v = &c->v[c->n++];
	snprintf(v->esc_path, sizeof v->esc_path, "%s", esc_path);
	snprintf(v->esc_version, sizeof v->esc_version, "%s", esc_version);
	v->files = files;
	v->time_s = time_s;
	return 0;
}

/* Search results: by module, newest version first. */
static int by_module_then_semver(const void *a, const void *b)
{
	const struct front_version *x = a, *y = b;
	char vx[MP_VERSION_MAX], vy[MP_VERSION_MAX];
	int c = strcmp(x->esc_path, y->esc_path);

	if (c != 0 || mp_unescape_version(x->esc_version, vx, sizeof vx) != NULL ||
	    mp_unescape_version(y->esc_version, vy, sizeof vy) != NULL)
		return c;
	return mp_semver_compare(vy, vx);
}

static void fill_versions(struct front_snapshot *s)
{
	struct collect c = { s->results, 0, FRONT_MAX_RESULTS };

	if (s->has_query) {
		catalog_search(s->query, FRONT_MAX_RESULTS, collect_one, &c, &s->more_results);
		s->n_results = c.n;
		qsort(s->results, s->n_results, sizeof s->results[0], by_module_then_semver);
	}
	c = (struct collect){ s->recent, 0, FRONT_MAX_RECENT };
	catalog_recent(FRONT_MAX_RECENT, collect_one, &c);
	s->n_recent = c.n;
}

/* The page for a browser: no-store, and Vary: Accept, since a client that
 * does not ask for HTML gets the plain-text 404 at the same URL.  The
 * Content-Security-Policy allows nothing but the page's own style. */
static enum MHD_Result queue_html(struct reply *rp, char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);

	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "Vary", "Accept");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Content-Security-Policy",
	                        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'");
	return respond_queue(rp, MHD_HTTP_OK, r, len);
}

static enum MHD_Result answer_front(struct reply *rp)
{
	const char *q = query_arg(rp, "q");
	struct front_snapshot *s;
	char *body;
	size_t len;

	if (!frontpage_wants_html(header(rp, MHD_HTTP_HEADER_ACCEPT)))
		return respond_error(rp, MHD_HTTP_NOT_FOUND, "%s", ROUTE_NO_ENDPOINT);
	if ((s = calloc(1, sizeof *s)) == NULL)
		return respond_error(rp, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
	if (q != NULL && !frontpage_decode_query(q, s->query, sizeof s->query)) {
		free(s);
		return respond_error(rp, MHD_HTTP_BAD_REQUEST, "bad request: malformed search query");
	}
	s->has_query = s->query[0] != '\0';
	fill_usage(s, rp);
	fill_health(s);
	fill_versions(s);
	body = frontpage_render(s, &len);
	free(s);
	if (body == NULL)
		return respond_error(rp, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
	return queue_html(rp, body, len);
}

static int add_json(void *arg, const char *esc_path, const char *esc_version, unsigned files,
                    int64_t time_s)
{
	(void)files, (void)time_s;
	frontpage_catalog_add(arg, esc_path, esc_version);
	return 0;
}

/* Athens's GET /catalog?pagesize=N&token=T. */
static enum MHD_Result answer_catalog(struct reply *rp)
{
	const char *raw_token = query_arg(rp, "token");
	size_t n = frontpage_page_size(query_arg(rp, "pagesize")), len;
	char token[MP_PATH_MAX + MP_VERSION_MAX + 8], path[MP_PATH_MAX], ver[MP_VERSION_MAX];
	struct catalog_json j;
	bool after = false, more;
	char *body;

	if (n == 0)
		return respond_error(rp, MHD_HTTP_BAD_REQUEST,
		                     "bad request: pagesize must be a positive decimal number");
	if (raw_token != NULL && *raw_token != '\0') {
		if (!frontpage_decode_query(raw_token, token, sizeof token) ||
		    !frontpage_parse_token(token, path, ver))
			return respond_error(rp, MHD_HTTP_BAD_REQUEST,
			                     "bad request: invalid token (want <module>|<version>, "
			                     "as the last page's \"next\")");
		after = true;
	}
	frontpage_catalog_begin(&j);
	catalog_walk(after ? path : NULL, after ? ver : NULL, n, add_json, &j, &more);
	if ((body = frontpage_catalog_end(&j, more, &len)) == NULL)
		return respond_error(rp, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
	return respond_text(rp, MHD_HTTP_OK, "application/json", body, len, MHD_RESPMEM_MUST_FREE);
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
	case OP_FRONT:
		return answer_front(rp);
	case OP_CATALOG:
		return answer_catalog(rp);
	case OP_METRICS:
	case OP_NONE:
		break;
	}
	if ((body = metrics_render(&len)) == NULL)
		return MHD_NO;
	return respond_text(rp, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len,
	                    MHD_RESPMEM_MUST_FREE);
}
