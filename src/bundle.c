/* bundle: see include/bundle.h.  Pure (the manifest); any thread. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"

int bundle_manifest_add(struct bundle_manifest *m, const char *path, uint64_t size,
                        const char *sha256)
{
	struct bundle_file *f;

	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct bundle_file *grown = realloc(m->files, cap * sizeof *grown);

		if (grown == NULL)
			return -1;
		m->files = grown;
		m->cap = cap;
	}
	f = &m->files[m->n];
	if ((f->path = strdup(path)) == NULL)
		return -1;
	f->size = size;
	snprintf(f->sha256, sizeof f->sha256, "%s", sha256);
	f->seen = false;
	m->n++;
	return 0;
}

char *bundle_manifest_json(const struct bundle_manifest *m)
{
	cJSON *root = cJSON_CreateObject(), *files = cJSON_CreateArray();
	char *out = NULL;

	if (root == NULL || files == NULL)
		goto done;
	cJSON_AddStringToObject(root, "format", BUNDLE_FORMAT);
	cJSON_AddItemToObject(root, "files", files);
	files = NULL;
	for (size_t i = 0; i < m->n; i++) {
		cJSON *f = cJSON_CreateObject();

		if (f == NULL)
			goto done;
		cJSON_AddStringToObject(f, "path", m->files[i].path);
		cJSON_AddNumberToObject(f, "size", (double)m->files[i].size);
		cJSON_AddStringToObject(f, "sha256", m->files[i].sha256);
		cJSON_AddItemToArray(cJSON_GetObjectItem(root, "files"), f);
	}
	out = cJSON_PrintUnformatted(root);
done:
	cJSON_Delete(files);
	cJSON_Delete(root);
	return out;
}

static bool hex64(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 64;
}

static const char *parse_file(struct bundle_manifest *m, const cJSON *f)
{
	const cJSON *path = cJSON_GetObjectItem(f, "path"), *size = cJSON_GetObjectItem(f, "size"),
	            *sha = cJSON_GetObjectItem(f, "sha256");

	if (!cJSON_IsString(path) || !cJSON_IsNumber(size) || !cJSON_IsString(sha))
		return "manifest entry lacks path, size or sha256";
	if (!bundle_path_ok(path->valuestring))
		return "manifest has an unsafe path";
	if (size->valuedouble < 0 || size->valuedouble > 9007199254740992.0 ||
	    size->valuedouble != (double)(uint64_t)size->valuedouble)
		return "manifest has a bad size";
	if (!hex64(sha->valuestring))
		return "manifest has a bad sha256";
	if (bundle_manifest_add(m, path->valuestring, (uint64_t)size->valuedouble, sha->valuestring) < 0)
		return "out of memory";
	return NULL;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct bundle_file *)a)->path, ((const struct bundle_file *)b)->path);
}

const char *bundle_manifest_parse(struct bundle_manifest *m, const char *buf, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(buf, len);
	const cJSON *fmt, *files, *f;
	const char *bad = NULL;

	if (root == NULL)
		return "manifest is not JSON";
	fmt = cJSON_GetObjectItem(root, "format");
	files = cJSON_GetObjectItem(root, "files");
	if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, BUNDLE_FORMAT) != 0)
		bad = "manifest is not a " BUNDLE_FORMAT " manifest";
	else if (!cJSON_IsArray(files))
		bad = "manifest has no files array";
	if (bad == NULL)
		cJSON_ArrayForEach(f, files)
			if ((bad = parse_file(m, f)) != NULL)
				break;
	cJSON_Delete(root);
	if (bad == NULL && m->n > 1) {
		qsort(m->files, m->n, sizeof *m->files, cmp_file);
		for (size_t i = 1; i < m->n; i++)
			if (strcmp(m->files[i - 1].path, m->files[i].path) == 0)
				return "manifest names a file twice";
	}
	return bad;
}

struct bundle_file *bundle_manifest_find(const struct bundle_manifest *m, const char *path)
{
	struct bundle_file key = { .path = (char *)path };

	return m->n ? bsearch(&key, m->files, m->n, sizeof *m->files, cmp_file) : NULL;
}

void bundle_manifest_free(struct bundle_manifest *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->files[i].path);
	free(m->files);
	*m = (struct bundle_manifest){ 0 };
}

bool bundle_path_ok(const char *path)
{
	const char *p = path;

	if (*p == '\0' || *p == '/' || strchr(path, '\\') != NULL)
		return false;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
		if (*p == '/' && *++p == '\0')
			return false;
	}
	return true;
}

void bundle_hex(const unsigned char digest[32], char out[BUNDLE_SHA256_HEX])
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", digest[i]);
}
