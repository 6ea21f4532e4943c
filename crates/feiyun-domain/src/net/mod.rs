//! Networks: VPCs and their vSwitches, security groups and their rules, instances' network
//! interfaces and public addresses. Plain data and the rules about it; the control plane
//! allocates (VNIs, addresses, MACs) and persists.

pub mod address;
pub mod cidr;
mod error;
pub mod security_group;
pub mod vpc;

pub use address::{InternetCharge, Nic, PublicIp, PublicIpKind};
pub use error::NetError;
pub use security_group::{Direction, GroupKind, InnerAccess, Peer, Policy, Protocol, RuleSpec, SecurityGroup, SgRule};
pub use vpc::{Provisioning, VSwitch, Vpc};
