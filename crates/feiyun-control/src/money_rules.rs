//! The platform's money rules applied to instances: arrears stop and release, subscription
//! renewal, expiry and release, spot reclaims. The decisions are the pure functions of
//! `feiyun_billing::account`; this module applies them, each step durable with its ledger entry.

use std::collections::{HashMap, HashSet};

use feiyun_billing::account::{self, ArrearsPolicy, ArrearsStep, ExpiryStep};
use feiyun_billing::money::Money;
use feiyun_billing::prices::RegionPrices;
use feiyun_domain::instance::{
    ChargeType, Instance, InstanceStatus, LockReason, PlatformAction, PowerState, SpotStrategy, StoppedMode,
};
use feiyun_domain::usage::{EventKind, LedgerEntry, LedgerKind, UsageEvent};
use feiyun_domain::{DomainError, Instant};

use crate::billing::{add_months, secs};
use crate::{store_err, ControlPlane};

fn notice(key: String, i: &Instance, at_s: i64, detail: String) -> LedgerEntry {
    LedgerEntry {
        key,
        account_id: i.account_id.clone(),
        at_s,
        kind: LedgerKind::Notice,
        amount_cents: 0,
        instance_id: i.id.clone(),
        detail,
    }
}

impl ControlPlane {
    /// Arrears, subscription expiry and spot reclaims.
    pub(crate) fn apply_money_rules(&self, now: Instant) -> Result<(), DomainError> {
        let now_s = now.timestamp();
        let setup = self.setup.billing;
        let policy = ArrearsPolicy {
            stop_after_s: secs(setup.arrears_stop_after),
            release_after_s: secs(setup.arrears_release_after),
        };
        let live: Vec<Instance> =
            self.read().instances.values().filter(|i| i.status != InstanceStatus::Deleted).cloned().collect();
        let accounts: HashSet<&str> = live.iter().map(|i| i.account_id.as_str()).collect();
        let mut positions = HashMap::new();
        for a in accounts {
            positions.insert(a.to_string(), account::position(&self.ledger(a)?));
        }
        let mut changes: Vec<(Instance, Vec<LedgerEntry>)> = Vec::new();
        for i in live {
            let pos = positions.get(&i.account_id).copied().unwrap_or_default();
            let mut n = i.revised(now);
            let mut ledger = Vec::new();
            // A lock whose time is up releases the instance (or stops a spot instance that asked to be).
            if let (Some(lock), Some(at)) = (i.billing.lock, i.billing.release_at) {
                if now >= at {
                    if lock == LockReason::Recycling && i.billing.spot_stop_on_interrupt {
                        platform_stop(&mut n);
                        n.stopped_mode = Some(StoppedMode::StopCharging);
                        n.billing.lock = None;
                        n.billing.release_at = None;
                    } else {
                        let t = n.status.platform(n.desired, PlatformAction::Release);
                        n.status = t.status;
                        n.desired = t.desired;
                    }
                    ledger.push(notice(
                        format!("release:{}:{}:{}", i.id, at.timestamp(), n.revision),
                        &i,
                        now_s,
                        format!(
                            "{} after {} lock",
                            if n.status == InstanceStatus::Deleted { "released" } else { "stopped" },
                            lock.as_str()
                        ),
                    ));
                    changes.push((n, ledger));
                    continue;
                }
            }
            match i.charge_type {
                ChargeType::PrePaid => {
                    let Some(exp) = i.billing.expires_at else { continue };
                    let renewal = match i.billing.auto_renew_months {
                        Some(m) => self
                            .catalog
                            .instance_type(&i.instance_type)
                            .map(|t| {
                                let disk = self.system_disk_of(&self.read(), &i);
                                self.subscription_quote(t, (&disk.0, disk.1), m)
                            })
                            .transpose()?,
                        None => None,
                    };
                    let renewal_cents =
                        renewal.as_ref().map(|q| Money::from_micros(q.trade).settle_cents() as i64).unwrap_or(0);
                    match account::expiry_step(
                        exp.timestamp(),
                        i.billing.auto_renew_months,
                        pos.balance_cents,
                        renewal_cents,
                        now_s,
                        secs(setup.expired_release_after),
                    ) {
                        ExpiryStep::Active => continue,
                        ExpiryStep::Renew { months } => {
                            let Some(q) = renewal else { continue };
                            n.billing.expires_at = Some(add_months(exp, months));
                            n.billing.term_started_at = Some(exp);
                            n.billing.term_paid_cents = Money::from_micros(q.trade).settle_cents() as i64;
                            n.billing.lock = None;
                            n.billing.release_at = None;
                            ledger.push(Self::subscription_entry(&n, &q, months, Some(exp.timestamp())));
                            // The balance this renewal used is not there for the next one.
                            if let Some(p) = positions.get_mut(&i.account_id) {
                                p.balance_cents += ledger[0].amount_cents;
                            }
                        }
                        ExpiryStep::Expire | ExpiryStep::Release => {
                            if i.billing.lock.is_some() {
                                continue;
                            }
                            platform_stop(&mut n);
                            n.billing.lock = Some(LockReason::Financial);
                            n.billing.release_at = Some(exp + setup.expired_release_after);
                            ledger.push(notice(
                                format!("expired:{}:{}:{}", i.id, exp.timestamp(), n.revision),
                                &i,
                                now_s,
                                "subscription expired: stopped".to_string(),
                            ));
                        }
                    }
                }
                ChargeType::PostPaid => match account::arrears_step(&pos, now_s, &policy) {
                    ArrearsStep::Stop { since } | ArrearsStep::Release { since } => {
                        if i.billing.lock.is_some() {
                            continue;
                        }
                        platform_stop(&mut n);
                        n.billing.lock = Some(LockReason::Financial);
                        n.billing.release_at = Some(
                            chrono::DateTime::from_timestamp(since + policy.stop_after_s + policy.release_after_s, 0)
                                .unwrap_or(now),
                        );
                        ledger.push(notice(
                            format!("arrears-stop:{}:{since}:{}", i.id, n.revision),
                            &i,
                            now_s,
                            format!("stopped: account in arrears since {}", feiyun_billing::invoice::iso(since)),
                        ));
                    }
                    ArrearsStep::None => {
                        if pos.arrears_since.is_none() && i.billing.lock == Some(LockReason::Financial) {
                            // Paid up: the instance may be started again.
                            n.billing.lock = None;
                            n.billing.release_at = None;
                            ledger.push(notice(
                                format!("arrears-cleared:{}:{}", i.id, n.revision),
                                &i,
                                now_s,
                                "arrears paid: lock lifted".to_string(),
                            ));
                        } else if i.billing.spot_strategy == SpotStrategy::SpotWithPriceLimit
                            && i.billing.lock.is_none()
                            && i.desired == PowerState::Running
                        {
                            let Some(t) = self.catalog.instance_type(&i.instance_type) else { continue };
                            let price = RegionPrices::at_percent(
                                self.instance_hour(t)?,
                                self.spot_percent(&self.read(), &i.zone_id)?,
                            );
                            let protected_until = i.created_at.timestamp() + 3600 * i.billing.spot_duration_h as i64;
                            if !account::spot_outbid(i.billing.spot_price_limit_micros, price, protected_until, now_s) {
                                continue;
                            }
                            n.billing.lock = Some(LockReason::Recycling);
                            n.billing.release_at = Some(now + setup.spot_notice);
                            ledger.push(notice(
                                format!("spot-reclaim:{}:{now_s}:{}", i.id, n.revision),
                                &i,
                                now_s,
                                format!(
                                    "spot price {} above the limit: {} in {} s",
                                    Money::from_micros(price),
                                    if i.billing.spot_stop_on_interrupt { "stopped" } else { "released" },
                                    secs(setup.spot_notice)
                                ),
                            ));
                        } else {
                            continue;
                        }
                    }
                },
            }
            changes.push((n, ledger));
        }
        if changes.is_empty() {
            return Ok(());
        }
        let mut state = self.write();
        for (n, ledger) in changes {
            // Re-check against the current row: the user or the agent may have changed it since
            // we looked (every change bumps the revision); the next tick decides again.
            let Some(cur) = state.instances.get(&n.id) else { continue };
            if cur.status == InstanceStatus::Deleted || cur.revision + 1 != n.revision {
                continue;
            }
            let usage: Vec<UsageEvent> = if n.status == InstanceStatus::Deleted {
                vec![self.usage_event(&state, &n, EventKind::Release)]
            } else {
                Vec::new()
            };
            let released = state
                .net
                .release_writes(std::iter::once(n.id.as_str()).filter(|_| n.status == InstanceStatus::Deleted));
            let disks = self.release_disk_writes(
                &state,
                std::iter::once(n.id.as_str()).filter(|_| n.status == InstanceStatus::Deleted),
                n.updated_at,
            );
            self.store
                .commit(&feiyun_store::WriteSet {
                    instances: std::slice::from_ref(&n),
                    usage: &usage,
                    ledger: &ledger,
                    net: Some(&released),
                    storage: Some(&disks),
                    ..Default::default()
                })
                .map_err(store_err)?;
            state.storage.apply(&disks);
            tracing::info!(instance = %n.id, status = n.status.as_str(), lock = n.billing.lock.map(|l| l.as_str()).unwrap_or(""), "billing");
            if n.status == InstanceStatus::Deleted {
                self.release_capacity(&mut state, &n);
            }
            state.put(n);
        }
        Ok(())
    }
}

/// Stop an instance for the platform (arrears, expiry, spot). Pay-as-you-go compute stops
/// charging; a subscription has nothing more to charge.
fn platform_stop(i: &mut Instance) {
    let t = i.status.platform(i.desired, PlatformAction::Stop);
    i.status = t.status;
    i.desired = t.desired;
    i.stopped_mode = Some(match i.charge_type {
        ChargeType::PostPaid => StoppedMode::StopCharging,
        ChargeType::PrePaid => StoppedMode::KeepCharging,
    });
}
