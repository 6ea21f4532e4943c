//! `--wait-for STATUS[,STATUS...]`: after an action that changes instances or runs a command,
//! poll until what it acted on has reached one of the statuses.
//!
//! Instances (RunInstances, CreateInstance, Start/Stop/Reboot/DeleteInstance(s)): the ids come
//! from the answer (RunInstances, CreateInstance) or the parameters; DescribeInstances is polled
//! until every one has a wanted status (`Deleted`: no longer listed). Command runs (RunCommand,
//! InvokeCommand): DescribeInvocations is polled for the answer's InvokeId until the run has
//! finished on every instance; `Finished` accepts any outcome, `Success` (or `Failed`,
//! `PartialFailed`) only that one.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::suggest;

/// What an action's `--wait-for` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Instances,
    Invocation,
}

const INSTANCE_ACTIONS: &[&str] = &[
    "RunInstances",
    "CreateInstance",
    "StartInstance",
    "StartInstances",
    "StopInstance",
    "StopInstances",
    "RebootInstance",
    "RebootInstances",
    "DeleteInstance",
    "DeleteInstances",
];
const INVOCATION_ACTIONS: &[&str] = &["RunCommand", "InvokeCommand"];

/// Statuses an instance can be waited for (`Deleted`: released, no longer listed).
pub const INSTANCE_STATUSES: &[&str] = &["Pending", "Starting", "Running", "Stopping", "Stopped", "Deleted"];
/// Outcomes a command run can be waited for (`Finished`: any of the others).
pub const INVOCATION_STATUSES: &[&str] = &["Finished", "Success", "Failed", "PartialFailed"];
/// Statuses of a run that has not finished.
const INVOCATION_UNFINISHED: &[&str] = &["Pending", "Running", "Scheduled", "Stopping"];

/// The default `--timeout`, in seconds.
pub const DEFAULT_TIMEOUT_S: u64 = 120;

pub fn kind(action: &str) -> Option<Kind> {
    if INSTANCE_ACTIONS.contains(&action) {
        Some(Kind::Instances)
    } else if INVOCATION_ACTIONS.contains(&action) {
        Some(Kind::Invocation)
    } else {
        None
    }
}

impl Kind {
    pub fn statuses(self) -> &'static [&'static str] {
        match self {
            Kind::Instances => INSTANCE_STATUSES,
            Kind::Invocation => INVOCATION_STATUSES,
        }
    }
}

/// The statuses of a `--wait-for` list, in their canonical spelling (any case is accepted).
pub fn parse_statuses(kind: Kind, list: &str) -> Result<Vec<&'static str>, String> {
    let mut out = Vec::new();
    for given in list.split(',').map(str::trim) {
        match kind.statuses().iter().find(|s| s.eq_ignore_ascii_case(given)) {
            Some(s) if !out.contains(s) => out.push(*s),
            Some(_) => {}
            None => {
                let near = suggest::closest(given, kind.statuses().iter().copied());
                return Err(format!(
                    "{given:?} is not a status to wait for here{} The statuses are {}.",
                    if near.is_empty() { ".".to_string() } else { suggest::did_you_mean("", &near) },
                    kind.statuses().join(", ")
                ));
            }
        }
    }
    Ok(out)
}

/// The instances an action acted on: named by its answer, or else by its parameters.
pub fn instance_ids(params: &[(String, String)], answer: &Value) -> Vec<String> {
    if let Some(ids) = answer.pointer("/InstanceIdSets/InstanceIdSet").and_then(Value::as_array) {
        return ids.iter().filter_map(Value::as_str).map(str::to_string).collect();
    }
    if let Some(id) = answer.get("InstanceId").and_then(Value::as_str) {
        return vec![id.to_string()];
    }
    let mut ids: Vec<(usize, String)> = params
        .iter()
        .filter_map(|(k, v)| match k.split_once('.') {
            Some(("InstanceId", n)) => n.parse().ok().map(|n| (n, v.clone())),
            None if k == "InstanceId" => Some((0, v.clone())),
            _ => None,
        })
        .collect();
    ids.sort();
    ids.into_iter().map(|(_, v)| v).collect()
}

/// How far a wait has come.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    /// The others, counted by status, e.g. "1 Starting".
    pub pending: String,
    /// Why the wait can never succeed, if it cannot.
    pub hopeless: Option<String>,
}

/// Progress of instances towards `want`, from their statuses (missing: released).
pub fn instance_progress(ids: &[String], statuses: &BTreeMap<String, String>, want: &[&str]) -> Progress {
    let status = |id: &String| statuses.get(id).map(String::as_str).unwrap_or("Deleted");
    let done = ids.iter().filter(|id| want.contains(&status(id))).count();
    let hopeless = if want.contains(&"Deleted") {
        None
    } else {
        ids.iter().find(|id| status(id) == "Deleted").map(|id| format!("{id} was released"))
    };
    Progress { done, total: ids.len(), pending: count_others(ids.iter().map(status), want), hopeless }
}

/// Progress of a command run: per instance, and whether its outcome is a wanted one.
pub fn invocation_progress(invocation: &Value, want: &[&str]) -> Progress {
    let runs: Vec<&str> = invocation
        .pointer("/InvokeInstances/InvokeInstance")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|r| r["InvocationStatus"].as_str().unwrap_or("Pending")).collect())
        .unwrap_or_default();
    let finished = |s: &str| !INVOCATION_UNFINISHED.contains(&s);
    let done = runs.iter().filter(|s| finished(s)).count();
    let outcome = invocation["InvocationStatus"].as_str().unwrap_or("Pending");
    let hopeless = (done == runs.len() && !want.contains(&"Finished") && !want.contains(&outcome))
        .then(|| format!("it ended {outcome}"));
    Progress {
        done,
        total: runs.len(),
        pending: count_others(runs.iter().copied().filter(|s| !finished(s)), &[]),
        hopeless,
    }
}

fn count_others<'a>(statuses: impl Iterator<Item = &'a str>, want: &[&str]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in statuses.filter(|s| !want.contains(s)) {
        *counts.entry(s).or_default() += 1;
    }
    counts.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", ")
}

/// Why a wait ended without success.
#[derive(Debug)]
pub enum WaitError {
    /// The time ran out; the last progress line says where things stood.
    Timeout { seconds: u64, last: String },
    /// What was waited for cannot happen any more.
    Hopeless(String),
    /// Polling failed.
    Poll(String),
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Timeout { seconds, last } => write!(f, "Timed out after {seconds}s {last}"),
            WaitError::Hopeless(why) => f.write_str(why),
            WaitError::Poll(why) => write!(f, "Cannot poll: {why}"),
        }
    }
}

impl std::error::Error for WaitError {}

/// One poll: the progress now, or why polling failed.
pub type Poll<'a> = dyn FnMut() -> Result<Progress, String> + 'a;

/// Poll until done, printing a line to `log` whenever the progress changes.
pub fn until(what: &str, timeout: Duration, poll: &mut Poll<'_>, log: &mut dyn Write) -> Result<(), WaitError> {
    let start = Instant::now();
    let mut last_line = String::new();
    let mut delay = Duration::from_millis(200);
    loop {
        let p = poll().map_err(WaitError::Poll)?;
        let line = format!(
            "waiting for {what}: {}/{}{}",
            p.done,
            p.total,
            if p.pending.is_empty() { String::new() } else { format!(" ({})", p.pending) }
        );
        if line != last_line {
            let _ = writeln!(log, "{line}");
            last_line = line;
        }
        if let Some(why) = p.hopeless {
            return Err(WaitError::Hopeless(format!("Stopped waiting for {what}: {why}")));
        }
        if p.done == p.total {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(WaitError::Timeout { seconds: timeout.as_secs(), last: last_line });
        }
        std::thread::sleep(delay.min(timeout.saturating_sub(start.elapsed())));
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// "2 instances to be Running", "i-abc to be Running or Stopped".
pub fn describe_instances(ids: &[String], want: &[&str]) -> String {
    let who = match ids {
        [one] => one.clone(),
        _ => format!("{} instances", ids.len()),
    };
    format!("{who} to be {}", or_list(want))
}

/// "invocation t-1 to finish", "invocation t-1 to end Success".
pub fn describe_invocation(invoke_id: &str, want: &[&str]) -> String {
    if want.contains(&"Finished") {
        format!("invocation {invoke_id} to finish")
    } else {
        format!("invocation {invoke_id} to end {}", or_list(want))
    }
}

fn or_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [first @ .., last] => format!("{} or {last}", first.join(", ")),
    }
}

/// The DescribeInstances parameters for a batch of at most 100 ids.
pub fn describe_params(region: &str, ids: &[String]) -> Vec<(String, String)> {
    vec![
        ("RegionId".into(), region.into()),
        ("InstanceIds".into(), json!(ids).to_string()),
        ("PageSize".into(), "100".into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn statuses_any_case_with_suggestions() {
        assert_eq!(parse_statuses(Kind::Instances, "running"), Ok(vec!["Running"]));
        assert_eq!(parse_statuses(Kind::Instances, "Running, stopped,Running"), Ok(vec!["Running", "Stopped"]));
        let e = parse_statuses(Kind::Instances, "Runing").expect_err("misspelt");
        assert!(e.contains("did you mean Running?"), "{e}");
        assert!(parse_statuses(Kind::Instances, "Finished").is_err());
        assert_eq!(parse_statuses(Kind::Invocation, "finished"), Ok(vec!["Finished"]));
        assert_eq!(kind("RunInstances"), Some(Kind::Instances));
        assert_eq!(kind("RunCommand"), Some(Kind::Invocation));
        assert_eq!(kind("DescribeInstances"), None);
    }

    #[test]
    fn ids_from_the_answer_or_the_parameters() {
        let run = json!({"InstanceIdSets": {"InstanceIdSet": ["i-1", "i-2"]}});
        assert_eq!(instance_ids(&[], &run), s(&["i-1", "i-2"]));
        assert_eq!(instance_ids(&[], &json!({"InstanceId": "i-9"})), s(&["i-9"]));
        let p = vec![
            ("InstanceId.2".to_string(), "i-b".to_string()),
            ("InstanceId.10".to_string(), "i-c".to_string()),
            ("InstanceId.1".to_string(), "i-a".to_string()),
            ("ForceStop".to_string(), "true".to_string()),
        ];
        assert_eq!(instance_ids(&p, &json!({"RequestId": "R"})), s(&["i-a", "i-b", "i-c"]));
        assert_eq!(instance_ids(&[("InstanceId".into(), "i-x".into())], &json!({})), s(&["i-x"]));
    }

    #[test]
    fn instance_progress_counts_and_gives_up_on_released() {
        let ids = s(&["i-1", "i-2", "i-3"]);
        let mut st: BTreeMap<String, String> =
            [("i-1", "Running"), ("i-2", "Starting"), ("i-3", "Pending")].map(|(a, b)| (a.into(), b.into())).into();
        let p = instance_progress(&ids, &st, &["Running"]);
        assert_eq!((p.done, p.total, p.pending.as_str(), p.hopeless), (1, 3, "1 Pending, 1 Starting", None));
        st.remove("i-3");
        let p = instance_progress(&ids, &st, &["Running", "Stopped"]);
        assert_eq!(p.hopeless.as_deref(), Some("i-3 was released"));
        let p = instance_progress(&ids[2..], &st, &["Deleted"]);
        assert_eq!((p.done, p.total, p.hopeless), (1, 1, None));
    }

    #[test]
    fn invocation_progress_and_outcomes() {
        let inv = |overall: &str, runs: &[&str]| {
            json!({"InvocationStatus": overall, "InvokeInstances": {"InvokeInstance":
                runs.iter().map(|r| json!({"InvocationStatus": r})).collect::<Vec<_>>()}})
        };
        let p = invocation_progress(&inv("Running", &["Success", "Running"]), &["Finished"]);
        assert_eq!((p.done, p.total, p.pending.as_str(), p.hopeless), (1, 2, "1 Running", None));
        let p = invocation_progress(&inv("PartialFailed", &["Success", "Failed"]), &["Finished"]);
        assert_eq!((p.done, p.hopeless), (2, None));
        let p = invocation_progress(&inv("Failed", &["Failed"]), &["Success"]);
        assert_eq!(p.hopeless.as_deref(), Some("it ended Failed"));
        let p = invocation_progress(&inv("Success", &["Success"]), &["Success"]);
        assert_eq!((p.done, p.total, p.hopeless), (1, 1, None));
    }

    #[test]
    fn polls_until_done_and_reports_changes() {
        let mut n = 0;
        let mut poll = || {
            n += 1;
            Ok(Progress { done: n.min(2), total: 2, pending: String::new(), hopeless: None })
        };
        let mut log = Vec::new();
        until("2 instances to be Running", Duration::from_secs(10), &mut poll, &mut log).expect("done");
        let log = String::from_utf8(log).expect("utf8");
        assert_eq!(log, "waiting for 2 instances to be Running: 1/2\nwaiting for 2 instances to be Running: 2/2\n");
    }

    #[test]
    fn times_out_with_where_it_stood() {
        let mut poll = || Ok(Progress { done: 0, total: 1, pending: "1 Starting".into(), hopeless: None });
        let e = until("i-1 to be Running", Duration::ZERO, &mut poll, &mut Vec::new()).expect_err("timeout");
        assert_eq!(e.to_string(), "Timed out after 0s waiting for i-1 to be Running: 0/1 (1 Starting)");
        assert_eq!(
            describe_instances(&s(&["a", "b"]), &["Running", "Stopped"]),
            "2 instances to be Running or Stopped"
        );
        assert_eq!(describe_invocation("t-1", &["Success"]), "invocation t-1 to end Success");
    }
}
