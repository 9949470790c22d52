/* direct: see include/direct.h.  direct_submit() and direct_running() from
 * any thread; direct_start() and direct_stop() on the main thread; the
 * children are run and read on the direct pool's threads (workq.h), one
 * child per thread, at most -maxDirect.  A child inherits fds 0-2 only. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "direct.h"
#include "log.h"
#include "metrics.h"
#include "text.h"
#include "validate.h"
#include "workq.h"

extern char **environ;

#define OUT_MAX (4u << 20)      /* a go command's JSON: a long version list at most */
#define ERR_MAX 4096            /* the start of its stderr: the reason */
#define START_CHECK_MS 30000    /* `go version` at start-up */

struct task {
	struct request req;
	char key[CACHE_KEY_MAX];
	direct_done_fn done;
	void *arg;
};

/* What one child said. */
struct child_out {
	char *out;               /* stdout, NUL-terminated, at most OUT_MAX */
	size_t out_len;
	char err[ERR_MAX];       /* the start of stderr */
	size_t err_len;
	int status;              /* waitpid status */
	bool timed_out, stopped, spawn_failed;
};

static const struct config *cfg;
static struct workq *pool;
static char *dir;                /* <cacheDir>/.goproxyd-direct */
static char *modcache;           /* its pkg/mod: the child's GOMODCACHE */
static char **child_env;         /* built once: the service user's, plus ours */
static size_t n_child_env;
static const char *go_bin;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t *running;           /* -maxDirect slots, 0 = free; under lock */
static bool stopping;            /* under lock */
static atomic_ullong n_running;

/* --- the child's environment ------------------------------------------------- */

/* Variables goproxyd sets for the child; the service user's values of
 * these are dropped, every other variable is kept. */
static const char *const owned[] = {
	"GOPROXY", "GOSUMDB", "GONOSUMDB", "GONOSUMCHECK", "GONOPROXY", "GOPRIVATE",
	"GOFLAGS", "GOTOOLCHAIN", "GO111MODULE", "GOPATH", "GOMODCACHE", "GOCACHE",
	"GOWORK", "GIT_TERMINAL_PROMPT", "GCM_INTERACTIVE",
};

static bool is_owned(const char *kv)
{
	for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) {
		size_t n = strlen(owned[i]);
		if (strncmp(kv, owned[i], n) == 0 && kv[n] == '=')
			return true;
	}
	return false;
}

static void env_add(char *kv)
{
	char **grown = realloc(child_env, (n_child_env + 2) * sizeof *grown);

	if (grown == NULL || kv == NULL)
		abort();   /* start-up, a few hundred bytes */
	child_env = grown;
	child_env[n_child_env++] = kv;
	child_env[n_child_env] = NULL;
}

static char *env_fmt(const char *name, const char *value)
{
	char *kv;

	if (asprintf(&kv, "%s=%s", name, value) < 0)
		abort();
	return kv;
}

/* GOPRIVATE: the -exclude globs, so that GOVCS's default lets every
 * version control system reach them (public modules get git and hg). */
static char *joined_excludes(void)
{
	size_t len = 1;
	char *s;

	for (size_t i = 0; i < cfg->n_exclude; i++)
		len += strlen(cfg->exclude[i]) + 1;
	if ((s = calloc(1, len)) == NULL)
		abort();
	for (size_t i = 0; i < cfg->n_exclude; i++) {
		if (i > 0)
			strcat(s, ",");
		strcat(s, cfg->exclude[i]);
	}
	return s;
}

static void build_env(void)
{
	char path[4096];
	char *priv;

	for (char **e = environ; *e; e++)
		if (!is_owned(*e))
			env_add(strdup(*e));
	env_add(env_fmt("GOPROXY", "direct"));
	/* goproxyd verifies what is not -exclude'd itself (verify.h), with
	 * its own -sumdb configuration, before it is cached. */
	env_add(env_fmt("GOSUMDB", "off"));
	/* Overrides any GOFLAGS of the user's go env file (an empty value
	 * would not); -modcacherw keeps the tree removable by an operator. */
	env_add(env_fmt("GOFLAGS", "-modcacherw"));
	env_add(env_fmt("GOTOOLCHAIN", "local"));
	env_add(env_fmt("GO111MODULE", "on"));
	env_add(env_fmt("GOWORK", "off"));
	env_add(env_fmt("GIT_TERMINAL_PROMPT", "0"));
	env_add(env_fmt("GCM_INTERACTIVE", "never"));
	snprintf(path, sizeof path, "%s/gopath", dir);
	env_add(env_fmt("GOPATH", path));
	env_add(env_fmt("GOMODCACHE", modcache));
	snprintf(path, sizeof path, "%s/gocache", dir);
	env_add(env_fmt("GOCACHE", path));
	if (getenv("GIT_SSH_COMMAND") == NULL && getenv("GIT_SSH") == NULL)
		env_add(env_fmt("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"));
	priv = joined_excludes();
	env_add(env_fmt("GOPRIVATE", priv));
	free(priv);
}

/* --- one child ------------------------------------------------------------------ */

static void kill_all_locked(void)
{
	for (int i = 0; i < cfg->max_direct; i++)
		if (running[i] > 0)
			kill(-running[i], SIGKILL);
}

/* Spawns argv in a process group of its own, stdin /dev/null, stdout and
 * stderr into the pipes; records it so that direct_stop() can kill it. */
static pid_t spawn(char *const argv[], int out_w, int err_w)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	pid_t pid = -1;
	int slot = -1;

	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);   /* ignored here; the child gets the default */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_w, 1);
	posix_spawn_file_actions_adddup2(&fa, err_w, 2);
	/* Sockets and files libcurl or libmicrohttpd opened without
	 * O_CLOEXEC must not outlive a client's connection in a child. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawn_file_actions_addchdir_np(&fa, dir);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                              POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigmask(&at, &none);   /* main.c blocks SIGTERM & co. */
	posix_spawnattr_setsigdefault(&at, &def);
	pthread_mutex_lock(&lock);
	for (int i = 0; i < cfg->max_direct && slot < 0; i++)
		if (running[i] == 0)
			slot = i;
	if (!stopping && slot >= 0 && posix_spawnp(&pid, argv[0], &fa, &at, argv, child_env) == 0)
		running[slot] = pid;
	else
		pid = -1;
	pthread_mutex_unlock(&lock);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

static void unregister(pid_t pid)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < cfg->max_direct; i++)
		if (running[i] == pid)
			running[i] = 0;
	pthread_mutex_unlock(&lock);
}

/* Appends what fd has to the bounded buffer; false at EOF or error. */
static bool drain(int fd, char *buf, size_t *len, size_t cap)
{
	char scratch[4096];
	ssize_t n;

	if (*len + 1 < cap)
		n = read(fd, buf + *len, cap - 1 - *len);
	else
		n = read(fd, scratch, sizeof scratch);   /* over the bound: dropped */
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	if (*len + 1 < cap)
		*len += (size_t)n;
	return true;
}

/* Reads both pipes until they close or the deadline passes. */
static void read_pipes(int out_r, int err_r, struct child_out *co, int64_t deadline)
{
	struct pollfd p[2] = { { .fd = out_r, .events = POLLIN }, { .fd = err_r, .events = POLLIN } };

	while (p[0].fd >= 0 || p[1].fd >= 0) {
		int64_t left = deadline - monotonic_ms();

		if (left <= 0) {
			co->timed_out = true;
			return;
		}
		if (poll(p, 2, (int)(left < 1000 ? left : 1000)) < 0 && errno != EINTR)
			return;
		if (p[0].revents && !drain(out_r, co->out, &co->out_len, OUT_MAX))
			p[0].fd = -1;
		if (p[1].revents && !drain(err_r, co->err, &co->err_len, sizeof co->err))
			p[1].fd = -1;
	}
}

/* Waits for the child until the deadline, then kills its group: stray
 * grandchildren (git, ssh) go with it.  The group is killed while the
 * child is still a zombie, so its id cannot have been reused. */
static void reap(pid_t pid, struct child_out *co, int64_t deadline)
{
	siginfo_t si;

	for (;;) {
		si.si_pid = 0;
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno != EINTR)
			break;
		if (si.si_pid == pid || co->timed_out || monotonic_ms() >= deadline)
			break;
		usleep(10 * 1000);
	}
	if (si.si_pid != pid)
		co->timed_out = true;
	kill(-pid, SIGKILL);
	while (waitpid(pid, &co->status, 0) < 0 && errno == EINTR)
		;
}

/* Runs argv to completion (or the timeout), collecting its output. */
static void run_child(char *const argv[], struct child_out *co, int64_t timeout_ms)
{
	int out[2], err[2];
	int64_t deadline = monotonic_ms() + timeout_ms;
	pid_t pid;

	memset(co, 0, sizeof *co);
	if ((co->out = malloc(OUT_MAX)) == NULL || pipe2(out, O_CLOEXEC) < 0) {
		co->spawn_failed = true;
		return;
	}
	if (pipe2(err, O_CLOEXEC) < 0) {
		close(out[0]), close(out[1]);
		co->spawn_failed = true;
		return;
	}
	pid = spawn(argv, out[1], err[1]);
	close(out[1]);
	close(err[1]);
	if (pid < 0) {
		co->spawn_failed = true;
		pthread_mutex_lock(&lock);
		co->stopped = stopping;
		pthread_mutex_unlock(&lock);
	} else {
		atomic_fetch_add(&n_running, 1);
		read_pipes(out[0], err[0], co, deadline);
		reap(pid, co, deadline);
		atomic_fetch_sub(&n_running, 1);
		unregister(pid);
		pthread_mutex_lock(&lock);
		co->stopped = stopping;
		pthread_mutex_unlock(&lock);
	}
	close(out[0]);
	close(err[0]);
	co->out[co->out_len] = '\0';
	co->err[co->err_len] = '\0';
}

/* --- reasons ------------------------------------------------------------------- */

void direct_redact(char *s)
{
	char *p = s;

	while ((p = strstr(p, "://")) != NULL) {
		char *auth = p + 3;
		size_t n = strcspn(auth, "/ \t\r\n\"'");
		char *at = memrchr(auth, '@', n);

		if (at != NULL)
			memmove(auth, at + 1, strlen(at + 1) + 1);
		p = auth;
	}
}

/* Replaces every occurrence of what with with, in place (with no longer). */
static void replace_all(char *s, const char *what, const char *with)
{
	size_t wn = strlen(what), rn = strlen(with);
	char *p = s;

	while ((p = strstr(p, what)) != NULL) {
		memmove(p + rn, p + wn, strlen(p + wn) + 1);
		memcpy(p, with, rn);
		p += rn;
	}
}

/* The go command's error as one line: "go: " dropped, line breaks and
 * tabs folded, goproxyd's own directory not shown, credentials removed. */
static void set_reason(char *out, size_t n, const char *text)
{
	char buf[ERR_MAX + 64];
	size_t len;

	snprintf(buf, sizeof buf, "%s", strncmp(text, "go: ", 4) == 0 ? text + 4 : text);
	replace_all(buf, modcache, "$GOMODCACHE");
	direct_redact(buf);
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\t' || *p == '\r' || (unsigned char)*p < 0x20)
			*p = ' ';
	len = strlen(buf);
	while (len > 0 && buf[len - 1] == ' ')
		buf[--len] = '\0';
	replace_all(buf, "   ", " ");
	replace_all(buf, "  ", " ");
	len = strlen(buf);
	if (len >= n)
		len = n - 1;
	memcpy(out, buf, len);
	out[len] = '\0';
}

/* --- the requests --------------------------------------------------------------- */

/* Copies <GOMODCACHE>/cache/download/<esc path>/@v/<version>.<ext> into a
 * temp file for key. */
static int copy_file(const struct task *t, const char *version, const char *ext,
                     struct direct_result *res)
{
	char esc[MP_VERSION_MAX], path[4096], buf[65536];
	uint64_t limit = validate_limit(&t->req);
	ssize_t n;
	int fd, r = 0;

	if (mp_escape(version, esc, sizeof esc) != NULL)
		return text_fail(res->reason, sizeof res->reason, "go command answered a bad version");
	snprintf(path, sizeof path, "%s/cache/download/%s/@v/%s.%s", modcache, t->req.esc_path, esc, ext);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return text_fail(res->reason, sizeof res->reason, "go command left no %s file for %s@%s",
		                 ext, t->req.path, version);
	if ((r = cache_tmp_create(t->key, &res->tmp)) < 0) {
		close(fd);
		return text_fail(res->reason, sizeof res->reason, "cannot store %s: %s", t->key, strerror(-r));
	}
	while ((n = read(fd, buf, sizeof buf)) > 0 && r == 0) {
		res->size += (uint64_t)n;
		if (res->size > limit)
			r = -EFBIG;
		else
			r = cache_tmp_write(&res->tmp, buf, (size_t)n);
	}
	close(fd);
	if (n < 0 || r < 0) {
		cache_tmp_discard(&res->tmp);
		return text_fail(res->reason, sizeof res->reason, "cannot copy the %s file of %s@%s: %s",
		                 ext, t->req.path, version, strerror(r < 0 ? -r : errno));
	}
	return 0;
}

static int store_bytes(const struct task *t, const char *buf, size_t len, struct direct_result *res)
{
	int r;

	if ((r = cache_tmp_create(t->key, &res->tmp)) < 0 ||
	    (r = cache_tmp_write(&res->tmp, buf, len)) < 0) {
		cache_tmp_discard(&res->tmp);
		return text_fail(res->reason, sizeof res->reason, "cannot store %s: %s", t->key, strerror(-r));
	}
	res->size = len;
	return 0;
}

/* An @v/list body: the versions of `go list -m -json -versions`. */
static int answer_list(const struct task *t, const cJSON *j, struct direct_result *res)
{
	const cJSON *vs = cJSON_GetObjectItemCaseSensitive(j, "Versions"), *v;
	size_t len = 0, cap = 4096;
	char *body = malloc(cap);
	int r;

	if (body == NULL)
		return text_fail(res->reason, sizeof res->reason, "out of memory");
	cJSON_ArrayForEach(v, vs) {
		size_t n;
		if (!cJSON_IsString(v) || !mp_is_canonical(v->valuestring))
			continue;
		n = strlen(v->valuestring);
		if (len + n + 1 > cap) {
			char *grown = realloc(body, cap = 2 * cap + n);
			if (grown == NULL) {
				free(body);
				return text_fail(res->reason, sizeof res->reason, "out of memory");
			}
			body = grown;
		}
		memcpy(body + len, v->valuestring, n);
		body[len + n] = '\n';
		len += n + 1;
	}
	r = store_bytes(t, body, len, res);
	free(body);
	return r;
}

/* The file the request asks for, from what the child left behind. */
static int answer(const struct task *t, const cJSON *j, struct direct_result *res)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "Version");
	const cJSON *tm = cJSON_GetObjectItemCaseSensitive(j, "Time");
	char info[512];

	if (t->req.kind == REQ_LIST)
		return answer_list(t, j, res);
	if (!cJSON_IsString(v) || !mp_is_canonical(v->valuestring))
		return text_fail(res->reason, sizeof res->reason, "go command answered no version");
	if (t->req.immutable && strcmp(v->valuestring, t->req.version) != 0)
		return text_fail(res->reason, sizeof res->reason, "go command answered %s for %s",
		                 v->valuestring, t->req.version);
	if (t->req.kind != REQ_INFO && t->req.kind != REQ_LATEST)
		return copy_file(t, v->valuestring, route_ext(t->req.kind), res);
	if (copy_file(t, v->valuestring, "info", res) == 0)
		return 0;
	/* No .info left behind: the go command's own answer is one. */
	if (!cJSON_IsString(tm))
		return -1;
	snprintf(info, sizeof info, "{\"Version\":\"%s\",\"Time\":\"%s\"}\n", v->valuestring,
	         tm->valuestring);
	res->reason[0] = '\0';
	return store_bytes(t, info, strlen(info), res);
}

/* argv for the request; strings point into arg (M@V) or are static. */
static void make_argv(const struct request *r, char *arg, size_t n, char *argv[])
{
	int i = 0;

	argv[i++] = (char *)go_bin;
	if (r->kind == REQ_ZIP) {
		argv[i++] = "mod";
		argv[i++] = "download";
	} else {
		argv[i++] = "list";
		argv[i++] = "-m";
	}
	argv[i++] = "-json";
	if (r->kind == REQ_LIST) {
		argv[i++] = "-versions";
		argv[i++] = "-retracted";
		snprintf(arg, n, "%s", r->path);
	} else
		snprintf(arg, n, "%s@%s", r->path, r->kind == REQ_LATEST ? "latest" : r->version);
	argv[i++] = arg;
	argv[i] = NULL;
}

/* The outcome of a child that ran. */
static void judge(const struct task *t, const struct child_out *co, struct direct_result *res)
{
	cJSON *j = cJSON_ParseWithLength(co->out, co->out_len);
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "Error");
	bool ok = WIFEXITED(co->status) && WEXITSTATUS(co->status) == 0;

	if (ok && j != NULL && !cJSON_IsString(e)) {
		res->status = answer(t, j, res) == 0 ? DIRECT_OK : DIRECT_FAILED;
	} else if (cJSON_IsString(e) || co->err_len > 0) {
		res->status = DIRECT_NOTFOUND;
		set_reason(res->reason, sizeof res->reason, cJSON_IsString(e) ? e->valuestring : co->err);
	} else {
		res->status = DIRECT_FAILED;
		text_fail(res->reason, sizeof res->reason, "%s: go command ended with status %d",
		          t->req.path, WIFEXITED(co->status) ? WEXITSTATUS(co->status) : -1);
	}
	cJSON_Delete(j);
}

static void direct_task(void *arg)
{
	struct task *t = arg;
	struct direct_result res = { .status = DIRECT_FAILED };
	char m[MP_PATH_MAX + MP_VERSION_MAX + 2], *argv[8];
	struct child_out co;
	int64_t start = monotonic_us();
	enum metric_direct outcome = MD_ERROR;

	res.tmp.tmp_fd = res.tmp.tmp_dirfd = -1;
	make_argv(&t->req, m, sizeof m, argv);
	run_child(argv, &co, cfg->direct_timeout_ms);
	if (co.stopped || co.spawn_failed)
		text_fail(res.reason, sizeof res.reason, co.stopped ? "goproxyd is shutting down"
		                                                    : "cannot run the go command");
	else if (co.timed_out)
		text_fail(res.reason, sizeof res.reason, "%s: go command killed after %lld ms (-directTimeout)",
		          t->req.path, (long long)cfg->direct_timeout_ms);
	else
		judge(t, &co, &res);
	free(co.out);
	if (res.status != DIRECT_OK)
		log_warn("direct %s: %s", m, res.reason);
	outcome = res.status == DIRECT_OK ? MD_OK : res.status == DIRECT_NOTFOUND ? MD_NOTFOUND
	        : co.timed_out ? MD_TIMEOUT : MD_ERROR;
	metrics_direct(outcome, monotonic_us() - start);
	t->done(t->arg, &res);
	free(t);
}

/* --- start, stop, submit ---------------------------------------------------------- */

/* `go version` must run: otherwise no direct fetch ever could. */
static int check_go(void)
{
	char *argv[] = { (char *)go_bin, "version", NULL };
	struct child_out co;
	bool ok;

	run_child(argv, &co, START_CHECK_MS);
	ok = !co.spawn_failed && !co.timed_out && WIFEXITED(co.status) &&
	     WEXITSTATUS(co.status) == 0 && strncmp(co.out, "go version ", 11) == 0;
	if (!ok)
		log_error("-goBin %s: the go command does not run (%s); 'direct' in -proxy and -exclude "
		          "fetch modules with it", go_bin,
		          co.spawn_failed ? "cannot start it" : co.timed_out ? "no answer in 30 s"
		          : co.err_len ? co.err : "`go version` failed");
	else
		log_info("direct fetches with %.*s", (int)strcspn(co.out, "\n"), co.out);
	free(co.out);
	return ok ? 0 : -1;
}

static int make_dirs(void)
{
	if (asprintf(&dir, "%s/%s", cache_root(), CACHE_DIRECT_DIR) < 0 ||
	    asprintf(&modcache, "%s/gopath/pkg/mod", dir) < 0)
		abort();
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		log_error("cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

int direct_start(const struct config *c)
{
	if (!config_uses_direct(c))
		return 0;
	cfg = c;
	stopping = false;
	go_bin = c->go_bin ? c->go_bin : "go";
	if ((running = calloc((size_t)c->max_direct, sizeof *running)) == NULL || make_dirs() < 0)
		return -1;
	build_env();
	if (check_go() < 0)
		return -1;
	if ((pool = workq_start(1, (unsigned)c->max_direct)) == NULL)
		return -1;
	return 0;
}

static void free_all(void)
{
	for (size_t i = 0; i < n_child_env; i++)
		free(child_env[i]);
	free(child_env);
	child_env = NULL;
	n_child_env = 0;
	free(running);
	running = NULL;
	free(dir);
	free(modcache);
	dir = modcache = NULL;
}

void direct_stop(void)
{
	if (cfg == NULL)
		return;
	pthread_mutex_lock(&lock);
	stopping = true;
	kill_all_locked();
	pthread_mutex_unlock(&lock);
	if (pool)
		workq_stop(pool);   /* queued tasks find stopping set and fail */
	pool = NULL;
	free_all();
	cfg = NULL;
}

void direct_submit(const struct request *r, const char *key, direct_done_fn done, void *arg)
{
	struct task *t = calloc(1, sizeof *t);

	if (t == NULL || pool == NULL) {
		struct direct_result res = { .status = DIRECT_FAILED };
		res.tmp.tmp_fd = res.tmp.tmp_dirfd = -1;
		strcpy(res.reason, t ? "no go command: direct fetches are not configured" : "out of memory");
		free(t);
		done(arg, &res);
		return;
	}
	t->req = *r;
	snprintf(t->key, sizeof t->key, "%s", key);
	t->done = done;
	t->arg = arg;
	if (workq_submit(pool, direct_task, t) < 0)
		direct_task(t);   /* stopping: it fails at once */
}

uint64_t direct_running(void)
{
	return atomic_load(&n_running);
}
