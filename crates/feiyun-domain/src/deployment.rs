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
