-- Feiyun schema, version 7: VPC networking. Addresses are allocated here, in the same
-- transaction as the instance they belong to; the unique constraints are the last word on who
-- holds what.

-- The host's network name prefix (unique once given) and its underlay address.
ALTER TABLE hosts ADD COLUMN net_prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN underlay_ip TEXT;
CREATE UNIQUE INDEX hosts_net_prefix ON hosts(net_prefix) WHERE net_prefix <> '';

CREATE TABLE vpcs (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    cidr          TEXT NOT NULL,
    -- VXLAN network identifier: one per VPC in the region.
    vni           INTEGER NOT NULL UNIQUE,
    is_default    INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    available_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX vpcs_default ON vpcs(account_id) WHERE is_default = 1;

CREATE TABLE vswitches (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL,
    vpc_id        TEXT NOT NULL REFERENCES vpcs(id),
    zone_id       TEXT NOT NULL,
    cidr          TEXT NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    is_default    INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    available_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX vswitches_default ON vswitches(vpc_id, zone_id) WHERE is_default = 1;

CREATE TABLE security_groups (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL,
    vpc_id        TEXT NOT NULL REFERENCES vpcs(id),
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    -- Basic | Enterprise
    kind          TEXT NOT NULL,
    -- Accept | Drop
    inner_access  TEXT NOT NULL,
    is_default    INTEGER NOT NULL,
    created_at    TEXT NOT NULL
);

-- A group's rules are rewritten whole with the group.
CREATE TABLE security_group_rules (
    id            TEXT PRIMARY KEY,
    group_id      TEXT NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    direction     TEXT NOT NULL,
    policy        TEXT NOT NULL,
    priority      INTEGER NOT NULL,
    protocol      TEXT NOT NULL,
    port_from     INTEGER,
    port_to       INTEGER,
    -- Exactly one of the two.
    peer_cidr     TEXT,
    peer_group    TEXT,
    description   TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX security_group_rules_group ON security_group_rules(group_id, position);

-- An instance's network interface; removed when the instance is released (its address is free
-- again).
CREATE TABLE instance_nics (
    instance_id      TEXT PRIMARY KEY REFERENCES instances(id),
    account_id       TEXT NOT NULL,
    vpc_id           TEXT NOT NULL REFERENCES vpcs(id),
    vswitch_id       TEXT NOT NULL REFERENCES vswitches(id),
    private_ip       TEXT NOT NULL,
    mac              TEXT NOT NULL,
    eni_id           TEXT NOT NULL UNIQUE,
    bandwidth_out    INTEGER NOT NULL,
    internet_charge  TEXT NOT NULL,
    UNIQUE (vpc_id, private_ip)
);

CREATE TABLE security_group_members (
    instance_id  TEXT NOT NULL REFERENCES instance_nics(instance_id) ON DELETE CASCADE,
    group_id     TEXT NOT NULL REFERENCES security_groups(id),
    position     INTEGER NOT NULL,
    PRIMARY KEY (instance_id, group_id)
);
CREATE INDEX security_group_members_group ON security_group_members(group_id);

-- Addresses of the region's public pool held by accounts: elastic IP addresses and the public
-- addresses instances got at creation.
CREATE TABLE public_ips (
    allocation_id    TEXT PRIMARY KEY,
    ip               TEXT NOT NULL UNIQUE,
    account_id       TEXT NOT NULL,
    -- Eip | Instance
    kind             TEXT NOT NULL,
    instance_id      TEXT,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL,
    bandwidth        INTEGER NOT NULL,
    internet_charge  TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE UNIQUE INDEX public_ips_instance ON public_ips(instance_id) WHERE instance_id IS NOT NULL;

-- The last absolute public traffic counters a host reported per instance.
CREATE TABLE traffic_counters (
    instance_id  TEXT PRIMARY KEY,
    host_id      TEXT NOT NULL,
    in_bytes     INTEGER NOT NULL,
    out_bytes    INTEGER NOT NULL,
    seq          INTEGER NOT NULL
);

-- Append-only: public traffic between two readings, keyed by instance and reading.
CREATE TABLE traffic_usage (
    key          TEXT PRIMARY KEY,
    instance_id  TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    at_s         INTEGER NOT NULL,
    in_bytes     INTEGER NOT NULL,
    out_bytes    INTEGER NOT NULL
);
CREATE INDEX traffic_usage_account ON traffic_usage(account_id, at_s);
