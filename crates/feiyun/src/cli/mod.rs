//! `feiyun <product> <Action> --Param value ... [options]`: call any action of the region's API,
//! with the conventions of Alibaba Cloud's `aliyun` command line.
//!
//! Products are ECS (`feiyun ecs`), BssOpenApi (`feiyun bss`, also `bssopenapi`) and Feiyun's
//! own API (`feiyun feiyun`, also `api`); their codes are case-insensitive. Actions, parameters
//! and the help texts come from `feiyun_openapi::api`, the description the server routes by, so
//! a misspelt action or parameter is refused here with the closest names before anything is
//! sent. After the call the command can wait for instances or a command run (`--wait-for`),
//! print a table (`--output table`) or one value (`--query`), and makes base64 consoles and
//! local times readable unless asked for the answer as sent (`--raw`, `--output json`).

mod args;
mod help;
mod query;
mod suggest;
mod table;
mod view;
mod wait;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use feiyun::client::{Client, ECS_VERSION};
use feiyun_openapi::api::{self, Action, Product, ProductKind, Region};
use serde_json::{json, Value};

use crate::profile;
use args::{Options, Output, Request};
use wait::{Kind, WaitError};

/// The region a call names when it needs one and none is given (unless FEIYUN_REGION_ID).
pub const DEFAULT_REGION: &str = "cn-local";

/// Exit status when `--wait-for` ran out of time.
const EXIT_TIMEOUT: u8 = 3;

/// Everything after `feiyun <product>`: parsed here, not by clap, because the parameters are
/// the action's.
#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct ApiArgs {
    /// `<Action> [--Param value ...] [options]`; `--help` lists the actions, `<Action> --help`
    /// describes one.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ACTION --Param value")]
    args: Vec<String>,
}

/// The subcommand of a product.
pub fn command(p: &Product) -> &'static str {
    match p.kind {
        ProductKind::Ecs => "ecs",
        ProductKind::Vpc => "vpc",
        ProductKind::Bss => "bss",
        ProductKind::Feiyun => "feiyun",
    }
}

/// Other names of the products' subcommands: Alibaba's product code, and a plainer one.
const ALIASES: &[(&str, &str)] = &[("bssopenapi", "bss"), ("api", "feiyun")];

/// Product codes are case-insensitive (`feiyun ECS ...`, `feiyun BssOpenApi ...`): the
/// command's first argument, when it names a product in any case, in the spelling clap knows.
pub fn normalize_product(argv: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut argv: Vec<OsString> = argv.into_iter().collect();
    if let Some(first) = argv.get_mut(1) {
        let lower = first.to_string_lossy().to_ascii_lowercase();
        let known = api::PRODUCTS
            .iter()
            .map(|p| command(p))
            .find(|c| *c == lower)
            .or_else(|| ALIASES.iter().find(|(a, _)| *a == lower).map(|(_, c)| *c));
        if let Some(c) = known {
            *first = c.into();
        }
    }
    argv
}

/// Run `feiyun <product> ...` for the product with this code.
pub fn run(code: &str, args: ApiArgs) -> anyhow::Result<ExitCode> {
    let product = api::product_by_code(code).with_context(|| format!("No product {code}"))?;
    match args::parse(product, &args.args)? {
        Request::ProductHelp => out(&help::product(product)),
        Request::ActionHelp(a) => out(&help::action(product, a)),
        Request::Call { action, params, options } => return call(product, action, params, *options),
    }
    Ok(ExitCode::SUCCESS)
}

fn call(
    product: &'static Product,
    action: &'static Action,
    mut params: Vec<(String, String)>,
    o: Options,
) -> anyhow::Result<ExitCode> {
    let data_dir = o.data_dir.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("FEIYUN_DATA_DIR").unwrap_or_else(|| crate::DEFAULT_DATA_DIR.into()))
    });
    let source = profile::Source { file: o.credentials.clone(), profile: o.profile.clone() };
    let creds = profile::resolve(&data_dir, &source)?;
    let region = match params.iter().find(|(k, _)| k == "RegionId") {
        Some((_, r)) => r.clone(),
        None => std::env::var("FEIYUN_REGION_ID").ok().filter(|r| !r.is_empty()).unwrap_or(DEFAULT_REGION.into()),
    };
    if action.region == Region::Required && !params.iter().any(|(k, _)| k == "RegionId") {
        params.push(("RegionId".into(), region.clone()));
    }
    let client = Client::new(&creds.endpoint, &creds.key_id, &creds.secret);
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let reply = client.call_in(product.version, action.name, &pairs).map_err(anyhow::Error::msg)?;
    if !reply.ok() || reply.body.is_null() {
        // Errors (and anything that is not JSON) print as the server sent them.
        out(&format!("{}\n", if reply.body.is_null() { reply.text.clone() } else { pretty(&reply.body) }));
        return Ok(if reply.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    let waited = match &o.wait_for {
        Some(want) => {
            let timeout = Duration::from_secs(o.timeout_s.unwrap_or(wait::DEFAULT_TIMEOUT_S));
            wait_after(&client, action, &params, &reply.body, want, timeout, &region)
        }
        None => Ok(()),
    };
    // The answer prints even when the wait failed: it names what was created.
    let printed = print_answer(action, &params, reply.body, &o);
    match waited {
        Ok(()) => Ok(printed),
        Err(e) => {
            eprintln!("{}", json!({"Error": e.to_string()}));
            Ok(ExitCode::from(match e {
                WaitError::Timeout { .. } => EXIT_TIMEOUT,
                WaitError::Hopeless(_) => 1,
                WaitError::Poll(_) => 2,
            }))
        }
    }
}

fn wait_after(
    client: &Client,
    action: &Action,
    params: &[(String, String)],
    answer: &Value,
    want: &[&str],
    timeout: Duration,
    region: &str,
) -> Result<(), WaitError> {
    let mut log = std::io::stderr();
    match wait::kind(action.name) {
        Some(Kind::Instances) => {
            let ids = wait::instance_ids(params, answer);
            if ids.is_empty() {
                return Err(WaitError::Hopeless(
                    "No instance to wait for: the answer and the parameters name none".into(),
                ));
            }
            let mut poll = || {
                let mut statuses = BTreeMap::new();
                for batch in ids.chunks(100) {
                    let list = ecs(client, "DescribeInstances", &wait::describe_params(region, batch))?;
                    for i in list["Instances"]["Instance"].as_array().into_iter().flatten() {
                        let (id, status) = (i["InstanceId"].as_str(), i["Status"].as_str());
                        if let (Some(id), Some(status)) = (id, status) {
                            statuses.insert(id.to_string(), status.to_string());
                        }
                    }
                }
                Ok(wait::instance_progress(&ids, &statuses, want))
            };
            wait::until(&wait::describe_instances(&ids, want), timeout, &mut poll, &mut log)
        }
        Some(Kind::Invocation) => {
            let Some(invoke_id) = answer["InvokeId"].as_str() else {
                return Err(WaitError::Hopeless("No InvokeId in the answer to wait for".into()));
            };
            let query =
                vec![("RegionId".to_string(), region.to_string()), ("InvokeId".to_string(), invoke_id.to_string())];
            let mut poll = || {
                let list = ecs(client, "DescribeInvocations", &query)?;
                let inv =
                    list.pointer("/Invocations/Invocation/0").ok_or(format!("invocation {invoke_id} is not listed"))?;
                Ok(wait::invocation_progress(inv, want))
            };
            wait::until(&wait::describe_invocation(invoke_id, want), timeout, &mut poll, &mut log)
        }
        None => Ok(()),
    }
}

/// An ECS call made while waiting; an error answer is an error.
fn ecs(client: &Client, action: &str, params: &[(String, String)]) -> Result<Value, String> {
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = client.call_in(ECS_VERSION, action, &pairs)?;
    if !r.ok() {
        return Err(format!("{action} answered HTTP {}: {}", r.status, r.text));
    }
    Ok(r.body)
}

/// Print the answer as the options say; the exit status is 1 when `--query` found nothing.
fn print_answer(action: &Action, params: &[(String, String)], answer: Value, o: &Options) -> ExitCode {
    let readable = !o.raw && o.output != Some(Output::Json);
    let answer = if readable { view::humanize(action.name, params, answer) } else { answer };
    let (value, whole) = match &o.query {
        Some(q) => (q.eval(&answer), false),
        None => (answer, true),
    };
    if let (Some(q), Value::Null) = (&o.query, &value) {
        eprintln!("{}", json!({"Error": format!("--query {q} found nothing in the answer")}));
        return ExitCode::from(1);
    }
    match o.output {
        Some(Output::Table) => out(&table::render(&value, action.name, whole, o.columns.as_deref())),
        Some(Output::Json) => out(&format!("{}\n", pretty(&value))),
        None => match (whole && readable).then(|| view::text(action.name, &value)).flatten() {
            Some((text, note)) => {
                eprintln!("{note}");
                out(&text);
            }
            None if whole => out(&format!("{}\n", pretty(&value))),
            None => out(&bare(&value)),
        },
    }
    ExitCode::SUCCESS
}

/// A `--query` result for a shell: text and numbers bare, a list of them one per line, anything
/// else as JSON.
fn bare(v: &Value) -> String {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    };
    if let Some(s) = scalar(v) {
        return if s.ends_with('\n') { s } else { format!("{s}\n") };
    }
    if let Some(lines) = v.as_array().and_then(|a| a.iter().map(scalar).collect::<Option<Vec<String>>>()) {
        return lines.iter().map(|l| format!("{l}\n")).collect();
    }
    format!("{}\n", pretty(v))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Write to stdout; a reader that went away (`| head`) is not an error.
fn out(s: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(s.as_bytes()).and_then(|()| stdout.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_names_any_case() {
        let argv = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        for (given, want) in [
            ("ECS", "ecs"),
            ("Ecs", "ecs"),
            ("VPC", "vpc"),
            ("BssOpenApi", "bss"),
            ("bssopenapi", "bss"),
            ("BSS", "bss"),
            ("Feiyun", "feiyun"),
            ("API", "feiyun"),
            ("up", "up"),
            ("Replay", "Replay"),
        ] {
            assert_eq!(normalize_product(argv(&["feiyun", given, "X"])), argv(&["feiyun", want, "X"]), "{given}");
        }
        assert_eq!(normalize_product(argv(&["feiyun"])), argv(&["feiyun"]));
    }

    #[test]
    fn bare_values_for_shells() {
        assert_eq!(bare(&json!("i-1")), "i-1\n");
        assert_eq!(bare(&json!(3)), "3\n");
        assert_eq!(bare(&json!("two\nlines\n")), "two\nlines\n", "no blank line after output that ends one");
        assert_eq!(bare(&json!(["i-1", "i-2"])), "i-1\ni-2\n");
        assert_eq!(bare(&json!([{"a": 1}])), "[\n  {\n    \"a\": 1\n  }\n]\n");
    }
}
