//! Usage events carry their instance's sequence: events recorded before it existed are numbered
//! in the order they were appended, and two events of one instance never share a number.

use feiyun_domain::usage::{Charge, EventKind, UsageEvent};
use feiyun_store::{SqliteStore, Store, StoreError};
use rusqlite::{params, Connection};

/// The schema as version 4 left it.
const UP_TO_4: [&str; 4] = [
    include_str!("../src/migrations/0001_init.sql"),
    include_str!("../src/migrations/0002_deployment_sets.sql"),
    include_str!("../src/migrations/0003_usage_events.sql"),
    include_str!("../src/migrations/0004_billing.sql"),
];

fn old_instance(c: &Connection, id: &str, generation: i64) {
    c.execute(
        "INSERT INTO instances (id, account_id, name, hostname, description, region_id, zone_id, host_id, \
         instance_type, image_id, status, desired, charge_type, tags, created_at, updated_at, generation) \
         VALUES (?1, 'a', 'web', 'web', '', 'r', 'z', 'h', 'ecs.g7.large', 'img', 'Running', 'Running', \
         'PostPaid', '[]', '2027-01-15T08:00:00.000Z', '2027-01-15T08:00:00.000Z', ?2)",
        params![id, generation],
    )
    .expect("instance");
}

fn old_event(c: &Connection, id: &str, kind: &str, at_ms: i64) {
    c.execute(
        "INSERT INTO usage_events (key, instance_id, account_id, instance_type, disk_category, disk_gib, at_s, \
         kind, zone_id, charge) VALUES (?1, ?2, 'a', 'ecs.g7.large', 'cloud_essd', 2, ?3, ?4, 'z', 'PayAsYouGo')",
        params![format!("{id}:{kind}:{at_ms}"), id, at_ms / 1000, kind],
    )
    .expect("event");
}

fn event(id: &str, key: &str, kind: EventKind, seq: u64) -> UsageEvent {
    UsageEvent {
        key: key.into(),
        instance_id: id.into(),
        account_id: "a".into(),
        instance_type: "ecs.g7.large".into(),
        disk_category: "cloud_essd".into(),
        disk_gib: 2,
        zone_id: "z".into(),
        charge: Charge::PayAsYouGo,
        at_s: 1_800_000_100,
        kind,
        seq,
    }
}

/// The reported defect left logs like i-1's: stopped (economical) and started again within one
/// second, appended in that order but read back Start first. The upgrade numbers them in the
/// order they were appended, and raises revisions above those numbers so that the next event of
/// each instance comes after them.
#[test]
fn an_upgrade_numbers_old_events_in_the_order_they_were_appended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    {
        let c = Connection::open(&path).expect("raw");
        for sql in UP_TO_4 {
            c.execute_batch(sql).expect("old schema");
        }
        c.pragma_update(None, "user_version", 4).expect("version");
        c.execute("INSERT INTO accounts (id, name, created_at) VALUES ('a', 'alice', '2027-01-15T08:00:00.000Z')", [])
            .expect("account");
        old_instance(&c, "i-1", 3);
        old_instance(&c, "i-2", 7);
        old_instance(&c, "i-3", 1);
        let t = 1_800_000_000_000;
        old_event(&c, "i-1", "Create", t);
        old_event(&c, "i-2", "Create", t);
        old_event(&c, "i-1", "Start", t + 5);
        old_event(&c, "i-1", "StopCharging", t + 100_400);
        old_event(&c, "i-2", "Start", t + 9);
        old_event(&c, "i-1", "Start", t + 100_700);
    }
    let s = SqliteStore::open(&path).expect("migrates");
    let seqs = |id: &str| -> Vec<(u64, EventKind)> {
        let mut evs: Vec<UsageEvent> =
            s.usage_events(None, 0).expect("usage").into_iter().filter(|e| e.instance_id == id).collect();
        evs.sort_by_key(|e| e.seq);
        evs.iter().map(|e| (e.seq, e.kind)).collect()
    };
    assert_eq!(
        seqs("i-1"),
        vec![(1, EventKind::Create), (2, EventKind::Start), (3, EventKind::StopCharging), (4, EventKind::Start)]
    );
    assert_eq!(seqs("i-2"), vec![(1, EventKind::Create), (2, EventKind::Start)]);
    let revisions: Vec<(String, u64)> =
        s.load().expect("load").instances.into_iter().map(|i| (i.id, i.revision)).collect();
    assert_eq!(
        revisions,
        vec![("i-1".to_string(), 4), ("i-2".to_string(), 7), ("i-3".to_string(), 1)],
        "at or above every number given to the instance's events"
    );
    // Read back in order: by second, then instance, then sequence.
    let order: Vec<(String, u64)> =
        s.usage_events(Some("a"), 0).expect("usage").into_iter().map(|e| (e.instance_id, e.seq)).collect();
    let pairs = |v: &[(&str, u64)]| v.iter().map(|(i, n)| (i.to_string(), *n)).collect::<Vec<_>>();
    assert_eq!(order, pairs(&[("i-1", 1), ("i-1", 2), ("i-2", 1), ("i-2", 2), ("i-1", 3), ("i-1", 4)]));
}

#[test]
fn a_replay_is_ignored_and_a_second_event_with_the_same_sequence_is_refused() {
    let s = SqliteStore::in_memory().expect("open");
    let stop = event("i-1", "i-1:StopCharging:1800000100000:5", EventKind::StopCharging, 5);
    s.put_instances(&[], None, std::slice::from_ref(&stop), &[]).expect("first");
    s.put_instances(&[], None, std::slice::from_ref(&stop), &[]).expect("a replay is not an error");
    let other = event("i-1", "i-1:Start:1800000100000:5", EventKind::Start, 5);
    assert!(matches!(s.put_instances(&[], None, &[other], &[]), Err(StoreError::Backend(_))));
    // Another instance has sequences of its own.
    s.put_instances(&[], None, &[event("i-2", "i-2:Start:1800000100000:5", EventKind::Start, 5)], &[]).expect("i-2");
    let kept: Vec<(String, u64, EventKind)> =
        s.usage_events(None, 0).expect("usage").into_iter().map(|e| (e.instance_id, e.seq, e.kind)).collect();
    assert_eq!(kept, vec![("i-1".to_string(), 5, EventKind::StopCharging), ("i-2".to_string(), 5, EventKind::Start)]);
}
