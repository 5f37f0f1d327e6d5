/* backup.c - online backup of the database (store/backup.h): a held read
 * snapshot on a read-only connection, sqlite3_backup_step in slices, the copy
 * switched to a self-contained rollback-journal file and made durable.
 * Depends on sqlite3, store/db.h, util/clock.h.
 */
#include "store/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/db.h"
#include "util/clock.h"

#define TEMP_TAG ".backup-"
/* A durable copy is fsynced each time this much more of it is written. */
#define SYNC_BYTES (32 << 20)

/* Records DIM_EIO with a printf-style message; returns STORE_ERROR. */
__attribute__((format(printf, 2, 3))) static int io_fail(struct dim_err *err, const char *fmt, ...)
{
    char msg[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dim_fail(err, DIM_EIO, "%s", msg);
    return STORE_ERROR;
}

/* Opens db_path read-only and checks that it is a dimd database. */
static int open_source(const char *db_path, sqlite3 **out, struct dim_err *err)
{
    sqlite3 *db = NULL;
    *out = NULL;
    int rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        dim_fail(err, DIM_EIO, "open %s: %s", db_path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return STORE_ERROR;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);
    int64_t tables = 0;
    char op[1100];
    snprintf(op, sizeof op, "read %s", db_path);
    if (db_query_int(db, err, op, &tables, 0,
                     "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND "
                     "name IN ('jobs', 'checkpoints')",
                     "") != STORE_OK) {
        sqlite3_close(db);
        return STORE_ERROR;
    }
    if (tables != 2) {
        dim_fail(err, DIM_EFORMAT, "%s is not a dimd database (no jobs and checkpoints tables)",
                 db_path);
        sqlite3_close(db);
        return STORE_ERROR;
    }
    *out = db;
    return STORE_OK;
}

/* fsync of a file or directory by path. */
static int sync_path(const char *path, bool dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Copies src (read-only, not in a transaction) into the file dst_path (empty
 * or missing): the whole copy under one read snapshot, then journal_mode
 * DELETE. durable: the copy is fsynced as it grows, every SYNC_BYTES, and at
 * the end, so its writeback never piles up into one burst that the daemon's
 * own fsyncs (each commit's) would queue behind; a transient copy (the
 * daemon's, deleted once sent) is not synced at all. */
static int copy_db(sqlite3 *src, const char *dst_path, int pages_per_step, bool durable,
                   store_backup_cancel_fn cancel, void *ctx, struct store_backup_info *info,
                   struct dim_err *err)
{
    struct store_backup_info inf = {0};
    double t0 = clock_mono_s();
    sqlite3 *dst = NULL;
    sqlite3_backup *b = NULL;
    int sfd = -1; /* dst_path, for the fsyncs along the way */
    int64_t synced = 0;
    char op[1100];
    snprintf(op, sizeof op, "backup to %s", dst_path);
    if (pages_per_step <= 0)
        pages_per_step = STORE_BACKUP_PAGES_PER_STEP;
    /* The snapshot: every step reads the same committed state. BEGIN alone
     * takes no snapshot; the first read of the database does. */
    int64_t tables = 0;
    int rc = db_tx_read(src, err, "backup: begin the read snapshot");
    if (rc == STORE_OK)
        rc = db_query_int(src, err, "backup: begin the read snapshot", &tables, 0,
                          "SELECT COUNT(*) FROM sqlite_schema", "");
    if (rc == STORE_OK)
        rc = db_query_int(src, err, "backup: read the page size", &inf.page_size, 0,
                          "PRAGMA page_size", "");
    if (rc != STORE_OK)
        goto out;
    int orc = sqlite3_open_v2(dst_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (orc != SQLITE_OK) {
        rc = io_fail(err, "%s: %s", op, dst ? sqlite3_errmsg(dst) : sqlite3_errstr(orc));
        goto out;
    }
    sqlite3_extended_result_codes(dst, 1);
    /* The copy is private until it is complete: no journal, no syncs (one
     * fsync at the end makes it durable). */
    if ((rc = db_exec(dst, err, op, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF")) !=
        STORE_OK)
        goto out;
    if (durable && (sfd = open(dst_path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = io_fail(err, "%s: %s", op, strerror(errno));
        goto out;
    }
    b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        rc = db_fail(err, dst, op);
        goto out;
    }
    for (int busy = 0;;) {
        int s = sqlite3_backup_step(b, pages_per_step);
        inf.steps++;
        if (s == SQLITE_DONE)
            break;
        /* The snapshot is held and the copy is private, so a lock is only
         * ever brief (WAL recovery); wait for it up to the busy_timeout. */
        if ((s == SQLITE_BUSY || s == SQLITE_LOCKED) && ++busy * 5 < DB_BUSY_TIMEOUT_MS) {
            sqlite3_sleep(5);
            continue;
        }
        if (s != SQLITE_OK) {
            dim_fail(err, DIM_EIO, "%s: %s (page %d of %d)", op, sqlite3_errstr(s),
                     sqlite3_backup_pagecount(b) - sqlite3_backup_remaining(b),
                     sqlite3_backup_pagecount(b));
            rc = (s & 0xff) == SQLITE_FULL || (s & 0xff) == SQLITE_IOERR ? STORE_FULL : STORE_ERROR;
            goto out;
        }
        int64_t copied =
            (int64_t)(sqlite3_backup_pagecount(b) - sqlite3_backup_remaining(b)) * inf.page_size;
        if (sfd >= 0 && copied - synced >= SYNC_BYTES) {
            if (fdatasync(sfd) != 0) {
                rc = io_fail(err, "%s: fsync: %s", op, strerror(errno));
                goto out;
            }
            synced = copied;
        }
        if (cancel && cancel(ctx)) {
            dim_fail(err, DIM_ECANCELLED, "%s: cancelled after %d of %d pages", op,
                     sqlite3_backup_pagecount(b) - sqlite3_backup_remaining(b),
                     sqlite3_backup_pagecount(b));
            rc = STORE_ERROR;
            goto out;
        }
    }
    inf.pages = sqlite3_backup_pagecount(b);
    int frc = sqlite3_backup_finish(b);
    b = NULL;
    if (frc != SQLITE_OK) {
        rc = db_fail(err, dst, op);
        goto out;
    }
    db_tx_end(src, STORE_OK, NULL, NULL);
    /* The copied header says WAL; make the copy one self-contained file. */
    if ((rc = db_exec(dst, err, op, "PRAGMA journal_mode = DELETE")) != STORE_OK)
        goto out;
    if (sqlite3_close(dst) != SQLITE_OK) {
        rc = db_fail(err, dst, op);
        goto out;
    }
    dst = NULL;
    if (durable && sync_path(dst_path, false) != 0) {
        rc = io_fail(err, "%s: fsync: %s", op, strerror(errno));
        goto out;
    }
    struct stat st;
    if (stat(dst_path, &st) == 0)
        inf.bytes = (int64_t)st.st_size;
    inf.seconds = clock_mono_s() - t0;
    if (info)
        *info = inf;
out:
    if (sfd >= 0)
        close(sfd);
    if (b)
        sqlite3_backup_finish(b);
    if (dst)
        sqlite3_close(dst);
    if (!sqlite3_get_autocommit(src))
        sqlite3_exec(src, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int store_backup_file(const char *db_path, const char *out_path, int pages_per_step,
                      store_backup_cancel_fn cancel, void *ctx, struct store_backup_info *info,
                      struct dim_err *err)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", out_path) >= sizeof tmp)
        return db_inval(err, "backup: output path %.64s... is too long", out_path);
    sqlite3 *src;
    if (open_source(db_path, &src, err) != STORE_OK)
        return STORE_ERROR;
    /* A leftover OUT.tmp from an earlier failed run is replaced. The copy holds
     * token hashes and every checkpoint: the owner's only, like the state. */
    int fd = -1;
    if ((unlink(tmp) != 0 && errno != ENOENT) ||
        (fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
        sqlite3_close(src);
        return io_fail(err, "backup: cannot create %s: %s", tmp, strerror(errno));
    }
    close(fd);
    int rc = copy_db(src, tmp, pages_per_step, true, cancel, ctx, info, err);
    sqlite3_close(src);
    if (rc == STORE_OK && rename(tmp, out_path) != 0)
        rc = io_fail(err, "backup: rename %s to %s: %s", tmp, out_path, strerror(errno));
    if (rc != STORE_OK) {
        unlink(tmp);
        return rc;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out_path);
    if (sync_path(dirname(dir), true) != 0)
        return io_fail(err, "backup: fsync the directory of %s: %s", out_path, strerror(errno));
    return STORE_OK;
}

int store_backup_temp(struct dimd_store *s, int pages_per_step, store_backup_cancel_fn cancel,
                      void *ctx, int *fd, struct store_backup_info *info, struct dim_err *err)
{
    *fd = -1;
    bool idle = false;
    if (!atomic_compare_exchange_strong(&s->backup_running, &idle, true)) {
        dim_fail(err, DIM_ELIMIT, "a backup of %s is already running", s->path);
        return STORE_CONFLICT;
    }
    char tmp[4096];
    int rc = STORE_OK;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s" TEMP_TAG "XXXXXX", s->path) >= sizeof tmp) {
        rc = db_inval(err, "backup: database path is too long");
        goto out;
    }
    int tfd = mkstemp(tmp);
    if (tfd < 0) {
        rc =
            io_fail(err, "backup: create a temporary file beside %s: %s", s->path, strerror(errno));
        goto out;
    }
    close(tfd);
    sqlite3 *src;
    rc = open_source(s->path, &src, err);
    if (rc == STORE_OK) {
        rc = copy_db(src, tmp, pages_per_step, false, cancel, ctx, info, err);
        sqlite3_close(src);
    }
    if (rc == STORE_OK) {
        *fd = open(tmp, O_RDONLY | O_CLOEXEC);
        if (*fd < 0)
            rc = io_fail(err, "backup: reopen %s: %s", tmp, strerror(errno));
    }
    unlink(tmp); /* the open descriptor keeps the copy until the caller closes it */
out:
    atomic_store(&s->backup_running, false);
    return rc;
}

int store_backup_size(struct dimd_store *s, int64_t *bytes, struct dim_err *err)
{
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t pages = 0, size = 0;
    int rc = db_query_int(db, err, "read the page count", &pages, 0, "PRAGMA page_count", "");
    if (rc == STORE_OK)
        rc = db_query_int(db, err, "read the page size", &size, 0, "PRAGMA page_size", "");
    db_pool_put(s, db);
    *bytes = pages * size;
    return rc;
}

int store_backup_sweep(const char *db_path)
{
    char dir[4096], base[4096];
    snprintf(dir, sizeof dir, "%s", db_path);
    snprintf(base, sizeof base, "%s", db_path);
    const char *d = dirname(dir), *b = basename(base);
    char prefix[4200];
    snprintf(prefix, sizeof prefix, "%s" TEMP_TAG, b);
    size_t pl = strlen(prefix);
    DIR *dh = opendir(d);
    if (!dh)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(dh))) {
        /* DB.backup-XXXXXX: the prefix and mkstemp's six characters, nothing else */
        if (strncmp(e->d_name, prefix, pl) != 0 || strlen(e->d_name) != pl + 6)
            continue;
        char p[8400];
        snprintf(p, sizeof p, "%s/%s", d, e->d_name);
        if (unlink(p) == 0)
            removed++;
    }
    closedir(dh);
    return removed;
}
