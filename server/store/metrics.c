/* metrics.c - a job's metric points (store/metrics.h): append and rewind
 * (worker-side, guarded by the attempt), per-key summaries and history pages
 * with min/max bucket downsampling.
 * The "metrics" and "rewind" events are formatted by api/event_json.h from the
 * same values the rows get, and written in the transaction of the change.
 * NaN values are stored as NULL (db_stmt_open binds NaN as NULL) and read back
 * as NaN (db_col_value).
 * Depends on sqlite3, store/db.h, store/jobs.h (the guard), api/event_json.h,
 * util/clock.h.
 */
#include "store/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/event_json.h"
#include "store/db.h"
#include "util/clock.h"

int store_metrics_append(struct dimd_store *s, int64_t job_id, int attempt,
                         const struct store_metric *m, size_t n, int64_t step,
                         double images_per_second, struct dim_err *err)
{
    const char *op = "append metrics";
    if (n > 0 && !m)
        return db_inval(err, "%s: %s is NULL", op, "the point array");
    for (size_t i = 0; i < n; i++) {
        if (!db_key_ok(m[i].key)) {
            dim_fail(err, DIM_EINVAL, "%s: metric key \"%s\" is not 1..63 of [a-z0-9_]", op,
                     m[i].key ? m[i].key : "(null)");
            return STORE_ERROR;
        }
    }
    char *ev = NULL; /* the "metrics" event, written with the points */
    if (n > 0) {
        struct event_json_point *pts = malloc(n * sizeof(*pts));
        for (size_t i = 0; pts && i < n; i++)
            pts[i] = (struct event_json_point){m[i].key, m[i].step, m[i].value, m[i].wall_ms};
        ev = pts ? event_json_metrics(pts, n) : NULL;
        free(pts);
        if (!ev)
            return db_nomem(err, op);
    }
    sqlite3 *db = db_pool_get(s, err);
    if (!db) {
        free(ev);
        return STORE_ERROR;
    }
    int64_t now = clock_wall_ms();
    int rc = db_tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    rc = jobs_guard(db, job_id, attempt, JOB_MASK(JOB_RUNNING) | JOB_MASK(JOB_PAUSED), err);
    if (rc != STORE_OK)
        goto end;
    if (n > 0) {
        sqlite3_stmt *st;
        rc = db_stmt_open(db, &st, err, op,
                          "INSERT INTO metrics (job_id, key, step, value, wall_ms) "
                          "VALUES (?, ?, ?, ?, ?)",
                          "");
        for (size_t i = 0; rc == STORE_OK && i < n; i++) {
            sqlite3_reset(st);
            sqlite3_bind_int64(st, 1, job_id);
            sqlite3_bind_text(st, 2, m[i].key, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, m[i].step);
            if (isnan(m[i].value))
                sqlite3_bind_null(st, 4);
            else
                sqlite3_bind_double(st, 4, m[i].value);
            sqlite3_bind_int64(st, 5, m[i].wall_ms);
            int r = sqlite3_step(st);
            if ((r & 0xff) == SQLITE_CONSTRAINT) {
                dim_fail(err, DIM_EINVAL, "job %lld already has metric %s at step %lld",
                         (long long)job_id, m[i].key, (long long)m[i].step);
                rc = STORE_CONFLICT;
            } else if (r != SQLITE_DONE) {
                rc = db_fail(err, db, op);
            }
        }
        sqlite3_finalize(st);
        if (rc != STORE_OK)
            goto end;
    }
    rc = db_run(db, err, op, NULL,
                "UPDATE jobs SET step = ?, images_per_second = ?, updated_ms = ? WHERE id = ?",
                "idii", step, isfinite(images_per_second) ? images_per_second : 0.0, now, job_id);
    if (rc == STORE_OK && n > 0) {
        rc = events_add(db, job_id, "metrics", ev, now, err);
        ev = NULL;
    }
end:
    rc = db_tx_end(db, rc, err, op);
    if (rc == STORE_OK && n > 0)
        events_bump(s);
out:
    free(ev);
    db_pool_put(s, db);
    return rc;
}

int store_metrics_rewind(struct dimd_store *s, int64_t job_id, int attempt, int64_t step,
                         struct dim_err *err)
{
    const char *op = "rewind metrics";
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t now = clock_wall_ms();
    int deleted = 0;
    int rc = db_tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    rc = jobs_guard(db, job_id, attempt, JOB_MASK(JOB_RUNNING), err);
    if (rc == STORE_OK)
        rc = db_run(db, err, op, &deleted, "DELETE FROM metrics WHERE job_id = ? AND step > ?",
                    "ii", job_id, step);
    if (rc == STORE_OK)
        rc = db_run(db, err, op, NULL, "UPDATE jobs SET step = ?, updated_ms = ? WHERE id = ?",
                    "iii", step, now, job_id);
    if (rc == STORE_OK && deleted > 0)
        rc = events_add(db, job_id, "rewind", event_json_rewind(step), now, err);
    rc = db_tx_end(db, rc, err, op);
    if (rc == STORE_OK && deleted > 0)
        events_bump(s);
out:
    db_pool_put(s, db);
    return rc;
}

static bool summary_read(sqlite3_stmt *st, void *row)
{
    struct store_metric_summary *e = row;
    snprintf(e->key, sizeof(e->key), "%s", (const char *)sqlite3_column_text(st, 0));
    e->count = sqlite3_column_int64(st, 1);
    e->first_step = sqlite3_column_int64(st, 2);
    e->last_step = sqlite3_column_int64(st, 3);
    e->last = db_col_value(st, 4);
    e->min = db_col_value(st, 5);
    e->max = db_col_value(st, 6);
    return true;
}

int store_metrics_summary(struct dimd_store *s, int64_t job_id, struct store_metric_summary **out,
                          size_t *n, struct dim_err *err)
{
    const char *op = "summarise metrics";
    *out = NULL;
    *n = 0;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = jobs_tx_read(db, job_id, err, op);
    if (rc != STORE_OK)
        goto out;
    sqlite3_stmt *st;
    rc = db_stmt_open(db, &st, err, op,
                      "SELECT key, COUNT(*), MIN(step), MAX(step), "
                      "(SELECT value FROM metrics l WHERE l.job_id = m.job_id AND l.key = m.key "
                      " ORDER BY step DESC LIMIT 1), MIN(value), MAX(value) "
                      "FROM metrics m WHERE job_id = ? GROUP BY key ORDER BY key",
                      "i", job_id);
    if (rc == STORE_OK)
        rc = db_collect_rows(db, st, sizeof(**out), summary_read, db_no_clear, (void **)out, n, err,
                             op);
    db_tx_end(db, STORE_ERROR, NULL, op); /* read-only: roll back */
out:
    db_pool_put(s, db);
    return rc;
}

/* Keeps the first and last point and each of B equal step buckets' min and max
 * (NaN values only when a bucket has nothing else) of p[0..k); returns the new count. */
static size_t downsample(struct store_point *p, size_t k, int64_t after_step, int64_t max_points,
                         struct dim_err *err, int *rc)
{
    int64_t buckets = max_points / 2 < 1 ? 1 : max_points / 2;
    if ((uint64_t)buckets > k)
        buckets = (int64_t)k;
    size_t nb = (size_t)buckets;
    size_t *mini = malloc(nb * sizeof(*mini)), *maxi = malloc(nb * sizeof(*maxi));
    bool *keep = calloc(k, sizeof(*keep));
    if (!mini || !maxi || !keep) {
        *rc = db_nomem(err, "downsample metrics");
        free(mini);
        free(maxi);
        free(keep);
        return k;
    }
    for (size_t b = 0; b < nb; b++)
        mini[b] = maxi[b] = SIZE_MAX;
    double width = (double)p[k - 1].step - (double)after_step; /* >= 1: steps > after_step */
    for (size_t i = 0; i < k; i++) {
        double x = ((double)p[i].step - (double)after_step - 1.0) / width * (double)nb;
        size_t b = x < 0 ? 0 : (size_t)x;
        if (b >= nb)
            b = nb - 1;
        double v = p[i].value;
        if (mini[b] == SIZE_MAX || (isnan(p[mini[b]].value) && !isnan(v))) {
            mini[b] = maxi[b] = i;
        } else {
            if (v < p[mini[b]].value)
                mini[b] = i;
            if (v > p[maxi[b]].value)
                maxi[b] = i;
        }
    }
    keep[0] = keep[k - 1] = true;
    for (size_t b = 0; b < nb; b++) {
        if (mini[b] != SIZE_MAX) {
            keep[mini[b]] = true;
            keep[maxi[b]] = true;
        }
    }
    size_t o = 0;
    for (size_t i = 0; i < k; i++)
        if (keep[i])
            p[o++] = p[i];
    free(mini);
    free(maxi);
    free(keep);
    return o;
}

int store_metrics_history(struct dimd_store *s, int64_t job_id, const char *key, int64_t after_step,
                          int64_t to_step, int64_t limit, int64_t max_points,
                          struct store_point **out, size_t *n, bool *more, struct dim_err *err)
{
    const char *op = "read metric history";
    *out = NULL;
    *n = 0;
    *more = false;
    if (!key)
        return db_inval(err, "%s: %s is NULL", op, "key");
    if (limit < 1) {
        dim_fail(err, DIM_EINVAL, "%s: limit %lld must be >= 1", op, (long long)limit);
        return STORE_ERROR;
    }
    if (limit > INT64_MAX - 1)
        limit = INT64_MAX - 1;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    struct store_point *p = NULL;
    size_t cap = 0, cnt = 0;
    bool over = false;
    int rc = jobs_tx_read(db, job_id, err, op);
    if (rc != STORE_OK)
        goto out;
    sqlite3_stmt *st;
    rc = db_stmt_open(db, &st, err, op,
                      "SELECT step, value, wall_ms FROM metrics WHERE job_id = ? AND key = ? "
                      "AND step > ? AND step <= ? ORDER BY step LIMIT ?",
                      "itiii", job_id, key, after_step, to_step, limit + 1);
    if (rc != STORE_OK)
        goto end;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if ((int64_t)cnt == limit) {
            over = true;
            break;
        }
        if (!db_grow((void **)&p, &cap, cnt + 1, sizeof(*p))) {
            rc = db_nomem(err, op);
            break;
        }
        p[cnt].step = sqlite3_column_int64(st, 0);
        p[cnt].value = db_col_value(st, 1);
        p[cnt].wall_ms = sqlite3_column_int64(st, 2);
        cnt++;
    }
    if (rc == STORE_OK && r != SQLITE_ROW && r != SQLITE_DONE)
        rc = db_fail(err, db, op);
    sqlite3_finalize(st);
end:
    db_tx_end(db, STORE_ERROR, NULL, op); /* read-only: roll back */
out:
    db_pool_put(s, db);
    if (rc == STORE_OK && max_points > 0 && (int64_t)cnt > max_points)
        cnt = downsample(p, cnt, after_step, max_points, err, &rc);
    if (rc != STORE_OK) {
        free(p);
        return rc;
    }
    *out = p;
    *n = cnt;
    *more = over;
    return STORE_OK;
}
