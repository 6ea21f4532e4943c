//! The host API over HTTP: what it answers to requests no agent sends. Every answer is JSON with
//! a code and a message, and nothing reaches the control plane.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::http::{header, Method, Request, StatusCode};
use feiyun_server::host_api::{routes, HostApi};
use feiyun_server::{Config, Region, RegionOptions};
use tower::ServiceExt;

async fn region(dir: &std::path::Path) -> Region {
    Region::open(RegionOptions {
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".parse().expect("address"),
        config: Config::default(),
    })
    .await
    .expect("region")
}

async fn send(app: &axum::Router, method: Method, path: &str, auth: &str, body: &str) -> (StatusCode, String, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, auth)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("answer");
    let status = resp.status();
    let kind = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let allow = resp.headers().get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.expect("body");
    let json: serde_json::Value = serde_json::from_slice(&bytes).expect("a JSON body");
    assert_eq!(kind, "application/json");
    assert!(json["Message"].as_str().is_some_and(|m| !m.is_empty()), "{json}");
    (status, json["Code"].as_str().unwrap_or("").to_string(), allow)
}

#[tokio::test]
async fn requests_no_agent_sends_get_json_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let region = region(dir.path()).await;
    let app: axum::Router = routes(Arc::new(HostApi { cp: region.cp.clone(), max_body_bytes: 1 << 20 }));
    let bearer = "Bearer h-nobody.secret";
    // A path asked with a method it does not take.
    for (method, path, allow) in [
        (Method::GET, "/host/v1/register", "POST"),
        (Method::DELETE, "/host/v1/report", "POST"),
        (Method::PUT, "/host/v1/heartbeat", "POST"),
        (Method::POST, "/host/v1/intent", "GET"),
        (Method::POST, "/host/v1/images/img-1", "GET"),
    ] {
        let got = send(&app, method.clone(), path, bearer, "{}").await;
        assert_eq!(got, (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed".into(), allow.into()), "{method} {path}");
    }
    // Paths the host API does not have, the bare prefix included.
    for path in ["/host/v1/", "/host/v1/nothing", "/host/v1/register/again"] {
        let (status, code, _) = send(&app, Method::POST, path, bearer, "{}").await;
        assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "NotFound"), "{path}");
    }
    // Garbage, a tenant's signature, an unknown credential.
    let (status, code, _) = send(&app, Method::POST, "/host/v1/heartbeat", bearer, "{\"Epoch\": 1,").await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "BadRequest"));
    let acs3 = "ACS3-HMAC-SHA256 Credential=LTAI000,SignedHeaders=host,Signature=00";
    let (status, code, _) = send(&app, Method::POST, "/host/v1/heartbeat", acs3, "{\"Epoch\":1,\"Instances\":0}").await;
    assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "Unauthorized"));
    let (status, code, _) =
        send(&app, Method::POST, "/host/v1/heartbeat", bearer, "{\"Epoch\":1,\"Instances\":0}").await;
    assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "Unauthorized"));
    assert!(region.cp.list_hosts().is_empty(), "nothing registered");
}

/// Two requests on one connection, the first refused before its body arrived: both are answered.
async fn answers_on_one_connection(app: axum::Router, first_head: &str) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    conn.write_all(first_head.as_bytes()).await.expect("head");
    // The body comes a moment after the head (as a client that writes them apart sends it), and
    // the next request right after it.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    conn.write_all(b"{}GET /host/v1/nothing HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer h-nobody.secret\r\n\r\n")
        .await
        .expect("body and next request");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let answers = String::from_utf8_lossy(&seen).matches("HTTP/1.1 ").count();
        if answers >= 2 {
            break;
        }
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    server.abort();
    String::from_utf8_lossy(&seen).matches("HTTP/1.1 ").count()
}

#[tokio::test]
async fn a_refused_request_leaves_its_connection_usable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let region = region(dir.path()).await;
    let app: axum::Router = routes(Arc::new(HostApi { cp: region.cp.clone(), max_body_bytes: 1 << 20 }));
    let head = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer h-nobody.secret\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"
        )
    };
    // A path the host API does not have, a method a path does not take, a credential it does not
    // know.
    for path in ["/host/v1/nothing", "/host/v1/intent", "/host/v1/report", "/host/v1/heartbeat"] {
        assert_eq!(answers_on_one_connection(app.clone(), &head(path)).await, 2, "{path}");
    }
}
