/*
 * test_direct: the go command runner with stand-in go commands (shell
 * scripts given as -goBin): start-up refuses a go command that does not
 * run; a failing child's stderr becomes one line with every
 * "user:password@" removed and goproxyd's directory hidden; a child that
 * hangs is killed with its process group at -directTimeout; a good
 * answer is copied into a cache temp file.  direct_redact() on its own.
 * The real go command is exercised by tests/integration/test_direct.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "direct.h"

static char root[] = "/tmp/test_direct.XXXXXX";
static char cachedir[256], gobin[256];
static char *exclude[] = { "git.example.com" };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool got;
static struct direct_result result;

static void on_done(void *arg, struct direct_result *res)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	result = *res;
	got = true;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

static void write_go(const char *body)
{
	FILE *f = fopen(gobin, "w");

	assert_non_null(f);
	fprintf(f, "#!/bin/sh\nif [ \"$1\" = version ]; then echo 'go version go1.19 fake'; exit 0; fi\n%s\n",
	        body);
	fclose(f);
	assert_int_equal(chmod(gobin, 0755), 0);
}

static void config_for(struct config *cfg, int64_t timeout_ms)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->exclude = exclude;
	cfg->n_exclude = 1;
	cfg->go_bin = gobin;
	cfg->max_direct = 2;
	cfg->direct_timeout_ms = timeout_ms;
}

/* Runs one list request through a started runner and waits for done(). */
static void fetch_list(const char *module)
{
	struct request r;
	char key[CACHE_KEY_MAX];

	memset(&r, 0, sizeof r);
	r.kind = REQ_LIST;
	snprintf(r.path, sizeof r.path, "%s", module);
	snprintf(r.esc_path, sizeof r.esc_path, "%s", module);
	assert_int_equal(cache_key(&r, key, sizeof key), 0);
	got = false;
	direct_submit(&r, key, on_done, NULL);
	pthread_mutex_lock(&mu);
	while (!got)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static int setup(void **state)
{
	(void)state;
	if (mkdtemp(root) == NULL)
		return -1;
	snprintf(cachedir, sizeof cachedir, "%s/cache", root);
	snprintf(gobin, sizeof gobin, "%s/go", root);
	return cache_init(cachedir, true);
}

static int teardown(void **state)
{
	char cmd[512];

	(void)state;
	cache_shutdown();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_redact(void **state)
{
	char s[] = "fatal: https://bob:hunter2@git.example.com/x and ssh://git@h/y and http://h/z@v1";

	(void)state;
	direct_redact(s);
	assert_string_equal(s, "fatal: https://git.example.com/x and ssh://h/y and http://h/z@v1");
}

static void test_go_that_does_not_run(void **state)
{
	struct config cfg;

	(void)state;
	config_for(&cfg, 5000);
	write_go("exit 0");
	assert_int_equal(chmod(gobin, 0644), 0);   /* not executable */
	assert_int_equal(direct_start(&cfg), -1);
	direct_stop();
}

static void test_error_becomes_one_clean_line(void **state)
{
	struct config cfg;

	(void)state;
	config_for(&cfg, 5000);
	write_go("echo \"go: module git.example.com/x: git ls-remote -q origin in $GOMODCACHE/cache/vcs/1: "
	         "exit status 128:\" >&2\n"
	         "printf '\\tfatal: unable to access https://bob:hunter2@git.example.com/x/\\n' >&2\nexit 1");
	assert_int_equal(direct_start(&cfg), 0);
	fetch_list("git.example.com/x");
	direct_stop();
	assert_int_equal(result.status, DIRECT_NOTFOUND);
	assert_null(strstr(result.reason, "hunter2"));
	assert_null(strstr(result.reason, "bob"));
	assert_null(strchr(result.reason, '\n'));
	assert_null(strchr(result.reason, '\t'));
	assert_null(strstr(result.reason, root));
	assert_non_null(strstr(result.reason, "$GOMODCACHE/cache/vcs/1"));
	assert_non_null(strstr(result.reason, "https://git.example.com/x/"));
	assert_int_equal(strncmp(result.reason, "module git.example.com/x:", 25), 0);
}

/* Alive and not a zombie (an orphan's zombie waits for whoever reaps
 * orphans here, which may be slow or nobody in a container). */
static bool alive(long pid)
{
	char path[64], stat[256] = "";
	FILE *f;

	for (int i = 0; i < 50; i++) {
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		if ((f = fopen(path, "r")) == NULL)
			return false;
		if (fgets(stat, sizeof stat, f) == NULL)
			stat[0] = '\0';
		fclose(f);
		if (strstr(stat, ") Z ") != NULL)
			return false;
		usleep(20 * 1000);
	}
	return true;
}

/* The child's background grandchild (`sleep`) must die with the group. */
static void test_timeout_kills_the_group(void **state)
{
	struct config cfg;
	char pidfile[300], cmd[600];
	long pid = 0;
	FILE *f;

	(void)state;
	snprintf(pidfile, sizeof pidfile, "%s/sleep.pid", root);
	snprintf(cmd, sizeof cmd, "sleep 3600 & echo $! > '%s'\nwait", pidfile);
	config_for(&cfg, 300);
	write_go(cmd);
	assert_int_equal(direct_start(&cfg), 0);
	fetch_list("git.example.com/hang");
	direct_stop();
	assert_int_equal(result.status, DIRECT_FAILED);
	assert_non_null(strstr(result.reason, "-directTimeout"));
	f = fopen(pidfile, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld", &pid), 1);
	fclose(f);
	assert_false(alive(pid));
}

/* An fd goproxyd has open without O_CLOEXEC is not the child's. */
static void test_child_inherits_no_fd(void **state)
{
	struct config cfg;
	int fd = open("/dev/null", O_RDONLY);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(dup2(fd, 47), 47);
	close(fd);
	config_for(&cfg, 5000);
	write_go("if [ -e /proc/$$/fd/47 ]; then echo leaked >&2; else echo closed >&2; fi\nexit 1");
	assert_int_equal(direct_start(&cfg), 0);
	fetch_list("git.example.com/fd");
	direct_stop();
	close(47);
	assert_string_equal(result.reason, "closed");
}

static void test_list_answer_copied(void **state)
{
	struct config cfg;
	char buf[64] = "";

	(void)state;
	config_for(&cfg, 5000);
	write_go("echo '{\"Path\":\"git.example.com/y\",\"Versions\":[\"v1.0.0\",\"bad\",\"v1.1.0\"]}'");
	assert_int_equal(direct_start(&cfg), 0);
	fetch_list("git.example.com/y");
	direct_stop();
	assert_int_equal(result.status, DIRECT_OK);
	assert_int_equal(result.size, 14);
	assert_int_equal(pread(result.tmp.tmp_fd, buf, sizeof buf - 1, 0), 14);
	assert_string_equal(buf, "v1.0.0\nv1.1.0\n");
	cache_tmp_discard(&result.tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redact),
		cmocka_unit_test(test_go_that_does_not_run),
		cmocka_unit_test(test_error_becomes_one_clean_line),
		cmocka_unit_test(test_timeout_kills_the_group),
		cmocka_unit_test(test_child_inherits_no_fd),
		cmocka_unit_test(test_list_answer_copied),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
