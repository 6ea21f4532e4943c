-- Feiyun schema, version 1.
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

-- Secrets are sealed (AEAD) by the control plane before they reach the store.
CREATE TABLE access_keys (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    sealed_secret  BLOB NOT NULL,
    enabled        INTEGER NOT NULL,
    created_at     TEXT NOT NULL
);

CREATE TABLE instances (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    name           TEXT NOT NULL,
    hostname       TEXT NOT NULL,
    description    TEXT NOT NULL,
    region_id      TEXT NOT NULL,
    zone_id        TEXT NOT NULL,
    host_id        TEXT NOT NULL,
    instance_type  TEXT NOT NULL,
    image_id       TEXT NOT NULL,
    status         TEXT NOT NULL,
    desired        TEXT NOT NULL,
    stopped_mode   TEXT,
    charge_type    TEXT NOT NULL,
    user_data      BLOB,
    tags           TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    started_at     TEXT,
    updated_at     TEXT NOT NULL,
    generation     INTEGER NOT NULL,
    -- Set once the host has removed everything the instance had (released instances only).
    cleaned        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX instances_account ON instances(account_id);

-- Idempotency records: the first response to a ClientToken, replayed for identical retries.
CREATE TABLE client_tokens (
    account_id   TEXT NOT NULL,
    scope        TEXT NOT NULL,
    token        TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    result       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (account_id, scope, token)
);

CREATE TABLE commands (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    content      BLOB NOT NULL,
    working_dir  TEXT NOT NULL,
    timeout_s    INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    ephemeral    INTEGER NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE invocations (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL,
    command_id       TEXT NOT NULL,
    command_name     TEXT NOT NULL,
    command_content  BLOB NOT NULL,
    timeout_s        INTEGER NOT NULL,
    created_at       TEXT NOT NULL
);

CREATE TABLE invocation_runs (
    invocation_id  TEXT NOT NULL REFERENCES invocations(id),
    instance_id    TEXT NOT NULL,
    status         TEXT NOT NULL,
    exit_code      INTEGER,
    output         BLOB NOT NULL,
    dropped        INTEGER NOT NULL,
    error_code     TEXT NOT NULL,
    error_info     TEXT NOT NULL,
    start_time     TEXT,
    finish_time    TEXT,
    PRIMARY KEY (invocation_id, instance_id)
);
