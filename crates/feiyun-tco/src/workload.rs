//! The workload as renting sees it: for each instance type, how many instances run at each moment
//! of one period that repeats all year (a concurrency curve); and as owning sees it: the demands
//! to pack onto servers.
//!
//! Steady entries describe a day: `count` instances from midnight for `hours_per_day` hours.
//! A trace describes its own period (until the last request ends, or `rent.trace_period_hours`);
//! each request is rented as the instance type it names if the catalog has it, otherwise as the
//! cheapest catalog type that holds its vCPUs, memory and GPUs.

use std::collections::{BTreeMap, HashMap};

use feiyun_billing::prices::{RegionPrices, TypeSize};
use feiyun_domain::catalog::{Catalog, InstanceTypeSpec};
use feiyun_sim::TraceRequest;
use serde::Serialize;

use crate::plan::Plan;
use crate::TcoError;

/// Milliseconds in the day a steady entry describes.
pub const DAY_MS: u64 = 86_400_000;
/// Milliseconds in an hour.
pub const HOUR_MS: u64 = 3_600_000;

/// One instance type's use over the period.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub instance_type: String,
    /// Pay-as-you-go price per hour, micro-units.
    pub hourly: i128,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub gpus: u32,
    /// Milliseconds of the period spent at each concurrency level above zero.
    pub ms_at: BTreeMap<u64, u64>,
}

impl Usage {
    pub fn peak(&self) -> u64 {
        self.ms_at.keys().next_back().copied().unwrap_or(0)
    }
}

/// What owning has to hold.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnDemand {
    /// Instances of the types in `Workload::usages`, all at once (their peaks).
    Steady,
    /// The trace's requests, clipped to the period, without zones.
    Trace(Vec<TraceRequest>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Milliseconds (a trace's times are kept to the millisecond).
    pub period_ms: u64,
    pub usages: Vec<Usage>,
    pub own: OwnDemand,
    pub trace: Option<TraceInfo>,
}

/// How a trace was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceInfo {
    pub requests: u64,
    /// Requests arriving at or after the end of the period (not counted).
    pub after_period: u64,
    /// Requests rented as the instance type they name.
    pub named_type: u64,
    /// Requests rented as the cheapest type that fits.
    pub fitted: u64,
}

fn type_size(t: &InstanceTypeSpec) -> TypeSize {
    TypeSize { family: t.family.clone(), vcpus: t.vcpus, memory_mib: t.memory_mib(), gpus: t.gpu_count }
}

/// `(start, end, weight)`: `weight` instances from millisecond `start` to just before `end`.
pub type Interval = (u64, u64, u64);

/// The concurrency curve of weighted intervals: milliseconds at each level above zero.
pub fn curve(intervals: &[Interval]) -> BTreeMap<u64, u64> {
    let mut events: Vec<(u64, i128)> = Vec::with_capacity(intervals.len() * 2);
    for &(start, end, weight) in intervals {
        if end > start && weight > 0 {
            events.push((start, i128::from(weight)));
            events.push((end, -i128::from(weight)));
        }
    }
    events.sort_unstable();
    let mut out = BTreeMap::new();
    let (mut level, mut prev) = (0i128, 0u64);
    for (t, delta) in events {
        if level > 0 && t > prev {
            *out.entry(level as u64).or_insert(0) += t - prev;
        }
        level += delta;
        prev = t;
    }
    out
}

fn usage(t: &InstanceTypeSpec, prices: &RegionPrices, intervals: &[Interval]) -> Usage {
    Usage {
        instance_type: t.id.clone(),
        hourly: prices.instance_hour(&type_size(t)),
        vcpus: t.vcpus,
        memory_mib: t.memory_mib(),
        gpus: t.gpu_count,
        ms_at: curve(intervals),
    }
}

/// The steady entries of a plan, one curve per instance type over a day.
pub fn steady(plan: &Plan, catalog: &Catalog, prices: &RegionPrices) -> Result<Workload, TcoError> {
    let mut by_type: BTreeMap<&str, Vec<Interval>> = BTreeMap::new();
    for (i, w) in plan.workload.iter().enumerate() {
        if catalog.instance_type(&w.instance_type).is_none() {
            return Err(TcoError::invalid(
                format!("workload[{i}].instance_type"),
                format!("unknown instance type {:?}", w.instance_type),
            ));
        }
        by_type.entry(&w.instance_type).or_default().push((0, u64::from(w.hours_per_day) * HOUR_MS, w.count));
    }
    let usages =
        by_type.into_iter().filter_map(|(id, iv)| catalog.instance_type(id).map(|t| usage(t, prices, &iv))).collect();
    Ok(Workload { period_ms: DAY_MS, usages, own: OwnDemand::Steady, trace: None })
}

/// Rentable types for trace requests, cheapest first: not burstable (a trace's vCPUs are whole),
/// in `families` when given. Ties go to fewer vCPUs, then less memory, fewer GPUs, then the id.
fn candidates<'a>(
    catalog: &'a Catalog,
    prices: &RegionPrices,
    families: Option<&[String]>,
) -> Vec<(i128, &'a InstanceTypeSpec)> {
    let mut c: Vec<(i128, &InstanceTypeSpec)> = catalog
        .instance_types()
        .filter(|t| !t.is_burstable())
        .filter(|t| families.is_none_or(|f| f.contains(&t.family)))
        .map(|t| (prices.instance_hour(&type_size(t)), t))
        .collect();
    c.sort_by(|a, b| {
        (a.0, a.1.vcpus, a.1.memory_mib(), a.1.gpu_count, &a.1.id).cmp(&(
            b.0,
            b.1.vcpus,
            b.1.memory_mib(),
            b.1.gpu_count,
            &b.1.id,
        ))
    });
    c
}

/// A trace as the workload: the period it describes, one curve per rented type, and the clipped
/// requests for sizing the own servers.
pub fn from_trace(
    plan: &Plan,
    catalog: &Catalog,
    prices: &RegionPrices,
    requests: &[TraceRequest],
) -> Result<Workload, TcoError> {
    if let Some(fams) = &plan.rent.families {
        for (i, f) in fams.iter().enumerate() {
            if catalog.family(f).is_none() {
                return Err(TcoError::invalid(format!("rent.families[{i}]"), format!("unknown family {f:?}")));
            }
        }
    }
    if requests.is_empty() {
        return Err(TcoError::Trace("the trace has no requests".into()));
    }
    let period_ms = match plan.rent.trace_period_hours {
        Some(h) => h * HOUR_MS,
        None => requests.iter().map(|r| r.departure_ms().unwrap_or(r.arrival_ms)).max().unwrap_or(0),
    };
    if period_ms == 0 {
        return Err(TcoError::Trace(
            "the trace spans no time (every request still runs at second 0); set rent.trace_period_hours".into(),
        ));
    }
    let cands = candidates(catalog, prices, plan.rent.families.as_deref());
    let mut fits: HashMap<(u64, u64, u64), Option<usize>> = HashMap::new();
    let mut info = TraceInfo { requests: requests.len() as u64, after_period: 0, named_type: 0, fitted: 0 };
    let mut by_type: BTreeMap<&str, (&InstanceTypeSpec, Vec<Interval>)> = BTreeMap::new();
    let mut clipped = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        if r.arrival_ms >= period_ms {
            info.after_period += 1;
            continue;
        }
        let end = r.departure_ms().map_or(period_ms, |d| d.min(period_ms));
        let named = r.instance_type.as_deref().and_then(|n| catalog.instance_type(n));
        let t = match named {
            Some(t) => {
                info.named_type += 1;
                t
            }
            None => {
                let key = (r.cpu_milli, r.memory_mib, r.gpu_milli);
                let found = *fits.entry(key).or_insert_with(|| {
                    cands.iter().position(|(_, t)| {
                        u64::from(t.vcpus) * 1000 >= r.cpu_milli
                            && t.memory_mib() >= r.memory_mib
                            && u64::from(t.gpu_count) * 1000 >= r.gpu_milli
                    })
                });
                let Some(k) = found else {
                    return Err(TcoError::Trace(format!(
                        "request {} ({} vCPUs, {} MiB, {} GPUs) fits no rentable instance type",
                        i + 1,
                        milli(r.cpu_milli),
                        r.memory_mib,
                        milli(r.gpu_milli)
                    )));
                };
                info.fitted += 1;
                cands[k].1
            }
        };
        by_type.entry(t.id.as_str()).or_insert_with(|| (t, Vec::new())).1.push((r.arrival_ms, end, 1));
        let mut own = TraceRequest::new(r.arrival_ms, Some(end - r.arrival_ms), r.cpu_milli, r.memory_mib);
        own.gpu_milli = r.gpu_milli;
        own.deployment_set = r.deployment_set.clone();
        clipped.push(own);
    }
    let usages = by_type.into_values().map(|(t, iv)| usage(t, prices, &iv)).collect();
    Ok(Workload { period_ms, usages, own: OwnDemand::Trace(clipped), trace: Some(info) })
}

/// Thousandths as a decimal: 1500 → "1.5".
fn milli(milli: u64) -> String {
    crate::calc::format_micros(i128::from(milli) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::MINIMAL;

    pub(crate) fn shipped() -> (Catalog, feiyun_billing::prices::PriceBook) {
        let catalog = Catalog::from_toml(include_str!("../../../catalog/instance-types.toml")).expect("catalog");
        let prices =
            feiyun_billing::prices::PriceBook::from_toml(include_str!("../../../catalog/prices.toml")).expect("prices");
        (catalog, prices)
    }

    #[test]
    fn curves_by_hand() {
        // 10 all day, 4 more for the first 12 hours: 14 for 43,200 s, 10 for 43,200 s.
        let c = curve(&[(0, 86_400, 10), (0, 43_200, 4)]);
        assert_eq!(c, BTreeMap::from([(14, 43_200), (10, 43_200)]));
        // Gaps are level 0 and not recorded; touching intervals do not overlap.
        let c = curve(&[(0, 10, 1), (10, 20, 1), (30, 40, 2), (35, 50, 1)]);
        assert_eq!(c, BTreeMap::from([(1, 20 + 10), (2, 5), (3, 5)]));
        assert!(curve(&[(5, 5, 3)]).is_empty());
    }

    #[test]
    fn steady_prices_from_the_book() {
        let (catalog, book) = shipped();
        let prices = book.region("cn-local").expect("region");
        let plan = Plan::from_toml(MINIMAL).expect("plan");
        let w = steady(&plan, &catalog, prices).expect("workload");
        assert_eq!(w.period_ms, DAY_MS);
        assert_eq!(w.usages.len(), 1);
        let u = &w.usages[0];
        // 2 × 0.1764 + 8 × 0.0221 = 0.5296
        assert_eq!((u.instance_type.as_str(), u.hourly, u.peak()), ("ecs.g7.large", 529_600, 10));

        let bad = Plan::from_toml(&MINIMAL.replace("ecs.g7.large", "ecs.g7.huge")).expect("plan");
        let e = steady(&bad, &catalog, prices).expect_err("unknown type").to_string();
        assert!(e.contains("workload[0].instance_type") && e.contains("ecs.g7.huge"), "{e}");
    }

    /// Cheapest fit in the shipped book: 2 vCPU / 8 GiB is 0.5296 in g6 and g7 alike, and g6 wins
    /// the tie by id; 2 vCPU / 4 GiB is cheapest as c7.large (2 × 0.16 + 4 × 0.0221 = 0.4084);
    /// burstable t5/t6 are never chosen for a trace.
    #[test]
    fn trace_requests_rent_the_cheapest_fitting_type() {
        let (catalog, book) = shipped();
        let prices = book.region("cn-local").expect("region");
        let plan = Plan::from_toml(MINIMAL).expect("plan");
        let s = |seconds: u64| seconds * 1000;
        let mut named = TraceRequest::new(0, Some(s(3600)), 2000, 8192);
        named.instance_type = Some("ecs.r7.large".into());
        let reqs = vec![
            TraceRequest::new(0, Some(s(3600)), 2000, 8192),
            TraceRequest::new(0, Some(s(3600)), 1500, 4096),
            TraceRequest::new(0, None, 1000, 1024),
            named,
            TraceRequest::new(s(7200), Some(s(10)), 1000, 1024),
        ];
        let w = from_trace(&plan, &catalog, prices, &reqs).expect("workload");
        assert_eq!(w.period_ms, s(7210));
        let types: Vec<(&str, i128, u64)> =
            w.usages.iter().map(|u| (u.instance_type.as_str(), u.hourly, u.peak())).collect();
        assert_eq!(
            types,
            vec![("ecs.c7.large", 408_400, 2), ("ecs.g6.large", 529_600, 1), ("ecs.r7.large", 706_400, 1)]
        );
        assert_eq!(w.trace, Some(TraceInfo { requests: 5, after_period: 0, named_type: 1, fitted: 4 }));
        // The still-running request holds a c7.large until the end of the period.
        let c7 = &w.usages[0].ms_at;
        // 2 for [0, 3600) and again for [7200, 7210), 1 for [3600, 7200).
        assert_eq!(c7, &BTreeMap::from([(2, s(3610)), (1, s(3600))]));
    }

    #[test]
    fn trace_errors() {
        let (catalog, book) = shipped();
        let prices = book.region("cn-local").expect("region");
        let plan = Plan::from_toml(MINIMAL).expect("plan");
        let huge = [TraceRequest::new(0, Some(10_000), 1_000_000, 1024)];
        let e = from_trace(&plan, &catalog, prices, &huge).expect_err("too big").to_string();
        assert!(e.contains("request 1 (1000 vCPUs"), "{e}");
        let timeless = [TraceRequest::new(0, None, 1000, 1024)];
        let e = from_trace(&plan, &catalog, prices, &timeless).expect_err("no span").to_string();
        assert!(e.contains("trace_period_hours"), "{e}");
        assert!(from_trace(&plan, &catalog, prices, &[]).is_err());
        let mut fams = plan.clone();
        fams.rent.families = Some(vec!["ecs.zz".into()]);
        let e = from_trace(&fams, &catalog, prices, &timeless).expect_err("family").to_string();
        assert!(e.contains("rent.families[0]"), "{e}");
    }
}
