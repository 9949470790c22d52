/* slowfsync: an LD_PRELOAD shim that makes fsync(2) and fdatasync(2) slow
 * for some files only, to stand in for a slow disk in the integration tests.
 *
 *   cc -shared -fPIC -O2 -o slowfsync.so tests/lib/slowfsync.c -ldl
 *   SLOWFSYNC_MATCH=slowdisk SLOWFSYNC_MS=8000 LD_PRELOAD=$PWD/slowfsync.so goproxyd ...
 *
 * When the path of the descriptor (readlink of /proc/self/fd/N) contains
 * the substring in SLOWFSYNC_MATCH, the call sleeps SLOWFSYNC_MS
 * milliseconds (default 0) and then does the real fsync.  Without
 * SLOWFSYNC_MATCH, or for any other file, it is the real call at once.
 * Every delayed call is logged on stderr ("slowfsync: N ms before fsync of
 * PATH"), so a test can tell from the daemon's log that the shim was in.
 *
 * Under an ASan build the preloaded library comes before the ASan runtime;
 * run with ASAN_OPTIONS=verify_asan_link_order=0 (the shim allocates
 * nothing, so that is safe). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*sync_fn)(int);

static long delay_ms(void)
{
	const char *s = getenv("SLOWFSYNC_MS");
	long ms = s ? strtol(s, NULL, 10) : 0;

	return ms > 0 ? ms : 0;
}

/* Sleeps first when fd's path contains SLOWFSYNC_MATCH. */
static void maybe_stall(int fd, const char *what)
{
	const char *match = getenv("SLOWFSYNC_MATCH");
	char link[64], path[4096];
	struct timespec ts;
	ssize_t n;
	long ms;

	if (match == NULL || *match == '\0' || (ms = delay_ms()) == 0)
		return;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof path - 1);
	if (n < 0)
		return;
	path[n] = '\0';
	if (strstr(path, match) == NULL)
		return;
	fprintf(stderr, "slowfsync: %ld ms before %s of %s\n", ms, what, path);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The next definition of name (libc's), looked up once; threads racing
 * here all store the same pointer. */
static sync_fn next_fn(sync_fn *cache, const char *name)
{
	sync_fn f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);

	if (f == NULL) {
		f = (sync_fn)dlsym(RTLD_NEXT, name);
		__atomic_store_n(cache, f, __ATOMIC_RELEASE);
	}
	return f;
}

int fsync(int fd)
{
	static sync_fn real;
	int saved = errno;

	maybe_stall(fd, "fsync");
	errno = saved;
	if (next_fn(&real, "fsync") == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return real(fd);
}

int fdatasync(int fd)
{
	static sync_fn real;
	int saved = errno;

	maybe_stall(fd, "fdatasync");
	errno = saved;
	if (next_fn(&real, "fdatasync") == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return real(fd);
}
