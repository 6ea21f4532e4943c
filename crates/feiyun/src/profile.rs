//! Whose key an API call is signed with: a profile (an account's key file), explicit credentials,
//! the environment, or the administrator's `credentials.json`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use feiyun_server::DataDir;

pub struct Credentials {
    pub key_id: String,
    pub secret: String,
    pub endpoint: String,
}

/// Where credentials come from, in the order they are tried.
#[derive(Default, Clone)]
pub struct Source {
    /// A key file (`credentials.json` or a profile's file).
    pub file: Option<PathBuf>,
    /// An account name: `<data-dir>/profiles/<name>.json` (`admin` is `credentials.json`).
    pub profile: Option<String>,
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

pub fn resolve(data_dir: &Path, source: &Source) -> anyhow::Result<Credentials> {
    let dd = DataDir::new(data_dir);
    let profile = source.profile.clone().or_else(|| env("FEIYUN_PROFILE"));
    let file = match (&source.file, &profile) {
        (Some(f), _) => Some(f.clone()),
        (None, Some(p)) if p == feiyun_server::ADMIN_ACCOUNT => Some(dd.credentials()),
        (None, Some(p)) => {
            let path = dd.profile(p);
            if !path.exists() {
                anyhow::bail!(
                    "no profile {p:?}: {} does not exist (profiles are written by `feiyun account create {p}`; `feiyun account list` shows them)",
                    path.display()
                );
            }
            Some(path)
        }
        (None, None) => None,
    };
    if file.is_none() {
        if let (Some(key_id), Some(secret), Some(endpoint)) =
            (env("FEIYUN_ACCESS_KEY_ID"), env("FEIYUN_ACCESS_KEY_SECRET"), env("FEIYUN_ENDPOINT"))
        {
            return Ok(Credentials { key_id, secret, endpoint });
        }
    }
    let explicit = file.is_some();
    let path = file.unwrap_or_else(|| dd.credentials());
    let text = std::fs::read(&path).with_context(|| {
        format!("no credentials: pass --profile NAME, set FEIYUN_ACCESS_KEY_ID, FEIYUN_ACCESS_KEY_SECRET and FEIYUN_ENDPOINT, or pass --data-dir (tried {})", path.display())
    })?;
    let v: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let get = |k: &str| v[k].as_str().map(str::to_string).with_context(|| format!("{} has no {k}", path.display()));
    // The endpoint of a profile written before the server first started comes from the
    // administrator's file, which the server keeps current.
    let endpoint = match (env("FEIYUN_ENDPOINT"), get("Endpoint")) {
        (Some(e), _) => e,
        (None, Ok(e)) if !e.is_empty() => e,
        _ => {
            let admin: serde_json::Value = std::fs::read(dd.credentials())
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .with_context(|| {
                    format!(
                        "{} names no Endpoint and the region's credentials.json is missing; set FEIYUN_ENDPOINT",
                        path.display()
                    )
                })?;
            admin["Endpoint"].as_str().map(str::to_string).context("credentials.json has no Endpoint")?
        }
    };
    Ok(Credentials {
        key_id: if explicit {
            get("AccessKeyId")?
        } else {
            env("FEIYUN_ACCESS_KEY_ID").map(Ok).unwrap_or_else(|| get("AccessKeyId"))?
        },
        secret: if explicit {
            get("AccessKeySecret")?
        } else {
            env("FEIYUN_ACCESS_KEY_SECRET").map(Ok).unwrap_or_else(|| get("AccessKeySecret"))?
        },
        endpoint,
    })
}
