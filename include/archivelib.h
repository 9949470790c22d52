/*
 * archivelib: libarchive, loaded with dlopen() the first time `goproxyd
 * export` or `import` needs it, instead of being linked.
 *
 * Why: linking libarchive maps its dependency chain (libxml2, ICU,
 * libstdc++, liblz4, libacl, ...) into every goproxyd process.  On
 * Debian 12 that is 2.4 MiB more RSS for a daemon that never reads or
 * writes a bundle (measured: an idle daemon 11.7 MiB, 14.1 MiB with
 * libarchive preloaded).  The package depends on libarchive13 by name
 * (debian/control), since dh_shlibdeps cannot see a dlopen().
 *
 * The table's members are libarchive's own functions, with their own
 * names and types (taken from <archive.h>), so a call reads
 * `ar->archive_read_new()`.
 *
 * Contract: archivelib_load() returns the table, loaded once and never
 * unloaded, or NULL with the reason (dlerror) in err.  Main thread of
 * export and import only.
 */
#ifndef GOPROXYD_ARCHIVELIB_H
#define GOPROXYD_ARCHIVELIB_H

#include <archive.h>
#include <archive_entry.h>
#include <stddef.h>

/* The soname that Debian 12's libarchive13 ships (libarchive-dev's
 * libarchive.so symlink is only there at build time). */
#define ARCHIVELIB_SONAME "libarchive.so.13"

/* Every libarchive function goproxyd calls. */
#define ARCHIVELIB_FUNCS(X) \
	X(archive_error_string) \
	X(archive_entry_new) \
	X(archive_entry_free) \
	X(archive_entry_filetype) \
	X(archive_entry_pathname) \
	X(archive_entry_set_filetype) \
	X(archive_entry_set_mtime) \
	X(archive_entry_set_pathname) \
	X(archive_entry_set_perm) \
	X(archive_entry_set_size) \
	X(archive_read_new) \
	X(archive_read_support_filter_gzip) \
	X(archive_read_support_filter_zstd) \
	X(archive_read_support_format_tar) \
	X(archive_read_open_filename) \
	X(archive_read_next_header) \
	X(archive_read_data) \
	X(archive_read_free) \
	X(archive_write_new) \
	X(archive_write_set_format_pax_restricted) \
	X(archive_write_add_filter_gzip) \
	X(archive_write_add_filter_zstd) \
	X(archive_write_open_filename) \
	X(archive_write_header) \
	X(archive_write_data) \
	X(archive_write_close) \
	X(archive_write_free)

struct archivelib {
#define ARCHIVELIB_MEMBER(f) __typeof__(f) *f;
	ARCHIVELIB_FUNCS(ARCHIVELIB_MEMBER)
#undef ARCHIVELIB_MEMBER
};

const struct archivelib *archivelib_load(char *err, size_t errlen);

#endif
