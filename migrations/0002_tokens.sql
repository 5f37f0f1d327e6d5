-- 0002_tokens.sql - bearer tokens. Only the sha256 (hex) of a token's text is
-- stored; the text is shown once, when the token is created.
CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL CHECK (scope IN ('read', 'write')),
    sha256     TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL
);
