//! Answers made for reading: what the wire encodes for transport is decoded, and local times
//! without a zone are given in UTC. `--raw` and `--output json` skip all of this and print the
//! answer as the server sent it.
//!
//! - GetInstanceConsoleOutput: `ConsoleOutput` is base64 and `LastUpdateTime` is UTC+8 without a
//!   zone marker (as Alibaba Cloud documents); here the console is text and the time UTC
//!   (`2026-11-03T04:05:06Z`), and by default only the console is printed, as text.
//! - DescribeInvocationResults, DescribeInvocations, DescribeCommands: output and command content
//!   are base64 unless `ContentEncoding=PlainText` was asked for; here they are text.

use chrono::{NaiveDateTime, TimeZone};
use serde_json::Value;

/// Make `answer` readable (see the module's documentation). `params` are the call's.
pub fn humanize(action: &str, params: &[(String, String)], mut answer: Value) -> Value {
    let encoded = !params.iter().any(|(k, v)| k == "ContentEncoding" && v.eq_ignore_ascii_case("PlainText"));
    match action {
        "GetInstanceConsoleOutput" => {
            decode_field(&mut answer, "ConsoleOutput");
            if let Some(t) = answer.get_mut("LastUpdateTime") {
                if let Some(utc) = t.as_str().and_then(utc8_to_utc) {
                    *t = Value::String(utc);
                }
            }
        }
        "DescribeInvocationResults" if encoded => {
            for r in list_mut(&mut answer, &["Invocation", "InvocationResults", "InvocationResult"]) {
                decode_field(r, "Output");
            }
        }
        "DescribeInvocations" if encoded => {
            for inv in list_mut(&mut answer, &["Invocations", "Invocation"]) {
                decode_field(inv, "CommandContent");
                for run in list_mut(inv, &["InvokeInstances", "InvokeInstance"]) {
                    decode_field(run, "Output");
                }
            }
        }
        "DescribeCommands" if encoded => {
            for c in list_mut(&mut answer, &["Commands", "Command"]) {
                decode_field(c, "CommandContent");
            }
        }
        _ => {}
    }
    answer
}

/// What the command line does to an action's answer, for its help.
pub fn note(action: &str) -> Option<&'static str> {
    match action {
        "GetInstanceConsoleOutput" => Some(
            "Prints the console as text, and on stderr when it was last updated, in UTC. --query and --output \
             table see ConsoleOutput as text and LastUpdateTime in UTC; --raw or --output json print the answer as \
             sent (base64, UTC+8 without a zone).",
        ),
        "DescribeInvocationResults" | "DescribeInvocations" | "DescribeCommands" => Some(
            "Output and command content print as text (the API sends base64 unless ContentEncoding=PlainText); \
             --raw or --output json print the answer as sent.",
        ),
        _ => None,
    }
}

/// The default rendering of an action's (humanized) answer when it is not JSON: the console
/// as text on stdout, with a line about it for stderr.
pub fn text(action: &str, answer: &Value) -> Option<(String, String)> {
    if action != "GetInstanceConsoleOutput" {
        return None;
    }
    let id = answer["InstanceId"].as_str().unwrap_or_default();
    let console = answer["ConsoleOutput"].as_str().unwrap_or_default();
    let when = answer["LastUpdateTime"].as_str().unwrap_or_default();
    let note = if when.is_empty() {
        format!("{id}: no console output yet")
    } else {
        format!("{id}: console output, last updated {when}")
    };
    let mut out = console.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    Some((out, note))
}

fn list_mut<'a>(v: &'a mut Value, path: &[&str]) -> impl Iterator<Item = &'a mut Value> {
    let mut cur = Some(v);
    for k in path {
        cur = cur.and_then(|c| c.get_mut(*k));
    }
    cur.and_then(Value::as_array_mut).into_iter().flatten()
}

/// Replace a base64 string field by its text; anything that does not decode is left as is.
fn decode_field(v: &mut Value, key: &str) {
    if let Some(field) = v.get_mut(key) {
        if let Some(bytes) = field.as_str().and_then(base64_decode) {
            *field = Value::String(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
}

/// `yyyy-MM-dd HH:mm:ss` in UTC+8 (Alibaba Cloud's local time) as `yyyy-MM-ddTHH:mm:ssZ`.
pub fn utc8_to_utc(t: &str) -> Option<String> {
    let local = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok()?;
    let tz = chrono::FixedOffset::east_opt(8 * 3600)?;
    let at = tz.from_local_datetime(&local).single()?;
    Some(at.with_timezone(&chrono::Utc).format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Standard base64 (with or without padding); `None` when the text is not base64.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 || body.len() % 4 == 1 || (s.len() != body.len() && !s.len().is_multiple_of(4)) {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= sextet(*c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn base64() {
        assert_eq!(base64_decode("aGVsbG8gd29ybGQK").as_deref(), Some(&b"hello world\n"[..]));
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode("YWI").as_deref(), Some(&b"ab"[..]), "padding is optional");
        assert_eq!(base64_decode("").as_deref(), Some(&b""[..]));
        for bad in ["a", "Y===", "YQ=", "no spaces", "YQ==YQ=="] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn alibaba_local_time_to_utc() {
        assert_eq!(utc8_to_utc("2026-11-03 12:05:06").as_deref(), Some("2026-11-03T04:05:06Z"));
        assert_eq!(utc8_to_utc("2026-01-01 03:00:00").as_deref(), Some("2025-12-31T19:00:00Z"));
        assert_eq!(utc8_to_utc(""), None);
        assert_eq!(utc8_to_utc("2026-11-03T04:05:06Z"), None);
    }

    #[test]
    fn console_decoded_with_utc_time() {
        let wire = json!({"InstanceId": "i-1", "ConsoleOutput": "Ym9vdGluZwpyZWFkeQ==", "LastUpdateTime": "2026-11-03 12:05:06", "RequestId": "R"});
        let h = humanize("GetInstanceConsoleOutput", &[], wire);
        assert_eq!(h["ConsoleOutput"], "booting\nready");
        assert_eq!(h["LastUpdateTime"], "2026-11-03T04:05:06Z");
        let (out, note) = text("GetInstanceConsoleOutput", &h).expect("text");
        assert_eq!(out, "booting\nready\n");
        assert_eq!(note, "i-1: console output, last updated 2026-11-03T04:05:06Z");
        assert!(text("DescribeInstances", &h).is_none());
    }

    #[test]
    fn command_output_decoded_unless_asked_plain() {
        let wire = json!({"Invocation": {"InvocationResults": {"InvocationResult": [{"Output": "aGkK"}, {"Output": "b2sK"}]}}});
        let h = humanize("DescribeInvocationResults", &[], wire.clone());
        assert_eq!(h["Invocation"]["InvocationResults"]["InvocationResult"][1]["Output"], "ok\n");
        let plain = [("ContentEncoding".to_string(), "plaintext".to_string())];
        assert_eq!(humanize("DescribeInvocationResults", &plain, wire.clone()), wire);
        let inv = json!({"Invocations": {"Invocation": [{"CommandContent": "dW5hbWU=", "InvokeInstances": {"InvokeInstance": [{"Output": "TGludXgK"}]}}]}});
        let h = humanize("DescribeInvocations", &[], inv);
        assert_eq!(h["Invocations"]["Invocation"][0]["CommandContent"], "uname");
        assert_eq!(h["Invocations"]["Invocation"][0]["InvokeInstances"]["InvokeInstance"][0]["Output"], "Linux\n");
        // Other answers are untouched.
        let other = json!({"Output": "aGkK"});
        assert_eq!(humanize("DescribeInstances", &[], other.clone()), other);
    }
}
