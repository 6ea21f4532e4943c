//! Cloud Assistant: commands and their invocations.

use base64::Engine;
use feiyun_control::InvocationFilter;
use feiyun_domain::assistant::{Command, CommandType, Invocation, InvocationRun, RunStatus};
use feiyun_domain::ops::RunScript;
use serde_json::{json, Value};

use super::{content_encoding, opt_seconds, page, render_bytes, seconds, Call, B64};
use crate::error::ApiError;
use crate::params::Params;

pub(super) fn command_type(p: &Params) -> Result<Option<CommandType>, ApiError> {
    match p.get("Type") {
        None => Ok(None),
        Some(t) => CommandType::parse(t)
            .map(Some)
            .ok_or_else(|| ApiError::new(403, "InvalidCmdType.NotFound", "The specified command type does not exist.")),
    }
}

pub(super) fn command_content(p: &Params, default_plain: bool) -> Result<Vec<u8>, ApiError> {
    let raw = p.required("CommandContent")?;
    let plain = content_encoding(p, default_plain)?;
    let bytes = if plain {
        raw.as_bytes().to_vec()
    } else {
        B64.decode(raw.trim()).map_err(|_| {
            ApiError::new(400, "CmdContent.DecodeError", "The CommandContent can not be base64 decoded.")
        })?
    };
    if B64.encode(&bytes).len() > 24 * 1024 {
        return Err(ApiError::new(403, "CmdContent.ExceedLimit", "The command content exceeds the limit."));
    }
    Ok(bytes)
}

pub(super) fn timeout(p: &Params) -> Result<Option<u64>, ApiError> {
    Ok(p.int("Timeout", 10, 86400)?.map(|t| t as u64))
}

pub(super) fn check_repeat_mode(p: &Params) -> Result<(), ApiError> {
    match p.get("RepeatMode") {
        None | Some("Once") => {}
        Some("Period" | "NextRebootOnly" | "EveryReboot" | "DryRun") => {
            return Err(ApiError::new(
                400,
                "InvalidRepeatMode.NotSupported",
                "Only RepeatMode=Once is supported in this region.",
            ))
        }
        Some(_) => {
            return Err(ApiError::new(404, "InvalidRepeatMode.NotFound", "The specified repeat mode does not exist."))
        }
    }
    if p.get("Frequency").is_some() {
        return Err(ApiError::new(
            400,
            "InvalidRepeatMode.NotSupported",
            "Only RepeatMode=Once is supported in this region.",
        ));
    }
    Ok(())
}

pub(super) fn create_command(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let name = p.string("Name", 128)?.ok_or_else(|| ApiError::missing("Name"))?;
    let kind = command_type(p)?.ok_or_else(|| ApiError::missing("Type"))?;
    let content = command_content(p, false)?;
    let command = Command {
        id: String::new(),
        account_id: String::new(),
        name,
        description: p.string("Description", 512)?.unwrap_or_default(),
        kind,
        content,
        working_dir: p.string("WorkingDir", 200)?.unwrap_or_default(),
        timeout_s: timeout(p)?.unwrap_or(60),
        created_at: c.cp.now(),
        ephemeral: false,
    };
    let id = c.cp.create_command(c.account_id, command).map_err(ApiError::from_domain_assistant)?;
    Ok(json!({"CommandId": id}))
}

pub(super) fn describe_commands(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let plain = content_encoding(p, false)?;
    let (offset, size, number) = page(p, 10, 50)?;
    let kind = command_type(p)?;
    let all = c.cp.describe_commands(c.account_id, p.get("CommandId"), p.get("Name"), kind);
    let items: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(size)
        .map(|cmd| {
            json!({
                "CommandId": cmd.id,
                "Name": cmd.name,
                "Type": cmd.kind.as_str(),
                "Description": cmd.description,
                "CommandContent": render_bytes(&cmd.content, plain),
                "WorkingDir": cmd.working_dir,
                "Timeout": cmd.timeout_s,
                "EnableParameter": false,
                "CreationTime": seconds(&cmd.created_at),
                "InvokeTimes": c.cp.invoke_times(&cmd.id),
                "Category": "",
                "Provider": "",
                "Version": 1,
                "Latest": true,
                "Launcher": "",
                "ResourceGroupId": "",
                "ParameterNames": {"ParameterName": []},
                "ParameterDefinitions": {"ParameterDefinition": []},
                "Tags": {"Tag": []},
            })
        })
        .collect();
    Ok(
        json!({"Commands": {"Command": items}, "TotalCount": all.len(), "PageNumber": number, "PageSize": size, "NextToken": ""}),
    )
}

pub(super) fn delete_command(c: &Call<'_>) -> Result<Value, ApiError> {
    let id = c.params.required("CommandId")?;
    c.cp.delete_command(c.account_id, id).map_err(ApiError::from_domain_assistant)?;
    Ok(json!({}))
}

pub(super) fn targets(p: &Params) -> Result<Vec<String>, ApiError> {
    let ids = p.list("InstanceId", 100)?;
    if ids.is_empty() {
        return Err(ApiError::new(400, "MissingParam.InstanceId", "The parameter InstanceId is missing."));
    }
    Ok(ids)
}

pub(super) fn invoke_command(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let command_id = p.required("CommandId")?;
    check_repeat_mode(p)?;
    let ids = targets(p)?;
    let wd = p.string("WorkingDir", 200)?;
    let id =
        c.cp.invoke(c.account_id, command_id, &ids, timeout(p)?, wd.as_deref())
            .map_err(ApiError::from_domain_assistant)?;
    Ok(json!({"InvokeId": id}))
}

pub(super) fn run_command(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let kind = command_type(p)?.ok_or_else(|| ApiError::missing("Type"))?;
    let content = command_content(p, true)?;
    check_repeat_mode(p)?;
    let ids = targets(p)?;
    let run = RunScript {
        instance_ids: ids,
        content,
        name: p.string("Name", 128)?.unwrap_or_else(|| "RunCommand".to_string()),
        description: p.string("Description", 512)?.unwrap_or_default(),
        working_dir: p.string("WorkingDir", 200)?.unwrap_or_default(),
        timeout_s: timeout(p)?.unwrap_or(60),
    };
    let keep = p.bool("KeepCommand")?.unwrap_or(false);
    let (command_id, invoke_id) =
        c.cp.run_command(c.account_id, kind, keep, run).map_err(ApiError::from_domain_assistant)?;
    Ok(json!({"CommandId": command_id, "InvokeId": invoke_id}))
}

/// The legacy per-record status next to the current one.
pub(super) fn record_status(r: &InvocationRun) -> &'static str {
    match r.status {
        RunStatus::Pending | RunStatus::Running => "Running",
        RunStatus::Success | RunStatus::Failed => "Finished",
        RunStatus::Timeout | RunStatus::Aborted | RunStatus::Error => "Failed",
    }
}

pub(super) fn legacy_invoke_status(v: &Invocation) -> &'static str {
    if v.runs.iter().any(|r| !r.status.is_final()) {
        return "Running";
    }
    if v.runs.iter().all(|r| matches!(r.status, RunStatus::Timeout | RunStatus::Aborted | RunStatus::Error)) {
        "Failed"
    } else if v.runs.iter().any(|r| matches!(r.status, RunStatus::Timeout | RunStatus::Aborted | RunStatus::Error)) {
        "PartialFailed"
    } else {
        "Finished"
    }
}

/// The filter both invocation queries share (DescribeInvocations also filters by CommandName).
pub(super) fn invocation_filter(p: &Params) -> InvocationFilter {
    InvocationFilter {
        invoke_id: p.get("InvokeId").map(str::to_string),
        command_id: p.get("CommandId").map(str::to_string),
        command_name: None,
        instance_id: p.get("InstanceId").map(str::to_string),
    }
}

pub(super) fn describe_invocations(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let plain = content_encoding(p, false)?;
    let include_output = p.bool("IncludeOutput")?.unwrap_or(false);
    let (offset, size, number) = page(p, 10, 50)?;
    // ECS documents no code for an unknown status; this is the generic InvalidParameter.
    let status_filter = p.choice(
        "InvokeStatus",
        &["Running", "Finished", "Success", "Failed", "Stopped", "Stopping", "PartialFailed", "Pending", "Scheduled"],
    )?;
    let all: Vec<Invocation> =
        c.cp.describe_invocations(
            c.account_id,
            &InvocationFilter { command_name: p.get("CommandName").map(str::to_string), ..invocation_filter(p) },
        )
        .into_iter()
        .filter(|v| status_filter.map(|s| s == v.status().as_str() || s == legacy_invoke_status(v)).unwrap_or(true))
        .collect();
    let items: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(size)
        .map(|v| {
            let runs: Vec<Value> = v
                .runs
                .iter()
                .map(|r| {
                    json!({
                        "InstanceId": r.instance_id,
                        "InvocationStatus": r.status.as_str(),
                        "InstanceInvokeStatus": record_status(r),
                        "ExitCode": r.exit_code.unwrap_or(0),
                        "Output": if include_output { render_bytes(&r.output, plain) } else { String::new() },
                        "Dropped": r.dropped,
                        "ErrorCode": r.error_code,
                        "ErrorInfo": r.error_info,
                        "Repeats": u8::from(r.start_time.is_some()),
                        "Timed": false,
                        "CreationTime": seconds(&v.created_at),
                        "StartTime": opt_seconds(&r.start_time),
                        "FinishTime": opt_seconds(&r.finish_time),
                        "UpdateTime": opt_seconds(&r.finish_time.or(r.start_time).or(Some(v.created_at))),
                        "StopTime": "",
                    })
                })
                .collect();
            json!({
                "InvokeId": v.id,
                "CommandId": v.command_id,
                "CommandName": v.command_name,
                "CommandType": "RunShellScript",
                "CommandDescription": "",
                "CommandContent": render_bytes(&v.command_content, plain),
                "InvocationStatus": v.status().as_str(),
                "InvokeStatus": legacy_invoke_status(v),
                "RepeatMode": "Once",
                "Frequency": "",
                "Timed": false,
                "CreationTime": seconds(&v.created_at),
                "Parameters": "{}",
                "Timeout": v.timeout_s,
                "Username": "root",
                "WorkingDir": "",
                "Tags": {"Tag": []},
                "InvokeInstances": {"InvokeInstance": runs},
            })
        })
        .collect();
    Ok(
        json!({"Invocations": {"Invocation": items}, "TotalCount": all.len(), "PageNumber": number, "PageSize": size, "NextToken": ""}),
    )
}

pub(super) fn describe_invocation_results(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let plain = content_encoding(p, false)?;
    let (offset, size, number) = page(p, 10, 50)?;
    // As for InvokeStatus: the generic InvalidParameter.
    let record_filter = p.choice(
        "InvokeRecordStatus",
        &["Running", "Finished", "Success", "Failed", "PartialFailed", "Stopped", "Stopping"],
    )?;
    let instance = p.get("InstanceId");
    let mut rows: Vec<(&Invocation, &InvocationRun)> = Vec::new();
    let invs = c.cp.describe_invocations(c.account_id, &invocation_filter(p));
    for v in &invs {
        for r in &v.runs {
            if instance.map(|i| i == r.instance_id).unwrap_or(true)
                && record_filter.map(|s| s == record_status(r)).unwrap_or(true)
            {
                rows.push((v, r));
            }
        }
    }
    let items: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(size)
        .map(|(v, r)| {
            json!({
                "CommandId": v.command_id,
                "InvokeId": v.id,
                "InstanceId": r.instance_id,
                "InvocationStatus": r.status.as_str(),
                "InvokeRecordStatus": record_status(r),
                "ExitCode": r.exit_code.unwrap_or(0),
                "Output": render_bytes(&r.output, plain),
                "Dropped": r.dropped,
                "ErrorCode": r.error_code,
                "ErrorInfo": r.error_info,
                "Repeats": u8::from(r.start_time.is_some()),
                "StartTime": opt_seconds(&r.start_time),
                "FinishedTime": opt_seconds(&r.finish_time),
                "StopTime": "",
                "Username": "root",
                "ContainerId": "",
                "ContainerName": "",
                "Launcher": "",
                "Tags": {"Tag": []},
            })
        })
        .collect();
    Ok(
        json!({"Invocation": {"InvocationResults": {"InvocationResult": items}, "TotalCount": rows.len(), "PageNumber": number, "PageSize": size, "NextToken": ""}}),
    )
}
