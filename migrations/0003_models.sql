-- 0003_models.sql - models: named, immutable versions promoted from checkpoints,
-- each with its own copy of the checkpoint (inference-only) and the neighbours
-- index of its training set's embeddings.

-- One row per model name. next_version is the number the next version gets, so
-- a version number is never reused, even after the newest version was deleted.
CREATE TABLE models (
    name         TEXT PRIMARY KEY,
    next_version INTEGER NOT NULL DEFAULT 1,
    created_ms   INTEGER NOT NULL
);

-- One row per version. job_id is the source job, NULL once that job is deleted:
-- a version owns its bytes and outlives the job and its checkpoints. The blobs
-- come last (checkpoint bytes the very last), so reading the metadata never
-- touches their overflow pages. index_vectors: index_images x index_dim float32;
-- index_labels: index_images uint16 (both little-endian, NULL when there is no
-- index).
CREATE TABLE model_versions (
    name          TEXT NOT NULL REFERENCES models (name) ON DELETE CASCADE,
    version       INTEGER NOT NULL CHECK (version >= 1),
    job_id        INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    step          INTEGER NOT NULL,
    source_sha256 TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    pinned        INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
    info          TEXT NOT NULL DEFAULT '{}',
    metrics       TEXT NOT NULL DEFAULT '{}',
    index_images  INTEGER NOT NULL DEFAULT 0,
    index_dim     INTEGER NOT NULL DEFAULT 0,
    index_vectors BLOB,
    index_labels  BLOB,
    data          BLOB NOT NULL,
    PRIMARY KEY (name, version)
);
-- Deleting a job sets its versions' job_id to NULL: without this index every
-- job delete would scan model_versions.
CREATE INDEX model_versions_job ON model_versions (job_id);
