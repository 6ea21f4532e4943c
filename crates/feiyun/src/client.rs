//! A blocking API client that signs like the official V3 SDKs (`ACS3-HMAC-SHA256`), for any
//! product's version: ECS 2014-05-26, BssOpenApi 2017-12-14 or Feiyun's own.

use std::time::Duration;

use feiyun_openapi::sign::{pct, sha256_hex, sign_v3};
use serde_json::Value;

/// The ECS version, which [`Client::call`] and [`Client::call_text`] speak.
pub const ECS_VERSION: &str = "2014-05-26";

/// Parameters longer than this, URL-encoded, go in a form body instead of the query string
/// (a TCO plan or a trace does not fit in a URL).
const FORM_BODY_ABOVE: usize = 4096;

pub struct Client {
    agent: ureq::Agent,
    host: String,
    key_id: String,
    secret: String,
}

/// An HTTP status and the parsed JSON body (`Value::Null` when the body was not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn ok(&self) -> bool {
        self.status < 300
    }
}

impl Client {
    /// `endpoint` is `host:port` (an `http://` prefix is accepted).
    pub fn new(endpoint: &str, key_id: &str, secret: &str) -> Client {
        let agent =
            ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).max_idle_connections_per_host(64).build();
        Client {
            agent,
            host: endpoint.trim_start_matches("http://").trim_end_matches('/').to_string(),
            key_id: key_id.to_string(),
            secret: secret.to_string(),
        }
    }

    /// Call an ECS 2014-05-26 action.
    pub fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<Reply, String> {
        self.call_in(ECS_VERSION, action, params)
    }

    /// Call an action of the product whose API version is `version`.
    pub fn call_in(&self, version: &str, action: &str, params: &[(&str, &str)]) -> Result<Reply, String> {
        let (status, text) = self.call_text_in(version, action, params)?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply { status, body, text })
    }

    /// Like [`Client::call`], returning the raw body without parsing it.
    pub fn call_text(&self, action: &str, params: &[(&str, &str)]) -> Result<(u16, String), String> {
        self.call_text_in(ECS_VERSION, action, params)
    }

    /// Like [`Client::call_in`], returning the raw body without parsing it.
    pub fn call_text_in(&self, version: &str, action: &str, params: &[(&str, &str)]) -> Result<(u16, String), String> {
        let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let encoded = pairs.iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect::<Vec<_>>().join("&");
        let (query, body) =
            if encoded.len() > FORM_BODY_ABOVE { (Vec::new(), encoded.into_bytes()) } else { (pairs, Vec::new()) };
        let headers = vec![
            ("host".to_string(), self.host.clone()),
            ("x-acs-action".to_string(), action.to_string()),
            ("x-acs-version".to_string(), version.to_string()),
            ("x-acs-date".to_string(), chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            ("x-acs-signature-nonce".to_string(), uuid::Uuid::new_v4().simple().to_string()),
            ("x-acs-content-sha256".to_string(), sha256_hex(&body)),
        ];
        let auth = sign_v3("POST", &query, &headers, &body, &self.key_id, &self.secret);
        let qs: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect();
        let url = format!("http://{}/?{}", self.host, qs.join("&"));
        let mut req = self.agent.post(&url).set("Authorization", &auth);
        for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
            req = req.set(k, v);
        }
        if !body.is_empty() {
            req = req.set("Content-Type", "application/x-www-form-urlencoded");
        }
        let (status, text) = match req.send_bytes(&body) {
            Ok(r) => (r.status(), r.into_string().map_err(|e| e.to_string())?),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().map_err(|e| e.to_string())?),
            Err(e) => return Err(format!("cannot reach {}: {e}", self.host)),
        };
        Ok((status, text))
    }
}
