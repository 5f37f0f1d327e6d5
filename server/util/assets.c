/* assets.c - lookup in the table of files compiled into the binary (util/assets.h). */
#include "util/assets.h"

#include <string.h>

const struct asset_file *assets_find(const char *name)
{
    for (size_t i = 0; i < assets_n_files; i++)
        if (strcmp(assets_files[i].name, name) == 0)
            return &assets_files[i];
    return NULL;
}
