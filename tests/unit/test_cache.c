/*
 * test_cache: the on-disk cache in a fresh mkdtemp() directory per test:
 * cache_init (creating, resolving symlinks, sweeping dead processes' temp
 * files), the key of each request kind, atomic publishing through temp
 * files, cache_open's refusals, the usage counters, @v/list rebuilt from
 * .info files, and cache_unwritable().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "route.h"
#include "text.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fixture: a fresh directory per test ------------------------------- */

struct fx {
	char dir[PATH_MAX - 64]; /* the mkdtemp() directory */
	char cache[PATH_MAX];   /* the cache directory inside it */
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);
	const char *tmp = getenv("TMPDIR");

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof fx->dir, "%s/test_cache.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->cache, sizeof fx->cache, "%s/cache", fx->dir);
	cache_set_usage(0, 0);   /* the counters are process-wide */
	*state = fx;
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		chmod(path, 0700);
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	cache_shutdown();
	chmod(fx->dir, 0700);
	chmod(fx->cache, 0700);
	nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* ---- helpers ---------------------------------------------------------- */

static void
path_of(char *out, size_t n, const char *dir, const char *rel)
{
	int r = snprintf(out, n, "%s/%s", dir, rel);

	assert_true(r > 0 && (size_t)r < n);
}

/* Writes body to dir/rel, creating the directories on the way. */
static void
put_file(const char *dir, const char *rel, const char *body)
{
	char path[PATH_MAX];
	FILE *f;

	path_of(path, sizeof path, dir, rel);
	for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
	f = fopen(path, "w");
	if (f == NULL)
		fail_msg("create %s: %s", path, strerror(errno));
	fputs(body, f);
	assert_int_equal(fclose(f), 0);
}

static bool
exists(const char *dir, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	path_of(path, sizeof path, dir, rel);
	return lstat(path, &st) == 0;
}

/* The whole content of fd (from offset 0), NUL-terminated; caller frees. */
static char *
slurp_fd(int fd)
{
	char *buf = malloc(65536);
	ssize_t n;

	assert_non_null(buf);
	n = pread(fd, buf, 65535, 0);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

/* Names in dir (without . and ..), sorted, joined by spaces. */
static void
list_dir(const char *dir, char *out, size_t n)
{
	struct dirent **names;
	int k = scandir(dir, &names, NULL, alphasort);
	size_t off = 0;

	if (k < 0)
		fail_msg("scandir %s: %s", dir, strerror(errno));
	out[0] = '\0';
	for (int i = 0; i < k; i++) {
		const char *s = names[i]->d_name;

		if (strcmp(s, ".") != 0 && strcmp(s, "..") != 0)
			off += (size_t)snprintf(out + off, n - off, "%s%s", off ? " " : "", s);
		free(names[i]);
		assert_true(off < n);
	}
	free(names);
}

/* The host tag cache.c puts in temp-file names. */
static uint32_t
host_tag(void)
{
	char host[256] = "";

	gethostname(host, sizeof host - 1);
	return (uint32_t)text_hash_str(host);
}

/* The pid of a process that has just exited (and been reaped). */
static pid_t
dead_pid(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return pid;
}

/* A child that creates its temp file under dir and write-locks it the way
 * cache_tmp_create() does, then waits to be killed (stay) or exits at once
 * and, unreaped, keeps its pid as a zombie.  Returns its pid; the file's
 * name is put in rel. */
static pid_t
locking_child(const char *dir, int seq, bool stay, char *rel, size_t n)
{
	char path[PATH_MAX], c;
	int fds[2];
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	snprintf(rel, n, CACHE_TMP_PREFIX "%ld.%08x-%d-x", (long)(pid ? pid : getpid()), host_tag(), seq);
	path_of(path, sizeof path, dir, rel);
	if (pid == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* a failed test leaves no child */
		fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);

		if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0 || write(fds[1], "x", 1) != 1)
			_exit(1);
		while (stay)
			pause();
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	close(fds[0]);
	return pid;
}

/* Whether some open file description holds a lock on the file at path. */
static bool
locked(const char *path)
{
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
	close(fd);
	return fl.l_type != F_UNLCK;
}

static void
parse(const char *url, struct request *r)
{
	const char *why = NULL;
	int st = route_parse(url, r, &why);

	if (st != 0)
		fail_msg("route_parse(%s) = %d: %s", url, st, why ? why : "");
}

/* ---- cache_init ------------------------------------------------------- */

static void
test_init_creates_dir(void **state)
{
	struct fx *fx = *state;
	char nested[PATH_MAX], real[PATH_MAX];
	struct stat st;

	path_of(nested, sizeof nested, fx->dir, "a/b/cache");
	assert_int_equal(cache_init(nested, false), -ENOENT);
	cache_shutdown();
	assert_int_equal(cache_init(nested, true), 0);
	assert_int_equal(stat(nested, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_non_null(realpath(nested, real));
	assert_string_equal(cache_root(), real);
	assert_null(cache_unwritable());
	cache_shutdown();
	assert_null(cache_root());
}

/* A symlinked cache directory (systemd's CacheDirectory= under
 * DynamicUser is one) is resolved: files go to the real directory. */
static void
test_init_resolves_symlink(void **state)
{
	struct fx *fx = *state;
	char link[PATH_MAX], real[PATH_MAX];

	assert_int_equal(mkdir(fx->cache, 0755), 0);
	path_of(link, sizeof link, fx->dir, "link");
	assert_int_equal(symlink(fx->cache, link), 0);
	assert_int_equal(cache_init(link, true), 0);
	assert_non_null(realpath(fx->cache, real));
	assert_string_equal(cache_root(), real);
	assert_int_equal(cache_store_bytes("example.com/m/@v/list", "v1.0.0\n", 7), 0);
	assert_true(exists(fx->cache, "example.com/m/@v/list"));
}

static void
test_init_sweeps_stale_temps(void **state)
{
	struct fx *fx = *state;
	static const char *const kept_names[] = { "live", "other-host-new" };
	static const char *const gone_names[] = { "dead", "own", "other-host-old", "untagged-dead", "junk",
	                                          "unlocked-live-pid" };
	char dead[256], live[256], own[256], oh_new[256], oh_old[256], untagged[256], path[PATH_MAX];
	char zombie[256], unlocked[256];
	const char *kept[N(kept_names)], *gone[N(gone_names)];
	uint32_t tag = host_tag();
	pid_t gone_pid = dead_pid(), live_pid, zombie_pid;
	struct timespec two_days_ago[2];
	uint64_t files, bytes;

	assert_int_equal(kill(getppid(), 0), 0);   /* our parent is alive */
	assert_int_equal(mkdir(fx->cache, 0755), 0);
	snprintf(dead, sizeof dead, "m/@v/" CACHE_TMP_PREFIX "%ld.%08x-1-v1.0.0.zip", (long)gone_pid, tag);
	/* A sibling on this directory, alive and writing: its lock says so. */
	live_pid = locking_child(fx->cache, 2, true, live, sizeof live);
	/* A writer killed while its pid lives on as an unreaped zombie. */
	zombie_pid = locking_child(fx->cache, 8, false, zombie, sizeof zombie);
	{
		siginfo_t si;   /* exited (its files closed), not reaped */
		assert_int_equal(waitid(P_PID, (id_t)zombie_pid, &si, WEXITED | WNOWAIT), 0);
	}
	/* Unlocked: whoever made it is gone, though its pid is in use. */
	snprintf(unlocked, sizeof unlocked, CACHE_TMP_PREFIX "%ld.%08x-7-x", (long)getppid(), tag);
	snprintf(own, sizeof own, CACHE_TMP_PREFIX "%ld.%08x-3-x", (long)getpid(), tag);
	snprintf(oh_new, sizeof oh_new, CACHE_TMP_PREFIX "%ld.%08x-4-x", (long)gone_pid, tag ^ 1);
	snprintf(oh_old, sizeof oh_old, "m/" CACHE_TMP_PREFIX "%ld.%08x-5-x", (long)gone_pid, tag ^ 1);
	snprintf(untagged, sizeof untagged, CACHE_TMP_PREFIX "%ld-6-x", (long)gone_pid);
	kept[0] = live;
	kept[1] = oh_new;
	gone[0] = dead;
	gone[1] = own;
	gone[2] = oh_old;
	gone[3] = untagged;
	gone[4] = CACHE_TMP_PREFIX "junk";
	gone[5] = unlocked;

	for (size_t i = 0; i < N(kept); i++)
		if (kept[i] != live)
			put_file(fx->cache, kept[i], "tmp");
	for (size_t i = 0; i < N(gone); i++)
		put_file(fx->cache, gone[i], "tmp");
	/* Another host's temp file is kept for a day, then swept. */
	clock_gettime(CLOCK_REALTIME, &two_days_ago[0]);
	two_days_ago[0].tv_sec -= 2 * 24 * 3600;
	two_days_ago[1] = two_days_ago[0];
	path_of(path, sizeof path, fx->cache, oh_old);
	assert_int_equal(utimensat(AT_FDCWD, path, two_days_ago, 0), 0);
	put_file(fx->cache, "m/@v/list", "v1\n");
	put_file(fx->cache, "m/@latest", "{}\n\n");

	/* The zombie's pid still exists: only its lock died with it. */
	assert_int_equal(kill(zombie_pid, 0), 0);
	assert_int_equal(cache_init(fx->cache, false), 0);
	if (exists(fx->cache, zombie))
		fail_msg("a zombie writer's temp file (%s) was not swept", zombie);
	assert_int_equal(kill(live_pid, SIGKILL), 0);
	assert_int_equal(waitpid(live_pid, NULL, 0), live_pid);
	assert_int_equal(waitpid(zombie_pid, NULL, 0), zombie_pid);
	for (size_t i = 0; i < N(kept); i++)
		if (!exists(fx->cache, kept[i]))
			fail_msg("%s (%s) was swept", kept_names[i], kept[i]);
	for (size_t i = 0; i < N(gone); i++)
		if (exists(fx->cache, gone[i]))
			fail_msg("%s (%s) was not swept", gone_names[i], gone[i]);
	assert_true(exists(fx->cache, "m/@v/list"));
	assert_true(exists(fx->cache, "m/@latest"));
	/* The walk counted the two cache files, and no temp file. */
	cache_usage(&files, &bytes);
	assert_int_equal(files, 2);
	assert_int_equal(bytes, 3 + 4);
}

/* A temp file is locked from creation until rename or discard, by its own
 * open file description: a sweep keeps it, and the published file is left
 * unlocked; once its writer is gone, a periodic sweep removes it. */
static void
test_tmp_lock(void **state)
{
	struct fx *fx = *state;
	struct cache_tmp t, u;
	char tpath[PATH_MAX], key[] = "m/@v/v1.0.0.mod";
	struct stat st;

	assert_int_equal(cache_init(fx->cache, true), 0);
	assert_int_equal(cache_tmp_create(key, &t), 0);
	snprintf(tpath, sizeof tpath, "%s/m/@v/%s", cache_root(), t.name);
	assert_true(locked(tpath));
	assert_int_equal(lstat(tpath, &st), 0);
	assert_int_equal(cache_temp_remove_if_dead(tpath, t.name, &st), 0);
	assert_true(exists(fx->cache, "m/@v/") && lstat(tpath, &st) == 0);
	assert_int_equal(cache_tmp_write(&t, "module m\n", 9), 0);
	assert_int_equal(cache_tmp_publish(&t), 0);
	snprintf(tpath, sizeof tpath, "%s/m/@v/v1.0.0.mod", cache_root());
	assert_false(locked(tpath));
	close(t.tmp_fd);

	/* A writer that is gone leaves an unlocked file: removed. */
	assert_int_equal(cache_tmp_create(key, &u), 0);
	snprintf(tpath, sizeof tpath, "%s/m/@v/%s", cache_root(), u.name);
	assert_int_equal(lstat(tpath, &st), 0);
	{
		struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
		assert_int_equal(fcntl(u.tmp_fd, F_OFD_SETLK, &fl), 0);
	}
	assert_int_equal(cache_temp_remove_if_dead(tpath, u.name, &st), 1);
	assert_int_not_equal(lstat(tpath, &st), 0);
	cache_tmp_discard(&u);
}

/* ---- keys ------------------------------------------------------------- */

static void
test_key_kinds(void **state)
{
	static const struct {
		const char *url, *key;
	} cases[] = {
		{ "/example.com/m/@v/list", "example.com/m/@v/list" },
		{ "/example.com/m/@latest", "example.com/m/@latest" },
		{ "/github.com/%21burnt%21sushi/toml/@v/v1.2.0.info",
		  "github.com/!burnt!sushi/toml/@v/v1.2.0.info" },
		/* A query is mutable: never under @v/. */
		{ "/example.com/m/@v/master.info", "example.com/m/@query/master.info" },
		{ "/example.com/m/@v/v1.2.info", "example.com/m/@query/v1.2.info" },
		{ "/example.com/m/@v/v1.0.0-!r!c1.mod", "example.com/m/@v/v1.0.0-!r!c1.mod" },
		{ "/example.com/m/v2/@v/v2.1.0.zip", "example.com/m/v2/@v/v2.1.0.zip" },
		{ "/sumdb/sum.golang.org/latest", "sumdb/sum.golang.org/latest" },
		{ "/sumdb/sum.golang.org/lookup/golang.org/x/text@v0.3.0",
		  "sumdb/sum.golang.org/lookup/golang.org/x/text@v0.3.0" },
		{ "/sumdb/sum.golang.org/tile/8/0/x001/x234/067.p/1",
		  "sumdb/sum.golang.org/tile/8/0/x001/x234/067.p/1" },
	};
	struct request r;
	char key[CACHE_KEY_MAX];

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		parse(cases[i].url, &r);
		assert_int_equal(cache_key(&r, key, sizeof key), 0);
		if (strcmp(key, cases[i].key) != 0)
			fail_msg("cache_key(%s) = %s, want %s", cases[i].url, key, cases[i].key);
	}

	/* A request built by hand, and the .info key of a version. */
	memset(&r, 0, sizeof r);
	r.kind = REQ_ZIP;
	strcpy(r.esc_path, "example.com/!m");
	strcpy(r.esc_version, "v1.0.0");
	r.immutable = true;
	assert_int_equal(cache_key(&r, key, sizeof key), 0);
	assert_string_equal(key, "example.com/!m/@v/v1.0.0.zip");
	assert_int_equal(cache_key_info("example.com/!m", "v1.0.0", key, sizeof key), 0);
	assert_string_equal(key, "example.com/!m/@v/v1.0.0.info");

	/* Too small a buffer. */
	assert_int_equal(cache_key(&r, key, 10), -ENAMETOOLONG);
	assert_int_equal(cache_key_info("example.com/!m", "v1.0.0", key, 29), -ENAMETOOLONG);
	assert_int_equal(cache_key_info("example.com/!m", "v1.0.0", key, 30), 0);
}

/* ---- publishing ------------------------------------------------------- */

static void
test_tmp_publish(void **state)
{
	struct fx *fx = *state;
	const char *key = "example.com/m/@v/v1.0.0.mod", *body = "module example.com/m\n";
	char vdir[PATH_MAX], names[1024], prefix[64], path[PATH_MAX], *got;
	struct cache_tmp t;
	struct cache_entry e;
	struct stat st, fst;

	assert_int_equal(cache_init(fx->cache, true), 0);
	assert_int_equal(cache_tmp_create(key, &t), 0);
	assert_true(t.tmp_fd >= 0);
	assert_true(t.tmp_dirfd >= 0);
	assert_string_equal(t.final, "v1.0.0.mod");
	/* The temp file sits next to the final name, named for this process
	 * and host, so the start-up sweep can tell whose it is. */
	snprintf(prefix, sizeof prefix, CACHE_TMP_PREFIX "%ld.%08x-", (long)getpid(), host_tag());
	assert_memory_equal(t.name, prefix, strlen(prefix));
	path_of(vdir, sizeof vdir, fx->cache, "example.com/m/@v");
	list_dir(vdir, names, sizeof names);
	assert_string_equal(names, t.name);

	assert_int_equal(write(t.tmp_fd, body, strlen(body)), (ssize_t)strlen(body));
	/* Until it is published the final name does not exist. */
	assert_int_equal(cache_open(key, &e), -ENOENT);
	assert_int_equal(cache_stat(key, &st), -ENOENT);

	assert_int_equal(cache_tmp_publish(&t), 0);
	assert_int_equal(t.tmp_dirfd, -1);
	list_dir(vdir, names, sizeof names);
	assert_string_equal(names, "v1.0.0.mod");
	path_of(path, sizeof path, vdir, "v1.0.0.mod");
	assert_int_equal(stat(path, &st), 0);
	/* The caller keeps the fd: it is now the published file. */
	assert_true(t.tmp_fd >= 0);
	assert_int_equal(fstat(t.tmp_fd, &fst), 0);
	assert_int_equal(fst.st_ino, st.st_ino);
	close(t.tmp_fd);

	assert_int_equal(cache_open(key, &e), 0);
	assert_int_equal(e.size, strlen(body));
	assert_int_equal(e.ino, st.st_ino);
	got = slurp_fd(e.ce_fd);
	assert_string_equal(got, body);
	free(got);
	assert_true(cache_age_ms(&e) >= 0 && cache_age_ms(&e) < 60 * 1000);
	close(e.ce_fd);
}

/* cache_tmp_publish_new() never replaces: the second writer of a key
 * gets -EEXIST, the first one's content stays, and no temp file is left. */
static void
test_tmp_publish_new(void **state)
{
	struct fx *fx = *state;
	const char *key = "example.com/m/@v/v1.0.0.info";
	char vdir[PATH_MAX], names[1024], *got;
	struct cache_tmp t, u;
	struct cache_entry e;

	assert_int_equal(cache_init(fx->cache, true), 0);
	assert_int_equal(cache_tmp_create(key, &t), 0);
	assert_int_equal(cache_tmp_create(key, &u), 0);
	assert_int_equal(cache_tmp_write(&t, "first", 5), 0);
	assert_int_equal(cache_tmp_write(&u, "second", 6), 0);
	assert_int_equal(cache_tmp_publish_new(&t), 0);
	close(t.tmp_fd);
	assert_int_equal(cache_tmp_publish_new(&u), -EEXIST);
	assert_int_equal(u.tmp_fd, -1);
	path_of(vdir, sizeof vdir, fx->cache, "example.com/m/@v");
	list_dir(vdir, names, sizeof names);
	assert_string_equal(names, "v1.0.0.info");
	assert_int_equal(cache_open(key, &e), 0);
	got = slurp_fd(e.ce_fd);
	assert_string_equal(got, "first");
	free(got);
	close(e.ce_fd);
}

static void
test_tmp_discard(void **state)
{
	struct fx *fx = *state;
	char vdir[PATH_MAX], names[1024];
	struct cache_tmp t;
	uint64_t files, bytes;

	assert_int_equal(cache_init(fx->cache, true), 0);
	assert_int_equal(cache_tmp_create("example.com/m/@v/v1.0.0.zip", &t), 0);
	assert_int_equal(write(t.tmp_fd, "PK", 2), 2);
	cache_tmp_discard(&t);
	assert_int_equal(t.tmp_fd, -1);
	assert_int_equal(t.tmp_dirfd, -1);
	cache_tmp_discard(&t);   /* safe twice */
	path_of(vdir, sizeof vdir, fx->cache, "example.com/m/@v");
	list_dir(vdir, names, sizeof names);
	assert_string_equal(names, "");
	cache_usage(&files, &bytes);
	assert_int_equal(files, 0);
	assert_int_equal(bytes, 0);
}

static void
test_store_bytes(void **state)
{
	struct fx *fx = *state;
	const char *key = "sumdb/sum.golang.org/lookup/golang.org/x/text@v0.3.0";
	char dir[PATH_MAX], names[1024], *got;
	struct cache_entry e;

	assert_int_equal(cache_init(fx->cache, true), 0);
	assert_int_equal(cache_store_bytes(key, "first\n", 6), 0);
	assert_int_equal(cache_store_bytes(key, "second\n", 7), 0);   /* replaces */
	assert_int_equal(cache_open(key, &e), 0);
	assert_int_equal(e.size, 7);
	got = slurp_fd(e.ce_fd);
	assert_string_equal(got, "second\n");
	free(got);
	close(e.ce_fd);
	path_of(dir, sizeof dir, fx->cache, "sumdb/sum.golang.org/lookup/golang.org/x");
	list_dir(dir, names, sizeof names);
	assert_string_equal(names, "text@v0.3.0");   /* no temp file left */

	/* A key with an empty element is refused, and nothing is written. */
	assert_int_equal(cache_store_bytes("a//b", "x", 1), -EINVAL);
	assert_false(exists(fx->cache, "a/b"));
}

/* ---- cache_open ------------------------------------------------------- */

static void
test_open_refuses(void **state)
{
	struct fx *fx = *state;
	char link[PATH_MAX];
	struct cache_entry e;
	struct stat st;

	assert_int_equal(cache_init(fx->cache, true), 0);
	assert_int_equal(cache_store_bytes("m/@v/v1.0.0.info", "{}", 2), 0);

	/* A symlink is never followed, even to a file inside the cache. */
	path_of(link, sizeof link, fx->cache, "m/@v/v1.1.0.info");
	assert_int_equal(symlink("v1.0.0.info", link), 0);
	e.ce_fd = 99;
	assert_int_equal(cache_open("m/@v/v1.1.0.info", &e), -ELOOP);
	assert_int_equal(e.ce_fd, -1);
	assert_int_equal(cache_stat("m/@v/v1.1.0.info", &st), 0);
	assert_true(S_ISLNK(st.st_mode));

	assert_int_equal(cache_open("m/@v/v9.9.9.info", &e), -ENOENT);
	assert_int_equal(cache_open("nothing/here", &e), -ENOENT);
	/* A directory is not an entry. */
	assert_int_equal(cache_open("m/@v", &e), -ENOENT);
	assert_int_equal(e.ce_fd, -1);
}

/*
 * A symlink in any component, not only the last, is refused: a directory
 * link planted in the cache (or copied in with a seeded module cache)
 * must not make cache_open() read a file outside the cache directory.
 */
static void
test_open_refuses_symlinked_dir(void **state)
{
	struct fx *fx = *state;
	char link[PATH_MAX], outside[PATH_MAX - 64], *body = NULL;
	struct cache_entry e;
	size_t len;
	int r;

	assert_int_equal(cache_init(fx->cache, true), 0);
	path_of(outside, sizeof outside, fx->dir, "outside");
	put_file(fx->dir, "outside/@v/v1.0.0.info", "secret");
	path_of(link, sizeof link, fx->cache, "evil.com");
	assert_int_equal(symlink(outside, link), 0);

	/* -ELOOP from openat2(), -ENOTDIR from the O_NOFOLLOW walk. */
	e.ce_fd = 99;
	r = cache_open("evil.com/@v/v1.0.0.info", &e);
	assert_true(r == -ELOOP || r == -ENOTDIR);
	assert_int_equal(e.ce_fd, -1);
	r = cache_list_from_infos("evil.com", &body, &len);
	assert_true(r == -ELOOP || r == -ENOTDIR);
	assert_null(body);

	/* Also a link deeper down, to a directory inside the cache. */
	assert_int_equal(cache_store_bytes("real.com/m/@v/v1.0.0.info", "{}", 2), 0);
	path_of(link, sizeof link, fx->cache, "real.com/n");
	assert_int_equal(symlink("m", link), 0);
	r = cache_open("real.com/n/@v/v1.0.0.info", &e);
	assert_true(r == -ELOOP || r == -ENOTDIR);
	assert_int_equal(cache_open("real.com/m/@v/v1.0.0.info", &e), 0);
	close(e.ce_fd);
}

/* ---- usage counters --------------------------------------------------- */

static void
test_usage(void **state)
{
	struct fx *fx = *state;
	struct cache_tmp t;
	uint64_t files, bytes;

	assert_int_equal(cache_init(fx->cache, true), 0);
	cache_usage(&files, &bytes);
	assert_int_equal(files, 0);
	assert_int_equal(bytes, 0);

	assert_int_equal(cache_tmp_create("m/@v/v1.0.0.zip", &t), 0);
	assert_int_equal(write(t.tmp_fd, "0123456789", 10), 10);
	cache_usage(&files, &bytes);
	assert_int_equal(files, 0);   /* a temp file does not count */
	assert_int_equal(cache_tmp_publish(&t), 0);
	close(t.tmp_fd);
	cache_usage(&files, &bytes);
	assert_int_equal(files, 1);
	assert_int_equal(bytes, 10);

	/* Replacing a file counts the difference, not another file. */
	assert_int_equal(cache_store_bytes("m/@v/v1.0.0.zip", "abcd", 4), 0);
	cache_usage(&files, &bytes);
	assert_int_equal(files, 1);
	assert_int_equal(bytes, 4);

	assert_int_equal(cache_store_bytes("m/@v/list", "v1.0.0\n", 7), 0);
	cache_usage(&files, &bytes);
	assert_int_equal(files, 2);
	assert_int_equal(bytes, 11);

	cache_set_usage(70, 700);
	cache_usage(&files, &bytes);
	assert_int_equal(files, 70);
	assert_int_equal(bytes, 700);
}

/* ---- @v/list from .info files ----------------------------------------- */

static void
test_list_from_infos(void **state)
{
	struct fx *fx = *state;
	static const char *const files[] = {
		"v1.10.0.info",
		"v1.2.0.info",
		"v1.2.0-rc.1.info",
		"v1.0.0-!r!c1.info",                           /* v1.0.0-RC1 */
		"v2.0.0+incompatible.info",
		"v0.0.0-20200101000000-abcdefabcdef.info",     /* pseudo-versions: no */
		"v1.2.1-0.20200101000000-abcdefabcdef.info",
		"v1.3.0.mod",                                  /* not .info */
		"v1.4.0.zip",
		"master.info",                                 /* not canonical */
		"v1.5.info",
		"v1.6.0+meta.info",
		"v1.0.0-!R.info",                              /* bad escaping */
		".info",
		CACHE_TMP_PREFIX "1.00000000-0-v1.7.0.info",
	};
	char rel[PATH_MAX], *body = NULL;
	size_t len = 0;

	assert_int_equal(cache_init(fx->cache, true), 0);
	assert_int_equal(cache_list_from_infos("example.com/m", &body, &len), -ENOENT);
	for (size_t i = 0; i < N(files); i++) {
		snprintf(rel, sizeof rel, "example.com/m/@v/%s", files[i]);
		put_file(fx->cache, rel, "{}");
	}
	assert_int_equal(cache_list_from_infos("example.com/m", &body, &len), 0);
	assert_non_null(body);
	assert_string_equal(body, "v1.0.0-RC1\nv1.2.0-rc.1\nv1.2.0\nv1.10.0\nv2.0.0+incompatible\n");
	assert_int_equal(len, strlen(body));
	free(body);

	/* Only pseudo-versions cached: no list. */
	put_file(fx->cache, "example.com/p/@v/v0.0.0-20200101000000-abcdefabcdef.info", "{}");
	body = NULL;
	assert_int_equal(cache_list_from_infos("example.com/p", &body, &len), -ENOENT);
	assert_null(body);
}

/* ---- cache_unwritable ------------------------------------------------- */

static void
test_unwritable_permissions(void **state)
{
	struct fx *fx = *state;
	const char *why;

	assert_int_equal(cache_init(fx->cache, true), 0);
	assert_null(cache_unwritable());
	assert_int_equal(chmod(fx->cache, 0555), 0);
	/* Root writes whatever the permission bits say; ask as nobody. */
	if (geteuid() == 0)
		assert_int_equal(seteuid(65534), 0);
	why = cache_unwritable();
	if (getuid() == 0)
		assert_int_equal(seteuid(0), 0);
	assert_non_null(why);
	assert_string_equal(why, "is not writable");
	assert_int_equal(chmod(fx->cache, 0755), 0);
	assert_null(cache_unwritable());
}

/*
 * A read-only mount: in a child in a mount namespace of its own, the cache
 * directory bind-mounted read-only over itself.  Skipped where mount
 * namespaces are not allowed (not root, or a container without
 * CAP_SYS_ADMIN).  Exit status: 0 pass, 77 skip, else which check failed.
 */
static void
test_unwritable_read_only_mount(void **state)
{
	struct fx *fx = *state;
	int status;
	pid_t pid;

	assert_int_equal(mkdir(fx->cache, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *why;

		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount(fx->cache, fx->cache, NULL, MS_BIND, NULL) < 0 ||
		    mount(NULL, fx->cache, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
			_exit(77);
		if (cache_init(fx->cache, false) != 0)
			_exit(1);
		why = cache_unwritable();
		if (why == NULL || strcmp(why, "is on a read-only file system") != 0)
			_exit(2);
		if (cache_store_bytes("m/@v/list", "v1.0.0\n", 7) != -EROFS)
			_exit(3);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_unwritable_removed(void **state)
{
	struct fx *fx = *state;
	const char *why;

	assert_int_equal(cache_init(fx->cache, true), 0);
	assert_int_equal(rmdir(fx->cache), 0);
	why = cache_unwritable();
	assert_non_null(why);
	assert_string_equal(why, "was removed while goproxyd runs; restart goproxyd");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_creates_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_resolves_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_sweeps_stale_temps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmp_lock, setup, teardown),
		cmocka_unit_test(test_key_kinds),
		cmocka_unit_test_setup_teardown(test_tmp_publish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmp_publish_new, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmp_discard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_symlinked_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_from_infos, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_permissions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_read_only_mount, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_removed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
