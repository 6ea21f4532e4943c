//! Signature verification: arbitrary methods, queries, bodies and headers (an Authorization header
//! included) must verify or fail with an API error, never panic; and a request we sign ourselves
//! must always verify.
#![no_main]

use feiyun_openapi::params::form_decode;
use feiyun_openapi::sign::{claimed_key, sha256_hex, sign_v3, verify, SignedRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\n');
    let query_text = parts.next().unwrap_or("");
    let body = parts.next().unwrap_or("");
    let auth = parts.next().unwrap_or("");
    let date = parts.next().unwrap_or("");
    let query = form_decode(query_text).unwrap_or_default();
    let form = form_decode(body).unwrap_or_default();
    let headers = vec![
        ("authorization".to_string(), auth.to_string()),
        ("x-acs-date".to_string(), date.to_string()),
        ("x-acs-signature-nonce".to_string(), "n".to_string()),
        ("host".to_string(), "h".to_string()),
    ];
    for hs in [&headers[..], &headers[1..]] {
        let req = SignedRequest { method: "POST", path: "/", query: &query, form: &form, headers: hs, body: body.as_bytes() };
        let _ = claimed_key(&req);
        let _ = verify(&req, "secret");
    }
    // Round trip: what we sign verifies.
    let signed_headers = vec![
        ("host".to_string(), "127.0.0.1:1".to_string()),
        ("x-acs-action".to_string(), "DescribeRegions".to_string()),
        ("x-acs-content-sha256".to_string(), sha256_hex(b"")),
        ("x-acs-date".to_string(), "2026-01-01T00:00:00Z".to_string()),
        ("x-acs-signature-nonce".to_string(), "abc".to_string()),
        ("x-acs-version".to_string(), "2014-05-26".to_string()),
    ];
    let auth = sign_v3("POST", &query, &signed_headers, b"", "key", "secret");
    let mut all = signed_headers.clone();
    all.push(("authorization".to_string(), auth));
    let req = SignedRequest { method: "POST", path: "/", query: &query, form: &[], headers: &all, body: b"" };
    assert!(verify(&req, "secret").is_ok());
});
