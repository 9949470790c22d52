/*
 * sumdburl: where each checksum database is reached.
 *
 * A database given as NAME=URL in -sumdb is reached at URL.  Otherwise
 * goproxyd decides as the go command does: it asks the -proxy entries in
 * order for /sumdb/NAME/supported.  The first that answers 200 proxies the
 * database (<entry>/sumdb/NAME).  A 404 or 410 moves on to the next entry,
 * and so does any error after a '|'.  Any other answer leaves the database
 * unavailable for now.  With no entry left, it is reached directly at
 * https://NAME.
 *
 * Contract: sumdb_url() may block on the network: call it from the verifier
 * pool or the `verify` command, never from a serving thread or the
 * fetcher.  sumdb_locate() is its asynchronous form for the fetcher: the
 * decision runs on the locator's own thread (started by
 * sumdb_locate_start()) and done() is called there.  A decision, once
 * made, holds for the life of the process and its string stays valid
 * until sumdb_url_free(); an unavailable database is asked about again at
 * the next call.  sumdb_url_known() never blocks.  All are thread-safe
 * after sumdb_url_init().
 */
#ifndef GOPROXYD_SUMDBURL_H
#define GOPROXYD_SUMDBURL_H

#include <stddef.h>

#include "config.h"

/* Needs httpget_init() first. */
int sumdb_url_init(const struct config *cfg);
void sumdb_url_free(void);

/* The locator thread, for sumdb_locate(). */
int sumdb_locate_start(void);
/* Ends the decisions asked for ("goproxyd is shutting down"), aborting
 * one in progress, then joins the thread. */
void sumdb_locate_stop(void);

/* db's base URL (no trailing '/'), deciding it now if needed; NULL with a
 * one-line reason while the database is unavailable. */
const char *sumdb_url(const struct sumdb_conf *db, char *reason, size_t n);
/* db's base URL if already decided, else NULL. */
const char *sumdb_url_known(const struct sumdb_conf *db);
/* Decides where db is reached on the locator thread, then calls
 * done(arg, NULL), or done(arg, reason) while it is unavailable. */
void sumdb_locate(const struct sumdb_conf *db, void (*done)(void *arg, const char *reason),
                  void *arg);

#endif
