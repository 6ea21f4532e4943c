//! The naming rules of ECS parameters, refused with the codes ECS documents for them.

use crate::error::ApiError;
use crate::params::Params;

fn malformed(code: &str, param: &str) -> ApiError {
    ApiError::new(400, code, format!("The specified parameter \"{param}\" is not valid."))
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// `InstanceName`: 2-128 characters, letters and digits (any script), `:`, `_`, `.` and `-`,
/// starting with a letter.
pub(super) fn instance_name(p: &Params) -> Result<Option<String>, ApiError> {
    let Some(n) = p.get("InstanceName") else { return Ok(None) };
    let len = n.chars().count();
    let ok = (2..=128).contains(&len)
        && n.chars().next().is_some_and(char::is_alphabetic)
        && n.chars().all(|c| c.is_alphanumeric() || matches!(c, ':' | '_' | '.' | '-'));
    if !ok {
        return Err(malformed("InvalidInstanceName.Malformed", "InstanceName"));
    }
    Ok(Some(n.to_string()))
}

/// `HostName` (Linux): 2-64 ASCII letters, digits, `.` and `-`; not starting or ending with
/// `.` or `-`, and no two of them in a row.
pub(super) fn host_name(p: &Params) -> Result<Option<String>, ApiError> {
    let Some(h) = p.get("HostName") else { return Ok(None) };
    let sep = |c: char| c == '.' || c == '-';
    let ok = (2..=64).contains(&h.len())
        && h.chars().all(|c| c.is_ascii_alphanumeric() || sep(c))
        && !h.starts_with(sep)
        && !h.ends_with(sep)
        && !h.as_bytes().windows(2).any(|w| sep(w[0] as char) && sep(w[1] as char));
    if !ok {
        return Err(malformed("InvalidHostName.Malformed", "HostName"));
    }
    Ok(Some(h.to_string()))
}

/// `Description` of an instance: 2-256 characters, not starting with `http://` or `https://`.
pub(super) fn instance_description(p: &Params) -> Result<Option<String>, ApiError> {
    let Some(d) = p.get("Description") else { return Ok(None) };
    if !(2..=256).contains(&d.chars().count()) || is_url(d) {
        return Err(malformed("InvalidDescription.Malformed", "Description"));
    }
    Ok(Some(d.to_string()))
}

/// `Description` of a deployment set: the instance's rule. ECS documents no code for
/// CreateDeploymentSet, so this is the generic InvalidParameter.
pub(super) fn deployment_set_description(p: &Params) -> Result<Option<String>, ApiError> {
    let Some(d) = p.get("Description") else { return Ok(None) };
    if !(2..=256).contains(&d.chars().count()) || is_url(d) {
        return Err(ApiError::invalid_because(
            "Description",
            "2-256 characters, not starting with http:// or https://",
        ));
    }
    Ok(Some(d.to_string()))
}

/// With UniqueSuffix, creating several instances appends three digits to the name and host
/// name: they must leave room for them.
pub(super) fn suffix_room(name: Option<&str>, host: Option<&str>, several: bool) -> Result<(), ApiError> {
    if !several {
        return Ok(());
    }
    if name.is_some_and(|n| n.chars().count() > 125) {
        return Err(ApiError::new(
            403,
            "InvalidParams.InstanceNameExceed",
            "The uniqueSuffix takes three naming places, please shorten your InstanceName.",
        ));
    }
    if host.is_some_and(|h| h.len() > 61) {
        return Err(ApiError::new(
            403,
            "InvalidParams.HostnameExceed",
            "The uniqueSuffix takes three naming places, please shorten your Hostname.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::form_decode;

    fn p(q: &str) -> Params {
        Params::from_pairs(form_decode(q).expect("decodes")).expect("params")
    }

    fn code<T>(r: Result<T, ApiError>) -> Option<String> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn instance_names() {
        for ok in ["web-1", "ab", "db_2:primary.a", "服务器1", &"a".repeat(128)] {
            assert_eq!(code(instance_name(&p(&format!("InstanceName={}", crate::sign::pct(ok))))), None, "{ok}");
        }
        for bad in ["a", "1web", "-web", "web server", "web/1", "web<1>", "http://x", &"a".repeat(129)] {
            assert_eq!(
                code(instance_name(&p(&format!("InstanceName={}", crate::sign::pct(bad))))).as_deref(),
                Some("InvalidInstanceName.Malformed"),
                "{bad}"
            );
        }
    }

    #[test]
    fn host_names() {
        for ok in ["ab", "web-1.local", "a1", &"a".repeat(64)] {
            assert_eq!(code(host_name(&p(&format!("HostName={ok}")))), None, "{ok}");
        }
        for bad in
            ["a", ".web", "web-", "we..b", "we--b", "we.-b", "web_1", "web%201", "${instance_id}", &"a".repeat(65)]
        {
            assert_eq!(
                code(host_name(&p(&format!("HostName={}", crate::sign::pct(bad))))).as_deref(),
                Some("InvalidHostName.Malformed"),
                "{bad}"
            );
        }
    }

    #[test]
    fn descriptions_tokens_and_suffixes() {
        assert_eq!(code(instance_description(&p("Description=ok"))), None);
        for bad in ["x", "http%3A%2F%2Fx", "https%3A%2F%2Fx"] {
            assert_eq!(
                code(instance_description(&p(&format!("Description={bad}")))).as_deref(),
                Some("InvalidDescription.Malformed")
            );
        }
        assert!(code(instance_description(&p(&format!("Description={}", "d".repeat(257))))).is_some());
        assert_eq!(code(deployment_set_description(&p("Description=x"))).as_deref(), Some("InvalidParameter"));
        let long = "n".repeat(126);
        assert_eq!(code(suffix_room(Some(&long), None, true)).as_deref(), Some("InvalidParams.InstanceNameExceed"));
        assert_eq!(code(suffix_room(Some(&long), None, false)), None);
        assert_eq!(
            code(suffix_room(None, Some(&"h".repeat(62)), true)).as_deref(),
            Some("InvalidParams.HostnameExceed")
        );
    }
}
