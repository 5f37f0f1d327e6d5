/* model_name.h - how users name model versions: the model's name in paths and
 * bodies, and a version as "v3", "3" or "latest".
 * Depends on libc only.
 */
#ifndef DIMD_API_MODEL_NAME_H
#define DIMD_API_MODEL_NAME_H

#include <stdbool.h>

#define MODEL_NAME_MAX 64 /* bytes, with the NUL */

/* Whether name is a valid model name: ^[a-z0-9][a-z0-9_-]{0,62}$. */
bool model_name_ok(const char *name);
/* A version as users write it: "v3", "3" or "latest" (*version = 0). False
 * for anything else (0, a sign, trailing characters, above INT32_MAX). */
bool model_version_parse(const char *s, int *version);

#endif
