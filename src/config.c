/*
 * config.c: the command line, parsed the way Go's flag package does it:
 * the flag table, Go's flag syntax, the usage text, the one-line error
 * messages, and the setters that store each value in struct config.  The
 * value grammars are pure leaves this file includes: addr.c (-listen),
 * proxylist.c (-proxy, -sumdb), glob.c (-exclude, -deny, -noSumPatterns) and
 * units.c (durations, -cacheMaxSize); -pathPrefix is checked here.
 *
 * Every string a struct config points to is heap-allocated and owned by
 * it.  Setters and grammars return NULL on success or a one-line reason.
 * Thread: start-up, on the main thread (main, `goproxyd gc`, `goproxyd
 * verify`, `prefetch`, `export`, `import`); nothing here runs once the
 * daemon serves.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "glob.h"
#include "parseutil.h"
#include "proxylist.h"
#include "units.h"

#define DURATION_MAX_MS (87600LL * 3600 * 1000)     /* ten years */

/* ------------------------------------------------------------------ */
/* Quoting for error messages                                         */

/* The inside of fput_quoted(), without the quotes. */
static void
fput_quoted_raw(FILE *fp, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", fp);
		else if (c == '\t')
			fputs("\\t", fp);
		else if (c < 0x20 || c == 0x7f)
			fprintf(fp, "\\x%02x", c);
		else
			fputc(c, fp);
	}
}

/* Writes s the way Go's %q would, closely enough to stay on one line. */
static void
fput_quoted(FILE *fp, const char *s, size_t n)
{
	fputc('"', fp);
	fput_quoted_raw(fp, s, n);
	fputc('"', fp);
}

/* Writes a flag value quoted, with the user information of any URL in it
 * ("scheme://user:pass@host") replaced, so a refused credential is not
 * echoed to a terminal or a journal. */
static void
fput_value(FILE *fp, const char *s)
{
	const char *p = s, *scheme;

	fputc('"', fp);
	while ((scheme = strstr(p, "://")) != NULL) {
		const char *auth = scheme + 3;
		size_t alen = strcspn(auth, "/,|");
		const char *at = memrchr(auth, '@', alen);

		if (at == NULL) {
			fput_quoted_raw(fp, p, (size_t)(auth + alen - p));
			p = auth + alen;
			continue;
		}
		fput_quoted_raw(fp, p, (size_t)(auth - p));
		fputs("REDACTED", fp);
		p = at;
	}
	fput_quoted_raw(fp, p, strlen(p));
	fputc('"', fp);
}

/* Flag names are echoed unquoted; control bytes are still escaped. */
static void
fput_name(FILE *fp, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			fprintf(fp, "\\x%02x", c);
		else
			fputc(c, fp);
	}
}

/* ------------------------------------------------------------------ */
/* Flags                                                               */

enum flag_kind {
	F_FUNC,         /* set() does the work */
	F_PATH,         /* char * field: an optional path, "" = unset */
	F_INT,          /* int field, min..max */
	F_SIZE,         /* size_t field, min..max */
	F_DURATION,     /* int64_t milliseconds, min..max */
	F_VERSION,      /* boolean: print the version */
};

struct flag {
	const char *name;
	enum flag_kind kind;
	size_t off;
	long long min, max;
	const char *(*set)(struct config *, const char *);
	const char *type;       /* word after the name in the usage */
	const char *def;        /* default, applied through the parser */
	const char *usage;
};

static const char *
set_listen(struct config *cfg, const char *v)
{
	char *host, *port;
	const char *why;

	if ((why = config_parse_listen(v, &host, &port)) != NULL)
		return why;
	free(cfg->listen_host);
	free(cfg->listen_port);
	cfg->listen_host = host;
	cfg->listen_port = port;
	return NULL;
}

static const char *
set_cache_dir(struct config *cfg, const char *v)
{
	if (*v == '\0')
		return "empty directory name";
	free(cfg->cache_dir);
	cfg->cache_dir = xstrdup(v);
	return NULL;
}

/* "/mirror" or "/a/b/": every path is served under it.  Elements are URL
 * path characters that need no escaping, never "." or ".."; "/" or ""
 * means none. */
static const char *
set_path_prefix(struct config *cfg, const char *v)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~";
	size_t n = strlen(v), elem = 0;
	bool dots = true;

	while (n > 1 && v[n - 1] == '/')
		n--;
	if (n > 0 && v[0] != '/')
		return "must start with '/'";
	for (size_t i = 1; i <= n && n > 1; i++) {
		char c = i < n ? v[i] : '/';

		if (c == '/') {
			if (elem == 0)
				return "empty path element";
			if (dots && elem <= 2)
				return "'.' and '..' are not path elements";
			elem = 0;
			dots = true;
			continue;
		}
		if (strchr(ok, c) == NULL)
			return "only letters, digits and -._~ between the slashes";
		dots = dots && c == '.';
		elem++;
	}
	free(cfg->path_prefix);
	cfg->path_prefix = n > 1 ? xstrndup(v, n) : NULL;
	return NULL;
}

/* "0" (no cap), or a size (units.h), e.g. 512M, 50G. */
static const char *
set_cache_max_size(struct config *cfg, const char *v)
{
	return config_parse_size(v, &cfg->cache_max_bytes);
}

static const char *
set_log_format(struct config *cfg, const char *v)
{
	if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0)
		return "want text or json";
	cfg->log_json = strcmp(v, "json") == 0;
	return NULL;
}

static const char *
set_proxy(struct config *cfg, const char *v)
{
	struct upstream *ups;
	const char *why;
	size_t n;
	bool off;

	if ((why = config_parse_proxy(v, &ups, &n, &off)) != NULL)
		return why;
	config_free_upstreams(cfg->upstreams, cfg->n_upstreams);
	cfg->upstreams = ups;
	cfg->n_upstreams = n;
	cfg->offline = off;
	return NULL;
}

static void
free_strings(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * Comma-separated globs, trimmed, empties skipped.  Unlike GOPRIVATE, a
 * malformed glob is refused here rather than silently never matching.
 */
static const char *
parse_globs(const char *v, char ***list, size_t *count)
{
	const char *p = v, *s, *e;
	char **globs = NULL;
	size_t n = 0;

	while (next_element(&p, &s, &e)) {
		if (glob_path_match(s, (size_t)(e - s), "", 0) < 0) {
			free_strings(globs, n);
			return "malformed glob pattern";
		}
		globs = xreallocarray(globs, n + 1, sizeof(*globs));
		globs[n++] = xstrndup(s, (size_t)(e - s));
	}
	free_strings(*list, *count);
	*list = globs;
	*count = n;
	return NULL;
}

static const char *
set_exclude(struct config *cfg, const char *v)
{
	return parse_globs(v, &cfg->exclude, &cfg->n_exclude);
}

static const char *
set_deny(struct config *cfg, const char *v)
{
	return parse_globs(v, &cfg->deny, &cfg->n_deny);
}

static const char *
set_nosum(struct config *cfg, const char *v)
{
	return parse_globs(v, &cfg->nosum, &cfg->n_nosum);
}

static const char *
set_sumdb(struct config *cfg, const char *v)
{
	struct sumdb_conf *dbs;
	const char *why;
	size_t n;

	if ((why = config_parse_sumdb(v, &dbs, &n)) != NULL)
		return why;
	config_free_sumdbs(cfg->sumdbs, cfg->n_sumdbs);
	cfg->sumdbs = dbs;
	cfg->n_sumdbs = n;
	return NULL;
}

/* -s3: http(s)://HOST[:PORT]/BUCKET[/PREFIX] (or BUCKET.HOST, see
 * check_s3_url()), never with credentials, a query or a fragment. */
static const char *
set_s3(struct config *cfg, const char *v)
{
	const char *host, *path;

	if (*v == '\0') {
		free(cfg->s3_url);
		cfg->s3_url = NULL;
		return NULL;
	}
	if (strncmp(v, "http://", 7) == 0)
		host = v + 7;
	else if (strncmp(v, "https://", 8) == 0)
		host = v + 8;
	else
		return "want http(s)://HOST[:PORT]/BUCKET[/PREFIX]";
	if ((path = strchr(host, '/')) == NULL)
		path = host + strlen(host);
	if (path == host || (path[0] == '/' && path[1] == '/'))
		return "want http(s)://HOST[:PORT]/BUCKET[/PREFIX]";
	if (memchr(host, '@', (size_t)(path - host)))
		return "credentials are not accepted in the URL: use AWS_ACCESS_KEY_ID and "
		       "AWS_SECRET_ACCESS_KEY, or -s3CredentialsFile";
	if (strpbrk(v, "?#%") || strpbrk(v, " \t\r\n"))
		return "no query, fragment, '%' or spaces in the URL";
	free(cfg->s3_url);
	cfg->s3_url = xstrdup(v);
	return NULL;
}

static const char *
set_s3_style(struct config *cfg, const char *v)
{
	if (strcmp(v, "path") == 0)
		cfg->s3_virtual = false;
	else if (strcmp(v, "virtual") == 0)
		cfg->s3_virtual = true;
	else
		return "want path or virtual";
	return NULL;
}

/* -s3's URL against -s3AddressingStyle, once both are known: path-style
 * names the bucket in the path, virtual-hosted style in the host name's
 * first label (so never an IP address). */
static const char *
check_s3_url(const struct config *cfg)
{
	const char *host = strstr(cfg->s3_url, "://") + 3;
	const char *path = strchr(host, '/');
	size_t len = path ? (size_t)(path - host) : strlen(host), dots;

	if (!cfg->s3_virtual) {
		if (path == NULL || path[1] == '\0')
			return "want http(s)://HOST[:PORT]/BUCKET[/PREFIX] (path-style: the bucket in "
			       "the path; -s3AddressingStyle virtual puts it in the host name)";
		return NULL;
	}
	if (memchr(host, ':', len))
		len = (size_t)((const char *)memchr(host, ':', len) - host);
	dots = strspn(host, "0123456789.");
	if (host[0] == '[' || host[0] == '.' || memchr(host, '.', len) == NULL || dots >= len)
		return "want http(s)://BUCKET.HOST[:PORT][/PREFIX] (virtual-hosted style: the "
		       "bucket is the host name's first label)";
	return NULL;
}

#define OFF(field) offsetof(struct config, field)

static const struct flag flags[] = {
	{ "listen", F_FUNC, 0, 0, 0, set_listen, "addr", ":8080",
	  "listen on addr: host:port, [::1]:port or :port" },
	{ "cacheDir", F_FUNC, 0, 0, 0, set_cache_dir, "dir", "./cache",
	  "cache directory, created if missing" },
	{ "proxy", F_FUNC, 0, 0, 0, set_proxy, "list",
	  "https://proxy.golang.org",
	  "upstreams in GOPROXY syntax: ',' tries the next one only on "
	  "404/410,\n    \t'|' on any error; 'off' serves the cache only" },
	{ "pathPrefix", F_FUNC, 0, 0, 0, set_path_prefix, "path", "",
	  "serve everything under this URL path, e.g. /go (clients then use\n    \t"
	  "GOPROXY=http://host:port/go)" },
	{ "exclude", F_FUNC, 0, 0, 0, set_exclude, "patterns", "",
	  "comma-separated GOPRIVATE-style globs of private modules: fetched\n    \t"
	  "from their origin with the go command, never from -proxy, never\n    \t"
	  "looked up in a checksum database" },
	{ "deny", F_FUNC, 0, 0, 0, set_deny, "patterns", "",
	  "comma-separated GOPRIVATE-style globs of modules refused with 404" },
	{ "goBin", F_PATH, OFF(go_bin), 0, 0, NULL, "path", "go",
	  "the go command run for 'direct' and -exclude fetches (looked up in PATH)" },
	{ "directTimeout", F_DURATION, OFF(direct_timeout_ms), 1,
	  DURATION_MAX_MS, NULL, "duration", "10m",
	  "kill a go command fetching from an origin after this long" },
	{ "maxDirect", F_INT, OFF(max_direct), 1, 256, NULL, "n", "4",
	  "go commands fetching from origins at once (others queue)" },
	{ "sumdb", F_FUNC, 0, 0, 0, set_sumdb, "list", "sum.golang.org",
	  "checksum databases to proxy: NAME, KEY (name+hash+base64),\n    \t"
	  "either optionally =URL (else via the first -proxy that supports it,\n    \t"
	  "or https://NAME); 'off' for none" },
	{ "noSumPatterns", F_FUNC, 0, 0, 0, set_nosum, "patterns", "",
	  "comma-separated globs of modules never looked up in a checksum database" },
	{ "cacheExpire", F_DURATION, OFF(cache_expire_ms), 0, DURATION_MAX_MS,
	  NULL, "duration", "5m",
	  "freshness of mutable answers (@v/list, @latest, version queries)" },
	{ "negativeCacheExpire", F_DURATION, OFF(neg_cache_ms), 0,
	  DURATION_MAX_MS, NULL, "duration", "1m",
	  "how long an upstream 404/410 is remembered (0 disables)" },
	{ "connectTimeout", F_DURATION, OFF(connect_timeout_ms), 1,
	  DURATION_MAX_MS, NULL, "duration", "10s",
	  "upstream TCP+TLS connect timeout" },
	{ "stallTimeout", F_DURATION, OFF(stall_timeout_ms), 1,
	  DURATION_MAX_MS, NULL, "duration", "30s",
	  "abort an upstream transfer that sends nothing for this long" },
	{ "clientTimeout", F_DURATION, OFF(client_timeout_ms), 1,
	  DURATION_MAX_MS, NULL, "duration", "60s",
	  "close a client connection idle or stalled this long" },
	{ "headerTimeout", F_DURATION, OFF(header_timeout_ms), 1,
	  DURATION_MAX_MS, NULL, "duration", "10s",
	  "close a connection whose request headers take longer than this in all" },
	{ "shutdownTimeout", F_DURATION, OFF(shutdown_timeout_ms), 0,
	  DURATION_MAX_MS, NULL, "duration", "10s",
	  "on SIGTERM/SIGINT, how long in-flight requests may finish" },
	{ "cacheMaxSize", F_FUNC, 0, 0, 0, set_cache_max_size, "size", "0",
	  "evict least-recently-used versions when the cache grows past size\n    \t"
	  "(e.g. 50G, 512M; 0 = no cap)" },
	{ "accessLog", F_PATH, OFF(access_log), 0, 0, NULL, "path", "",
	  "access log: a file (reopened on SIGHUP), '-' for stderr, empty for none" },
	{ "logFormat", F_FUNC, 0, 0, 0, set_log_format, "format", "text",
	  "access log format: text or json" },
	{ "tlsCert", F_PATH, OFF(tls_cert), 0, 0, NULL, "file", "",
	  "serve HTTPS with this PEM certificate (chain); needs -tlsKey" },
	{ "tlsKey", F_PATH, OFF(tls_key), 0, 0, NULL, "file", "",
	  "PEM private key for -tlsCert" },
	{ "authFile", F_PATH, OFF(auth_file), 0, 0, NULL, "file", "",
	  "require HTTP basic auth: lines user:crypt(3)-hash (yescrypt, bcrypt, SHA-512)" },
	{ "netrc", F_PATH, OFF(netrc), 0, 0, NULL, "file", "",
	  "netrc file with credentials for upstream proxies" },
	{ "s3", F_FUNC, 0, 0, 0, set_s3, "url", "",
	  "S3-compatible shared tier, path-style: http(s)://host[:port]/bucket[/prefix]\n    \t"
	  "(credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)" },
	{ "s3AddressingStyle", F_FUNC, 0, 0, 0, set_s3_style, "style", "path",
	  "where the -s3 URL names the bucket: path, or virtual (http(s)://bucket.host[:port][/prefix];\n    \t"
	  "Alibaba Cloud OSS accepts only this)" },
	{ "s3Region", F_PATH, OFF(s3_region), 0, 0, NULL, "region", "us-east-1",
	  "region the -s3 requests are signed for" },
	{ "s3CredentialsFile", F_PATH, OFF(s3_creds_file), 0, 0, NULL, "file", "",
	  "S3 credentials in the AWS shared-credentials format (profile $AWS_PROFILE or default)" },
	{ "maxFetches", F_INT, OFF(max_fetches), 1, 4096, NULL, "n", "256",
	  "upstream transfers at once (others queue); one module gets a quarter, one upstream three quarters" },
	{ "warm", F_INT, OFF(warm), 0, 4096, NULL, "n", "64",
	  "fetch ahead of clients what their requests show they ask for next:\n    \t"
	  "at most n warming fetches at once, and n files per go.mod (0 = off)" },
	{ "maxConns", F_INT, OFF(max_conns), 1, 1000000, NULL, "n", "1024",
	  "concurrent client connections" },
	{ "maxConnsPerIP", F_INT, OFF(max_conns_per_ip), 0, 1000000, NULL, "n", "256",
	  "concurrent client connections from one address (0 = no limit)" },
	{ "threads", F_INT, OFF(threads), 0, 1024, NULL, "n", "0",
	  "serving threads (0 = one per CPU)" },
	{ "maxHeaderBytes", F_SIZE, OFF(max_header_bytes), 1024, 1048576,
	  NULL, "n", "8192", "limit on the request line plus headers" },
	{ "version", F_VERSION, 0, 0, 0, NULL, NULL, NULL,
	  "print the version and exit" },
};

#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

static const struct flag *
flag_lookup(const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < NFLAGS; i++)
		if (strlen(flags[i].name) == n &&
		    memcmp(flags[i].name, name, n) == 0)
			return &flags[i];
	return NULL;
}

/* Decimal digits only: 0 ok, -1 not a number, -2 outside min..max. */
static int
parse_int(const char *s, long long min, long long max, long long *out)
{
	long long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (!is_digit((unsigned char)*s))
			return -1;
		if (v <= max)
			v = v * 10 + (*s - '0');
	}
	if (v < min || v > max)
		return -2;
	*out = v;
	return 0;
}

/* Go's strconv.ParseBool. */
static int
parse_bool(const char *s, bool *b)
{
	static const char *yes[] = { "1", "t", "T", "TRUE", "true", "True" };
	static const char *no[] = { "0", "f", "F", "FALSE", "false", "False" };
	size_t i;

	for (i = 0; i < 6; i++) {
		if (strcmp(s, yes[i]) == 0)
			return *b = true, 0;
		if (strcmp(s, no[i]) == 0)
			return *b = false, 0;
	}
	return -1;
}

static const char *
set_number(const struct flag *f, struct config *cfg, const char *v,
    char *buf, size_t len)
{
	char *field = (char *)cfg + f->off;
	long long n;
	int rc;

	if ((rc = parse_int(v, f->min, f->max, &n)) == 0) {
		if (f->kind == F_INT)
			*(int *)(void *)field = (int)n;
		else
			*(size_t *)(void *)field = (size_t)n;
		return NULL;
	}
	snprintf(buf, len, "%s (want an integer from %lld to %lld)",
	    rc == -1 ? "not a decimal integer" : "out of range", f->min, f->max);
	return buf;
}

static const char *
set_duration(const struct flag *f, struct config *cfg, const char *v,
    char *buf, size_t len)
{
	const char *why;
	int64_t ms;

	if ((why = config_parse_duration(v, &ms)) != NULL)
		return why;
	if (ms < f->min) {
		snprintf(buf, len, "must be at least 1ms");
		return buf;
	}
	if (ms > f->max) {
		snprintf(buf, len, "out of range (at most %lldh)",
		    f->max / 3600000);
		return buf;
	}
	*(int64_t *)(void *)((char *)cfg + f->off) = ms;
	return NULL;
}

/* Applies a non-boolean flag's value; NULL or the reason it is bad. */
static const char *
flag_set(const struct flag *f, struct config *cfg, const char *v,
    char *buf, size_t len)
{
	switch (f->kind) {
	case F_FUNC:
		return f->set(cfg, v);
	case F_PATH: {
		char **field = (char **)((char *)cfg + f->off);

		free(*field);
		*field = *v ? xstrdup(v) : NULL;
		return NULL;
	}
	case F_INT:
	case F_SIZE:
		return set_number(f, cfg, v, buf, len);
	case F_DURATION:
		return set_duration(f, cfg, v, buf, len);
	case F_VERSION:
		break;
	}
	return "not a value flag";
}

static void
config_defaults(struct config *cfg)
{
	char buf[128];
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < NFLAGS; i++)
		if (flags[i].def != NULL &&
		    flag_set(&flags[i], cfg, flags[i].def, buf, sizeof(buf)))
			abort();        /* a default the parser refuses */
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->listen_host);
	free(cfg->listen_port);
	free(cfg->cache_dir);
	free(cfg->path_prefix);
	config_free_upstreams(cfg->upstreams, cfg->n_upstreams);
	free_strings(cfg->exclude, cfg->n_exclude);
	free_strings(cfg->deny, cfg->n_deny);
	free(cfg->go_bin);
	free_strings(cfg->nosum, cfg->n_nosum);
	free(cfg->access_log);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->auth_file);
	free(cfg->netrc);
	free(cfg->s3_url);
	free(cfg->s3_region);
	free(cfg->s3_creds_file);
	config_free_sumdbs(cfg->sumdbs, cfg->n_sumdbs);
	memset(cfg, 0, sizeof(*cfg));
}

void
config_usage(FILE *out)
{
	size_t i;

	fputs("Usage: goproxyd [flags]\n\n"
	    "goproxyd is a caching Go module proxy.\n\n"
	    "Flags:\n", out);
	for (i = 0; i < NFLAGS; i++) {
		const struct flag *f = &flags[i];

		fprintf(out, "  -%s", f->name);
		if (f->type != NULL)
			fprintf(out, " %s", f->type);
		fprintf(out, "\n    \t%s", f->usage);
		if (f->def == NULL || strcmp(f->def, "") == 0 ||
		    (f->kind == F_INT && strcmp(f->def, "0") == 0))
			fputc('\n', out);
		else if (f->kind == F_FUNC)
			fprintf(out, " (default \"%s\")\n", f->def);
		else
			fprintf(out, " (default %s)\n", f->def);
	}
	fputs("  -h, -help\n    \tprint this help and exit\n", out);
}

/*
 * flag.FlagSet.parseOne for an argument known to start with '-' and to be
 * neither "-" nor "--".  *i indexes the next argument.
 */
static const struct config_cmdflag *
cmdflag_lookup(const struct config_cmdflags *cf, const char *name, size_t n)
{
	for (size_t k = 0; cf && k < cf->n; k++)
		if (strlen(cf->flags[k].name) == n && memcmp(cf->flags[k].name, name, n) == 0)
			return &cf->flags[k];
	return NULL;
}

/* A subcommand's own flag: always takes a value. */
static int
parse_cmdflag(const struct config_cmdflags *cf, const struct config_cmdflag *c,
    const char *eq, int argc, char **argv, int *i, FILE *err)
{
	const char *val, *why;

	if (eq != NULL)
		val = eq + 1;
	else if (*i < argc && argv[*i] != NULL)
		val = argv[(*i)++];
	else {
		fprintf(err, "goproxyd %s: flag needs an argument: -%s\n", cf->cmd, c->name);
		return CONFIG_EXIT_USAGE;
	}
	if ((why = c->set(cf->arg, val)) != NULL) {
		fprintf(err, "goproxyd %s: invalid value ", cf->cmd);
		fput_value(err, val);
		fprintf(err, " for flag -%s: %s\n", c->name, why);
		return CONFIG_EXIT_USAGE;
	}
	return CONFIG_RUN;
}

static int
parse_one(struct config *cfg, const char *arg, int argc, char **argv,
    int *i, bool *version, FILE *out, FILE *err, const struct config_cmdflags *cf)
{
	const struct config_cmdflag *c;
	const struct flag *f;
	const char *name = arg + 1, *eq, *val, *why;
	char buf[128];
	size_t n;

	if (*name == '-')
		name++;
	if (*name == '\0' || *name == '-' || *name == '=') {
		fputs("goproxyd: bad flag syntax: ", err);
		fput_name(err, arg, strlen(arg));
		fputc('\n', err);
		return CONFIG_EXIT_USAGE;
	}
	eq = strchr(name + 1, '=');
	n = eq ? (size_t)(eq - name) : strlen(name);
	if ((c = cmdflag_lookup(cf, name, n)) != NULL)
		return parse_cmdflag(cf, c, eq, argc, argv, i, err);
	if ((f = flag_lookup(name, n)) == NULL) {
		if (span_is(name, name + n, "h") ||
		    span_is(name, name + n, "help")) {
			config_usage(out);
			return CONFIG_EXIT_OK;
		}
		fputs("goproxyd: flag provided but not defined: -", err);
		fput_name(err, name, n);
		fputc('\n', err);
		return CONFIG_EXIT_USAGE;
	}
	if (f->kind == F_VERSION) {
		if (eq == NULL) {
			*version = true;
		} else if (parse_bool(eq + 1, version) < 0) {
			fputs("goproxyd: invalid boolean value ", err);
			fput_quoted(err, eq + 1, strlen(eq + 1));
			fprintf(err, " for -%s: parse error\n", f->name);
			return CONFIG_EXIT_USAGE;
		}
		return CONFIG_RUN;
	}
	if (eq != NULL)
		val = eq + 1;
	else if (*i < argc && argv[*i] != NULL)
		val = argv[(*i)++];
	else {
		fprintf(err, "goproxyd: flag needs an argument: -%s\n", f->name);
		return CONFIG_EXIT_USAGE;
	}
	if ((why = flag_set(f, cfg, val, buf, sizeof(buf))) != NULL) {
		fputs("goproxyd: invalid value ", err);
		fput_value(err, val);
		fprintf(err, " for flag -%s: %s\n", f->name, why);
		return CONFIG_EXIT_USAGE;
	}
	return CONFIG_RUN;
}

/*
 * On CONFIG_EXIT_* the config has already been released (calling
 * config_free on it again is harmless).
 */
int
config_parse_args(struct config *cfg, int argc, char **argv, FILE *out,
    FILE *err)
{
	return config_parse_cmd(cfg, argc, argv, out, err, NULL, NULL);
}

int
config_parse_cmd(struct config *cfg, int argc, char **argv, FILE *out,
    FILE *err, const struct config_cmdflags *cf, int *first_arg)
{
	bool version = false;
	int i = 1, rc = CONFIG_RUN;
	const char *a, *why;

	config_defaults(cfg);
	while (i < argc && (a = argv[i]) != NULL) {
		if (a[0] != '-' || a[1] == '\0')
			break;
		i++;
		if (strcmp(a, "--") == 0)
			break;
		if ((rc = parse_one(cfg, a, argc, argv, &i, &version, out,
		    err, cf)) != CONFIG_RUN)
			goto done;
	}
	if (version) {
		fputs("goproxyd " GOPROXYD_VERSION "\n", out);
		rc = CONFIG_EXIT_OK;
	} else if (first_arg != NULL) {
		*first_arg = i;
	} else if (i < argc && argv[i] != NULL) {
		fputs("goproxyd: unexpected argument ", err);
		fput_quoted(err, argv[i], strlen(argv[i]));
		fputc('\n', err);
		rc = CONFIG_EXIT_USAGE;
	} else if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
		fputs("goproxyd: -tlsCert and -tlsKey go together\n", err);
		rc = CONFIG_EXIT_USAGE;
	} else if (cfg->s3_url && (why = check_s3_url(cfg)) != NULL) {
		fputs("goproxyd: invalid value ", err);
		fput_value(err, cfg->s3_url);
		fprintf(err, " for flag -s3: %s\n", why);
		rc = CONFIG_EXIT_USAGE;
	}
done:
	if (rc != CONFIG_RUN)
		config_free(cfg);
	return rc;
}

bool
config_uses_direct(const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_upstreams; i++)
		if (cfg->upstreams[i].direct)
			return true;
	return cfg->n_exclude > 0;
}

bool
config_excluded(const struct config *cfg, const char *modpath)
{
	return config_match_patterns(cfg->exclude, cfg->n_exclude, modpath);
}

bool
config_denied(const struct config *cfg, const char *modpath)
{
	return config_match_patterns(cfg->deny, cfg->n_deny, modpath);
}
