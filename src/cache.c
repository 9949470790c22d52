/* cache: see include/cache.h.  Any thread: serving threads open files, the
 * store and verifier threads publish them, the collector counts them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "catalog.h"
#include "log.h"
#include "modpath.h"
#include "text.h"

static int root_fd = -1;
static char *root_path;          /* resolved: the unit's CacheDirectory is a symlink */
static uint32_t host_tag;        /* hash of this host's name, in temp-file names */
static atomic_uint tmp_counter;
static atomic_ullong usage_files, usage_bytes;
static atomic_bool no_openat2;   /* the kernel, or a seccomp filter, lacks it */
/* The disk-full memory behind cache_unwritable(): the errno of the last
 * ENOSPC/EDQUOT (0 once a publish succeeds or space returns), when it
 * happened, and the free bytes then; the free bytes last looked at. */
static atomic_int full_err;
static atomic_llong full_at_ms, full_free, checked_ms;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long free_bytes(void)
{
	struct statvfs sv;

	if (fstatvfs(root_fd, &sv) < 0)
		return -1;
	return (long long)sv.f_bavail * (long long)sv.f_frsize;
}

/* A write, create or publish failed with err: remember a full disk. */
static void note_failure(int err)
{
	if (err != ENOSPC && err != EDQUOT)
		return;
	atomic_store(&full_free, free_bytes());
	atomic_store(&full_at_ms, now_ms());
	atomic_store(&full_err, err);
}

static int mkdir_p(const char *dir)
{
	char buf[4096];
	char *p;

	if (strlen(dir) >= sizeof buf)
		return -ENAMETOOLONG;
	strcpy(buf, dir);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Temp files are named ".goproxyd-tmp-<pid>.<host tag>-...".  One is ours
 * to delete if this host's process that made it is gone; a file from
 * another host sharing the cache is left for a day, since its pid means
 * nothing here. */
/* A lock on the whole file, on an open file description: it lives as long
 * as that description, so it dies with the process that holds it (even one
 * that lingers as a zombie) and follows the fd from thread to thread. */
static int ofd_lock(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };

	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* Another host's temp file: its pid and locks mean nothing here (locks
 * over NFS are not relied on), so it is left for a day. */
static bool foreign_host(const char *name)
{
	char *end;
	long pid = strtol(name + strlen(CACHE_TMP_PREFIX), &end, 10);

	return pid > 0 && *end == '.' && strtoul(end + 1, NULL, 16) != host_tag;
}

int cache_temp_remove_if_dead(const char *path, const char *name, const struct stat *st)
{
	struct stat now;
	int fd, r = 0;

	if (foreign_host(name))
		return time(NULL) - st->st_mtim.tv_sec > 24 * 3600 && unlink(path) == 0;
	/* The writer holds a write lock from creation to rename or discard:
	 * a read lock we can take means nobody writes the file any more.
	 * Holding it while unlinking keeps a writer that is just creating
	 * the file from starting on it (its lock fails; it picks a new name). */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (ofd_lock(fd, F_RDLCK) == 0 && fstat(fd, &now) == 0) {
		struct stat cur;   /* still the file we locked under that name */
		if (lstat(path, &cur) == 0 && cur.st_ino == now.st_ino && cur.st_dev == now.st_dev)
			r = unlink(path) == 0;
	}
	close(fd);
	return r;
}

static int sweep_one(const char *fpath, const struct stat *st, int type, struct FTW *ftw)
{
	const char *base = fpath + ftw->base;

	if (type == FTW_D && ftw->level == 1 && strcmp(base, CACHE_DIRECT_DIR) == 0)
		return FTW_SKIP_SUBTREE;   /* the go command's, not cache files */
	if (type != FTW_F)
		return 0;
	if (strncmp(base, CACHE_TMP_PREFIX, strlen(CACHE_TMP_PREFIX)) != 0) {
		atomic_fetch_add(&usage_files, 1);
		atomic_fetch_add(&usage_bytes, (unsigned long long)st->st_size);
		return 0;
	}
	if (cache_temp_remove_if_dead(fpath, base, st) > 0)
		log_info("removed stale temp file %s", fpath);
	return 0;
}

static uint32_t hash_host(void)
{
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	return (uint32_t)text_hash_str(host);
}

int cache_init(const char *dir, bool create)
{
	int r = create ? mkdir_p(dir) : 0;

	if (r < 0)
		return r;
	host_tag = hash_host();
	/* Walks below must start from the real directory: nftw(FTW_PHYS) does
	 * not enter a symlink, and systemd's CacheDirectory= under
	 * DynamicUser is one. */
	if ((root_path = realpath(dir, NULL)) == NULL)
		return -errno;
	root_fd = open(root_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return -errno;
	if (nftw(root_path, sweep_one, 32, FTW_PHYS | FTW_ACTIONRETVAL) < 0)
		log_warn("temp-file sweep of %s: %s", root_path, strerror(errno));
	return 0;
}

const char *cache_root(void)
{
	return root_path;
}

void cache_shutdown(void)
{
	if (root_fd >= 0)
		close(root_fd);
	root_fd = -1;
	free(root_path);
	root_path = NULL;
}

static int fmt_key(char *key, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fmt_key(char *key, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(key, n, fmt, ap);
	va_end(ap);
	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

int cache_key_info(const char *esc_path, const char *esc_version, char *key, size_t n)
{
	return fmt_key(key, n, "%s/@v/%s.info", esc_path, esc_version);
}

int cache_key(const struct request *r, char *key, size_t n)
{
	switch (r->kind) {
	case REQ_LIST:
		return fmt_key(key, n, "%s/@v/list", r->esc_path);
	case REQ_LATEST:
		return fmt_key(key, n, "%s/@latest", r->esc_path);
	case REQ_SUMDB:
		/* The go command's own layout: sumdb/<name>/{lookup,tile}/... */
		return fmt_key(key, n, "sumdb/%s/%s", r->sumdb_name, r->sumdb_rest);
	case REQ_INFO:
		if (!r->immutable)
			return fmt_key(key, n, "%s/@query/%s.info", r->esc_path, r->esc_version);
		/* fall through */
	case REQ_MOD:
	case REQ_ZIP:
		return fmt_key(key, n, "%s/@v/%s.%s", r->esc_path, r->esc_version, route_ext(r->kind));
	}
	return -EINVAL;
}

static int open_key(const char *key, int flags);

int cache_open(const char *key, struct cache_entry *e)
{
	struct stat st;
	int err = 0;

	e->ce_fd = open_key(key, O_RDONLY | O_CLOEXEC);
	if (e->ce_fd < 0)
		return -errno;
	if (fstat(e->ce_fd, &st) < 0)
		err = errno;
	else if (!S_ISREG(st.st_mode))
		err = ENOENT;   /* a directory or device is no cache file */
	if (err) {
		close(e->ce_fd);
		e->ce_fd = -1;
		return -err;
	}
	e->ino = st.st_ino;
	e->size = (uint64_t)st.st_size;
	e->mtime = st.st_mtim;
	return 0;
}

int cache_stat(const char *key, struct stat *st)
{
	return fstatat(root_fd, key, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

int64_t cache_age_ms(const struct cache_entry *e)
{
	struct timespec now;
	int64_t age;

	clock_gettime(CLOCK_REALTIME, &now);
	age = (int64_t)(now.tv_sec - e->mtime.tv_sec) * 1000 +
	      (now.tv_nsec - e->mtime.tv_nsec) / 1000000;
	return age < 0 ? 0 : age;
}

/* Opens the directory part of key (creating it first if create is set),
 * one O_NOFOLLOW component at a time; *base points at the final component
 * inside key. */
static int open_parent(const char *key, bool create, const char **base)
{
	char part[256];
	const char *p = key, *slash;
	int dfd = dup(root_fd);

	if (dfd < 0)
		return -errno;
	while ((slash = strchr(p, '/')) != NULL) {
		size_t len = (size_t)(slash - p);
		int next;

		if (len == 0 || len >= sizeof part) {
			close(dfd);
			return -EINVAL;
		}
		memcpy(part, p, len);
		part[len] = '\0';
		if (create && mkdirat(dfd, part, 0755) < 0 && errno != EEXIST) {
			int err = errno;
			close(dfd);
			return -err;
		}
		next = openat(dfd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(dfd);
		if (next < 0)
			return -errno;
		dfd = next;
		p = slash + 1;
	}
	*base = p;
	return dfd;
}

/* openat(root_fd, key, flags | O_NOFOLLOW), following a symlink in no
 * component of key: O_NOFOLLOW alone covers only the last one, and a
 * directory link planted in the cache must not lead a read outside it.
 * One openat2() call where the kernel has it, else a walk of the
 * directories.  Returns an fd, or -1 with errno set. */
static int open_key(const char *key, int flags)
{
	const char *base;
	int dfd, fd, err;

	flags |= O_NOFOLLOW;
	if (!atomic_load_explicit(&no_openat2, memory_order_relaxed)) {
		struct open_how how = {
			.flags = (uint64_t)flags,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
		};
		long r = syscall(SYS_openat2, root_fd, key, &how, sizeof how);

		if (r >= 0 || (errno != ENOSYS && errno != EPERM))
			return (int)r;
		atomic_store(&no_openat2, true);   /* e.g. a container's seccomp filter */
	}
	if ((dfd = open_parent(key, false, &base)) < 0) {
		errno = -dfd;
		return -1;
	}
	fd = openat(dfd, base, flags);
	err = errno;
	close(dfd);
	errno = err;
	return fd;
}

int cache_tmp_create(const char *key, struct cache_tmp *t)
{
	const char *base;
	int tries;

	t->tmp_fd = -1;
	t->tmp_err = 0;
	t->tmp_dirfd = open_parent(key, true, &base);
	if (t->tmp_dirfd < 0) {
		note_failure(-t->tmp_dirfd);
		return t->tmp_dirfd;
	}
	if (strlen(base) >= sizeof t->final) {
		close(t->tmp_dirfd);
		return -ENAMETOOLONG;
	}
	strcpy(t->final, base);
	for (tries = 0; tries < 16; tries++) {
		unsigned n = atomic_fetch_add(&tmp_counter, 1);
		/* The pid leads so the start-up sweep can tell whose file it is. */
		snprintf(t->name, sizeof t->name, CACHE_TMP_PREFIX "%ld.%08x-%x-%.160s",
		         (long)getpid(), host_tag, n, base);
		t->tmp_fd = openat(t->tmp_dirfd, t->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (t->tmp_fd < 0 && errno != EEXIST)
			break;
		if (t->tmp_fd < 0)
			continue;
		/* Held until rename or discard: the sweeps' sign of a live writer. */
		if (ofd_lock(t->tmp_fd, F_WRLCK) == 0)
			return 0;
		close(t->tmp_fd);   /* a sweep took it between open and lock */
		t->tmp_fd = -1;
		errno = EEXIST;
	}
	int err = errno;
	close(t->tmp_dirfd);
	t->tmp_dirfd = -1;
	note_failure(err);
	return -err;
}

int cache_tmp_write(struct cache_tmp *t, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(t->tmp_fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			t->tmp_err = errno;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

void cache_tmp_discard(struct cache_tmp *t)
{
	if (t->tmp_fd >= 0) {
		/* Unlink first: the lock keeps sweeps off the name until then. */
		unlinkat(t->tmp_dirfd, t->name, 0);
		close(t->tmp_fd);
		t->tmp_fd = -1;
		/* Measured once the partial file's space is given back. */
		note_failure(t->tmp_err);
		t->tmp_err = 0;
	}
	if (t->tmp_dirfd >= 0)
		close(t->tmp_dirfd);
	t->tmp_dirfd = -1;
}

/* The disk was full at the last failed write: still so unless space came
 * back since (1 MiB more than then, looked at at most once a second) or a
 * publish succeeded.  A quota cannot be looked at: it counts as back after
 * a minute, and the next failure sets it again. */
static const char *still_full(void)
{
	int err = atomic_load(&full_err);
	int64_t now = now_ms();
	long long was, avail;

	if (err == 0)
		return NULL;
	if (err == EDQUOT) {
		if (now - atomic_load(&full_at_ms) < 60000)
			return "is over its disk quota (writes fail: disk quota exceeded)";
	} else if (now - atomic_load(&checked_ms) < 1000) {
		return "is on a full disk (writes fail: no space left on device)";
	} else {
		atomic_store(&checked_ms, now);
		was = atomic_load(&full_free);
		avail = free_bytes();
		if (avail >= 0 && was >= 0 && avail < was + (1 << 20))
			return "is on a full disk (writes fail: no space left on device)";
	}
	atomic_compare_exchange_strong(&full_err, &err, 0);
	return NULL;
}

const char *cache_unwritable(void)
{
	struct statvfs sv;
	struct stat st;

	/* The directory goproxyd opened at start-up was deleted (or renamed
	 * away and deleted): nothing can be created in it any more. */
	if (fstat(root_fd, &st) < 0 || st.st_nlink == 0)
		return "was removed while goproxyd runs; restart goproxyd";
	/* faccessat ignores a read-only mount for root: ask statvfs too. */
	if (fstatvfs(root_fd, &sv) < 0 || (sv.f_flag & ST_RDONLY))
		return "is on a read-only file system";
	if (faccessat(root_fd, ".", W_OK, AT_EACCESS) < 0)
		return "is not writable";
	return still_full();
}

void cache_set_usage(uint64_t files, uint64_t bytes)
{
	atomic_store(&usage_files, files);
	atomic_store(&usage_bytes, bytes);
}

void cache_usage(uint64_t *files, uint64_t *bytes)
{
	*files = atomic_load(&usage_files);
	*bytes = atomic_load(&usage_bytes);
}

/* Renames t's temp file to its final name, failing with EEXIST if that
 * exists.  A file system without RENAME_NOREPLACE (NFS, EINVAL) gets the
 * same guarantee from link(), which never replaces, and an unlink. */
static int rename_noreplace(struct cache_tmp *t)
{
	if (renameat2(t->tmp_dirfd, t->name, t->tmp_dirfd, t->final, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	if (linkat(t->tmp_dirfd, t->name, t->tmp_dirfd, t->final, 0) < 0)
		return -errno;
	if (unlinkat(t->tmp_dirfd, t->name, 0) < 0)
		log_warn("removing %s after linking it as %s: %s", t->name, t->final, strerror(errno));
	return 0;
}

static int tmp_rename(struct cache_tmp *t, bool replace)
{
	struct stat now, old;
	bool replaces;
	int err = 0;

	if (fsync(t->tmp_fd) < 0 || fstat(t->tmp_fd, &now) < 0)
		err = -errno;
	replaces = replace && fstatat(t->tmp_dirfd, t->final, &old, AT_SYMLINK_NOFOLLOW) == 0;
	if (err == 0 && replace && renameat(t->tmp_dirfd, t->name, t->tmp_dirfd, t->final) < 0)
		err = -errno;
	else if (err == 0 && !replace)
		err = rename_noreplace(t);
	if (err < 0) {
		t->tmp_err = -err;   /* a full disk is noted by the discard */
		cache_tmp_discard(t);
		return err;
	}
	/* The published file is nobody's temp file: drop the lock now rather
	 * than when the last reader closes it. */
	ofd_lock(t->tmp_fd, F_UNLCK);
	atomic_store(&full_err, 0);
	if (replaces)
		atomic_fetch_sub(&usage_bytes, (unsigned long long)old.st_size);
	else
		atomic_fetch_add(&usage_files, 1);
	atomic_fetch_add(&usage_bytes, (unsigned long long)now.st_size);
	return 0;
}

void cache_tmp_sync_dir(struct cache_tmp *t)
{
	/* The rename is durable only once the directory itself is synced. */
	if (fsync(t->tmp_dirfd) < 0)
		log_warn("fsync of the directory of %s: %s", t->final, strerror(errno));
	close(t->tmp_dirfd);
	t->tmp_dirfd = -1;
}

int cache_tmp_rename(struct cache_tmp *t)
{
	return tmp_rename(t, true);
}

int cache_tmp_publish(struct cache_tmp *t)
{
	int r = cache_tmp_rename(t);

	if (r == 0)
		cache_tmp_sync_dir(t);
	return r;
}

int cache_tmp_publish_new(struct cache_tmp *t)
{
	int r = tmp_rename(t, false);

	if (r == 0)
		cache_tmp_sync_dir(t);
	return r;
}

int cache_store_bytes(const char *key, const void *buf, size_t len)
{
	struct cache_tmp t;
	int r = cache_tmp_create(key, &t);

	if (r < 0)
		return r;
	if ((r = cache_tmp_write(&t, buf, len)) < 0) {
		cache_tmp_discard(&t);
		return r;
	}
	r = cache_tmp_publish(&t);
	if (r == 0) {
		close(t.tmp_fd);
		catalog_note(key, (int64_t)time(NULL));
	}
	return r;
}

/* --- fetch locks shared by the instances on one directory ----------------- */

#define LOCK_PREFIX CACHE_TMP_PREFIX "lock-"

/* Does the name still point at the inode fd has open? */
static bool still_named(int dirfd, const char *name, int fd)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static void lock_close(struct cache_lock *l)
{
	if (l->cl_fd >= 0)
		close(l->cl_fd);
	if (l->cl_dirfd >= 0)
		close(l->cl_dirfd);
	l->cl_fd = l->cl_dirfd = -1;
}

/* Opens the lock file and takes the lock: 1, 0 (busy), or -errno. */
static int lock_open(struct cache_lock *l)
{
	for (int tries = 0; tries < 8; tries++) {
		int r;

		l->cl_fd = openat(l->cl_dirfd, l->cl_name,
		                  O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (l->cl_fd < 0)
			return -errno;
		if ((r = ofd_lock(l->cl_fd, F_WRLCK)) == -EAGAIN || r == -EACCES)
			return 0;
		if (r < 0)
			return r;
		/* Got it on a name the last holder (or a sweep) just unlinked:
		 * that inode is nobody's lock any more; open the name again. */
		if (still_named(l->cl_dirfd, l->cl_name, l->cl_fd)) {
			if (ftruncate(l->cl_fd, 0) < 0)
				return -errno;
			return 1;
		}
		close(l->cl_fd);
		l->cl_fd = -1;
	}
	return -EAGAIN;
}

int cache_lock_try(const char *key, struct cache_lock *l)
{
	const char *base;
	int r;

	if (l->cl_dirfd < 0) {
		if ((l->cl_dirfd = open_parent(key, true, &base)) < 0) {
			r = l->cl_dirfd;
			l->cl_dirfd = l->cl_fd = -1;
			return r;
		}
		if (strlen(LOCK_PREFIX) + strlen(base) >= sizeof l->cl_name) {
			close(l->cl_dirfd);
			l->cl_dirfd = l->cl_fd = -1;
			return -ENAMETOOLONG;
		}
		snprintf(l->cl_name, sizeof l->cl_name, LOCK_PREFIX "%s", base);
	}
	if (l->cl_fd >= 0)
		close(l->cl_fd);
	l->cl_fd = -1;
	if ((r = lock_open(l)) < 0)
		lock_close(l);
	return r;
}

int cache_lock_retry(struct cache_lock *l)
{
	int r = ofd_lock(l->cl_fd, F_WRLCK);

	if (r == -EAGAIN || r == -EACCES)
		return 0;
	if (r == 0 && still_named(l->cl_dirfd, l->cl_name, l->cl_fd))
		return ftruncate(l->cl_fd, 0) < 0 ? 2 : 1;
	return 2;
}

void cache_lock_touch(struct cache_lock *l)
{
	if (l->cl_fd >= 0)
		futimens(l->cl_fd, NULL);
}

int64_t cache_lock_stamp(struct cache_lock *l)
{
	struct stat st;

	if (l->cl_fd < 0 || fstat(l->cl_fd, &st) < 0)
		return 0;
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

ssize_t cache_lock_note(struct cache_lock *l, char *buf, size_t n)
{
	ssize_t got = n > 0 ? pread(l->cl_fd, buf, n - 1, 0) : -1;

	if (got < 0)
		return -errno;
	buf[got] = '\0';
	return got;
}

void cache_lock_release(struct cache_lock *l, bool held, const char *note)
{
	if (held && l->cl_fd >= 0) {
		if (note != NULL && pwrite(l->cl_fd, note, strlen(note), 0) < 0)
			log_warn("fetch lock %s: %s", l->cl_name, strerror(errno));
		/* Unlinked before the lock goes: a waiter that gets it then
		 * finds the name gone and knows the holder is done. */
		if (still_named(l->cl_dirfd, l->cl_name, l->cl_fd))
			unlinkat(l->cl_dirfd, l->cl_name, 0);
	}
	lock_close(l);
}

/* --- @v/list rebuilt from cached .info files ------------------------------ */

struct vlist {
	char **v;
	size_t n, cap;
};

static int vlist_add(struct vlist *l, const char *v)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **nv = realloc(l->v, cap * sizeof *nv);
		if (nv == NULL)
			return -ENOMEM;
		l->v = nv;
		l->cap = cap;
	}
	if ((l->v[l->n] = strdup(v)) == NULL)
		return -ENOMEM;
	l->n++;
	return 0;
}

static void vlist_free(struct vlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static int cmp_semver(const void *a, const void *b)
{
	return mp_semver_compare(*(char *const *)a, *(char *const *)b);
}

/* Adds the version named by an "<esc version>.info" file, if it belongs in a list. */
static int add_info_name(struct vlist *l, const char *name)
{
	char esc[MP_VERSION_MAX], v[MP_VERSION_MAX];
	size_t len = strlen(name);

	if (len <= 5 || len - 5 >= sizeof esc || strcmp(name + len - 5, ".info") != 0)
		return 0;
	memcpy(esc, name, len - 5);
	esc[len - 5] = '\0';
	if (mp_unescape_version(esc, v, sizeof v) != NULL)
		return 0;
	if (!mp_is_canonical(v) || mp_is_pseudo(v))
		return 0;
	return vlist_add(l, v);
}

static int join_lines(const struct vlist *l, char **body, size_t *len)
{
	size_t total = 0, off = 0;
	char *buf;

	for (size_t i = 0; i < l->n; i++)
		total += strlen(l->v[i]) + 1;
	if ((buf = malloc(total + 1)) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++)
		off += (size_t)sprintf(buf + off, "%s\n", l->v[i]);
	*body = buf;
	*len = off;
	return 0;
}

int cache_list_from_infos(const char *esc_path, char **body, size_t *len)
{
	char key[CACHE_KEY_MAX];
	struct vlist l = {0};
	struct dirent *de;
	DIR *d;
	int fd, r = fmt_key(key, sizeof key, "%s/@v", esc_path);

	if (r < 0)
		return r;
	if ((fd = open_key(key, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while (r == 0 && (de = readdir(d)) != NULL)
		r = add_info_name(&l, de->d_name);
	closedir(d);
	if (r == 0 && l.n == 0)
		r = -ENOENT;
	if (r == 0) {
		qsort(l.v, l.n, sizeof *l.v, cmp_semver);
		r = join_lines(&l, body, len);
	}
	vlist_free(&l);
	return r;
}

/* --- @latest answered from cached .info files ------------------------------ */

/* The go command's preference for @latest: a release, else a
 * prerelease, else a pseudo-version. */
static int latest_rank(const char *v)
{
	return mp_is_pseudo(v) ? 0 : strchr(v, '-') ? 1 : 2;
}

/* The cached "<esc version>.info" name of the version @latest means. */
static int pick_latest(int dfd, char *best, size_t n)
{
	char esc[MP_VERSION_MAX], v[MP_VERSION_MAX], bestv[MP_VERSION_MAX] = "";
	struct dirent *de;
	DIR *d = fdopendir(dfd);
	int rank = -1;

	if (d == NULL) {
		close(dfd);
		return -ENOMEM;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		int r;

		if (len <= 5 || len - 5 >= sizeof esc || strcmp(de->d_name + len - 5, ".info") != 0)
			continue;
		memcpy(esc, de->d_name, len - 5);
		esc[len - 5] = '\0';
		if (mp_unescape_version(esc, v, sizeof v) != NULL || !mp_is_canonical(v))
			continue;
		r = latest_rank(v);
		if (len < n && (r > rank || (r == rank && mp_semver_compare(v, bestv) > 0))) {
			rank = r;
			memcpy(bestv, v, strlen(v) + 1);
			memcpy(best, de->d_name, len + 1);
		}
	}
	closedir(d);
	return rank < 0 ? -ENOENT : 0;
}

int cache_latest_from_infos(const char *esc_path, char **body, size_t *len)
{
	char key[CACHE_KEY_MAX], name[MP_VERSION_MAX + 8];
	struct cache_entry e;
	ssize_t got;
	int fd, r = fmt_key(key, sizeof key, "%s/@v", esc_path);

	if (r < 0)
		return r;
	if ((fd = open_key(key, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	if ((r = pick_latest(fd, name, sizeof name)) < 0)
		return r;
	if ((r = fmt_key(key, sizeof key, "%s/@v/%s", esc_path, name)) < 0 || (r = cache_open(key, &e)) < 0)
		return r;
	if (e.size > CACHE_INFO_MAX || (*body = malloc(e.size + 1)) == NULL) {
		close(e.ce_fd);
		return -EFBIG;
	}
	got = pread(e.ce_fd, *body, e.size, 0);
	close(e.ce_fd);
	if (got != (ssize_t)e.size) {
		free(*body);
		return -EIO;
	}
	*len = e.size;
	return 0;
}
