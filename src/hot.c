/* hot: see include/hot.h.  The serving threads; each slot has its own lock. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "hot.h"
#include "text.h"

#define HOT_SLOTS 256
#define HOT_MAX_BYTES (1024 * 1024)   /* bodies kept, at most */

struct slot {
	pthread_mutex_t lock;
	char *key;
	struct MHD_Response *resp;
	ino_t ino;
	uint64_t size;
	struct timespec mtime;
	int64_t until_ms;           /* monotonic; 0 = no deadline */
};

static struct slot slots[HOT_SLOTS];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t bytes_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t kept_bytes;

static void init_locks(void)
{
	for (size_t i = 0; i < HOT_SLOTS; i++)
		pthread_mutex_init(&slots[i].lock, NULL);
}

static struct slot *slot_for(const char *key)
{
	pthread_once(&once, init_locks);
	return &slots[text_hash_str(key) % HOT_SLOTS];
}

/* Drops what s holds; called with s locked. */
static void empty(struct slot *s)
{
	if (s->resp == NULL)
		return;
	MHD_destroy_response(s->resp);
	free(s->key);
	pthread_mutex_lock(&bytes_lock);
	kept_bytes -= s->size;
	pthread_mutex_unlock(&bytes_lock);
	s->resp = NULL;
	s->key = NULL;
}

bool hot_queue(const char *key, struct MHD_Connection *c, uint64_t *size)
{
	struct slot *s = slot_for(key);
	bool queued = false;
	struct stat st;

	pthread_mutex_lock(&s->lock);
	if (s->resp && strcmp(s->key, key) == 0) {
		if ((s->until_ms == 0 || monotonic_ms() < s->until_ms) &&
		    cache_stat(key, &st) == 0 && st.st_ino == s->ino && (uint64_t)st.st_size == s->size &&
		    st.st_mtim.tv_sec == s->mtime.tv_sec && st.st_mtim.tv_nsec == s->mtime.tv_nsec) {
			queued = MHD_queue_response(c, MHD_HTTP_OK, s->resp) == MHD_YES;
			*size = s->size;
		} else
			empty(s);   /* expired, evicted, purged or replaced: forget it */
	}
	pthread_mutex_unlock(&s->lock);
	return queued;
}

bool hot_put(const char *key, const struct cache_entry *e, struct MHD_Response *r,
             int64_t until_ms)
{
	struct slot *s = slot_for(key);
	char *k;
	bool room;

	pthread_mutex_lock(&bytes_lock);
	room = kept_bytes + e->size <= HOT_MAX_BYTES;
	if (room)
		kept_bytes += e->size;
	pthread_mutex_unlock(&bytes_lock);
	if (!room)
		return false;
	if ((k = strdup(key)) == NULL) {
		pthread_mutex_lock(&bytes_lock);
		kept_bytes -= e->size;
		pthread_mutex_unlock(&bytes_lock);
		return false;
	}
	pthread_mutex_lock(&s->lock);
	empty(s);
	s->key = k;
	s->resp = r;
	s->ino = e->ino;
	s->size = e->size;
	s->mtime = e->mtime;
	s->until_ms = until_ms;
	pthread_mutex_unlock(&s->lock);
	return true;
}

void hot_clear(void)
{
	pthread_once(&once, init_locks);
	for (size_t i = 0; i < HOT_SLOTS; i++) {
		pthread_mutex_lock(&slots[i].lock);
		empty(&slots[i]);
		pthread_mutex_unlock(&slots[i].lock);
	}
}
