/* verifycmd: see include/verifycmd.h.  `goproxyd verify`: one thread. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "dirhash.h"
#include "modpath.h"
#include "httpget.h"
#include "sumdburl.h"
#include "verify.h"
#include "verifycmd.h"

/* One go.sum line: "<module> <version>[/go.mod] <hash>". */
struct sum {
	char *key;     /* "<module> <version>[/go.mod]" */
	char *hash;
};

static struct {
	const char *dir;
	struct sum *sums;
	size_t n_sums;
	bool use_gosum, purge;
	unsigned verified, failed, skipped;
} run;

static const char *flag_value(const char *a, const char *name)
{
	size_t n = strlen(name);

	a += a[1] == '-' ? 2 : 1;
	return strncmp(a, name, n) == 0 && a[n] == '=' ? a + n + 1 : NULL;
}

static bool is_flag(const char *a, const char *name)
{
	return a[0] == '-' && strcmp(a + (a[1] == '-' ? 2 : 1), name) == 0;
}

/* Takes -gosum and -purge out of argv (the rest are daemon flags that
 * config.c parses); returns the new argc, or -1 after a usage error. */
static int take_own_flags(int argc, char **argv, const char **gosum)
{
	int out = 1;

	for (int i = 1; i < argc; i++) {
		const char *v;

		if (is_flag(argv[i], "purge") || is_flag(argv[i], "purge=true"))
			run.purge = true;
		else if (is_flag(argv[i], "purge=false"))
			run.purge = false;
		else if ((v = flag_value(argv[i], "gosum")) != NULL)
			*gosum = v;
		else if (is_flag(argv[i], "gosum")) {
			if (i + 1 == argc) {
				fprintf(stderr, "goproxyd verify: flag needs an argument: -gosum\n");
				return -1;
			}
			*gosum = argv[++i];
		} else
			argv[out++] = argv[i];
	}
	return out;
}

static int load_gosum(const char *path)
{
	char line[4096];
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		fprintf(stderr, "goproxyd verify: -gosum %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		char *sp = strrchr(line, ' ');
		struct sum *grown;

		line[strcspn(line, "\r\n")] = '\0';
		if ((sp = strrchr(line, ' ')) == NULL || sp == line)
			continue;
		if ((grown = realloc(run.sums, (run.n_sums + 1) * sizeof *grown)) == NULL)
			break;
		run.sums = grown;
		run.sums[run.n_sums].key = strndup(line, (size_t)(sp - line));
		run.sums[run.n_sums].hash = strdup(sp + 1);
		run.n_sums++;
	}
	fclose(f);
	run.use_gosum = true;
	return 0;
}

static const char *gosum_hash(const struct request *r)
{
	char key[MP_PATH_MAX + MP_VERSION_MAX + 16];

	snprintf(key, sizeof key, "%s %s%s", r->path, r->version, r->kind == REQ_MOD ? "/go.mod" : "");
	for (size_t i = 0; i < run.n_sums; i++)
		if (run.sums[i].key && strcmp(run.sums[i].key, key) == 0)
			return run.sums[i].hash;
	return NULL;
}

/* "<esc path>/@v/<esc version>.zip|.mod" -> a request; false otherwise. */
static bool parse_entry(const char *rel, struct request *r)
{
	const char *at = strstr(rel, "/@v/"), *file, *dot;
	size_t plen, vlen;

	if (at == NULL || strncmp(rel, "sumdb/", 6) == 0)
		return false;
	file = at + 4;
	if ((dot = strrchr(file, '.')) == NULL)
		return false;
	if (strcmp(dot, ".zip") == 0)
		r->kind = REQ_ZIP;
	else if (strcmp(dot, ".mod") == 0)
		r->kind = REQ_MOD;
	else
		return false;
	plen = (size_t)(at - rel);
	vlen = (size_t)(dot - file);
	if (plen >= sizeof r->esc_path || vlen >= sizeof r->esc_version)
		return false;
	memcpy(r->esc_path, rel, plen);
	r->esc_path[plen] = '\0';
	memcpy(r->esc_version, file, vlen);
	r->esc_version[vlen] = '\0';
	r->immutable = true;
	return mp_unescape_path(r->esc_path, r->path, sizeof r->path) == NULL &&
	       mp_unescape_version(r->esc_version, r->version, sizeof r->version) == NULL &&
	       mp_is_canonical(r->version);
}

static void purge(const struct request *r)
{
	static const char *const exts[] = { "info", "mod", "zip", "ziphash" };
	char path[4096];

	for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
		snprintf(path, sizeof path, "%s/%s/@v/%s.%s", run.dir, r->esc_path, r->esc_version, exts[i]);
		unlink(path);
	}
	printf("removed %s@%s\n", r->path, r->version);
}

static int check(const struct request *r, int fd, char *reason, size_t n)
{
	char hash[DIRHASH_SIZE];
	const char *want;

	if (!run.use_gosum)
		return verify_file(r, fd, reason, n);
	if ((want = gosum_hash(r)) == NULL)
		return 1;
	if (verify_hash(r, fd, hash, reason, n) < 0)
		return -1;
	if (strcmp(hash, want) != 0) {
		snprintf(reason, n, "checksum mismatch: file has %s, go.sum has %s", hash, want);
		return -1;
	}
	return 0;
}

static int visit(const char *fpath, const struct stat *st, int type, struct FTW *ftw)
{
	struct request r = { 0 };
	char reason[512];
	int fd, res;

	(void)st;
	if (type == FTW_D && ftw->level == 1 && strcmp(fpath + ftw->base, CACHE_DIRECT_DIR) == 0)
		return FTW_SKIP_SUBTREE;   /* the go command's GOPATH (direct.h): not the cache's */
	if (type != FTW_F || !parse_entry(fpath + strlen(run.dir) + 1, &r))
		return 0;
	if (!run.use_gosum && !verify_wanted(&r)) {
		run.skipped++;
		return 0;
	}
	if ((fd = open(fpath, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(reason, sizeof reason, "%s", strerror(errno));
		res = -1;
	} else {
		res = check(&r, fd, reason, sizeof reason);
		close(fd);
	}
	if (res > 0) {
		run.skipped++;
		return 0;
	}
	if (res == 0) {
		run.verified++;
		return 0;
	}
	run.failed++;
	printf("FAIL %s@%s %s: %s\n", r.path, r.version, r.kind == REQ_ZIP ? "zip" : "mod", reason);
	if (run.purge)
		purge(&r);
	return 0;
}

int verifycmd_main(int argc, char **argv)
{
	const char *gosum = NULL;
	struct httpget_conf http;
	struct config cfg;
	int r;

	if ((argc = take_own_flags(argc, argv, &gosum)) < 0)
		return 2;
	r = config_parse_args(&cfg, argc, argv, stdout, stderr);
	if (r != CONFIG_RUN) {
		if (r == CONFIG_EXIT_OK)
			printf("\ngoproxyd verify also takes -gosum FILE (check against a go.sum "
			       "instead of the checksum database) and -purge (remove failing versions).\n");
		return r == CONFIG_EXIT_OK ? 0 : 2;
	}
	if (gosum && load_gosum(gosum) < 0) {
		config_free(&cfg);
		return 2;
	}
	if ((r = cache_init(cfg.cache_dir, false)) < 0) {
		fprintf(stderr, "goproxyd verify: -cacheDir %s: %s\n", cfg.cache_dir, strerror(-r));
		config_free(&cfg);
		return 1;
	}
	http = (struct httpget_conf){ cfg.netrc, cfg.connect_timeout_ms };
	if (httpget_init(&http) < 0 || sumdb_url_init(&cfg) < 0 || verify_init(&cfg) < 0) {
		sumdb_url_free();
		httpget_free();
		cache_shutdown();
		config_free(&cfg);
		return 2;
	}
	run.dir = cache_root();
	/* Two verifications of one database never race: this is one thread. */
	if (nftw(run.dir, visit, 32, FTW_PHYS | FTW_ACTIONRETVAL) < 0)
		fprintf(stderr, "goproxyd verify: walking %s: %s\n", run.dir, strerror(errno));
	printf("verified %u, failed %u, skipped %u\n", run.verified, run.failed, run.skipped);
	sumdb_url_free();
	httpget_free();
	cache_shutdown();
	config_free(&cfg);
	for (size_t i = 0; i < run.n_sums; i++) {
		free(run.sums[i].key);
		free(run.sums[i].hash);
	}
	free(run.sums);
	return run.failed ? 1 : 0;
}
