/* fetch: see include/fetch.h.  fetch_submit() and fetch_reachable() from
 * any thread; everything else on the fetcher thread, except on_stored(),
 * on_located() and on_direct(), which run on the store, locator or direct
 * thread and only touch the job they are handed. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "direct.h"
#include "fetch.h"
#include "fetchq.h"
#include "httpget.h"
#include "log.h"
#include "metrics.h"
#include "peer.h"
#include "s3.h"
#include "store.h"
#include "sumdburl.h"
#include "text.h"
#include "validate.h"

#define MAX_TRIES 3            /* per upstream, for transient failures */
#define IDLE_CONNS 64          /* upstream connections kept open between transfers */
#define REASON_MAX 512
#define NO_METRIC_ROW (-2)     /* job.metric_row of a direct attempt */

struct job {
	struct fetchq_entry entry;  /* first: the queue hands entries back */
	struct job *next;           /* in submitted or running */
	struct flight *flight;
	struct peer peer;           /* the fetch lock shared with other instances */
	bool claimed;               /* peer_claim() has run */
	bool s3_tried;              /* the S3 store was asked first */
	bool from_s3;               /* this attempt asks the S3 store */
	bool s3_next;               /* the next attempt asks it (a mutable file's fallback) */
	struct curl_slist *hdrs;    /* this attempt's request headers */
	size_t up;                  /* index into cfg->upstreams */
	int tries;                  /* attempts made on this upstream */
	int64_t not_before;         /* monotonic ms: retry backoff */
	bool counted;               /* popped from the queue, not yet done */
	bool excluded;              /* -exclude: the origin only, never an upstream */
	CURL *easy;
	struct cache_tmp tmp;
	uint64_t limit, received;
	int64_t last_byte_ms;       /* monotonic: when data last arrived */
	bool too_large, disk_error, stalled;
	bool encoded;               /* the answer has a non-identity Content-Encoding */
	int metric_row;             /* metrics_upstream()'s upstream of this attempt;
	                             * NO_METRIC_ROW: the go command's (direct.c
	                             * counts those) */
	int64_t usec;               /* this attempt's transfer time */
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
static struct fetchq waiting;       /* fetcher thread only: not yet started */
static struct job *running;         /* fetcher thread only: in the multi */
static atomic_llong stop_deadline;  /* 0 while running */
static atomic_bool reachable = true;
static bool thread_running;
static CURL *probe;                 /* fetcher thread only: see maybe_probe() */
static bool fetcher_gone;           /* under qlock: no more attempts after this */

static int64_t last_probe_ms;

/* Long URLs are cut, which is fine for a one-line message. */
#define set_error(j, ...) text_fail((j)->error, sizeof (j)->error, __VA_ARGS__)

/* --- URLs ----------------------------------------------------------------- */

static void build_url(struct job *j)
{
	const struct request *r = &j->flight->req;
	char path[ROUTE_UPSTREAM_PATH_MAX];

	if (j->from_s3) {
		if (s3_object_url(j->flight->key, j->url, sizeof j->url) < 0)
			j->url[0] = '\0';
		return;
	}
	route_upstream_path(r, path, sizeof path);
	/* a database's URL is decided before the first attempt: see start_due() */
	snprintf(j->url, sizeof j->url, "%s/%s", r->kind == REQ_SUMDB ?
	         sumdb_url_known(&cfg->sumdbs[r->sumdb_db]) : cfg->upstreams[j->up].url, path);
}

/* --- one transfer ---------------------------------------------------------- */

/* Creates the attempt's temp file, beside its cache name, unless it exists.
 * The fetcher creates it right after sending the request, so the file
 * system's work overlaps the upstream's; a body that arrives first (or an
 * empty one) gets it from on_body() or on_done(). */
static int open_tmp(struct job *j)
{
	int r;

	if (j->tmp.tmp_fd >= 0)
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
	size_t len = size * nmemb;
	long code = 0;
	int r;

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
	if ((r = cache_tmp_write(&j->tmp, data, len)) < 0) {
		j->disk_error = true;
		set_error(j, "cannot store %s: %s", j->flight->key, strerror(-r));
		return 0;
	}
	j->received += len;
	j->last_byte_ms = monotonic_ms();
	peer_touch(&j->peer);
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

/* Is data[0..len) (a header value with its line end) "identity" or empty? */
static bool identity_value(const char *data, size_t len)
{
	while (len > 0 && strchr(" \t\r\n", data[len - 1]))
		len--;
	while (len > 0 && (*data == ' ' || *data == '\t'))
		data++, len--;
	return len == 0 || (len == 8 && strncasecmp(data, "identity", 8) == 0);
}

/* Notes a Content-Encoding other than identity on the final response (a
 * status line starts each response's headers, redirects included):
 * goproxyd asks for no encoding, so such a body is not the file. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	static const char name[] = "content-encoding:";
	struct job *j = arg;
	size_t len = size * nmemb, n = sizeof name - 1;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
		j->encoded = false;
	if (len >= n && strncasecmp(data, name, n) == 0 && !identity_value(data + n, len - n))
		j->encoded = true;
	if (j->from_s3)
		s3_header(data, len, &j->flight->fl_s3_fetched);
	return len;
}

static CURL *make_easy(struct job *j)
{
	CURL *e = http_easy(j->url);

	if (e == NULL)
		return NULL;
	curl_easy_setopt(e, CURLOPT_PRIVATE, j);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, j);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)j->limit);
	if (j->from_s3 && s3_sign(e, &j->hdrs) < 0) {
		curl_easy_cleanup(e);
		return NULL;
	}
	return e;
}

/* Starts the next attempt of j: a fresh transfer (its temp file follows,
 * see open_tmp()). */
static int start_attempt(struct job *j)
{
	/* A file the S3 store keeps is asked there first, once. */
	j->from_s3 = j->s3_next || (s3_usable() && !j->s3_tried && s3_keeps(&j->flight->req) &&
	                            j->flight->req.immutable);
	j->s3_tried = j->s3_tried || j->from_s3;
	j->s3_next = false;
	build_url(j);
	j->tmp.tmp_fd = j->tmp.tmp_dirfd = -1;
	j->limit = validate_limit(&j->flight->req);
	j->received = 0;
	j->head_len = 0;
	j->too_large = j->disk_error = j->stalled = j->encoded = false;
	j->last_byte_ms = monotonic_ms();
	j->errbuf[0] = '\0';
	peer_touch(&j->peer);
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
	}
	curl_slist_free_all(j->hdrs);
	j->hdrs = NULL;
	if (j->counted) {
		fetchq_done(&waiting, &j->entry);
		j->counted = false;
	}
}

/* --- outcomes -------------------------------------------------------------- */

static void requeue(struct job *j, int64_t delay_ms);

/* Ends a fetch that stored nothing (the store ends the others). */
static void finish(struct job *j, enum fetch_status st, const char *reason)
{
	struct fetch_result res = { .status = st, .res_fd = -1 };
	struct stat sb;

	if (st == FETCH_FAILED && !j->s3_tried && s3_usable() && s3_keeps(&j->flight->req) &&
	    cache_stat(j->flight->key, &sb) < 0) {
		/* Every upstream failed and there is no stale copy here: a
		 * mutable answer another instance fetched is better than the
		 * error (a local copy is served stale instead, see server.c). */
		if (reason != j->error)
			set_error(j, "%s", reason);
		j->s3_next = j->s3_tried = true;
		requeue(j, 0);
		return;
	}
	if (reason)
		snprintf(res.reason, sizeof res.reason, "%.*s", (int)sizeof res.reason - 1, reason);
	if (st == FETCH_NOTFOUND && j->flight->req.immutable)
		negcache_add(j->flight->key, res.reason, cfg->neg_cache_ms);
	flight_finish(j->flight, &res);
	free(j);
}

/* Back to the fetcher for another attempt.  Store and locator threads
 * call this too, so it goes through the submission queue. */
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
		finish(j, FETCH_FAILED, "goproxyd is shutting down");
}

/* Moves to the next upstream, or ends the job: the reported error is the
 * most serious one seen, as the go command ranks them. */
static void next_upstream(struct job *j)
{
	if (!j->excluded && j->up + 1 < cfg->n_upstreams) {
		j->up++;
		j->tries = 0;
		requeue(j, 0);
	} else if (j->error[0])
		finish(j, FETCH_FAILED, j->error);
	else
		finish(j, FETCH_NOTFOUND, j->notfound);
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
	if (!j->excluded && cfg->upstreams[j->up].fallback_on_error)
		next_upstream(j);
	else
		finish(j, FETCH_FAILED, j->error);
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

/* Notes the finished transfer (the handle is still alive); its outcome is
 * counted by account() once it is known. */
static void note_transfer(struct job *j, long code)
{
	curl_off_t usec = 0;

	curl_easy_getinfo(j->easy, CURLINFO_TOTAL_TIME_T, &usec);
	j->usec = usec;
	j->metric_row = j->flight->req.kind == REQ_SUMDB ? -1 : (int)j->up;
	atomic_store(&reachable, code != 0);
}

/* Counts the attempt for /metrics.  A 200 answer is "ok" only once it has
 * been stored: one refused (validation, an unasked-for Content-Encoding)
 * is an error like any other. */
static void account(struct job *j, enum metric_upstream o)
{
	if (j->metric_row != NO_METRIC_ROW)
		metrics_upstream(j->metric_row, o, j->received, j->usec);
}

/* The store's answer, on a store or verifier thread: the job is in no
 * list of the fetcher's by then. */
static void on_stored(void *arg, enum store_outcome o, const char *reason)
{
	struct job *j = arg;

	account(j, o == STORE_FINISHED ? MU_OK : MU_ERROR);
	if (o == STORE_FINISHED) {
		free(j);
		return;
	}
	if (j->from_s3) {
		/* A bad object: fetch from upstream, and overwrite it. */
		log_warn("S3 store object %s refused (%s): fetching it from upstream",
		         j->flight->key, reason);
		s3_got(200, 0, 0, true);
		j->from_s3 = j->flight->fl_from_s3 = false;
		j->flight->fl_s3_replace = true;
		j->tries = 0;
		if (!j->flight->req.immutable)
			finish(j, FETCH_FAILED, j->error);
		else
			requeue(j, 0);
		return;
	}
	set_error(j, "%s", reason);
	on_error(j, false);
}

/* A direct fetch's answer, on a direct thread (direct.h): like an
 * upstream's, a file goes to the store, a "no" to the next entry. */
static void on_direct(void *arg, struct direct_result *res)
{
	struct job *j = arg;
	char origin[MP_PATH_MAX + 32];

	/* Counted by direct.c (goproxyd_direct_*), not as an upstream's
	 * transfer, nor as the entry before it that said 404. */
	j->metric_row = NO_METRIC_ROW;
	if (res->status == DIRECT_OK) {
		snprintf(origin, sizeof origin, "direct %s", j->flight->req.path);
		store_submit(j->flight, &res->tmp, res->size, origin, on_stored, j);
		return;
	}
	if (res->status == DIRECT_NOTFOUND) {
		snprintf(j->notfound, sizeof j->notfound, "%s", res->reason);
		/* The go command's "no" may mean the origin is down: a list or
		 * query with nothing after it ends as a failure, so that a stale
		 * copy is served (server.c) instead of a 404. */
		if (!j->flight->req.immutable && (j->excluded || j->up + 1 == cfg->n_upstreams)) {
			finish(j, FETCH_FAILED, res->reason);
			return;
		}
		next_upstream(j);
		return;
	}
	set_error(j, "%s", res->reason);
	on_error(j, false);
}

bool fetch_reachable(void)
{
	return atomic_load(&reachable);
}

/* The end of an S3 store GET: store what it found, else go upstream. */
static void on_s3_done(struct job *j, CURLcode cc, long code)
{
	curl_off_t usec = 0;

	curl_easy_getinfo(j->easy, CURLINFO_TOTAL_TIME_T, &usec);
	end_attempt(j);
	j->metric_row = NO_METRIC_ROW;   /* s3_got() counts the store's requests */
	if (cc == CURLE_OK && code == 200 && !j->encoded && open_tmp(j) == 0) {
		s3_got(200, j->received, usec, false);
		j->flight->fl_from_s3 = true;
		store_submit(j->flight, &j->tmp, j->received, "the S3 store", on_stored, j);
		return;
	}
	s3_got(cc == CURLE_OK ? code : 0, j->received, usec, false);
	cache_tmp_discard(&j->tmp);
	if (cc != CURLE_OK)
		log_warn("S3 store GET of %s: %s", j->flight->key,
		         j->errbuf[0] ? j->errbuf : curl_easy_strerror(cc));
	else if (code != 404)
		log_warn("S3 store GET of %s: HTTP %ld", j->flight->key, code);
	j->from_s3 = false;
	j->disk_error = false;
	if (!j->flight->req.immutable)
		finish(j, FETCH_FAILED, j->error);   /* the upstreams' error stands */
	else
		requeue(j, 0);
}

static void on_done(struct job *j, CURLcode cc)
{
	long code = 0;

	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
	if (j->from_s3) {
		on_s3_done(j, cc, code);
		return;
	}
	note_transfer(j, code);
	if (code != 200)
		capture_reason(j);
	end_attempt(j);
	j->tries++;
	if (cc == CURLE_OK && code == 200 && j->encoded) {
		account(j, MU_ERROR);
		cache_tmp_discard(&j->tmp);
		set_error(j, "%s: upstream sent a Content-Encoding goproxyd did not ask for", j->url);
		log_warn("upstream %s (try %d)", j->error, j->tries);
		on_error(j, false);
		return;
	}
	if (cc == CURLE_OK && code == 200 && open_tmp(j) == 0) {
		store_submit(j->flight, &j->tmp, j->received, j->url, on_stored, j);
		return;
	}
	account(j, cc != CURLE_OK ? MU_ERROR : code == 200 ? MU_OK
	           : code == 404 || code == 410 ? MU_NOTFOUND : MU_ERROR);
	cache_tmp_discard(&j->tmp);
	if (cc == CURLE_OK && (code == 404 || code == 410)) {
		snprintf(j->notfound, sizeof j->notfound, "%s", j->head);
		if (j->notfound[0] == '\0')
			text_fail(j->notfound, sizeof j->notfound, "%s: %ld", j->url, code);
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
		finish(j, FETCH_FAILED, j->error);
		return;
	}
	on_error(j, cc == CURLE_OK ? (code == 429 || code >= 500)
	                           : j->stalled || http_transient(cc));
}

/* --- the fetcher thread ---------------------------------------------------- */

/* Which jobs share a fair share of the transfers (fetchq.h). */
static void set_entry(struct job *j)
{
	const struct request *r = &j->flight->req;

	if (r->kind == REQ_SUMDB) {
		/* "sumdb/NAME" is no module path, so it is no module's group */
		j->entry.group = text_hash_str(cfg->sumdbs[r->sumdb_db].name) ^ 0x5u;
		j->entry.upstream = (unsigned)cfg->n_upstreams;
	} else {
		j->entry.group = text_hash_str(r->path);
		j->entry.upstream = (unsigned)j->up;
	}
	j->entry.not_before = j->not_before;
}

/* Is j's next attempt one of the go command's, from the origin? */
static bool is_direct(const struct job *j)
{
	if (j->flight->req.kind == REQ_SUMDB)
		return false;
	return j->excluded || cfg->upstreams[j->up].direct;
}

/* Warming jobs wait behind clients' (fetchq.h); a request joining one
 * makes it a client's at once. */
static bool job_is_low(const struct fetchq_entry *e)
{
	return flight_is_warm(((const struct job *)e)->flight);   /* entry is the first member */
}

void fetch_nudge(void)
{
	pthread_mutex_lock(&qlock);
	if (!fetcher_gone && multi)
		curl_multi_wakeup(multi);
	pthread_mutex_unlock(&qlock);
}

/* Moves submitted jobs to the queue, in the order they were submitted
 * (direct ones to the direct pool). */
static void take_submitted(void)
{
	struct job *list, *rev = NULL;

	pthread_mutex_lock(&qlock);
	list = submitted;
	submitted = NULL;
	pthread_mutex_unlock(&qlock);
	while (list) {   /* submitted is newest-first */
		struct job *j = list;
		list = j->next;
		j->next = rev;
		rev = j;
	}
	while (rev) {
		struct job *j = rev;
		rev = j->next;
		if (!is_direct(j)) {
			set_entry(j);
			fetchq_push(&waiting, &j->entry);
		} else if (fetcher_gone)   /* abort_all(): start no child */
			finish(j, FETCH_FAILED, "goproxyd is shutting down");
		else   /* -maxDirect bounds these, not the transfers */
			direct_submit(&j->flight->req, j->flight->key, on_direct, j);
	}
}

/* Runs on the locator thread once a checksum database's URL is decided. */
static void on_located(void *arg, const char *reason)
{
	struct job *j = arg;

	if (reason == NULL) {
		requeue(j, 0);
		return;
	}
	set_error(j, "%s", reason);
	log_warn("%s", j->error);
	finish(j, FETCH_FAILED, j->error);
}

/* Can j be sent now?  Not a checksum-database request whose database's URL
 * is still to be decided: that may wait on the network, so the locator
 * thread decides it (then on_located() requeues j). */
static bool located(const struct job *j)
{
	const struct request *r = &j->flight->req;

	return r->kind != REQ_SUMDB || sumdb_url_known(&cfg->sumdbs[r->sumdb_db]) != NULL;
}

/* Another instance's fetch of j's file ended (peer.h), on the fetcher. */
static void on_peer(struct peer *p, bool finished)
{
	struct job *j = (struct job *)((char *)p - offsetof(struct job, peer));

	if (finished)
		free(j);
	else
		requeue(j, 0);
}

/* Before j's first attempt: does this instance fetch it?  False if not
 * (another instance does, or did: j is no longer the caller's). */
static bool claim(struct job *j)
{
	enum peer_claim c;

	if (j->claimed)
		return true;
	j->claimed = true;
	if ((c = peer_claim(&j->peer)) == PEER_FETCH)
		return true;
	fetchq_done(&waiting, &j->entry);
	j->counted = false;
	if (c == PEER_DONE)
		free(j);
	return false;
}

/* Starts the queued jobs that may start now (fetchq.h), setting *started
 * if it started any.  Returns the delay until a job in backoff is due, or
 * -1. */
static int64_t start_due(bool *started)
{
	int64_t now = monotonic_ms(), next;
	struct fetchq_entry *e;

	while ((e = fetchq_pop(&waiting, now, &next)) != NULL) {
		struct job *j = (struct job *)e;   /* entry is the first member */

		j->counted = true;
		if (!located(j)) {
			fetchq_done(&waiting, &j->entry);
			j->counted = false;
			sumdb_locate(&cfg->sumdbs[j->flight->req.sumdb_db], on_located, j);
		} else if (!claim(j)) {
			continue;
		} else if (start_attempt(j) < 0) {
			fetchq_done(&waiting, &j->entry);
			j->counted = false;
			finish(j, FETCH_FAILED, j->error);
		} else
			*started = true;
	}
	return next < 0 ? -1 : next - now;
}

/* Temp files for the running transfers that have none yet. */
static void open_tmps(void)
{
	for (struct job *j = running; j; j = j->next)
		if (j->tmp.tmp_fd < 0 && !j->disk_error)
			open_tmp(j);
}

/* While the upstreams look unreachable, ask the first one for its root
 * every few seconds (any HTTP answer will do): without traffic, which a
 * load balancer withholds from an instance whose /readyz fails, nothing
 * else would notice that they are back. */
static void maybe_probe(void)
{
	int64_t now = monotonic_ms();
	size_t u = 0;

	while (u < cfg->n_upstreams && cfg->upstreams[u].direct)
		u++;
	if (atomic_load(&reachable) || probe || u == cfg->n_upstreams || now - last_probe_ms < 5000)
		return;
	last_probe_ms = now;
	if ((probe = http_easy(cfg->upstreams[u].url)) == NULL)
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
	struct fetchq_entry *e, *next;

	take_submitted();
	peer_abort_all("goproxyd is shutting down");
	for (e = fetchq_take_all(&waiting); e; e = next) {
		next = e->next;
		finish((struct job *)e, FETCH_FAILED, "goproxyd is shutting down");
	}
	while (running) {
		struct job *j = running;
		end_attempt(j);
		cache_tmp_discard(&j->tmp);
		finish(j, FETCH_FAILED, "goproxyd is shutting down");
	}
}

static bool idle(void)
{
	bool empty;

	pthread_mutex_lock(&qlock);
	empty = submitted == NULL;
	pthread_mutex_unlock(&qlock);
	return empty && waiting.waiting == 0 && running == NULL && peer_waiting() == 0;
}

static void *fetcher_main(void *arg)
{
	(void)arg;
	for (;;) {
		int64_t deadline = atomic_load(&stop_deadline), due, peer_due;
		bool started = false;
		int still;
		long timeout;

		if (deadline && (idle() || monotonic_ms() >= deadline))
			break;
		curl_multi_perform(multi, &still);
		reap();
		/* The requests perform() just sent are on their way: make their
		 * temp files while the upstream answers. */
		open_tmps();
		/* After reap(): a failure it just queued for retry sets the wait. */
		take_submitted();
		due = start_due(&started);
		if (started)
			continue;   /* send them now */
		if ((peer_due = peer_poll()) >= 0 && (due < 0 || peer_due < due))
			due = peer_due;
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

int fetch_start(const struct config *c)
{
	struct fetchq_limits lim = fetchq_limits_for((unsigned)c->max_fetches);

	cfg = c;
	peer_init(c->cache_expire_ms, c->neg_cache_ms, c->stall_timeout_ms);
	if (fetchq_init(&waiting, &lim, (unsigned)c->n_upstreams + 1) < 0)
		return -1;
	fetchq_set_low(&waiting, job_is_low);
	if ((multi = curl_multi_init()) == NULL)
		return -1;
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)lim.per_upstream);
	/* Idle connections kept for reuse.  libcurl's default grows with the
	 * transfers ever run at once (4 each), which after a burst of a few
	 * hundred would hold that many idle sockets. */
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)IDLE_CONNS);
	srand((unsigned)monotonic_ms() ^ (unsigned)getpid());
	if (pthread_create(&thread, NULL, fetcher_main, NULL) != 0)
		return -1;
	thread_running = true;
	return 0;
}

void fetch_submit(struct flight *f)
{
	struct job *j = calloc(1, sizeof *j);

	if (j == NULL) {
		struct fetch_result res = { .status = FETCH_FAILED, .res_fd = -1 };
		strcpy(res.reason, "out of memory");
		flight_finish(f, &res);
		return;
	}
	j->flight = f;
	j->tmp.tmp_fd = j->tmp.tmp_dirfd = -1;
	peer_prepare(&j->peer, f, on_peer);
	if (f->req.kind != REQ_SUMDB && config_denied(cfg, f->req.path)) {
		text_fail(j->notfound, sizeof j->notfound, "%s is refused by this proxy (-deny)", f->req.path);
		finish(j, FETCH_NOTFOUND, j->notfound);
		return;
	}
	j->excluded = f->req.kind != REQ_SUMDB && config_excluded(cfg, f->req.path);
	requeue(j, 0);
}

void fetch_stop(int64_t deadline_ms)
{
	if (!thread_running)
		return;
	thread_running = false;
	atomic_store(&stop_deadline, deadline_ms > 0 ? deadline_ms : 1);
	curl_multi_wakeup(multi);
	pthread_join(thread, NULL);
	curl_multi_cleanup(multi);
	multi = NULL;
	fetchq_free(&waiting);
}
