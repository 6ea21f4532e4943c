//! Feiyun's domain model.
//!
//! Owns the vocabulary of a cloud region: accounts, the instance-type catalog, hosts and their
//! capacity, instances and their lifecycle state machine, networks (VPCs, vSwitches, security
//! groups, addresses), storage (disks, snapshots, account images, key pairs), Cloud Assistant
//! commands and their invocations, and the typed commands the control plane executes.
//!
//! Must not: do IO of any kind (files, sockets, processes, SQL), read the clock or draw random
//! numbers on its own (both are passed in), or know Alibaba Cloud wire names — the OpenAPI layer
//! maps these types to and from the wire.
#![forbid(unsafe_code)]

pub mod account;
pub mod assistant;
pub mod catalog;
pub mod deployment;
pub mod error;
pub mod event;
pub mod host;
pub mod ids;
pub mod image;
pub mod instance;
pub mod net;
pub mod ops;
pub mod region;
pub mod resources;
pub mod storage;
pub mod usage;

pub use error::DomainError;
pub use resources::Resources;

/// Instants in Feiyun are UTC wall-clock times; they are always passed in, never read here.
pub type Instant = chrono::DateTime<chrono::Utc>;
