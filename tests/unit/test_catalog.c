/*
 * test_catalog: the index of cached versions without a server: publish
 * and evict events, paging that sees every version once, search, the
 * newest versions, the start-up walk (what it skips, and a version evicted
 * while it runs), and the memory of 100,000 versions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"

struct seen {
	char keys[64][128];
	unsigned files[64];
	int64_t times[64];
	size_t n;
};

static int remember(void *arg, const char *p, const char *v, unsigned files, int64_t t)
{
	struct seen *s = arg;

	if (s->n < 64) {
		snprintf(s->keys[s->n], sizeof s->keys[0], "%s@%s", p, v);
		s->files[s->n] = files;
		s->times[s->n] = t;
	}
	s->n++;
	return 0;
}

static int setup(void **state)
{
	(void)state;
	catalog_enable_for_test();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	catalog_stop();
	return 0;
}

static void stats(size_t *versions, size_t *modules)
{
	struct catalog_stats st;

	catalog_stats(&st);
	*versions = st.versions;
	*modules = st.modules;
}

static void test_note_and_forget(void **state)
{
	struct seen s = { .n = 0 };
	size_t v, m;
	bool more;

	(void)state;
	catalog_note("example.com/a/@v/v1.0.0.info", 10);
	catalog_note("example.com/a/@v/v1.0.0.mod", 20);
	catalog_note("example.com/a/@v/v1.1.0.zip", 5);
	catalog_note("example.com/!b/@v/v0.1.0.zip", 7);
	/* Not versions: ignored. */
	catalog_note("example.com/a/@v/list", 1);
	catalog_note("example.com/a/@latest", 1);
	catalog_note("example.com/a/@v/master.info", 1);
	catalog_note("sumdb/sum.golang.org/lookup/example.com/a@v1.0.0", 1);
	catalog_note("example.com/a/@v/v1.0.0.ziphash", 1);
	stats(&v, &m);
	assert_int_equal(v, 3);
	assert_int_equal(m, 2);
	catalog_walk(NULL, NULL, 10, remember, &s, &more);
	assert_false(more);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.keys[0], "example.com/!b@v0.1.0");
	assert_string_equal(s.keys[1], "example.com/a@v1.0.0");
	assert_int_equal(s.files[1], CATALOG_INFO | CATALOG_MOD);
	assert_int_equal(s.times[1], 20);
	/* One file goes, then the version's unit, as gc.c evicts it. */
	catalog_forget("example.com/a/@v/v1.0.0.info");
	stats(&v, &m);
	assert_int_equal(v, 3);
	catalog_forget("example.com/a/@v/v1.0.0");
	catalog_forget("example.com/a/@v/v1.1.0.zip");
	stats(&v, &m);
	assert_int_equal(v, 1);
	assert_int_equal(m, 1);
	catalog_forget("example.com/!b/@v/v0.1.0");
	stats(&v, &m);
	assert_int_equal(v, 0);
	assert_int_equal(m, 0);
}

/* Pages of 7 over 100 versions of 9 modules: each version once, in order. */
static void test_paging_sees_each_once(void **state)
{
	char key[128], after_p[128] = "", after_v[64] = "";
	size_t total = 0;
	bool more = true;

	(void)state;
	for (int i = 99; i >= 0; i--) {
		snprintf(key, sizeof key, "example.com/m%d/@v/v1.%d.0.info", i % 9, i);
		catalog_note(key, i);
	}
	while (more) {
		struct seen s = { .n = 0 };

		catalog_walk(total ? after_p : NULL, total ? after_v : NULL, 7, remember, &s, &more);
		assert_true(s.n <= 7);
		for (size_t i = 0; i < s.n; i++)
			if (total + i > 0)   /* strictly increasing */
				assert_true(i == 0 || strcmp(s.keys[i - 1], s.keys[i]) < 0);
		total += s.n;
		if (s.n) {
			char *at = strchr(s.keys[s.n - 1], '@');

			*at = '\0';
			snprintf(after_p, sizeof after_p, "%s", s.keys[s.n - 1]);
			snprintf(after_v, sizeof after_v, "%s", at + 1);
		}
	}
	assert_int_equal(total, 100);
}

static void test_search_and_recent(void **state)
{
	struct seen s = { .n = 0 };
	bool more;

	(void)state;
	catalog_note("github.com/!burnt!sushi/toml/@v/v1.2.0.mod", 100);
	catalog_note("github.com/!burnt!sushi/toml/@v/v1.3.0.mod", 300);
	catalog_note("golang.org/x/text/@v/v0.14.0.zip", 200);
	catalog_search("burntsushi/TOML", 10, remember, &s, &more);
	assert_int_equal(s.n, 2);
	assert_false(more);
	s.n = 0;
	catalog_search("burnt", 1, remember, &s, &more);
	assert_int_equal(s.n, 1);
	assert_true(more);
	s.n = 0;
	catalog_search("not-cached.example", 10, remember, &s, &more);
	assert_int_equal(s.n, 0);
	s.n = 0;
	catalog_recent(2, remember, &s);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.keys[0], "github.com/!burnt!sushi/toml@v1.3.0");
	assert_string_equal(s.keys[1], "golang.org/x/text@v0.14.0");
}

static void put_file(const char *root, const char *rel)
{
	char path[512], *slash;
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", root, rel);
	for (slash = strchr(path + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
		*slash = '/';
	}
	assert_non_null(f = fopen(path, "w"));
	fputs("x", f);
	fclose(f);
}

/* The start-up walk: versions only, and not one evicted while it ran. */
static void test_rebuild_walk(void **state)
{
	char root[] = "/tmp/goproxyd-test-catalog-XXXXXX", cmd[128];
	struct seen s = { .n = 0 };
	bool more;

	(void)state;
	assert_non_null(mkdtemp(root));
	put_file(root, "example.com/a/@v/v1.0.0.info");
	put_file(root, "example.com/a/@v/v1.0.0.zip");
	put_file(root, "example.com/a/@v/v1.1.0.mod");
	put_file(root, "example.com/a/@v/list");
	put_file(root, "example.com/a/@latest");
	put_file(root, "example.com/a/@v/.goproxyd-tmp-1.0-0-v1.2.0.zip");
	put_file(root, "example.com/a/@v/v1.9.0.info");     /* evicted during the walk */
	put_file(root, "example.com/BAD/@v/v1.0.0.info");   /* not an escaped path */
	put_file(root, "example.com/b/@v/master.info");     /* not canonical */
	put_file(root, "sumdb/sum.golang.org/lookup/example.com/a@v1.0.0");
	catalog_note("example.com/live/@v/v0.0.1.mod", 1);  /* published meanwhile */
	catalog_forget("example.com/a/@v/v1.9.0");
	assert_int_equal(catalog_rebuild_now(root), 0);
	catalog_walk(NULL, NULL, 10, remember, &s, &more);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.keys[0], "example.com/a@v1.0.0");
	assert_int_equal(s.files[0], CATALOG_INFO | CATALOG_ZIP);
	assert_string_equal(s.keys[1], "example.com/a@v1.1.0");
	assert_string_equal(s.keys[2], "example.com/live@v0.0.1");
	/* The walk is done: a later eviction is forgotten, not remembered. */
	catalog_forget("example.com/a/@v/v1.1.0");
	s.n = 0;
	catalog_walk(NULL, NULL, 10, remember, &s, &more);
	assert_int_equal(s.n, 2);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

/* 100,000 versions of 10,000 modules: all listed; the index's own count of
 * what it allocated is printed (README, "The front page"). */
static void test_memory_100k(void **state)
{
	struct catalog_stats st;
	char key[128];

	(void)state;
	for (int m = 0; m < 10000; m++)
		for (int v = 0; v < 10; v++) {
			snprintf(key, sizeof key, "github.com/example-org%03d/module-%05d/@v/v1.%d.0.zip",
			         m % 100, m, v);
			catalog_note(key, m);
		}
	catalog_stats(&st);
	assert_int_equal(st.versions, 100000);
	assert_int_equal(st.modules, 10000);
	assert_false(st.full);
	printf("# catalog: 100000 versions of 10000 modules: %zu bytes allocated (%.1f MiB)\n",
	       st.bytes, (double)st.bytes / 1048576.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_note_and_forget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paging_sees_each_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_search_and_recent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_100k, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
