//! The HTTP front: one port, every path. It reads the request, authenticates and throttles it;
//! the wire layer routes it (by Version then Action), runs it and writes its answer or its
//! error, as JSON or XML (the request's `Format` parameter or `Accept` header says which).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant as StdInstant;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use feiyun_control::{ControlPlane, NonceCheck};
use feiyun_openapi::params::{form_decode, Params};
use feiyun_openapi::sign::{claimed_key, verify, SignedRequest};
use feiyun_openapi::{dispatch, render_error, request_id, route, ApiError, Ctx, Format};

use crate::config::ApiConfig;

pub struct Api {
    pub cp: Arc<ControlPlane>,
    pub limits: ApiConfig,
    buckets: Mutex<HashMap<String, (f64, StdInstant)>>,
}

impl Api {
    pub fn new(cp: Arc<ControlPlane>, limits: ApiConfig) -> Api {
        Api { cp, limits, buckets: Mutex::new(HashMap::new()) }
    }

    /// Per-key token bucket.
    fn allow(&self, key: &str) -> bool {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        bucket_allows(&mut b, &self.limits, key, StdInstant::now())
    }
}

fn bucket_allows(b: &mut HashMap<String, (f64, StdInstant)>, limits: &ApiConfig, key: &str, now: StdInstant) -> bool {
    let (tokens, last) = b.entry(key.to_string()).or_insert((limits.burst, now));
    let elapsed = now.saturating_duration_since(*last).as_secs_f64();
    *tokens = (*tokens + elapsed * limits.requests_per_second).min(limits.burst);
    *last = (*last).max(now);
    if *tokens >= 1.0 {
        *tokens -= 1.0;
        true
    } else {
        false
    }
}

fn response(status: u16, format: Format, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    r
}

/// What is known of a request so far: its errors are written in its product's shape and in the
/// format it asked for.
#[derive(Default)]
struct Seen {
    version: Option<String>,
    format: Option<Format>,
}

/// The one handler for every request.
pub async fn handle(State(api): State<Arc<Api>>, req: Request<Body>) -> Response<Body> {
    let rid = request_id();
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_string();
    let mut seen = Seen::default();
    let result = serve(&api, req, &rid, &host, &mut seen).await;
    let format = seen.format.unwrap_or(Format::Json);
    match result {
        Ok(body) => response(200, format, body),
        Err(e) => {
            if e.status >= 500 {
                tracing::error!(request = %rid, code = %e.code, "request failed");
            }
            response(e.status, format, render_error(format, seen.version.as_deref(), &e, &rid, &host))
        }
    }
}

async fn serve(
    api: &Arc<Api>,
    req: Request<Body>,
    rid: &str,
    host: &str,
    seen: &mut Seen,
) -> Result<Vec<u8>, ApiError> {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, api.limits.max_body_bytes).await.map_err(|_| {
        ApiError::new(413, "InvalidParameter.TooLarge", "The request body is larger than the server accepts.")
    })?;
    let query = form_decode(parts.uri.query().unwrap_or(""))?;
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase().contains("application/x-www-form-urlencoded"))
        .unwrap_or(false);
    let form = if is_form && !body.is_empty() {
        let text = std::str::from_utf8(&body)
            .map_err(|_| ApiError::new(400, "InvalidParameter", "Request parameters must be UTF-8."))?;
        form_decode(text)?
    } else {
        Vec::new()
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    // The answer's format first, so that every later refusal is written in it.
    let format_param = query.iter().chain(form.iter()).find(|(k, _)| k == "Format").map(|(_, v)| v.as_str());
    let format = Format::of_request(format_param, header("accept").as_deref())?;
    seen.format = Some(format);
    let params = Params::from_pairs(query.iter().chain(form.iter()).cloned())?;
    let version = header("x-acs-version")
        .or_else(|| params.get("Version").map(str::to_string))
        .ok_or_else(|| ApiError::missing("Version"))?;
    let action = header("x-acs-action")
        .or_else(|| params.get("Action").map(str::to_string))
        .ok_or_else(|| ApiError::missing("Action"))?;
    seen.version = Some(version.clone());
    let route = route(&version, &action)?;
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: &query,
        form: &form,
        headers: &headers,
        body: &body,
    };
    let key_id = claimed_key(&signed)?;
    let cp = api.cp.clone();
    // Known keys are answered from memory; only a key created since (by `feiyun account create`)
    // needs the store, off the event loop.
    let key = match cp.cached_access_key(&key_id) {
        Some(k) => Some(k),
        None => {
            let k = key_id.clone();
            tokio::task::spawn_blocking(move || cp.access_key(&k)).await.map_err(|_| ApiError::internal())??
        }
    };
    let key =
        key.ok_or_else(|| ApiError::new(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."))?;
    if !key.enabled {
        return Err(ApiError::new(403, "Forbidden.AccessKeyDisabled", "The Access Key is disabled."));
    }
    let verified = verify(&signed, &key.secret)?;
    match api.cp.check_nonce(&key.id, &verified.nonce, verified.timestamp) {
        NonceCheck::Fresh => {}
        NonceCheck::Expired => {
            return Err(ApiError::new(
                400,
                "InvalidTimeStamp.Expired",
                "Specified time stamp or date value is expired.",
            ))
        }
        NonceCheck::Replayed => {
            return Err(ApiError::new(400, "SignatureNonceUsed", "Specified signature nonce was used already."))
        }
    }
    if !api.allow(&key.id) {
        return Err(ApiError::new(400, "Throttling", "Request was denied due to request throttling."));
    }
    let cp = api.cp.clone();
    let account = key.account_id.clone();
    let started = StdInstant::now();
    let host = host.to_string();
    let request_id = rid.to_string();
    let call = move || {
        let ctx =
            Ctx { cp: &cp, account_id: &account, params: &params, endpoint: &host, request_id: &request_id, format };
        dispatch(route, &ctx)
    };
    // Queries that only read memory are answered on the event loop; changes, and reads of the
    // store or long computations, run off it.
    let result = if route.blocking() {
        tokio::task::spawn_blocking(call).await.map_err(|_| ApiError::internal())?
    } else {
        call()
    };
    if route.mutating() {
        // The audit trail: every change attempt, who made it and how it ended.
        tracing::info!(
            target: "feiyun::audit",
            request = %rid,
            account = %key.account_id,
            access_key = %key.id,
            action = %route.action.name,
            outcome = %result.as_ref().map(|_| "Success".to_string()).unwrap_or_else(|e| e.code.clone()),
            ms = started.elapsed().as_millis() as u64,
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_refuses_past_the_burst_and_refills() {
        let limits = ApiConfig { requests_per_second: 10.0, burst: 3.0, max_body_bytes: 1024 };
        let mut buckets = HashMap::new();
        let t0 = StdInstant::now();
        let allow = |b: &mut HashMap<String, (f64, StdInstant)>, at: StdInstant| bucket_allows(b, &limits, "k", at);
        assert!(allow(&mut buckets, t0));
        assert!(allow(&mut buckets, t0));
        assert!(allow(&mut buckets, t0));
        assert!(!allow(&mut buckets, t0), "burst of 3 used up");
        assert!(allow(&mut buckets, t0 + std::time::Duration::from_millis(150)), "refilled at 10/s");
        assert!(bucket_allows(&mut buckets, &limits, "other", t0), "buckets are per key");
    }
}
