//! `feiyun account`: create tenants (each gets an access key and a profile to act as it) and
//! list them with their balances. Both work on the data directory while the server runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use feiyun_billing::money::format_cents;
use feiyun_server::DataDir;
use serde_json::json;

use crate::DEFAULT_DATA_DIR;

#[derive(Subcommand)]
pub enum AccountCmd {
    /// Create an account with an access key; prints it as JSON and saves it as the profile NAME
    /// (`<data-dir>/profiles/NAME.json`, mode 0600), so that `--profile NAME` acts as it.
    Create {
        name: String,
        #[arg(long, default_value = DEFAULT_DATA_DIR, env = "FEIYUN_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// List accounts: name, id, access keys, balance, and the profile file to act as each.
    List {
        #[arg(long, default_value = DEFAULT_DATA_DIR, env = "FEIYUN_DATA_DIR")]
        data_dir: PathBuf,
    },
}

pub fn run(cmd: AccountCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AccountCmd::Create { name, data_dir } => {
            let dd = DataDir::new(&data_dir);
            let (store, sealer) = dd.open()?;
            let mut rng = feiyun_control::rng::from_entropy();
            let (account, key) =
                feiyun_control::create_account(store.as_ref(), &sealer, &mut rng, chrono::Utc::now(), &name)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            let endpoint = std::fs::read(dd.credentials())
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v["Endpoint"].as_str().map(str::to_string))
                .unwrap_or_default();
            let profile = dd.profile(&account.name);
            std::fs::create_dir_all(dd.profiles())?;
            let body = json!({"AccountName": account.name, "AccessKeyId": key.id, "AccessKeySecret": key.secret, "Endpoint": endpoint});
            feiyun_server::write_private(&profile, &serde_json::to_string_pretty(&body)?)?;
            let mut out = body;
            out["Profile"] = json!(profile.display().to_string());
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        AccountCmd::List { data_dir } => {
            let dd = DataDir::new(&data_dir);
            if !dd.db().exists() {
                anyhow::bail!("{} holds no region (no feiyun.db); start one with `feiyun up`", dd.root.display());
            }
            let (store, _) = dd.open()?;
            let mut accounts = Vec::new();
            for a in store.load()?.accounts {
                let keys: Vec<String> = store.account_keys(&a.id)?.into_iter().map(|k| k.id).collect();
                let balance = store.balance_cents(&a.id)?;
                let profile =
                    if a.name == feiyun_server::ADMIN_ACCOUNT { dd.credentials() } else { dd.profile(&a.name) };
                accounts.push(json!({
                    "AccountName": a.name,
                    "AccountId": a.id,
                    "CreatedAt": a.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "AccessKeyIds": keys,
                    "Balance": format_cents(balance as i128),
                    "Profile": if profile.exists() { profile.display().to_string() } else { String::new() },
                }));
            }
            println!("{}", serde_json::to_string_pretty(&json!({"Accounts": accounts}))?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
