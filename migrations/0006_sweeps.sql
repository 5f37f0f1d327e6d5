-- 0006_sweeps.sql - hyperparameter sweeps (POST /v1/sweeps): the sweep, its
-- trials (each an ordinary job), the metric each trial reached at each rung,
-- the rung decisions (ASHA's promote or stop, one row each, never two), and
-- the sweep's event log behind its Server-Sent Events.

CREATE TABLE sweeps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    state       TEXT NOT NULL CHECK (state IN ('RUNNING', 'PAUSED', 'SUCCEEDED', 'FAILED',
                                               'CANCELLED')),
    name        TEXT,
    spec_json   TEXT NOT NULL,  -- the resolved sweep (api/sweep_spec.h)
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    finished_ms INTEGER NOT NULL DEFAULT 0,
    best_trial  INTEGER,        -- NULL until a trial has a result
    idem_key    TEXT UNIQUE,    -- Idempotency-Key of the POST that made it
    body_sha256 TEXT
);

-- One row per trial, written with its job in one transaction. job_id NULL once
-- the job is deleted.
CREATE TABLE sweep_trials (
    sweep_id   INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
    trial      INTEGER NOT NULL,
    job_id     INTEGER UNIQUE REFERENCES jobs (id) ON DELETE SET NULL,
    params     TEXT NOT NULL,   -- JSON: the trial's hyperparameters
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (sweep_id, trial)
) WITHOUT ROWID;

-- The metric of a trial at a rung (value NULL: missing or not finite).
CREATE TABLE sweep_results (
    sweep_id   INTEGER NOT NULL,
    trial      INTEGER NOT NULL,
    rung       INTEGER NOT NULL,
    step       INTEGER NOT NULL,
    value      REAL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (sweep_id, trial, rung),
    FOREIGN KEY (sweep_id, trial) REFERENCES sweep_trials (sweep_id, trial) ON DELETE CASCADE
) WITHOUT ROWID;

-- ASHA's decision on a trial at a rung: taken once, in the transaction that
-- moves the trial's job (promote: back to the queue; stop: cancelled).
CREATE TABLE sweep_decisions (
    sweep_id   INTEGER NOT NULL,
    trial      INTEGER NOT NULL,
    rung       INTEGER NOT NULL,
    decision   TEXT NOT NULL CHECK (decision IN ('promote', 'stop')),
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (sweep_id, trial, rung),
    FOREIGN KEY (sweep_id, trial) REFERENCES sweep_trials (sweep_id, trial) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE sweep_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    sweep_id   INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
    type       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX sweep_events_sweep ON sweep_events (sweep_id, id);
