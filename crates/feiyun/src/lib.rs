//! Library side of the `feiyun` command: a small signed API client shared by the command line,
//! the benchmarks and tools.
//!
//! Must not: hold region logic; it only signs requests the way the official V3 SDKs do and sends
//! them over HTTP.

pub mod client;
