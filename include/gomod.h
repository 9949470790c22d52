/*
 * gomod: a small, strict go.mod parser (golang.org/x/mod/modfile syntax,
 * read the way the go command reads a dependency's go.mod: ParseLax).
 *
 * Contract: gomod_parse() checks buf[0..len) and returns NULL if it is a
 * well-formed go.mod with a module line, or a static one-line reason.
 * It accepts line and block forms of every directive, "//" comments,
 * quoted ("..." and `...`) arguments; it checks the arguments of module,
 * go, require and retract (the directives ParseLax reads) and only the
 * syntax of the others (exclude, replace, toolchain, godebug, tool,
 * unknown ones).  It refuses NUL bytes, invalid UTF-8, nested or
 * unterminated blocks, unterminated strings and block (slash-star) comments.
 * gomod_parse_visit() also hands exclude and replace lines to the visitor
 * that asks for them, and then checks their arguments as strictly as the
 * go command's modfile.Parse does for a main module; without such a
 * visitor they are skipped, as ParseLax skips them.  Nothing allocates;
 * the work is linear in len.  Pure: any thread.
 */
#ifndef GOPROXYD_GOMOD_H
#define GOPROXYD_GOMOD_H

#include <stdbool.h>
#include <stddef.h>

#define GOMOD_PATH_MAX     512   /* a module path, unquoted, with NUL */
#define GOMOD_VERSION_MAX  256   /* a version, unquoted, with NUL */

struct gomod_require {
	char path[GOMOD_PATH_MAX];
	char version[GOMOD_VERSION_MAX];
	bool indirect;               /* "// indirect" comment on the line */
};

/* Called once per require, in file order; a non-NULL return stops the
 * parse and becomes its result. */
typedef const char *(*gomod_require_fn)(void *arg, const struct gomod_require *req);

/* replace OLD [OLD_VERSION] => NEW [NEW_VERSION] */
struct gomod_replace {
	char old_path[GOMOD_PATH_MAX];
	char old_version[GOMOD_VERSION_MAX];  /* "" = every version of old_path */
	char new_path[GOMOD_PATH_MAX];        /* a module path, or a directory */
	char new_version[GOMOD_VERSION_MAX];  /* "" when new_path is a directory */
	bool new_is_dir;                      /* ./x, ../x, /x, or a Windows path */
};

/* Callbacks for gomod_parse_visit(); any may be NULL.  An exclude comes as
 * a gomod_require (indirect is always false).  As with on_require, a
 * non-NULL return stops the parse and becomes its result. */
struct gomod_visitor {
	gomod_require_fn on_require;
	gomod_require_fn on_exclude;
	const char *(*on_replace)(void *arg, const struct gomod_replace *rep);
	void *arg;
};

struct gomod {
	char module[GOMOD_PATH_MAX]; /* the module line's path, unquoted */
	char go[GOMOD_VERSION_MAX];  /* the go line's version, or "" */
};

/* Parses buf[0..len) into out; on_require may be NULL. */
const char *gomod_parse(const char *buf, size_t len, struct gomod *out,
                        gomod_require_fn on_require, void *arg);
/* The same with a visitor (v may be NULL). */
const char *gomod_parse_visit(const char *buf, size_t len, struct gomod *out,
                              const struct gomod_visitor *v);

/* Does a go.mod with this go line prune its module graph (go 1.17 or
 * later)?  The go command then reads the go.mod files of such a module's
 * requirements only when the main module needs them; below 1.17 (or with
 * no go line) it reads them all, transitively. */
bool gomod_pruned(const struct gomod *m);

#endif
