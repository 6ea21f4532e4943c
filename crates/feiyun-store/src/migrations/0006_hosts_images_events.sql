-- Feiyun schema, version 6: hosts join the region over the host protocol, and the image catalog
-- and instances' system events live in the region's store rather than on a host.
CREATE TABLE hosts (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    zone_id              TEXT NOT NULL,
    vcpus                INTEGER NOT NULL,
    memory_mib           INTEGER NOT NULL,
    gpus                 INTEGER NOT NULL,
    local_disk_gib       INTEGER NOT NULL,
    gpu_model            TEXT,
    local_disk_category  TEXT,
    simulated            INTEGER NOT NULL,
    -- Bumped when the host is fenced (its instances evacuated elsewhere).
    epoch                INTEGER NOT NULL,
    draining             INTEGER NOT NULL,
    -- SHA-256 of the host's credential secret; empty for a host recorded before it registered.
    credential_hash      TEXT NOT NULL,
    registered_at        TEXT NOT NULL
);
-- Instances of a region that ran its one host in-process before hosts registered: that host is
-- recorded under the id the instances name, unclaimed (no credential, no capacity) until an agent
-- of that name registers.
INSERT INTO hosts (id, name, zone_id, vcpus, memory_mib, gpus, local_disk_gib, simulated, epoch, draining,
                   credential_hash, registered_at)
SELECT host_id, host_id, zone_id, 0, 0, 0, 0, 0, 1, 0, '', min(created_at)
FROM instances WHERE cleaned = 0 GROUP BY host_id;

CREATE TABLE join_tokens (
    id           TEXT PRIMARY KEY,
    -- SHA-256 of the token's secret.
    secret_hash  TEXT NOT NULL,
    zone_id      TEXT,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);

CREATE TABLE images (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL,
    -- NULL: a system image every account sees.
    owner_account_id  TEXT,
    os_name           TEXT NOT NULL,
    os_type           TEXT NOT NULL,
    architecture      TEXT NOT NULL,
    size_bytes        INTEGER NOT NULL,
    source            TEXT NOT NULL,
    sha256            TEXT,
    created_at        TEXT NOT NULL,
    deleted           INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE system_events (
    id            TEXT PRIMARY KEY,
    instance_id   TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    code          TEXT NOT NULL,
    cycle         TEXT NOT NULL,
    reason        TEXT NOT NULL,
    published_at  TEXT NOT NULL,
    finished_at   TEXT
);
CREATE INDEX system_events_instance ON system_events(instance_id, published_at);
