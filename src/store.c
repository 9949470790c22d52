/* store: see include/store.h.  store_submit() from any thread; everything
 * else on the store's disk threads, except on_verified() (a verifier
 * thread), which only hands the item back to them. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "gc.h"
#include "log.h"
#include "s3.h"
#include "store.h"
#include "validate.h"
#include "verify.h"
#include "workq.h"

/* Disk threads.  An fsync can take long on a busy disk; each holds one
 * thread, and the pool grows while every thread is busy, so a slow one
 * delays its own file and not the next. */
#define DISK_THREADS_MIN 2
#define DISK_THREADS_MAX 64
#define REASON_MAX 512

struct item {
	struct flight *flight;
	struct cache_tmp tmp;
	uint64_t size;
	store_done_fn done;
	void *arg;
	bool verified;              /* the verifier has answered */
	char origin[4096];
	char reason[REASON_MAX];    /* set: verification refused the file */
};

static struct workq *disk;
static store_check_fn extra_check;   /* store_set_check(): set before any fetch */

/* Ends the flight with one outcome; takes ownership of fd. */
static void finish(struct item *it, enum fetch_status st, int fd, const char *reason)
{
	struct fetch_result res = { .status = st, .res_fd = fd };
	struct stat sb;

	if (st == FETCH_OK && fstat(fd, &sb) == 0) {
		res.size = (uint64_t)sb.st_size;
		res.mtime = sb.st_mtim;
	}
	if (reason)
		snprintf(res.reason, sizeof res.reason, "%.*s", (int)sizeof res.reason - 1, reason);
	flight_finish(it->flight, &res);
}

static void done(struct item *it, enum store_outcome o, const char *reason)
{
	it->done(it->arg, o, reason);
	free(it);
}

/* --- is it fit to store? ------------------------------------------------------ */

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
		close(e.ce_fd);
		return;
	}
	if (cache_store_bytes(key, buf, len) < 0)
		log_warn("cannot store %s", key);
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

static const char *check_list(const struct request *r, const char *buf, size_t len)
{
	(void)r;
	return validate_list(buf, len);
}

static const char *check_mod(const struct request *r, const char *buf, size_t len)
{
	(void)r;
	return validate_mod(buf, len);
}

/* Reads the (small) body back and runs check over it. */
static const char *check_text(struct item *it, const char *(*check)(const struct request *,
                                                                     const char *, size_t))
{
	char *buf = malloc(it->size + 1);
	const char *bad;

	if (buf == NULL)
		return "out of memory";
	if (pread(it->tmp.tmp_fd, buf, it->size, 0) != (ssize_t)it->size)
		bad = "cannot read back the fetched answer";
	else {
		buf[it->size] = '\0';
		bad = check(&it->flight->req, buf, it->size);
	}
	free(buf);
	return bad;
}

static const char *check_body(struct item *it)
{
	const struct request *r = &it->flight->req;

	switch (r->kind) {
	case REQ_INFO:
	case REQ_LATEST:
		return check_text(it, check_info);
	case REQ_ZIP:
		return validate_zip(it->tmp.tmp_fd, r->path, r->version);
	case REQ_LIST:
		return check_text(it, check_list);
	case REQ_SUMDB:
		return check_text(it, validate_sumdb);
	case REQ_MOD:
		return check_text(it, check_mod);
	}
	return NULL;
}

/* --- publishing ---------------------------------------------------------------- */

static void publish(struct item *it)
{
	struct cache_tmp t = it->tmp;
	char why[REASON_MAX];
	int r;

	/* A mutable answer from the S3 store keeps its fetch time: it is as
	 * fresh as then, no fresher. */
	if (it->flight->fl_from_s3 && it->flight->fl_s3_fetched > 0) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT },
		                          { .tv_sec = (time_t)it->flight->fl_s3_fetched } };
		futimens(t.tmp_fd, ts);
	}
	r = cache_tmp_rename(&t);

	if (r < 0) {
		snprintf(why, sizeof why, "cannot store %.300s: %s", it->flight->key, strerror(-r));
		log_error("%s", why);
		finish(it, FETCH_FAILED, -1, why);
		done(it, STORE_FINISHED, NULL);
		return;
	}
	/* Copied to the S3 store in the background (before finish() frees
	 * the flight), unless it came from there. */
	if (s3_enabled() && s3_keeps(&it->flight->req) && !it->flight->fl_from_s3)
		s3_put(it->flight->key, t.tmp_fd,
		       it->flight->fl_s3_replace || !it->flight->req.immutable);
	/* The complete file is in the cache: answer now.  Syncing its
	 * directory only makes the rename survive a power loss, which is not
	 * worth a client's wait. */
	/* Listed before the waiters are answered, so that a client sees in
	 * /catalog what it was just sent (finish() also ends the flight,
	 * and with it the key). */
	catalog_note(it->flight->key, (int64_t)time(NULL));
	finish(it, FETCH_OK, t.tmp_fd, NULL);
	cache_tmp_sync_dir(&t);
	gc_check();
	done(it, STORE_FINISHED, NULL);
}

/* The second visit to a disk thread, after the verifier answered. */
static void after_verify(struct item *it)
{
	if (it->reason[0] == '\0') {
		publish(it);
		return;
	}
	cache_tmp_discard(&it->tmp);
	finish(it, FETCH_FAILED, -1, it->reason);
	done(it, STORE_FINISHED, NULL);
}

static void store_task(void *arg);

/* On a verifier thread: back to the disk threads for the rest. */
static void on_verified(void *arg, const char *reason)
{
	struct item *it = arg;

	it->verified = true;
	if (reason)
		snprintf(it->reason, sizeof it->reason, "%.200s: rejected: %.280s", it->origin, reason);
	if (workq_submit(disk, store_task, it) < 0)
		after_verify(it);   /* stopping: do it here, it is the last step */
}

static void store_task(void *arg)
{
	struct item *it = arg;
	char why[REASON_MAX];
	const char *bad;

	if (it->verified) {
		after_verify(it);
		return;
	}
	bad = check_body(it);
	if (bad == NULL && extra_check != NULL)
		bad = extra_check(&it->flight->req, it->tmp.tmp_fd, why, sizeof why);
	if (bad != NULL) {
		char line[REASON_MAX];

		snprintf(line, sizeof line, "%.300s: %.200s", it->origin, bad);
		snprintf(why, sizeof why, "%s", line);
		log_warn("rejected %s", why);
		cache_tmp_discard(&it->tmp);
		done(it, STORE_REJECTED, why);
		return;
	}
	if (verify_wanted(&it->flight->req))
		verify_submit(&it->flight->req, it->tmp.tmp_fd, on_verified, it);
	else
		publish(it);
}

void store_submit(struct flight *f, struct cache_tmp *tmp, uint64_t size, const char *origin,
                  store_done_fn done_fn, void *arg)
{
	struct item *it = calloc(1, sizeof *it);

	if (it == NULL) {
		cache_tmp_discard(tmp);
		done_fn(arg, STORE_REJECTED, "out of memory");
		return;
	}
	it->flight = f;
	it->tmp = *tmp;
	it->size = size;
	it->done = done_fn;
	it->arg = arg;
	snprintf(it->origin, sizeof it->origin, "%s", origin);
	if (disk == NULL || workq_submit(disk, store_task, it) < 0)
		store_task(it);   /* stopping: store it on this thread */
}

void store_set_check(store_check_fn fn)
{
	extra_check = fn;
}

int store_start(void)
{
	return (disk = workq_start(DISK_THREADS_MIN, DISK_THREADS_MAX)) ? 0 : -1;
}

void store_stop(void)
{
	workq_stop(disk);
	disk = NULL;
}
