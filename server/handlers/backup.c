/* backup.c - POST /v1/backup: a consistent copy of the whole database, taken
 * while jobs run (store/backup.h) and sent back as the response body, a
 * SQLite file to restore as STATE_DIR/dimd.db. Write scope: the copy holds
 * every job, checkpoint and token hash. */
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "handlers/handlers.h"
#include "store/backup.h"

/* Stops the copy when the daemon is shutting down. */
static bool backup_cancelled(void *ctx)
{
    return http_stopping(ctx);
}

void handle_backup(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    /* the copy is a file as large as the database beside it: it must fit above
     * the storage floor, or it would take the room the running jobs write in */
    struct dim_err err;
    int64_t need = 0;
    if (store_backup_size(a->store, &need, &err) != STORE_OK) {
        handler_internal(rq, "measuring the database", &err);
        return;
    }
    if (!handler_admit(a, rq, need, "the backup's copy of the database does not fit"))
        return;
    struct store_backup_info info;
    int fd = -1;
    int rc = store_backup_temp(a->store, 0, backup_cancelled, a->http, &fd, &info, &err);
    if (rc == STORE_CONFLICT) {
        http_add_header(rq, "Retry-After", "5");
        http_reply_problem(rq, PROBLEM_BACKUP_IN_PROGRESS,
                           "another backup is being taken; retry when it is done");
        return;
    }
    if (rc != STORE_OK && err.code == DIM_ECANCELLED) {
        http_reply_problem(rq, PROBLEM_SHUTTING_DOWN,
                           "the daemon is stopping; the backup was abandoned (%s)", err.msg);
        return;
    }
    if (rc != STORE_OK) {
        handler_store_fail(a, rq, rc, "taking the backup", &err);
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        handler_internal(rq, "taking the backup", NULL);
        return;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char disp[96], pages[32], secs[32];
    strftime(disp, sizeof disp, "attachment; filename=\"dimd-backup-%Y%m%dT%H%M%SZ.db\"", &tm);
    snprintf(pages, sizeof pages, "%lld", (long long)info.pages);
    snprintf(secs, sizeof secs, "%.3f", info.seconds);
    http_add_header(rq, "Content-Disposition", disp);
    http_add_header(rq, "X-Backup-Pages", pages);
    http_add_header(rq, "X-Backup-Seconds", secs);
    http_reply_fd(rq, 200, "application/vnd.sqlite3", fd, (uint64_t)st.st_size);
}
