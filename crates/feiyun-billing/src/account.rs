//! Balances, settlement and what happens to an account's instances when money runs out.
//!
//! The ledger is append-only: top-ups are positive, charges negative, in cents. Everything here is
//! a function of the ledger (and of the usage log, through the exact pay-as-you-go total), so a
//! replayed settlement, a restart or a crash between two steps cannot change a balance: every
//! entry has a key, and a key is written once.

use std::collections::{HashMap, VecDeque};

use feiyun_domain::usage::{LedgerEntry, LedgerKind};

use crate::money::Money;

/// Where an account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub balance_cents: i64,
    /// When the balance last went below zero, if it is below zero now.
    pub arrears_since: Option<i64>,
}

/// The position after every entry of one account's ledger, in ledger order.
pub fn position(entries: &[LedgerEntry]) -> Position {
    let mut p = Position::default();
    for e in entries {
        p.balance_cents += e.amount_cents;
        if p.balance_cents < 0 {
            p.arrears_since.get_or_insert(e.at_s);
        } else {
            p.arrears_since = None;
        }
    }
    p
}

/// How much of a charge was paid and how much is still owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Paid {
    pub paid_cents: i64,
    pub outstanding_cents: i64,
}

/// Allocate money to charges first come, first served: a charge takes what the balance holds
/// when it is made; a later top-up pays the oldest outstanding charges first. Keyed by entry key.
pub fn payments(entries: &[LedgerEntry]) -> HashMap<String, Paid> {
    let mut out: HashMap<String, Paid> = HashMap::new();
    let mut pool: i64 = 0;
    let mut owed: VecDeque<String> = VecDeque::new();
    for e in entries {
        if e.amount_cents > 0 {
            pool += e.amount_cents;
            while pool > 0 {
                let Some(k) = owed.front().cloned() else { break };
                let p = out.entry(k).or_default();
                let take = p.outstanding_cents.min(pool);
                p.outstanding_cents -= take;
                p.paid_cents += take;
                pool -= take;
                if p.outstanding_cents == 0 {
                    owed.pop_front();
                }
            }
        } else if e.amount_cents < 0 {
            let due = -e.amount_cents;
            let take = due.min(pool.max(0));
            pool -= take;
            out.insert(e.key.clone(), Paid { paid_cents: take, outstanding_cents: due - take });
            if due > take {
                owed.push_back(e.key.clone());
            }
        }
    }
    out
}

/// The idempotency key of an account's pay-as-you-go settlement for the hour ending at `through_s`.
pub fn settlement_key(account_id: &str, through_s: i64) -> String {
    format!("payg:{account_id}:{through_s}")
}

/// The pay-as-you-go settlement through `through_s`: what the exact total of all usage so far,
/// rounded to cents once, adds to what earlier settlements charged. Rounding the running total
/// (not each hour) means no cent is lost or invented however many hours are settled.
/// `None` when nothing new is due.
pub fn settle(account_id: &str, through_s: i64, exact_total: Money, entries: &[LedgerEntry]) -> Option<LedgerEntry> {
    let settled: i64 = entries.iter().filter(|e| e.kind == LedgerKind::PayAsYouGo).map(|e| -e.amount_cents).sum();
    let due = exact_total.settle_cents() as i64 - settled;
    (due > 0).then(|| LedgerEntry {
        key: settlement_key(account_id, through_s),
        account_id: account_id.to_string(),
        at_s: through_s,
        kind: LedgerKind::PayAsYouGo,
        amount_cents: -due,
        instance_id: String::new(),
        detail: "pay-as-you-go usage".to_string(),
    })
}

/// How long an account may stay in arrears before its pay-as-you-go instances are stopped, and
/// how long after that before they are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrearsPolicy {
    pub stop_after_s: i64,
    pub release_after_s: i64,
}

/// What arrears call for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrearsStep {
    None,
    /// Stop the account's pay-as-you-go instances (locked, `financial`).
    Stop {
        since: i64,
    },
    /// Release them.
    Release {
        since: i64,
    },
}

pub fn arrears_step(p: &Position, now_s: i64, policy: &ArrearsPolicy) -> ArrearsStep {
    match p.arrears_since {
        None => ArrearsStep::None,
        Some(since) if now_s >= since + policy.stop_after_s + policy.release_after_s => ArrearsStep::Release { since },
        Some(since) if now_s >= since + policy.stop_after_s => ArrearsStep::Stop { since },
        Some(_) => ArrearsStep::None,
    }
}

/// What a subscription calls for at `now_s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryStep {
    Active,
    /// Auto-renew for this many months, charging the renewal.
    Renew {
        months: u32,
    },
    /// The term ended and was not renewed: stop the instance (locked, `financial`).
    Expire,
    /// Expired long enough ago: release it.
    Release,
}

/// Subscription expiry: renew when asked to and the balance covers the renewal; otherwise the
/// instance expires at the end of its term and is released `release_after_s` later.
pub fn expiry_step(
    expires_at_s: i64,
    auto_renew_months: Option<u32>,
    balance_cents: i64,
    renewal_cents: i64,
    now_s: i64,
    release_after_s: i64,
) -> ExpiryStep {
    if now_s < expires_at_s {
        return ExpiryStep::Active;
    }
    match auto_renew_months {
        Some(m) if m > 0 && balance_cents >= renewal_cents && now_s < expires_at_s + release_after_s => {
            ExpiryStep::Renew { months: m }
        }
        _ if now_s >= expires_at_s + release_after_s => ExpiryStep::Release,
        _ => ExpiryStep::Expire,
    }
}

/// Whether a spot instance is reclaimed: its limit is below the market price and it is past its
/// protection period. `SpotAsPriceGo` instances (no limit) follow the market and are never
/// reclaimed for price.
pub fn spot_outbid(limit_micros: Option<i64>, price_micros: i128, protected_until_s: i64, now_s: i64) -> bool {
    match limit_micros {
        Some(l) => now_s >= protected_until_s && (l as i128) < price_micros,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: &str, at: i64, kind: LedgerKind, cents: i64) -> LedgerEntry {
        LedgerEntry {
            key: key.into(),
            account_id: "a".into(),
            at_s: at,
            kind,
            amount_cents: cents,
            instance_id: String::new(),
            detail: String::new(),
        }
    }

    /// Arrears, by hand: top up 1.00; hourly settlements of 0.60 and 0.60 leave -0.20 from t=7200;
    /// a top-up of 0.10 leaves -0.10 (still in arrears since 7200); 0.50 more clears it.
    #[test]
    fn arrears_start_when_the_balance_goes_negative_and_end_when_it_is_paid() {
        let mut log = vec![
            e("t1", 0, LedgerKind::TopUp, 100),
            e("h1", 3600, LedgerKind::PayAsYouGo, -60),
            e("h2", 7200, LedgerKind::PayAsYouGo, -60),
        ];
        assert_eq!(position(&log), Position { balance_cents: -20, arrears_since: Some(7200) });
        log.push(e("t2", 8000, LedgerKind::TopUp, 10));
        assert_eq!(position(&log), Position { balance_cents: -10, arrears_since: Some(7200) });
        let paid = payments(&log);
        assert_eq!(paid["h1"], Paid { paid_cents: 60, outstanding_cents: 0 });
        assert_eq!(paid["h2"], Paid { paid_cents: 50, outstanding_cents: 10 });
        log.push(e("t3", 9000, LedgerKind::TopUp, 50));
        assert_eq!(position(&log), Position { balance_cents: 40, arrears_since: None });
        assert_eq!(payments(&log)["h2"], Paid { paid_cents: 60, outstanding_cents: 0 });
    }

    /// Grace periods: stop 1 day after arrears start, release 15 days after that.
    #[test]
    fn arrears_steps() {
        let policy = ArrearsPolicy { stop_after_s: 86_400, release_after_s: 15 * 86_400 };
        let p = Position { balance_cents: -1, arrears_since: Some(1000) };
        let table = [
            (1000, ArrearsStep::None),
            (87_399, ArrearsStep::None),
            (87_400, ArrearsStep::Stop { since: 1000 }),
            (1000 + 16 * 86_400 - 1, ArrearsStep::Stop { since: 1000 }),
            (1000 + 16 * 86_400, ArrearsStep::Release { since: 1000 }),
        ];
        for (now, step) in table {
            assert_eq!(arrears_step(&p, now, &policy), step, "at {now}");
        }
        assert_eq!(arrears_step(&Position::default(), 10_000_000, &policy), ArrearsStep::None);
    }

    /// Settlement rounds the running total: four hours of 0.004 each settle 0.00, 0.01, 0.00, 0.01
    /// (running totals 0.004 → 0.00, 0.008 → 0.01, 0.012 → 0.01, 0.016 → 0.02), never 0.00 four
    /// times (lost cents) nor 0.01 four times (invented ones).
    #[test]
    fn settlement_rounds_the_running_total() {
        let mut log = vec![e("t", 0, LedgerKind::TopUp, 100)];
        let hour = |n: i128| Money::from_micros(4_000 * n);
        assert_eq!(settle("a", 3600, hour(1), &log), None);
        let s2 = settle("a", 7200, hour(2), &log).expect("a cent is due");
        assert_eq!((s2.amount_cents, s2.key.as_str()), (-1, "payg:a:7200"));
        log.push(s2);
        assert_eq!(settle("a", 10_800, hour(3), &log), None);
        let s4 = settle("a", 14_400, hour(4), &log).expect("the second cent");
        assert_eq!(s4.amount_cents, -1);
        log.push(s4);
        assert_eq!(position(&log).balance_cents, 98, "0.02 charged in all for 0.016 of usage");
    }

    /// Subscription expiry: renew with enough balance, expire without, release after the grace.
    #[test]
    fn subscription_expiry_and_renewal() {
        let grace = 15 * 86_400;
        let table = [
            // (now, auto-renew months, balance, renewal cost) → step
            (99, Some(1), 0, 100, ExpiryStep::Active),
            (100, Some(1), 100, 100, ExpiryStep::Renew { months: 1 }),
            (100, Some(12), 99, 100, ExpiryStep::Expire),
            (100, None, 1_000_000, 100, ExpiryStep::Expire),
            (100 + grace - 1, None, 0, 100, ExpiryStep::Expire),
            (100 + grace, Some(1), 1_000_000, 100, ExpiryStep::Release),
        ];
        for (now, renew, balance, cost, step) in table {
            assert_eq!(expiry_step(100, renew, balance, cost, now, grace), step, "{now} {renew:?} {balance}");
        }
    }

    /// Spot reclaim: only past protection, only when the limit is below the market.
    #[test]
    fn spot_reclaim() {
        assert!(!spot_outbid(Some(100), 101, 3600, 3599), "protected for the first hour");
        assert!(spot_outbid(Some(100), 101, 3600, 3600));
        assert!(!spot_outbid(Some(101), 101, 3600, 9999), "a limit equal to the price holds");
        assert!(!spot_outbid(None, 1_000_000, 0, 9999), "SpotAsPriceGo follows the market");
    }
}
