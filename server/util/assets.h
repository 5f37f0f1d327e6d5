/* assets.h - files compiled into the binary (scripts/embed.sh generates the
 * table): the SQL migrations, openapi.yaml and the dashboard (web/ and uPlot).
 * Each file's bytes are followed by a NUL that size does not count, so text
 * files can be used as C strings. Names are repository paths
 * ("migrations/0001_jobs.sql").
 * Depends on libc only.
 */
#ifndef DIMD_UTIL_ASSETS_H
#define DIMD_UTIL_ASSETS_H

#include <stddef.h>

struct asset_file {
    const char *name;
    const unsigned char *data;
    size_t size;
};

/* In name order (the build sorts them). */
extern const struct asset_file assets_files[];
extern const size_t assets_n_files;

/* The file called name, or NULL. */
const struct asset_file *assets_find(const char *name);

#endif
