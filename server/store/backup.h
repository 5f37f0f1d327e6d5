/* backup.h - a consistent copy of the database while the daemon writes to it,
 * with SQLite's online backup API: `dimd backup` writes it to a file, the
 * daemon's POST /v1/backup into a temporary file it then streams.
 *
 * DESIGN
 * - The source is opened read-only on its own connection, never one of the
 *   store's pool, and the copy runs inside one read transaction held from the
 *   first page to the last. In WAL mode a reader never blocks the daemon's
 *   writers (they append to the WAL; only the checkpoint of the WAL into the
 *   database file waits for the reader to finish), and the held snapshot
 *   keeps sqlite3_backup_step from starting over each time another
 *   connection commits, which without it starves the backup of a database
 *   that a training job writes every second. The copy is the database as of
 *   the moment the snapshot began: every committed job, metric, checkpoint,
 *   event, token and model version, nothing half-written.
 * - The pages are copied pages_per_step at a time; between steps the
 *   cancel callback may stop the copy (the daemon's shutdown).
 * - A backup file (store_backup_file) is fsynced every 32 MiB as it grows and
 *   at the end, so the copy's writeback never piles up into one burst for the
 *   daemon's commit fsyncs to queue behind; the daemon's transient copy
 *   (store_backup_temp, deleted once sent) is never synced.
 * - The copy is then switched to the rollback journal (journal_mode DELETE),
 *   so it is one self-contained file with no -wal beside it; a daemon started
 *   on it switches it back to WAL. Checkpoints are rows of this database
 *   (store/checkpoints.h), so the one file is everything a job needs to resume.
 * Depends on sqlite3, store/store.h.
 */
#ifndef DIMD_STORE_BACKUP_H
#define DIMD_STORE_BACKUP_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "store/store.h"

/* Pages copied per sqlite3_backup_step when the caller passes 0 (4 MiB of
 * 4096-byte pages). */
#define STORE_BACKUP_PAGES_PER_STEP 1024

struct store_backup_info {
    int64_t pages;     /* pages copied */
    int64_t page_size; /* bytes per page */
    int64_t bytes;     /* size of the copy */
    int steps;         /* sqlite3_backup_step calls */
    double seconds;    /* wall time of the copy (snapshot to file closed) */
};

/* Returns true to stop a backup between two steps. */
typedef bool (*store_backup_cancel_fn)(void *ctx);

/* Copies the database at db_path (opened read-only: never written, and it may
 * be in use by a running daemon) to out_path: written as OUT_PATH.tmp, fsynced,
 * renamed over out_path, directory fsynced, so out_path is always a complete
 * backup or untouched. pages_per_step 0 means STORE_BACKUP_PAGES_PER_STEP;
 * cancel (may be NULL) is asked between steps. *info (may be NULL) gets the
 * figures. STORE_ERROR naming the file and the cause (not a dimd database, I/O,
 * cancelled), or STORE_FULL when the copy ran out of space (or met an I/O
 * error); nothing is left at out_path or OUT_PATH.tmp then. */
int store_backup_file(const char *db_path, const char *out_path, int pages_per_step,
                      store_backup_cancel_fn cancel, void *ctx, struct store_backup_info *info,
                      struct dim_err *err);

/* The daemon's backup of its own open store: copies it into a temporary file
 * beside the database (DB.backup-XXXXXX, removed at once after the copy and by
 * store_open should the process die during one) and returns the copy as a
 * file descriptor open for reading at offset 0 in *fd (the caller closes it;
 * the space is freed when it does). One at a time per store: STORE_CONFLICT
 * while another runs. Other errors as store_backup_file. */
int store_backup_temp(struct dimd_store *s, int pages_per_step, store_backup_cancel_fn cancel,
                      void *ctx, int *fd, struct store_backup_info *info, struct dim_err *err);

/* The size in bytes of a copy of s's database now (its pages): what a backup
 * needs free, on the file system of its output. */
int store_backup_size(struct dimd_store *s, int64_t *bytes, struct dim_err *err);

/* Removes the temporary files store_backup_temp left beside db_path when its
 * process died during a backup. Returns the number removed. */
int store_backup_sweep(const char *db_path);

#endif
