/*
 * auth: HTTP basic authentication of clients against an -authFile of
 * "user:hash" lines, where hash is a crypt(3) hash (yescrypt "$y$",
 * bcrypt "$2b$"/"$2y$", SHA-512-crypt "$6$").  Plain-text passwords and
 * weaker hash methods are refused when the file is loaded.
 *
 * Contract: auth_check() is thread-safe.  A deliberately slow hash would
 * cost tens of milliseconds on every request, so a correct user/password
 * pair is remembered (as a SHA-256 digest, never in clear) for a few
 * minutes.  Nothing here logs a password.
 */
#ifndef GOPROXYD_AUTH_H
#define GOPROXYD_AUTH_H

#include <stdbool.h>

/* Loads path; on error returns -1 with a one-line reason in why. */
int auth_load(const char *path, char *why, size_t n);
bool auth_enabled(void);
bool auth_check(const char *user, const char *password);
void auth_free(void);

#endif
