/* httpget: see include/httpget.h.  http_easy() on any thread; http_get()
 * on the thread that may block (the verifier or locator pools, or a
 * command such as `goproxyd verify`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "httpget.h"

static struct httpget_conf conf;
static const char *ca_file, *ca_dir;   /* SSL_CERT_FILE, SSL_CERT_DIR */

int httpget_init(const struct httpget_conf *c)
{
	conf = *c;
	ca_file = getenv("SSL_CERT_FILE");
	ca_dir = getenv("SSL_CERT_DIR");
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void httpget_free(void)
{
	curl_global_cleanup();
}

CURL *http_easy(const char *url)
{
	CURL *e = curl_easy_init();

	if (e == NULL)
		return NULL;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "goproxyd/" GOPROXYD_VERSION);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* Redirects are followed, but never from https down to http. */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR,
	                 strncmp(url, "https:", 6) == 0 ? "https" : "http,https");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	/* Debian's libcurl has a built-in CA bundle and ignores these
	 * variables unless told; honour them as the go command does. */
	if (ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
	if (ca_dir)
		curl_easy_setopt(e, CURLOPT_CAPATH, ca_dir);
	if (conf.netrc) {
		curl_easy_setopt(e, CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
		curl_easy_setopt(e, CURLOPT_NETRC_FILE, conf.netrc);
	}
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)conf.connect_timeout_ms);
	return e;
}

/* --- one blocking GET ------------------------------------------------------ */

struct get_state {
	const struct http_limits *lim;
	struct http_body *body;
	int64_t last_byte_ms;
	bool too_large, stalled;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct get_state *g = arg;
	struct http_body *b = g->body;
	size_t n = size * nmemb;
	char *grown;

	g->last_byte_ms = monotonic_ms();
	if (b->len + n > g->lim->max_bytes) {
		g->too_large = true;
		return 0;
	}
	if ((grown = realloc(b->data, b->len + n + 1)) == NULL)
		return 0;
	memcpy(grown + b->len, p, n);
	b->data = grown;
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct get_state *g = arg;

	(void)a, (void)b, (void)c, (void)d;
	if (g->lim->cancel && g->lim->cancel())
		return 1;
	if (g->lim->stall_ms > 0 && monotonic_ms() - g->last_byte_ms >= g->lim->stall_ms) {
		g->stalled = true;
		return 1;
	}
	return 0;
}

long http_get(const char *url, const struct http_limits *lim, struct http_body *body,
              char *reason, size_t n)
{
	struct get_state g = { .lim = lim, .body = body, .last_byte_ms = monotonic_ms() };
	char err[CURL_ERROR_SIZE] = "";
	long status = -1;
	CURLcode cc;
	CURL *e;

	body->data = NULL;
	body->len = 0;
	if ((e = http_easy(url)) == NULL) {
		snprintf(reason, n, "out of memory");
		return -1;
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &g);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, &g);
	if (lim->total_ms > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)lim->total_ms);
	cc = curl_easy_perform(e);
	if (cc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	else if (g.too_large)
		snprintf(reason, n, "%s: body larger than %zu bytes", url, lim->max_bytes);
	else if (g.stalled)
		snprintf(reason, n, "%s: no data for %lld ms", url, (long long)lim->stall_ms);
	else
		snprintf(reason, n, "%s: %s", url, err[0] ? err : curl_easy_strerror(cc));
	curl_easy_cleanup(e);
	if (status != 200) {
		free(body->data);
		body->data = NULL;
		body->len = 0;
	}
	return status;
}

bool http_transient(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}
