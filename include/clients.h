/*
 * clients: what one client host may hold, and how long a request's
 * headers may take.  Connections are counted per client address (the
 * whole IPv4 or IPv6 address) across every serving thread, because each
 * serving thread is a libmicrohttpd daemon of its own and a per-daemon
 * limit is no per-host limit.  A sweeper thread shuts down the socket of
 * a connection whose request headers have not all arrived within the
 * header timeout, counted from the connection's start or from the end of
 * its previous answer; libmicrohttpd then sees end-of-file and closes it
 * (no answer is sent).  Activity does not extend that deadline, unlike
 * libmicrohttpd's own connection timeout (-clientTimeout).
 *
 * Contract: clients_start() runs once on the main thread before the
 * serving threads start, clients_stop() once after they have stopped.
 * clients_admit(), clients_open(), clients_close(), clients_headers_done()
 * and clients_answered() run on the serving threads; clients_open()'s
 * handle stays valid until clients_close(), which must come before the
 * socket is closed (libmicrohttpd's NOTIFY_CLOSED does).  A NULL handle
 * (out of memory) is accepted everywhere and means "not tracked".
 * clients_headers_done() and clients_answered() take no lock, make no
 * system call and allocate nothing: they are on the hit path.
 */
#ifndef GOPROXYD_CLIENTS_H
#define GOPROXYD_CLIENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct client_conn;

/* max_per_addr 0: no per-address limit.  Returns 0, or -1 (logged). */
int clients_start(int64_t header_timeout_ms, unsigned max_per_addr);
void clients_stop(void);
/* May a connection from sa be accepted (fewer than the limit open)? */
bool clients_admit(const struct sockaddr *sa);
/* A connection from sa on socket fd has started; its header clock runs. */
struct client_conn *clients_open(int fd, const struct sockaddr *sa);
void clients_close(struct client_conn *c);
/* All of a request's headers have arrived: no deadline while it is answered. */
void clients_headers_done(struct client_conn *c);
/* An answer is finished: the next request's headers are due in time. */
void clients_answered(struct client_conn *c);
/* One pass of the sweeper: shuts down the socket of every connection
 * whose header deadline is at or before now_ms (monotonic ms).  The
 * sweeper thread runs it; unit tests call it with a time of their own. */
void clients_sweep(int64_t now_ms);
/* Connections refused for the per-address limit, and closed at the
 * header deadline, so far. */
void clients_counts(uint64_t *refused_per_addr, uint64_t *header_timeouts);

#endif
