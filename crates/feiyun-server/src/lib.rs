//! A region's control plane as a server: configuration, start-up and the HTTP front.
//!
//! Owns bootstrap (data directory and its lock, store, master key, control plane, first
//! administrator) and one HTTP listener for both the public API, which it hands to the OpenAPI
//! layer, and the host protocol, which it hands to the control plane; plus the region's clocks
//! (billing and host liveness ticks).
//!
//! Must not: interpret API parameters or shape responses (the OpenAPI layer does), change state
//! except through the control plane, or link the runtime or the agent (the binary composes an
//! embedded host when it wants one).

pub mod config;
pub mod host_api;
pub mod http;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use feiyun_control::{ControlPlane, Parts, RegionSetup, Sealer, SystemClock};
use feiyun_domain::catalog::Catalog;
use feiyun_store::{SqliteStore, Store};
use serde_json::json;

pub use config::Config;

/// The price book shipped with Feiyun (operator defaults, not list prices).
pub const BUILTIN_PRICES: &str = include_str!("../../../catalog/prices.toml");

/// The catalog shipped with Feiyun.
pub const BUILTIN_CATALOG: &str = include_str!("../../../catalog/instance-types.toml");

pub use feiyun_control::ADMIN_ACCOUNT;

/// A data directory held by this process; released when dropped or when the process ends.
pub struct DataDirLock {
    _held: nix::fcntl::Flock<fs::File>,
}

/// Paths inside a data directory.
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn new(root: &Path) -> DataDir {
        DataDir { root: root.to_path_buf() }
    }
    pub fn db(&self) -> PathBuf {
        self.root.join("feiyun.db")
    }
    pub fn master_key(&self) -> PathBuf {
        self.root.join("master.key")
    }
    pub fn credentials(&self) -> PathBuf {
        self.root.join("credentials.json")
    }
    /// Key files of accounts created with `feiyun account create` (one JSON file per account,
    /// mode 0600), for `--profile NAME`.
    pub fn profiles(&self) -> PathBuf {
        self.root.join("profiles")
    }
    pub fn profile(&self, account_name: &str) -> PathBuf {
        self.profiles().join(format!("{account_name}.json"))
    }
    /// The embedded host's local image cache.
    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }
    /// The region's blobs (image archives, snapshots, disks in transit), which hosts upload and
    /// fetch.
    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }
    pub fn runtime(&self) -> PathBuf {
        self.root.join("host")
    }
    /// The lock file a running server holds, with its PID inside.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("feiyun.lock")
    }

    /// Take the data directory for this process: one server per data directory. The lock is an
    /// advisory `flock` held for as long as the returned guard lives, so it goes with the
    /// process however it ends (even `kill -9`); the file keeps the holder's PID for messages.
    pub fn lock(&self) -> anyhow::Result<DataDirLock> {
        use std::io::{Seek, SeekFrom};
        fs::create_dir_all(&self.root).with_context(|| format!("cannot create {}", self.root.display()))?;
        let path = self.lock_file();
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut held = match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let pid = self.holder().map(|p| format!(" (pid {p})")).unwrap_or_default();
                bail!(
                    "data directory {} is in use by another feiyun server{pid}; stop it first (`feiyun teardown` stops it and cleans the host), or pass another --data-dir",
                    self.root.display()
                );
            }
            Err((_, e)) => bail!("cannot lock {}: {e}", path.display()),
        };
        held.set_len(0)?;
        held.seek(SeekFrom::Start(0))?;
        writeln!(held, "{}", std::process::id())?;
        held.sync_all()?;
        Ok(DataDirLock { _held: held })
    }

    /// The PID of the process holding the data directory, if one does.
    pub fn holder(&self) -> Option<u32> {
        let file = fs::File::open(self.lock_file()).ok()?;
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock) {
            // Nobody holds it (we just took it shared; dropping the guard releases it).
            Ok(_) => None,
            Err(_) => fs::read_to_string(self.lock_file()).ok()?.trim().parse().ok(),
        }
    }

    /// Open the store and master key (creating the directory if needed).
    pub fn open(&self) -> anyhow::Result<(Arc<dyn Store>, Sealer)> {
        fs::create_dir_all(&self.root).with_context(|| format!("cannot create {}", self.root.display()))?;
        let store = SqliteStore::open(&self.db()).with_context(|| format!("cannot open {}", self.db().display()))?;
        let sealer = Sealer::open_or_create(&self.master_key())?;
        Ok((Arc::new(store), sealer))
    }
}

/// Write a file only its owner can read, atomically.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// The catalog and price book a configuration names (the built-in ones by default); the price
/// book must price the configured region.
pub fn load_catalog_and_prices(config: &Config) -> anyhow::Result<(Catalog, feiyun_billing::prices::PriceBook)> {
    let catalog_text = match &config.catalog {
        Some(p) => fs::read_to_string(p).with_context(|| format!("cannot read catalog {p}"))?,
        None => BUILTIN_CATALOG.to_string(),
    };
    let catalog = Catalog::from_toml(&catalog_text)?;
    let prices_text = match &config.prices {
        Some(p) => fs::read_to_string(p).with_context(|| format!("cannot read price book {p}"))?,
        None => BUILTIN_PRICES.to_string(),
    };
    let prices = feiyun_billing::prices::PriceBook::from_toml(&prices_text)?;
    prices.region(&config.region.id).with_context(|| {
        format!("the price book has no prices for region {}; add a [[region]] with that id", config.region.id)
    })?;
    Ok((catalog, prices))
}

/// How to start a region's control plane.
pub struct RegionOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub config: Config,
}

/// A region's control plane, opened and listening, not yet serving.
pub struct Region {
    pub cp: Arc<ControlPlane>,
    pub data: DataDir,
    pub config: Config,
    listener: tokio::net::TcpListener,
    endpoint: SocketAddr,
    _lock: DataDirLock,
}

impl Region {
    /// Take the data directory, open the store and the control plane, bind the listener, and
    /// make sure the administrator exists.
    pub async fn open(opts: RegionOptions) -> anyhow::Result<Region> {
        let data = DataDir::new(&opts.data_dir);
        let lock = data.lock()?;
        let (store, sealer) = data.open()?;
        let (catalog, prices) = load_catalog_and_prices(&opts.config)?;
        let setup = RegionSetup {
            region: opts.config.region(),
            hosts: opts.config.hosts_setup(),
            stop_grace: Duration::from_secs(opts.config.instances.stop_grace_seconds),
            policy: opts.config.scheduler_policy()?,
            billing: opts.config.billing.setup(),
        };
        std::fs::create_dir_all(data.blobs()).with_context(|| format!("cannot create {}", data.blobs().display()))?;
        let network = opts.config.network.setup().map_err(|e| anyhow::anyhow!(e))?;
        let parts = Parts {
            store,
            catalog,
            setup,
            blob_dir: Some(data.blobs()),
            clock: Arc::new(SystemClock),
            sealer,
            prices,
            seed: None,
        };
        let cp = ControlPlane::with_network(parts, network)?;
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("cannot listen on {}", opts.listen))?;
        let endpoint = listener.local_addr()?;
        ensure_admin(&cp, &data, &endpoint.to_string())?;
        Ok(Region { cp, data, config: opts.config, listener, endpoint, _lock: lock })
    }

    pub fn endpoint(&self) -> SocketAddr {
        self.endpoint
    }

    /// Serve the API and the host protocol, and run the billing and host clocks, until `stop`
    /// turns true. Returns the data directory's lock: the caller holds it until everything else
    /// working on the directory (an embedded host) has finished too.
    pub async fn serve(self, stop: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<DataDirLock> {
        let cp = self.cp.clone();
        let billing_task = every(stop.clone(), self.config.billing.tick(), {
            let cp = cp.clone();
            move || cp.billing_tick()
        });
        let hosts_task = every(stop.clone(), Duration::from_secs(1), {
            let cp = cp.clone();
            move || cp.host_tick()
        });
        let peers_task = every(stop.clone(), cp.network_setup().peer_update_period, {
            let cp = cp.clone();
            move || cp.flush_peer_updates()
        });
        let api = Arc::new(http::Api::new(cp.clone(), self.config.api.clone()));
        let hosts = Arc::new(host_api::HostApi { cp: cp.clone(), max_body_bytes: 16 << 20 });
        let app = axum::Router::new().merge(host_api::routes(hosts)).fallback(http::handle).with_state(api);
        tracing::info!(endpoint = %self.endpoint, "feiyun region is up");
        eprintln!(
            "Feiyun region {} is serving on http://{} (data in {})",
            cp.region().id,
            self.endpoint,
            self.data.root.display()
        );
        let mut server_stop = stop.clone();
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|s| *s).await;
            })
            .await?;
        let _ = billing_task.await;
        let _ = hosts_task.await;
        let _ = peers_task.await;
        Ok(self._lock)
    }
}

/// Run `tick` every `period` off the executor until `stop` turns true.
fn every<F>(mut stop: tokio::sync::watch::Receiver<bool>, period: Duration, tick: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Result<(), feiyun_domain::DomainError> + Send + Sync + Clone + 'static,
{
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(period);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = timer.tick() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            let f = tick.clone();
            match tokio::task::spawn_blocking(f).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "region tick failed"),
                Err(e) => tracing::error!(error = %e, "region tick panicked"),
            }
        }
    })
}

/// A watch that turns true on Ctrl-C or SIGTERM.
pub fn stop_on_signals() -> (tokio::sync::watch::Sender<bool>, tokio::sync::watch::Receiver<bool>) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let sender = tx.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        eprintln!("Shutting down; instances keep running and are re-adopted at the next start");
        let _ = sender.send(true);
    });
    (tx, rx)
}

/// On first start, create the administrator and print its key once; always keep
/// `credentials.json` current with the endpoint.
pub fn ensure_admin(cp: &Arc<ControlPlane>, dd: &DataDir, endpoint: &str) -> anyhow::Result<()> {
    let (key_id, secret, first) = match cp.account_by_name(ADMIN_ACCOUNT)? {
        None => {
            let (_, key) = cp.create_account(ADMIN_ACCOUNT)?;
            (key.id, key.secret, true)
        }
        Some(_) => {
            let existing: Option<serde_json::Value> =
                fs::read(dd.credentials()).ok().and_then(|b| serde_json::from_slice(&b).ok());
            match existing.as_ref().and_then(|v| v["AccessKeyId"].as_str()).map(str::to_string) {
                Some(id) => {
                    let key = cp.access_key(&id)?.context("credentials.json names an unknown access key")?;
                    (key.id, key.secret, false)
                }
                None => bail!("credentials.json is missing; run `feiyun account create NAME` for a new key"),
            }
        }
    };
    let creds = json!({"AccessKeyId": key_id, "AccessKeySecret": secret, "Endpoint": endpoint});
    write_private(&dd.credentials(), &serde_json::to_string_pretty(&creds)?)?;
    if first {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"AccountName": ADMIN_ACCOUNT, "AccessKeyId": key_id, "AccessKeySecret": secret, "Endpoint": endpoint})
            )?
        );
        eprintln!(
            "Administrator created. The secret is shown once here and kept in {} (mode 0600).",
            dd.credentials().display()
        );
    }
    Ok(())
}
