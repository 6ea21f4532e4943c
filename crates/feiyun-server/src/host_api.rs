//! The host protocol over HTTP (paths in [`feiyun_hostproto::http`]), on the API's port. A host
//! authenticates with `Authorization: Bearer` — a join token to register, then the credential it
//! was given. A tenant's signed request here is refused: host credentials and access keys open
//! different doors. Every refusal is logged and changes nothing.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use axum::routing::{any, get, post};
use axum::Router;
use feiyun_control::ControlPlane;
use feiyun_hostproto::http::{self as paths, parse_wait, ErrorBody};
use feiyun_hostproto::{Credential, Heartbeat, HostSpec, ProtoError, Report};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The shared state of the host routes.
pub struct HostApi {
    pub cp: Arc<ControlPlane>,
    pub max_body_bytes: usize,
}

fn answer<T: Serialize>(result: Result<T, ProtoError>, what: &str) -> Response<Body> {
    let (status, body) = match result {
        Ok(v) => (200, serde_json::to_vec(&v).unwrap_or_default()),
        Err(e) => {
            tracing::warn!(target: "feiyun::hosts", call = what, code = e.code(), error = %e, "host API call refused");
            (e.status(), serde_json::to_vec(&ErrorBody::from(&e)).unwrap_or_default())
        }
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn bearer(headers: &HeaderMap) -> Result<String, ProtoError> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    match value.strip_prefix("Bearer ") {
        Some(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        _ if value.starts_with("ACS3-") => {
            Err(ProtoError::Unauthorized("an access key cannot call the host API; hosts use their credential".into()))
        }
        _ => Err(ProtoError::Unauthorized("missing `Authorization: Bearer <credential>`".into())),
    }
}

/// A request's body, read before anything is decided: a refusal that leaves the body unread
/// makes the server close the connection after answering, and a client that already sent its
/// next request on that connection loses it.
async fn read_body(api: &HostApi, body: Body) -> Result<axum::body::Bytes, ProtoError> {
    to_bytes(body, api.max_body_bytes)
        .await
        .map_err(|_| ProtoError::BadRequest(format!("the body is larger than {} bytes", api.max_body_bytes)))
}

fn parse_json<T: DeserializeOwned>(bytes: Result<axum::body::Bytes, ProtoError>) -> Result<T, ProtoError> {
    serde_json::from_slice(&bytes?)
        .map_err(|e| ProtoError::BadRequest(format!("the body is not the expected JSON: {e}")))
}

/// Read and drop what a refused request sent (up to 64 KiB), for the reason [`read_body`] gives.
async fn drain(body: Body) {
    let _ = to_bytes(body, 64 * 1024).await;
}

pub async fn register(State(api): State<Arc<HostApi>>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = read_body(&api, body).await;
    let res = async {
        let token = bearer(&parts.headers)?;
        let spec: HostSpec = parse_json(body)?;
        let cp = api.cp.clone();
        tokio::task::spawn_blocking(move || cp.register_host(&token, spec))
            .await
            .map_err(|e| ProtoError::Internal(e.to_string()))?
    }
    .await;
    answer(res, "register")
}

pub async fn heartbeat(State(api): State<Arc<HostApi>>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = read_body(&api, body).await;
    let res = async {
        let cred = Credential(bearer(&parts.headers)?);
        let beat: Heartbeat = parse_json(body)?;
        api.cp.host_heartbeat(&cred, &beat)
    }
    .await;
    answer(res, "heartbeat")
}

#[derive(serde::Deserialize)]
pub struct IntentQuery {
    since: Option<String>,
    wait: Option<String>,
}

pub async fn intent(
    State(api): State<Arc<HostApi>>,
    Query(q): Query<IntentQuery>,
    headers: HeaderMap,
) -> Response<Body> {
    let res = async {
        let cred = Credential(bearer(&headers)?);
        let since = match q.since.as_deref() {
            None | Some("") => 0,
            Some(s) => s.parse().map_err(|_| ProtoError::BadRequest(format!("since={s:?}: expected a revision")))?,
        };
        let wait = match q.wait.as_deref() {
            None | Some("") => std::time::Duration::ZERO,
            Some(w) => parse_wait(w)?,
        };
        api.cp.host_intent(&cred, since, wait).await
    }
    .await;
    answer(res, "intent")
}

pub async fn report(State(api): State<Arc<HostApi>>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = read_body(&api, body).await;
    let res = async {
        let cred = Credential(bearer(&parts.headers)?);
        let report: Report = parse_json(body)?;
        let cp = api.cp.clone();
        tokio::task::spawn_blocking(move || cp.host_report(&cred, report))
            .await
            .map_err(|e| ProtoError::Internal(e.to_string()))??;
        Ok(serde_json::json!({}))
    }
    .await;
    answer(res, "report")
}

pub async fn image(State(api): State<Arc<HostApi>>, Path(id): Path<String>, headers: HeaderMap) -> Response<Body> {
    let res = async {
        let cred = Credential(bearer(&headers)?);
        let path = api.cp.host_image_archive(&cred, &id)?;
        let file = tokio::fs::File::open(&path).await.map_err(|e| ProtoError::NotFound(format!("image {id}: {e}")))?;
        Ok(file)
    }
    .await;
    match res {
        Ok(file) => {
            let mut r = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(file)));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
            r
        }
        Err(e) => answer::<()>(Err(e), "image"),
    }
}

fn blob_kind(kind: &str) -> Result<feiyun_hostproto::BlobKind, ProtoError> {
    feiyun_hostproto::BlobKind::parse(kind).ok_or_else(|| ProtoError::NotFound(format!("no blobs of kind {kind:?}")))
}

/// `PUT /host/v1/blobs/{kind}/{id}`: a blob a task of this host produced (a captured image, an
/// uploaded snapshot or disk), streamed to disk with its SHA-256 computed on the way.
pub async fn put_blob(
    State(api): State<Arc<HostApi>>,
    Path((kind, id)): Path<(String, String)>,
    req: Request<Body>,
) -> Response<Body> {
    let res = async {
        let cred = Credential(bearer(req.headers())?);
        let dest = api.cp.host_upload_target(&cred, blob_kind(&kind)?, &id)?;
        receive(req.into_body(), &dest).await
    }
    .await;
    answer(res, "put blob")
}

async fn receive(body: Body, dest: &std::path::Path) -> Result<feiyun_hostproto::BlobInfo, ProtoError> {
    use futures_util::StreamExt;
    use sha2::Digest;
    use tokio::io::AsyncWriteExt;
    let io = |e: std::io::Error| ProtoError::Internal(format!("{}: {e}", dest.display()));
    let tmp = dest.with_extension("partial");
    let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
    let mut h = sha2::Sha256::new();
    let mut n = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ProtoError::BadRequest(format!("the upload broke off: {e}")))?;
        h.update(&chunk);
        file.write_all(&chunk).await.map_err(io)?;
        n += chunk.len() as u64;
    }
    file.sync_all().await.map_err(io)?;
    tokio::fs::rename(&tmp, dest).await.map_err(io)?;
    Ok(feiyun_hostproto::BlobInfo { sha256: hex::encode(h.finalize()), size_bytes: n })
}

/// `GET /host/v1/blobs/{kind}/{id}`.
pub async fn get_blob(
    State(api): State<Arc<HostApi>>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response<Body> {
    let res = async {
        let cred = Credential(bearer(&headers)?);
        let path = api.cp.host_blob(&cred, blob_kind(&kind)?, &id)?;
        tokio::fs::File::open(&path).await.map_err(|e| ProtoError::NotFound(format!("{kind} {id}: {e}")))
    }
    .await;
    match res {
        Ok(file) => {
            let mut r = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(file)));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            r
        }
        Err(e) => answer::<()>(Err(e), "get blob"),
    }
}

/// Any other path under the host prefix.
pub async fn unknown(req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    drain(body).await;
    answer::<()>(Err(ProtoError::NotFound(format!("no host API at {} {}", parts.method, parts.uri.path()))), "unknown")
}

/// A host path asked with a method it does not take: 405, in JSON like every other answer.
async fn wrong_method(req: Request<Body>, allow: &'static str) -> Response<Body> {
    let (parts, body) = req.into_parts();
    drain(body).await;
    let (method, path) = (parts.method, parts.uri.path().to_string());
    tracing::warn!(target: "feiyun::hosts", %method, %path, "host API call refused: wrong method");
    let body = ErrorBody {
        code: "MethodNotAllowed".into(),
        message: format!("{path} takes {allow}, not {method}"),
        epoch: None,
    };
    let mut r = Response::new(Body::from(serde_json::to_vec(&body).unwrap_or_default()));
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// The host protocol's routes: every path under [`paths::PREFIX`], whatever the method.
pub fn routes<S: Clone + Send + Sync + 'static>(api: Arc<HostApi>) -> Router<S> {
    let post_only = || |req: Request<Body>| wrong_method(req, "POST");
    let get_only = || |req: Request<Body>| wrong_method(req, "GET");
    Router::new()
        .route(paths::REGISTER, post(register).fallback(post_only()))
        .route(paths::HEARTBEAT, post(heartbeat).fallback(post_only()))
        .route(paths::INTENT, get(intent).fallback(get_only()))
        .route(paths::REPORT, post(report).fallback(post_only()))
        .route(&format!("{}{{id}}", paths::IMAGES), get(image).fallback(get_only()))
        .route(
            &format!("{}{{kind}}/{{id}}", paths::BLOBS),
            get(get_blob).put(put_blob).fallback(|req: Request<Body>| wrong_method(req, "GET, PUT")),
        )
        .route(paths::PREFIX, any(unknown))
        .route(&format!("{}{{*rest}}", paths::PREFIX), any(unknown))
        .with_state(api)
}
