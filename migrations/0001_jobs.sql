-- 0001_jobs.sql - jobs, their attempts, metrics, checkpoints, events and
-- idempotency keys. Applied once, in a transaction, by server/store.c (which sets
-- PRAGMA auto_vacuum = INCREMENTAL before this creates the first table). Never
-- edit a landed migration: add the next numbered file instead.

-- One row per submitted job. AUTOINCREMENT: ids of deleted jobs are never
-- reused (they appear in URLs, events and clients' caches).
CREATE TABLE jobs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    state             TEXT NOT NULL CHECK (state IN ('QUEUED', 'RUNNING', 'PAUSED',
                                                     'SUCCEEDED', 'FAILED', 'CANCELLED')),
    name              TEXT,
    spec_json         TEXT NOT NULL,
    created_ms        INTEGER NOT NULL,
    started_ms        INTEGER NOT NULL DEFAULT 0,
    finished_ms       INTEGER NOT NULL DEFAULT 0,
    updated_ms        INTEGER NOT NULL,
    step              INTEGER NOT NULL DEFAULT 0,
    total_steps       INTEGER NOT NULL DEFAULT 0,
    images_per_second REAL NOT NULL DEFAULT 0,
    attempts          INTEGER NOT NULL DEFAULT 0,
    restarts          INTEGER NOT NULL DEFAULT 0,
    error_code        TEXT,
    error_message     TEXT
);
-- Claim (oldest QUEUED), queue depth and listing by state.
CREATE INDEX jobs_state ON jobs (state, id);

-- One row per claim of a job by a worker. outcome: the state the attempt left
-- the job in ('SUCCEEDED', 'FAILED', 'QUEUED', 'CANCELLED', 'PAUSED') or
-- 'restart' when the daemon died during it; NULL while it runs.
CREATE TABLE attempts (
    job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    started_ms  INTEGER NOT NULL,
    finished_ms INTEGER NOT NULL DEFAULT 0,
    outcome     TEXT,
    PRIMARY KEY (job_id, attempt)
) WITHOUT ROWID;

-- Metric points. value NULL is NaN; infinities are stored as REAL.
CREATE TABLE metrics (
    job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    step    INTEGER NOT NULL,
    value   REAL,
    wall_ms INTEGER NOT NULL,
    PRIMARY KEY (job_id, key, step)
) WITHOUT ROWID;

-- Checkpoints: the bytes and their metadata in one row, so they commit together.
-- data is the last column so reading the metadata never touches its pages.
CREATE TABLE checkpoints (
    id         INTEGER PRIMARY KEY,
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step       INTEGER NOT NULL,
    bytes      INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    metrics    TEXT NOT NULL DEFAULT '{}',
    created_ms INTEGER NOT NULL,
    data       BLOB NOT NULL,
    UNIQUE (job_id, step)
);

-- The event log behind SSE. AUTOINCREMENT: an id is never reused, even after
-- its job (and so the newest events) were deleted, so Last-Event-ID stays safe.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    type       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX events_job ON events (job_id, id);

-- Idempotency-Key of POST /v1/jobs: the request body's sha256 and the job it made.
CREATE TABLE idempotency (
    key         TEXT PRIMARY KEY,
    body_sha256 TEXT NOT NULL,
    job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    created_ms  INTEGER NOT NULL
);
CREATE INDEX idempotency_job ON idempotency (job_id);
