//! Tests of the SQLite store.

use super::*;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T05:00:00Z").expect("valid").with_timezone(&Utc)
}

fn account() -> (Account, StoredKey) {
    let a = Account { id: "1000000000000001".into(), name: "alice".into(), created_at: now() };
    let k = StoredKey { id: "LTAIx".into(), account_id: a.id.clone(), sealed_secret: vec![1, 2, 3], enabled: true };
    (a, k)
}

fn instance(id: &str, account: &str) -> Instance {
    Instance {
        id: id.into(),
        account_id: account.into(),
        name: "web".into(),
        hostname: "web-1".into(),
        description: String::new(),
        region_id: "r".into(),
        zone_id: "z".into(),
        host_id: "h".into(),
        instance_type: "ecs.g7.large".into(),
        image_id: "img".into(),
        status: InstanceStatus::Pending,
        desired: PowerState::Running,
        stopped_mode: None,
        charge_type: ChargeType::PrePaid,
        billing: feiyun_domain::instance::Billing {
            expires_at: Some(now()),
            auto_renew_months: Some(1),
            ..Default::default()
        },
        user_data: Some(b"echo hi".to_vec()),
        tags: vec![Tag { key: "env".into(), value: "中文".into() }],
        deployment_set_id: Some("ds-1".into()),
        key_pair_name: None,
        created_at: now(),
        started_at: None,
        updated_at: now(),
        revision: 1,
    }
}

#[test]
fn round_trips_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    let (a, k) = account();
    let mut i = instance("i-1", &a.id);
    {
        let s = SqliteStore::open(&path).expect("open");
        s.create_account(&a, &k).expect("account");
        assert!(matches!(s.create_account(&a, &k), Err(StoreError::NameTaken(_))));
        let tok = TokenRecord {
            account_id: a.id.clone(),
            scope: "RunInstances".into(),
            token: "t".into(),
            fingerprint: "f".into(),
            result: "[\"i-1\"]".into(),
        };
        let ev = create_event(&a.id);
        let paid = LedgerEntry {
            key: "sub:i-1:0".into(),
            account_id: a.id.clone(),
            at_s: 100,
            kind: LedgerKind::Subscription,
            amount_cents: -36_400,
            instance_id: "i-1".into(),
            detail: "1 month".into(),
        };
        let topup = LedgerEntry {
            key: "topup:1".into(),
            kind: LedgerKind::TopUp,
            amount_cents: 100_000,
            at_s: 50,
            instance_id: String::new(),
            ..paid.clone()
        };
        assert_eq!(s.append_ledger(std::slice::from_ref(&topup)).expect("topup"), 1);
        assert_eq!(s.append_ledger(std::slice::from_ref(&topup)).expect("replayed topup"), 0);
        s.put_instances(&[i.clone()], Some(&tok), std::slice::from_ref(&ev), std::slice::from_ref(&paid)).expect("put");
        // The same event and entry again (a replay) are ignored.
        s.put_instances(&[], None, std::slice::from_ref(&ev), std::slice::from_ref(&paid)).expect("idempotent");
        assert_eq!(s.ledger(Some(&a.id)).expect("ledger"), vec![topup, paid]);
        assert_eq!(s.balance_cents(&a.id).expect("balance"), 63_600);
        assert_eq!(s.balance_cents("nobody").expect("balance"), 0);
        let m = SpotMarketPoint { zone_id: "z".into(), at_s: 10, percent: 30 };
        s.put_spot_market(&[m.clone(), SpotMarketPoint { percent: 35, ..m.clone() }]).expect("market");
        assert_eq!(s.spot_market(Some("z")).expect("market"), vec![SpotMarketPoint { percent: 35, ..m }]);
        i.status = InstanceStatus::Running;
        i.started_at = Some(now());
        i.stopped_mode = Some(StoppedMode::KeepCharging);
        i.charge_type = ChargeType::PostPaid; // a conversion
                                              // Writes are revision-checked: the same revision again, or one that skips, is refused
                                              // and changes nothing.
        let stale = i.clone();
        assert!(matches!(s.put_instances(&[stale], None, &[], &[]), Err(StoreError::Exists { .. })));
        let mut skipping = i.clone();
        skipping.revision += 2;
        assert!(matches!(
            s.put_instances(&[skipping], None, &[], &[]),
            Err(StoreError::Conflict { expected: 2, found: 1, .. })
        ));
        i.revision += 1;
        s.put_instances(&[i.clone()], None, &[], &[]).expect("update");
        assert!(matches!(s.put_instances(&[i.clone()], None, &[], &[]), Err(StoreError::Conflict { .. })));
    }
    let s = SqliteStore::open(&path).expect("reopen");
    let l = s.load().expect("load");
    assert_eq!(l.accounts, vec![a.clone()]);
    assert_eq!(l.instances, vec![i.clone()]);
    assert_eq!(l.tokens.len(), 1);
    let usage = s.usage_events(Some(&a.id), 0).expect("usage");
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0], create_event(&a.id));
    assert!(s.usage_events(Some("other"), 0).expect("usage").is_empty());
    assert!(s.usage_events(None, 101).expect("usage").is_empty());
    assert_eq!(s.access_key("LTAIx").expect("q"), Some(k.clone()));
    assert_eq!(s.account_keys(&a.id).expect("q"), vec![k]);
    assert_eq!(s.account_by_name("alice").expect("q").map(|a| a.id), Some(a.id.clone()));
    s.mark_cleaned("i-1").expect("clean");
    assert!(s.load().expect("load").instances.is_empty());
}

fn create_event(account: &str) -> UsageEvent {
    UsageEvent {
        key: "i-1:Create:0".into(),
        instance_id: "i-1".into(),
        account_id: account.into(),
        instance_type: "ecs.g7.large".into(),
        disk_category: "cloud_essd".into(),
        disk_gib: 1,
        zone_id: "z".into(),
        charge: Charge::Subscription,
        at_s: 100,
        kind: EventKind::Create,
        seq: 1,
    }
}

#[test]
fn invocations_round_trip() {
    let s = SqliteStore::in_memory().expect("open");
    let v = Invocation {
        id: "t-1".into(),
        account_id: "a".into(),
        command_id: "c-1".into(),
        command_name: "n".into(),
        command_content: b"hostname".to_vec(),
        timeout_s: 60,
        created_at: now(),
        runs: vec![InvocationRun {
            instance_id: "i-1".into(),
            status: RunStatus::Success,
            exit_code: Some(0),
            output: b"host\n".to_vec(),
            dropped: 0,
            error_code: String::new(),
            error_info: String::new(),
            start_time: Some(now()),
            finish_time: Some(now()),
        }],
    };
    s.put_invocation(&v).expect("put");
    s.put_invocation(&v).expect("idempotent");
    assert_eq!(s.load().expect("load").invocations, vec![v]);
}

#[test]
fn upgrades_a_version_1_database_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    {
        let c = Connection::open(&path).expect("raw");
        c.execute_batch(MIGRATIONS[0]).expect("v1 schema");
        c.pragma_update(None, "user_version", 1).expect("version");
        c.execute("INSERT INTO accounts (id, name, created_at) VALUES ('a', 'alice', '2026-11-23T05:00:00.000Z')", [])
            .expect("account");
        c.execute(
            "INSERT INTO instances (id, account_id, name, hostname, description, region_id, zone_id, host_id, \
             instance_type, image_id, status, desired, charge_type, tags, created_at, updated_at, generation) \
             VALUES ('i-1', 'a', 'web', 'web', '', 'r', 'z', 'h', 'ecs.g7.large', 'img', 'Running', 'Running', \
             'PostPaid', '[]', '2026-11-23T05:00:00.000Z', '2026-11-23T05:00:00.000Z', 3)",
            [],
        )
        .expect("instance");
    }
    let s = SqliteStore::open(&path).expect("migrates");
    let l = s.load().expect("load");
    assert_eq!(l.instances.len(), 1);
    assert_eq!(l.instances[0].deployment_set_id, None);
    assert_eq!(l.instances[0].revision, 3);
    assert!(l.deployment_sets.is_empty());
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    drop(SqliteStore::open(&path).expect("open"));
    let c = Connection::open(&path).expect("raw");
    c.pragma_update(None, "user_version", 99).expect("bump");
    drop(c);
    assert!(matches!(SqliteStore::open(&path), Err(StoreError::TooNew { found: 99, .. })));
}

#[test]
fn hosts_tokens_images_and_events_round_trip() {
    use feiyun_domain::event::{EventCycle, EventKind, SystemEvent};
    use feiyun_domain::host::{Host, JoinToken};
    use feiyun_domain::image::Image;
    let s = SqliteStore::in_memory().expect("open");
    let mut host = Host {
        id: "h-1".into(),
        name: "rack1-node1".into(),
        zone_id: "z-a".into(),
        capacity: feiyun_domain::Resources { vcpus: 64, memory_mib: 1024, gpus: 0, local_disk_gib: 0 },
        gpu_model: None,
        local_disk_category: None,
        simulated: true,
        epoch: 1,
        draining: false,
        credential_hash: "ab".into(),
        registered_at: now(),
        net_prefix: String::new(),
        underlay_ip: None,
    };
    let mut token = JoinToken {
        id: "jt-1".into(),
        secret_hash: "cd".into(),
        zone_id: Some("z-a".into()),
        created_at: now(),
        revoked_at: None,
    };
    let image = Image::builtin(now());
    let (a, k) = account();
    s.create_account(&a, &k).expect("account");
    let mut event = SystemEvent {
        id: "e-1".into(),
        instance_id: "i-1".into(),
        account_id: a.id.clone(),
        kind: EventKind::HostUnreachable,
        cycle: EventCycle::Executing,
        reason: "host h-1 stopped answering".into(),
        published_at: now(),
        finished_at: None,
    };
    let writes = WriteSet {
        hosts: std::slice::from_ref(&host),
        join_tokens: std::slice::from_ref(&token),
        images: std::slice::from_ref(&image),
        events: std::slice::from_ref(&event),
        ..Default::default()
    };
    s.commit(&writes).expect("commit");
    let l = s.load().expect("load");
    assert_eq!(l.hosts, vec![host.clone()]);
    assert_eq!(l.join_tokens, vec![token.clone()]);
    assert_eq!(l.images, vec![image]);
    assert_eq!(l.open_events, vec![event.clone()]);
    host.epoch = 2;
    host.draining = true;
    token.revoked_at = Some(now());
    event.cycle = EventCycle::Executed;
    event.finished_at = Some(now());
    s.commit(&WriteSet {
        hosts: std::slice::from_ref(&host),
        join_tokens: std::slice::from_ref(&token),
        events: std::slice::from_ref(&event),
        ..Default::default()
    })
    .expect("update");
    let l = s.load().expect("load");
    assert_eq!(l.hosts, vec![host]);
    assert_eq!(l.join_tokens, vec![token]);
    assert!(l.open_events.is_empty(), "finished events are not loaded");
    assert_eq!(s.system_events(&a.id, Some("i-1")).expect("events"), vec![event.clone()]);
    assert_eq!(s.system_events(&a.id, None).expect("events"), vec![event]);
    assert!(s.system_events("other", None).expect("events").is_empty());
}

#[test]
fn hosts_of_a_one_machine_region_are_recorded_on_upgrade() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    let (a, k) = account();
    {
        let s = SqliteStore::open(&path).expect("open");
        s.create_account(&a, &k).expect("account");
        s.put_instances(&[instance("i-1", &a.id)], None, &[], &[]).expect("put");
        // Pretend the database is at version 5, before hosts registered (and networks and storage
        // existed).
        let conn = s.lock();
        conn.execute_batch(
            "DROP TABLE storage_usage; DROP TABLE image_shares; DROP TABLE image_states; DROP TABLE key_pairs; \
             DROP TABLE snapshots; DROP TABLE disks; ALTER TABLE instances DROP COLUMN key_pair_name; \
             DROP TABLE traffic_usage; DROP TABLE traffic_counters; DROP TABLE public_ips; \
             DROP TABLE security_group_members; DROP TABLE instance_nics; DROP TABLE security_group_rules; \
             DROP TABLE security_groups; DROP TABLE vswitches; DROP TABLE vpcs; \
             DROP TABLE hosts; DROP TABLE join_tokens; DROP TABLE images; DROP TABLE system_events; \
             PRAGMA user_version = 5;",
        )
        .expect("downgrade");
    }
    let s = SqliteStore::open(&path).expect("upgrade");
    let hosts = s.load().expect("load").hosts;
    assert_eq!(hosts.len(), 1);
    let i = instance("i-1", &a.id);
    assert_eq!((hosts[0].id.as_str(), hosts[0].name.as_str()), (i.host_id.as_str(), i.host_id.as_str()));
    assert!(hosts[0].credential_hash.is_empty(), "unclaimed until its agent registers");
}

#[test]
fn commits_from_many_threads_share_syncs_and_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    let (a, k) = account();
    {
        let s = std::sync::Arc::new(SqliteStore::open(&path).expect("open"));
        s.create_account(&a, &k).expect("account");
        let before = s.syncs();
        let start = s.last_commit().0;
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let s = s.clone();
                let account = a.id.clone();
                std::thread::spawn(move || {
                    for n in 0..40 {
                        let i = instance(&format!("i-{t}-{n}"), &account);
                        let pos = s
                            .commit_ordered(&WriteSet { instances: std::slice::from_ref(&i), ..Default::default() })
                            .expect("ordered");
                        s.wait_durable(pos).expect("durable");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(s.last_commit(), CommitPos(start + 320), "one position per commit");
        let syncs = s.syncs() - before;
        assert!((1..=320).contains(&syncs), "{syncs} syncs for 320 commits");
        // A conflicting write waited for fails alone, and the store goes on.
        let stale = instance("i-0-0", &a.id);
        let conflict = s.commit(&WriteSet { instances: std::slice::from_ref(&stale), ..Default::default() });
        assert!(matches!(conflict, Err(StoreError::Exists { .. })), "{conflict:?}");
        let next = instance("i-next", &a.id);
        s.commit(&WriteSet { instances: std::slice::from_ref(&next), ..Default::default() }).expect("usable");
    }
    let s = SqliteStore::open(&path).expect("reopen");
    assert_eq!(s.load().expect("load").instances.len(), 321);
}

#[test]
fn checkpoints_keep_the_log_bounded_without_the_committer_doing_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    let wal = dir.path().join("db.sqlite-wal");
    let (a, k) = account();
    let s = SqliteStore::open(&path).expect("open");
    s.create_account(&a, &k).expect("account");
    let auto: i64 = s.lock().query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)).expect("pragma");
    assert_eq!(auto, 0, "the committing connection never checkpoints itself");
    let mut largest = 0;
    for n in 0..12_000 {
        let mut i = instance(&format!("i-{n}"), &a.id);
        i.user_data = Some(vec![b'x'; 2048]);
        let pos = s.commit_ordered(&WriteSet { instances: std::slice::from_ref(&i), ..Default::default() });
        if n % 64 == 63 {
            s.wait_durable(pos.expect("ordered")).expect("durable");
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
    }
    // Without checkpoints the log would hold every page written: 12,000 instances of over
    // 2 KiB each, over 100 MiB.
    assert!(largest < 48 << 20, "the log reached {largest} bytes");
    drop(s);
    let s = SqliteStore::open(&path).expect("reopen");
    assert_eq!(s.load().expect("load").instances.len(), 12_000);
}

#[test]
fn the_committed_ledger_has_what_other_processes_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    let (a, k) = account();
    let region = SqliteStore::open(&path).expect("open");
    region.create_account(&a, &k).expect("account");
    assert!(region.ledger_committed(&a.id).expect("ledger").is_empty());
    let entry = |key: &str, cents| LedgerEntry {
        key: key.into(),
        account_id: a.id.clone(),
        at_s: 10,
        kind: LedgerKind::TopUp,
        amount_cents: cents,
        instance_id: String::new(),
        detail: String::new(),
    };
    // The region's own write, answered: in the committed ledger.
    region.append_ledger(&[entry("topup:1", 100)]).expect("own");
    // A top-up from the command line, a store of its own on the same file.
    SqliteStore::open(&path).expect("cli").append_ledger(&[entry("topup:2", 50)]).expect("cli top-up");
    let keys: Vec<String> = region.ledger_committed(&a.id).expect("ledger").into_iter().map(|e| e.key).collect();
    assert_eq!(keys, ["topup:1", "topup:2"]);
    assert_eq!(region.ledger_committed(&a.id).expect("ledger"), region.ledger(Some(&a.id)).expect("ledger"));
}
