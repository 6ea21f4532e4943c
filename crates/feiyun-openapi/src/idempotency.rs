//! `ClientToken`: what makes a retried create idempotent, the same in every product.

use feiyun_domain::ops::ClientToken;

use crate::error::ApiError;
use crate::params::Params;

/// `ClientToken` (at most 64 ASCII characters) with the fingerprint of the call it came with.
pub(crate) fn client_token(action: &str, p: &Params) -> Result<Option<ClientToken>, ApiError> {
    let Some(t) = p.get("ClientToken") else { return Ok(None) };
    if t.len() > 64 || !t.is_ascii() {
        return Err(ApiError::new(400, "InvalidClientToken.ValueNotSupported", "The ClientToken provided is invalid."));
    }
    Ok(Some(ClientToken { token: t.to_string(), fingerprint: crate::fingerprint(action, p) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::form_decode;

    fn p(q: &str) -> Params {
        Params::from_pairs(form_decode(q).expect("decodes")).expect("params")
    }

    fn code(query: &str) -> Option<String> {
        client_token("CreateVpc", &p(query)).err().map(|e| e.code)
    }

    #[test]
    fn tokens_are_short_ascii_and_carry_the_call_s_fingerprint() {
        assert_eq!(code(&format!("ClientToken={}", "t".repeat(64))), None);
        for bad in ["t".repeat(65), "%E4%B8%AD".to_string()] {
            assert_eq!(code(&format!("ClientToken={bad}")).as_deref(), Some("InvalidClientToken.ValueNotSupported"));
        }
        let a = client_token("CreateVpc", &p("ClientToken=x&CidrBlock=10.0.0.0%2F8")).expect("ok").expect("token");
        let b = client_token("CreateVpc", &p("ClientToken=x&CidrBlock=10.0.0.0%2F16")).expect("ok").expect("token");
        assert_eq!((a.token.as_str(), b.token.as_str()), ("x", "x"));
        assert_ne!(a.fingerprint, b.fingerprint, "other parameters, another fingerprint");
        assert_eq!(client_token("CreateVpc", &p("CidrBlock=10.0.0.0%2F8")).expect("ok"), None);
    }
}
