/*
 * progress: the progress report of a long subcommand (`goproxyd
 * prefetch`), on standard error.  On a terminal, a bar redrawn in place
 * (files done/total, bytes, rate, time left); otherwise, a plain line
 * every PROGRESS_LINE_MS, for logs.
 *
 * Contract: one thread (the subcommand's main thread) calls these.
 * progress_tick() may be called as often as wanted: it draws only when
 * due.  progress_end() ends the bar's line (a terminal) or writes one last
 * line.
 */
#ifndef GOPROXYD_PROGRESS_H
#define GOPROXYD_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define PROGRESS_LINE_MS 2000    /* a plain line this often */
#define PROGRESS_BAR_MS 200      /* the bar redrawn this often */

struct progress {
	FILE *out;
	bool tty;
	const char *what;            /* "prefetch" */
	int64_t start_ms, last_ms;   /* monotonic */
};

void progress_init(struct progress *p, FILE *out, const char *what);
void progress_tick(struct progress *p, unsigned done, unsigned total, uint64_t bytes);
void progress_end(struct progress *p, unsigned done, unsigned total, uint64_t bytes);

/* "1.5 MiB" style; pure. */
void progress_bytes(char *buf, size_t n, double bytes);

#endif
