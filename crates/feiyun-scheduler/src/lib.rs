//! Placement of instances onto hosts.
//!
//! Owns the capacity index ([`cluster::Cluster`]): hosts grouped into equivalence classes by shape
//! and free capacity, request classes with their feasible host classes kept in score order, the
//! placement policies (Feiyun's default and the baselines it is compared with), deployment-set
//! spreading, and unlimited fleets for simulation. Everything is deterministic: same inputs, same
//! placements.
//!
//! Must not: read the clock, draw random numbers, touch the store, hosts or processes. The
//! control plane owns one index for the live region; the replay tool builds one per simulation.
#![forbid(unsafe_code)]

pub mod cluster;
