//! `--output table`: one row per element of the answer's list, in chosen columns.
//!
//! The rows are the list the action returns (`Instances.Instance` for DescribeInstances), or the
//! answer itself when it is a list (after `--query`), or the answer as one row. Columns are
//! paths into each row (`--columns InstanceId,VpcAttributes.PrivateIpAddress.IpAddress[0]`); by
//! default the action's usual ones, otherwise the row's plain fields.

use serde_json::Value;

use super::query::Query;

/// Where an action's list is and the columns a table shows by default.
struct Layout {
    action: &'static str,
    rows: &'static str,
    columns: &'static [&'static str],
}

const LAYOUTS: &[Layout] = &[
    Layout { action: "DescribeRegions", rows: "Regions.Region", columns: &["RegionId", "LocalName", "RegionEndpoint"] },
    Layout { action: "DescribeZones", rows: "Zones.Zone", columns: &["ZoneId", "LocalName"] },
    Layout {
        action: "DescribeInstanceTypes",
        rows: "InstanceTypes.InstanceType",
        columns: &["InstanceTypeId", "InstanceTypeFamily", "CpuCoreCount", "MemorySize", "GPUAmount", "GPUSpec"],
    },
    Layout {
        action: "DescribeInstanceTypeFamilies",
        rows: "InstanceTypeFamilies.InstanceTypeFamily",
        columns: &["InstanceTypeFamilyId", "Generation"],
    },
    Layout {
        action: "DescribeImages",
        rows: "Images.Image",
        columns: &["ImageId", "ImageName", "OSType", "Architecture", "Size", "Status"],
    },
    Layout {
        action: "DescribeInstances",
        rows: "Instances.Instance",
        columns: &["InstanceId", "InstanceName", "Status", "InstanceType", "ZoneId", "InstanceChargeType"],
    },
    Layout {
        action: "DescribeInstanceStatus",
        rows: "InstanceStatuses.InstanceStatus",
        columns: &["InstanceId", "Status"],
    },
    Layout {
        action: "DescribeCommands",
        rows: "Commands.Command",
        columns: &["CommandId", "Name", "Type", "CreationTime"],
    },
    Layout {
        action: "DescribeInvocations",
        rows: "Invocations.Invocation",
        columns: &["InvokeId", "CommandName", "InvocationStatus", "CreationTime"],
    },
    Layout {
        action: "DescribeInvocationResults",
        rows: "Invocation.InvocationResults.InvocationResult",
        columns: &["InstanceId", "InvokeId", "InvocationStatus", "ExitCode", "Output"],
    },
    Layout {
        action: "DescribeDeploymentSets",
        rows: "DeploymentSets.DeploymentSet",
        columns: &["DeploymentSetId", "DeploymentSetName", "Strategy", "InstanceAmount"],
    },
    Layout {
        action: "DescribeSpotPriceHistory",
        rows: "SpotPrices.SpotPriceType",
        columns: &["Timestamp", "ZoneId", "InstanceType", "SpotPrice", "OriginPrice"],
    },
    Layout { action: "QueryAccountBalance", rows: "Data", columns: &["AvailableAmount", "Currency"] },
    Layout {
        action: "QueryBill",
        rows: "Data.Items.Item",
        columns: &["UsageEndTime", "Item", "SubscriptionType", "PretaxAmount", "OutstandingAmount", "ProductDetail"],
    },
    Layout {
        action: "QueryBillOverview",
        rows: "Data.Items.Item",
        columns: &["SubscriptionType", "PretaxAmount", "PaymentAmount", "OutstandingAmount"],
    },
    Layout {
        action: "QueryInstanceBill",
        rows: "Data.Items.Item",
        columns: &["InstanceID", "InstanceSpec", "ItemName", "BillingType", "PretaxAmount"],
    },
    Layout {
        action: "DescribeInstanceBill",
        rows: "Data.Items",
        columns: &["InstanceID", "InstanceSpec", "ItemName", "BillingType", "PretaxAmount"],
    },
];

/// Most columns a table shows when none are chosen and the action has no usual ones.
const MAX_AUTO_COLUMNS: usize = 8;

/// The table of `answer`. `action` picks the usual rows and columns when `whole` says the
/// answer is the action's own (not a `--query` result); `columns` are chosen ones.
pub fn render(answer: &Value, action: &str, whole: bool, columns: Option<&[Query]>) -> String {
    let layout = LAYOUTS.iter().find(|l| whole && l.action == action);
    let chosen = || -> Option<Vec<Column>> {
        columns.map(|c| c.iter().map(|q| Column { header: q.to_string(), path: Some(q.clone()) }).collect())
    };
    if let Some(l) = layout {
        let usual = || -> Vec<Column> {
            l.columns.iter().map(|c| Column { header: c.to_string(), path: Query::parse(c).ok() }).collect()
        };
        match Query::parse(l.rows).map(|q| q.eval(answer)) {
            Ok(Value::Array(a)) => return table(&a.iter().collect::<Vec<_>>(), &chosen().unwrap_or_else(usual)),
            Ok(obj @ Value::Object(_)) => return table(&[&obj], &chosen().unwrap_or_else(usual)),
            _ => {}
        }
    }
    let rows = find_rows(answer);
    table(&rows, &chosen().unwrap_or_else(|| auto_columns(&rows)))
}

/// A column: its header and the path of its value in a row (none: the row itself).
struct Column {
    header: String,
    path: Option<Query>,
}

fn table(rows: &[&Value], cols: &[Column]) -> String {
    let mut grid: Vec<Vec<String>> = Vec::new();
    if cols.iter().any(|c| !c.header.is_empty()) {
        grid.push(cols.iter().map(|c| c.header.clone()).collect());
    }
    for row in rows {
        grid.push(
            cols.iter()
                .map(|c| cell(&c.path.as_ref().map(|q| q.eval(row)).unwrap_or_else(|| (*row).clone())))
                .collect(),
        );
    }
    layout_grid(&grid)
}

/// The list in an answer: itself when it is one, else the shallowest list of objects in it
/// (breadth first, keys in order), else the shallowest list, else the answer as one row.
fn find_rows(answer: &Value) -> Vec<&Value> {
    if let Value::Array(a) = answer {
        return a.iter().collect();
    }
    let mut level: Vec<&Value> = vec![answer];
    let mut any_list: Option<&Vec<Value>> = None;
    while !level.is_empty() {
        let mut next = Vec::new();
        for v in level {
            if let Value::Object(m) = v {
                for child in m.values() {
                    match child {
                        Value::Array(a) if a.iter().any(Value::is_object) => return a.iter().collect(),
                        Value::Array(a) if any_list.is_none() && !a.is_empty() => any_list = Some(a),
                        Value::Object(_) => next.push(child),
                        _ => {}
                    }
                }
            }
        }
        level = next;
    }
    match any_list {
        Some(a) => a.iter().collect(),
        None => vec![answer],
    }
}

/// The plain (not nested) fields of the first row, or one column of the values themselves.
fn auto_columns(rows: &[&Value]) -> Vec<Column> {
    match rows.first() {
        Some(Value::Object(m)) => m
            .iter()
            .filter(|(_, v)| !v.is_object() && !v.is_array())
            .take(MAX_AUTO_COLUMNS)
            .map(|(k, _)| Column { header: k.clone(), path: Query::parse(&format!("\"{k}\"")).ok() })
            .collect(),
        Some(_) => vec![Column { header: String::new(), path: None }],
        None => Vec::new(),
    }
}

/// A value as a cell: text as is (newlines and tabs escaped), nothing for null, JSON otherwise.
fn cell(v: &Value) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.replace('\\', "\\\\").replace('\n', "\\n").replace('\t', "\\t").replace('\r', "\\r")
}

/// Columns left-aligned, two spaces apart, no trailing spaces.
fn layout_grid(grid: &[Vec<String>]) -> String {
    let n = grid.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..n).map(|i| grid.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in grid {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(c);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cols(c: &[&str]) -> Vec<Query> {
        c.iter().map(|c| Query::parse(c).expect(c)).collect()
    }

    fn instances() -> Value {
        json!({"Instances": {"Instance": [
            {"InstanceId": "i-1", "InstanceName": "web", "Status": "Running", "InstanceType": "ecs.g7.large",
             "ZoneId": "cn-local-a", "InstanceChargeType": "PostPaid", "Cpu": 2, "Tags": {"Tag": [{"Key": "k"}]}},
            {"InstanceId": "i-22", "InstanceName": "db", "Status": "Stopped", "InstanceType": "ecs.t5-lc2m1.nano",
             "ZoneId": "cn-local-a", "InstanceChargeType": "PrePaid", "Cpu": 1, "Tags": {"Tag": []}}
        ]}, "TotalCount": 2, "RequestId": "R"})
    }

    #[test]
    fn usual_columns_one_row_per_instance() {
        let t = render(&instances(), "DescribeInstances", true, None);
        assert_eq!(
            t,
            "InstanceId  InstanceName  Status   InstanceType       ZoneId      InstanceChargeType\n\
             i-1         web           Running  ecs.g7.large       cn-local-a  PostPaid\n\
             i-22        db            Stopped  ecs.t5-lc2m1.nano  cn-local-a  PrePaid\n"
        );
    }

    #[test]
    fn chosen_columns_are_paths() {
        let t = render(&instances(), "DescribeInstances", true, Some(&cols(&["InstanceId", "Cpu", "Tags.Tag[0].Key"])));
        assert_eq!(t, "InstanceId  Cpu  Tags.Tag[0].Key\ni-1         2    k\ni-22        1\n");
    }

    #[test]
    fn empty_list_prints_the_header() {
        let empty = json!({"Instances": {"Instance": []}, "TotalCount": 0});
        assert_eq!(render(&empty, "DescribeInstances", true, None).lines().count(), 1);
    }

    #[test]
    fn other_answers_find_their_list() {
        // No usual layout: the shallowest list of objects, its plain fields as columns in the
        // answer's order.
        let v = json!({"Zones": {"Zone": [{"ZoneId": "z", "Resources": {"R": [{"x": 1}]}, "LocalName": "a"}]}});
        assert_eq!(render(&v, "SomethingNew", true, None), "ZoneId  LocalName\nz       a\n");
        // A --query result that is a list of scalars: one column, no header.
        let ids = json!(["i-1", "i-2"]);
        assert_eq!(render(&ids, "DescribeInstances", false, None), "i-1\ni-2\n");
        // An object without lists is one row; text is escaped onto one line.
        let one = json!({"Output": "a\nb", "ExitCode": 0});
        assert_eq!(render(&one, "X", false, None), "Output  ExitCode\na\\nb    0\n");
        // The balance: the usual columns of its Data.
        let bal = json!({"Code": "Success", "Data": {"AvailableAmount": "500.00", "Currency": "CNY"}});
        assert_eq!(
            render(&bal, "QueryAccountBalance", true, None),
            "AvailableAmount  Currency\n500.00           CNY\n"
        );
    }
}
