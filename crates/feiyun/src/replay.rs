//! `feiyun replay` and `feiyun trace convert`: hand a trace and a fleet to `feiyun_sim` and write
//! what it reports: a summary on stdout (or the JSON report with `--json`), and with `--out` the
//! JSON report and its chart.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct ReplayArgs {
    /// Neutral request CSV (see docs/replay.md; `feiyun trace convert` makes one).
    #[arg(long)]
    trace: PathBuf,
    /// Fleet: `10000x32c128g` (fixed), `32c128g` (unlimited), groups joined by commas.
    #[arg(long)]
    hosts: String,
    /// feiyun (= pack), spread, first-fit, best-fit, worst-fit, least-allocated, nomad-binpack.
    #[arg(long, default_value = "feiyun")]
    policy: String,
    /// Accepted for reproducibility of converted traces; the replay itself draws no randomness.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the JSON report here, and the chart beside it as .svg (the summary still goes to stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the JSON report on stdout instead of the summary (for scripts).
    #[arg(long)]
    json: bool,
    /// Baseline policies to replay beside the chosen one (comma-separated, or `none`).
    #[arg(long, default_value = "first-fit,best-fit,worst-fit,least-allocated,nomad-binpack")]
    baselines: String,
    /// Leave the timing fields at zero, so that reports compare byte for byte.
    #[arg(long)]
    no_timing: bool,
}

#[derive(Subcommand)]
pub enum TraceCmd {
    /// Convert a public trace into the neutral request CSV (rules in docs/replay.md); prints a JSON summary.
    Convert {
        #[arg(long, value_enum)]
        format: TraceFormat,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        /// Seed for the draws within arrival and lifetime bins (azure-2017; alibaba-gpu-2023 draws nothing).
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TraceFormat {
    /// Azure Public Dataset V1 (2017) VMs: vms.csv.gz.
    #[value(name = "azure-2017")]
    Azure2017,
    /// Alibaba cluster-trace-gpu-v2023 pod list: openb_pod_list_*.csv.
    #[value(name = "alibaba-gpu-2023")]
    AlibabaGpu2023,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    use feiyun_scheduler::cluster::Policy;
    let ReplayArgs { trace, hosts, policy, seed: _, out, json, baselines, no_timing } = args;
    let policy = Policy::parse(&policy).with_context(|| format!("unknown policy {policy:?}"))?;
    let baselines: Vec<Policy> = if baselines == "none" {
        Vec::new()
    } else {
        baselines
            .split(',')
            .map(|b| Policy::parse(b.trim()).with_context(|| format!("unknown baseline policy {b:?}")))
            .collect::<anyhow::Result<_>>()?
    };
    let fleet = feiyun_sim::FleetSpec::parse(&hosts)?;
    let requests = feiyun_sim::read_trace(&trace)?;
    let opts = feiyun_sim::replay::ReplayOptions { policy, baselines, timing: !no_timing };
    let replay = feiyun_sim::replay::replay(&requests, &fleet, &hosts, &opts);
    let name = feiyun_sim::trace_name(&trace);
    let report = serde_json::to_string_pretty(&replay.report)?;
    if json {
        println!("{report}");
    } else {
        print!("{}", feiyun_sim::summary::summary(&replay, &name));
    }
    if let Some(path) = out {
        std::fs::write(&path, format!("{report}\n")).with_context(|| format!("cannot write {}", path.display()))?;
        let svg = path.with_extension("svg");
        std::fs::write(&svg, feiyun_sim::chart::chart(&replay, &name))
            .with_context(|| format!("cannot write {}", svg.display()))?;
        eprintln!("report: {}  chart: {}", path.display(), svg.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn trace(cmd: TraceCmd) -> anyhow::Result<ExitCode> {
    let TraceCmd::Convert { format, input, output, seed } = cmd;
    let requests = match format {
        TraceFormat::Azure2017 => {
            feiyun_sim::azure_2017(&input, &feiyun_sim::AzureOptions { seed, ..Default::default() })?
        }
        TraceFormat::AlibabaGpu2023 => feiyun_sim::alibaba_gpu_2023(&input)?,
    };
    feiyun_sim::write_trace(&output, &requests)?;
    println!("{}", serde_json::to_string(&feiyun_sim::TraceSummary::of(&requests))?);
    Ok(ExitCode::SUCCESS)
}
