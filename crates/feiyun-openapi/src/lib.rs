//! The Alibaba Cloud OpenAPI wire layer.
//!
//! Owns everything a client sees on the wire: the V2 and V3 signature schemes, form decoding of
//! query and body parameters, the description of every product, action and parameter it
//! answers ([`api`]), routing by Version then Action ([`route`]) and running the routed call
//! ([`dispatch`]), the exact response field names, order and list wrapping of ECS 2014-05-26 and
//! VPC 2016-04-28, the BSS envelope, writing answers and errors as JSON or XML ([`render`]), and
//! the mapping of domain errors to error codes and HTTP statuses. It turns parameters into the
//! typed commands of `feiyun_domain::ops`, calls the control plane, and renders the result.
//!
//! Must not: decide anything about instances (the domain and control plane do), speak HTTP
//! (the server hands it decoded parts), or hold state.
#![forbid(unsafe_code)]
#![recursion_limit = "256"]

pub mod api;
mod bss;
mod dispatch;
mod ecs;
pub mod error;
mod feiyun;
mod idempotency;
pub mod params;
pub mod render;
pub mod sign;
mod vpc;

pub use api::{route, Route};
pub use dispatch::{dispatch, error_body, render_error, Ctx};
pub use error::ApiError;
pub(crate) use idempotency::client_token;
pub use params::Params;
pub use render::Format;

/// A new request id: an uppercase UUID, as Alibaba Cloud returns.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// Parameters that belong to the signature or the protocol, not to the API call.
pub const PROTOCOL_PARAMS: &[&str] = &[
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
    "Format",
    "Version",
    "Action",
    "SecurityToken",
    "ClientToken",
];

/// A stable digest of a call's API parameters (protocol parameters excluded), for idempotency.
pub fn fingerprint(action: &str, params: &Params) -> String {
    let mut s = String::from(action);
    for (k, v) in params.iter() {
        if PROTOCOL_PARAMS.contains(&k.as_str()) {
            continue;
        }
        s.push('&');
        s.push_str(&sign::pct(k));
        s.push('=');
        s.push_str(&sign::pct(v));
    }
    sign::sha256_hex(s.as_bytes())
}
