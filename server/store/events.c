/* events.c - the per-job event log (store/events.h) and the rows' writer the
 * other concerns call inside their transactions (events_add, store/db.h).
 *
 * DESIGN
 * - Events are rows written in the transaction of the change they announce;
 *   the caller passes the event's text (formatted by api/event_json.h), this
 *   file only stores and reads it.
 * - After such a commit the in-process event sequence is bumped under ev_mu and
 *   ev_cv broadcast (events_bump); store_event_wait sleeps on ev_cv
 *   (CLOCK_MONOTONIC).
 * Depends on sqlite3, store/db.h, util/clock.h.
 */
#include "store/events.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "util/clock.h"

void store_event_clear(struct store_event *e)
{
    if (!e)
        return;
    free(e->data);
    memset(e, 0, sizeof(*e));
}

static bool event_read(sqlite3_stmt *st, void *row)
{
    struct store_event *e = row;
    e->id = sqlite3_column_int64(st, 0);
    e->job_id = sqlite3_column_int64(st, 1);
    snprintf(e->type, sizeof(e->type), "%s", (const char *)sqlite3_column_text(st, 2));
    e->created_ms = sqlite3_column_int64(st, 4);
    return db_col_dup(st, 3, &e->data) && e->data;
}

static void event_clear(void *row)
{
    store_event_clear(row);
}

int store_events_after(struct dimd_store *s, int64_t job_id, int64_t after_id, int limit,
                       struct store_event **out, size_t *n, struct dim_err *err)
{
    const char *op = "read events";
    *out = NULL;
    *n = 0;
    if (limit < 1) {
        dim_fail(err, DIM_EINVAL, "%s: limit %d must be >= 1", op, limit);
        return STORE_ERROR;
    }
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, op,
                          "SELECT id, job_id, type, data, created_ms FROM events "
                          "WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?",
                          "iii", job_id, after_id, (int64_t)limit);
    if (rc == STORE_OK)
        rc = db_collect_rows(db, st, sizeof(**out), event_read, event_clear, (void **)out, n, err,
                             op);
    db_pool_put(s, db);
    return rc;
}

uint64_t store_event_seq(struct dimd_store *s)
{
    pthread_mutex_lock(&s->ev_mu);
    uint64_t v = s->ev_seq;
    pthread_mutex_unlock(&s->ev_mu);
    return v;
}

uint64_t store_event_wait(struct dimd_store *s, uint64_t seen, int timeout_ms)
{
    if (timeout_ms < 0)
        timeout_ms = 0;
    struct timespec until = clock_mono_ts(clock_mono_s() + timeout_ms * 1e-3);
    pthread_mutex_lock(&s->ev_mu);
    while (s->ev_seq <= seen)
        if (pthread_cond_timedwait(&s->ev_cv, &s->ev_mu, &until) == ETIMEDOUT)
            break;
    uint64_t v = s->ev_seq;
    pthread_mutex_unlock(&s->ev_mu);
    return v;
}

void events_bump(struct dimd_store *s)
{
    pthread_mutex_lock(&s->ev_mu);
    s->ev_seq++;
    pthread_cond_broadcast(&s->ev_cv);
    pthread_mutex_unlock(&s->ev_mu);
}

int events_add(sqlite3 *db, int64_t job_id, const char *type, char *text, int64_t now,
               struct dim_err *err)
{
    if (!text)
        return db_nomem(err, "build event");
    int rc = db_run(db, err, "insert event", NULL,
                    "INSERT INTO events (job_id, type, data, created_ms) VALUES (?, ?, ?, ?)",
                    "itti", job_id, type, text, now);
    free(text);
    return rc;
}
