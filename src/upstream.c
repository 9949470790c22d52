/* upstream: see include/upstream.h. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "gc.h"
#include "log.h"
#include "metrics.h"
#include "sumdburl.h"
#include "upstream.h"
#include "validate.h"
#include "verify.h"

#define MAX_TRIES 3            /* per upstream, for transient failures */
#define REASON_MAX 512

struct job {
	struct job *next;           /* in waiting, submitted or running */
	struct flight *flight;
	size_t up;                  /* index into cfg->upstreams */
	int tries;                  /* attempts made on this upstream */
	int64_t not_before;         /* monotonic ms: retry backoff */
	CURL *easy;
	struct cache_tmp tmp;
	uint64_t limit, received;
	int64_t last_byte_ms;       /* monotonic: when data last arrived */
	bool too_large, disk_error, stalled;
	char head[256];             /* start of an error body: upstream's reason */
	size_t head_len;
	char url[4096];
	char errbuf[CURL_ERROR_SIZE];
	char error[REASON_MAX];     /* last real error, reported if all fail */
	char notfound[REASON_MAX];  /* last 404/410 reason */
};

static const struct config *cfg;
static CURLM *multi;
static pthread_t thread;
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static struct job *submitted;       /* from other threads, under qlock */
static struct job *waiting;         /* fetcher thread only: not yet started */
static struct job *running;         /* fetcher thread only: in the multi */
static int active;                  /* fetcher thread only: length of running */
static atomic_llong stop_deadline;  /* 0 while running */
static atomic_bool reachable = true;
static bool thread_running;
static CURL *probe;                 /* fetcher thread only: see maybe_probe() */
static bool fetcher_gone;           /* under qlock: no more attempts after this */

/* Storer threads validate, verify and publish finished transfers, so the
 * fetcher's curl loop never waits on a disk (temp-file reads, fsyncs) and
 * concurrent misses are stored in parallel. */
#define N_STORERS 2
static pthread_t storers[N_STORERS];
static int n_storers;
static pthread_mutex_t slock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t scond = PTHREAD_COND_INITIALIZER;
static struct job *stored_head, **stored_tail = &stored_head;
static bool storers_stop;
static int64_t last_probe_ms;
static const char *ca_file, *ca_dir; /* SSL_CERT_FILE, SSL_CERT_DIR */

/* Formats a reason into a fixed buffer; long URLs are cut, which is fine
 * for a one-line message. */
static void reason_printf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void reason_printf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, n, fmt, ap);
	va_end(ap);
}

#define set_error(j, ...) reason_printf((j)->error, sizeof (j)->error, __VA_ARGS__)

/* --- URLs ----------------------------------------------------------------- */

/* Percent-encodes what may not appear raw in a URL path.  The input is a
 * validated escaped module path or version (queries may hold '#', '%' or
 * spaces), so this never meets '/' inside an element. */
static size_t path_escape(char *out, size_t n, const char *s)
{
	static const char keep[] = "-._~!$&'()*+,;=:@/";
	size_t o = 0;

	for (; *s && o + 4 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr(keep, c))
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, n - o, "%%%02X", c);
	}
	out[o] = '\0';
	return o;
}

static void build_url(struct job *j)
{
	const struct request *r = &j->flight->req;
	char path[3 * CACHE_KEY_MAX];
	char v[3 * MP_VERSION_MAX];

	if (r->kind == REQ_SUMDB) {
		/* decided before the first attempt: see start_due() */
		path_escape(path, sizeof path, r->sumdb_rest);
		snprintf(j->url, sizeof j->url, "%s/%s", sumdb_url_known(&cfg->sumdbs[r->sumdb_db]), path);
		return;
	}
	path_escape(path, sizeof path, r->esc_path);
	if (r->kind == REQ_LIST)
		snprintf(j->url, sizeof j->url, "%s/%s/@v/list", cfg->upstreams[j->up].url, path);
	else if (r->kind == REQ_LATEST)
		snprintf(j->url, sizeof j->url, "%s/%s/@latest", cfg->upstreams[j->up].url, path);
	else {
		path_escape(v, sizeof v, r->esc_version);
		snprintf(j->url, sizeof j->url, "%s/%s/@v/%s.%s",
		         cfg->upstreams[j->up].url, path, v, route_ext(r->kind));
	}
}

/* --- one transfer ---------------------------------------------------------- */

/* Creates the attempt's temp file, beside its cache name, unless it exists.
 * The fetcher creates it right after sending the request, so the file
 * system's work overlaps the upstream's; a body that arrives first (or an
 * empty one) gets it from on_body() or on_done(). */
static int open_tmp(struct job *j)
{
	int r;

	if (j->tmp.fd >= 0)
		return 0;
	if ((r = cache_tmp_create(j->flight->key, &j->tmp)) < 0) {
		j->disk_error = true;
		set_error(j, "cannot store %s: %s", j->flight->key, strerror(-r));
		return -1;
	}
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct job *j = arg;
	size_t len = size * nmemb, off = 0;
	long code = 0;

	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
	j->last_byte_ms = monotonic_ms();
	if (code != 200) {
		/* Keep the start of an error body: it is the upstream's reason. */
		size_t room = sizeof j->head - 1 - j->head_len;
		size_t take = len < room ? len : room;
		memcpy(j->head + j->head_len, data, take);
		j->head_len += take;
		return len;
	}
	if (j->received + len > j->limit) {
		j->too_large = true;
		return 0;   /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (open_tmp(j) < 0)
		return 0;
	while (off < len) {
		ssize_t w = write(j->tmp.fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			j->disk_error = true;
			set_error(j, "cannot store %s: %s",
			         j->flight->key, strerror(errno));
			return 0;
		}
		off += (size_t)w;
	}
	j->received += len;
	j->last_byte_ms = monotonic_ms();
	return len;
}

/* A stall (no byte for -stallTimeout, before or after the headers) aborts;
 * a slow but moving download of a large zip does not.  libcurl's own
 * low-speed limit averages over several seconds, so bytes received just
 * before a stall would hide it for that long. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	struct job *j = arg;
	int64_t now = monotonic_ms();

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	if (now - j->last_byte_ms < cfg->stall_timeout_ms)
		return 0;
	j->stalled = true;
	return 1;   /* aborts with CURLE_ABORTED_BY_CALLBACK */
}

CURL *upstream_easy(const char *url)
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
	if (cfg->netrc) {
		curl_easy_setopt(e, CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
		curl_easy_setopt(e, CURLOPT_NETRC_FILE, cfg->netrc);
	}
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
	return e;
}

static CURL *make_easy(struct job *j)
{
	CURL *e = upstream_easy(j->url);

	if (e == NULL)
		return NULL;
	curl_easy_setopt(e, CURLOPT_PRIVATE, j);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, j);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)j->limit);
	return e;
}

/* Starts the next attempt of j: a fresh transfer (its temp file follows,
 * see open_tmp()). */
static int start_attempt(struct job *j)
{
	build_url(j);
	j->tmp.fd = j->tmp.dirfd = -1;
	j->limit = validate_limit(&j->flight->req);
	j->received = 0;
	j->head_len = 0;
	j->too_large = j->disk_error = j->stalled = false;
	j->last_byte_ms = monotonic_ms();
	j->errbuf[0] = '\0';
	j->easy = make_easy(j);
	if (j->easy == NULL || curl_multi_add_handle(multi, j->easy) != CURLM_OK) {
		set_error(j, "cannot start a transfer to %s", j->url);
		if (j->easy)
			curl_easy_cleanup(j->easy);
		j->easy = NULL;
		return -1;
	}
	j->next = running;
	running = j;
	active++;
	return 0;
}

static void end_attempt(struct job *j)
{
	struct job **jp;

	for (jp = &running; *jp; jp = &(*jp)->next)
		if (*jp == j) {
			*jp = j->next;
			break;
		}
	if (j->easy) {
		curl_multi_remove_handle(multi, j->easy);
		curl_easy_cleanup(j->easy);
		j->easy = NULL;
		active--;
	}
}

/* --- outcomes -------------------------------------------------------------- */

static void finish(struct job *j, enum fetch_status st, int fd, const char *reason)
{
	struct fetch_result res = { .status = st, .fd = fd };
	struct stat sb;

	if (st == FETCH_OK && fstat(fd, &sb) == 0) {
		res.size = (uint64_t)sb.st_size;
		res.mtime = sb.st_mtim;
	}
	if (reason)
		snprintf(res.reason, sizeof res.reason, "%.*s", (int)sizeof res.reason - 1, reason);
	if (st == FETCH_NOTFOUND && j->flight->req.immutable)
		negcache_add(j->flight->key, res.reason, cfg->neg_cache_ms);
	flight_finish(j->flight, &res);
	free(j);
}

/* Back to the fetcher for another attempt.  Storer threads call this too,
 * so it goes through the submission queue. */
static void requeue(struct job *j, int64_t delay_ms)
{
	bool gone;

	j->not_before = monotonic_ms() + delay_ms;
	pthread_mutex_lock(&qlock);
	gone = fetcher_gone;
	if (!gone) {
		j->next = submitted;
		submitted = j;
		curl_multi_wakeup(multi);   /* under qlock: multi lives while !gone */
	}
	pthread_mutex_unlock(&qlock);
	if (gone)
		finish(j, FETCH_FAILED, -1, "goproxyd is shutting down");
}

/* Moves to the next upstream, or ends the job: the reported error is the
 * most serious one seen, as the go command ranks them. */
static void next_upstream(struct job *j)
{
	if (j->up + 1 < cfg->n_upstreams) {
		j->up++;
		j->tries = 0;
		requeue(j, 0);
	} else if (j->error[0])
		finish(j, FETCH_FAILED, -1, j->error);
	else
		finish(j, FETCH_NOTFOUND, -1, j->notfound);
}

/* A real error on this upstream: retry, fall through on '|', or give up. */
static void on_error(struct job *j, bool transient)
{
	if (transient && j->tries < MAX_TRIES) {
		/* 100 ms, 400 ms, ... with jitter so a herd does not re-align. */
		int64_t backoff = 100LL << (2 * (j->tries - 1));
		requeue(j, backoff + rand() % (backoff / 2 + 1));
		return;
	}
	if (cfg->upstreams[j->up].fallback_on_error)
		next_upstream(j);
	else
		finish(j, FETCH_FAILED, -1, j->error);
}

/* Cuts j->head down to the one-line reason an upstream gave in a
 * text/plain error body, or "" if it gave none (an HTML error page is no
 * reason to show a go user).  Called while the handle is still alive. */
static void capture_reason(struct job *j)
{
	char *ctype = NULL;

	curl_easy_getinfo(j->easy, CURLINFO_CONTENT_TYPE, &ctype);
	if (ctype == NULL || strncasecmp(ctype, "text/plain", 10) != 0)
		j->head_len = 0;
	j->head[j->head_len] = '\0';
	j->head[strcspn(j->head, "\r\n")] = '\0';
	for (char *p = j->head; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
}

/* Copies a resolved .info answer to <esc path>/@v/<version>.info when that
 * immutable file is not cached yet. */
static void store_resolved_info(const struct request *r, const char *version,
                                const char *buf, size_t len)
{
	char esc[MP_VERSION_MAX], key[CACHE_KEY_MAX];
	struct cache_entry e;

	if (mp_escape(version, esc, sizeof esc) != NULL ||
	    cache_key_info(r->esc_path, esc, key, sizeof key) < 0)
		return;
	if (cache_open(key, &e) == 0) {
		close(e.fd);
		return;
	}
	if (cache_store_bytes(key, buf, len) < 0)
		log_warn("cannot store %s", key);
}

/* Reads the (small) fetched body back and runs check over it. */
static const char *check_text(struct job *j, const char *(*check)(const struct request *,
                                                                   const char *, size_t))
{
	char *buf = malloc(j->received + 1);
	const char *bad;

	if (buf == NULL)
		return "out of memory";
	if (pread(j->tmp.fd, buf, j->received, 0) != (ssize_t)j->received)
		bad = "cannot read back the fetched answer";
	else {
		buf[j->received] = '\0';
		bad = check(&j->flight->req, buf, j->received);
	}
	free(buf);
	return bad;
}

static const char *check_list(const struct request *r, const char *buf, size_t len)
{
	(void)r;
	return validate_list(buf, len);
}

/* An .info or @latest answer; a query's answer is also kept under the
 * canonical version it resolved to. */
static const char *check_info(const struct request *r, const char *buf, size_t len)
{
	char version[MP_VERSION_MAX];
	const char *bad = validate_info(buf, len, r->path, r->immutable ? r->version : NULL, version);

	if (bad == NULL && !r->immutable)
		store_resolved_info(r, version, buf, len);
	return bad;
}

static const char *check_body(struct job *j)
{
	const struct request *r = &j->flight->req;

	switch (r->kind) {
	case REQ_INFO:
	case REQ_LATEST:
		return check_text(j, check_info);
	case REQ_ZIP:
		return validate_zip(j->tmp.fd, r->path, r->version);
	case REQ_LIST:
		return check_text(j, check_list);
	case REQ_SUMDB:
		return check_text(j, validate_sumdb);
	case REQ_MOD:
		break;
	}
	return NULL;
}

static void publish(struct job *j)
{
	struct cache_tmp t = j->tmp;   /* finish() frees j */
	int r = cache_tmp_rename(&t);

	if (r < 0) {
		set_error(j, "cannot store %s: %s", j->flight->key, strerror(-r));
		log_error("%s", j->error);
		finish(j, FETCH_FAILED, -1, j->error);
		return;
	}
	/* The complete file is in the cache: answer now.  Syncing its
	 * directory only makes the rename survive a power loss, which is not
	 * worth a client's wait. */
	finish(j, FETCH_OK, t.fd, NULL);
	cache_tmp_sync_dir(&t);
	gc_check();
}

/* Runs on the verifier thread; the job is in no list of ours by then. */
static void on_verified(void *arg, const char *reason)
{
	struct job *j = arg;

	if (reason == NULL) {
		publish(j);
		return;
	}
	set_error(j, "%s: rejected: %s", j->url, reason);
	cache_tmp_discard(&j->tmp);
	finish(j, FETCH_FAILED, -1, j->error);
}

static void on_success(struct job *j)
{
	const char *bad = check_body(j);

	if (bad) {
		set_error(j, "%s: %s", j->url, bad);
		log_warn("rejected %s", j->error);
		cache_tmp_discard(&j->tmp);
		on_error(j, false);
		return;
	}
	if (verify_wanted(&j->flight->req))
		verify_submit(&j->flight->req, j->tmp.fd, on_verified, j);
	else
		publish(j);
}

static void store_submit(struct job *j)
{
	pthread_mutex_lock(&slock);
	j->next = NULL;
	*stored_tail = j;
	stored_tail = &j->next;
	pthread_cond_signal(&scond);
	pthread_mutex_unlock(&slock);
}

static void *storer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&slock);
	for (;;) {
		struct job *j;

		while (stored_head == NULL && !storers_stop)
			pthread_cond_wait(&scond, &slock);
		if ((j = stored_head) == NULL)
			break;   /* stopping, and nothing left to store */
		if ((stored_head = j->next) == NULL)
			stored_tail = &stored_head;
		pthread_mutex_unlock(&slock);
		on_success(j);
		pthread_mutex_lock(&slock);
	}
	pthread_mutex_unlock(&slock);
	return NULL;
}

static bool transient_curl_error(CURLcode cc)
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

/* Counts the attempt for /metrics and /readyz. */
static void account(struct job *j, CURLcode cc, long code)
{
	curl_off_t usec = 0;
	enum metric_upstream o = MU_ERROR;

	curl_easy_getinfo(j->easy, CURLINFO_TOTAL_TIME_T, &usec);
	if (cc == CURLE_OK && code == 200)
		o = MU_OK;
	else if (cc == CURLE_OK && (code == 404 || code == 410))
		o = MU_NOTFOUND;
	metrics_upstream(j->flight->req.kind == REQ_SUMDB ? -1 : (int)j->up, o, j->received, usec);
	atomic_store(&reachable, code != 0);
}

bool upstream_reachable(void)
{
	return atomic_load(&reachable);
}

static void on_done(struct job *j, CURLcode cc)
{
	long code = 0;

	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
	account(j, cc, code);
	if (code != 200)
		capture_reason(j);
	end_attempt(j);
	j->tries++;
	if (cc == CURLE_OK && code == 200 && open_tmp(j) == 0) {
		store_submit(j);
		return;
	}
	cache_tmp_discard(&j->tmp);
	if (cc == CURLE_OK && (code == 404 || code == 410)) {
		snprintf(j->notfound, sizeof j->notfound, "%s", j->head);
		if (j->notfound[0] == '\0')
			reason_printf(j->notfound, sizeof j->notfound, "%s: %ld", j->url, code);
		next_upstream(j);
		return;
	}
	if (j->too_large)
		set_error(j, "%s: body larger than %llu bytes",
		         j->url, (unsigned long long)j->limit);
	else if (cc == CURLE_FILESIZE_EXCEEDED)
		set_error(j, "%s: Content-Length over the %llu-byte limit",
		         j->url, (unsigned long long)j->limit);
	else if (j->stalled)
		set_error(j, "%s: no data for %lld ms", j->url, (long long)cfg->stall_timeout_ms);
	else if (cc != CURLE_OK && !j->disk_error)
		set_error(j, "%s: %s", j->url,
		         j->errbuf[0] ? j->errbuf : curl_easy_strerror(cc));
	else if (cc == CURLE_OK && !j->disk_error)
		set_error(j, "%s: %ld %s", j->url, code, j->head);
	log_warn("upstream %s (try %d)", j->error, j->tries);
	if (j->disk_error) {
		finish(j, FETCH_FAILED, -1, j->error);
		return;
	}
	on_error(j, cc == CURLE_OK ? (code == 429 || code >= 500)
	                           : j->stalled || transient_curl_error(cc));
}

/* --- the fetcher thread ---------------------------------------------------- */

static void take_submitted(void)
{
	struct job *list;

	pthread_mutex_lock(&qlock);
	list = submitted;
	submitted = NULL;
	pthread_mutex_unlock(&qlock);
	while (list) {
		struct job *j = list;
		list = j->next;
		j->next = waiting;
		waiting = j;
	}
}

/* Runs on the verifier thread once a checksum database's URL is decided. */
static void on_located(void *arg, const char *reason)
{
	struct job *j = arg;

	if (reason == NULL) {
		requeue(j, 0);
		return;
	}
	set_error(j, "%s", reason);
	log_warn("%s", j->error);
	finish(j, FETCH_FAILED, -1, j->error);
}

/* Can j be sent now?  Not a checksum-database request whose database's URL
 * is still to be decided: that may wait on the network, so the verifier
 * thread decides it (then on_located() requeues j). */
static bool located(const struct job *j)
{
	const struct request *r = &j->flight->req;

	return r->kind != REQ_SUMDB || sumdb_url_known(&cfg->sumdbs[r->sumdb_db]) != NULL;
}

/* Starts waiting jobs whose backoff has passed, oldest first, while there
 * is room, setting *started if it started any.  Returns the delay until
 * the next one is due, or -1. */
static int64_t start_due(bool *started)
{
	int64_t now = monotonic_ms(), next = -1;
	struct job **jp, *j, *oldest;

	for (;;) {
		struct job **pick = NULL;

		if (active >= cfg->max_fetches)
			return next < 0 ? -1 : next - now;
		/* The list is newest-first, so the last due entry is the oldest. */
		for (jp = &waiting; (j = *jp) != NULL; jp = &j->next) {
			if (j->not_before <= now)
				pick = jp;
			else if (next < 0 || j->not_before < next)
				next = j->not_before;
		}
		if (pick == NULL)
			return next < 0 ? -1 : next - now;
		oldest = *pick;
		*pick = oldest->next;
		if (!located(oldest))
			verify_locate_submit(&cfg->sumdbs[oldest->flight->req.sumdb_db], on_located, oldest);
		else if (start_attempt(oldest) < 0)
			finish(oldest, FETCH_FAILED, -1, oldest->error);
		else
			*started = true;
	}
}

/* Temp files for the running transfers that have none yet. */
static void open_tmps(void)
{
	for (struct job *j = running; j; j = j->next)
		if (j->tmp.fd < 0 && !j->disk_error)
			open_tmp(j);
}

/* While the upstreams look unreachable, ask the first one for its root
 * every few seconds (any HTTP answer will do): without traffic, which a
 * load balancer withholds from an instance whose /readyz fails, nothing
 * else would notice that they are back. */
static void maybe_probe(void)
{
	int64_t now = monotonic_ms();

	if (atomic_load(&reachable) || probe || cfg->n_upstreams == 0 || now - last_probe_ms < 5000)
		return;
	last_probe_ms = now;
	if ((probe = upstream_easy(cfg->upstreams[0].url)) == NULL)
		return;
	curl_easy_setopt(probe, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(probe, CURLOPT_TIMEOUT_MS, (long)cfg->stall_timeout_ms);
	if (curl_multi_add_handle(multi, probe) != CURLM_OK) {
		curl_easy_cleanup(probe);
		probe = NULL;
	}
}

static void end_probe(void)
{
	long code = 0;

	curl_easy_getinfo(probe, CURLINFO_RESPONSE_CODE, &code);
	if (code != 0)
		atomic_store(&reachable, true);
	curl_multi_remove_handle(multi, probe);
	curl_easy_cleanup(probe);
	probe = NULL;
}

static void reap(void)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(multi, &left)) != NULL) {
		struct job *j;

		if (m->msg != CURLMSG_DONE)
			continue;
		if (m->easy_handle == probe) {
			end_probe();
			continue;
		}
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
		on_done(j, m->data.result);
	}
}

/* At the shutdown deadline: every job still here ends as FETCH_FAILED. */
static void abort_all(void)
{
	take_submitted();
	while (waiting) {
		struct job *j = waiting;
		waiting = j->next;
		finish(j, FETCH_FAILED, -1, "goproxyd is shutting down");
	}
	while (running) {
		struct job *j = running;
		end_attempt(j);
		cache_tmp_discard(&j->tmp);
		finish(j, FETCH_FAILED, -1, "goproxyd is shutting down");
	}
}

static bool idle(void)
{
	bool empty;

	pthread_mutex_lock(&qlock);
	empty = submitted == NULL;
	pthread_mutex_unlock(&qlock);
	return empty && waiting == NULL && active == 0;
}

static void *fetcher_main(void *arg)
{
	(void)arg;
	for (;;) {
		int64_t deadline = atomic_load(&stop_deadline), due;
		bool started = false;
		int running;
		long timeout;

		if (deadline && (idle() || monotonic_ms() >= deadline))
			break;
		curl_multi_perform(multi, &running);
		reap();
		/* The requests perform() just sent are on their way: make their
		 * temp files while the upstream answers. */
		open_tmps();
		/* After reap(): a failure it just queued for retry sets the wait. */
		take_submitted();
		due = start_due(&started);
		if (started)
			continue;   /* send them now */
		maybe_probe();
		curl_multi_timeout(multi, &timeout);
		if (timeout < 0 || timeout > 1000)
			timeout = 1000;
		if (due >= 0 && due < timeout)
			timeout = (long)due;
		curl_multi_poll(multi, NULL, 0, (int)timeout, NULL);
	}
	pthread_mutex_lock(&qlock);
	fetcher_gone = true;
	pthread_mutex_unlock(&qlock);
	abort_all();
	if (probe) {
		curl_multi_remove_handle(multi, probe);
		curl_easy_cleanup(probe);
		probe = NULL;
	}
	return NULL;
}

int upstream_init(const struct config *c)
{
	cfg = c;
	ca_file = getenv("SSL_CERT_FILE");
	ca_dir = getenv("SSL_CERT_DIR");
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

int upstream_start(const struct config *c)
{
	if (upstream_init(c) < 0)
		return -1;
	if ((multi = curl_multi_init()) == NULL)
		return -1;
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)cfg->max_fetches);
	srand((unsigned)monotonic_ms() ^ (unsigned)getpid());
	for (; n_storers < N_STORERS; n_storers++)
		if (pthread_create(&storers[n_storers], NULL, storer_main, NULL) != 0)
			return -1;
	if (pthread_create(&thread, NULL, fetcher_main, NULL) != 0)
		return -1;
	thread_running = true;
	return 0;
}

void upstream_submit(struct flight *f)
{
	struct job *j = calloc(1, sizeof *j);

	if (j == NULL) {
		struct fetch_result res = { .status = FETCH_FAILED, .fd = -1 };
		strcpy(res.reason, "out of memory");
		flight_finish(f, &res);
		return;
	}
	j->flight = f;
	j->tmp.fd = j->tmp.dirfd = -1;
	requeue(j, 0);
}

/* Stores what is queued, then ends the storer threads. */
static void stop_storers(void)
{
	pthread_mutex_lock(&slock);
	storers_stop = true;
	pthread_cond_broadcast(&scond);
	pthread_mutex_unlock(&slock);
	for (int i = 0; i < n_storers; i++)
		pthread_join(storers[i], NULL);
	n_storers = 0;
}

void upstream_stop(int64_t deadline_ms)
{
	if (!thread_running) {
		stop_storers();
		return;
	}
	thread_running = false;
	atomic_store(&stop_deadline, deadline_ms > 0 ? deadline_ms : 1);
	curl_multi_wakeup(multi);
	pthread_join(thread, NULL);
	stop_storers();
	curl_multi_cleanup(multi);
	multi = NULL;
	curl_global_cleanup();
}
