//! Deployment sets: instances of one set run on distinct hosts.

use crate::Instant;

#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentSet {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub created_at: Instant,
}

/// Deployment set names: 2-128 characters, starting with a letter, no `http://`.
pub fn valid_name(n: &str) -> bool {
    let len = n.chars().count();
    (2..=128).contains(&len)
        && n.chars().next().map(|c| c.is_alphabetic()).unwrap_or(false)
        && !n.starts_with("http://")
        && !n.starts_with("https://")
}
