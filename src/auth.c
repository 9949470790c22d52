/* auth: see include/auth.h.  Loaded on the main thread at start-up; checked
 * on the serving threads (read-only by then). */
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"

#define REMEMBER_SECONDS 300
#define REMEMBER_SLOTS 64

struct user {
	char *name;
	char *hash;
};

struct remembered {
	unsigned char digest[32];   /* SHA-256(user NUL password) */
	time_t until;
};

static struct user *users;
static size_t n_users;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct remembered remembered[REMEMBER_SLOTS];

static bool strong_hash(const char *h)
{
	static const char *const prefixes[] = { "$y$", "$2b$", "$2y$", "$2a$", "$6$" };

	for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
		if (strncmp(h, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

static int add_user(const char *line, char *why, size_t n, unsigned lineno)
{
	const char *colon = strchr(line, ':');
	struct user *grown;

	if (colon == NULL || colon == line)
		return snprintf(why, n, "line %u: want user:hash", lineno), -1;
	if (!strong_hash(colon + 1))
		return snprintf(why, n, "line %u: not a yescrypt, bcrypt or SHA-512-crypt hash "
		                        "(plain-text passwords are refused)", lineno), -1;
	if ((grown = realloc(users, (n_users + 1) * sizeof *users)) == NULL)
		return snprintf(why, n, "out of memory"), -1;
	users = grown;
	users[n_users].name = strndup(line, (size_t)(colon - line));
	users[n_users].hash = strdup(colon + 1);
	if (users[n_users].name == NULL || users[n_users].hash == NULL)
		return snprintf(why, n, "out of memory"), -1;
	n_users++;
	return 0;
}

int auth_load(const char *path, char *why, size_t n)
{
	char line[1024];
	unsigned lineno = 0;
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return snprintf(why, n, "cannot open: %m"), -1;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (add_user(line, why, n, lineno) < 0) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	if (n_users == 0)
		return snprintf(why, n, "no users"), -1;
	return 0;
}

bool auth_enabled(void)
{
	return n_users > 0;
}

static void digest(const char *user, const char *password, unsigned char out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	memset(out, 0, 32);
	if (c == NULL)
		return;
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, user, strlen(user) + 1);
	EVP_DigestUpdate(c, password, strlen(password));
	EVP_DigestFinal_ex(c, out, NULL);
	EVP_MD_CTX_free(c);
}

static bool recall(const unsigned char d[32])
{
	time_t now = time(NULL);
	bool hit = false;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < REMEMBER_SLOTS && !hit; i++)
		hit = remembered[i].until > now && CRYPTO_memcmp(remembered[i].digest, d, 32) == 0;
	pthread_mutex_unlock(&lock);
	return hit;
}

static void remember(const unsigned char d[32])
{
	static size_t next;

	pthread_mutex_lock(&lock);
	memcpy(remembered[next].digest, d, 32);
	remembered[next].until = time(NULL) + REMEMBER_SECONDS;
	next = (next + 1) % REMEMBER_SLOTS;
	pthread_mutex_unlock(&lock);
}

bool auth_check(const char *user, const char *password)
{
	struct crypt_data data;
	unsigned char d[32];
	const char *out;

	if (user == NULL || password == NULL)
		return false;
	digest(user, password, d);
	if (recall(d))
		return true;
	for (size_t i = 0; i < n_users; i++) {
		if (strcmp(users[i].name, user) != 0)
			continue;
		memset(&data, 0, sizeof data);
		out = crypt_r(password, users[i].hash, &data);
		if (out && strlen(out) == strlen(users[i].hash) &&
		    CRYPTO_memcmp(out, users[i].hash, strlen(out)) == 0) {
			remember(d);
			return true;
		}
		return false;
	}
	return false;
}

void auth_free(void)
{
	for (size_t i = 0; i < n_users; i++) {
		free(users[i].name);
		free(users[i].hash);
	}
	free(users);
	users = NULL;
	n_users = 0;
}
