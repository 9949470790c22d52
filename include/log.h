/*
 * log: error and warning lines on stderr.
 *
 * Contract: each call writes one whole line ("<RFC 3339 UTC time> <level>
 * <message>\n") with a single write(2), so lines from different threads
 * never interleave.  Nothing here allocates or blocks on a lock.
 */
#ifndef GOPROXYD_LOG_H
#define GOPROXYD_LOG_H

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
