//! The embedded SQLite store.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use feiyun_domain::account::Account;
use feiyun_domain::assistant::{Command, CommandType, Invocation, InvocationRun, RunStatus};
use feiyun_domain::deployment::DeploymentSet;
use feiyun_domain::event::SystemEvent;
use feiyun_domain::instance::{ChargeType, Instance, InstanceStatus, PowerState, StoppedMode, Tag};
use feiyun_domain::usage::{Charge, EventKind, LedgerEntry, LedgerKind, SpotMarketPoint, TrafficUsage, UsageEvent};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{CommitPos, Loaded, Store, StoreError, StoredKey, TokenRecord, WriteSet};

mod catalog;
mod durable;
mod net;
mod storage;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// Migrations, applied in order; `PRAGMA user_version` is the number applied so far.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_deployment_sets.sql"),
    include_str!("../migrations/0003_usage_events.sql"),
    include_str!("../migrations/0004_billing.sql"),
    include_str!("../migrations/0005_usage_sequence.sql"),
    include_str!("../migrations/0006_hosts_images_events.sql"),
    include_str!("../migrations/0007_networking.sql"),
    include_str!("../migrations/0008_storage.sql"),
];

pub struct SqliteStore {
    /// Shared with the writer thread and the checkpointer.
    conn: std::sync::Arc<Mutex<Connection>>,
    /// Applies every change in order, many to a transaction, durable by one log sync each.
    writer: durable::Writer,
    /// A read-only connection of its own (a database file only): it reads what is committed
    /// without waiting for the writer ([`Store::ledger_committed`]).
    snapshots: Option<Mutex<Connection>>,
}

/// `execute` through the connection's statement cache: the write paths run the same few
/// statements thousands of times a second, and compiling one costs more than running it.
pub(crate) trait Exec {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl Exec for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_ts(id: &str, s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(id.to_string(), format!("time {s}: {e}")))
}

fn parse_opt_ts(id: &str, s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.map(|s| parse_ts(id, &s)).transpose()
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = prepare(Connection::open(path)?)?;
        // Checkpoints run on a connection of their own (`durable::Checkpointer`), not inside
        // the writer's commits.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let conn = std::sync::Arc::new(Mutex::new(conn));
        let checkpoints = durable::Checkpointer::start(path, conn.clone())?;
        let writer = durable::Writer::start(conn.clone(), Some(wal.into()), Some(checkpoints))?;
        let snapshots = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        snapshots.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(SqliteStore { conn, writer, snapshots: Some(Mutex::new(snapshots)) })
    }

    /// A private in-memory database, for tests.
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        let conn = std::sync::Arc::new(Mutex::new(prepare(Connection::open_in_memory()?)?));
        let writer = durable::Writer::start(conn.clone(), None, None)?;
        Ok(SqliteStore { conn, writer, snapshots: None })
    }

    /// Syncs of the log made so far (each made one or more changes durable).
    pub fn syncs(&self) -> u64 {
        self.writer.syncs()
    }

    /// The connection for a read, once everything submitted before it is applied.
    fn read(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.writer.caught_up()?;
        Ok(self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Set a connection up (WAL; `synchronous=NORMAL`: a commit appends to the log without
/// syncing it, and the writer syncs the log once per batch before anyone is told a change is
/// durable; the log is synced before each checkpoint and the database after it) and bring its
/// schema up to date. Savepoint journals stay in memory (a waited change's savepoint would
/// otherwise spill to a temporary file), and up to 32 MiB of pages are cached (the default 2 MiB
/// holds little of a region's indexes).
fn prepare(mut conn: Connection) -> Result<Connection, StoreError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -32768)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(128);
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew { found: version, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

fn account_from_row(r: &Row<'_>) -> rusqlite::Result<(String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

fn to_account((id, name, created): (String, String, String)) -> Result<Account, StoreError> {
    let created_at = parse_ts(&id, &created)?;
    Ok(Account { id, name, created_at })
}

const INSTANCE_COLUMNS: &str = "id, account_id, name, hostname, description, region_id, zone_id, host_id, \
    instance_type, image_id, status, desired, stopped_mode, charge_type, user_data, tags, created_at, \
    started_at, updated_at, revision, deployment_set_id, billing, key_pair_name";

fn instance_from_row(r: &Row<'_>) -> Result<Instance, StoreError> {
    let id: String = r.get(0)?;
    let corrupt = |what: &str| StoreError::Corrupt(id.clone(), what.to_string());
    let status: String = r.get(10)?;
    let desired: String = r.get(11)?;
    let stopped_mode: Option<String> = r.get(12)?;
    let tags: String = r.get(15)?;
    let created: String = r.get(16)?;
    let started: Option<String> = r.get(17)?;
    let updated: String = r.get(18)?;
    let revision: i64 = r.get(19)?;
    let charge_type: String = r.get(13)?;
    let billing: String = r.get(21)?;
    Ok(Instance {
        account_id: r.get(1)?,
        name: r.get(2)?,
        hostname: r.get(3)?,
        description: r.get(4)?,
        region_id: r.get(5)?,
        zone_id: r.get(6)?,
        host_id: r.get(7)?,
        instance_type: r.get(8)?,
        image_id: r.get(9)?,
        status: InstanceStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        desired: PowerState::parse(&desired).ok_or_else(|| corrupt("desired"))?,
        stopped_mode: match stopped_mode {
            None => None,
            Some(m) => Some(StoppedMode::parse(&m).ok_or_else(|| corrupt("stopped_mode"))?),
        },
        charge_type: ChargeType::parse(&charge_type).ok_or_else(|| corrupt("charge_type"))?,
        billing: serde_json::from_str(&billing).map_err(|_| corrupt("billing"))?,
        user_data: r.get(14)?,
        tags: serde_json::from_str::<Vec<Tag>>(&tags).map_err(|_| corrupt("tags"))?,
        created_at: parse_ts(&id, &created)?,
        started_at: parse_opt_ts(&id, started)?,
        updated_at: parse_ts(&id, &updated)?,
        revision: u64::try_from(revision).map_err(|_| corrupt("revision"))?,
        deployment_set_id: r.get(20)?,
        key_pair_name: r.get(22)?,
        id,
    })
}

/// An account's ledger (every account's with `None`), oldest first.
fn read_ledger(conn: &Connection, account_id: Option<&str>) -> Result<Vec<LedgerEntry>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT key, account_id, at_s, kind, amount_cents, instance_id, detail FROM ledger \
         WHERE (?1 IS NULL OR account_id = ?1) ORDER BY at_s, rowid",
    )?;
    let mut rows = st.query(params![account_id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let key: String = r.get(0)?;
        let kind: String = r.get(3)?;
        out.push(LedgerEntry {
            kind: LedgerKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(key.clone(), "ledger kind".into()))?,
            account_id: r.get(1)?,
            at_s: r.get(2)?,
            amount_cents: r.get(4)?,
            instance_id: r.get(5)?,
            detail: r.get(6)?,
            key,
        });
    }
    Ok(out)
}

/// Append ledger entries whose key is new; returns how many were.
fn insert_ledger(tx: &Connection, entries: &[LedgerEntry]) -> Result<usize, StoreError> {
    let mut n = 0;
    for e in entries {
        n += tx.exec(
            "INSERT OR IGNORE INTO ledger (key, account_id, at_s, kind, amount_cents, instance_id, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![e.key, e.account_id, e.at_s, e.kind.as_str(), e.amount_cents, e.instance_id, e.detail],
        )?;
    }
    Ok(n)
}

fn run_from_row(r: &Row<'_>) -> Result<(String, InvocationRun), StoreError> {
    let inv: String = r.get(0)?;
    let status: String = r.get(2)?;
    let run = InvocationRun {
        instance_id: r.get(1)?,
        status: RunStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(inv.clone(), "run status".into()))?,
        exit_code: r.get(3)?,
        output: r.get(4)?,
        dropped: r.get::<_, i64>(5)? as u64,
        error_code: r.get(6)?,
        error_info: r.get(7)?,
        start_time: parse_opt_ts(&inv, r.get(8)?)?,
        finish_time: parse_opt_ts(&inv, r.get(9)?)?,
    };
    Ok((inv, run))
}

/// Insert new instances (revision 1) and update the others, each only if the stored revision is
/// the one before: a stale writer gets [`StoreError::Conflict`] and the transaction rolls back.
fn write_instances(tx: &Connection, instances: &[Instance]) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO instances ({INSTANCE_COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23) \
         ON CONFLICT(id) DO NOTHING"
    ))?;
    let mut update = tx.prepare_cached(
        "UPDATE instances SET billing = ?22, name = ?3, hostname = ?4, description = ?5, zone_id = ?7, \
         host_id = ?8, status = ?11, desired = ?12, stopped_mode = ?13, charge_type = ?14, tags = ?16, \
         started_at = ?18, updated_at = ?19, revision = ?20, deployment_set_id = ?21, key_pair_name = ?23 \
         WHERE id = ?1 AND revision = ?20 - 1",
    )?;
    for i in instances {
        let tags = serde_json::to_string(&i.tags).map_err(|e| StoreError::Corrupt(i.id.clone(), e.to_string()))?;
        let billing =
            serde_json::to_string(&i.billing).map_err(|e| StoreError::Corrupt(i.id.clone(), e.to_string()))?;
        let values = params![
            i.id,
            i.account_id,
            i.name,
            i.hostname,
            i.description,
            i.region_id,
            i.zone_id,
            i.host_id,
            i.instance_type,
            i.image_id,
            i.status.as_str(),
            i.desired.as_str(),
            i.stopped_mode.map(|m| m.as_str()),
            i.charge_type.as_str(),
            i.user_data,
            tags,
            ts(&i.created_at),
            i.started_at.as_ref().map(ts),
            ts(&i.updated_at),
            i.revision as i64,
            i.deployment_set_id,
            billing,
            i.key_pair_name,
        ];
        let written = if i.revision <= 1 { insert.execute(values)? } else { update.execute(values)? };
        if written == 0 {
            let found: Option<i64> =
                tx.query_row("SELECT revision FROM instances WHERE id = ?1", [&i.id], |r| r.get(0)).optional()?;
            return Err(match found {
                Some(_) if i.revision <= 1 => StoreError::Exists { kind: "Instance", id: i.id.clone() },
                found => StoreError::Conflict {
                    kind: "Instance",
                    id: i.id.clone(),
                    expected: i.revision.saturating_sub(1),
                    found: found.unwrap_or(0) as u64,
                },
            });
        }
    }
    Ok(())
}

impl Store for SqliteStore {
    fn load(&self) -> Result<Loaded, StoreError> {
        let conn = self.read()?;
        let mut out = Loaded::default();
        let mut st = conn.prepare("SELECT id, name, created_at FROM accounts ORDER BY id")?;
        for row in st.query_map([], account_from_row)? {
            out.accounts.push(to_account(row?)?);
        }
        let mut st =
            conn.prepare(&format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE cleaned = 0 ORDER BY id"))?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            out.instances.push(instance_from_row(r)?);
        }
        let mut st = conn.prepare("SELECT account_id, scope, token, fingerprint, result FROM client_tokens")?;
        for t in st.query_map([], |r| {
            Ok(TokenRecord {
                account_id: r.get(0)?,
                scope: r.get(1)?,
                token: r.get(2)?,
                fingerprint: r.get(3)?,
                result: r.get(4)?,
            })
        })? {
            out.tokens.push(t?);
        }
        let mut st = conn.prepare(
            "SELECT id, account_id, name, description, kind, content, working_dir, timeout_s, created_at, ephemeral \
             FROM commands WHERE deleted = 0 ORDER BY created_at, id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let kind: String = r.get(4)?;
            let created: String = r.get(8)?;
            out.commands.push(Command {
                account_id: r.get(1)?,
                name: r.get(2)?,
                description: r.get(3)?,
                kind: CommandType::parse(&kind).ok_or_else(|| StoreError::Corrupt(id.clone(), "kind".into()))?,
                content: r.get(5)?,
                working_dir: r.get(6)?,
                timeout_s: r.get::<_, i64>(7)? as u64,
                created_at: parse_ts(&id, &created)?,
                ephemeral: r.get(9)?,
                id,
            });
        }
        let mut st = conn.prepare(
            "SELECT id, account_id, command_id, command_name, command_content, timeout_s, created_at \
             FROM invocations ORDER BY created_at, id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let created: String = r.get(6)?;
            out.invocations.push(Invocation {
                account_id: r.get(1)?,
                command_id: r.get(2)?,
                command_name: r.get(3)?,
                command_content: r.get(4)?,
                timeout_s: r.get::<_, i64>(5)? as u64,
                created_at: parse_ts(&id, &created)?,
                runs: Vec::new(),
                id,
            });
        }
        let mut st = conn.prepare(
            "SELECT id, account_id, name, description, created_at FROM deployment_sets WHERE deleted = 0 ORDER BY id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let created: String = r.get(4)?;
            out.deployment_sets.push(DeploymentSet {
                account_id: r.get(1)?,
                name: r.get(2)?,
                description: r.get(3)?,
                created_at: parse_ts(&id, &created)?,
                id,
            });
        }
        let mut st = conn.prepare(
            "SELECT invocation_id, instance_id, status, exit_code, output, dropped, error_code, error_info, \
             start_time, finish_time FROM invocation_runs ORDER BY invocation_id, instance_id",
        )?;
        let mut rows = st.query([])?;
        let index: std::collections::HashMap<String, usize> =
            out.invocations.iter().enumerate().map(|(i, v)| (v.id.clone(), i)).collect();
        while let Some(r) = rows.next()? {
            let (inv, run) = run_from_row(r)?;
            if let Some(&i) = index.get(&inv) {
                out.invocations[i].runs.push(run);
            }
        }
        out.hosts = catalog::hosts(&conn)?;
        out.join_tokens = catalog::join_tokens(&conn)?;
        out.images = catalog::images(&conn)?;
        out.open_events = catalog::open_events(&conn)?;
        out.net = net::load(&conn)?;
        out.storage = storage::load(&conn)?;
        Ok(out)
    }

    fn create_account(&self, account: &Account, key: &StoredKey) -> Result<(), StoreError> {
        let (account, key) = (account.clone(), key.clone());
        self.writer.run(move |conn| {
            let taken: Option<String> = conn
                .query_row("SELECT id FROM accounts WHERE name = ?1", [&account.name], |r| r.get(0))
                .optional()?;
            if taken.is_some() {
                return Err(StoreError::NameTaken(account.name.clone()));
            }
            conn.exec(
                "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![account.id, account.name, ts(&account.created_at)],
            )?;
            conn.exec(
                "INSERT INTO access_keys (id, account_id, sealed_secret, enabled, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key.id, key.account_id, key.sealed_secret, key.enabled, ts(&account.created_at)],
            )?;
            Ok(())
        })
    }

    fn wait_durable(&self, pos: CommitPos) -> Result<(), StoreError> {
        self.writer.wait_durable(pos.0)
    }

    fn last_commit(&self) -> CommitPos {
        CommitPos(self.writer.last())
    }

    fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError> {
        let conn = self.read()?;
        let row = conn
            .query_row("SELECT id, name, created_at FROM accounts WHERE name = ?1", [name], account_from_row)
            .optional()?;
        row.map(to_account).transpose()
    }

    fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let conn = self.read()?;
        let row = conn
            .query_row("SELECT id, name, created_at FROM accounts WHERE id = ?1", [id], account_from_row)
            .optional()?;
        row.map(to_account).transpose()
    }

    fn access_key(&self, id: &str) -> Result<Option<StoredKey>, StoreError> {
        let conn = self.read()?;
        Ok(conn
            .query_row("SELECT id, account_id, sealed_secret, enabled FROM access_keys WHERE id = ?1", [id], |r| {
                Ok(StoredKey { id: r.get(0)?, account_id: r.get(1)?, sealed_secret: r.get(2)?, enabled: r.get(3)? })
            })
            .optional()?)
    }

    fn account_keys(&self, account_id: &str) -> Result<Vec<StoredKey>, StoreError> {
        let conn = self.read()?;
        let mut st = conn.prepare(
            "SELECT id, account_id, sealed_secret, enabled FROM access_keys WHERE account_id = ?1 ORDER BY created_at, id",
        )?;
        let rows = st.query_map([account_id], |r| {
            Ok(StoredKey { id: r.get(0)?, account_id: r.get(1)?, sealed_secret: r.get(2)?, enabled: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn commit(&self, w: &WriteSet<'_>) -> Result<(), StoreError> {
        let owned = OwnedWrites::of(w);
        self.writer.run(move |conn| write_set(conn, &owned.set()))
    }

    fn commit_ordered(&self, w: &WriteSet<'_>) -> Result<CommitPos, StoreError> {
        let owned = OwnedWrites::of(w);
        self.writer.submit(Box::new(move |conn| write_set(conn, &owned.set()))).map(CommitPos)
    }

    fn system_events(&self, account_id: &str, instance_id: Option<&str>) -> Result<Vec<SystemEvent>, StoreError> {
        catalog::events(&*self.read()?, account_id, instance_id)
    }

    fn usage_events(&self, account_id: Option<&str>, since_s: i64) -> Result<Vec<UsageEvent>, StoreError> {
        let conn = self.read()?;
        let mut st = conn.prepare(
            "SELECT key, instance_id, account_id, instance_type, disk_category, disk_gib, at_s, kind, zone_id, charge, \
             seq FROM usage_events \
             WHERE (?1 IS NULL OR account_id = ?1) AND at_s >= ?2 ORDER BY at_s, instance_id, seq",
        )?;
        let mut rows = st.query(params![account_id, since_s])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let key: String = r.get(0)?;
            let kind: String = r.get(7)?;
            let charge: String = r.get(9)?;
            out.push(UsageEvent {
                zone_id: r.get(8)?,
                charge: Charge::parse(&charge)
                    .ok_or_else(|| StoreError::Corrupt(key.clone(), "usage charge".into()))?,
                kind: EventKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(key.clone(), "usage kind".into()))?,
                instance_id: r.get(1)?,
                account_id: r.get(2)?,
                instance_type: r.get(3)?,
                disk_category: r.get(4)?,
                disk_gib: r.get::<_, i64>(5)? as u64,
                at_s: r.get(6)?,
                seq: u64::try_from(r.get::<_, i64>(10)?)
                    .map_err(|_| StoreError::Corrupt(key.clone(), "usage sequence".into()))?,
                key,
            });
        }
        Ok(out)
    }

    fn append_ledger(&self, entries: &[LedgerEntry]) -> Result<usize, StoreError> {
        let entries = entries.to_vec();
        self.writer.run(move |conn| insert_ledger(conn, &entries))
    }

    fn ledger(&self, account_id: Option<&str>) -> Result<Vec<LedgerEntry>, StoreError> {
        read_ledger(&*self.read()?, account_id)
    }

    fn ledger_committed(&self, account_id: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        match &self.snapshots {
            Some(c) => read_ledger(&c.lock().unwrap_or_else(|p| p.into_inner()), Some(account_id)),
            None => self.ledger(Some(account_id)),
        }
    }

    fn balance_cents(&self, account_id: &str) -> Result<i64, StoreError> {
        let conn = self.read()?;
        Ok(conn.query_row(
            "SELECT COALESCE(SUM(amount_cents), 0) FROM ledger WHERE account_id = ?1",
            [account_id],
            |r| r.get(0),
        )?)
    }

    fn put_spot_market(&self, points: &[SpotMarketPoint]) -> Result<(), StoreError> {
        let points = points.to_vec();
        self.writer.run(move |conn| {
            for p in &points {
                conn.exec(
                    "INSERT OR REPLACE INTO spot_market (zone_id, at_s, percent) VALUES (?1, ?2, ?3)",
                    params![p.zone_id, p.at_s, p.percent],
                )?;
            }
            Ok(())
        })
    }

    fn spot_market(&self, zone_id: Option<&str>) -> Result<Vec<SpotMarketPoint>, StoreError> {
        let conn = self.read()?;
        let mut st = conn.prepare_cached(
            "SELECT zone_id, at_s, percent FROM spot_market WHERE (?1 IS NULL OR zone_id = ?1) ORDER BY zone_id, at_s",
        )?;
        let rows = st.query_map(params![zone_id], |r| {
            Ok(SpotMarketPoint { zone_id: r.get(0)?, at_s: r.get(1)?, percent: r.get(2)? })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn mark_cleaned(&self, instance_id: &str) -> Result<(), StoreError> {
        let instance_id = instance_id.to_string();
        self.writer.run(move |conn| {
            conn.execute(
                "UPDATE instances SET cleaned = 1, user_data = NULL, revision = revision + 1 WHERE id = ?1",
                [&instance_id],
            )?;
            Ok(())
        })
    }

    fn put_command(&self, c: &Command) -> Result<(), StoreError> {
        let c = c.clone();
        self.writer.run(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO commands (id, account_id, name, description, kind, content, working_dir, \
             timeout_s, created_at, ephemeral) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    c.id,
                    c.account_id,
                    c.name,
                    c.description,
                    c.kind.as_str(),
                    c.content,
                    c.working_dir,
                    c.timeout_s as i64,
                    ts(&c.created_at),
                    c.ephemeral
                ],
            )?;
            Ok(())
        })
    }

    fn delete_command(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        self.writer.run(move |conn| {
            conn.execute("UPDATE commands SET deleted = 1 WHERE id = ?1", [&id])?;
            Ok(())
        })
    }

    fn put_deployment_set(&self, d: &DeploymentSet) -> Result<(), StoreError> {
        let d = d.clone();
        self.writer.run(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO deployment_sets (id, account_id, name, description, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
                params![d.id, d.account_id, d.name, d.description, ts(&d.created_at)],
            )?;
            Ok(())
        })
    }

    fn traffic_usage(&self, account_id: Option<&str>, before_s: i64) -> Result<Vec<TrafficUsage>, StoreError> {
        net::traffic_usage(&*self.read()?, account_id, before_s)
    }

    fn storage_usage(&self, account_id: Option<&str>) -> Result<Vec<feiyun_domain::usage::StorageUsage>, StoreError> {
        storage::usage(&*self.read()?, account_id)
    }

    fn delete_deployment_set(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        self.writer.run(move |conn| {
            conn.execute("UPDATE deployment_sets SET deleted = 1 WHERE id = ?1", [&id])?;
            Ok(())
        })
    }

    fn put_invocation(&self, v: &Invocation) -> Result<(), StoreError> {
        let v = v.clone();
        self.writer.run(move |conn| {
            conn.exec(
                "INSERT OR IGNORE INTO invocations (id, account_id, command_id, command_name, command_content, \
             timeout_s, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    v.id,
                    v.account_id,
                    v.command_id,
                    v.command_name,
                    v.command_content,
                    v.timeout_s as i64,
                    ts(&v.created_at)
                ],
            )?;
            for r in &v.runs {
                conn.exec(
                    "INSERT OR REPLACE INTO invocation_runs (invocation_id, instance_id, status, exit_code, output, \
                 dropped, error_code, error_info, start_time, finish_time) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        v.id,
                        r.instance_id,
                        r.status.as_str(),
                        r.exit_code,
                        r.output,
                        r.dropped as i64,
                        r.error_code,
                        r.error_info,
                        r.start_time.as_ref().map(ts),
                        r.finish_time.as_ref().map(ts)
                    ],
                )?;
            }
            Ok(())
        })
    }
}

/// A write set owned, to hand to the writer thread.
struct OwnedWrites {
    instances: Vec<Instance>,
    token: Option<TokenRecord>,
    usage: Vec<UsageEvent>,
    ledger: Vec<LedgerEntry>,
    hosts: Vec<feiyun_domain::host::Host>,
    join_tokens: Vec<feiyun_domain::host::JoinToken>,
    images: Vec<feiyun_domain::image::Image>,
    events: Vec<SystemEvent>,
    net: Option<crate::NetWrites>,
    traffic: Vec<TrafficUsage>,
    traffic_counters: Vec<feiyun_domain::usage::TrafficCounter>,
    storage: Option<crate::StorageWrites>,
}

impl OwnedWrites {
    fn of(w: &WriteSet<'_>) -> OwnedWrites {
        OwnedWrites {
            instances: w.instances.to_vec(),
            token: w.token.cloned(),
            usage: w.usage.to_vec(),
            ledger: w.ledger.to_vec(),
            hosts: w.hosts.to_vec(),
            join_tokens: w.join_tokens.to_vec(),
            images: w.images.to_vec(),
            events: w.events.to_vec(),
            net: w.net.cloned(),
            traffic: w.traffic.to_vec(),
            traffic_counters: w.traffic_counters.to_vec(),
            storage: w.storage.cloned(),
        }
    }

    fn set(&self) -> WriteSet<'_> {
        WriteSet {
            instances: &self.instances,
            token: self.token.as_ref(),
            usage: &self.usage,
            ledger: &self.ledger,
            hosts: &self.hosts,
            join_tokens: &self.join_tokens,
            images: &self.images,
            events: &self.events,
            net: self.net.as_ref(),
            traffic: &self.traffic,
            traffic_counters: &self.traffic_counters,
            storage: self.storage.as_ref(),
        }
    }
}

/// One write set (in the writer's transaction).
fn write_set(tx: &Connection, w: &WriteSet<'_>) -> Result<(), StoreError> {
    write_instances(tx, w.instances)?;
    for e in w.usage {
        // A replayed key is ignored; another event of the instance with the same sequence is
        // an error, not something to drop silently.
        tx.exec(
            "INSERT INTO usage_events (key, instance_id, account_id, instance_type, disk_category, \
             disk_gib, at_s, kind, zone_id, charge, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
             ON CONFLICT(key) DO NOTHING",
            params![
                e.key,
                e.instance_id,
                e.account_id,
                e.instance_type,
                e.disk_category,
                e.disk_gib as i64,
                e.at_s,
                e.kind.as_str(),
                e.zone_id,
                e.charge.as_str(),
                e.seq as i64
            ],
        )?;
    }
    insert_ledger(tx, w.ledger)?;
    if let Some(t) = w.token {
        tx.exec(
            "INSERT INTO client_tokens (account_id, scope, token, fingerprint, result, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![t.account_id, t.scope, t.token, t.fingerprint, t.result, ts(&Utc::now())],
        )?;
    }
    catalog::put_hosts(tx, w.hosts)?;
    catalog::put_join_tokens(tx, w.join_tokens)?;
    catalog::put_images(tx, w.images)?;
    catalog::put_events(tx, w.events)?;
    if let Some(n) = w.net {
        net::write(tx, n)?;
    }
    net::write_traffic(tx, w.traffic, w.traffic_counters)?;
    if let Some(s) = w.storage {
        storage::write(tx, s)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
