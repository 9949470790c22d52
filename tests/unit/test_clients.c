/*
 * test_clients: clients.c's bookkeeping without a network: per-address
 * counting (IPv4, IPv6, IPv4-mapped IPv6 as IPv4) against -maxConnsPerIP,
 * and the header deadline (armed at open and after an answer, cleared
 * while a request is answered) driven by clients_sweep() with times of the
 * test's own.  Connections are socketpair() ends, so a shutdown is seen
 * by reading the other end.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "clients.h"
#include "clock.h"

#define TIMEOUT_MS 60000   /* far beyond the test: only clients_sweep() fires */
#define LIMIT 2

static struct sockaddr_in v4(const char *a)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(1234) };

	assert_int_equal(inet_pton(AF_INET, a, &s.sin_addr), 1);
	return s;
}

static struct sockaddr_in6 v6(const char *a)
{
	struct sockaddr_in6 s = { .sin6_family = AF_INET6, .sin6_port = htons(1234) };

	assert_int_equal(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
	return s;
}

#define SA(x) ((const struct sockaddr *)&(x))

static uint64_t refused(void)
{
	uint64_t r, t;

	clients_counts(&r, &t);
	return r;
}

static uint64_t timeouts(void)
{
	uint64_t r, t;

	clients_counts(&r, &t);
	return t;
}

static void test_per_address_limit(void **state)
{
	struct sockaddr_in a = v4("192.0.2.1"), b = v4("192.0.2.2");
	struct sockaddr_in6 mapped = v6("::ffff:192.0.2.1"), six = v6("2001:db8::1");
	struct client_conn *c1, *c2, *c3;
	uint64_t r0 = refused();

	(void)state;
	assert_true(clients_admit(SA(a)));
	c1 = clients_open(-1, SA(a));
	assert_true(clients_admit(SA(a)));
	c2 = clients_open(-1, SA(mapped));        /* the same host, seen over IPv6 */
	assert_false(clients_admit(SA(a)));
	assert_false(clients_admit(SA(mapped)));
	assert_true(clients_admit(SA(b)));         /* another host is not held back */
	assert_true(clients_admit(SA(six)));
	assert_int_equal(refused() - r0, 2);
	clients_close(c2);
	assert_true(clients_admit(SA(a)));         /* a slot is free again */
	c3 = clients_open(-1, SA(six));
	clients_close(c1);
	clients_close(c3);
	assert_int_equal(refused() - r0, 2);
}

/* Both ends of a fresh socketpair; the first is the "connection". */
static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

/* Has the connection end been shut down?  Its peer then reads end-of-file
 * (instead of would-block). */
static int shut(int peer)
{
	struct pollfd p = { .fd = peer, .events = POLLIN };
	char c;

	return poll(&p, 1, 0) == 1 && recv(peer, &c, 1, MSG_DONTWAIT) == 0;
}

static void test_header_deadline(void **state)
{
	struct sockaddr_in a = v4("192.0.2.10");
	int sv[2];
	int64_t t0 = monotonic_ms();
	uint64_t n0 = timeouts();
	struct client_conn *c;

	(void)state;
	pair(sv);
	c = clients_open(sv[0], SA(a));
	clients_sweep(t0 - 1);                     /* well before the deadline */
	assert_false(shut(sv[1]));
	clients_headers_done(c);                   /* answering: no deadline */
	clients_sweep(t0 + 10 * TIMEOUT_MS);
	assert_false(shut(sv[1]));
	assert_int_equal(timeouts(), n0);
	clients_answered(c);                       /* the next headers are due */
	clients_sweep(monotonic_ms() + TIMEOUT_MS - 1000);
	assert_false(shut(sv[1]));
	clients_sweep(monotonic_ms() + TIMEOUT_MS + 1000);
	assert_true(shut(sv[1]));
	assert_int_equal(timeouts(), n0 + 1);
	clients_sweep(monotonic_ms() + 10 * TIMEOUT_MS);   /* counted once */
	assert_int_equal(timeouts(), n0 + 1);
	clients_close(c);
	close(sv[0]);
	close(sv[1]);
}

/* The deadline runs from the connection's start, however busy it is. */
static void test_deadline_from_open(void **state)
{
	struct sockaddr_in a = v4("192.0.2.11");
	int sv[2];
	struct client_conn *c;
	int64_t t0;

	(void)state;
	pair(sv);
	t0 = monotonic_ms();
	c = clients_open(sv[0], SA(a));
	clients_sweep(monotonic_ms() + TIMEOUT_MS);
	assert_true(shut(sv[1]));
	assert_true(monotonic_ms() - t0 < TIMEOUT_MS);
	clients_close(c);
	close(sv[0]);
	close(sv[1]);
}

static void test_null_handles(void **state)
{
	(void)state;
	clients_headers_done(NULL);
	clients_answered(NULL);
	clients_close(NULL);
	/* No address (a UNIX socket): tracked for its deadline, never limited. */
	struct client_conn *c = clients_open(-1, NULL);
	assert_non_null(c);
	clients_close(c);
}

static int setup(void **state)
{
	(void)state;
	return clients_start(TIMEOUT_MS, LIMIT);
}

static int teardown(void **state)
{
	(void)state;
	clients_stop();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_address_limit),
		cmocka_unit_test(test_header_deadline),
		cmocka_unit_test(test_deadline_from_open),
		cmocka_unit_test(test_null_handles),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
