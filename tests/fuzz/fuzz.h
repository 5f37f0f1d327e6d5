/* fuzz.h - helpers shared by the libFuzzer targets of tests/fuzz/ (header-only).
 *
 * A target finds a bug when the sanitizers report one (ASan, UBSan: abort) or
 * when an invariant of the parser's contract fails: FUZZ_CHECK prints what and
 * aborts, which libFuzzer reports as a crash with the input saved.
 * Depends on libc and jansson.
 */
#ifndef DIMD_TESTS_FUZZ_H
#define DIMD_TESTS_FUZZ_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant failed at %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A parser's error array: non-empty when n > 0, each element
 * {"path": "$..." , "message": non-empty string}, n elements in all. */
static inline void fuzz_check_errors(const json_t *errors, int n)
{
    FUZZ_CHECK(json_is_array(errors), "errors is not an array");
    FUZZ_CHECK((int)json_array_size(errors) == n, "%d problems reported, %zu in the array", n,
               json_array_size(errors));
    size_t i;
    const json_t *e;
    json_array_foreach(errors, i, e) {
        const char *path = json_string_value(json_object_get(e, "path"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        FUZZ_CHECK(path && path[0] == '$', "error %zu has no JSON path", i);
        FUZZ_CHECK(msg && msg[0], "error %zu (%s) has no message", i, path);
    }
}

/* The first line of data[0..size) (up to '\n', at most cap - 1 bytes) into
 * line, NUL-terminated; returns the offset of the rest (after the '\n'). */
static inline size_t fuzz_split_line(const unsigned char *data, size_t size, char *line, size_t cap)
{
    size_t n = 0;
    while (n < size && data[n] != '\n')
        n++;
    size_t k = n < cap - 1 ? n : cap - 1;
    memcpy(line, data, k);
    line[k] = '\0';
    return n < size ? n + 1 : size;
}

/* ---- files for the readers that take a directory (data/dataset.h) ---- */

#include <stdint.h>
#include <unistd.h>

/* A temporary directory (under TMPDIR, else /tmp) made once per process and
 * emptied of the names given to fuzz_dir_clear at exit: dir (static). */
static char fuzz_dir_path[512];
static const char *const *fuzz_dir_names;

static inline void fuzz_dir_cleanup(void)
{
    for (const char *const *n = fuzz_dir_names; n && *n; n++) {
        char p[700];
        snprintf(p, sizeof p, "%s/%s", fuzz_dir_path, *n);
        unlink(p);
    }
    rmdir(fuzz_dir_path);
}

/* Makes the directory; names (NULL-terminated, static) are the files a target
 * may write there. Aborts when it cannot. */
static inline const char *fuzz_dir_make(const char *const *names)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/dimd-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(fuzz_dir_path) != NULL, "cannot make a directory in %s", fuzz_dir_path);
    fuzz_dir_names = names;
    atexit(fuzz_dir_cleanup);
    return fuzz_dir_path;
}

/* Writes data[0..n) as file name of the directory (n may be 0); aborts on failure. */
static inline void fuzz_dir_write(const char *name, const uint8_t *data, size_t n)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", fuzz_dir_path, name);
    FILE *f = fopen(p, "wb");
    FUZZ_CHECK(f && (n == 0 || fwrite(data, 1, n, f) == n) && fclose(f) == 0, "cannot write %s",
               p);
}

/* Removes file name of the directory, if present. */
static inline void fuzz_dir_remove(const char *name)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", fuzz_dir_path, name);
    unlink(p);
}

#endif
