//! Reading `<Action> --Param value ... [options]` against the API description: the action must
//! exist, every parameter must be one of the action's (a repeated one with an index in range),
//! and the command line's own options (lower case, `--data-dir`, `--output`, ...) are told apart
//! from API parameters (`--InstanceId`). Nothing is sent when any of this fails.

use std::fmt;
use std::path::PathBuf;

use feiyun_openapi::api::{self, canonical_index, Action, Product};

use super::query::Query;
use super::{command, suggest, wait};

/// The command line's own options: name, value (none for a flag) and what it does.
pub const OPTIONS: &[(&str, Option<&str>, &str)] = &[
    ("profile", Some("NAME"), "Act as account NAME: <data-dir>/profiles/NAME.json, written by `feiyun account create NAME` (admin: credentials.json). Default: FEIYUN_PROFILE."),
    ("credentials", Some("FILE"), "Sign with the key in FILE (a credentials.json or a profile)."),
    ("data-dir", Some("DIR"), "The region's data directory, for credentials.json and profiles. Default: FEIYUN_DATA_DIR, else /var/lib/feiyun."),
    ("output", Some("json|table"), "json: the answer exactly as the server sent it. table: one row per listed item. Without it: JSON, with base64 output and local times made readable (see --raw)."),
    ("columns", Some("A,B,..."), "The columns of --output table: paths into each row, e.g. InstanceId,Status (implies --output table)."),
    ("query", Some("PATH"), "Print only this part of the answer: Key.Key, [N] (-1: last), [*] (each), [] (flatten). Text and numbers print bare, a list of them one per line."),
    ("wait-for", Some("STATUS[,STATUS]"), "After the call, wait until its instances have one of these statuses (Running, Stopped, Deleted, ...), or its command run has Finished (or ended Success)."),
    ("timeout", Some("SECONDS"), "How long --wait-for waits (default 120). Not RunCommand's --Timeout."),
    ("raw", None, "Print the answer as the server sent it: base64 stays base64, times stay as sent."),
    ("help", None, "List the product's actions, or describe the action's parameters (also -h)."),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Table,
}

/// The options of one call.
#[derive(Debug, Default)]
pub struct Options {
    pub data_dir: Option<PathBuf>,
    pub profile: Option<String>,
    pub credentials: Option<PathBuf>,
    pub output: Option<Output>,
    pub columns: Option<Vec<Query>>,
    pub query: Option<Query>,
    pub raw: bool,
    pub wait_for: Option<Vec<&'static str>>,
    pub timeout_s: Option<u64>,
    /// `--wait-for` as given, until the action is known.
    wait_list: Option<String>,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Request {
    ProductHelp,
    ActionHelp(&'static Action),
    Call { action: &'static Action, params: Vec<(String, String)>, options: Box<Options> },
}

/// Why a command line is refused.
#[derive(Debug, PartialEq)]
pub enum ArgError {
    NoAction { cmd: &'static str },
    UnknownAction { cmd: &'static str, given: String, near: Vec<&'static str>, elsewhere: Option<String> },
    UnknownParam { cmd: &'static str, action: &'static str, given: String, near: Vec<String> },
    IndexOutOfRange { given: String, pattern: &'static str, max_n: u16 },
    PatternName { given: String },
    Repeated { given: String },
    MissingValue { given: String },
    Stray { given: String },
    BadOption { option: &'static str, why: String },
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::NoAction { cmd } => {
                write!(f, "Name an action: `feiyun {cmd} <Action> --Param value ...`; `feiyun {cmd} --help` lists them")
            }
            ArgError::UnknownAction { cmd, given, near, elsewhere } => {
                write!(f, "{given} is not an action of `feiyun {cmd}`{}", suggest::did_you_mean("", near))?;
                match elsewhere {
                    Some(other) => write!(f, "; it is `{other}`"),
                    None => write!(f, " (`feiyun {cmd} --help` lists them)"),
                }
            }
            ArgError::UnknownParam { cmd, action, given, near } => write!(
                f,
                "{action} has no parameter --{given}{} (`feiyun {cmd} {action} --help` lists them)",
                suggest::did_you_mean("--", near)
            ),
            ArgError::IndexOutOfRange { given, pattern, max_n } => {
                write!(f, "--{given}: N in {pattern} is an index from 1 to {max_n}, written without leading zeros")
            }
            ArgError::PatternName { given } => {
                write!(f, "--{given}: put an index for N, e.g. --{}", given.replace(".N", ".1"))
            }
            ArgError::Repeated { given } => write!(f, "--{given} is given twice"),
            ArgError::MissingValue { given } => {
                write!(f, "--{given} needs a value: --{given} VALUE (or --{given}=VALUE for a value starting with --)")
            }
            ArgError::Stray { given } => write!(f, "Expected --Name value, got {given:?}"),
            ArgError::BadOption { option, why } => write!(f, "--{option}: {why}"),
        }
    }
}

impl std::error::Error for ArgError {}

/// Read a command line for `product` (everything after `feiyun <product>`).
pub fn parse(product: &'static Product, args: &[String]) -> Result<Request, ArgError> {
    let cmd = command(product);
    let mut action_name: Option<&str> = None;
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut help = false;
    let mut raw = false;
    let mut it = args.iter().peekable();
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            help = true;
            continue;
        }
        if arg == "--raw" {
            raw = true;
            continue;
        }
        let Some(name) = arg.strip_prefix("--").filter(|n| !n.is_empty()) else {
            if action_name.is_none() && !arg.starts_with('-') {
                action_name = Some(arg);
                continue;
            }
            return Err(ArgError::Stray { given: arg.clone() });
        };
        let (name, value) = match name.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => match it.next_if(|v| !v.starts_with("--")) {
                Some(v) => (name.to_string(), v.clone()),
                None => return Err(ArgError::MissingValue { given: name.to_string() }),
            },
        };
        if pairs.iter().any(|(n, _)| *n == name) {
            return Err(ArgError::Repeated { given: name });
        }
        pairs.push((name, value));
    }
    let Some(action_name) = action_name else {
        return if help { Ok(Request::ProductHelp) } else { Err(ArgError::NoAction { cmd }) };
    };
    let action = find_action(product, action_name)?;
    if help {
        return Ok(Request::ActionHelp(action));
    }
    let mut options = Options { raw, ..Options::default() };
    let mut params = Vec::new();
    for (name, value) in pairs {
        if !take_option(&mut options, &name, &value)? {
            check_param(cmd, action, &name)?;
            params.push((name, value));
        }
    }
    check_options(action, &mut options)?;
    Ok(Request::Call { action, params, options: Box::new(options) })
}

fn find_action(product: &'static Product, given: &str) -> Result<&'static Action, ArgError> {
    if let Some(a) = product.action(given) {
        return Ok(a);
    }
    let cmd = command(product);
    let near = suggest::closest(given, product.actions.iter().map(|a| a.name));
    let elsewhere = api::actions()
        .find(|(p, a)| !std::ptr::eq(*p, product) && a.name.eq_ignore_ascii_case(given))
        .map(|(p, a)| format!("feiyun {} {}", command(p), a.name));
    Err(ArgError::UnknownAction { cmd, given: given.to_string(), near, elsewhere })
}

/// Take a command-line option; false when `name` is not one (an API parameter, then).
fn take_option(o: &mut Options, name: &str, value: &str) -> Result<bool, ArgError> {
    let bad = |option: &'static str, why: String| ArgError::BadOption { option, why };
    match name {
        "data-dir" => o.data_dir = Some(PathBuf::from(value)),
        "profile" => o.profile = Some(value.to_string()),
        "credentials" => o.credentials = Some(PathBuf::from(value)),
        "output" => {
            o.output = Some(match value.to_ascii_lowercase().as_str() {
                "json" => Output::Json,
                "table" => Output::Table,
                _ => return Err(bad("output", format!("{value:?} is not json or table"))),
            })
        }
        "columns" => {
            let cols: Result<Vec<Query>, _> =
                value.split(',').map(str::trim).filter(|c| !c.is_empty()).map(Query::parse).collect();
            let cols = cols.map_err(|e| bad("columns", e.to_string()))?;
            if cols.is_empty() {
                return Err(bad("columns", "name at least one column, e.g. InstanceId,Status".into()));
            }
            o.columns = Some(cols);
        }
        "query" => o.query = Some(Query::parse(value).map_err(|e| bad("query", e.to_string()))?),
        // Checked against the action in `check_options`.
        "wait-for" => o.wait_list = Some(value.to_string()),
        "timeout" => {
            o.timeout_s =
                Some(value.parse().map_err(|_| bad("timeout", format!("{value:?} is not a number of seconds")))?)
        }
        "raw" | "help" => return Err(bad(if name == "raw" { "raw" } else { "help" }, "takes no value".into())),
        _ => return Ok(false),
    }
    Ok(true)
}

/// Check an API parameter's name against the action's parameters.
fn check_param(cmd: &'static str, action: &'static Action, name: &str) -> Result<(), ArgError> {
    if let Some(p) = action.param(name) {
        if p.is_repeated() && p.name == name {
            return Err(ArgError::PatternName { given: name.to_string() });
        }
        return Ok(());
    }
    // A repeated parameter with its index out of range or badly written.
    for p in action.params().filter(|p| p.is_repeated()) {
        if same_shape(p.name, name) {
            return Err(ArgError::IndexOutOfRange { given: name.to_string(), pattern: p.name, max_n: p.max_n });
        }
    }
    let candidates: Vec<String> =
        action.params().map(|p| concrete(p.name, name)).chain(OPTIONS.iter().map(|(o, _, _)| o.to_string())).collect();
    let near = suggest::closest(name, candidates.iter().map(String::as_str)).into_iter().map(str::to_string).collect();
    Err(ArgError::UnknownParam { cmd, action: action.name, given: name.to_string(), near })
}

/// Whether `name` is `pattern` with every N some decimal number (in range or not).
fn same_shape(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), name.split('.').collect());
    p.len() == n.len()
        && p.iter()
            .zip(&n)
            .all(|(p, n)| if *p == "N" { !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) } else { p == n })
}

/// `pattern` with its Ns replaced by the numbers `given` has, in order (1 when it has none), to
/// compare a misspelt concrete name with: `Tag.2.Kye` against `Tag.N.Key` is `Tag.2.Key`.
fn concrete(pattern: &str, given: &str) -> String {
    let mut numbers = given.split('.').filter(|s| canonical_index(s).is_some());
    pattern.split('.').map(|s| if s == "N" { numbers.next().unwrap_or("1") } else { s }).collect::<Vec<_>>().join(".")
}

fn check_options(action: &'static Action, o: &mut Options) -> Result<(), ArgError> {
    let bad = |option: &'static str, why: String| ArgError::BadOption { option, why };
    if o.columns.is_some() {
        match o.output {
            Some(Output::Json) => return Err(bad("columns", "goes with --output table, not json".into())),
            _ => o.output = Some(Output::Table),
        }
    }
    if let Some(list) = o.wait_list.take() {
        let Some(kind) = wait::kind(action.name) else {
            return Err(bad(
                "wait-for",
                format!(
                    "{} has nothing to wait for; it works after actions that change instances (RunInstances, StartInstances, ...) or run commands (RunCommand, InvokeCommand)",
                    action.name
                ),
            ));
        };
        o.wait_for = Some(wait::parse_statuses(kind, &list).map_err(|why| bad("wait-for", why))?);
    } else if o.timeout_s.is_some() {
        let hint = if action.param("Timeout").is_some() {
            format!("; {}'s own parameter is --Timeout", action.name)
        } else {
            String::new()
        };
        return Err(bad("timeout", format!("goes with --wait-for, which is not given{hint}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecs() -> &'static Product {
        api::product_by_code("ecs").expect("ecs")
    }

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    fn call(s: &[&str]) -> (&'static str, Vec<(String, String)>, Options) {
        match parse(ecs(), &args(s)) {
            Ok(Request::Call { action, params, options }) => (action.name, params, *options),
            other => panic!("{s:?}: {other:?}"),
        }
    }

    fn refused(s: &[&str]) -> ArgError {
        match parse(ecs(), &args(s)) {
            Err(e) => e,
            Ok(r) => panic!("{s:?} accepted: {r:?}"),
        }
    }

    #[test]
    fn parameters_and_options_apart() {
        let (action, params, o) = call(&[
            "RunInstances",
            "--InstanceType",
            "ecs.g7.large",
            "--ImageId=img",
            "--Tag.1.Key",
            "k",
            "--Tag.1.Value",
            "-v",
            "--profile",
            "alice",
            "--data-dir",
            "/d",
            "--credentials",
            "/c.json",
            "--wait-for",
            "running,Stopped",
            "--timeout",
            "30",
            "--query",
            "InstanceIdSets.InstanceIdSet[0]",
            "--raw",
        ]);
        assert_eq!(action, "RunInstances");
        let want = [("InstanceType", "ecs.g7.large"), ("ImageId", "img"), ("Tag.1.Key", "k"), ("Tag.1.Value", "-v")];
        assert_eq!(params, want.map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(o.profile.as_deref(), Some("alice"));
        assert_eq!(o.data_dir, Some(PathBuf::from("/d")));
        assert_eq!(o.credentials, Some(PathBuf::from("/c.json")));
        assert_eq!(o.wait_for, Some(vec!["Running", "Stopped"]));
        assert_eq!(o.timeout_s, Some(30));
        assert_eq!(o.query.map(|q| q.to_string()).as_deref(), Some("InstanceIdSets.InstanceIdSet[0]"));
        assert!(o.raw);
        // Options may come before the action; RunCommand's Timeout is a parameter, not --timeout.
        let (action, params, o) = call(&["--output", "TABLE", "RunCommand", "--Timeout", "60"]);
        assert_eq!(
            (action, params[0].0.as_str(), o.output, o.timeout_s),
            ("RunCommand", "Timeout", Some(Output::Table), None)
        );
    }

    #[test]
    fn help_for_the_product_or_the_action() {
        assert!(matches!(parse(ecs(), &args(&["--help"])), Ok(Request::ProductHelp)));
        assert!(matches!(parse(ecs(), &args(&["-h"])), Ok(Request::ProductHelp)));
        assert!(
            matches!(parse(ecs(), &args(&["RunInstances", "--help"])), Ok(Request::ActionHelp(a)) if a.name == "RunInstances")
        );
        assert!(
            matches!(parse(ecs(), &args(&["--help", "StopInstance"])), Ok(Request::ActionHelp(a)) if a.name == "StopInstance")
        );
        assert_eq!(refused(&[]), ArgError::NoAction { cmd: "ecs" });
    }

    #[test]
    fn misspelt_actions() {
        match refused(&["describeinstance"]) {
            ArgError::UnknownAction { near, elsewhere: None, .. } => assert_eq!(near, vec!["DescribeInstances"]),
            e => panic!("{e:?}"),
        }
        let e = refused(&["QueryAccountBalance"]);
        assert!(e.to_string().contains("it is `feiyun bss QueryAccountBalance`"), "{e}");
        let e = refused(&["DescribeUnicorns"]);
        assert_eq!(e.to_string(), "DescribeUnicorns is not an action of `feiyun ecs` (`feiyun ecs --help` lists them)");
    }

    #[test]
    fn misspelt_and_unknown_parameters() {
        let e = refused(&["DescribeInstances", "--InstanceIDs", "[\"i-1\"]"]);
        assert_eq!(
            e.to_string(),
            "DescribeInstances has no parameter --InstanceIDs; did you mean --InstanceIds? \
             (`feiyun ecs DescribeInstances --help` lists them)"
        );
        let near = |s: &[&str]| match refused(s) {
            ArgError::UnknownParam { near, .. } => near,
            e => panic!("{e:?}"),
        };
        assert_eq!(near(&["StartInstances", "--InstanceId", "i-1"]), vec!["InstanceId.1"]);
        assert_eq!(near(&["RunInstances", "--Tag.3.Kye", "k"]), vec!["Tag.3.Key"]);
        assert_eq!(near(&["DescribeInstances", "--outptu", "table"]), vec!["output"]);
        assert_eq!(near(&["DescribeInstances", "--Unicorn", "1"]), Vec::<String>::new());
        // BSS actions take no RegionId.
        let bss = api::product_by_code("bss").or_else(|| api::product_by_code("BssOpenApi")).expect("bss");
        assert!(matches!(
            parse(bss, &args(&["QueryAccountBalance", "--RegionId", "cn-local"])),
            Err(ArgError::UnknownParam { .. })
        ));
        // A parameter twice, a value missing, a stray word.
        assert_eq!(
            refused(&["DescribeInstances", "--PageSize", "1", "--PageSize=2"]),
            ArgError::Repeated { given: "PageSize".into() }
        );
        assert_eq!(refused(&["DescribeInstances", "--DryRun"]), ArgError::MissingValue { given: "DryRun".into() });
        assert_eq!(
            refused(&["DescribeInstances", "--DryRun", "--profile", "a"]),
            ArgError::MissingValue { given: "DryRun".into() }
        );
        assert_eq!(refused(&["DescribeInstances", "i-1"]), ArgError::Stray { given: "i-1".into() });
    }

    #[test]
    fn repeated_parameters_against_their_patterns() {
        let (_, params, _) = call(&["StopInstances", "--InstanceId.1", "a", "--InstanceId.100", "b"]);
        assert_eq!(params.len(), 2);
        for bad in ["InstanceId.101", "InstanceId.0", "InstanceId.01"] {
            assert_eq!(
                refused(&["StopInstances", &format!("--{bad}"), "a"]),
                ArgError::IndexOutOfRange { given: bad.into(), pattern: "InstanceId.N", max_n: 100 }
            );
        }
        assert_eq!(
            refused(&["RunInstances", "--Tag.21.Key", "k"]).to_string(),
            "--Tag.21.Key: N in Tag.N.Key is an index from 1 to 20, written without leading zeros"
        );
        assert_eq!(refused(&["RunInstances", "--Tag.N.Key", "k"]), ArgError::PatternName { given: "Tag.N.Key".into() });
    }

    #[test]
    fn options_checked_against_the_action() {
        let (_, _, o) = call(&["DescribeInstances", "--columns", "InstanceId, Status"]);
        assert_eq!(o.output, Some(Output::Table), "--columns implies a table");
        assert_eq!(o.columns.map(|c| c.len()), Some(2));
        let bad = |s: &[&str]| match refused(s) {
            ArgError::BadOption { option, why } => format!("{option}: {why}"),
            e => panic!("{e:?}"),
        };
        assert!(bad(&["DescribeInstances", "--output", "xml"]).starts_with("output:"));
        assert!(bad(&["DescribeInstances", "--output", "json", "--columns", "A"]).contains("table"));
        assert!(bad(&["DescribeInstances", "--wait-for", "Running"]).contains("nothing to wait for"));
        assert!(bad(&["RunInstances", "--wait-for", "Finished"]).contains("not a status"));
        assert!(bad(&["RunCommand", "--wait-for", "Finished", "--timeout", "soon"]).contains("seconds"));
        assert!(bad(&["RunCommand", "--timeout", "5"]).contains("--Timeout"));
        assert!(bad(&["DescribeInstances", "--query", "a..b"]).contains("character 3"));
        assert!(bad(&["DescribeInstances", "--raw=yes"]).contains("no value"));
        let (_, _, o) = call(&["RunCommand", "--wait-for", "finished"]);
        assert_eq!(o.wait_for, Some(vec!["Finished"]));
    }
}
