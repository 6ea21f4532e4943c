//! Accounts (tenants) and their access keys.

use crate::Instant;

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub created_at: Instant,
}

/// An access key with its secret in the clear: it lives only in memory; the store keeps it sealed.
#[derive(Clone, PartialEq)]
pub struct AccessKey {
    pub id: String,
    pub account_id: String,
    pub secret: String,
    pub enabled: bool,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("secret", &"<redacted>")
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// Account names: 1-64 characters of letters, digits, `-`, `_` and `.`.
pub fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
