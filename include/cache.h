/*
 * cache: the on-disk cache, laid out exactly like the go command's
 * $GOMODCACHE/cache/download tree, so it is also a valid GOPROXY=file://
 * tree and can be seeded by copying a module cache:
 *
 *   <esc path>/@v/list                 mutable
 *   <esc path>/@v/<esc version>.info   immutable (canonical versions only)
 *   <esc path>/@v/<esc version>.mod    immutable
 *   <esc path>/@v/<esc version>.zip    immutable
 *   <esc path>/@latest                 mutable (where file:// looks for it)
 *   <esc path>/@query/<esc query>.info mutable answer to a non-canonical
 *                                      .info query (never under @v/)
 *   sumdb/<name>/latest                mutable signed tree head
 *   sumdb/<name>/lookup/<m>@<v>        immutable lookup answer
 *   sumdb/<name>/tile/<H>/<L>/<K>...   immutable tiles
 *   .goproxyd-direct/                  the go command's GOPATH (direct.h),
 *                                      never served, counted or evicted
 *
 * Freshness of a mutable file is its mtime plus -cacheExpire: there is no
 * side database.  Every file is published atomically: written to a temp
 * file named ".goproxyd-tmp-<pid>.<host tag>-..." in the same directory, fsynced,
 * renamed into place, and the directory fsynced.  From creation to rename
 * or discard the temp file's open file description holds an OFD write lock
 * (fcntl F_OFD_SETLK): it dies with the writer, so a temp file of this
 * host that nobody has locked is a dead writer's and may be removed.
 *
 * Contract: keys are relative paths built only from route.h's validated,
 * escaped strings; every access goes through the root directory's fd and
 * follows no symlink in any component (openat2() with RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS, or one O_NOFOLLOW directory at a time), so nothing
 * outside the cache directory is read or written.  The cache directory
 * itself may be a symlink.  Functions return 0 or a negative errno.
 */
#ifndef GOPROXYD_CACHE_H
#define GOPROXYD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "route.h"

#define CACHE_KEY_MAX 1024
#define CACHE_TMP_PREFIX ".goproxyd-tmp-"
/* The go command's own GOPATH for direct fetches (direct.h): a top-level
 * directory no module path can name (no element starts with '.'), which
 * the start-up sweep and the collector do not enter. */
#define CACHE_DIRECT_DIR ".goproxyd-direct"

struct cache_entry {
	int ce_fd;               /* read-only, owned by the caller */
	ino_t ino;
	uint64_t size;
	struct timespec mtime;
};

struct cache_tmp {
	int tmp_fd;              /* read-write; -1 once discarded */
	int tmp_dirfd;           /* the directory that holds both names */
	int tmp_err;             /* errno of a failed cache_tmp_write(), else 0 */
	char name[256];          /* temp file name inside dirfd */
	char final[256];         /* name it is published as */
};

/* Opens the directory (creating it first if create is set), resolving
 * symlinks, and removes temp files left by dead processes: a crash leaves
 * them; a live sibling's (locked) are kept, and so, for a day, are those of
 * another host sharing the directory. */
int cache_init(const char *dir, bool create);
/* The cache directory's real path (valid after cache_init). */
const char *cache_root(void);
void cache_shutdown(void);

/* The key of the file that answers r. */
int cache_key(const struct request *r, char *key, size_t n);
/* The key of <esc_path>/@v/<esc_version>.info. */
int cache_key_info(const char *esc_path, const char *esc_version, char *key, size_t n);

int cache_open(const char *key, struct cache_entry *e);
/* fstatat() of key without opening it (symlinks not followed). */
int cache_stat(const char *key, struct stat *st);
/* Milliseconds since the entry was published (0 if its mtime is ahead). */
int64_t cache_age_ms(const struct cache_entry *e);

/* Creates and locks a temp file for key; the lock goes with t->tmp_fd to
 * whichever thread publishes or discards it. */
int cache_tmp_create(const char *key, struct cache_tmp *t);
/* Writes all of buf; on failure remembers the errno in t (a full disk is
 * reported by cache_unwritable() once the file is discarded). */
int cache_tmp_write(struct cache_tmp *t, const void *buf, size_t len);
/* The temp file at path (name is its last component, st its lstat) is a
 * dead writer's: unlocked if from this host, a day old if from another.
 * Removes it then and returns 1, else 0.  Any thread; for the sweeps. */
int cache_temp_remove_if_dead(const char *path, const char *name, const struct stat *st);
/* fsync, then rename into place: the complete file is in the cache.  The
 * rename survives a power loss once cache_tmp_sync_dir() has run; a crash
 * before that can lose the entry, never leave half of it.  On success t->tmp_fd
 * stays open (now the published file, offset unspecified) and belongs to
 * the caller, and t->tmp_dirfd belongs to cache_tmp_sync_dir(); on failure the
 * temp file is discarded. */
int cache_tmp_rename(struct cache_tmp *t);
/* fsyncs the directory of a renamed file and closes it. */
void cache_tmp_sync_dir(struct cache_tmp *t);
/* cache_tmp_rename(), then cache_tmp_sync_dir(). */
int cache_tmp_publish(struct cache_tmp *t);
/* cache_tmp_publish(), but never replaces a file already at the key:
 * -EEXIST then, and t is discarded.  For import, whose rule is that an
 * immutable file is never overwritten, even by one published between its
 * check and its rename. */
int cache_tmp_publish_new(struct cache_tmp *t);
/* Removes the temp file and closes everything; safe to call twice. */
void cache_tmp_discard(struct cache_tmp *t);
/* Publishes a small in-memory body under key (create, write, publish). */
int cache_store_bytes(const char *key, const void *buf, size_t len);

/* Fetch locks: one instance at a time fetches a key among the processes
 * sharing the cache directory.  The lock is an OFD write lock on
 * ".goproxyd-tmp-lock-<final name>" beside the key's final name, so the
 * kernel (or the NFSv4 server) releases it when its holder dies, and the
 * temp-file sweeps remove an unheld one.  The holder unlinks the file
 * before it lets go (after publishing), so a waiter that then gets the
 * lock on the old inode knows the holder is done; it may read the note
 * the holder left (e.g. "notfound ...").  fd -1: not in use. */
struct cache_lock {
	int cl_fd;
	int cl_dirfd;
	char cl_name[256];
};

/* Opens key's lock file and tries to lock it: 1 if this process now holds
 * it, 0 if another does (l stays open for cache_lock_retry()), or a
 * negative errno (l closed: coordination is not possible for key). */
int cache_lock_try(const char *key, struct cache_lock *l);
/* Tries again: 1 if the lock was got on the file still named, 2 if the
 * holder let go and unlinked it (done: read its note, look for its file;
 * cache_lock_try() again to fetch), 0 if still held. */
int cache_lock_retry(struct cache_lock *l);
/* The holder's heartbeat (futimens), and its last one as the waiter sees it. */
void cache_lock_touch(struct cache_lock *l);
int64_t cache_lock_stamp(struct cache_lock *l);
/* The note a holder left in the file, NUL-terminated (0 if none, or < 0). */
ssize_t cache_lock_note(struct cache_lock *l, char *buf, size_t n);
/* Closes l.  The holder (held) first writes note (or none) and unlinks
 * the file while it still names the locked inode.  Safe on a closed l
 * (fds -1). */
void cache_lock_release(struct cache_lock *l, bool held, const char *note);

/* NULL if files can be created in the cache directory right now, else why
 * not ("is on a read-only file system", "is on a full disk (...)", ...), to
 * follow "cache directory".  A full disk is one where a write, create or
 * publish failed with ENOSPC, until a publish succeeds or the free space
 * (statvfs, at most once a second) has grown by 1 MiB since; EDQUOT counts
 * for a minute.  Costs a few syscalls: for /readyz, not the hit path. */
const char *cache_unwritable(void);

/* Files and bytes in the cache: counted by the start-up walk, then kept
 * up to date as files are published. */
void cache_usage(uint64_t *files, uint64_t *bytes);
/* After a full walk (gc.h) has counted them afresh. */
void cache_set_usage(uint64_t files, uint64_t bytes);

/* An @v/list body built from the canonical, non-pseudo .info files cached
 * under esc_path, sorted by semver; for a seeded cache whose list was never
 * fetched.  *body is malloc'd (caller frees); -ENOENT if there are none. */
int cache_list_from_infos(const char *esc_path, char **body, size_t *len);

/* An @latest answer from the cache alone: the cached .info of the highest
 * release, else prerelease, else pseudo-version (the go command's order),
 * for -proxy off and /cached-only/ when no @latest was ever fetched.
 * *body is malloc'd (caller frees); -ENOENT if no .info is cached. */
#define CACHE_INFO_MAX (64u << 10)
int cache_latest_from_infos(const char *esc_path, char **body, size_t *len);

#endif
