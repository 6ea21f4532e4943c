//! The one-machine region: configuration, start-up and the HTTP front of the control plane.
//!
//! Owns bootstrap (data directory, store, master key, built-in image, runtime, control plane,
//! first administrator, host agent) and the HTTP listener that hands every request to the
//! OpenAPI layer.
//!
//! Must not: interpret API parameters or shape responses (the OpenAPI layer does), or change
//! state except through the control plane.

pub mod config;
pub mod http;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use feiyun_agent::Agent;
use feiyun_control::{ControlPlane, Parts, RegionSetup, Sealer, SystemClock};
use feiyun_domain::catalog::Catalog;
use feiyun_runtime::images::{find_busybox, ImageStore};
use feiyun_runtime::runc::{find_runc, RuncRuntime};
use feiyun_store::{SqliteStore, Store};
use serde_json::json;

pub use config::Config;

/// The price book shipped with Feiyun (operator defaults, not list prices).
pub const BUILTIN_PRICES: &str = include_str!("../../../catalog/prices.toml");

/// The catalog shipped with Feiyun.
pub const BUILTIN_CATALOG: &str = include_str!("../../../catalog/instance-types.toml");

pub const ADMIN_ACCOUNT: &str = "admin";

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
    pub fn images(&self) -> PathBuf {
        self.root.join("images")
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

pub struct UpOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub config: Config,
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

/// Run a one-machine region in the foreground until Ctrl-C or SIGTERM. Instances keep running
/// after it returns.
pub async fn up(opts: UpOptions) -> anyhow::Result<()> {
    let dd = DataDir::new(&opts.data_dir);
    let _lock = dd.lock()?;
    let (store, sealer) = dd.open()?;
    let (catalog, prices) = load_catalog_and_prices(&opts.config)?;
    let Some(runc) = find_runc() else { bail!("runc is not installed: install it (Debian: apt-get install runc)") };
    let Some(busybox) = find_busybox() else {
        bail!("busybox is not installed: install it (Debian: apt-get install busybox-static)")
    };
    let images = Arc::new(ImageStore::new(dd.images()));
    let now = chrono::Utc::now();
    images.ensure_builtin(&busybox, &now.format("%Y-%m-%dT%H:%M:%SZ").to_string())?;
    let runtime = Arc::new(RuncRuntime::new(runc, dd.runtime(), "feiyun")?);
    let host = opts.config.local_host();
    let setup = RegionSetup {
        region: opts.config.region(),
        hosts: vec![host.clone()],
        stop_grace: Duration::from_secs(opts.config.instances.stop_grace_seconds),
        policy: opts.config.scheduler_policy()?,
        billing: opts.config.billing.setup(),
    };
    let cp = ControlPlane::new(Parts {
        store: store.clone(),
        catalog,
        setup,
        images,
        runtime: runtime.clone(),
        clock: Arc::new(SystemClock),
        sealer,
        prices,
        seed: None,
    })?;

    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    let endpoint = listener.local_addr()?;
    ensure_admin(&cp, &dd, &endpoint.to_string())?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let agent = Agent::new(&host.id, runtime, cp.clone(), cp.agent_wake());
    let mut agent_stop = stop_rx.clone();
    let agent_task = tokio::spawn(agent.run(async move {
        let _ = agent_stop.wait_for(|s| *s).await;
    }));

    // The billing loop: settlement, the spot market, arrears, expiry and reclaims.
    let billing_cp = cp.clone();
    let tick = opts.config.billing.tick();
    let mut billing_stop = stop_rx.clone();
    let billing_task = tokio::spawn(async move {
        let mut every = tokio::time::interval(tick);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = billing_stop.wait_for(|s| *s) => break,
            }
            let cp = billing_cp.clone();
            match tokio::task::spawn_blocking(move || cp.billing_tick()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "billing tick failed"),
                Err(e) => tracing::error!(error = %e, "billing tick panicked"),
            }
        }
    });

    let api = Arc::new(http::Api::new(cp.clone(), opts.config.api.clone()));
    let app = axum::Router::new().fallback(http::handle).with_state(api);
    tracing::info!(endpoint = %endpoint, host = %host.id, vcpus = host.capacity.vcpus, memory_mib = host.capacity.memory_mib, "feiyun region is up");
    eprintln!("Feiyun region {} is serving on http://{endpoint} (data in {})", cp.region().id, dd.root.display());
    let mut server_stop = stop_rx.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = server_stop.wait_for(|s| *s).await;
    });
    let signals = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        eprintln!("Shutting down; instances keep running and are re-adopted at the next start");
        let _ = stop_tx.send(true);
    };
    let (served, _) = tokio::join!(server, signals);
    served?;
    let _ = agent_task.await;
    let _ = billing_task.await;
    Ok(())
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
