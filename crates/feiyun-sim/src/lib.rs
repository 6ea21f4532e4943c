//! Workload traces for replay, simulation only.
//!
//! Owns the neutral request format ([`trace::TraceRequest`] and its CSV), converters from public
//! traces into it ([`convert`]), the `--hosts` fleet syntax ([`fleet::FleetSpec`]), the replay
//! engine ([`replay`]), what a person reads of a replay — a one-screen summary ([`summary`]) and
//! a chart ([`chart`]) — and the SVG charts underneath ([`plot`]). Everything here is deterministic: randomness comes from a
//! seeded `StdRng` passed in by the caller, never from the environment.
//!
//! Must not: start agents or containers, touch the store, read the clock, or decide placement
//! (that is `feiyun-scheduler`'s job; a replay drives it with these requests and fleets).
#![forbid(unsafe_code)]

pub mod chart;
pub mod convert;
mod decimal;
pub mod fleet;
pub mod lower_bound;
pub mod plot;
pub mod replay;
pub mod summary;
pub mod trace;

pub use convert::{alibaba_gpu_2023, alibaba_nodes, azure_2017, AzureOptions, ConvertError, HostSpec};
pub use fleet::{FleetError, FleetGroup, FleetSpec, HostShape};
pub use plot::{Bracket, Chart, Panel, Scale, Series, Style};
pub use trace::trace_name;
pub use trace::{parse_csv, read_trace, to_csv, write_csv, write_trace, TraceError, TraceRequest, TraceSummary};
