//! Logging of the long-running commands (`up`, `agent`): to standard error, filtered by
//! `FEIYUN_LOG` (default `info`).

pub fn init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FEIYUN_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .try_init();
}
