//! Errors of the domain. The OpenAPI layer maps each variant to a wire error code once.

use crate::instance::{InstanceStatus, LifecycleError};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("Parameter {name} is missing")]
    MissingParameter { name: String },
    #[error("Parameter {name} is not valid: {reason}")]
    InvalidParameter { name: String, reason: String },
    #[error("Region {0} does not exist")]
    RegionNotFound(String),
    #[error("Zone {0} does not exist")]
    ZoneNotFound(String),
    #[error("Instance type {0} does not exist")]
    InstanceTypeNotFound(String),
    #[error("Instance type {instance_type} is not offered in zone {zone}")]
    InstanceTypeNotInZone { instance_type: String, zone: String },
    #[error("Image {0} does not exist")]
    ImageNotFound(String),
    #[error("Instance {0} does not exist")]
    InstanceNotFound(String),
    #[error("Instance is {}; the operation is not allowed", status.as_str())]
    IncorrectStatus { status: InstanceStatus },
    #[error("Instance is still being created")]
    Initializing,
    #[error("No host in the zone has room for the request")]
    NoStock,
    #[error("Client token was used by a different request")]
    IdempotentParameterMismatch,
    #[error("The request with this client token is still being processed")]
    LastTokenProcessing,
    #[error("Command {0} does not exist")]
    CommandNotFound(String),
    #[error("Invocation {0} does not exist")]
    InvocationNotFound(String),
    #[error("Instance {0} is not running")]
    InstanceNotRunning(String),
    #[error("Deployment set {0} does not exist")]
    DeploymentSetNotFound(String),
    #[error("Deployment set {0} still has instances")]
    DeploymentSetInUse(String),
    #[error("Account {0} already exists")]
    AccountExists(String),
    #[error("The account balance does not cover the order")]
    NotEnoughBalance,
    #[error("The account is in arrears")]
    AccountArrearage,
    #[error("The instance is locked ({0})")]
    InstanceLocked(&'static str),
    #[error("The operation is not allowed for {charge} instances")]
    ChargeTypeViolation { charge: &'static str },
    #[error("Spot price limit {limit} is below the current market price {market}")]
    SpotPriceTooLow { limit: String, market: String },
    #[error("Host {0} does not exist")]
    HostNotFound(String),
    #[error("The host of instance {0} is not reachable")]
    HostUnreachable(String),
    #[error("Host {0} is still reachable: drain it, or stop its agent first")]
    HostReachable(String),
    #[error(
        "{unreachable} of {total} hosts are unreachable at once, which looks like a partition: evacuation stopped"
    )]
    PartitionSuspected { unreachable: usize, total: usize },
    #[error("Join token {0} does not exist")]
    JoinTokenNotFound(String),
    #[error("Only the administrator may do this")]
    Forbidden,
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("Request validation has been passed with DryRun flag set")]
    DryRunOk,
    #[error("Internal error: {0}")]
    Internal(String),
}

impl From<LifecycleError> for DomainError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::IncorrectStatus { status } => DomainError::IncorrectStatus { status },
            LifecycleError::Initializing => DomainError::Initializing,
        }
    }
}

impl DomainError {
    pub fn invalid(name: &str, reason: impl Into<String>) -> DomainError {
        DomainError::InvalidParameter { name: name.to_string(), reason: reason.into() }
    }
    pub fn missing(name: &str) -> DomainError {
        DomainError::MissingParameter { name: name.to_string() }
    }
}
