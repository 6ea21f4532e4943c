//! SSH key pairs: the region keeps the public key; a created pair's private key is shown once.

use crate::Instant;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// `kp-` and 20 characters.
    pub id: String,
    pub account_id: String,
    /// Unique within the account.
    pub name: String,
    /// MD5 of the public key, colon-separated hex (RFC 4716).
    pub fingerprint: String,
    /// One OpenSSH public key line: `<type> <base64> [comment]`.
    pub public_key: String,
    pub created_at: Instant,
}

/// Key pair names: 2-128 characters starting with a letter, then letters, digits, `:`, `_`
/// and `-`; not starting with `http://` or `https://`.
pub fn valid_key_pair_name(n: &str) -> bool {
    let len = n.chars().count();
    (2..=128).contains(&len)
        && n.chars().next().is_some_and(char::is_alphabetic)
        && n.chars().all(|c| c.is_alphanumeric() || matches!(c, ':' | '_' | '-' | '.'))
        && !n.starts_with("http://")
        && !n.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_key_pair_name("ops-key_1:a"));
        for bad in ["k", "1key", "key pair", "key/1", &"k".repeat(129)] {
            assert!(!valid_key_pair_name(bad), "{bad}");
        }
    }
}
