-- Feiyun schema, version 2: deployment sets.
CREATE TABLE deployment_sets (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0
);

ALTER TABLE instances ADD COLUMN deployment_set_id TEXT;
