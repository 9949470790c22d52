/* sumdburl: see include/sumdburl.h. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sumdburl.h"
#include "upstream.h"

#define SUPPORTED_BODY_MAX 4096   /* the answer is empty; anything longer is not one */

static const struct config *cfg;
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

static size_t count_body(char *p, size_t size, size_t nmemb, void *arg)
{
	size_t *len = arg, n = size * nmemb;

	(void)p;
	*len += n;
	return *len > SUPPORTED_BODY_MAX ? 0 : n;
}

/* GET <up>/sumdb/<name>/supported: its HTTP status, or -1 with a reason
 * when the entry gave no answer. */
static long ask_supported(const char *up, const char *name, char *reason, size_t n)
{
	char url[4096], err[CURL_ERROR_SIZE] = "";
	size_t len = 0;
	long status = -1;
	CURLcode cc;
	CURL *e;

	snprintf(url, sizeof url, "%s/sumdb/%s/supported", up, name);
	if ((e = upstream_easy(url)) == NULL) {
		snprintf(reason, n, "out of memory");
		return -1;
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, count_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &len);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(cfg->connect_timeout_ms + cfg->stall_timeout_ms));
	cc = curl_easy_perform(e);
	if (cc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	else
		snprintf(reason, n, "checksum database %s: %s: %s", name, url,
		         err[0] ? err : curl_easy_strerror(cc));
	curl_easy_cleanup(e);
	if (status > 0 && status != 200 && status != 404 && status != 410)
		snprintf(reason, n, "checksum database %s: %s answered %ld", name, url, status);
	return status;
}

/* The go command's rule (modfetch.dbClient.initBase), over the -proxy list. */
static const char *decide(const struct sumdb_conf *db, char *reason, size_t n)
{
	for (size_t i = 0; i < cfg->n_upstreams; i++) {
		const struct upstream *up = &cfg->upstreams[i];
		long status = ask_supported(up->url, db->name, reason, n);
		char *url;

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
