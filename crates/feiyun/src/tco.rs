//! `feiyun tco`: reads a plan, the price book, the catalog and an optional trace, and hands them
//! to `feiyun_tco::evaluate`; prints the table and writes the JSON report and its chart.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use feiyun_domain::catalog::Catalog;
use feiyun_tco::PriceBook;

#[derive(Args)]
pub struct TcoArgs {
    /// The plan (TOML): owning costs, renting options, the steady workload (see docs/tco.md).
    #[arg(long)]
    input: PathBuf,
    /// A workload trace in the replay format, instead of the plan's [[workload]] entries.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Price book (TOML); default: the one built into the server.
    #[arg(long)]
    prices: Option<PathBuf>,
    /// Instance-type catalog (TOML); default: the one built into the server.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Region of the price book to rent in.
    #[arg(long, default_value = "cn-local")]
    region: String,
    /// Write the JSON report here, and the chart of cumulative costs beside it as .svg.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn run(args: TcoArgs) -> anyhow::Result<ExitCode> {
    let plan = read(&args.input)?;
    let prices = match &args.prices {
        Some(p) => read(p)?,
        None => feiyun_server::BUILTIN_PRICES.to_string(),
    };
    let catalog = match &args.catalog {
        Some(p) => read(p)?,
        None => feiyun_server::BUILTIN_CATALOG.to_string(),
    };
    let prices = PriceBook::from_toml(&prices)?;
    let catalog = Catalog::from_toml(&catalog)?;
    let trace = args.trace.as_deref().map(feiyun_sim::read_trace).transpose()?;
    let report = feiyun_tco::evaluate(&plan, &prices, &args.region, &catalog, trace.as_deref())
        .with_context(|| format!("{}", args.input.display()))?;
    print!("{}", feiyun_tco::table(&report));
    if let Some(path) = &args.out {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, format!("{json}\n")).with_context(|| format!("cannot write {}", path.display()))?;
        let svg = path.with_extension("svg");
        std::fs::write(&svg, feiyun_tco::chart(&report)).with_context(|| format!("cannot write {}", svg.display()))?;
        eprintln!("report: {}  chart: {}", path.display(), svg.display());
    }
    Ok(ExitCode::SUCCESS)
}
