/* embed.h - files compiled into the binary (scripts/embed.sh generates the
 * table): the SQL migrations, openapi.yaml and, later, the dashboard. Each
 * file's bytes are followed by a NUL that size does not count, so text files
 * can be used as C strings. Names are repository paths ("migrations/0001_init.sql").
 */
#ifndef DIMD_SERVER_EMBED_H
#define DIMD_SERVER_EMBED_H

#include <stddef.h>

struct embedded_file {
    const char *name;
    const unsigned char *data;
    size_t size;
};

/* In name order (the build sorts them). */
extern const struct embedded_file embedded_files[];
extern const size_t embedded_n_files;

/* The file called name, or NULL. */
const struct embedded_file *embedded_find(const char *name);

#endif
