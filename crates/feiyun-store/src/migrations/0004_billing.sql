-- Feiyun schema, version 4: balances, subscriptions and spot.
-- Commercial state of an instance (spot bid, subscription term, platform locks), as JSON.
ALTER TABLE instances ADD COLUMN billing TEXT NOT NULL DEFAULT '{}';
-- Usage is charged by charge type; spot prices are per zone.
ALTER TABLE usage_events ADD COLUMN zone_id TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_events ADD COLUMN charge TEXT NOT NULL DEFAULT 'PayAsYouGo';
-- The append-only ledger: the balance of an account is the sum of its amounts.
CREATE TABLE ledger (
    key           TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL,
    at_s          INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    amount_cents  INTEGER NOT NULL,
    instance_id   TEXT NOT NULL DEFAULT '',
    detail        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ledger_account ON ledger(account_id, at_s);
-- Spot market history: from at_s on, spot prices in the zone are percent of pay-as-you-go.
CREATE TABLE spot_market (
    zone_id  TEXT NOT NULL,
    at_s     INTEGER NOT NULL,
    percent  INTEGER NOT NULL,
    PRIMARY KEY (zone_id, at_s)
);
