//! Durable storage of Feiyun's state.
//!
//! Owns the [`Store`] interface the control plane persists through, and its embedded SQLite
//! implementation (WAL journal, in-tree migrations tracked by `PRAGMA user_version`). A
//! PostgreSQL backend implements the same trait.
//!
//! Must not: make decisions (validation, state transitions and scheduling belong to the domain and
//! the control plane), know about HTTP or the wire format, or see a secret in the clear (access
//! key secrets arrive sealed).
#![forbid(unsafe_code)]

mod sqlite;

pub use sqlite::SqliteStore;

use feiyun_domain::account::Account;
use feiyun_domain::assistant::{Command, Invocation};
use feiyun_domain::deployment::DeploymentSet;
use feiyun_domain::event::SystemEvent;
use feiyun_domain::host::{Host, JoinToken};
use feiyun_domain::image::Image;
use feiyun_domain::instance::Instance;
use feiyun_domain::net::{Nic, PublicIp, SecurityGroup, VSwitch, Vpc};
use feiyun_domain::storage::{Disk, ImageLife, KeyPair, Snapshot};
use feiyun_domain::usage::{LedgerEntry, SpotMarketPoint, StorageUsage, TrafficCounter, TrafficUsage, UsageEvent};

/// What can go wrong in any backend. Backend-specific errors arrive as text: callers decide
/// nothing on a database engine's error codes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Database error: {0}")]
    Backend(String),
    /// A revision-checked write found another revision stored: someone changed the record since
    /// it was read. Nothing in the write set was applied.
    #[error("{kind} {id} was changed concurrently (expected revision {expected}, found {found})")]
    Conflict { kind: &'static str, id: String, expected: u64, found: u64 },
    /// A record to create exists already.
    #[error("{kind} {id} exists already")]
    Exists { kind: &'static str, id: String },
    #[error("Stored record {0} is corrupt: {1}")]
    Corrupt(String, String),
    #[error("Account name {0} is taken")]
    NameTaken(String),
    #[error("Database schema version {found} is newer than this build knows ({known})")]
    TooNew { found: i64, known: i64 },
    /// Changes could not be made durable: a sync failed, or a change handed over with
    /// [`Store::commit_ordered`] (already applied by its caller) could not be written. Final:
    /// the store makes nothing durable any more, and the process must stop and recover from
    /// what is on disk.
    #[error("The database could not be made durable: {0}")]
    NotDurable(String),
}

/// A commit's place in the store's order of commits. A commit is visible to later reads and
/// ordered before later commits as soon as [`Store::commit_ordered`] returns; it is durable once
/// [`Store::wait_durable`] of its position (or a later one) returns. A crash can lose only a
/// suffix of the order, never a commit while keeping a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct CommitPos(pub u64);

/// An access key as stored: the secret sealed by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    pub id: String,
    pub account_id: String,
    pub sealed_secret: Vec<u8>,
    pub enabled: bool,
}

/// A remembered response to a ClientToken.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub account_id: String,
    pub scope: String,
    pub token: String,
    pub fingerprint: String,
    pub result: String,
}

/// Everything the control plane needs in memory at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub accounts: Vec<Account>,
    /// Every instance not yet cleaned from its host, released ones included.
    pub instances: Vec<Instance>,
    pub tokens: Vec<TokenRecord>,
    pub commands: Vec<Command>,
    pub invocations: Vec<Invocation>,
    pub deployment_sets: Vec<DeploymentSet>,
    pub hosts: Vec<Host>,
    pub join_tokens: Vec<JoinToken>,
    /// The image catalog (deleted images excluded).
    pub images: Vec<Image>,
    /// System events still executing (finished ones are read on demand).
    pub open_events: Vec<SystemEvent>,
    pub net: NetLoaded,
    pub storage: StorageLoaded,
}

/// The region's storage as stored: live disks and snapshots (released ones excluded), key pairs,
/// and the state of the images accounts made (with whom each is shared).
#[derive(Debug, Default)]
pub struct StorageLoaded {
    pub disks: Vec<Disk>,
    pub snapshots: Vec<Snapshot>,
    pub key_pairs: Vec<KeyPair>,
    pub image_lives: Vec<ImageLife>,
}

/// Storage records to write in a transaction. Disks and snapshots are revision-checked as
/// instances are (revision 1 creates; any other updates the revision before it); an image's
/// state is rewritten whole with its shares.
#[derive(Debug, Default, Clone)]
pub struct StorageWrites {
    pub disks: Vec<Disk>,
    pub snapshots: Vec<Snapshot>,
    pub key_pairs: Vec<KeyPair>,
    /// (account, name) of key pairs to remove.
    pub deleted_key_pairs: Vec<(String, String)>,
    pub image_lives: Vec<ImageLife>,
    /// Images to remove from the catalog (with their state and shares).
    pub deleted_images: Vec<String>,
    /// Usage of data disks and snapshots (a key already stored is ignored).
    pub usage: Vec<StorageUsage>,
}

impl StorageWrites {
    pub fn is_empty(&self) -> bool {
        self.disks.is_empty()
            && self.snapshots.is_empty()
            && self.key_pairs.is_empty()
            && self.deleted_key_pairs.is_empty()
            && self.image_lives.is_empty()
            && self.deleted_images.is_empty()
            && self.usage.is_empty()
    }
}

/// The region's networks as stored.
#[derive(Debug, Default)]
pub struct NetLoaded {
    pub vpcs: Vec<Vpc>,
    pub vswitches: Vec<VSwitch>,
    /// With their rules in the order they were added.
    pub groups: Vec<SecurityGroup>,
    /// With their groups in the order the instance joined them.
    pub nics: Vec<Nic>,
    pub public_ips: Vec<PublicIp>,
    pub traffic_counters: Vec<TrafficCounter>,
}

/// A network record to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetKey {
    Vpc(String),
    VSwitch(String),
    SecurityGroup(String),
    /// By allocation id.
    PublicIp(String),
    /// An instance's interface and its group memberships, by instance id.
    Nic(String),
}

/// Network records to write in a transaction: removals first, then the records to insert or
/// replace whole (a group with its rules, an interface with its memberships).
#[derive(Debug, Default, Clone)]
pub struct NetWrites {
    pub deleted: Vec<NetKey>,
    pub vpcs: Vec<Vpc>,
    pub vswitches: Vec<VSwitch>,
    pub groups: Vec<SecurityGroup>,
    pub public_ips: Vec<PublicIp>,
    pub nics: Vec<Nic>,
}

impl NetWrites {
    pub fn is_empty(&self) -> bool {
        self.deleted.is_empty()
            && self.vpcs.is_empty()
            && self.vswitches.is_empty()
            && self.groups.is_empty()
            && self.public_ips.is_empty()
            && self.nics.is_empty()
    }
}

/// One transaction: everything in it is durable together or not at all.
///
/// Instances are revision-checked: an instance at revision 1 is created (and must not exist);
/// any other is an update that must find revision − 1 stored, so two writers that read the same
/// revision cannot both win ([`StoreError::Conflict`]).
#[derive(Debug, Default)]
pub struct WriteSet<'a> {
    pub instances: &'a [Instance],
    pub token: Option<&'a TokenRecord>,
    pub usage: &'a [UsageEvent],
    pub ledger: &'a [LedgerEntry],
    pub hosts: &'a [Host],
    pub join_tokens: &'a [JoinToken],
    pub images: &'a [Image],
    /// Inserted, or updated by id (an event's cycle and finish time change).
    pub events: &'a [SystemEvent],
    /// VPCs, vSwitches, groups, addresses and interfaces: with the instances they concern.
    pub net: Option<&'a NetWrites>,
    /// Metered public traffic (a key already stored is ignored) and the readings it came from.
    pub traffic: &'a [TrafficUsage],
    pub traffic_counters: &'a [TrafficCounter],
    /// Disks, snapshots, key pairs, image states and storage usage.
    pub storage: Option<&'a StorageWrites>,
}

/// Persistence. Every method but [`Store::commit_ordered`] returns once its change is durable.
pub trait Store: Send + Sync {
    fn load(&self) -> Result<Loaded, StoreError>;
    fn create_account(&self, account: &Account, key: &StoredKey) -> Result<(), StoreError>;
    fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError>;
    fn account(&self, id: &str) -> Result<Option<Account>, StoreError>;
    fn access_key(&self, id: &str) -> Result<Option<StoredKey>, StoreError>;
    fn account_keys(&self, account_id: &str) -> Result<Vec<StoredKey>, StoreError>;
    /// Commit a write set in one transaction: a transition, its usage event and what it costs
    /// are durable together or not at all. A usage event or ledger entry whose key is already
    /// stored is ignored; a usage event whose instance already has another event with its
    /// sequence is refused (an error).
    /// Returns once durable, with the write set's own error (a revision conflict, a record that
    /// exists) if it fails; nothing of it is applied then, and the store goes on.
    fn commit(&self, writes: &WriteSet<'_>) -> Result<(), StoreError>;
    /// [`Store::commit`] of a write set its caller has applied already: it is ordered after
    /// every change handed over before it (later reads and commits come after it) and durable
    /// once [`Store::wait_durable`] of the returned position returns. Callers that hold a lock
    /// while handing over release it before they wait, so one sync serves many changes. The
    /// store cannot refuse it any more: if it fails to be written, the store stops
    /// ([`StoreError::NotDurable`] from then on). Use it only for write sets that cannot fail
    /// but for an I/O error.
    fn commit_ordered(&self, writes: &WriteSet<'_>) -> Result<CommitPos, StoreError>;
    /// Return once every commit up to `pos` is durable.
    fn wait_durable(&self, pos: CommitPos) -> Result<(), StoreError>;
    /// The position of the last commit made.
    fn last_commit(&self) -> CommitPos;
    /// [`Store::commit`] of instances with their token, usage events and ledger entries.
    fn put_instances(
        &self,
        instances: &[Instance],
        token: Option<&TokenRecord>,
        usage: &[UsageEvent],
        ledger: &[LedgerEntry],
    ) -> Result<(), StoreError> {
        self.commit(&WriteSet { instances, token, usage, ledger, ..Default::default() })
    }
    /// System events of an instance (of every instance of the account with `None`), newest first.
    fn system_events(&self, account_id: &str, instance_id: Option<&str>) -> Result<Vec<SystemEvent>, StoreError>;
    /// Append ledger entries in one transaction, skipping keys already present; returns how many
    /// were new.
    fn append_ledger(&self, entries: &[LedgerEntry]) -> Result<usize, StoreError>;
    /// The ledger of an account (every account with `None`), oldest first.
    fn ledger(&self, account_id: Option<&str>) -> Result<Vec<LedgerEntry>, StoreError>;
    /// An account's ledger as last committed, oldest first, without waiting for changes
    /// submitted and not yet applied: it has every change whose caller was answered, and may miss
    /// one still on its way (a check that may be a few milliseconds behind, such as arrears,
    /// needs no more). By default the same as [`Store::ledger`].
    fn ledger_committed(&self, account_id: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        self.ledger(Some(account_id))
    }
    /// Sum of an account's ledger, in cents.
    fn balance_cents(&self, account_id: &str) -> Result<i64, StoreError>;
    /// Record spot market points (a point at the same zone and instant replaces the old one).
    fn put_spot_market(&self, points: &[SpotMarketPoint]) -> Result<(), StoreError>;
    /// Spot market history of a zone (every zone with `None`), by zone then time.
    fn spot_market(&self, zone_id: Option<&str>) -> Result<Vec<SpotMarketPoint>, StoreError>;
    /// The usage log of an account (every account with `None`) from `since_s` on, by instant, then
    /// instance, then sequence (an instance's events are in the order they happened within a
    /// second).
    fn usage_events(&self, account_id: Option<&str>, since_s: i64) -> Result<Vec<UsageEvent>, StoreError>;
    /// The host has removed everything a released instance had (a change: its revision is bumped).
    fn mark_cleaned(&self, instance_id: &str) -> Result<(), StoreError>;
    fn put_command(&self, command: &Command) -> Result<(), StoreError>;
    fn delete_command(&self, id: &str) -> Result<(), StoreError>;
    /// Insert or update an invocation and all of its runs.
    fn put_invocation(&self, invocation: &Invocation) -> Result<(), StoreError>;
    fn put_deployment_set(&self, set: &DeploymentSet) -> Result<(), StoreError>;
    /// Metered public traffic of an account (every account with `None`) received before
    /// `before_s`, oldest first.
    fn traffic_usage(&self, account_id: Option<&str>, before_s: i64) -> Result<Vec<TrafficUsage>, StoreError>;
    fn delete_deployment_set(&self, id: &str) -> Result<(), StoreError>;
    /// The storage usage log of an account (every account with `None`), by instant, then
    /// resource, then sequence.
    fn storage_usage(&self, account_id: Option<&str>) -> Result<Vec<StorageUsage>, StoreError>;
}
