-- Feiyun schema, version 3: the append-only usage log billing is derived from.
CREATE TABLE usage_events (
    key            TEXT PRIMARY KEY,
    instance_id    TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    instance_type  TEXT NOT NULL,
    disk_category  TEXT NOT NULL,
    disk_gib       INTEGER NOT NULL,
    at_s           INTEGER NOT NULL,
    kind           TEXT NOT NULL
);
CREATE INDEX usage_events_account ON usage_events(account_id, at_s);
