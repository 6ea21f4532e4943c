//! Group commit: concurrent changes share commits of the store, nothing is visible or
//! acknowledged before it is durable, and a change whose write fails leaves the others of its
//! group alone and gives back what it reserved.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use common::{host_spec, spec, ManualClock, CATALOG, PRICES};
use feiyun_control::{ControlPlane, HostsSetup, Parts, RegionSetup, Sealer};
use feiyun_domain::account::Account;
use feiyun_domain::assistant::{Command, Invocation};
use feiyun_domain::catalog::Catalog;
use feiyun_domain::deployment::DeploymentSet;
use feiyun_domain::event::SystemEvent;
use feiyun_domain::image::{Image, ImageSource};
use feiyun_domain::ops::{ClientToken, InstanceFilter, Purchase};
use feiyun_domain::region::{Region, Zone};
use feiyun_domain::usage::{LedgerEntry, SpotMarketPoint, UsageEvent};
use feiyun_domain::DomainError;
use feiyun_hostproto::{Credential, Heartbeat};
use feiyun_store::{Loaded, SqliteStore, Store, StoreError, StoredKey, WriteSet};

/// A SQLite store that counts group commits, takes its time over each (as a sync to disk does),
/// can hold a commit until the test lets it go, and refuses write sets naming a doomed instance.
struct Slow {
    inner: SqliteStore,
    groups: AtomicUsize,
    sets: AtomicUsize,
    delay: Duration,
    /// Once set, the next group commit says it started, then waits for a go.
    gate: Mutex<Option<(Sender<()>, Receiver<()>)>>,
    /// Ledger reads: every create reads it just before it queues its change.
    ledger_reads: AtomicUsize,
}

const DOOMED: &str = "doomed";

impl Store for Slow {
    fn commit_group(&self, sets: &[WriteSet<'_>]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        self.groups.fetch_add(1, Ordering::SeqCst);
        self.sets.fetch_add(sets.len(), Ordering::SeqCst);
        let gate = self.gate.lock().expect("gate").take();
        if let Some((started, go)) = gate {
            started.send(()).expect("started");
            go.recv().expect("go");
        }
        std::thread::sleep(self.delay);
        let doomed = |w: &WriteSet<'_>| w.instances.iter().any(|i| i.name == DOOMED);
        let kept: Vec<WriteSet<'_>> = sets.iter().filter(|w| !doomed(w)).map(|w| copy(w)).collect();
        let mut written = self.inner.commit_group(&kept)?.into_iter();
        Ok(sets
            .iter()
            .map(|w| if doomed(w) { Err(StoreError::Backend("disk full".into())) } else { written.next().expect("n") })
            .collect())
    }
    fn load(&self) -> Result<Loaded, StoreError> {
        self.inner.load()
    }
    fn create_account(&self, a: &Account, k: &StoredKey) -> Result<(), StoreError> {
        self.inner.create_account(a, k)
    }
    fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError> {
        self.inner.account_by_name(name)
    }
    fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        self.inner.account(id)
    }
    fn access_key(&self, id: &str) -> Result<Option<StoredKey>, StoreError> {
        self.inner.access_key(id)
    }
    fn account_keys(&self, id: &str) -> Result<Vec<StoredKey>, StoreError> {
        self.inner.account_keys(id)
    }
    fn commit(&self, w: &WriteSet<'_>) -> Result<(), StoreError> {
        self.inner.commit(w)
    }
    fn system_events(&self, a: &str, i: Option<&str>) -> Result<Vec<SystemEvent>, StoreError> {
        self.inner.system_events(a, i)
    }
    fn append_ledger(&self, e: &[LedgerEntry]) -> Result<usize, StoreError> {
        self.inner.append_ledger(e)
    }
    fn ledger(&self, a: Option<&str>) -> Result<Vec<LedgerEntry>, StoreError> {
        self.ledger_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.ledger(a)
    }
    fn balance_cents(&self, a: &str) -> Result<i64, StoreError> {
        self.inner.balance_cents(a)
    }
    fn put_spot_market(&self, p: &[SpotMarketPoint]) -> Result<(), StoreError> {
        self.inner.put_spot_market(p)
    }
    fn spot_market(&self, z: Option<&str>) -> Result<Vec<SpotMarketPoint>, StoreError> {
        self.inner.spot_market(z)
    }
    fn usage_events(&self, a: Option<&str>, s: i64) -> Result<Vec<UsageEvent>, StoreError> {
        self.inner.usage_events(a, s)
    }
    fn mark_cleaned(&self, id: &str) -> Result<(), StoreError> {
        self.inner.mark_cleaned(id)
    }
    fn put_command(&self, c: &Command) -> Result<(), StoreError> {
        self.inner.put_command(c)
    }
    fn delete_command(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete_command(id)
    }
    fn put_invocation(&self, v: &Invocation) -> Result<(), StoreError> {
        self.inner.put_invocation(v)
    }
    fn put_deployment_set(&self, d: &DeploymentSet) -> Result<(), StoreError> {
        self.inner.put_deployment_set(d)
    }
    fn delete_deployment_set(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete_deployment_set(id)
    }
}

fn copy<'a>(w: &WriteSet<'a>) -> WriteSet<'a> {
    WriteSet {
        instances: w.instances,
        token: w.token,
        usage: w.usage,
        ledger: w.ledger,
        hosts: w.hosts,
        join_tokens: w.join_tokens,
        images: w.images,
        events: w.events,
        cleaned: w.cleaned,
    }
}

/// A region over a `Slow` store in `dir` with one host `h` of 256 vCPUs (128 `ecs.g7.large`).
/// Also returns the host's credential and an account.
fn region(dir: &std::path::Path, delay: Duration) -> (Arc<ControlPlane>, Arc<Slow>, Credential, String) {
    let clock = Arc::new(ManualClock(Mutex::new(chrono::Utc::now())));
    let store = Arc::new(Slow {
        inner: SqliteStore::open(&dir.join("db")).expect("store"),
        groups: AtomicUsize::new(0),
        sets: AtomicUsize::new(0),
        delay,
        gate: Mutex::new(None),
        ledger_reads: AtomicUsize::new(0),
    });
    let image = Image {
        id: "img".into(),
        name: "test".into(),
        description: String::new(),
        owner_account_id: None,
        os_name: "linux".into(),
        os_type: "linux".into(),
        architecture: "x86_64".into(),
        size_bytes: 1 << 30,
        source: ImageSource::Region,
        sha256: Some("00".into()),
        created_at: chrono::Utc::now(),
    };
    store.commit(&WriteSet { images: std::slice::from_ref(&image), ..Default::default() }).expect("image");
    let cp = ControlPlane::new(Parts {
        store: store.clone(),
        catalog: Catalog::from_toml(CATALOG).expect("catalog"),
        setup: RegionSetup {
            region: Region {
                id: "r".into(),
                local_name: "r".into(),
                zones: vec![Zone { id: "z".into(), local_name: "z".into() }],
            },
            hosts: HostsSetup::default(),
            stop_grace: Duration::ZERO,
            policy: feiyun_scheduler::cluster::Policy::Feiyun,
            billing: Default::default(),
        },
        image_dir: None,
        clock,
        sealer: Sealer::from_key([1; 32]),
        prices: feiyun_billing::prices::PriceBook::from_toml(&PRICES.replace("cn-local", "r")).expect("prices"),
        seed: Some(7),
    })
    .expect("control plane");
    let reg = cp.register_host(&cp.process_join_token(), host_spec("h", "z", 256)).expect("register");
    let (account, _) = cp.create_account("alice").expect("account");
    (cp, store, reg.credential, account.id)
}

fn remaining(cp: &ControlPlane) -> u64 {
    cp.available(Some("z"), Some("ecs.g7.large")).expect("available")[0].remaining
}

fn named(name: &str) -> feiyun_domain::ops::CreateInstances {
    let mut s = spec(Purchase::default());
    s.name = Some(name.into());
    s
}

#[test]
fn concurrent_creates_share_commits_and_are_durable_once_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cp, store, _, account) = region(dir.path(), Duration::from_millis(5));
    let groups_before = store.groups.load(Ordering::SeqCst);
    let (threads, each) = (24, 4);
    let start = Arc::new(Barrier::new(threads));
    let made: Vec<String> = (0..threads)
        .map(|_| {
            let (cp, start, account) = (cp.clone(), start.clone(), account.clone());
            std::thread::spawn(move || {
                start.wait();
                (0..each)
                    .flat_map(|_| cp.create_instances(&account, &spec(Purchase::default())).expect("create").ids)
                    .collect::<Vec<_>>()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    assert_eq!(made.len(), threads * each);
    let groups = store.groups.load(Ordering::SeqCst) - groups_before;
    assert!(groups < threads * each / 2, "{} creates took {groups} commits", threads * each);
    // Every acknowledged instance is in the store, and its capacity is taken once.
    let stored: Vec<String> = store.inner.load().expect("load").instances.into_iter().map(|i| i.id).collect();
    assert!(made.iter().all(|id| stored.contains(id)));
    assert_eq!(remaining(&cp), 128 - made.len() as u64);
    assert_eq!(cp.describe_instances(&account, &InstanceFilter::default()).len(), made.len());
}

#[test]
fn nothing_is_visible_before_it_is_durable_and_hosts_are_answered_meanwhile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cp, store, credential, account) = region(dir.path(), Duration::ZERO);
    let (started_tx, started) = channel();
    let (go, go_rx) = channel();
    *store.gate.lock().expect("gate") = Some((started_tx, go_rx));
    let creating = {
        let (cp, account) = (cp.clone(), account.clone());
        std::thread::spawn(move || cp.create_instances(&account, &spec(Purchase::default())))
    };
    started.recv().expect("the commit started");
    // The write is under way: not listed yet, and the lock is free for hosts and readers.
    assert!(cp.describe_instances(&account, &InstanceFilter::default()).is_empty());
    cp.host_heartbeat(&credential, &Heartbeat { epoch: 1, instances: 0 }).expect("heartbeat");
    go.send(()).expect("go");
    let ids = creating.join().expect("thread").expect("create").ids;
    assert_eq!(cp.describe_instances(&account, &InstanceFilter::default())[0].id, ids[0]);
}

#[test]
fn a_failed_write_gives_back_its_capacity_and_spares_the_rest_of_its_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cp, store, _, account) = region(dir.path(), Duration::ZERO);
    let (started_tx, started) = channel();
    let (go, go_rx) = channel();
    *store.gate.lock().expect("gate") = Some((started_tx, go_rx));
    let create = |name: &'static str| {
        let (cp, account) = (cp.clone(), account.clone());
        std::thread::spawn(move || cp.create_instances(&account, &named(name)))
    };
    // The first holds the store; the next two queue meanwhile and make one group.
    let first = create("first");
    started.recv().expect("first commit");
    let groups_before = store.groups.load(Ordering::SeqCst);
    let reads = store.ledger_reads.load(Ordering::SeqCst);
    let doomed = create(DOOMED);
    let last = create("last");
    // Both have read the ledger, the last thing before they queue.
    while store.ledger_reads.load(Ordering::SeqCst) < reads + 2 {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    go.send(()).expect("go");
    first.join().expect("thread").expect("first");
    assert!(matches!(doomed.join().expect("thread"), Err(DomainError::Internal(_))));
    last.join().expect("thread").expect("last");
    assert_eq!(store.groups.load(Ordering::SeqCst) - groups_before, 1, "the two queued creates shared a commit");
    let names: Vec<String> =
        cp.describe_instances(&account, &InstanceFilter::default()).into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["first", "last"]);
    assert_eq!(remaining(&cp), 126);
}

#[test]
fn one_client_token_sent_many_times_at_once_makes_one_instance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cp, _, _, account) = region(dir.path(), Duration::from_millis(2));
    let start = Arc::new(Barrier::new(16));
    let answers: Vec<Vec<String>> = (0..16)
        .map(|_| {
            let (cp, start, account) = (cp.clone(), start.clone(), account.clone());
            std::thread::spawn(move || {
                let mut s = spec(Purchase::default());
                s.client_token = Some(ClientToken { token: "once".into(), fingerprint: "f".into() });
                start.wait();
                cp.create_instances(&account, &s).expect("create").ids
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    assert!(answers.iter().all(|a| *a == answers[0]));
    assert_eq!(cp.describe_instances(&account, &InstanceFilter::default()).len(), 1);
    assert_eq!(remaining(&cp), 127);
}

#[test]
fn hosts_asking_for_one_name_at_once_get_it_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cp, _, _, _) = region(dir.path(), Duration::from_millis(2));
    let token = cp.process_join_token();
    let start = Arc::new(Barrier::new(8));
    let outcomes: Vec<_> = (0..8)
        .map(|_| {
            let (cp, start, token) = (cp.clone(), start.clone(), token.clone());
            std::thread::spawn(move || {
                start.wait();
                cp.register_host(&token, host_spec("twin", "z", 8))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Ok(_) | Err(feiyun_hostproto::ProtoError::Conflict(_)))));
    assert_eq!(cp.list_hosts().iter().filter(|h| h.host.name == "twin").count(), 1);
    assert!(cp.drain_host("twin", true).is_ok());
}

#[test]
fn changes_outside_the_groups_take_turns_with_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cp, _, _, account) = region(dir.path(), Duration::from_millis(1));
    cp.register_host(&cp.process_join_token(), host_spec("other", "z", 8)).expect("register");
    let start = Arc::new(Barrier::new(9));
    let creating: Vec<_> = (0..8)
        .map(|_| {
            let (cp, start, account) = (cp.clone(), start.clone(), account.clone());
            std::thread::spawn(move || {
                start.wait();
                (0..8)
                    .flat_map(|_| cp.create_instances(&account, &spec(Purchase::default())).expect("create").ids)
                    .count()
            })
        })
        .collect();
    start.wait();
    // Drains (and the host tick) are decided and committed outside the groups, in turn with them.
    for n in 0..20 {
        cp.drain_host("other", n % 2 == 0).expect("drain");
        cp.host_tick().expect("tick");
    }
    let made: usize = creating.into_iter().map(|t| t.join().expect("thread")).sum();
    assert_eq!(made, 64);
    assert_eq!(cp.describe_instances(&account, &InstanceFilter::default()).len(), 64);
}
