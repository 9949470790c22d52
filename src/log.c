/* log: see include/log.h.  Any thread; the access log is written by its own
 * writer thread. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static void log_line(const char *level, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof line - n, ".%03ldZ %s ", ts.tv_nsec / 1000000, level);
	if (r > 0)
		n += (size_t)r;
	r = vsnprintf(line + n, sizeof line - n, fmt, ap);
	if (r < 0)
		r = 0;
	n = (size_t)r >= sizeof line - n ? sizeof line - 2 : n + (size_t)r;
	line[n++] = '\n';
	/* One write per line: concurrent threads never interleave. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

#define LOG_FN(name, level)                         \
	void name(const char *fmt, ...)             \
	{                                           \
		va_list ap;                         \
		va_start(ap, fmt);                  \
		log_line(level, fmt, ap);           \
		va_end(ap);                         \
	}

LOG_FN(log_info, "info")
LOG_FN(log_warn, "warn")
LOG_FN(log_error, "error")

/* --- access log ------------------------------------------------------------- */

#define ACCESS_BUF (256 * 1024)

static atomic_ullong dropped;   /* access-log lines the writer fell behind on */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	char *path;              /* NULL: stderr */
	int fd;
	bool json, running, stop, reopen;
	char buf[ACCESS_BUF];
	size_t len;
} al = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .fd = -1 };

static int open_log_file(const char *path)
{
	return path ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640) : STDERR_FILENO;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;   /* a full log disk must not stop the daemon */
		p += w;
		n -= (size_t)w;
	}
}

static void *writer_main(void *arg)
{
	static char out[ACCESS_BUF];

	(void)arg;
	pthread_mutex_lock(&al.lock);
	for (;;) {
		size_t n;
		bool reopen;

		while (al.len == 0 && !al.stop && !al.reopen)
			pthread_cond_wait(&al.cond, &al.lock);
		n = al.len;
		memcpy(out, al.buf, n);
		al.len = 0;
		reopen = al.reopen;
		al.reopen = false;
		if (n == 0 && al.stop)
			break;
		pthread_mutex_unlock(&al.lock);
		/* Only this thread touches al.fd once it runs. */
		write_all(al.fd, out, n);
		if (reopen && al.path) {
			int fd = open_log_file(al.path);
			if (fd >= 0) {
				close(al.fd);
				al.fd = fd;
			} else
				log_error("cannot reopen access log %s: %s", al.path, strerror(errno));
		}
		pthread_mutex_lock(&al.lock);
	}
	pthread_mutex_unlock(&al.lock);
	return NULL;
}

int accesslog_open(const char *path, bool json)
{
	if (path == NULL || path[0] == '\0')
		return 0;
	if (strcmp(path, "-") != 0 && strcmp(path, "stderr") != 0 && (al.path = strdup(path)) == NULL)
		return -ENOMEM;
	if ((al.fd = open_log_file(al.path)) < 0)
		return -errno;
	al.json = json;
	if (pthread_create(&al.thread, NULL, writer_main, NULL) != 0)
		return -EAGAIN;
	al.running = true;
	return 0;
}

bool accesslog_enabled(void)
{
	return al.running;
}

/* Copies s into out, escaped for a JSON string or a space-separated field. */
static size_t escape(char *out, size_t n, const char *s, bool json)
{
	size_t o = 0;

	for (; *s && o + 7 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if (json && (c == '"' || c == '\\')) {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f || (!json && c == ' '))
			o += (size_t)snprintf(out + o, n - o, json ? "\\u%04x" : "%%%02X", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return o;
}

void accesslog_write(const struct access_entry *e)
{
	char line[2048], path[1024], t[40];
	struct timespec ts;
	struct tm tm;
	int n;

	if (!al.running)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
	escape(path, sizeof path, e->path, al.json);
	if (al.json)
		n = snprintf(line, sizeof line,
		             "{\"time\":\"%s.%03ldZ\",\"remote\":\"%s\",\"method\":\"%s\",\"path\":\"%s\","
		             "\"status\":%u,\"bytes\":%llu,\"duration_ms\":%.3f,\"cache\":\"%s\"}\n",
		             t, ts.tv_nsec / 1000000, e->remote, e->method, path, e->status,
		             (unsigned long long)e->bytes, (double)e->usec / 1000, e->cache);
	else
		n = snprintf(line, sizeof line, "%s.%03ldZ %s %s %s %u %llu %.3fms %s\n", t,
		             ts.tv_nsec / 1000000, e->remote, e->method, path, e->status,
		             (unsigned long long)e->bytes, (double)e->usec / 1000, e->cache);
	if (n <= 0 || (size_t)n >= sizeof line)
		return;
	pthread_mutex_lock(&al.lock);
	if (al.len + (size_t)n <= sizeof al.buf) {
		memcpy(al.buf + al.len, line, (size_t)n);
		al.len += (size_t)n;
		pthread_cond_signal(&al.cond);
		n = 0;
	}
	pthread_mutex_unlock(&al.lock);
	if (n)
		atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
}

void accesslog_reopen(void)
{
	pthread_mutex_lock(&al.lock);
	al.reopen = true;
	pthread_cond_signal(&al.cond);
	pthread_mutex_unlock(&al.lock);
}

void accesslog_close(void)
{
	if (!al.running)
		return;
	pthread_mutex_lock(&al.lock);
	al.stop = true;
	pthread_cond_signal(&al.cond);
	pthread_mutex_unlock(&al.lock);
	pthread_join(al.thread, NULL);
	if (al.path)
		close(al.fd);
	free(al.path);
	al.running = false;
}

uint64_t accesslog_dropped(void)
{
	return atomic_load_explicit(&dropped, memory_order_relaxed);
}
