//! `feiyun billing`: top up an account, print an invoice. Both work on the data directory while
//! the server runs (the ledger is append-only and keyed, so a repeated top-up with the same
//! reference is paid once).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use feiyun_billing::money::{format_cents, Money};
use feiyun_server::{Config, DataDir};

use crate::DEFAULT_DATA_DIR;

#[derive(Subcommand)]
pub enum BillingCmd {
    /// Pay money into an account, e.g. `feiyun billing topup alice 100.00`.
    Topup {
        /// Account name.
        account: String,
        /// Amount in the region's currency, at most two decimals.
        amount: String,
        /// A reference for this payment; the same reference is never paid twice. Default: a new one.
        #[arg(long)]
        reference: Option<String>,
        #[arg(long, default_value = DEFAULT_DATA_DIR, env = "FEIYUN_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Print an account's invoice for a month: ledger, usage per instance, balances.
    Invoice {
        /// Account name.
        account: String,
        /// Billing cycle, YYYY-MM (UTC); default: the current month.
        #[arg(long)]
        month: Option<String>,
        /// CSV instead of text.
        #[arg(long)]
        csv: bool,
        /// The region configuration the server runs with (for its price book and catalog).
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value = DEFAULT_DATA_DIR, env = "FEIYUN_DATA_DIR")]
        data_dir: PathBuf,
    },
}

/// Cents from a decimal amount with at most two places.
fn parse_cents(amount: &str) -> anyhow::Result<i64> {
    let micros =
        Money::parse_micros(amount).with_context(|| format!("{amount:?} is not an amount like 100 or 12.34"))?;
    if micros <= 0 || micros % 10_000 != 0 {
        bail!("{amount:?}: a positive amount with at most two decimals");
    }
    i64::try_from(micros / 10_000).context("amount too large")
}

pub fn run(cmd: BillingCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        BillingCmd::Topup { account, amount, reference, data_dir } => {
            let cents = parse_cents(&amount)?;
            let (store, _) = DataDir::new(&data_dir).open()?;
            let acct = store.account_by_name(&account)?.with_context(|| format!("no account named {account}"))?;
            let reference = reference.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let now = chrono::Utc::now().timestamp();
            let added = store.append_ledger(&[feiyun_control::top_up_entry(&acct.id, cents, now, &reference)])?;
            let balance = store.balance_cents(&acct.id)?;
            if added == 0 {
                eprintln!("Reference {reference} was already paid; nothing added.");
            }
            println!(
                "{}",
                serde_json::json!({"AccountName": acct.name, "Reference": reference, "Added": format_cents(if added == 1 { cents as i128 } else { 0 }), "Balance": format_cents(balance as i128)})
            );
            Ok(ExitCode::SUCCESS)
        }
        BillingCmd::Invoice { account, month, csv, config, data_dir } => {
            let config = Config::load(config.as_deref())?;
            let (catalog, book) = feiyun_server::load_catalog_and_prices(&config)?;
            let prices = book.region(&config.region.id)?;
            let (store, _) = DataDir::new(&data_dir).open()?;
            let acct = store.account_by_name(&account)?.with_context(|| format!("no account named {account}"))?;
            let month = month.unwrap_or_else(|| chrono::Utc::now().format("%Y-%m").to_string());
            let inv = feiyun_control::invoice_from_store(store.as_ref(), &catalog, prices, &acct, &month)?;
            print!("{}", if csv { inv.csv() } else { inv.text() });
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_cents;

    #[test]
    fn amounts() {
        assert_eq!(parse_cents("100").ok(), Some(10_000));
        assert_eq!(parse_cents("12.34").ok(), Some(1234));
        assert_eq!(parse_cents("0.5").ok(), Some(50));
        for bad in ["0", "-1", "1.234", "abc", "", "1e3"] {
            assert!(parse_cents(bad).is_err(), "{bad}");
        }
    }
}
