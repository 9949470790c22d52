/*
 * log: error and warning lines on stderr, and the access log.
 *
 * Contract: each log_* call writes one whole line ("<RFC 3339 UTC time>
 * <level> <message>\n") with a single write(2), so lines from different
 * threads never interleave.  Access-log lines are formatted by the caller's
 * thread into a buffer and written by a background thread, so a slow log
 * disk never delays a response; when the buffer is full the line is
 * dropped and counted (accesslog_dropped()) rather than waited for.
 * A leaf: it calls no other goproxyd file.
 */
#ifndef GOPROXYD_LOG_H
#define GOPROXYD_LOG_H

#include <stdbool.h>
#include <stdint.h>

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct access_entry {
	const char *remote;      /* client address */
	const char *method;
	const char *path;        /* as received, still percent-encoded */
	unsigned status;
	uint64_t bytes;          /* response body bytes */
	int64_t usec;            /* from request to response queued */
	const char *cache;       /* "hit", "miss", "stale" or "-" */
};

/* path: NULL or "" for no access log, "-" or "stderr" for stderr, else a
 * file opened for appending.  json selects one JSON object per line. */
int accesslog_open(const char *path, bool json);
bool accesslog_enabled(void);
void accesslog_write(const struct access_entry *e);
/* Reopens the file (after logrotate moved it); for SIGHUP. */
void accesslog_reopen(void);
/* Access-log lines dropped so far because the writer fell behind. */
uint64_t accesslog_dropped(void);
/* Writes what is buffered and stops the writer thread. */
void accesslog_close(void);

#endif
