//! The crate's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The desired state contradicts itself or breaks a naming or addressing rule.
    #[error("Invalid desired state: {0}")]
    Invalid(String),
    #[error("Netlink {op} failed: {source}")]
    Netlink { op: String, source: rtnetlink::Error },
    #[error("IO error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("System call {op} failed: {source}")]
    Sys { op: String, source: nix::Error },
    #[error("{tool} failed: {message}")]
    Tool { tool: String, message: String },
    #[error("Unexpected {what}: {detail}")]
    Parse { what: String, detail: String },
    #[error("Worker thread for {0} panicked")]
    Thread(String),
    /// Raised on purpose by the fault-injection hook (tests only).
    #[error("Injected failure after step {0}")]
    Injected(usize),
}

pub type Result<T> = std::result::Result<T, NetError>;

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> NetError {
    let path = path.into();
    move |source| NetError::Io { path, source }
}

pub(crate) fn sys(op: impl Into<String>) -> impl FnOnce(nix::Error) -> NetError {
    let op = op.into();
    move |source| NetError::Sys { op, source }
}

pub(crate) fn nl(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetError {
    let op = op.into();
    move |source| NetError::Netlink { op, source }
}
