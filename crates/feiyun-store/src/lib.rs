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
use feiyun_domain::instance::Instance;
use feiyun_domain::usage::{LedgerEntry, SpotMarketPoint, UsageEvent};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("Stored record {0} is corrupt: {1}")]
    Corrupt(String, String),
    #[error("Account name {0} is taken")]
    NameTaken(String),
    #[error("Database schema version {found} is newer than this build knows ({known})")]
    TooNew { found: i64, known: i64 },
}

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
}

/// Persistence. Every method commits before it returns: a change is durable once acknowledged.
pub trait Store: Send + Sync {
    fn load(&self) -> Result<Loaded, StoreError>;
    fn create_account(&self, account: &Account, key: &StoredKey) -> Result<(), StoreError>;
    fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError>;
    fn account(&self, id: &str) -> Result<Option<Account>, StoreError>;
    fn access_key(&self, id: &str) -> Result<Option<StoredKey>, StoreError>;
    fn account_keys(&self, account_id: &str) -> Result<Vec<StoredKey>, StoreError>;
    /// Insert or update instances, record an idempotency token, append usage events and ledger
    /// entries, in one transaction: a transition, its usage event and what it costs are durable
    /// together or not at all. An event or entry whose key is already stored is ignored; an event
    /// whose instance already has another event with its sequence is refused (an error).
    fn put_instances(
        &self,
        instances: &[Instance],
        token: Option<&TokenRecord>,
        usage: &[UsageEvent],
        ledger: &[LedgerEntry],
    ) -> Result<(), StoreError>;
    /// Append ledger entries in one transaction, skipping keys already present; returns how many
    /// were new.
    fn append_ledger(&self, entries: &[LedgerEntry]) -> Result<usize, StoreError>;
    /// The ledger of an account (every account with `None`), oldest first.
    fn ledger(&self, account_id: Option<&str>) -> Result<Vec<LedgerEntry>, StoreError>;
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
    fn delete_deployment_set(&self, id: &str) -> Result<(), StoreError>;
}
