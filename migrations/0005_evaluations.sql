-- 0005_evaluations.sql - results of evaluation jobs ("kind": "evaluate"): the
-- paper's measures of a model version (probes, SVM, NDM, MINE, reconstruction).
-- They belong to the version (and go with it); job_id is the job that measured,
-- NULL once that job is deleted.
CREATE TABLE model_evaluations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    job_id     INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    created_ms INTEGER NOT NULL,
    results    TEXT NOT NULL, -- JSON: the measures, their figures and seconds
    grid       BLOB,          -- PNG: originals over reconstructions, NULL without recon
    FOREIGN KEY (name, version) REFERENCES model_versions (name, version) ON DELETE CASCADE
);
CREATE INDEX model_evaluations_version ON model_evaluations (name, version, id);
CREATE INDEX model_evaluations_job ON model_evaluations (job_id);
