//! GetInstanceConsoleOutput.

use base64::Engine;
use chrono::FixedOffset;
use feiyun_domain::DomainError;
use serde_json::{json, Value};

use super::{Call, B64};
use crate::error::ApiError;

pub(super) fn console_output(c: &Call<'_>) -> Result<Value, ApiError> {
    let id = c.params.required("InstanceId")?;
    let remove_symbols = c.params.bool("RemoveSymbols")?.unwrap_or(false);
    let (mut bytes, modified) = c.cp.console_output(c.account_id, id).map_err(|e| match e {
        DomainError::IncorrectStatus { status } => ApiError::new(
            405,
            "IncorrectInstanceStatus",
            format!("The instance status \"{}\" is not applicable", status.as_str()),
        ),
        other => other.into(),
    })?;
    if remove_symbols {
        bytes = strip_escapes(&bytes);
    }
    // Documented as UTC+8, `yyyy-MM-dd HH:mm:ss`.
    let tz = FixedOffset::east_opt(8 * 3600).expect("valid offset");
    let last = modified.map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default();
    Ok(json!({"InstanceId": id, "ConsoleOutput": B64.encode(bytes), "LastUpdateTime": last}))
}

/// Remove ANSI escape sequences and control characters other than newline and tab.
pub(super) fn strip_escapes(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == 0x1b {
            i += 1;
            if i < b.len() && b[i] == b'[' {
                i += 1;
                while i < b.len() && !(0x40..=0x7e).contains(&b[i]) {
                    i += 1;
                }
            }
            i += 1;
            continue;
        }
        if b[i] >= 0x20 || b[i] == b'\n' || b[i] == b'\t' {
            out.push(b[i]);
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_escapes() {
        assert_eq!(strip_escapes(b"\x1b[1;32mok\x1b[0m\r\n"), b"ok\n");
    }
}
