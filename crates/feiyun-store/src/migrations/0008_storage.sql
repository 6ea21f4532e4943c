-- Feiyun schema, version 8: block storage (disks and their snapshots), the images accounts make
-- or import and who they are shared with, SSH key pairs, and the usage log of storage billed on
-- its own (data disks, snapshots).

-- The key pair whose public key an instance gets.
ALTER TABLE instances ADD COLUMN key_pair_name TEXT;

-- Disks, system and data; released ones stay with status Deleted. Written revision-checked, as
-- instances are.
CREATE TABLE disks (
    id                    TEXT PRIMARY KEY,
    account_id            TEXT NOT NULL,
    region_id             TEXT NOT NULL,
    zone_id               TEXT NOT NULL,
    name                  TEXT NOT NULL,
    description           TEXT NOT NULL,
    category              TEXT NOT NULL,
    -- system | data
    kind                  TEXT NOT NULL,
    size_gib              INTEGER NOT NULL,
    source_snapshot_id    TEXT,
    image_id              TEXT,
    status                TEXT NOT NULL,
    instance_id           TEXT,
    device                TEXT,
    delete_with_instance  INTEGER NOT NULL,
    delete_auto_snapshot  INTEGER NOT NULL,
    -- The host holding its data (where it was last attached); NULL before its first attach.
    host_id               TEXT,
    -- What a host new to the disk makes it from: Empty | Snapshot (origin_id) | Blob (a disk
    -- blob: origin_id, origin_sha256, origin_size).
    origin_kind           TEXT NOT NULL,
    origin_id             TEXT,
    origin_sha256         TEXT,
    origin_size           INTEGER,
    made                  INTEGER NOT NULL,
    -- A move of its data to another host under way.
    transfer_host         TEXT,
    transfer_blob         TEXT,
    transfer_task         TEXT,
    created_at            TEXT NOT NULL,
    attached_at           TEXT,
    detached_at           TEXT,
    updated_at            TEXT NOT NULL,
    revision              INTEGER NOT NULL
);
CREATE INDEX disks_account ON disks(account_id);
-- A device name is one disk's on an instance.
CREATE UNIQUE INDEX disks_device ON disks(instance_id, device) WHERE instance_id IS NOT NULL AND status <> 'Deleted';

CREATE TABLE snapshots (
    id                TEXT PRIMARY KEY,
    account_id        TEXT NOT NULL,
    region_id         TEXT NOT NULL,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL,
    disk_id           TEXT NOT NULL,
    disk_kind         TEXT NOT NULL,
    disk_category     TEXT NOT NULL,
    source_disk_gib   INTEGER NOT NULL,
    status            TEXT NOT NULL,
    host_id           TEXT NOT NULL,
    size_bytes        INTEGER NOT NULL,
    blob_sha256       TEXT,
    blob_size         INTEGER,
    failure           TEXT,
    created_at        TEXT NOT NULL,
    finished_at       TEXT,
    updated_at        TEXT NOT NULL,
    revision          INTEGER NOT NULL
);
CREATE INDEX snapshots_account ON snapshots(account_id);

CREATE TABLE key_pairs (
    account_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    id           TEXT NOT NULL UNIQUE,
    fingerprint  TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
);

-- Images an account made (CreateImage) or imported (ImportImage), beside their catalog entry.
CREATE TABLE image_states (
    image_id     TEXT PRIMARY KEY REFERENCES images(id),
    status       TEXT NOT NULL,
    progress     INTEGER NOT NULL,
    origin_kind  TEXT NOT NULL,
    origin_id    TEXT NOT NULL,
    failure      TEXT,
    task_id      TEXT,
    updated_at   TEXT NOT NULL
);

-- Accounts an image is shared with; rewritten whole with its image's state.
CREATE TABLE image_shares (
    image_id    TEXT NOT NULL REFERENCES images(id),
    account_id  TEXT NOT NULL,
    shared_at   TEXT NOT NULL,
    PRIMARY KEY (image_id, account_id)
);

-- Append-only: data disks and snapshots, each change keyed and numbered by the resource's
-- revision.
CREATE TABLE storage_usage (
    key          TEXT PRIMARY KEY,
    resource_id  TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    item         TEXT NOT NULL,
    category     TEXT NOT NULL,
    gib          INTEGER NOT NULL,
    zone_id      TEXT NOT NULL,
    at_s         INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    seq          INTEGER NOT NULL
);
CREATE INDEX storage_usage_account ON storage_usage(account_id, at_s);
CREATE UNIQUE INDEX storage_usage_sequence ON storage_usage(resource_id, seq);
