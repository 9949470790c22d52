/*
 * units: quantities on the command line, in the forms Go developers know:
 * durations as Go's time.ParseDuration reads them (-cacheExpire,
 * -connectTimeout, ...), and byte sizes with binary suffixes
 * (-cacheMaxSize).
 *
 * Contract: pure functions, no allocation, safe from any thread.  Each
 * returns NULL on success or a static one-line reason, and writes its
 * result only on success.
 */
#ifndef GOPROXYD_UNITS_H
#define GOPROXYD_UNITS_H

#include <stdint.h>

/* Go's time.ParseDuration ("300ms", "1.5h", "1h2m3s"); negative refused. */
const char *config_parse_duration(const char *s, int64_t *ms);

/* A byte count with an optional binary suffix K, M, G or T, which may be
 * followed by B or iB: "0", "512M", "50G", "1KiB". */
const char *config_parse_size(const char *v, uint64_t *bytes);

#endif
