/* jobs.c - job rows (store/jobs.h): insert with idempotency keys, get, list
 * with filters, compare-and-set transitions, the worker's claim, total and
 * finish, start-up recovery, delete and counts; and the job guard and loader
 * the other concerns borrow (store/db.h).
 *
 * DESIGN
 * - Every state change (set_state, and the insert and the claim) writes its
 *   "state" event in its own transaction. The event's text comes from
 *   api/event_json.h, given the plain values (new state, the previous one read
 *   inside the transaction, error code and message), so the store builds no
 *   JSON and the event cannot disagree with the row.
 * - After a commit that wrote events, events_bump wakes the event streams.
 * - Idempotency keys expire idem_ttl_ms after the insert that stored them. The
 *   lookup ignores expired rows, so expiry does not wait for the purge, and the
 *   insert overwrites an expired row of the same key (upsert); the purge only
 *   keeps the table small.
 * Depends on sqlite3, store/db.h, api/event_json.h, api/job_state.h, util/clock.h.
 */
#include "store/jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/event_json.h"
#include "store/db.h"
#include "util/clock.h"

/* ---- jobs ---- */

void store_job_clear(struct store_job *j)
{
    if (!j)
        return;
    free(j->name);
    free(j->spec_json);
    free(j->error_code);
    free(j->error_message);
    free(j->latest_json);
    free(j->hosts);
    memset(j, 0, sizeof(*j));
}

/* The last value of every metric key of the job as a JSON object text: the
 * keys are walked with index seeks (a recursive MIN(key) > previous), so the
 * cost grows with the number of keys, not of points. NaN (stored NULL) and
 * infinities become null. */
#define JOB_LATEST_COL                                                                             \
    "(SELECT json_group_object(k.key, "                                                            \
    "   (SELECT CASE WHEN abs(l.value) <= 1.7976931348623157e308 THEN l.value END "                \
    "    FROM metrics l WHERE l.job_id = jobs.id AND l.key = k.key ORDER BY l.step DESC LIMIT "    \
    "1)) "                                                                                         \
    " FROM (WITH RECURSIVE k(key) AS ("                                                            \
    "   SELECT (SELECT MIN(key) FROM metrics WHERE job_id = jobs.id) UNION ALL "                   \
    "   SELECT (SELECT MIN(m2.key) FROM metrics m2 WHERE m2.job_id = jobs.id AND m2.key > k.key) " \
    "   FROM k WHERE k.key IS NOT NULL) SELECT key FROM k WHERE key IS NOT NULL) k)"

#define JOB_COLS                                                                                   \
    "id, state, name, spec_json, created_ms, started_ms, finished_ms, updated_ms, step, "          \
    "total_steps, images_per_second, attempts, restarts, error_code, error_message, "              \
    "COALESCE((SELECT MAX(c.step) FROM checkpoints c WHERE c.job_id = jobs.id), "                  \
    "-1), " JOB_LATEST_COL ", "                                                                    \
    "COALESCE((SELECT MAX(e.id) FROM events e WHERE e.job_id = jobs.id), 0), hosts"

/* Reads a JOB_COLS row into *j (overwritten). */
static int job_read(sqlite3_stmt *st, struct store_job *j, struct dim_err *err)
{
    struct store_job t = {0};
    t.id = sqlite3_column_int64(st, 0);
    int state = job_state_parse((const char *)sqlite3_column_text(st, 1));
    t.state = state < 0 ? JOB_FAILED : (enum job_state)state;
    t.created_ms = sqlite3_column_int64(st, 4);
    t.started_ms = sqlite3_column_int64(st, 5);
    t.finished_ms = sqlite3_column_int64(st, 6);
    t.updated_ms = sqlite3_column_int64(st, 7);
    t.step = sqlite3_column_int64(st, 8);
    t.total_steps = sqlite3_column_int64(st, 9);
    t.images_per_second = sqlite3_column_double(st, 10);
    t.attempts = sqlite3_column_int(st, 11);
    t.restarts = sqlite3_column_int(st, 12);
    t.checkpoint_step = sqlite3_column_int64(st, 15);
    t.last_event_id = sqlite3_column_int64(st, 17);
    if (!db_col_dup(st, 2, &t.name) || !db_col_dup(st, 3, &t.spec_json) ||
        !db_col_dup(st, 13, &t.error_code) || !db_col_dup(st, 14, &t.error_message) ||
        !db_col_dup(st, 16, &t.latest_json) || !db_col_dup(st, 18, &t.hosts)) {
        store_job_clear(&t);
        return db_nomem(err, "read job");
    }
    *j = t;
    return STORE_OK;
}

/* Loads job id into *out (may be NULL: only checks it exists). */
int jobs_load(sqlite3 *db, int64_t id, struct store_job *out, struct dim_err *err)
{
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, "read job", "SELECT " JOB_COLS " FROM jobs WHERE id = ?",
                          "i", id);
    if (rc != STORE_OK)
        return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        rc = out ? job_read(st, out, err) : STORE_OK;
    else if (s == SQLITE_DONE)
        rc = STORE_NOT_FOUND;
    else
        rc = db_fail(err, db, "read job");
    sqlite3_finalize(st);
    return rc;
}

/* The state of job id in *state. */
static int job_state_of(sqlite3 *db, int64_t id, enum job_state *state, int *attempts,
                        struct dim_err *err)
{
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, "read job state",
                          "SELECT state, attempts FROM jobs WHERE id = ?", "i", id);
    if (rc != STORE_OK)
        return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        int v = job_state_parse((const char *)sqlite3_column_text(st, 0));
        *state = v < 0 ? JOB_FAILED : (enum job_state)v;
        if (attempts)
            *attempts = sqlite3_column_int(st, 1);
    } else if (s == SQLITE_DONE) {
        rc = STORE_NOT_FOUND;
    } else {
        rc = db_fail(err, db, "read job state");
    }
    sqlite3_finalize(st);
    return rc;
}

/* A worker's guard: STORE_OK when job id is in a state of mask and its current
 * attempt is `attempt`; STORE_STALE otherwise, also when the job no longer
 * exists (it was deleted, so no attempt of it is current). */
int jobs_guard(sqlite3 *db, int64_t id, int attempt, unsigned mask, struct dim_err *err)
{
    enum job_state state = JOB_QUEUED; /* read only when job_state_of succeeds */
    int cur = 0;
    int rc = job_state_of(db, id, &state, &cur, err);
    if (rc == STORE_NOT_FOUND ||
        (rc == STORE_OK && (cur != attempt || !(mask & JOB_MASK(state))))) {
        dim_fail(err, DIM_ECANCELLED, "job %lld attempt %d is no longer current", (long long)id,
                 attempt);
        return STORE_STALE;
    }
    return rc;
}

/* Moves job id from `from` to `to` with its bookkeeping and event (inside a
 * write transaction). */
static int set_state(sqlite3 *db, int64_t id, enum job_state from, enum job_state to,
                     const char *code, const char *msg, int restarts_add, int64_t now,
                     struct dim_err *err)
{
    int rc = db_run(db, err, "update job state", NULL,
                    "UPDATE jobs SET state = ?, updated_ms = ?, "
                    "finished_ms = CASE WHEN ? THEN ? ELSE finished_ms END, "
                    "error_code = ?, error_message = ?, restarts = restarts + ? WHERE id = ?",
                    "tiiittii", job_state_name(to), now, (int64_t)job_state_terminal(to), now, code,
                    msg, (int64_t)restarts_add, id);
    if (rc != STORE_OK)
        return rc;
    if (from == JOB_RUNNING) {
        /* The attempt that ran ends here (outcome: where it left the job). */
        rc = db_run(db, err, "end attempt", NULL,
                    "UPDATE attempts SET finished_ms = ?, outcome = ? WHERE job_id = ? AND "
                    "attempt = (SELECT attempts FROM jobs WHERE id = ?) AND outcome IS NULL",
                    "itii", now, restarts_add ? "restart" : job_state_name(to), id, id);
        if (rc != STORE_OK)
            return rc;
    }
    return events_add(db, id, "state", event_json_state(to, (int)from, code, msg), now, err);
}

int jobs_move(sqlite3 *db, int64_t id, unsigned from_mask, enum job_state to, const char *code,
              const char *msg, int64_t now, struct dim_err *err)
{
    enum job_state cur = JOB_QUEUED;
    int rc = job_state_of(db, id, &cur, NULL, err);
    if (rc != STORE_OK)
        return rc;
    if (job_state_terminal(cur) || !(from_mask & JOB_MASK(cur)))
        return STORE_CONFLICT;
    return set_state(db, id, cur, to, code, msg, 0, now, err);
}

int jobs_insert_queued(sqlite3 *db, const char *spec_json, const char *name, int64_t now,
                       int64_t *id, struct dim_err *err)
{
    int rc = db_run(db, err, "insert job", NULL,
                    "INSERT INTO jobs (state, name, spec_json, created_ms, updated_ms) "
                    "VALUES ('QUEUED', ?, ?, ?, ?)",
                    "ttii", name, spec_json, now, now);
    if (rc != STORE_OK)
        return rc;
    *id = sqlite3_last_insert_rowid(db);
    return events_add(db, *id, "state", event_json_state(JOB_QUEUED, -1, NULL, NULL), now, err);
}

int store_job_insert(struct dimd_store *s, const char *spec_json, const char *name,
                     const char *idem_key, const char *body_sha256, int64_t queue_max,
                     struct store_job *out, struct dim_err *err)
{
    const char *op = "insert job";
    if (!spec_json)
        return db_inval(err, "%s: %s is NULL", op, "spec_json");
    if (idem_key && !body_sha256)
        return db_inval(err, "%s: %s is NULL", op, "body_sha256 (with an idempotency key)");
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t now = clock_wall_ms(), id = 0;
    int rc = db_tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    if (idem_key) {
        sqlite3_stmt *st;
        /* an expired key is as good as absent (the purge may not have run yet) */
        rc = db_stmt_open(db, &st, err, "read idempotency key",
                          "SELECT body_sha256, job_id FROM idempotency WHERE key = ? AND "
                          "created_ms > ?",
                          "ti", idem_key, now - atomic_load(&s->idem_ttl_ms));
        if (rc != STORE_OK)
            goto end;
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            bool same = strcmp((const char *)sqlite3_column_text(st, 0), body_sha256) == 0;
            id = sqlite3_column_int64(st, 1);
            if (same) {
                rc = STORE_REPLAY;
            } else {
                dim_fail(err, DIM_EINVAL,
                         "idempotency key \"%s\" was used for job %lld with another body", idem_key,
                         (long long)id);
                rc = STORE_CONFLICT;
            }
        } else if (r != SQLITE_DONE) {
            rc = db_fail(err, db, "read idempotency key");
        }
        sqlite3_finalize(st);
        if (rc == STORE_REPLAY && out) {
            int lr = jobs_load(db, id, out, err);
            if (lr != STORE_OK)
                rc = lr == STORE_NOT_FOUND ? STORE_ERROR : lr;
        }
        if (rc != STORE_OK)
            goto end;
    }
    int64_t queued = 0;
    rc = db_query_int(db, err, "count queued jobs", &queued, 0,
                      "SELECT COUNT(*) FROM jobs WHERE state = 'QUEUED'", "");
    if (rc != STORE_OK)
        goto end;
    if (queue_max > 0 && queued >= queue_max) {
        dim_fail(err, DIM_ELIMIT, "queue is full: %lld jobs queued (queue_max %lld)",
                 (long long)queued, (long long)queue_max);
        rc = STORE_QUEUE_FULL;
        goto end;
    }
    rc = db_run(db, err, op, NULL,
                "INSERT INTO jobs (state, name, spec_json, created_ms, updated_ms) "
                "VALUES ('QUEUED', ?, ?, ?, ?)",
                "ttii", name, spec_json, now, now);
    if (rc != STORE_OK)
        goto end;
    id = sqlite3_last_insert_rowid(db);
    if (idem_key) {
        rc = db_run(db, err, "insert idempotency key", NULL,
                    "INSERT INTO idempotency (key, body_sha256, job_id, created_ms) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                    "body_sha256 = excluded.body_sha256, job_id = excluded.job_id, "
                    "created_ms = excluded.created_ms",
                    "ttii", idem_key, body_sha256, id, now);
        if (rc != STORE_OK)
            goto end;
    }
    rc = events_add(db, id, "state", event_json_state(JOB_QUEUED, -1, NULL, NULL), now, err);
    if (rc == STORE_OK && out)
        rc = jobs_load(db, id, out, err);
end:
    rc = db_tx_end(db, rc, err, op);
    if (rc == STORE_OK)
        events_bump(s);
out:
    db_pool_put(s, db);
    return rc;
}

void store_idempotency_ttl_set(struct dimd_store *s, int64_t ttl_ms)
{
    atomic_store(&s->idem_ttl_ms, ttl_ms >= 1 ? ttl_ms : 1);
}

int store_idempotency_purge(struct dimd_store *s, int64_t *removed, struct dim_err *err)
{
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int changes = 0;
    int rc = db_run(db, err, "purge expired idempotency keys", &changes,
                    "DELETE FROM idempotency WHERE created_ms <= ?", "i",
                    clock_wall_ms() - atomic_load(&s->idem_ttl_ms));
    if (removed)
        *removed = rc == STORE_OK ? changes : 0;
    db_pool_put(s, db);
    return rc;
}

int store_idempotency_count(struct dimd_store *s, int64_t *n, struct dim_err *err)
{
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = db_query_int(db, err, "count idempotency keys", n, 0,
                          "SELECT COUNT(*) FROM idempotency", "");
    db_pool_put(s, db);
    return rc;
}

int store_job_get(struct dimd_store *s, int64_t id, struct store_job *out, struct dim_err *err)
{
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = jobs_load(db, id, out, err);
    if (rc == STORE_NOT_FOUND)
        dim_fail(err, DIM_ENOENT, "no job %lld", (long long)id);
    db_pool_put(s, db);
    return rc;
}

int store_job_list(struct dimd_store *s, const struct store_job_filter *f, int64_t before_id,
                   int limit, struct store_job **out, size_t *n, bool *more, struct dim_err *err)
{
    static const struct store_job_filter all = {0};
    if (!f)
        f = &all;
    const unsigned state_mask = f->state_mask;
    char version[16] = "";
    if (f->version > 0)
        snprintf(version, sizeof version, "v%d", f->version);
    *out = NULL;
    *n = 0;
    *more = false;
    if (limit < 1) {
        dim_fail(err, DIM_EINVAL, "list jobs: limit %d must be >= 1", limit);
        return STORE_ERROR;
    }
    char sql[2048];
    size_t len = (size_t)snprintf(sql, sizeof(sql),
                                  "SELECT " JOB_COLS " FROM jobs WHERE (?1 = 0 OR id < ?1) "
                                  "AND (?2 IS NULL OR "
                                  "COALESCE(json_extract(spec_json, '$.kind'), 'train') = ?2) "
                                  "AND (?3 IS NULL OR json_extract(spec_json, '$.model') = ?3) "
                                  "AND (?4 IS NULL OR json_extract(spec_json, '$.version') = ?4)");
    unsigned mask = state_mask & ((1u << JOB_N_STATES) - 1);
    if (state_mask != 0) {
        /* Only the fixed state names go into the text; mask bits beyond the
         * states match nothing. */
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND state IN (''");
        for (int i = 0; i < JOB_N_STATES; i++)
            if (mask & JOB_MASK(i))
                len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", '%s'",
                                        job_state_name((enum job_state)i));
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, ")");
    }
    snprintf(sql + len, sizeof(sql) - len, " ORDER BY id DESC LIMIT ?5");

    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    struct store_job *jobs = NULL;
    size_t cap = 0, cnt = 0;
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, "list jobs", sql, "ittti", before_id, f->kind, f->model,
                          version[0] ? version : NULL, (int64_t)limit + 1);
    if (rc == STORE_OK) {
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            if (cnt == (size_t)limit) {
                *more = true;
                break;
            }
            if (!db_grow((void **)&jobs, &cap, cnt + 1, sizeof(*jobs))) {
                rc = db_nomem(err, "list jobs");
                break;
            }
            if ((rc = job_read(st, &jobs[cnt], err)) != STORE_OK)
                break;
            cnt++;
        }
        if (rc == STORE_OK && r != SQLITE_ROW && r != SQLITE_DONE)
            rc = db_fail(err, db, "list jobs");
        sqlite3_finalize(st);
    }
    db_pool_put(s, db);
    if (rc != STORE_OK) {
        for (size_t i = 0; i < cnt; i++)
            store_job_clear(&jobs[i]);
        free(jobs);
        *more = false;
        return rc;
    }
    *out = jobs;
    *n = cnt;
    return STORE_OK;
}

int store_job_transition(struct dimd_store *s, int64_t id, unsigned from_mask, enum job_state to,
                         const char *error_code, const char *error_message, struct store_job *out,
                         struct dim_err *err)
{
    const char *op = "change job state";
    if ((unsigned)to >= JOB_N_STATES) {
        dim_fail(err, DIM_EINVAL, "%s: state %d out of range", op, (int)to);
        return STORE_ERROR;
    }
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t now = clock_wall_ms();
    enum job_state cur;
    int rc = db_tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    rc = job_state_of(db, id, &cur, NULL, err);
    if (rc == STORE_NOT_FOUND)
        dim_fail(err, DIM_ENOENT, "no job %lld", (long long)id);
    if (rc != STORE_OK)
        goto end;
    if (job_state_terminal(cur) || !(from_mask & JOB_MASK(cur))) {
        dim_fail(err, DIM_EINVAL, "job %lld is %s; cannot move it to %s", (long long)id,
                 job_state_name(cur), job_state_name(to));
        if (out && jobs_load(db, id, out, NULL) != STORE_OK)
            memset(out, 0, sizeof(*out));
        rc = STORE_CONFLICT;
        goto end;
    }
    rc = set_state(db, id, cur, to, error_code, error_message, 0, now, err);
    if (rc == STORE_OK && out)
        rc = jobs_load(db, id, out, err);
end:
    rc = db_tx_end(db, rc, err, op);
    if (rc == STORE_OK)
        events_bump(s);
out:
    db_pool_put(s, db);
    return rc;
}

int store_job_claim(struct dimd_store *s, const int64_t *skip, size_t n_skip, struct store_job *out,
                    struct dim_err *err)
{
    const char *op = "claim job";
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t now = clock_wall_ms(), id = 0;
    int rc = db_tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    sqlite3_stmt *st;
    rc = db_stmt_open(db, &st, err, op, "SELECT id FROM jobs WHERE state = 'QUEUED' ORDER BY id",
                      "");
    if (rc != STORE_OK)
        goto end;
    int r;
    rc = STORE_NOT_FOUND;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t cand = sqlite3_column_int64(st, 0);
        size_t i = 0;
        while (i < n_skip && skip[i] != cand)
            i++;
        if (i == n_skip) {
            id = cand;
            rc = STORE_OK;
            break;
        }
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = db_fail(err, db, op);
    sqlite3_finalize(st);
    if (rc == STORE_NOT_FOUND)
        dim_fail(err, DIM_ENOENT, "no queued job to claim");
    if (rc != STORE_OK)
        goto end;
    rc = db_run(db, err, op, NULL,
                "UPDATE jobs SET state = 'RUNNING', attempts = attempts + 1, updated_ms = ?, "
                "started_ms = CASE WHEN started_ms = 0 THEN ? ELSE started_ms END, "
                "error_code = NULL, error_message = NULL WHERE id = ?",
                "iii", now, now, id);
    if (rc == STORE_OK)
        rc = db_run(db, err, "insert attempt", NULL,
                    "INSERT INTO attempts (job_id, attempt, started_ms) "
                    "SELECT id, attempts, ? FROM jobs WHERE id = ?",
                    "ii", now, id);
    if (rc == STORE_OK)
        rc = events_add(db, id, "state", event_json_state(JOB_RUNNING, JOB_QUEUED, NULL, NULL), now,
                        err);
    if (rc == STORE_OK && out)
        rc = jobs_load(db, id, out, err);
end:
    rc = db_tx_end(db, rc, err, op);
    if (rc == STORE_OK)
        events_bump(s);
out:
    db_pool_put(s, db);
    return rc;
}

int store_job_set_total(struct dimd_store *s, int64_t id, int attempt, int64_t total_steps,
                        struct dim_err *err)
{
    const char *op = "set total steps";
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = db_tx_begin(db, err, op);
    if (rc == STORE_OK) {
        rc = jobs_guard(db, id, attempt, JOB_MASK(JOB_RUNNING), err);
        if (rc == STORE_OK)
            rc = db_run(db, err, op, NULL,
                        "UPDATE jobs SET total_steps = ?, updated_ms = ? WHERE id = ?", "iii",
                        total_steps, clock_wall_ms(), id);
        rc = db_tx_end(db, rc, err, op);
    }
    db_pool_put(s, db);
    return rc;
}

int store_job_finish(struct dimd_store *s, int64_t id, int attempt, enum job_state to,
                     const char *error_code, const char *error_message, struct dim_err *err)
{
    const char *op = "finish job";
    if (to != JOB_SUCCEEDED && to != JOB_FAILED && to != JOB_QUEUED && to != JOB_PAUSED) {
        dim_fail(err, DIM_EINVAL, "%s: a worker cannot move a job to %s", op, job_state_name(to));
        return STORE_ERROR;
    }
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = db_tx_begin(db, err, op);
    if (rc == STORE_OK) {
        rc = jobs_guard(db, id, attempt, JOB_MASK(JOB_RUNNING), err);
        if (rc == STORE_OK)
            rc = set_state(db, id, JOB_RUNNING, to, error_code, error_message, 0, clock_wall_ms(),
                           err);
        rc = db_tx_end(db, rc, err, op);
        if (rc == STORE_OK)
            events_bump(s);
    }
    db_pool_put(s, db);
    return rc;
}

int store_job_set_hosts(struct dimd_store *s, int64_t id, int attempt, const char *hosts_json,
                        struct dim_err *err)
{
    const char *op = "set job hosts";
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = db_tx_begin(db, err, op);
    if (rc == STORE_OK) {
        rc = jobs_guard(db, id, attempt, JOB_MASK(JOB_RUNNING), err);
        if (rc == STORE_OK)
            rc = db_run(db, err, op, NULL, "UPDATE jobs SET hosts = ? WHERE id = ?", "ti",
                        hosts_json, id);
        rc = db_tx_end(db, rc, err, op);
    }
    db_pool_put(s, db);
    return rc;
}

int store_job_restart(struct dimd_store *s, int64_t id, int attempt, int max_restarts,
                      const char *why, bool *failed, struct dim_err *err)
{
    const char *op = "restart job";
    if (failed)
        *failed = false;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = db_tx_begin(db, err, op);
    if (rc == STORE_OK) {
        rc = jobs_guard(db, id, attempt, JOB_MASK(JOB_RUNNING), err);
        int64_t restarts = 0;
        if (rc == STORE_OK)
            rc = db_query_int(db, err, op, &restarts, 0, "SELECT restarts FROM jobs WHERE id = ?",
                              "i", id);
        if (rc == STORE_OK && restarts + 1 > max_restarts) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s, %lld times (max_restarts %d)", why ? why : "restarted",
                     (long long)restarts + 1, max_restarts);
            rc = set_state(db, id, JOB_RUNNING, JOB_FAILED, "restart_limit", msg, 1,
                           clock_wall_ms(), err);
            if (failed)
                *failed = true;
        } else if (rc == STORE_OK) {
            rc = set_state(db, id, JOB_RUNNING, JOB_QUEUED, NULL, NULL, 1, clock_wall_ms(), err);
        }
        rc = db_tx_end(db, rc, err, op);
        if (rc == STORE_OK)
            events_bump(s);
    }
    db_pool_put(s, db);
    return rc;
}

int store_recover(struct dimd_store *s, int max_restarts, int *requeued, int *failed,
                  struct dim_err *err)
{
    const char *op = "recover running jobs";
    *requeued = 0;
    *failed = 0;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t now = clock_wall_ms();
    int64_t *ids = NULL;
    int *restarts = NULL;
    size_t cap = 0, cap2 = 0, cnt = 0;
    int nq = 0, nf = 0;
    int rc = db_tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    sqlite3_stmt *st;
    rc = db_stmt_open(db, &st, err, op,
                      "SELECT id, restarts FROM jobs WHERE state = 'RUNNING' ORDER BY id", "");
    if (rc != STORE_OK)
        goto end;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (!db_grow((void **)&ids, &cap, cnt + 1, sizeof(*ids)) ||
            !db_grow((void **)&restarts, &cap2, cnt + 1, sizeof(*restarts))) {
            rc = db_nomem(err, op);
            break;
        }
        ids[cnt] = sqlite3_column_int64(st, 0);
        restarts[cnt++] = sqlite3_column_int(st, 1);
    }
    if (rc == STORE_OK && r != SQLITE_DONE)
        rc = db_fail(err, db, op);
    sqlite3_finalize(st);
    for (size_t i = 0; i < cnt && rc == STORE_OK; i++) {
        int n = restarts[i] + 1;
        if (n > max_restarts) {
            char msg[160];
            snprintf(msg, sizeof(msg),
                     "the daemon stopped while the job ran %d times (max_restarts %d)", n,
                     max_restarts);
            rc = set_state(db, ids[i], JOB_RUNNING, JOB_FAILED, "restart_limit", msg, 1, now, err);
            nf++;
        } else {
            rc = set_state(db, ids[i], JOB_RUNNING, JOB_QUEUED, NULL, NULL, 1, now, err);
            nq++;
        }
    }
end:
    rc = db_tx_end(db, rc, err, op);
    if (rc == STORE_OK) {
        *requeued = nq;
        *failed = nf;
        if (cnt > 0)
            events_bump(s);
    }
out:
    free(ids);
    free(restarts);
    db_pool_put(s, db);
    return rc;
}

int store_job_delete(struct dimd_store *s, int64_t id, struct dim_err *err)
{
    const char *op = "delete job";
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    enum job_state cur;
    int rc = db_tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    rc = job_state_of(db, id, &cur, NULL, err);
    if (rc == STORE_NOT_FOUND)
        dim_fail(err, DIM_ENOENT, "no job %lld", (long long)id);
    if (rc == STORE_OK && !job_state_terminal(cur)) {
        dim_fail(err, DIM_EINVAL, "job %lld is %s; only finished jobs can be deleted",
                 (long long)id, job_state_name(cur));
        rc = STORE_CONFLICT;
    }
    /* Metrics, checkpoints, events, attempts and idempotency keys cascade. */
    if (rc == STORE_OK)
        rc = db_run(db, err, op, NULL, "DELETE FROM jobs WHERE id = ?", "i", id);
    rc = db_tx_end(db, rc, err, op);
    if (rc == STORE_OK)
        db_reclaim(db);
out:
    db_pool_put(s, db);
    return rc;
}

int store_job_counts(struct dimd_store *s, int64_t counts[JOB_N_STATES], struct dim_err *err)
{
    for (int i = 0; i < JOB_N_STATES; i++)
        counts[i] = 0;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, "count jobs",
                          "SELECT state, COUNT(*) FROM jobs GROUP BY state", "");
    if (rc == STORE_OK) {
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            int v = job_state_parse((const char *)sqlite3_column_text(st, 0));
            if (v >= 0)
                counts[v] = sqlite3_column_int64(st, 1);
        }
        if (r != SQLITE_DONE)
            rc = db_fail(err, db, "count jobs");
        sqlite3_finalize(st);
    }
    db_pool_put(s, db);
    return rc;
}

/* Opens a read transaction in which job_id exists; STORE_NOT_FOUND ("no job N")
 * otherwise, with no transaction left open. */
int jobs_tx_read(sqlite3 *db, int64_t job_id, struct dim_err *err, const char *op)
{
    int rc = db_tx_read(db, err, op);
    if (rc != STORE_OK)
        return rc;
    rc = jobs_load(db, job_id, NULL, err);
    if (rc == STORE_NOT_FOUND)
        dim_fail(err, DIM_ENOENT, "no job %lld", (long long)job_id);
    if (rc != STORE_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}
