/* check.h - the integrity check of a dimd database (`dimd check`): SQLite's
 * PRAGMA integrity_check and foreign_key_check, and the sha256 of every stored
 * checkpoint and model version against the digest recorded with it.
 *
 * DESIGN
 * - The database is opened read-only and read in one snapshot, so the check
 *   may run beside a live daemon (whose writers it does not block, WAL) and
 *   never changes what it checks.
 * - SQLite checks its own structure (b-trees, free list, indexes) but not the
 *   bytes inside a blob: a flipped bit in a checkpoint is invisible to it.
 *   The sha256 recorded when the checkpoint was stored catches that; the bytes
 *   are read through incremental blob I/O, 1 MiB at a time, so a large
 *   checkpoint is never held in memory whole.
 * - Each problem is reported as one line naming what is wrong and where (the
 *   job and step of a checkpoint, the model and version, SQLite's own text),
 *   and the check goes on, so one run lists every problem it can see.
 * Depends on sqlite3, store/store.h, util/sha256.h.
 */
#ifndef DIMD_STORE_CHECK_H
#define DIMD_STORE_CHECK_H

#include <stdint.h>

#include "base/error.h"
#include "store/store.h"

struct store_check_report {
    int64_t pages, page_size;              /* size of the database */
    int64_t jobs;                          /* rows of jobs */
    int64_t checkpoints, checkpoint_bytes; /* checkpoints verified, and their bytes */
    int64_t versions, version_bytes;       /* model versions verified, and their bytes */
    int64_t problems;                      /* lines passed to the problem callback */
    double seconds;                        /* wall time of the whole check */
};

/* Called once per problem found, with one line of text (valid during the call). */
typedef void (*store_check_problem_fn)(void *ctx, const char *problem);

/* Checks the database at db_path (read-only). STORE_OK when the check ran to
 * its end: r->problems says whether it found anything (each one also went to
 * problem, which may be NULL). STORE_ERROR when it could not run at all (no
 * such file, not a database, not a dimd database, a header too damaged to
 * read), with err naming the file and the cause. */
int store_check(const char *db_path, store_check_problem_fn problem, void *ctx,
                struct store_check_report *r, struct dim_err *err);

#endif
