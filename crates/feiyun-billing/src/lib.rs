//! Metering and rating.
//!
//! Owns exact money ([`money::Money`]), the price book ([`prices::PriceBook`]), usage events and
//! how billable intervals are derived from them ([`metering`]), and the rating of intervals into
//! charges ([`rating`]). Money is never a float: amounts are integers of 1/3600 of a
//! micro-unit of currency, so that per-second charges of an hourly price are exact and any split
//! of an interval sums to the whole; rounding to 0.01 happens once, at settlement, and is explicit.
//!
//! Must not: read the clock (instants are inputs), touch the store or the API, or compute money
//! from mutable instance rows — only from the append-only, idempotent event log.
#![forbid(unsafe_code)]

pub mod account;
pub mod invoice;
pub mod metering;
pub mod money;
pub mod prices;
pub mod rating;
pub mod traffic;
