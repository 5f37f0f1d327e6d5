/* fixtures.h - shared test helpers: temporary directories, whole-file reads and
 * writes, and a JPEG encoder (libjpeg) for image and dataset tests (tests only).
 * All functions return 0 on success and -1 on failure (errno set where libc sets it).
 */
#ifndef DIM_TESTS_FIXTURES_H
#define DIM_TESTS_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

/* Creates a fresh directory /tmp/dimd-test-XXXXXX. Returns a malloc'd path
 * (free it) or NULL. */
char *fixtures_mkdtemp(void);

/* Removes path and, when it is a directory, everything below it. */
int fixtures_rmtree(const char *path);

/* Writes len bytes of data to path (created or truncated). */
int fixtures_write_file(const char *path, const void *data, size_t len);

/* Reads a whole file into *data (malloc'd, free it) and its size into *len. */
int fixtures_read_file(const char *path, uint8_t **data, size_t *len);

/* Formats "dir/name" into out (capacity cap). Returns out. */
char *fixtures_join(char *out, size_t cap, const char *dir, const char *name);

/* Encodes planar (c, h, w) 8-bit pixels (c = 1 or 3) as a baseline JPEG of the
 * given quality with libjpeg, into a malloc'd buffer (*out, *out_len; free it). */
int fixtures_encode_jpeg(const uint8_t *px, int c, int h, int w, int quality, uint8_t **out,
                         size_t *out_len);

/* fixtures_encode_jpeg, written to path. */
int fixtures_write_jpeg(const char *path, const uint8_t *px, int c, int h, int w, int quality);

#endif
