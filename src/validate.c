/* validate: see include/validate.h.  Pure checks; run on the store threads. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "validate.h"

#define MAX_ZIP    524288000ULL   /* modfetch MaxZipFile: 500 MiB */
#define MAX_MOD    (16ULL << 20)  /* modfetch MaxGoMod */
#define MAX_INFO   (64ULL << 10)
#define MAX_LIST   (16ULL << 20)
#define MAX_SUMDB  (4ULL << 20)

uint64_t validate_limit(const struct request *r)
{
	switch (r->kind) {
	case REQ_SUMDB:
		return MAX_SUMDB;
	case REQ_ZIP:
		return MAX_ZIP;
	case REQ_MOD:
		return MAX_MOD;
	case REQ_LIST:
		return MAX_LIST;
	case REQ_INFO:
	case REQ_LATEST:
		break;
	}
	return MAX_INFO;
}

const char *validate_info(const char *buf, size_t len, const char *path,
                          const char *want, char *version)
{
	const char *reason = NULL;
	cJSON *root = cJSON_ParseWithLength(buf, len);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "Version");

	if (!cJSON_IsObject(root))
		reason = "upstream .info is not a JSON object";
	else if (!cJSON_IsString(v) || strlen(v->valuestring) >= MP_VERSION_MAX)
		reason = "upstream .info has no Version string";
	else if (!mp_is_canonical(v->valuestring))
		reason = "upstream .info names a non-canonical version";
	else if (mp_check_path_major(path, v->valuestring) != NULL)
		reason = "upstream .info names a version that does not fit the module path";
	else if (want != NULL && strcmp(want, v->valuestring) != 0)
		reason = "upstream .info names another version than the one requested";
	else
		strcpy(version, v->valuestring);
	cJSON_Delete(root);
	return reason;
}

const char *validate_list(const char *buf, size_t len)
{
	return memchr(buf, '\0', len) ? "upstream list contains NUL bytes" : NULL;
}

const char *validate_sumdb(const struct request *r, const char *buf, size_t len)
{
	static const char tree[] = "go.sum database tree\n";
	size_t digits = strspn(buf, "0123456789");

	switch (r->sumdb_kind) {
	case SUMDB_TILE:
		return len == (size_t)r->tile_width * 32 ? NULL : "upstream tile has the wrong size";
	case SUMDB_LOOKUP:
		return digits > 0 && digits < len && buf[digits] == '\n' ? NULL
		       : "upstream lookup does not start with a record id";
	case SUMDB_LATEST:
		return len > sizeof tree && memcmp(buf, tree, sizeof tree - 1) == 0 ? NULL
		       : "upstream latest is not a tree note";
	case SUMDB_DATA_TILE:
	case SUMDB_SUPPORTED:
		break;
	}
	return memchr(buf, '\0', len) ? "upstream answer contains NUL bytes" : NULL;
}

static const char *check_entries(zip_t *z, const char *prefix)
{
	size_t plen = strlen(prefix);
	zip_int64_t n = zip_get_num_entries(z, 0);
	uint64_t total = 0;

	for (zip_int64_t i = 0; i < n; i++) {
		zip_stat_t st;

		if (zip_stat_index(z, (zip_uint64_t)i, ZIP_FL_ENC_RAW, &st) < 0 ||
		    !(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE))
			return "upstream zip has an unreadable entry";
		if (strncmp(st.name, prefix, plen) != 0)
			return "upstream zip has an entry outside <module>@<version>/";
		total += st.size;
		if (total > MAX_ZIP)
			return "upstream zip expands beyond 500 MiB";
	}
	return NULL;
}

const char *validate_zip(int fd, const char *path, const char *version)
{
	char prefix[MP_PATH_MAX + MP_VERSION_MAX + 2];
	const char *reason;
	int dfd = dup(fd), err = 0;
	zip_t *z;

	if (dfd < 0)
		return "out of file descriptors while checking the zip";
	if (lseek(dfd, 0, SEEK_SET) < 0) {
		close(dfd);
		return "cannot read the fetched zip";
	}
	/* On success zip_fdopen owns dfd; on failure it is still ours. */
	z = zip_fdopen(dfd, ZIP_CHECKCONS, &err);
	if (z == NULL) {
		close(dfd);
		return "upstream zip is not a readable zip file";
	}
	snprintf(prefix, sizeof prefix, "%s@%s/", path, version);
	reason = check_entries(z, prefix);
	zip_discard(z);
	return reason;
}
