//! Money at the control plane: purchases, balances, renewals and conversions, hourly settlement,
//! the billing loop and the spot market. The rules themselves are pure functions of
//! `feiyun-billing`; this module feeds them the ledger and the usage log, and `money_rules`
//! applies what they decide for arrears, expiry and spot reclaims.

use std::collections::BTreeMap;

use chrono::Months;
use feiyun_billing::account;
use feiyun_billing::invoice::Line;
use feiyun_billing::metering::{intervals, storage_intervals};
use feiyun_billing::money::Money;
use feiyun_billing::prices::{Quote, RegionPrices, TypeSize};
use feiyun_billing::rating::{bill, Market};
use feiyun_domain::catalog::InstanceTypeSpec;
use feiyun_domain::instance::{Billing, ChargeType, Instance, LockReason, SpotStrategy, StoppedMode};
use feiyun_domain::ops::Purchase;
use feiyun_domain::usage::{Charge, EventKind, LedgerEntry, LedgerKind, SpotMarketPoint, StorageUsage, UsageEvent};
use feiyun_domain::{DomainError, Instant};

use crate::{store_err, ControlPlane, State};

/// What the billing loop remembers between ticks (all of it can be rebuilt from the store).
#[derive(Debug, Default)]
pub(crate) struct Ticker {
    /// The last settlement boundary done.
    settled_through: i64,
    /// When the market was last repriced.
    market_at: i64,
    /// Whether the market has been read back from the store since start.
    market_loaded: bool,
}

/// A spot price quote.
#[derive(Debug, Clone, PartialEq)]
pub struct SpotQuote {
    pub zone_id: String,
    pub instance_type: String,
    pub at_s: i64,
    pub percent: u32,
    /// Spot price per hour, micro-units.
    pub hourly: i128,
    /// Pay-as-you-go price per hour, micro-units.
    pub origin: i128,
}

/// What the bill APIs need of one account.
#[derive(Debug, Clone)]
pub struct AccountBills {
    pub ledger: Vec<LedgerEntry>,
    pub events: Vec<UsageEvent>,
    /// Data disks and snapshots.
    pub storage: Vec<StorageUsage>,
    /// Public traffic.
    pub traffic: Vec<feiyun_billing::traffic::TrafficUsage>,
    pub market: Market,
}

impl AccountBills {
    pub fn logs(&self) -> feiyun_billing::invoice::Logs<'_> {
        feiyun_billing::invoice::Logs { events: &self.events, storage: &self.storage, traffic: &self.traffic }
    }
}

pub(crate) fn secs(d: std::time::Duration) -> i64 {
    d.as_secs() as i64
}

/// A top-up written straight to the store (the command line uses this while the server runs).
pub fn top_up_entry(account_id: &str, cents: i64, at_s: i64, reference: &str) -> LedgerEntry {
    LedgerEntry {
        key: format!("topup:{account_id}:{reference}"),
        account_id: account_id.to_string(),
        at_s,
        kind: LedgerKind::TopUp,
        amount_cents: cents,
        instance_id: String::new(),
        detail: "top-up".to_string(),
    }
}

/// The invoice of an account for a billing cycle, straight from the store (the command line uses
/// this while the server runs).
pub fn invoice_from_store(
    store: &dyn feiyun_store::Store,
    catalog: &feiyun_domain::catalog::Catalog,
    prices: &RegionPrices,
    account: &feiyun_domain::account::Account,
    cycle: &str,
) -> Result<feiyun_billing::invoice::Invoice, DomainError> {
    let ledger = store.ledger(Some(&account.id)).map_err(store_err)?;
    let events = store.usage_events(Some(&account.id), 0).map_err(store_err)?;
    let storage = store.storage_usage(Some(&account.id)).map_err(store_err)?;
    let traffic = store.traffic_usage(Some(&account.id), i64::MAX).map_err(store_err)?;
    let market = Market::from_points(&store.spot_market(None).map_err(store_err)?);
    let size = |t: &str| type_size(catalog, t);
    feiyun_billing::invoice::invoice(
        chrono::Utc::now().timestamp(),
        &account.name,
        &account.id,
        cycle,
        &prices.currency,
        &ledger,
        feiyun_billing::invoice::Logs { events: &events, storage: &storage, traffic: &traffic },
        prices,
        &size,
        &market,
    )
    .map_err(|e| match e {
        feiyun_billing::invoice::InvoiceError::Cycle(c) => {
            DomainError::invalid("month", format!("{c:?} is not YYYY-MM"))
        }
        other => DomainError::Internal(other.to_string()),
    })
}

/// The size of a catalog type, as far as price is concerned.
pub fn type_size(catalog: &feiyun_domain::catalog::Catalog, instance_type: &str) -> Option<TypeSize> {
    catalog.instance_type(instance_type).map(|t| TypeSize {
        family: t.family.clone(),
        vcpus: t.vcpus,
        memory_mib: t.memory_mib(),
        gpus: t.gpu_count,
    })
}

/// Calendar months after an instant (end of month clamps, as subscription terms do).
pub(crate) fn add_months(t: Instant, months: u32) -> Instant {
    t.checked_add_months(Months::new(months)).unwrap_or(t)
}

impl ControlPlane {
    pub(crate) fn size_of(&self, instance_type: &str) -> Option<TypeSize> {
        type_size(&self.catalog, instance_type)
    }

    /// Pay-as-you-go price of a type per hour, micro-units.
    pub fn instance_hour(&self, t: &InstanceTypeSpec) -> Result<i128, DomainError> {
        let size = self.size_of(&t.id).ok_or_else(|| DomainError::InstanceTypeNotFound(t.id.clone()))?;
        Ok(self.prices()?.instance_hour(&size))
    }

    /// The system disk of an instance from before disks were recorded: the image's size, in
    /// the default category.
    pub fn system_disk(&self, image_id: &str) -> (String, u64) {
        let gib = self.image(image_id).map(|m| m.disk_gib()).unwrap_or(1);
        (crate::SYSTEM_DISK_CATEGORY.to_string(), gib)
    }

    /// The system disk an instance is billed for: (category, GiB).
    pub(crate) fn system_disk_of(&self, state: &State, i: &Instance) -> (String, u64) {
        match state.storage.system_disk_of(&i.id) {
            Some(d) => (d.category.as_str().to_string(), d.size_gib),
            None => self.system_disk(&i.image_id),
        }
    }

    /// Subscription price of one instance of a type with a system disk of (category, GiB), for
    /// `months`.
    pub fn subscription_quote(
        &self,
        t: &InstanceTypeSpec,
        disk: (&str, u64),
        months: u32,
    ) -> Result<Quote, DomainError> {
        let prices = self.prices()?;
        let disk = prices.disk_hour(disk.0, disk.1).unwrap_or(0);
        Ok(prices.subscription(self.instance_hour(t)? + disk, months))
    }

    pub fn balance_cents(&self, account_id: &str) -> Result<i64, DomainError> {
        self.store.balance_cents(account_id).map_err(store_err)
    }

    pub fn ledger(&self, account_id: &str) -> Result<Vec<LedgerEntry>, DomainError> {
        self.store.ledger(Some(account_id)).map_err(store_err)
    }

    /// Whether an account is in arrears, from its ledger as committed (without waiting for the
    /// store's writer: every change whose caller was answered is in it). A launch, a start or a
    /// new disk checks it before taking the state lock.
    pub(crate) fn in_arrears(&self, account_id: &str) -> Result<bool, DomainError> {
        let ledger = self.store.ledger_committed(account_id).map_err(store_err)?;
        Ok(account::position(&ledger).arrears_since.is_some())
    }

    /// Pay money into an account (idempotent under `reference`).
    pub fn top_up(&self, account_id: &str, cents: i64, reference: &str) -> Result<bool, DomainError> {
        if cents <= 0 {
            return Err(DomainError::invalid("Amount", "must be positive"));
        }
        let e = top_up_entry(account_id, cents, self.now().timestamp(), reference);
        Ok(self.store.append_ledger(&[e]).map_err(store_err)? == 1)
    }

    pub fn market(&self) -> Result<Market, DomainError> {
        Ok(Market::from_points(&self.store.spot_market(None).map_err(store_err)?))
    }

    /// Everything needed to compute an account's bills.
    pub fn account_bills(&self, account_id: &str) -> Result<AccountBills, DomainError> {
        Ok(AccountBills {
            ledger: self.ledger(account_id)?,
            events: self.usage_events(Some(account_id), 0)?,
            storage: self.storage_usage(Some(account_id))?,
            traffic: self.traffic_usage(account_id, i64::MAX)?,
            market: self.market()?,
        })
    }

    /// Usage lines of an account for `[from_s, to_s)`.
    /// Usage lines of an account for `[from_s, to_s)`, up to now at most.
    pub fn usage_lines(&self, bills: &AccountBills, from_s: i64, to_s: i64) -> Result<Vec<Line>, DomainError> {
        let to_s = to_s.min(self.now().timestamp());
        feiyun_billing::invoice::lines(bills.logs(), from_s, to_s, self.prices()?, &|t| self.size_of(t), &bills.market)
            .map_err(|e| DomainError::Internal(e.to_string()))
    }

    /// Used fraction (per mille) of a zone's scarcest resource.
    /// With `planned` (cpu milli, MiB) counted as used too: instances about to be placed.
    fn zone_used_permille(state: &State, zone: &str, planned: (u64, u64)) -> u32 {
        let (mut cap, mut free) = ([0u128; 2], [0u128; 2]);
        for (_, shape, f, _) in state.cluster.hosts() {
            if shape.zone == zone {
                cap[0] += shape.capacity.cpu_milli as u128;
                cap[1] += shape.capacity.mem_mib as u128;
                free[0] += f.cpu_milli as u128;
                free[1] += f.mem_mib as u128;
            }
        }
        free[0] = free[0].saturating_sub(planned.0 as u128);
        free[1] = free[1].saturating_sub(planned.1 as u128);
        (0..2).filter(|d| cap[*d] > 0).map(|d| ((cap[d] - free[d]) * 1000 / cap[d]) as u32).max().unwrap_or(1000)
    }

    /// The spot percentage in force in a zone (the last one recorded, else computed from `state`).
    /// Lock order: the state, then the market; nothing holding the market takes the state.
    pub(crate) fn spot_percent(&self, state: &State, zone: &str) -> Result<u32, DomainError> {
        self.spot_percent_with(state, zone, (0, 0))
    }

    /// [`ControlPlane::spot_percent`], counting `planned` (cpu milli, MiB) as used when no market
    /// price is recorded yet.
    fn spot_percent_with(&self, state: &State, zone: &str, planned: (u64, u64)) -> Result<u32, DomainError> {
        if let Some(p) = self.spot_market.lock().unwrap_or_else(|p| p.into_inner()).get(zone) {
            return Ok(*p);
        }
        Ok(self.prices()?.spot_percent(Self::zone_used_permille(state, zone, planned)))
    }

    /// Current spot prices of a type, per zone (or in one zone).
    pub fn spot_quotes(&self, instance_type: &str, zone: Option<&str>) -> Result<Vec<SpotQuote>, DomainError> {
        let t = self
            .catalog
            .instance_type(instance_type)
            .ok_or_else(|| DomainError::InstanceTypeNotFound(instance_type.into()))?;
        let origin = self.instance_hour(t)?;
        let mut out = Vec::new();
        for z in &self.setup.region.zones {
            if zone.is_some_and(|w| w != z.id) {
                continue;
            }
            let percent = self.spot_percent(&self.read(), &z.id)?;
            out.push(SpotQuote {
                zone_id: z.id.clone(),
                instance_type: t.id.clone(),
                at_s: self.now().timestamp(),
                percent,
                hourly: RegionPrices::at_percent(origin, percent),
                origin,
            });
        }
        if let Some(z) = zone {
            if out.is_empty() {
                return Err(DomainError::ZoneNotFound(z.to_string()));
            }
        }
        Ok(out)
    }

    /// Spot price history of a type in `[from_s, to_s]`: the point in force at `from_s` and every
    /// change after it.
    pub fn spot_history(
        &self,
        instance_type: &str,
        zone: Option<&str>,
        from_s: i64,
        to_s: i64,
    ) -> Result<Vec<SpotQuote>, DomainError> {
        let t = self
            .catalog
            .instance_type(instance_type)
            .ok_or_else(|| DomainError::InstanceTypeNotFound(instance_type.into()))?;
        if let Some(z) = zone {
            if self.setup.region.zone(z).is_none() {
                return Err(DomainError::ZoneNotFound(z.to_string()));
            }
        }
        let origin = self.instance_hour(t)?;
        let points = self.store.spot_market(zone).map_err(store_err)?;
        let mut by_zone: BTreeMap<&str, Vec<&SpotMarketPoint>> = BTreeMap::new();
        for p in &points {
            by_zone.entry(p.zone_id.as_str()).or_default().push(p);
        }
        let mut out = Vec::new();
        for (z, ps) in by_zone {
            let first = ps.partition_point(|p| p.at_s <= from_s).saturating_sub(1);
            for p in &ps[first..] {
                if p.at_s > to_s {
                    break;
                }
                out.push(SpotQuote {
                    zone_id: z.to_string(),
                    instance_type: t.id.clone(),
                    at_s: p.at_s.max(from_s),
                    percent: p.percent,
                    hourly: RegionPrices::at_percent(origin, p.percent),
                    origin,
                });
            }
        }
        Ok(out)
    }

    /// The commercial state of new instances, and what they cost up front. A pay-as-you-go
    /// purchase's arrears are the caller's to check, before it takes the state lock.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn purchase(
        &self,
        account_id: &str,
        t: &InstanceTypeSpec,
        system_disk: (&str, u64),
        p: &Purchase,
        state: &State,
        zone: &str,
        count: usize,
        now: Instant,
    ) -> Result<(Billing, Option<Quote>), DomainError> {
        let mut b = Billing {
            spot_strategy: p.spot_strategy,
            spot_price_limit_micros: p.spot_price_limit_micros,
            spot_duration_h: p.spot_duration_h,
            spot_stop_on_interrupt: p.spot_stop_on_interrupt,
            ..Billing::default()
        };
        match p.charge_type {
            ChargeType::PrePaid => {
                let months = p.period_months.ok_or_else(|| DomainError::missing("Period"))?;
                let q = self.subscription_quote(t, system_disk, months)?;
                let total = Money::from_micros(q.trade * count as i128).settle_cents() as i64;
                if self.balance_cents(account_id)? < total {
                    return Err(DomainError::NotEnoughBalance);
                }
                b.expires_at = Some(add_months(now, months));
                b.term_started_at = Some(now);
                b.term_paid_cents = Money::from_micros(q.trade).settle_cents() as i64;
                b.auto_renew_months = p.auto_renew_months;
                Ok((b, Some(q)))
            }
            ChargeType::PostPaid => {
                // Arrears were checked before the state lock was taken (the caller's first
                // check): reading the ledger waits for every change submitted before it to be
                // applied, which under the lock would hold up every other decision meanwhile.
                // A prepaid purchase reads the balance here, under the lock, because two of them
                // must not spend the same money.
                if p.spot_strategy == SpotStrategy::SpotWithPriceLimit {
                    let limit = p.spot_price_limit_micros.ok_or_else(|| DomainError::missing("SpotPriceLimit"))?;
                    // The instances being placed count: a bid is checked against the zone as it
                    // will be once they run.
                    let d = crate::instances::demand_of(t);
                    let planned = (d.cpu_milli * count as u64, d.mem_mib * count as u64);
                    let market =
                        RegionPrices::at_percent(self.instance_hour(t)?, self.spot_percent_with(state, zone, planned)?);
                    if (limit as i128) < market {
                        return Err(DomainError::SpotPriceTooLow {
                            limit: Money::from_micros(limit as i128).to_string(),
                            market: format!("{:.6}", market as f64 / 1e6),
                        });
                    }
                }
                Ok((b, None))
            }
        }
    }

    /// The ledger entry of a subscription bought with an instance.
    pub(crate) fn subscription_entry(i: &Instance, q: &Quote, months: u32, renewal_of: Option<i64>) -> LedgerEntry {
        let (key, kind, what) = match renewal_of {
            None => (format!("sub:{}", i.id), LedgerKind::Subscription, "subscription"),
            Some(exp) => (format!("renew:{}:{exp}", i.id), LedgerKind::Renewal, "renewal"),
        };
        let discount =
            q.rule.map(|(m, f)| format!(", {}% off for {m}+ months", f as f64 / 10_000.0)).unwrap_or_default();
        LedgerEntry {
            key,
            account_id: i.account_id.clone(),
            at_s: i.updated_at.timestamp(),
            kind,
            amount_cents: -(Money::from_micros(q.trade).settle_cents() as i64),
            instance_id: i.id.clone(),
            detail: format!("{} {what} {months} month(s){discount}", i.instance_type),
        }
    }

    /// RenewInstance: extend a subscription by `months`, paid now.
    pub fn renew_instance(&self, account_id: &str, id: &str, months: u32) -> Result<Instant, DomainError> {
        let mut state = self.write();
        let i = state.owned(account_id, id)?.clone();
        if i.charge_type != ChargeType::PrePaid {
            return Err(DomainError::ChargeTypeViolation { charge: "PostPaid" });
        }
        let t = self.catalog.instance_type(&i.instance_type).ok_or_else(|| DomainError::Internal("type".into()))?;
        let disk = self.system_disk_of(&state, &i);
        let q = self.subscription_quote(t, (&disk.0, disk.1), months)?;
        if self.balance_cents(account_id)? < Money::from_micros(q.trade).settle_cents() as i64 {
            return Err(DomainError::NotEnoughBalance);
        }
        let now = self.now();
        let old = i.billing.expires_at.unwrap_or(now);
        let mut n = i.revised(now);
        let paid = Money::from_micros(q.trade).settle_cents() as i64;
        if old > now {
            // Renewed ahead: the paid span grows.
            n.billing.term_paid_cents += paid;
        } else {
            n.billing.term_started_at = Some(old);
            n.billing.term_paid_cents = paid;
        }
        n.billing.expires_at = Some(add_months(old, months));
        if n.billing.lock == Some(LockReason::Financial) {
            n.billing.lock = None;
            n.billing.release_at = None;
        }
        let entry = Self::subscription_entry(&n, &q, months, Some(old.timestamp()));
        self.store.put_instances(std::slice::from_ref(&n), None, &[], &[entry]).map_err(store_err)?;
        let exp = n.billing.expires_at.unwrap_or(now);
        state.put(n);
        Ok(exp)
    }

    /// ModifyInstanceChargeType: subscriptions to pay-as-you-go (the unused part of the paid span
    /// refunded pro rata, rounded half up to a cent), or pay-as-you-go to a subscription of
    /// `months` (charged now). Returns (instance, fee in cents: negative for a refund).
    pub fn convert_charge_type(
        &self,
        account_id: &str,
        ids: &[String],
        to: ChargeType,
        months: Option<u32>,
        dry_run: bool,
    ) -> Result<Vec<(String, i64)>, DomainError> {
        let mut state = self.write();
        let now = self.now();
        let mut changed = Vec::new();
        let mut ledger = Vec::new();
        let mut usage = Vec::new();
        let mut fees = Vec::new();
        let mut total_due = 0i64;
        for id in ids {
            let i = state.owned(account_id, id)?;
            if i.charge_type == to {
                return Err(DomainError::ChargeTypeViolation { charge: to.as_str() });
            }
            if i.billing.is_spot() || i.billing.lock.is_some() {
                return Err(DomainError::IncorrectStatus { status: i.status });
            }
            let mut n = i.revised(now);
            n.charge_type = to;
            let fee = match to {
                ChargeType::PostPaid => {
                    let (start, end) = (i.billing.term_started_at.unwrap_or(now), i.billing.expires_at.unwrap_or(now));
                    let span = (end - start).num_seconds().max(1) as i128;
                    let left = (end - now).num_seconds().clamp(0, span as i64) as i128;
                    let refund = ((i.billing.term_paid_cents as i128 * left * 2 + span) / (2 * span)) as i64;
                    n.billing = Billing::default();
                    if refund > 0 {
                        ledger.push(LedgerEntry {
                            key: format!("refund:{}:{}:{}", i.id, now.timestamp_millis(), n.revision),
                            account_id: i.account_id.clone(),
                            at_s: now.timestamp(),
                            kind: LedgerKind::Refund,
                            amount_cents: refund,
                            instance_id: i.id.clone(),
                            detail: format!("{} unused subscription refunded ({left} of {span} s)", i.instance_type),
                        });
                    }
                    -refund
                }
                ChargeType::PrePaid => {
                    let months = months.ok_or_else(|| DomainError::missing("Period"))?;
                    let t = self
                        .catalog
                        .instance_type(&i.instance_type)
                        .ok_or_else(|| DomainError::Internal("type".into()))?;
                    let disk = self.system_disk_of(&state, i);
                    let q = self.subscription_quote(t, (&disk.0, disk.1), months)?;
                    let paid = Money::from_micros(q.trade).settle_cents() as i64;
                    total_due += paid;
                    n.billing.expires_at = Some(add_months(now, months));
                    n.billing.term_started_at = Some(now);
                    n.billing.term_paid_cents = paid;
                    n.stopped_mode = n.stopped_mode.map(|_| StoppedMode::KeepCharging);
                    let mut e = Self::subscription_entry(&n, &q, months, None);
                    e.key = format!("sub:{}:{}:{}", i.id, now.timestamp_millis(), n.revision);
                    ledger.push(e);
                    paid
                }
            };
            usage.push(self.usage_event(&state, &n, EventKind::Convert));
            fees.push((n.id.clone(), fee));
            changed.push(n);
        }
        if total_due > 0 && self.balance_cents(account_id)? < total_due {
            return Err(DomainError::NotEnoughBalance);
        }
        if to == ChargeType::PrePaid && account::position(&self.ledger(account_id)?).arrears_since.is_some() {
            return Err(DomainError::AccountArrearage);
        }
        if dry_run {
            return Err(DomainError::DryRunOk);
        }
        self.store.put_instances(&changed, None, &usage, &ledger).map_err(store_err)?;
        for n in changed {
            state.put(n);
        }
        Ok(fees)
    }

    /// ModifyInstanceAutoRenewAttribute.
    pub fn set_auto_renew(&self, account_id: &str, ids: &[String], months: Option<u32>) -> Result<(), DomainError> {
        let mut state = self.write();
        let now = self.now();
        let mut changed = Vec::new();
        for id in ids {
            let i = state.owned(account_id, id)?;
            if i.charge_type != ChargeType::PrePaid {
                return Err(DomainError::ChargeTypeViolation { charge: "PostPaid" });
            }
            let mut n = i.revised(now);
            n.billing.auto_renew_months = months;
            changed.push(n);
        }
        self.store.put_instances(&changed, None, &[], &[]).map_err(store_err)?;
        for n in changed {
            state.put(n);
        }
        Ok(())
    }

    /// One pass of the billing loop at the clock's now: settle finished periods, reprice the spot
    /// market, and apply arrears, expiry and spot reclaims. Safe to call at any time and any
    /// number of times: every step is keyed in the ledger.
    pub fn billing_tick(&self) -> Result<(), DomainError> {
        let mut ticker = self.billing.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.now();
        let now_s = now.timestamp();
        let setup = self.setup.billing;
        let every = secs(setup.settle_every).max(1);
        let boundary = now_s - now_s.rem_euclid(every);
        if boundary > ticker.settled_through {
            self.settle(boundary)?;
            ticker.settled_through = boundary;
        }
        if !ticker.market_loaded || now_s >= ticker.market_at + secs(setup.market_every) {
            self.reprice(&mut ticker, now_s)?;
        }
        drop(ticker);
        self.apply_money_rules(now)
    }

    /// Settle every account's pay-as-you-go usage (instances, data disks, snapshots), and its
    /// metered public traffic, through `boundary`.
    fn settle(&self, boundary: i64) -> Result<(), DomainError> {
        let events = self.store.usage_events(None, 0).map_err(store_err)?;
        let traffic = self.store.traffic_usage(None, boundary).map_err(store_err)?;
        let storage = self.store.storage_usage(None).map_err(store_err)?;
        type Logs = (Vec<UsageEvent>, Vec<feiyun_billing::traffic::TrafficUsage>, Vec<StorageUsage>);
        let mut by_account: BTreeMap<&str, Logs> = BTreeMap::new();
        // Every event counts: a subscription converted to pay-as-you-go opened its intervals
        // under the subscription (which rates them at nothing until the conversion).
        for e in &events {
            by_account.entry(e.account_id.as_str()).or_default().0.push(e.clone());
        }
        for t in &traffic {
            by_account.entry(t.account_id.as_str()).or_default().1.push(t.clone());
        }
        for u in &storage {
            by_account.entry(u.account_id.as_str()).or_default().2.push(u.clone());
        }
        if by_account.is_empty() {
            return Ok(());
        }
        let market = self.market()?;
        let prices = self.prices()?;
        let mut entries = Vec::new();
        for (acct, (evs, used, stored)) in by_account {
            let mut iv = intervals(&evs, boundary);
            iv.extend(storage_intervals(&stored, boundary));
            let b =
                bill(&iv, prices, &|t| self.size_of(t), &market).map_err(|e| DomainError::Internal(e.to_string()))?;
            let total = b
                .values()
                .fold(Money::ZERO, |a, (_, m)| a.plus(*m))
                .plus(feiyun_billing::traffic::charge(&used, prices));
            let ledger = self.ledger(acct)?;
            if ledger.iter().any(|e| e.key == account::settlement_key(acct, boundary)) {
                continue;
            }
            if let Some(e) = account::settle(acct, boundary, total, &ledger) {
                entries.push(e);
            }
        }
        let n = self.store.append_ledger(&entries).map_err(store_err)?;
        if n > 0 {
            tracing::info!(accounts = n, through = boundary, "pay-as-you-go usage settled");
        }
        Ok(())
    }

    /// Record the spot percentage of every zone whose market moved.
    fn reprice(&self, ticker: &mut Ticker, now_s: i64) -> Result<(), DomainError> {
        let prices = self.prices()?;
        let now: Vec<(String, u32)> = {
            let state = self.read();
            self.setup
                .region
                .zones
                .iter()
                .map(|z| (z.id.clone(), prices.spot_percent(Self::zone_used_permille(&state, &z.id, (0, 0)))))
                .collect()
        };
        let mut market = self.spot_market.lock().unwrap_or_else(|p| p.into_inner());
        if !ticker.market_loaded {
            // After a restart: only record zones whose last stored point differs.
            for p in self.store.spot_market(None).map_err(store_err)? {
                market.insert(p.zone_id.clone(), p.percent);
            }
            ticker.market_loaded = true;
        }
        let points: Vec<SpotMarketPoint> = now
            .into_iter()
            .filter(|(zone, pct)| market.get(zone) != Some(pct))
            .map(|(zone_id, percent)| SpotMarketPoint { zone_id, at_s: now_s, percent })
            .collect();
        self.store.put_spot_market(&points).map_err(store_err)?;
        for p in points {
            market.insert(p.zone_id, p.percent);
        }
        ticker.market_at = now_s;
        Ok(())
    }
}

/// The charge of an instance's usage.
pub(crate) fn charge_of(i: &Instance) -> Charge {
    match (i.charge_type, i.billing.is_spot()) {
        (ChargeType::PrePaid, _) => Charge::Subscription,
        (ChargeType::PostPaid, true) => Charge::Spot,
        (ChargeType::PostPaid, false) => Charge::PayAsYouGo,
    }
}
