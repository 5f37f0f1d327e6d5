/* sweeps.c - sweep rows, trials, rung results and decisions, the sweep event
 * log (see sweeps.h for the design).
 * Depends on sqlite3, store/db.h, util/clock.h.
 */
#include "store/sweeps.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "util/clock.h"

static const char *const state_names[] = {"RUNNING", "PAUSED", "SUCCEEDED", "FAILED",
                                          "CANCELLED"};

const char *sweep_state_name(enum sweep_state s)
{
    return (unsigned)s < 5 ? state_names[s] : "?";
}

bool sweep_state_terminal(enum sweep_state s)
{
    return s >= SWEEP_SUCCEEDED;
}

static enum sweep_state state_parse(const char *t)
{
    for (int i = 0; t && i < 5; i++)
        if (strcmp(t, state_names[i]) == 0)
            return (enum sweep_state)i;
    return SWEEP_FAILED;
}

void store_sweep_clear(struct store_sweep *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->spec_json);
    memset(s, 0, sizeof *s);
}

void store_trial_clear(struct store_trial *t)
{
    if (!t)
        return;
    free(t->params_json);
    free(t->job_error_code);
    memset(t, 0, sizeof *t);
}

#define SWEEP_COLS                                                                                 \
    "id, state, name, spec_json, created_ms, updated_ms, finished_ms, best_trial, "                \
    "(SELECT MAX(id) FROM sweep_events e WHERE e.sweep_id = sweeps.id)"

static bool sweep_read(sqlite3_stmt *st, void *row)
{
    struct store_sweep *w = row;
    w->id = sqlite3_column_int64(st, 0);
    w->state = state_parse((const char *)sqlite3_column_text(st, 1));
    w->created_ms = sqlite3_column_int64(st, 4);
    w->updated_ms = sqlite3_column_int64(st, 5);
    w->finished_ms = sqlite3_column_int64(st, 6);
    w->best_trial = sqlite3_column_type(st, 7) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 7);
    w->last_event_id = sqlite3_column_int64(st, 8);
    return db_col_dup(st, 2, &w->name) && db_col_dup(st, 3, &w->spec_json) && w->spec_json;
}

static void sweep_clear_row(void *row)
{
    store_sweep_clear(row);
}

static int sweep_load(sqlite3 *db, int64_t id, struct store_sweep *out, struct dim_err *err)
{
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, "read sweep", "SELECT " SWEEP_COLS " FROM sweeps WHERE id = ?",
                          "i", id);
    if (rc != STORE_OK)
        return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        if (!sweep_read(st, out)) {
            store_sweep_clear(out);
            rc = db_nomem(err, "read sweep");
        }
    } else if (r == SQLITE_DONE) {
        dim_fail(err, DIM_ENOENT, "no sweep %lld", (long long)id);
        rc = STORE_NOT_FOUND;
    } else {
        rc = db_fail(err, db, "read sweep");
    }
    sqlite3_finalize(st);
    return rc;
}

static int sweep_state_of(sqlite3 *db, int64_t id, enum sweep_state *state, struct dim_err *err)
{
    int64_t v = -1;
    int rc = db_query_int(db, err, "read sweep state", &v, -1,
                          "SELECT CASE state WHEN 'RUNNING' THEN 0 WHEN 'PAUSED' THEN 1 WHEN "
                          "'SUCCEEDED' THEN 2 WHEN 'FAILED' THEN 3 ELSE 4 END FROM sweeps WHERE id = ?",
                          "i", id);
    if (rc != STORE_OK)
        return rc;
    if (v < 0) {
        dim_fail(err, DIM_ENOENT, "no sweep %lld", (long long)id);
        return STORE_NOT_FOUND;
    }
    *state = (enum sweep_state)v;
    return STORE_OK;
}

static int event_add(sqlite3 *db, int64_t sweep_id, const char *type, char *text, int64_t now,
                     struct dim_err *err)
{
    if (!text)
        return db_nomem(err, "build sweep event");
    int rc = db_run(db, err, "insert sweep event", NULL,
                    "INSERT INTO sweep_events (sweep_id, type, data, created_ms) VALUES (?, ?, ?, ?)",
                    "itti", sweep_id, type, text, now);
    free(text);
    return rc;
}

/* A sweep event's type is its text's "type" member: callers make
 * {"type": "...", ...}; the stored type is read back from it. */
static void event_type(const char *text, char type[24])
{
    strcpy(type, "sweep");
    const char *p = text ? strstr(text, "\"type\":\"") : NULL;
    if (!p)
        return;
    p += 8;
    size_t n = strcspn(p, "\"");
    if (n > 0 && n < 24) {
        memcpy(type, p, n);
        type[n] = '\0';
    }
}

static int event_put(sqlite3 *db, int64_t sweep_id, char *text, int64_t now, struct dim_err *err)
{
    char type[24];
    event_type(text, type);
    return event_add(db, sweep_id, type, text, now, err);
}

int store_sweep_insert(struct dimd_store *s, const char *spec_json, const char *name,
                       const char *idem_key, const char *body_sha256, struct store_sweep *out,
                       struct dim_err *err)
{
    const char *op = "insert sweep";
    memset(out, 0, sizeof *out);
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t now = clock_wall_ms(), id = 0;
    int rc = db_tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    if (idem_key) {
        sqlite3_stmt *st;
        rc = db_stmt_open(db, &st, err, "read idempotency key",
                          "SELECT body_sha256, id, created_ms > ? FROM sweeps WHERE idem_key = ?",
                          "it", now - atomic_load(&s->idem_ttl_ms), idem_key);
        if (rc != STORE_OK)
            goto end;
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            const char *sha = (const char *)sqlite3_column_text(st, 0);
            id = sqlite3_column_int64(st, 1);
            if (!sqlite3_column_int(st, 2)) {
                /* expired: the key names the new sweep */
                sqlite3_finalize(st);
                rc = db_run(db, err, "expire idempotency key", NULL,
                            "UPDATE sweeps SET idem_key = NULL WHERE id = ?", "i", id);
                if (rc != STORE_OK)
                    goto end;
                st = NULL;
            } else if (sha && body_sha256 && strcmp(sha, body_sha256) == 0) {
                rc = STORE_REPLAY;
            } else {
                dim_fail(err, DIM_EINVAL,
                         "idempotency key \"%s\" was used for sweep %lld with another body",
                         idem_key, (long long)id);
                rc = STORE_CONFLICT;
            }
        } else if (r != SQLITE_DONE) {
            rc = db_fail(err, db, "read idempotency key");
        }
        if (st)
            sqlite3_finalize(st);
        if (rc == STORE_REPLAY) {
            int lr = sweep_load(db, id, out, err);
            if (lr != STORE_OK)
                rc = lr;
        }
        if (rc != STORE_OK)
            goto end;
    }
    rc = db_run(db, err, op, NULL,
                "INSERT INTO sweeps (state, name, spec_json, created_ms, updated_ms, idem_key, "
                "body_sha256) VALUES ('RUNNING', ?, ?, ?, ?, ?, ?)",
                "ttiitt", name, spec_json, now, now, idem_key, body_sha256);
    if (rc != STORE_OK)
        goto end;
    id = sqlite3_last_insert_rowid(db);
    char *text = strdup("{\"type\":\"state\",\"state\":\"RUNNING\",\"previous\":null}");
    rc = event_put(db, id, text, now, err);
    if (rc == STORE_OK)
        rc = sweep_load(db, id, out, err);
end:
    rc = db_tx_end(db, rc, err, op);
    if (rc == STORE_OK)
        events_bump(s);
out:
    db_pool_put(s, db);
    return rc;
}

int store_sweep_get(struct dimd_store *s, int64_t id, struct store_sweep *out, struct dim_err *err)
{
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = sweep_load(db, id, out, err);
    db_pool_put(s, db);
    return rc;
}

int store_sweep_list(struct dimd_store *s, unsigned state_mask, int64_t before_id, int limit,
                     struct store_sweep **out, size_t *n, bool *more, struct dim_err *err)
{
    *out = NULL;
    *n = 0;
    *more = false;
    if (limit < 1)
        return db_inval(err, "list sweeps: limit %d must be >= 1", limit);
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = db_stmt_open(
        db, &st, err, "list sweeps",
        "SELECT " SWEEP_COLS " FROM sweeps WHERE (? = 0 OR id < ?) AND (? = 0 OR "
        "((1 << (CASE state WHEN 'RUNNING' THEN 0 WHEN 'PAUSED' THEN 1 WHEN 'SUCCEEDED' THEN 2 "
        "WHEN 'FAILED' THEN 3 ELSE 4 END)) & ?) != 0) ORDER BY id DESC LIMIT ?",
        "iiiii", before_id, before_id, (int64_t)state_mask, (int64_t)state_mask,
        (int64_t)limit + 1);
    if (rc == STORE_OK)
        rc = db_collect_rows(db, st, sizeof **out, sweep_read, sweep_clear_row, (void **)out, n,
                             err, "list sweeps");
    db_pool_put(s, db);
    if (rc == STORE_OK && *n > (size_t)limit) {
        *more = true;
        store_sweep_clear(&(*out)[*n - 1]);
        (*n)--;
    }
    return rc;
}

static bool id_read(sqlite3_stmt *st, void *row)
{
    *(int64_t *)row = sqlite3_column_int64(st, 0);
    return true;
}

int store_sweep_running(struct dimd_store *s, int64_t **ids, size_t *n, struct dim_err *err)
{
    *ids = NULL;
    *n = 0;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, "list running sweeps",
                          "SELECT id FROM sweeps WHERE state = 'RUNNING' ORDER BY id", "");
    if (rc == STORE_OK)
        rc = db_collect_rows(db, st, sizeof **ids, id_read, db_no_clear, (void **)ids, n, err,
                             "list running sweeps");
    db_pool_put(s, db);
    return rc;
}

/* The sweep's trial jobs in a state of mask (inside a transaction). */
static int trial_jobs(sqlite3 *db, int64_t sweep_id, const char *states_sql, int64_t **ids,
                      size_t *n, struct dim_err *err)
{
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT j.id FROM sweep_trials t JOIN jobs j ON j.id = t.job_id WHERE t.sweep_id = ? "
             "AND %s ORDER BY j.id",
             states_sql);
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, "list trial jobs", sql, "i", sweep_id);
    if (rc != STORE_OK)
        return rc;
    return db_collect_rows(db, st, sizeof **ids, id_read, db_no_clear, (void **)ids, n, err,
                           "list trial jobs");
}

int store_sweep_transition(struct dimd_store *s, int64_t id, unsigned from_mask,
                           enum sweep_state to, char *event_text, int64_t **moved,
                           size_t *n_moved, struct dim_err *err)
{
    const char *op = "change sweep state";
    int64_t *ids = NULL;
    size_t n = 0;
    if (moved)
        *moved = NULL;
    if (n_moved)
        *n_moved = 0;
    sqlite3 *db = db_pool_get(s, err);
    if (!db) {
        free(event_text);
        return STORE_ERROR;
    }
    int64_t now = clock_wall_ms();
    enum sweep_state cur = SWEEP_RUNNING;
    int rc = db_tx_begin(db, err, op);
    if (rc != STORE_OK) {
        free(event_text);
        goto out;
    }
    rc = sweep_state_of(db, id, &cur, err);
    if (rc == STORE_OK && (sweep_state_terminal(cur) || !(from_mask & (1u << cur)))) {
        dim_fail(err, DIM_EINVAL, "sweep %lld is %s; cannot move it to %s", (long long)id,
                 sweep_state_name(cur), sweep_state_name(to));
        rc = STORE_CONFLICT;
    }
    if (rc != STORE_OK) {
        free(event_text);
        goto end;
    }
    rc = db_run(db, err, op, NULL,
                "UPDATE sweeps SET state = ?, updated_ms = ?, finished_ms = CASE WHEN ? THEN ? "
                "ELSE finished_ms END WHERE id = ?",
                "tiiii", sweep_state_name(to), now, (int64_t)sweep_state_terminal(to), now, id);
    if (rc == STORE_OK)
        rc = event_put(db, id, event_text, now, err);
    else
        free(event_text);
    if (rc != STORE_OK)
        goto end;
    const char *which = NULL, *code = NULL;
    unsigned mask = 0;
    enum job_state jto = JOB_PAUSED;
    if (to == SWEEP_PAUSED) {
        which = "j.state IN ('QUEUED', 'RUNNING')";
        mask = JOB_MASK(JOB_QUEUED) | JOB_MASK(JOB_RUNNING);
        code = "sweep_paused";
    } else if (to == SWEEP_RUNNING) {
        which = "j.state = 'PAUSED' AND j.error_code = 'sweep_paused'";
        mask = JOB_MASK(JOB_PAUSED);
        jto = JOB_QUEUED;
    } else if (to == SWEEP_CANCELLED) {
        which = "j.state IN ('QUEUED', 'RUNNING', 'PAUSED')";
        mask = JOB_MASK(JOB_QUEUED) | JOB_MASK(JOB_RUNNING) | JOB_MASK(JOB_PAUSED);
        jto = JOB_CANCELLED;
        code = "sweep_cancelled";
    }
    if (which) {
        rc = trial_jobs(db, id, which, &ids, &n, err);
        for (size_t i = 0; rc == STORE_OK && i < n; i++) {
            char msg[96];
            snprintf(msg, sizeof msg, "sweep %lld was %s", (long long)id,
                     to == SWEEP_PAUSED ? "paused" : "cancelled");
            int r = jobs_move(db, ids[i], mask, jto, code, code ? msg : NULL, now, err);
            if (r != STORE_OK && r != STORE_CONFLICT)
                rc = r;
        }
    }
end:
    rc = db_tx_end(db, rc, err, op);
    if (rc == STORE_OK) {
        events_bump(s);
        if (moved) {
            *moved = ids;
            *n_moved = n;
            ids = NULL;
        }
    }
out:
    free(ids);
    db_pool_put(s, db);
    return rc;
}

static bool trial_read(sqlite3_stmt *st, void *row)
{
    struct store_trial *t = row;
    t->trial = sqlite3_column_int64(st, 0);
    t->job_id = sqlite3_column_int64(st, 1);
    int js = job_state_parse((const char *)sqlite3_column_text(st, 3));
    t->job_state = js < 0 ? JOB_FAILED : (enum job_state)js;
    t->step = sqlite3_column_int64(st, 5);
    t->total_steps = sqlite3_column_int64(st, 6);
    t->rung = sqlite3_column_type(st, 7) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 7);
    t->rung_step = sqlite3_column_int64(st, 8);
    t->value = db_col_value(st, 9);
    t->promoted_rung = sqlite3_column_type(st, 10) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 10);
    t->stopped_rung = sqlite3_column_type(st, 11) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 11);
    t->created_ms = sqlite3_column_int64(st, 12);
    return db_col_dup(st, 2, &t->params_json) && t->params_json &&
           db_col_dup(st, 4, &t->job_error_code);
}

static void trial_clear_row(void *row)
{
    store_trial_clear(row);
}

int store_sweep_trials(struct dimd_store *s, int64_t sweep_id, struct store_trial **out,
                       size_t *n, struct dim_err *err)
{
    *out = NULL;
    *n = 0;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = db_stmt_open(
        db, &st, err, "read trials",
        "SELECT t.trial, COALESCE(t.job_id, 0), t.params, j.state, j.error_code, "
        "COALESCE(j.step, 0), COALESCE(j.total_steps, 0), r.rung, r.step, r.value, "
        "(SELECT MAX(rung) FROM sweep_decisions d WHERE d.sweep_id = t.sweep_id AND d.trial = "
        "t.trial AND d.decision = 'promote'), "
        "(SELECT MIN(rung) FROM sweep_decisions d WHERE d.sweep_id = t.sweep_id AND d.trial = "
        "t.trial AND d.decision = 'stop'), t.created_ms "
        "FROM sweep_trials t LEFT JOIN jobs j ON j.id = t.job_id "
        "LEFT JOIN sweep_results r ON r.sweep_id = t.sweep_id AND r.trial = t.trial AND r.rung = "
        "(SELECT MAX(rung) FROM sweep_results q WHERE q.sweep_id = t.sweep_id AND q.trial = "
        "t.trial) WHERE t.sweep_id = ? ORDER BY t.trial",
        "i", sweep_id);
    if (rc == STORE_OK)
        rc = db_collect_rows(db, st, sizeof **out, trial_read, trial_clear_row, (void **)out, n,
                             err, "read trials");
    db_pool_put(s, db);
    return rc;
}

static bool result_read(sqlite3_stmt *st, void *row)
{
    struct store_rung_result *r = row;
    r->trial = sqlite3_column_int64(st, 0);
    r->rung = sqlite3_column_int(st, 1);
    r->step = sqlite3_column_int64(st, 2);
    r->value = db_col_value(st, 3);
    const char *d = (const char *)sqlite3_column_text(st, 4);
    r->decision = !d ? 0 : strcmp(d, "promote") == 0 ? 1 : 2;
    return true;
}

int store_sweep_results(struct dimd_store *s, int64_t sweep_id, struct store_rung_result **out,
                        size_t *n, struct dim_err *err)
{
    *out = NULL;
    *n = 0;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, "read rung results",
                          "SELECT r.trial, r.rung, r.step, r.value, d.decision FROM sweep_results r "
                          "LEFT JOIN sweep_decisions d ON d.sweep_id = r.sweep_id AND d.trial = "
                          "r.trial AND d.rung = r.rung WHERE r.sweep_id = ? ORDER BY r.rung, "
                          "r.trial",
                          "i", sweep_id);
    if (rc == STORE_OK)
        rc = db_collect_rows(db, st, sizeof **out, result_read, db_no_clear, (void **)out, n, err,
                             "read rung results");
    db_pool_put(s, db);
    return rc;
}

int store_sweep_add_trial(struct dimd_store *s, int64_t sweep_id, int64_t trial,
                          const char *params_json, const char *spec_json, const char *job_name,
                          char *event_text, int64_t *job_id, struct dim_err *err)
{
    const char *op = "add trial";
    sqlite3 *db = db_pool_get(s, err);
    if (!db) {
        free(event_text);
        return STORE_ERROR;
    }
    int64_t now = clock_wall_ms(), have = 0;
    enum sweep_state cur = SWEEP_RUNNING;
    int rc = db_tx_begin(db, err, op);
    if (rc != STORE_OK) {
        free(event_text);
        goto out;
    }
    rc = sweep_state_of(db, sweep_id, &cur, err);
    if (rc == STORE_OK)
        rc = db_query_int(db, err, op, &have, 0,
                          "SELECT COUNT(*) FROM sweep_trials WHERE sweep_id = ? AND trial = ?",
                          "ii", sweep_id, trial);
    if (rc == STORE_OK && (cur != SWEEP_RUNNING || have)) {
        dim_fail(err, DIM_EINVAL, "sweep %lld: %s", (long long)sweep_id,
                 have ? "the trial exists" : "not running");
        rc = STORE_CONFLICT;
    }
    if (rc == STORE_OK)
        rc = jobs_insert_queued(db, spec_json, job_name, now, job_id, err);
    if (rc == STORE_OK)
        rc = db_run(db, err, op, NULL,
                    "INSERT INTO sweep_trials (sweep_id, trial, job_id, params, created_ms) "
                    "VALUES (?, ?, ?, ?, ?)",
                    "iiiti", sweep_id, trial, *job_id, params_json, now);
    if (rc == STORE_OK)
        rc = event_put(db, sweep_id, event_text, now, err);
    else
        free(event_text);
    rc = db_tx_end(db, rc, err, op);
    if (rc == STORE_OK)
        events_bump(s);
out:
    db_pool_put(s, db);
    return rc;
}

int store_sweep_add_result(struct dimd_store *s, int64_t sweep_id, int64_t trial, int rung,
                           int64_t step, double value, char *event_text, struct dim_err *err)
{
    const char *op = "add rung result";
    sqlite3 *db = db_pool_get(s, err);
    if (!db) {
        free(event_text);
        return STORE_ERROR;
    }
    int64_t now = clock_wall_ms();
    int changes = 0;
    int rc = db_tx_begin(db, err, op);
    if (rc == STORE_OK)
        rc = db_run(db, err, op, &changes,
                    "INSERT OR IGNORE INTO sweep_results (sweep_id, trial, rung, step, value, "
                    "created_ms) VALUES (?, ?, ?, ?, ?, ?)",
                    "iiiidi", sweep_id, trial, (int64_t)rung, step, isfinite(value) ? value : NAN,
                    now);
    if (rc == STORE_OK && changes == 0)
        rc = STORE_CONFLICT;
    if (rc == STORE_OK)
        rc = event_put(db, sweep_id, event_text, now, err);
    else
        free(event_text);
    rc = db_tx_end(db, rc, rc == STORE_CONFLICT ? NULL : err, op);
    if (rc == STORE_OK)
        events_bump(s);
    db_pool_put(s, db);
    return rc;
}

int store_sweep_decide(struct dimd_store *s, int64_t sweep_id, int64_t trial, int rung,
                       bool promote, const char *job_message, char *event_text,
                       struct dim_err *err)
{
    const char *op = "record rung decision";
    sqlite3 *db = db_pool_get(s, err);
    if (!db) {
        free(event_text);
        return STORE_ERROR;
    }
    int64_t now = clock_wall_ms(), job = 0;
    int changes = 0;
    enum sweep_state cur = SWEEP_RUNNING;
    int rc = db_tx_begin(db, err, op);
    /* a sweep paused or cancelled since the pass read it takes no decision */
    if (rc == STORE_OK && (rc = sweep_state_of(db, sweep_id, &cur, err)) == STORE_OK &&
        cur != SWEEP_RUNNING)
        rc = STORE_CONFLICT;
    if (rc == STORE_OK)
        rc = db_run(db, err, op, &changes,
                    "INSERT OR IGNORE INTO sweep_decisions (sweep_id, trial, rung, decision, "
                    "created_ms) VALUES (?, ?, ?, ?, ?)",
                    "iiiti", sweep_id, trial, (int64_t)rung, promote ? "promote" : "stop", now);
    if (rc == STORE_OK && changes == 0)
        rc = STORE_CONFLICT;
    if (rc == STORE_OK)
        rc = db_query_int(db, err, op, &job, 0,
                          "SELECT COALESCE(job_id, 0) FROM sweep_trials WHERE sweep_id = ? AND "
                          "trial = ?",
                          "ii", sweep_id, trial);
    if (rc == STORE_OK && job == 0)
        rc = STORE_CONFLICT;
    if (rc == STORE_OK)
        rc = jobs_move(db, job, JOB_MASK(JOB_PAUSED), promote ? JOB_QUEUED : JOB_CANCELLED,
                       promote ? NULL : "sweep_stopped", promote ? NULL : job_message, now, err);
    if (rc == STORE_OK)
        rc = event_put(db, sweep_id, event_text, now, err);
    else
        free(event_text);
    rc = db_tx_end(db, rc, rc == STORE_CONFLICT ? NULL : err, op);
    if (rc == STORE_OK)
        events_bump(s);
    db_pool_put(s, db);
    return rc;
}

int store_sweep_set_best(struct dimd_store *s, int64_t sweep_id, int64_t trial, char *event_text,
                         struct dim_err *err)
{
    const char *op = "set best trial";
    sqlite3 *db = db_pool_get(s, err);
    if (!db) {
        free(event_text);
        return STORE_ERROR;
    }
    int64_t now = clock_wall_ms();
    int changes = 0;
    int rc = db_tx_begin(db, err, op);
    if (rc == STORE_OK)
        rc = db_run(db, err, op, &changes,
                    "UPDATE sweeps SET best_trial = ?, updated_ms = ? WHERE id = ? AND "
                    "best_trial IS NOT ?",
                    "iiii", trial, now, sweep_id, trial);
    if (rc == STORE_OK && changes)
        rc = event_put(db, sweep_id, event_text, now, err);
    else
        free(event_text);
    rc = db_tx_end(db, rc, err, op);
    if (rc == STORE_OK && changes)
        events_bump(s);
    db_pool_put(s, db);
    return rc;
}

int store_sweep_promoted(struct dimd_store *s, int64_t sweep_id, int64_t trial, int rung,
                         bool *promoted, struct dim_err *err)
{
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t v = 0;
    int rc = db_query_int(db, err, "read rung decision", &v, 0,
                          "SELECT COUNT(*) FROM sweep_decisions WHERE sweep_id = ? AND trial = ? "
                          "AND rung = ? AND decision = 'promote'",
                          "iii", sweep_id, trial, (int64_t)rung);
    *promoted = v > 0;
    db_pool_put(s, db);
    return rc;
}

int store_sweep_metric_at(struct dimd_store *s, int64_t job_id, const char *key, int64_t step,
                          int64_t window, double *value, struct dim_err *err)
{
    *value = NAN;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, "read metric at a rung",
                          "SELECT AVG(value), COUNT(*), COUNT(value) FROM metrics WHERE job_id = ? "
                          "AND key = ? AND step > ? AND step <= ?",
                          "itii", job_id, key, step - (window < 1 ? 1 : window), step);
    if (rc == STORE_OK) {
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            /* a NaN point (stored NULL) makes the whole window NaN */
            if (sqlite3_column_int64(st, 1) > 0 &&
                sqlite3_column_int64(st, 1) == sqlite3_column_int64(st, 2))
                *value = sqlite3_column_double(st, 0);
        } else {
            rc = db_fail(err, db, "read metric at a rung");
        }
        sqlite3_finalize(st);
    }
    db_pool_put(s, db);
    return rc;
}

static bool sweep_event_read(sqlite3_stmt *st, void *row)
{
    struct store_event *e = row;
    e->id = sqlite3_column_int64(st, 0);
    e->job_id = sqlite3_column_int64(st, 1);
    snprintf(e->type, sizeof e->type, "%s", (const char *)sqlite3_column_text(st, 2));
    e->created_ms = sqlite3_column_int64(st, 4);
    return db_col_dup(st, 3, &e->data) && e->data;
}

static void sweep_event_clear(void *row)
{
    store_event_clear(row);
}

int store_sweep_events_after(struct dimd_store *s, int64_t sweep_id, int64_t after_id, int limit,
                             struct store_event **out, size_t *n, struct dim_err *err)
{
    *out = NULL;
    *n = 0;
    if (limit < 1)
        return db_inval(err, "read sweep events: limit %d must be >= 1", limit);
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, "read sweep events",
                          "SELECT id, sweep_id, type, data, created_ms FROM sweep_events WHERE "
                          "sweep_id = ? AND id > ? ORDER BY id LIMIT ?",
                          "iii", sweep_id, after_id, (int64_t)limit);
    if (rc == STORE_OK)
        rc = db_collect_rows(db, st, sizeof **out, sweep_event_read, sweep_event_clear,
                             (void **)out, n, err, "read sweep events");
    db_pool_put(s, db);
    return rc;
}
