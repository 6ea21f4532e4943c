//! Bookkeeping of one `apply`: the changes it made, and an optional injected failure after the
//! Nth change, which leaves the kernel exactly as a crash at that point would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::{NetError, Result};

#[derive(Debug)]
pub(crate) struct Steps {
    count: AtomicUsize,
    fail_after: Option<usize>,
    log: Mutex<Vec<String>>,
}

impl Steps {
    pub fn new(fail_after: Option<usize>) -> Steps {
        Steps { count: AtomicUsize::new(0), fail_after, log: Mutex::new(Vec::new()) }
    }

    /// Records a change just made; fails if the injected failure is due.
    pub fn done(&self, what: impl Into<String>) -> Result<()> {
        let what = what.into();
        tracing::debug!(change = %what, "network change");
        if let Ok(mut log) = self.log.lock() {
            log.push(what);
        }
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_after == Some(n) {
            return Err(NetError::Injected(n));
        }
        Ok(())
    }

    pub fn changes(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// What one `apply` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyReport {
    /// Every kernel change it had to make, in order; empty when the host already matched
    /// (nftables batches are counted apart: they are sent on every apply).
    pub changes: Vec<String>,
    /// nftables commands sent (all VPCs and the host table, each VPC in one transaction).
    pub firewall_commands: usize,
    pub elapsed: Duration,
}
