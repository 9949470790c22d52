/* sumdburl: see include/sumdburl.h.  sumdb_url() on the thread that may
 * block (verifier pool, locator thread, `goproxyd verify`). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpget.h"
#include "log.h"
#include "sumdburl.h"
#include "workq.h"

#define SUPPORTED_BODY_MAX 4096   /* the answer is empty; anything longer is not one */

static const struct config *cfg;
static struct workq *locator;   /* one thread: decisions are rare */
static atomic_bool stopping;    /* sumdb_locate_stop() began: end any GET */

static bool cancelled(void)
{
	return atomic_load(&stopping);
}
static _Atomic(const char *) *decided;   /* per database; NULL until decided */
static pthread_mutex_t deciding = PTHREAD_MUTEX_INITIALIZER;   /* one at a time */

int sumdb_url_init(const struct config *c)
{
	cfg = c;
	if (c->n_sumdbs == 0)
		return 0;
	if ((decided = malloc(c->n_sumdbs * sizeof *decided)) == NULL)
		return -1;
	for (size_t i = 0; i < c->n_sumdbs; i++)
		atomic_init(&decided[i], c->sumdbs[i].discover ? NULL : c->sumdbs[i].url);
	return 0;
}

void sumdb_url_free(void)
{
	if (decided == NULL)
		return;
	for (size_t i = 0; i < cfg->n_sumdbs; i++) {
		const char *u = atomic_load(&decided[i]);
		if (u != cfg->sumdbs[i].url)
			free((char *)u);
	}
	free(decided);
	decided = NULL;
}

const char *sumdb_url_known(const struct sumdb_conf *db)
{
	return atomic_load(&decided[db - cfg->sumdbs]);
}

/* GET <up>/sumdb/<name>/supported: its HTTP status, or -1 with a reason
 * when the entry gave no answer. */
static long ask_supported(const char *up, const char *name, char *reason, size_t n)
{
	const struct http_limits lim = {
		.max_bytes = SUPPORTED_BODY_MAX,
		.total_ms = cfg->connect_timeout_ms + cfg->stall_timeout_ms,
		.cancel = cancelled,
	};
	char url[4096], why[512];
	struct http_body body;
	long status;

	snprintf(url, sizeof url, "%s/sumdb/%s/supported", up, name);
	status = http_get(url, &lim, &body, why, sizeof why);
	free(body.data);
	if (status < 0)
		snprintf(reason, n, "checksum database %s: %s", name, why);
	else if (status != 200 && status != 404 && status != 410)
		snprintf(reason, n, "checksum database %s: %s answered %ld", name, url, status);
	return status;
}

/* The go command's rule (modfetch.dbClient.initBase), over the -proxy list. */
static const char *decide(const struct sumdb_conf *db, char *reason, size_t n)
{
	for (size_t i = 0; i < cfg->n_upstreams; i++) {
		const struct upstream *up = &cfg->upstreams[i];
		long status;
		char *url;

		if (up->direct)
			break;   /* as the go command: "direct" means the database itself */
		status = ask_supported(up->url, db->name, reason, n);

		if (cancelled()) {
			snprintf(reason, n, "goproxyd is shutting down");
			return NULL;   /* an aborted question decides nothing */
		}
		if (status == 200) {
			size_t len = strlen(up->url) + strlen(db->name) + 8;
			if ((url = malloc(len)) == NULL) {
				snprintf(reason, n, "out of memory");
				return NULL;
			}
			snprintf(url, len, "%s/sumdb/%s", up->url, db->name);
			return url;
		}
		if (status != 404 && status != 410 && !up->fallback_on_error)
			return NULL;
	}
	return db->url;
}

const char *sumdb_url(const struct sumdb_conf *db, char *reason, size_t n)
{
	_Atomic(const char *) *slot = &decided[db - cfg->sumdbs];
	const char *url;

	if ((url = atomic_load(slot)) != NULL)
		return url;
	pthread_mutex_lock(&deciding);
	if ((url = atomic_load(slot)) == NULL && (url = decide(db, reason, n)) != NULL) {
		atomic_store(slot, url);
		log_info("checksum database %s: reached at %s", db->name, url);
	}
	pthread_mutex_unlock(&deciding);
	return url;
}

/* --- the locator thread ----------------------------------------------------- */

struct locate {
	const struct sumdb_conf *db;
	void (*done)(void *arg, const char *reason);
	void *arg;
};

static void locate_task(void *arg)
{
	struct locate *l = arg;
	char reason[512];

	if (cancelled() && sumdb_url_known(l->db) == NULL)
		l->done(l->arg, "goproxyd is shutting down");
	else
		l->done(l->arg, sumdb_url(l->db, reason, sizeof reason) ? NULL : reason);
	free(l);
}

void sumdb_locate(const struct sumdb_conf *db, void (*done)(void *arg, const char *reason),
                  void *arg)
{
	struct locate *l = malloc(sizeof *l);

	if (l == NULL) {
		done(arg, "out of memory");
		return;
	}
	*l = (struct locate){ db, done, arg };
	if (locator == NULL || workq_submit(locator, locate_task, l) < 0) {
		free(l);
		done(arg, "goproxyd is shutting down");
	}
}

int sumdb_locate_start(void)
{
	return (locator = workq_start(1, 1)) ? 0 : -1;
}

void sumdb_locate_stop(void)
{
	atomic_store(&stopping, true);
	workq_stop(locator);
	locator = NULL;
}
