/* projections.h - the stored 2-D projection of a model version's embeddings
 * (migrations/0004_projections.sql): computed once by the handlers, then
 * served from here. Its own file rather than models.c: a projection is a
 * derived cache of one version with its own table, written and read by its
 * own handler, not part of the version's lifecycle (it goes when the version
 * goes, by the foreign key).
 * Depends on store/store.h.
 */
#ifndef DIMD_STORE_PROJECTIONS_H
#define DIMD_STORE_PROJECTIONS_H

#include "base/error.h"
#include "store/store.h"

/* The stored projection JSON text of version `version` (an exact number) into
 * *json (malloc'd); STORE_NOT_FOUND when none is stored yet. */
int store_projection_get(struct dimd_store *s, const char *name, int version, char **json,
                         struct dim_err *err);
/* Stores it, unless one is stored already (the first one stays). STORE_NOT_FOUND
 * when the version no longer exists. */
int store_projection_put(struct dimd_store *s, const char *name, int version, const char *json,
                         struct dim_err *err);

#endif
