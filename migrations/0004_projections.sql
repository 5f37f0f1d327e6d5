-- 0004_projections.sql - the 2-D PCA projection of a model version's test-set
-- embeddings that the dashboard draws. Made on the first request for it and
-- kept, since a version never changes; it goes when its version goes.
CREATE TABLE model_projections (
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    data       TEXT NOT NULL, -- the JSON answer of GET .../projection
    PRIMARY KEY (name, version),
    FOREIGN KEY (name, version) REFERENCES model_versions (name, version) ON DELETE CASCADE
) WITHOUT ROWID;
