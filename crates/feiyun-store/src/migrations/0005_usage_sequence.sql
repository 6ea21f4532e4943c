-- Feiyun schema, version 5: an instance's changes are numbered, and each usage event carries the
-- number of the transition it records, so billing follows what happened rather than the clock
-- (several transitions can share a second).
-- The revision is bumped on every persisted change of an instance (it was called generation).
ALTER TABLE instances RENAME COLUMN generation TO revision;
ALTER TABLE usage_events ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
-- Events so far were appended in the order they happened (one instance's transitions are
-- written one after another): number each instance's events 1, 2, ... in that order.
UPDATE usage_events SET seq = numbered.n
FROM (SELECT rowid AS id, row_number() OVER (PARTITION BY instance_id ORDER BY rowid) AS n FROM usage_events) AS numbered
WHERE usage_events.rowid = numbered.id;
-- One transition, one event: two events of an instance never share a number.
CREATE UNIQUE INDEX usage_events_sequence ON usage_events(instance_id, seq);
-- New events are numbered by the instance's revision: keep it at or above every number above.
UPDATE instances SET revision = max(revision, coalesce((SELECT max(seq) FROM usage_events WHERE instance_id = instances.id), 0));
