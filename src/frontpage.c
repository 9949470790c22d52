/*
 * frontpage: see include/frontpage.h.  Pure: the serving threads call it
 * with a snapshot, the unit tests without any server.  All text from
 * outside goes through put_text() (HTML) or put_json_str() (JSON).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog.h"
#include "frontpage.h"
#include "modpath.h"
#include "text.h"

/* --- the output buffer ------------------------------------------------------ */

static void grow(struct front_out *o, size_t more)
{
	size_t cap = o->cap ? o->cap : 8192;
	char *nb;

	if (o->failed || o->len + more < o->cap)
		return;
	while (cap <= o->len + more)
		cap *= 2;
	if ((nb = realloc(o->buf, cap)) == NULL) {
		o->failed = true;
		return;
	}
	o->buf = nb;
	o->cap = cap;
}

static void put_raw(struct front_out *o, const char *s, size_t n)
{
	grow(o, n + 1);
	if (o->failed)
		return;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

/* Markup of goproxyd's own, never text from outside. */
static void put(struct front_out *o, const char *s)
{
	put_raw(o, s, strlen(s));
}

static void putf(struct front_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct front_out *o, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > 0)
		put_raw(o, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* The one place text from outside enters the page: every character that
 * means something in HTML, in text or in a quoted attribute, is escaped. */
static void put_text(struct front_out *o, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': put(o, "&amp;"); break;
		case '<': put(o, "&lt;"); break;
		case '>': put(o, "&gt;"); break;
		case '"': put(o, "&quot;"); break;
		case '\'': put(o, "&#39;"); break;
		default: put_raw(o, s, 1);
		}
	}
}

static char *finish(struct front_out *o, size_t *len)
{
	if (o->failed || o->buf == NULL) {
		free(o->buf);
		return NULL;
	}
	*len = o->len;
	return o->buf;
}

/* --- small formats ------------------------------------------------------------ */

static void put_bytes(struct front_out *o, uint64_t b)
{
	static const char *const unit[] = { "bytes", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)b;
	size_t u = 0;

	while (v >= 1024 && u + 1 < sizeof unit / sizeof unit[0]) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		putf(o, "%llu bytes", (unsigned long long)b);
	else
		putf(o, "%.1f %s", v, unit[u]);
}

static void put_age(struct front_out *o, int64_t now, int64_t then)
{
	int64_t d = now > then ? now - then : 0;

	if (d < 120)
		putf(o, "%lld s ago", (long long)d);
	else if (d < 7200)
		putf(o, "%lld min ago", (long long)(d / 60));
	else if (d < 172800)
		putf(o, "%lld h ago", (long long)(d / 3600));
	else
		putf(o, "%lld days ago", (long long)(d / 86400));
}

/* The mirror's base URL as the client reached it. */
static void put_base(struct front_out *o, const struct front_snapshot *s)
{
	put(o, s->tls ? "https://" : "http://");
	put_text(o, s->host);
	put_text(o, s->prefix ? s->prefix : "");
}

/* A module path or version as the go command writes it. */
static void put_plain_path(struct front_out *o, const char *esc)
{
	char plain[MP_PATH_MAX];

	put_text(o, mp_unescape_path(esc, plain, sizeof plain) == NULL ? plain : esc);
}

static void put_plain_version(struct front_out *o, const char *esc)
{
	char plain[MP_VERSION_MAX];

	put_text(o, mp_unescape_version(esc, plain, sizeof plain) == NULL ? plain : esc);
}

/* --- the page's sections ------------------------------------------------------- */

static const char style[] =
    "body{font:15px/1.45 system-ui,sans-serif;max-width:60em;margin:1em auto;padding:0 1em;"
    "color:#1d2733;background:#fff}"
    "h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.15em;margin-top:1.6em;"
    "border-bottom:1px solid #d8dee6}"
    "pre{background:#eef3f8;border:1px solid #c9d6e3;padding:.5em .8em;overflow-x:auto}"
    "code,pre{font-family:ui-monospace,monospace}"
    "table{border-collapse:collapse}td,th{text-align:left;padding:.15em .9em .15em 0;"
    "vertical-align:top}"
    ".ok{color:#17702c}.bad{color:#b3261e;font-weight:bold}.dim{color:#5b6775}"
    "input[type=search]{width:24em;padding:.3em}button{padding:.3em .9em}"
    "ul.mods{padding-left:1.2em}";

static void section_use(struct front_out *o, const struct front_snapshot *s)
{
	size_t n = 0;

	put(o, "<h2>Use this mirror</h2>\n<p>Point the go command here:</p>\n<pre id=\"goproxy\">"
	       "go env -w GOPROXY=");
	put_base(o, s);
	put(o, "</pre>\n<p>To fetch a module from its origin repository when the mirror "
	       "answers 404 (unknown upstream, refused by -deny, upstream down with nothing cached), "
	       "add <code>,direct</code>:</p>\n<pre id=\"goproxy-direct\">go env -w GOPROXY=");
	put_base(o, s);
	put(o, ",direct</pre>\n<p>A comma falls through on 404 and 410 only; "
	       "<code>|direct</code> falls through on any error. In CI, export the variable "
	       "instead.</p>\n");
	if (s->sumdb != NULL) {
		put(o, "<p>The mirror also serves the checksum database, so a client that "
		       "reaches only the mirror still verifies every download:</p>\n"
		       "<pre id=\"gosumdb\">go env -w GOSUMDB=&quot;");
		put_text(o, s->sumdb);
		put(o, " ");
		put_base(o, s);
		put(o, "/sumdb/");
		put_text(o, s->sumdb_name);
		put(o, "&quot;</pre>\n");
	}
	for (size_t k = 0; k < 2; k++)
		n += s->n_nosum[k];
	if (n == 0)
		return;
	put(o, "<p>Lookups of these modules are not forwarded to a checksum database "
	       "(<code>-exclude</code>, <code>-noSumPatterns</code>); tell the go command "
	       "not to ask for them either:</p>\n<pre id=\"gonosumdb\">go env -w GONOSUMDB=");
	n = 0;
	for (size_t k = 0; k < 2; k++)
		for (size_t i = 0; i < s->n_nosum[k]; i++) {
			put(o, n++ ? "," : "");
			put_text(o, s->nosum[k][i]);
		}
	put(o, "</pre>\n");
}

/* href of one of a version's files. */
static void put_file_link(struct front_out *o, const struct front_snapshot *s,
                          const struct front_version *v, const char *ext)
{
	put(o, "<a href=\"");
	put_text(o, s->prefix ? s->prefix : "");
	put(o, "/");
	put_text(o, v->esc_path);
	put(o, "/@v/");
	put_text(o, v->esc_version);
	put(o, ".");
	put(o, ext);
	put(o, "\">");
	put(o, ext);
	put(o, "</a>");
}

static void put_version_links(struct front_out *o, const struct front_snapshot *s,
                              const struct front_version *v)
{
	static const struct {
		unsigned bit;
		const char *ext;
	} files[] = { { CATALOG_INFO, "info" }, { CATALOG_MOD, "mod" }, { CATALOG_ZIP, "zip" } };

	put(o, "<span class=\"ver\">");
	put_plain_version(o, v->esc_version);
	put(o, "</span> <span class=\"dim\">(");
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		put(o, i ? " " : "");
		if (v->files & files[i].bit)
			put_file_link(o, s, v, files[i].ext);
		else
			put(o, files[i].ext);
	}
	put(o, ")</span>");
}

static void section_search(struct front_out *o, const struct front_snapshot *s)
{
	put(o, "<h2>Search the cache</h2>\n<form method=\"get\" action=\"");
	put_text(o, s->prefix ? s->prefix : "");
	put(o, "/\"><input type=\"search\" name=\"q\" placeholder=\"module path, e.g. golang.org/x/\" "
	       "value=\"");
	put_text(o, s->has_query ? s->query : "");
	put(o, "\"> <button type=\"submit\">Search</button></form>\n");
	if (!s->has_query)
		return;
	put(o, "<div id=\"results\">");
	if (s->n_results == 0) {
		put(o, "<p>No cached module matches <code>");
		put_text(o, s->query);
		put(o, "</code>. The mirror fetches a module the first time the go command asks for "
		       "it.</p></div>\n");
		return;
	}
	put(o, "<ul class=\"mods\">\n");
	for (size_t i = 0; i < s->n_results; i++) {
		const struct front_version *v = &s->results[i];
		bool first = i == 0 || strcmp(v->esc_path, s->results[i - 1].esc_path) != 0;
		bool last = i + 1 == s->n_results || strcmp(v->esc_path, s->results[i + 1].esc_path) != 0;

		if (first) {
			put(o, "<li class=\"mod\"><code>");
			put_plain_path(o, v->esc_path);
			put(o, "</code>: ");
		} else
			put(o, ", ");
		put_version_links(o, s, v);
		if (last)
			put(o, "</li>\n");
	}
	put(o, "</ul>");
	if (s->more_results)
		putf(o, "<p class=\"dim\">Only the first %d versions are listed; narrow the search.</p>",
		     FRONT_MAX_RESULTS);
	put(o, "</div>\n");
}

static void section_recent(struct front_out *o, const struct front_snapshot *s)
{
	put(o, "<h2>Recently cached</h2>\n");
	if (s->n_recent == 0) {
		put(o, s->index_building ? "<p>The index of the cache is being built.</p>\n"
		                         : "<p>Nothing is cached yet.</p>\n");
		return;
	}
	put(o, "<table id=\"recent\">\n");
	for (size_t i = 0; i < s->n_recent; i++) {
		const struct front_version *v = &s->recent[i];

		put(o, "<tr><td><code>");
		put_plain_path(o, v->esc_path);
		put(o, "</code></td><td>");
		put_version_links(o, s, v);
		put(o, "</td><td class=\"dim\">");
		put_age(o, s->now_s, v->time_s);
		put(o, "</td></tr>\n");
	}
	put(o, "</table>\n");
}

static void health_row(struct front_out *o, const struct front_snapshot *s, const char *what,
                       const struct front_upstream *u)
{
	put(o, "<tr><td>");
	put(o, what);
	put(o, "</td><td><code>");
	put_text(o, u->name);
	put(o, "</code></td><td>");
	if (u->outcome == NULL)
		put(o, "<span class=\"dim\">not asked yet</span>");
	else {
		put(o, strcmp(u->outcome, "error") == 0 ? "<span class=\"bad\">" : "<span class=\"ok\">");
		put_text(o, u->outcome);
		put(o, "</span> <span class=\"dim\">");
		put_age(o, s->now_s, u->when_s);
		put(o, "</span>");
	}
	put(o, "</td></tr>\n");
}

static void section_health(struct front_out *o, const struct front_snapshot *s)
{
	put(o, "<h2>Health</h2>\n<table id=\"health\">\n");
	if (s->offline)
		put(o, "<tr><td>upstream</td><td>none</td><td>-proxy off: served from the cache "
		       "only</td></tr>\n");
	for (size_t i = 0; i < s->n_ups; i++)
		health_row(o, s, "upstream", &s->ups[i]);
	for (size_t i = 0; i < s->n_sumdbs; i++) {
		struct front_upstream u = s->sumdb_health;

		u.name = s->sumdb_names[i];
		health_row(o, s, "checksum database", &u);
	}
	put(o, "<tr><td>cache directory</td><td></td><td>");
	if (s->cache_problem == NULL)
		put(o, "<span class=\"ok\">takes writes</span>");
	else {
		put(o, "<span class=\"bad\">");
		put_text(o, s->cache_problem);
		put(o, "</span>");
	}
	put(o, "</td></tr>\n</table>\n");
}

static void section_cache(struct front_out *o, const struct front_snapshot *s)
{
	uint64_t looked = s->hits + s->misses + s->stale;

	put(o, "<h2>Cache</h2>\n<table id=\"cache\">\n<tr><td>files</td><td>");
	putf(o, "%llu (", (unsigned long long)s->files);
	put_bytes(o, s->bytes);
	put(o, ")</td></tr>\n<tr><td>size cap</td><td>");
	if (s->max_bytes)
		put_bytes(o, s->max_bytes);
	else
		put(o, "none (<code>-cacheMaxSize</code> not set)");
	putf(o, "</td></tr>\n<tr><td>module versions</td><td>%zu, of %zu modules%s%s</td></tr>\n",
	     s->versions, s->modules, s->index_building ? " (index still being built)" : "",
	     s->index_full ? " (index full: some versions are not listed)" : "");
	put(o, "<tr><td>hit ratio</td><td>");
	if (looked)
		putf(o, "%.1f%% (%llu hits, %llu misses, %llu stale)", 100.0 * (double)s->hits / (double)looked,
		     (unsigned long long)s->hits, (unsigned long long)s->misses,
		     (unsigned long long)s->stale);
	else
		put(o, "no file served yet");
	putf(o, "</td></tr>\n<tr><td>requests since start</td><td>%llu</td></tr>\n</table>\n",
	     (unsigned long long)s->requests);
}

char *frontpage_render(const struct front_snapshot *s, size_t *len)
{
	struct front_out o = { NULL, 0, 0, false };
	const char *p = s->prefix ? s->prefix : "";

	put(&o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	        "<title>Go module mirror</title><style>");
	put(&o, style);
	put(&o, "</style></head>\n<body>\n<h1>Go module mirror</h1>\n<p class=\"dim\">");
	put_base(&o, s);
	put(&o, " is a caching Go module proxy (goproxyd ");
	put_text(&o, s->version);
	put(&o, "). It serves the <a href=\"https://go.dev/ref/mod#goproxy-protocol\">GOPROXY "
	        "protocol</a> and keeps every module file it serves.</p>\n");
	section_use(&o, s);
	section_search(&o, s);
	section_recent(&o, s);
	section_health(&o, s);
	section_cache(&o, s);
	put(&o, "<p class=\"dim\">Machine-readable: <a href=\"");
	put_text(&o, p);
	put(&o, "/catalog\">catalog</a> (JSON, as Athens), <a href=\"");
	put_text(&o, p);
	put(&o, "/metrics\">metrics</a>, <a href=\"");
	put_text(&o, p);
	put(&o, "/readyz\">readyz</a>.</p>\n</body></html>\n");
	return finish(&o, len);
}

/* --- request parameters ---------------------------------------------------------- */

/* The q parameter of one media range, as text ("1" when absent). */
static bool range_refused(const char *params, size_t n)
{
	const char *q = NULL;

	for (size_t i = 0; i + 1 < n; i++)
		if ((params[i] == 'q' || params[i] == 'Q') && params[i + 1] == '=' &&
		    (i == 0 || params[i - 1] == ';' || params[i - 1] == ' ')) {
			q = params + i + 2;
			break;
		}
	if (q == NULL)
		return false;
	/* q=0, 0., 0.0, 0.00, 0.000: refused */
	if (*q != '0')
		return false;
	for (q++; q < params + n && (*q == '.' || *q == '0'); q++)
		;
	return q == params + n || *q == ';' || *q == ' ';
}

bool frontpage_wants_html(const char *accept)
{
	while (accept != NULL && *accept) {
		size_t n = strcspn(accept, ","), t;

		while (n > 0 && (*accept == ' ' || *accept == '\t')) {
			accept++;
			n--;
		}
		t = strcspn(accept, ";,");
		if (t > n)
			t = n;
		while (t > 0 && (accept[t - 1] == ' ' || accept[t - 1] == '\t'))
			t--;
		if (t == 9 && strncasecmp(accept, "text/html", 9) == 0)
			return !range_refused(accept + t, n - t);
		accept += n;
		if (*accept == ',')
			accept++;
	}
	return false;
}

bool frontpage_decode_query(const char *raw, char *out, size_t n)
{
	size_t j = 0;

	for (; *raw; raw++) {
		int c = (unsigned char)*raw;

		if (c == '+')
			c = ' ';
		else if (c == '%') {
			if ((c = text_percent_byte(raw)) < 0)
				return false;
			raw += 2;
		}
		if (c < 0x20 || c == 0x7f)
			return false;
		if (j + 1 < n)
			out[j++] = (char)c;
	}
	out[j] = '\0';
	return true;
}

size_t frontpage_page_size(const char *raw)
{
	size_t v = 0;

	if (raw == NULL || *raw == '\0')
		return CATALOG_PAGE_DEFAULT;
	for (; *raw; raw++) {
		if (*raw < '0' || *raw > '9')
			return 0;
		if (v <= CATALOG_PAGE_MAX)
			v = v * 10 + (size_t)(*raw - '0');
	}
	return v > CATALOG_PAGE_MAX ? CATALOG_PAGE_MAX : v;
}

bool frontpage_parse_token(const char *token, char *esc_path, char *esc_version)
{
	const char *bar = strchr(token, '|');
	char mod[MP_PATH_MAX];
	size_t n;

	if (bar == NULL || (n = (size_t)(bar - token)) == 0 || n >= sizeof mod || bar[1] == '\0')
		return false;
	memcpy(mod, token, n);
	mod[n] = '\0';
	return mp_escape(mod, esc_path, MP_PATH_MAX) == NULL &&
	       mp_escape(bar + 1, esc_version, MP_VERSION_MAX) == NULL;
}

/* --- /catalog ---------------------------------------------------------------------- */

static void put_json_str(struct front_out *o, const char *s)
{
	put(o, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			putf(o, "\\%c", c);
		else if (c < 0x20)
			putf(o, "\\u%04x", c);
		else
			put_raw(o, s, 1);
	}
	put(o, "\"");
}

void frontpage_catalog_begin(struct catalog_json *j)
{
	j->out = (struct front_out){ NULL, 0, 0, false };
	j->n = 0;
	j->last_path[0] = j->last_version[0] = '\0';
	put(&j->out, "{\"modules\":[");
}

void frontpage_catalog_add(struct catalog_json *j, const char *esc_path, const char *esc_version)
{
	char path[MP_PATH_MAX], ver[MP_VERSION_MAX];

	if (mp_unescape_path(esc_path, path, sizeof path) != NULL ||
	    mp_unescape_version(esc_version, ver, sizeof ver) != NULL)
		return;
	put(&j->out, j->n++ ? ",{\"module\":" : "{\"module\":");
	put_json_str(&j->out, path);
	put(&j->out, ",\"version\":");
	put_json_str(&j->out, ver);
	put(&j->out, "}");
	snprintf(j->last_path, sizeof j->last_path, "%s", path);
	snprintf(j->last_version, sizeof j->last_version, "%s", ver);
}

char *frontpage_catalog_end(struct catalog_json *j, bool more, size_t *len)
{
	char token[MP_PATH_MAX + MP_VERSION_MAX + 1];

	put(&j->out, "]");
	if (more && j->n > 0) {
		snprintf(token, sizeof token, "%s|%s", j->last_path, j->last_version);
		put(&j->out, ",\"next\":");
		put_json_str(&j->out, token);
	}
	put(&j->out, "}\n");
	return finish(&j->out, len);
}
