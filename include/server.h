/*
 * server: the libmicrohttpd front end.  Each request is routed (route.h),
 * answered from the cache when it can be (an fd response: sendfile, never
 * read into memory), and otherwise suspended while its one upstream fetch
 * runs (flight.h), then resumed and answered from the stored file, a stale
 * copy, or an error.
 *
 * Contract: a handler decides exactly one outcome: a file to serve, or a
 * status with a one-line text/plain reason and Cache-Control: no-store.
 * Serving threads never wait on the network.
 */
#ifndef GOPROXYD_SERVER_H
#define GOPROXYD_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* Serves on the listening socket listen_fd (ownership passes to the
 * server).  Each serving thread gets a socket of its own bound with
 * SO_REUSEPORT, unless shared is set (a socket from systemd): then they all
 * accept from listen_fd. */
int server_start(const struct config *cfg, int listen_fd, bool shared);
/* Stops accepting connections; requests already in progress go on. */
void server_quiesce(void);
/* Requests received and not yet completely answered. */
unsigned server_inflight(void);
/* Client connections open now, and refused so far for -maxConns or
 * -maxConnsPerIP. */
void server_connections(unsigned *open, uint64_t *refused);
/* Closes every connection and stops the serving threads. */
void server_stop(void);

struct request;
/* Is r a file warming must leave alone: a module refused (-deny) or
 * private (-exclude: fetched by the go command, only when a client asks),
 * or a checksum-database lookup that is not forwarded (-noSumPatterns
 * too)?  Warming asks this (warm.h).
 * Any thread, once server_start() has run. */
bool server_refuses(const struct request *r);

#endif
