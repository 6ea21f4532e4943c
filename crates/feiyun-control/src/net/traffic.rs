//! Metering public traffic: hosts report absolute counters per instance; the control plane
//! records the difference from the last reading as an append-only, keyed usage record, in the
//! same transaction as the new reading. A retried report therefore meters nothing twice, and a
//! smaller value (the host rebuilt its counters) or a reading from another host (the instance
//! moved) counts from zero.

use feiyun_domain::usage::{TrafficCounter, TrafficUsage};
use feiyun_domain::DomainError;
use feiyun_hostproto::TrafficCounters;

use crate::{store_err, ControlPlane};

impl ControlPlane {
    /// Meter what a host reported; readings of instances that are not (or no longer) the host's
    /// are ignored.
    pub(crate) fn meter_traffic(&self, host_id: &str, readings: &[TrafficCounters]) -> Result<(), DomainError> {
        if readings.is_empty() {
            return Ok(());
        }
        let mut state = self.write();
        let now_s = self.now().timestamp();
        let mut usage = Vec::new();
        let mut counters = Vec::new();
        for r in readings {
            let Some(i) = state.instances.get(&r.instance_id).filter(|i| i.host_id == host_id) else {
                tracing::debug!(host = %host_id, instance = %r.instance_id, "traffic of an instance not on the host");
                continue;
            };
            let last = state.net.traffic.get(&r.instance_id);
            if last.is_some_and(|c| c.host_id == host_id && c.in_bytes == r.in_bytes && c.out_bytes == r.out_bytes) {
                continue;
            }
            let continues =
                last.filter(|c| c.host_id == host_id && r.in_bytes >= c.in_bytes && r.out_bytes >= c.out_bytes);
            let (d_in, d_out) = match continues {
                Some(c) => (r.in_bytes - c.in_bytes, r.out_bytes - c.out_bytes),
                None => (r.in_bytes, r.out_bytes),
            };
            let mut seq = last.map(|c| c.seq).unwrap_or(0);
            if d_in > 0 || d_out > 0 {
                seq += 1;
                usage.push(TrafficUsage {
                    key: format!("{}:{seq}", r.instance_id),
                    instance_id: r.instance_id.clone(),
                    account_id: i.account_id.clone(),
                    at_s: now_s,
                    in_bytes: d_in,
                    out_bytes: d_out,
                });
            }
            counters.push(TrafficCounter {
                instance_id: r.instance_id.clone(),
                host_id: host_id.to_string(),
                in_bytes: r.in_bytes,
                out_bytes: r.out_bytes,
                seq,
            });
        }
        if counters.is_empty() {
            return Ok(());
        }
        self.store
            .commit(&feiyun_store::WriteSet { traffic: &usage, traffic_counters: &counters, ..Default::default() })
            .map_err(store_err)?;
        for c in counters {
            state.net.traffic.insert(c.instance_id.clone(), c);
        }
        Ok(())
    }

    /// The metered public traffic of an account received before `before_s`.
    pub fn traffic_usage(&self, account_id: &str, before_s: i64) -> Result<Vec<TrafficUsage>, DomainError> {
        self.store.traffic_usage(Some(account_id), before_s).map_err(store_err)
    }
}
