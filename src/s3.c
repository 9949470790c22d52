/* s3: see include/s3.h.  s3_init() and s3_stop() on the main thread; the
 * PUTs and reachability probes on the store pool's threads of this file;
 * the rest from any thread (the fetcher signs and reports GETs). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "httpget.h"
#include "log.h"
#include "metrics.h"
#include "s3.h"
#include "workq.h"

#define PUT_TRIES 4
#define PROBE_EVERY_MS 5000

static char base[2048];             /* http(s)://host[:port]/bucket[/prefix], or
                                     * http(s)://bucket.host[:port][/prefix] */
static char bucket_url[2048];       /* http(s)://host[:port]/bucket, or
                                     * http(s)://bucket.host[:port]/ */
static char sigv4[128];             /* "aws:amz:<region>:s3" */
static char access_key[256], secret_key[256], token[2048];
static int64_t stall_ms;
static struct workq *pool;
static atomic_bool down;            /* the last request got no HTTP answer */
static atomic_llong probe_at_ms;
static char down_why[320];          /* under down: written before it is set */
static atomic_ullong n_hit, n_miss, n_err, n_rejected, n_put, n_put_err, n_exists;
static atomic_ullong bytes_in, bytes_out;

bool s3_enabled(void)
{
	return base[0] != '\0';
}

bool s3_keeps(const struct request *r)
{
	return r->kind != REQ_SUMDB || r->immutable;
}

void s3_header(const char *data, size_t len, int64_t *fetched)
{
	static const char name[] = "x-amz-meta-goproxyd-fetched:";
	char buf[32];

	if (len <= sizeof name - 1 || strncasecmp(data, name, sizeof name - 1) != 0)
		return;
	snprintf(buf, sizeof buf, "%.*s", (int)(len - (sizeof name - 1)), data + sizeof name - 1);
	*fetched = strtoll(buf, NULL, 10);
}

bool s3_usable(void)
{
	return s3_enabled() && !atomic_load(&down);
}

/* --- credentials ------------------------------------------------------------ */

static void trim(char *s)
{
	size_t n = strlen(s);
	char *p = s;

	while (n > 0 && strchr(" \t\r\n", s[n - 1]))
		s[--n] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	memmove(s, p, strlen(p) + 1);
}

/* Reads one profile of an AWS shared-credentials file. */
static int read_creds_file(const char *path, char *why, size_t n)
{
	const char *profile = getenv("AWS_PROFILE") ? getenv("AWS_PROFILE") : "default";
	char line[2560], section[256] = "";
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		snprintf(why, n, "-s3CredentialsFile %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		char *eq;

		trim(line);
		if (line[0] == '[') {
			snprintf(section, sizeof section, "%.*s", (int)strcspn(line + 1, "]"), line + 1);
			trim(section);
			continue;
		}
		if (strcmp(section, profile) != 0 || (eq = strchr(line, '=')) == NULL)
			continue;
		*eq = '\0';
		trim(line);
		trim(eq + 1);
		if (strcmp(line, "aws_access_key_id") == 0)
			snprintf(access_key, sizeof access_key, "%s", eq + 1);
		else if (strcmp(line, "aws_secret_access_key") == 0)
			snprintf(secret_key, sizeof secret_key, "%s", eq + 1);
		else if (strcmp(line, "aws_session_token") == 0)
			snprintf(token, sizeof token, "%s", eq + 1);
	}
	fclose(f);
	if (access_key[0] && secret_key[0])
		return 0;
	snprintf(why, n, "-s3CredentialsFile %s: no aws_access_key_id and aws_secret_access_key "
	         "in profile [%s]", path, profile);
	return -1;
}

static int load_creds(const char *file, char *why, size_t n)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *tk = getenv("AWS_SESSION_TOKEN");

	if (file)
		return read_creds_file(file, why, n);
	if (ak == NULL || sk == NULL || !*ak || !*sk) {
		snprintf(why, n, "S3 store %s: no credentials: set AWS_ACCESS_KEY_ID and "
		         "AWS_SECRET_ACCESS_KEY, or -s3CredentialsFile", bucket_url);
		return -1;
	}
	snprintf(access_key, sizeof access_key, "%s", ak);
	snprintf(secret_key, sizeof secret_key, "%s", sk);
	snprintf(token, sizeof token, "%s", tk ? tk : "");
	return 0;
}

/* --- requests ----------------------------------------------------------------- */

int s3_object_url(const char *key, char *url, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = (size_t)snprintf(url, n, "%s/", base);

	/* S3's canonical URI: every byte but the unreserved ones and '/'
	 * percent-encoded, so the path curl signs is the one the store checks. */
	for (; *key; key++) {
		unsigned char c = (unsigned char)*key;
		if (o + 4 >= n)
			return -ENAMETOOLONG;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~/", c))
			url[o++] = (char)c;
		else {
			url[o++] = '%';
			url[o++] = hex[c >> 4];
			url[o++] = hex[c & 15];
		}
	}
	url[o] = '\0';
	return 0;
}

int s3_sign(CURL *e, struct curl_slist **hdrs)
{
	char tok[2100];
	struct curl_slist *h;

	curl_easy_setopt(e, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(e, CURLOPT_USERNAME, access_key);
	curl_easy_setopt(e, CURLOPT_PASSWORD, secret_key);
	/* A redirect must not take the signature elsewhere. */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	/* curl adds no payload hash; without one the store answers 403. */
	h = curl_slist_append(*hdrs, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
	if (h == NULL)
		return -ENOMEM;
	*hdrs = h;
	if (token[0]) {
		snprintf(tok, sizeof tok, "x-amz-security-token: %s", token);
		if ((h = curl_slist_append(*hdrs, tok)) == NULL)
			return -ENOMEM;
		*hdrs = h;
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, *hdrs);
	return 0;
}

/* Notes whether the store answered at all. */
static void reached(long status, const char *err)
{
	if (status != 0) {
		atomic_store(&down, false);
		return;
	}
	if (!atomic_load(&down)) {
		snprintf(down_why, sizeof down_why, "S3 store %.200s is unreachable: %.40s",
		         bucket_url, err);
		atomic_store(&down, true);
		log_warn("%s", down_why);
	}
}

void s3_got(long status, uint64_t bytes, int64_t usec, bool rejected)
{
	reached(status, "no answer");
	if (!rejected)
		metrics_s3(usec);
	atomic_fetch_add(&bytes_in, bytes);
	if (rejected)
		atomic_fetch_add(&n_rejected, 1);
	else if (status == 200)
		atomic_fetch_add(&n_hit, 1);
	else if (status == 404)
		atomic_fetch_add(&n_miss, 1);
	else
		atomic_fetch_add(&n_err, 1);
}

static size_t discard(char *d, size_t s, size_t n, void *a)
{
	(void)d, (void)a;
	return s * n;
}

/* A blocking request with no body to send; returns the status, or 0 with
 * err set when no HTTP answer came. */
static long simple(const char *url, bool head, char *err, size_t n)
{
	struct curl_slist *hdrs = NULL;
	CURL *e = http_easy(url);
	long status = 0;
	CURLcode cc;

	if (e == NULL || s3_sign(e, &hdrs) < 0) {
		snprintf(err, n, "out of memory");
		curl_slist_free_all(hdrs);
		if (e)
			curl_easy_cleanup(e);
		return 0;
	}
	curl_easy_setopt(e, CURLOPT_NOBODY, head ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(stall_ms > 0 ? stall_ms : 30000));
	if ((cc = curl_easy_perform(e)) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	else
		snprintf(err, n, "%s", curl_easy_strerror(cc));
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(e);
	return status;
}

/* --- PUTs --------------------------------------------------------------------- */

struct put {
	int fd;
	uint64_t size, off;
	int64_t fetched;            /* the file's mtime */
	bool replace;
	char url[4096];
};

static size_t put_read(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct put *p = arg;
	ssize_t got = pread(p->fd, buf, size * nmemb, (off_t)p->off);

	if (got < 0)
		return CURL_READFUNC_ABORT;
	p->off += (uint64_t)got;
	return (size_t)got;
}

/* Set once the store answered 501 to "If-None-Match: *": from then on a
 * PUT that must not replace an object asks with a HEAD first.  Two
 * instances can then both write a file, which is harmless (the content is
 * the same); the HEAD keeps most duplicates, and their bytes, away. */
static atomic_bool no_conditional;

static long put_once(struct put *p, bool conditional, char *err, size_t n)
{
	struct curl_slist *hdrs = NULL;
	CURL *e = http_easy(p->url);
	long status = 0;
	CURLcode cc;
	char meta[80];

	snprintf(meta, sizeof meta, "x-amz-meta-goproxyd-fetched: %lld", (long long)p->fetched);
	/* No "Expect:" override: curl would sign the empty header it then
	 * leaves out, and the store answers 403. */
	if (e == NULL || (conditional && (hdrs = curl_slist_append(NULL, "If-None-Match: *")) == NULL) ||
	    (hdrs = curl_slist_append(hdrs, meta)) == NULL || s3_sign(e, &hdrs) < 0) {
		snprintf(err, n, "out of memory");
		curl_slist_free_all(hdrs);
		if (e)
			curl_easy_cleanup(e);
		return 0;
	}
	p->off = 0;
	curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, put_read);
	curl_easy_setopt(e, CURLOPT_READDATA, p);
	curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)p->size);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)((stall_ms + 999) / 1000));
	if ((cc = curl_easy_perform(e)) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	else
		snprintf(err, n, "%s", curl_easy_strerror(cc));
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(e);
	return status;
}

/* One try: 200, 412 (the object exists: refused, or found by the HEAD),
 * or the failure. */
static long put_try(struct put *p, char *err, size_t n)
{
	bool conditional = !p->replace && !atomic_load(&no_conditional);
	long status;

	if (!p->replace && !conditional) {
		if ((status = simple(p->url, true, err, n)) == 200)
			return 412;
		if (status != 404)
			return status;
	}
	status = put_once(p, conditional, err, n);
	if (status == 501 && conditional) {
		if (!atomic_exchange(&no_conditional, true))
			log_warn("S3 store %s: conditional PUTs (If-None-Match: *) are not implemented; "
			         "each PUT asks with a HEAD first", bucket_url);
		return put_try(p, err, n);
	}
	return status;
}

static void put_task(void *arg)
{
	struct put *p = arg;
	char err[256] = "";
	long status = 0;

	for (int t = 0; t < PUT_TRIES; t++) {
		if (t > 0 && !workq_stopping(pool))
			usleep((useconds_t)(200000u << (2 * (t - 1))));   /* 0.2, 0.8, 3.2 s */
		int64_t t0 = monotonic_us();
		status = put_try(p, err, sizeof err);
		metrics_s3(monotonic_us() - t0);
		reached(status, err);
		if (status == 200 || status == 412 || (status >= 400 && status < 500 && status != 429))
			break;
		if (status != 0)
			snprintf(err, sizeof err, "status %ld", status);
	}
	if (status == 200) {
		atomic_fetch_add(&n_put, 1);
		atomic_fetch_add(&bytes_out, p->size);
	} else if (status == 412) {
		atomic_fetch_add(&n_exists, 1);   /* another instance put it first */
	} else {
		atomic_fetch_add(&n_put_err, 1);
		if (status != 0)
			snprintf(err, sizeof err, "status %ld", status);
		log_warn("S3 store: PUT of %.300s failed: %s", p->url + strlen(base), err);
	}
	close(p->fd);
	free(p);
}

void s3_put(const char *key, int fd, bool replace)
{
	struct put *p;
	struct stat st;

	if (!s3_enabled() || pool == NULL || fstat(fd, &st) < 0 || (p = calloc(1, sizeof *p)) == NULL)
		return;
	p->replace = replace;
	p->size = (uint64_t)st.st_size;
	p->fetched = (int64_t)st.st_mtim.tv_sec;
	if (s3_object_url(key, p->url, sizeof p->url) < 0 || (p->fd = dup(fd)) < 0) {
		free(p);
		return;
	}
	if (workq_submit(pool, put_task, p) < 0) {
		close(p->fd);
		free(p);
	}
}

/* --- readiness ----------------------------------------------------------------- */

static void probe_task(void *arg)
{
	char err[256] = "";

	(void)arg;
	reached(simple(bucket_url, true, err, sizeof err), err);
}

const char *s3_unready(void)
{
	int64_t now = monotonic_ms(), last = atomic_load(&probe_at_ms);

	if (!s3_enabled() || s3_usable())
		return NULL;
	/* Without traffic (a load balancer withholds it from an instance
	 * that is not ready) nothing else would notice the store is back. */
	if (now - last >= PROBE_EVERY_MS && atomic_compare_exchange_strong(&probe_at_ms, &last, now))
		workq_submit(pool, probe_task, NULL);
	return down_why;
}

/* --- start and stop ----------------------------------------------------------- */

/* The bucket's URL ends where the bucket's name does: after the path's
 * first element (path-style), or after the host (virtual-hosted style). */
static int set_urls(const char *url, bool virtual_host)
{
	const char *p = strstr(url, "://"), *slash;
	size_t n = strlen(url);

	while (n > 0 && url[n - 1] == '/')
		n--;
	if (p == NULL || n >= sizeof base)
		return -1;
	snprintf(base, sizeof base, "%.*s", (int)n, url);
	slash = strchr(p + 3, '/');
	if (virtual_host) {
		snprintf(bucket_url, sizeof bucket_url, "%.*s/",
		         (int)(slash ? (size_t)(slash - url) : strlen(url)), url);
		return 0;
	}
	if (slash == NULL)
		return -1;
	slash = strchr(slash + 1, '/');
	snprintf(bucket_url, sizeof bucket_url, "%.*s", (int)(slash ? (size_t)(slash - url) : n), url);
	return 0;
}

int s3_init(const struct s3_conf *conf, char *why, size_t n)
{
	char err[256] = "";
	long status;

	if (conf->url == NULL)
		return 0;
	if (set_urls(conf->url, conf->virtual_host) < 0) {
		snprintf(why, n, "-s3 %s: want http(s)://HOST[:PORT]/BUCKET[/PREFIX]", conf->url);
		return -1;
	}
	snprintf(sigv4, sizeof sigv4, "aws:amz:%.60s:s3", conf->region);
	stall_ms = conf->stall_ms;
	if (load_creds(conf->creds_file, why, n) < 0)
		return -1;
	if ((pool = workq_start(1, 8)) == NULL) {
		snprintf(why, n, "S3 store %s: cannot start its threads", bucket_url);
		return -1;
	}
	status = simple(bucket_url, true, err, sizeof err);
	if (status == 200) {
		log_info("S3 store %s: bucket reached", base);
		return 0;
	}
	if (status == 0) {
		reached(0, err);
		atomic_store(&probe_at_ms, monotonic_ms());
		return 0;   /* serve from disk and upstream meanwhile */
	}
	if (status == 403 || status == 401)
		snprintf(why, n, "S3 store %s refused the credentials (HTTP %ld): check the access "
		         "key, the secret and -s3Region", bucket_url, status);
	else if (status == 404)
		snprintf(why, n, "S3 store %s: no such bucket (HTTP 404)", bucket_url);
	else
		snprintf(why, n, "S3 store %s: HEAD of the bucket answered HTTP %ld", bucket_url, status);
	return -1;
}

void s3_stop(void)
{
	if (pool)
		workq_stop(pool);
	pool = NULL;
	explicit_bzero(secret_key, sizeof secret_key);
	explicit_bzero(token, sizeof token);
}

uint64_t s3_get_hits(void) { return atomic_load(&n_hit); }
uint64_t s3_get_misses(void) { return atomic_load(&n_miss); }
uint64_t s3_get_errors(void) { return atomic_load(&n_err); }
uint64_t s3_get_rejected(void) { return atomic_load(&n_rejected); }
uint64_t s3_puts(void) { return atomic_load(&n_put); }
uint64_t s3_put_errors(void) { return atomic_load(&n_put_err); }
uint64_t s3_put_exists(void) { return atomic_load(&n_exists); }
uint64_t s3_bytes_in(void) { return atomic_load(&bytes_in); }
uint64_t s3_bytes_out(void) { return atomic_load(&bytes_out); }
