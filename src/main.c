/*
 * goproxyd: a caching Go module proxy.
 *
 * main: flags, start-up, signals and graceful shutdown, on the main thread.
 * Files depend on each other one way, from here down to the leaves:
 *
 *   main -> server -> warm -> fetch -> store -> verify -> sumdburl -> httpget
 *            |         |        |        \-> s3 -> httpget   \-> dirhash, note, tlog
 *            |         |        |-> fetchq, peer (the fleet's fetch locks)
 *            |         |        \-> direct (the go command, for origins)
 *            |         \-> gomod
 *            |-> respond, ops -> hot, auth
 *            \-> flight, cache, gc -> route, modpath, text
 *            \-> frontpage (ops) -> catalog; catalog (cache, store, gc) -> modpath
 *   metrics, log, workq, clock: leaves that every layer may use.
 * Subcommands (argv[1]) start only what they need: verify, gc, prefetch
 * (the fetch pipeline without the serving threads), export and import.
 *
 * Start-up order (start()) is the dependency order, bottom up; each init
 * takes the config it needs and keeps it: the cache, httpget (libcurl),
 * the S3 store (its credentials checked, so a refusal exits 1), the
 * checksum databases' locations and keys, the access log, metrics and
 * their readers, the disk-cap collector, the go command's check and the
 * direct pool, the listening socket, the catalog index (its walk of the
 * cache runs on a thread of its own, and nothing waits for it), the
 * locator, verifier and store pools, warming (its policy and flight.h's
 * hooks), the fetcher, and last the serving threads.
 * Shutdown first ends every fetch (the fetcher, the direct pool, whose
 * children are killed, then the verifier, store and locator pools,
 * each of which may still hand work to the next), so that every suspended
 * request is woken, and only then stops the serving threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "auth.h"
#include "cache.h"
#include "catalog.h"
#include "clock.h"
#include "config.h"
#include "direct.h"
#include "exportcmd.h"
#include "fetch.h"
#include "flight.h"
#include "gc.h"
#include "httpget.h"
#include "importcmd.h"
#include "log.h"
#include "metrics.h"
#include "prefetch.h"
#include "peer.h"
#include "s3.h"
#include "server.h"
#include "store.h"
#include "sumdburl.h"
#include "verify.h"
#include "verifycmd.h"
#include "warm.h"

/* SO_REUSEPORT would also let a second goproxyd bind the same port and
 * quietly share its connections; a plain bind first makes that an error. */
static int port_free(int fd, const struct sockaddr *sa, socklen_t len)
{
	int probe = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, v6only = 0, r;
	socklen_t vlen = sizeof v6only;

	if (probe < 0)
		return -1;
	setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (sa->sa_family == AF_INET6 && getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &vlen) == 0)
		setsockopt(probe, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
	r = bind(probe, sa, len);
	close(probe);
	return r;
}

static int bind_listen(int fd, const struct sockaddr *sa, socklen_t len)
{
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (port_free(fd, sa, len) < 0)
		return -1;
	/* The serving threads each listen on a socket of their own (server.c). */
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	if (bind(fd, sa, len) < 0 || listen(fd, 1024) < 0 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		return -1;
	return 0;
}

/* ":port" listens on every address, IPv6 and IPv4 alike where the kernel
 * allows one dual-stack socket. */
static int listen_any(const char *port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
	int off = 0, fd;

	a6.sin6_port = a4.sin_port = htons((uint16_t)atoi(port));
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
		if (bind_listen(fd, (struct sockaddr *)&a6, sizeof a6) == 0)
			return fd;
		close(fd);
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && bind_listen(fd, (struct sockaddr *)&a4, sizeof a4) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

static int listen_host(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res, *ai;
	int fd = -1, r;

	if ((r = getaddrinfo(host, port, &hints, &res)) != 0) {
		log_error("-listen %s:%s: %s", host, port, gai_strerror(r));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && bind_listen(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* The listening socket systemd passed (a goproxyd.socket unit, or
 * systemd-socket-activate): -1 if none, -2 if what was passed is unusable.
 * sd_listen_fds() also clears LISTEN_* so nothing we start inherits them. */
static int activated_listener(void)
{
	int n = sd_listen_fds(1), fd = SD_LISTEN_FDS_START;

	if (n == 0)
		return -1;
	if (n < 0) {
		log_error("socket activation: %s", strerror(-n));
		return -2;
	}
	if (n > 1) {
		log_error("socket activation: %d sockets passed; goproxyd serves on exactly one", n);
		return -2;
	}
	if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
		log_error("socket activation: fd %d is not a listening stream socket", fd);
		return -2;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		log_error("socket activation: %s", strerror(errno));
		return -2;
	}
	return fd;
}

static char listening[160];   /* for the start-up line */

/* Sets *shared when the socket came from systemd: it is then not ours to
 * clone with SO_REUSEPORT (systemd bound it, as another user). */
static int open_listener(const struct config *cfg, bool *shared)
{
	int fd = activated_listener();

	*shared = fd != -1;
	if (fd >= 0) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		char host[64] = "?", port[16] = "?";

		if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
			getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, port, sizeof port,
			            NI_NUMERICHOST | NI_NUMERICSERV);
		snprintf(listening, sizeof listening, "%s port %s (socket from systemd; -listen not used)",
		         host, port);
	}
	if (fd != -1)
		return fd;
	snprintf(listening, sizeof listening, "%s:%s", cfg->listen_host ? cfg->listen_host : "",
	         cfg->listen_port);
	fd = cfg->listen_host ? listen_host(cfg->listen_host, cfg->listen_port)
	                      : listen_any(cfg->listen_port);
	if (fd < 0)
		log_error("cannot listen on %s: %s", listening, strerror(errno));
	return fd;
}

/* Blocks until SIGTERM or SIGINT.  The signals are blocked in every thread
 * (set before any is created), so only this wait sees them. */
static void wait_for_stop(const sigset_t *set)
{
	for (;;) {
		int sig = sigwaitinfo(set, NULL);

		if (sig == SIGTERM || sig == SIGINT) {
			log_info("received %s: shutting down", strsignal(sig));
			return;
		}
		if (sig == SIGHUP)
			accesslog_reopen();
	}
}

/* Stop accepting, let requests and fetches in progress finish until the
 * deadline, then end what is left. */
static void shutdown_gracefully(const struct config *cfg)
{
	int64_t deadline = monotonic_ms() + cfg->shutdown_timeout_ms;

	sd_notify(0, "STOPPING=1");
	server_quiesce();
	/* Warming fetches nobody waits for are not worth waiting for. */
	while ((server_inflight() > 0 || flight_count() > flight_count_warm()) &&
	       monotonic_ms() < deadline)
		usleep(20 * 1000);
	fetch_stop(deadline);
	direct_stop();
	verify_stop(deadline);
	store_stop();
	s3_stop();   /* the PUTs the store queued */
	sumdb_locate_stop();
	/* Requests woken by aborted fetches still get their 404 answer. */
	for (int i = 0; i < 50 && server_inflight() > 0; i++)
		usleep(20 * 1000);
	if (server_inflight() > 0)
		log_warn("%u requests unfinished at the shutdown deadline", server_inflight());
}

static void describe(const struct config *cfg)
{
	char ups[1024] = "off (cache only)";
	size_t o = 0;

	for (size_t i = 0; i < cfg->n_upstreams && o < sizeof ups; i++)
		o += (size_t)snprintf(ups + o, sizeof ups - o, "%s%s", cfg->upstreams[i].url,
		                      i + 1 < cfg->n_upstreams
		                          ? (cfg->upstreams[i].fallback_on_error ? "|" : ",")
		                          : "");
	log_info("goproxyd %s listening on %s, cache %s, upstream %s", GOPROXYD_VERSION,
	         listening, cfg->cache_dir, ups);
}

/* --- /metrics readers: values that other files own ------------------------- */

/* Each reads a pair and keeps one: the values are gauges and counters,
 * so two reads a few microseconds apart are as good as one. */
static uint64_t read_conns(void) { unsigned o; uint64_t r; server_connections(&o, &r); return o; }
static uint64_t read_refused(void) { unsigned o; uint64_t r; server_connections(&o, &r); return r; }
static uint64_t read_flights(void) { return flight_count(); }
static uint64_t read_waiters(void) { return flight_waiters(); }
static uint64_t read_cache_files(void) { uint64_t f, b; cache_usage(&f, &b); return f; }
static uint64_t read_cache_bytes(void) { uint64_t f, b; cache_usage(&f, &b); return b; }
static uint64_t read_peer_waiting(void) { return peer_waiting(); }
static uint64_t read_evicted_units(void) { uint64_t u, b; gc_evicted(&u, &b); return u; }
static uint64_t read_evicted_bytes(void) { uint64_t u, b; gc_evicted(&u, &b); return b; }
static uint64_t read_warm_stored(void) { return warm_fetches(WARM_STORED); }
static uint64_t read_warm_notfound(void) { return warm_fetches(WARM_NOTFOUND); }
static uint64_t read_warm_failed(void) { return warm_fetches(WARM_FAILED); }

static const struct {
	const char *name, *type, *help;
	uint64_t (*read)(void);
} metric_readers[] = {
	{ "goproxyd_connections", "gauge", "Client connections open.", read_conns },
	{ "goproxyd_connections_refused_total", "counter",
	  "Client connections closed at once for -maxConns or -maxConnsPerIP.", read_refused },
	{ "goproxyd_fetches_inflight", "gauge", "Upstream fetches running or queued.", read_flights },
	{ "goproxyd_fetch_waiters", "gauge", "Requests suspended waiting for a fetch.", read_waiters },
	{ "goproxyd_fleet_waiting", "gauge",
	  "Fetches waiting for another instance on the cache directory to fetch the file.",
	  read_peer_waiting },
	{ "goproxyd_fleet_served_total", "counter",
	  "Fetches answered by another instance's fetch (its published file or its not-found).",
	  peer_served },
	{ "goproxyd_fleet_takeovers_total", "counter",
	  "Fetches taken over from an instance that died or showed no progress.", peer_takeovers },
	{ "goproxyd_s3_get_hits_total", "counter", "S3 store GETs that found the object.",
	  s3_get_hits },
	{ "goproxyd_s3_get_misses_total", "counter", "S3 store GETs answered 404.", s3_get_misses },
	{ "goproxyd_s3_get_errors_total", "counter",
	  "S3 store GETs that failed (no answer, or a status other than 200 and 404).", s3_get_errors },
	{ "goproxyd_s3_get_rejected_total", "counter",
	  "S3 store objects refused by the checks (fetched from upstream and replaced).",
	  s3_get_rejected },
	{ "goproxyd_s3_puts_total", "counter", "Files copied to the S3 store.", s3_puts },
	{ "goproxyd_s3_put_exists_total", "counter",
	  "PUTs not made because the object existed (412 to If-None-Match: *, or a HEAD where the store does not implement it).", s3_put_exists },
	{ "goproxyd_s3_put_errors_total", "counter", "PUTs that failed after their retries.",
	  s3_put_errors },
	{ "goproxyd_s3_received_bytes_total", "counter", "Body bytes received from the S3 store.",
	  s3_bytes_in },
	{ "goproxyd_s3_sent_bytes_total", "counter", "Body bytes copied to the S3 store.",
	  s3_bytes_out },
	{ "goproxyd_cache_files", "gauge", "Files in the cache directory.", read_cache_files },
	{ "goproxyd_cache_bytes", "gauge", "Bytes in the cache directory.", read_cache_bytes },
	{ "goproxyd_cache_evictions_total", "counter",
	  "Cache entries (versions or mutable files) evicted by -cacheMaxSize.", read_evicted_units },
	{ "goproxyd_cache_evicted_bytes_total", "counter", "Bytes evicted by -cacheMaxSize.",
	  read_evicted_bytes },
	{ "goproxyd_verify_rejected_total", "counter",
	  "Fetched files rejected by checksum-database verification.", verify_rejected },
	{ "goproxyd_direct_running", "gauge",
	  "Go commands running to fetch from origin repositories.", direct_running },
	{ "goproxyd_access_log_dropped_total", "counter",
	  "Access-log lines dropped because the writer fell behind.", accesslog_dropped },
	/* Labelled series of one name follow each other (metrics.h). */
	{ "goproxyd_warm_fetches_total{outcome=\"stored\"}", "counter",
	  "Warming fetches (-warm) by outcome.", read_warm_stored },
	{ "goproxyd_warm_fetches_total{outcome=\"notfound\"}", "counter", NULL, read_warm_notfound },
	{ "goproxyd_warm_fetches_total{outcome=\"failed\"}", "counter", NULL, read_warm_failed },
	{ "goproxyd_warm_files_total{use=\"useful\"}", "counter",
	  "Warmed files a client asked for (useful: also a request that joined the warming "
	  "fetch), or did not within 10 minutes (wasted).", warm_useful },
	{ "goproxyd_warm_files_total{use=\"wasted\"}", "counter", NULL, warm_wasted },
	{ "goproxyd_warm_pending", "gauge",
	  "Warmed files not yet asked for, for less than 10 minutes.", warm_pending },
	{ "goproxyd_warm_capped_total", "counter",
	  "Files not warmed because -warm fetches were already queued or running.",
	  warm_skipped_capped },
};

static int start_metrics(const struct config *cfg)
{
	metrics_init(cfg);
	for (size_t i = 0; i < sizeof metric_readers / sizeof metric_readers[0]; i++)
		if (metrics_register(metric_readers[i].name, metric_readers[i].type,
		                     metric_readers[i].help, metric_readers[i].read) < 0)
			return -1;
	return 0;
}

/* Every client connection, upstream transfer and temp file holds a file
 * descriptor: -maxConns 1024 and -maxFetches 256 alone pass the usual soft
 * limit of 1024.  Raise it to the hard limit, as the go command does. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Everything main() starts, bottom up (see the top of this file); returns
 * 0, 1 (runtime error) or 2 (a flag whose value only proves bad now, such
 * as a verifier key). */
static int start(const struct config *cfg)
{
	const struct httpget_conf http = { cfg->netrc, cfg->connect_timeout_ms };
	const struct s3_conf s3 = { cfg->s3_url, cfg->s3_virtual, cfg->s3_region,
	                            cfg->s3_creds_file, cfg->stall_timeout_ms };
	char why[512];
	bool shared;
	int r, fd;

	if ((r = cache_init(cfg->cache_dir, true)) < 0) {
		log_error("-cacheDir %s: %s", cfg->cache_dir, strerror(-r));
		return 1;
	}
	if (cfg->auth_file && auth_load(cfg->auth_file, why, sizeof why) < 0) {
		log_error("-authFile %s: %s", cfg->auth_file, why);
		return 2;
	}
	if (httpget_init(&http) < 0 || sumdb_url_init(cfg) < 0)
		return 1;
	if (s3_init(&s3, why, sizeof why) < 0) {
		log_error("%s", why);
		return 1;
	}
	if (verify_init(cfg) < 0)
		return 2;
	if ((r = accesslog_open(cfg->access_log, cfg->log_json)) < 0) {
		log_error("-accessLog %s: %s", cfg->access_log, strerror(-r));
		return 1;
	}
	if (start_metrics(cfg) < 0 || gc_start(cfg) < 0 || direct_start(cfg) < 0)
		return 1;
	if ((fd = open_listener(cfg, &shared)) < 0)
		return 1;
	/* Before anything publishes; its walk runs on its own thread. */
	if (catalog_start(cache_root()) < 0)
		return 1;
	if (sumdb_locate_start() < 0 || verify_start() < 0 || store_start() < 0)
		return 1;
	warm_init(cfg, server_refuses);
	flight_set_hooks(fetch_nudge, warm_fetched);
	if (fetch_start(cfg) < 0)
		return 1;
	if (server_start(cfg, fd, shared) < 0) {
		log_error("cannot start the HTTP server");
		return 1;
	}
	return 0;
}

/* Stops whatever start() got running (each stop is a no-op for what did
 * not start): the fetch pipeline first, which wakes every request still
 * waiting, then the serving threads. */
static void stop_services(void)
{
	fetch_stop(0);
	direct_stop();
	verify_stop(0);
	store_stop();
	s3_stop();
	sumdb_locate_stop();
	server_stop();
	sumdb_url_free();
	httpget_free();
	gc_stop();
	catalog_stop();
	accesslog_close();
	auth_free();
	cache_shutdown();
}

int main(int argc, char **argv)
{
	struct config cfg;
	sigset_t set;
	int r;

	if (argc > 1 && strcmp(argv[1], "verify") == 0)
		return verifycmd_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "gc") == 0)
		return gccmd_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "export") == 0)
		return exportcmd_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "import") == 0)
		return importcmd_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "prefetch") == 0)
		return prefetch_main(argc - 1, argv + 1);
	r = config_parse_args(&cfg, argc, argv, stdout, stderr);
	if (r != CONFIG_RUN) {
		config_free(&cfg);
		return r == CONFIG_EXIT_OK ? 0 : 2;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	raise_fd_limit();

	if ((r = start(&cfg)) != 0) {
		stop_services();
		config_free(&cfg);
		return r;
	}
	describe(&cfg);
	sd_notify(0, "READY=1");
	wait_for_stop(&set);
	shutdown_gracefully(&cfg);
	stop_services();
	config_free(&cfg);
	log_info("stopped");
	return 0;
}
