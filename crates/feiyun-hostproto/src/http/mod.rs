//! The host protocol over HTTP/JSON, served on the region's API port.
//!
//! | method and path | credential | body → answer |
//! |---|---|---|
//! | `POST /host/v1/register` | join token | [`HostSpec`] → [`Registered`] |
//! | `POST /host/v1/heartbeat` | host credential | [`Heartbeat`] → [`HeartbeatAck`] |
//! | `GET /host/v1/intent?since=REV&wait=60s` | host credential | → [`Intent`] (long-poll) |
//! | `POST /host/v1/report` | host credential | [`Report`] → `{}` |
//! | `GET /host/v1/images/{id}` | host credential | → the image archive |
//! | `PUT /host/v1/blobs/{kind}/{id}` | host credential | the blob's bytes → [`BlobInfo`] |
//! | `GET /host/v1/blobs/{kind}/{id}` | host credential | → the blob's bytes |
//!
//! Credentials travel as `Authorization: Bearer …`. Errors are `{"Code", "Message", "Epoch"}`
//! with the status of [`ProtoError::status`].
//!
//! [`HostSpec`]: crate::HostSpec
//! [`Registered`]: crate::Registered
//! [`Heartbeat`]: crate::Heartbeat
//! [`HeartbeatAck`]: crate::HeartbeatAck
//! [`Intent`]: crate::Intent
//! [`Report`]: crate::Report
//! [`BlobInfo`]: crate::BlobInfo

use serde::{Deserialize, Serialize};

use crate::ProtoError;

/// Every host path starts with this; nothing else on the API port does.
pub const PREFIX: &str = "/host/v1/";
pub const REGISTER: &str = "/host/v1/register";
pub const HEARTBEAT: &str = "/host/v1/heartbeat";
pub const INTENT: &str = "/host/v1/intent";
pub const REPORT: &str = "/host/v1/report";
pub const IMAGES: &str = "/host/v1/images/";
/// Followed by `{kind}/{id}` (kind: `image`, `snapshot`, `disk`).
pub const BLOBS: &str = "/host/v1/blobs/";

/// Longest long-poll the control plane holds open.
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The JSON body of an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
}

impl From<&ProtoError> for ErrorBody {
    fn from(e: &ProtoError) -> Self {
        ErrorBody {
            code: e.code().to_string(),
            message: e.to_string(),
            epoch: match e {
                ProtoError::Fenced { epoch } => Some(*epoch),
                _ => None,
            },
        }
    }
}

impl ErrorBody {
    /// The error an answer with this body and status stands for.
    pub fn into_error(self, status: u16) -> ProtoError {
        let m = self.message;
        match self.code.as_str() {
            "Unauthorized" => ProtoError::Unauthorized(m),
            "Forbidden" => ProtoError::Forbidden(m),
            "Fenced" => ProtoError::Fenced { epoch: self.epoch.unwrap_or(0) },
            "Conflict" => ProtoError::Conflict(m),
            "BadRequest" => ProtoError::BadRequest(m),
            "NotFound" => ProtoError::NotFound(m),
            "UnsupportedVersion" => ProtoError::BadRequest(m),
            "Unavailable" => ProtoError::Unavailable(m),
            _ if status >= 500 => ProtoError::Unavailable(format!("{status}: {m}")),
            _ => ProtoError::Internal(format!("{status} {}: {m}", self.code)),
        }
    }
}

/// Parse `wait=30s` / `wait=500ms` / `wait=30` (seconds), capped at [`MAX_WAIT`].
pub fn parse_wait(text: &str) -> Result<std::time::Duration, ProtoError> {
    let bad = || ProtoError::BadRequest(format!("wait={text:?}: expected a duration such as 30s or 500ms"));
    let (num, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000)
    } else {
        (text, 1000)
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let ms = n.checked_mul(scale).ok_or_else(bad)?;
    Ok(std::time::Duration::from_millis(ms).min(MAX_WAIT))
}

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
pub use client::HttpLink;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits() {
        assert_eq!(parse_wait("30s").ok(), Some(std::time::Duration::from_secs(30)));
        assert_eq!(parse_wait("250ms").ok(), Some(std::time::Duration::from_millis(250)));
        assert_eq!(parse_wait("5").ok(), Some(std::time::Duration::from_secs(5)));
        assert_eq!(parse_wait("99999s").ok(), Some(MAX_WAIT));
        for bad in ["", "s", "-1s", "1h", "1.5s", "18446744073709551615s"] {
            assert!(parse_wait(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_bodies_round_trip() {
        for e in [
            ProtoError::Fenced { epoch: 4 },
            ProtoError::Unauthorized("revoked".into()),
            ProtoError::Forbidden("not yours".into()),
            ProtoError::Conflict("name".into()),
        ] {
            let body = ErrorBody::from(&e);
            let back: ErrorBody = serde_json::from_str(&serde_json::to_string(&body).expect("ser")).expect("de");
            let again = back.into_error(e.status());
            assert_eq!(again.code(), e.code());
            if let ProtoError::Fenced { epoch } = again {
                assert_eq!(epoch, 4);
            }
        }
    }
}
