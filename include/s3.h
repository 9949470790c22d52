/*
 * s3: the shared tier in an S3-compatible object store (-s3 URL: AWS S3,
 * Ceph RGW, MinIO, OSS, COS, Kodo), below the local cache directory.
 *
 * An object's name is the URL's prefix plus the file's cache key, so the
 * bucket holds the cache layout.  Requests are signed by libcurl
 * (CURLOPT_AWS_SIGV4) with the payload hash header set here
 * ("UNSIGNED-PAYLOAD"; curl adds none), path-style, with credentials from
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN or from
 * -s3CredentialsFile (the AWS shared-credentials format, profile
 * $AWS_PROFILE or "default").  Credentials go to libcurl only: never into
 * a URL, a log line or a metric.
 *
 * What is kept there: immutable files (.info, .mod, .zip of canonical
 * versions), checksum-database lookups and tiles, asked first on a local
 * miss; and mutable answers (lists, @latest, queries) with their fetch
 * time, asked when every upstream failed.  GETs run as
 * transfers on the fetcher (fetch.c asks s3_object_url() and s3_sign());
 * PUTs run here, on a pool of their own, after the file is published, so
 * they never delay a client.
 *
 * Contract: s3_init() runs once at start-up after httpget_init(), on the
 * main thread; s3_stop() after the store has stopped.  Everything else is
 * safe from any thread.
 */
#ifndef GOPROXYD_S3_H
#define GOPROXYD_S3_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "route.h"

struct s3_conf {
	const char *url;          /* -s3, or NULL: no store */
	bool virtual_host;        /* -s3AddressingStyle virtual: the bucket in url's host */
	const char *region;       /* -s3Region */
	const char *creds_file;   /* -s3CredentialsFile, or NULL: the environment */
	int64_t stall_ms;         /* -stallTimeout, for PUTs */
};

/* Checks the credentials with a HEAD of the bucket.  Returns 0 (the store
 * answered, or could not be reached: s3_unready() says so), or -1 with a
 * one-line reason naming the store (refused credentials, no bucket, no
 * credentials), after which goproxyd exits 1. */
int s3_init(const struct s3_conf *conf, char *why, size_t n);
bool s3_enabled(void);
/* Enabled, and its last request got an HTTP answer: while the store is
 * down, misses go straight upstream (the /readyz probe notices its return). */
bool s3_usable(void);
/* Does the store keep the answer to r?  Module files and answers, and
 * checksum-database lookups and tiles (not its latest tree head).  A
 * mutable answer is asked there only when every upstream failed. */
bool s3_keeps(const struct request *r);
/* The object's URL for a cache key. */
int s3_object_url(const char *key, char *url, size_t n);
/* Signs the request on e; *hdrs (curl_slist_free_all() after the
 * transfer) holds the headers it needs. */
int s3_sign(CURL *e, struct curl_slist **hdrs);
/* A response header line of a store GET: sets *fetched (Unix seconds) from
 * x-amz-meta-goproxyd-fetched. */
void s3_header(const char *data, size_t len, int64_t *fetched);
/* A store GET ended (usec long): status 0 when no HTTP answer came;
 * rejected: its object was then refused by the checks. */
void s3_got(long status, uint64_t bytes, int64_t usec, bool rejected);
/* Copies the published file fd (dup'ed here) to the object of key, in the
 * background, with retries.  replace: overwrite a bad object; otherwise a
 * conditional create (If-None-Match: *), or, once the store has answered
 * that with 501, a PUT after a HEAD that finds nothing.  The object carries the file's
 * mtime (its fetch time) as x-amz-meta-goproxyd-fetched. */
void s3_put(const char *key, int fd, bool replace);
/* NULL, or why the store is not ready ("S3 store URL is unreachable: ..."). */
const char *s3_unready(void);
void s3_stop(void);

/* /metrics readers. */
uint64_t s3_get_hits(void);
uint64_t s3_get_misses(void);
uint64_t s3_get_errors(void);
uint64_t s3_get_rejected(void);
uint64_t s3_puts(void);
uint64_t s3_put_errors(void);
uint64_t s3_put_exists(void);
uint64_t s3_bytes_in(void);
uint64_t s3_bytes_out(void);

#endif
