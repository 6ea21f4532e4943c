//! Keeps the API description honest: it is checked against the handlers' own source.
//!
//! Every handler reads its parameters through `Params` as `p.METHOD("Name", ...)` or
//! `c.params.METHOD("Name", ...)`, with the name written out (repeated parameters through
//! `list`, `tags` or `nth("Pattern.N.Field", n)`). The test finds each action's handler in the
//! dispatch table, follows the functions it calls, collects the names they read, and requires
//! that (1) every name read is declared for the action, (2) every declared parameter is read,
//! (3) where the call states a range, a length, a list of values or a count, the declaration
//! says the same, and (4) every declared action has a handler and every handler a declaration.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Product, Type};

const ECS_SOURCES: &[(&str, &str)] = &[
    ("ecs/mod.rs", include_str!("../ecs/mod.rs")),
    ("ecs/assistant.rs", include_str!("../ecs/assistant.rs")),
    ("ecs/console.rs", include_str!("../ecs/console.rs")),
    ("ecs/deployment_sets.rs", include_str!("../ecs/deployment_sets.rs")),
    ("ecs/disks.rs", include_str!("../ecs/disks.rs")),
    ("ecs/events.rs", include_str!("../ecs/events.rs")),
    ("ecs/images.rs", include_str!("../ecs/images.rs")),
    ("ecs/instance_types.rs", include_str!("../ecs/instance_types.rs")),
    ("ecs/instances.rs", include_str!("../ecs/instances.rs")),
    ("ecs/key_pairs.rs", include_str!("../ecs/key_pairs.rs")),
    ("ecs/names.rs", include_str!("../ecs/names.rs")),
    ("ecs/power.rs", include_str!("../ecs/power.rs")),
    ("ecs/prices.rs", include_str!("../ecs/prices.rs")),
    ("ecs/regions.rs", include_str!("../ecs/regions.rs")),
    ("ecs/security_groups.rs", include_str!("../ecs/security_groups.rs")),
    ("ecs/sg_rules.rs", include_str!("../ecs/sg_rules.rs")),
    ("ecs/snapshots.rs", include_str!("../ecs/snapshots.rs")),
    ("ecs/subscription.rs", include_str!("../ecs/subscription.rs")),
    ("ecs/wire.rs", include_str!("../ecs/wire.rs")),
    ("idempotency.rs", include_str!("../idempotency.rs")),
];
const VPC_SOURCES: &[(&str, &str)] = &[
    ("vpc/mod.rs", include_str!("../vpc/mod.rs")),
    ("vpc/vpcs.rs", include_str!("../vpc/vpcs.rs")),
    ("vpc/vswitches.rs", include_str!("../vpc/vswitches.rs")),
    ("vpc/eips.rs", include_str!("../vpc/eips.rs")),
    ("idempotency.rs", include_str!("../idempotency.rs")),
];
const BSS_SOURCES: &[(&str, &str)] = &[("bss.rs", include_str!("../bss.rs"))];
const FEIYUN_SOURCES: &[(&str, &str)] = &[("feiyun.rs", include_str!("../feiyun.rs"))];

/// The `Params` methods that read a parameter by name.
const READS: &[&str] = &[
    "get",
    "required",
    "string",
    "bool",
    "int",
    "int_or",
    "choice",
    "choice_or",
    "list",
    "distinct_list",
    "tags",
    "resource_tags",
    "json_list",
    "decimal",
    "timestamp",
    "nth",
];

/// One read of a parameter: the method, the declared name it reads, and the other arguments.
#[derive(Debug, Clone)]
struct Read {
    method: String,
    name: String,
    args: Vec<String>,
}

/// Top-level functions of the sources (test modules left out): name → body.
fn functions(sources: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (_, text) in sources {
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut current: Option<(String, String)> = None;
        for line in text.lines() {
            if let Some((name, body)) = current.as_mut() {
                body.push_str(line);
                body.push('\n');
                if line == "}" {
                    out.insert(std::mem::take(name), std::mem::take(body));
                    current = None;
                }
                continue;
            }
            let decl = ["fn ", "pub fn ", "pub(super) fn ", "pub(crate) fn "].iter().find_map(|p| line.strip_prefix(p));
            if let Some(rest) = decl {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                current = Some((name, format!("{line}\n")));
            }
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The arguments of a call whose `(` has been consumed, split at top-level commas.
fn call_args(rest: &str) -> Vec<String> {
    let mut depth = 0i32;
    let mut args = Vec::new();
    let mut arg = String::new();
    let mut in_str = false;
    for c in rest.chars() {
        if in_str {
            in_str = c != '"';
            arg.push(c);
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => break,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                args.push(std::mem::take(&mut arg));
                continue;
            }
            _ => {}
        }
        arg.push(c);
    }
    args.push(arg);
    args.into_iter().map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect()
}

/// Every parameter read in a function body.
fn reads(body: &str) -> Vec<Read> {
    let mut out = Vec::new();
    for receiver in ["p.", "c.params."] {
        let mut from = 0;
        while let Some(at) = body[from..].find(receiver) {
            let start = from + at;
            from = start + receiver.len();
            if body[..start].chars().next_back().is_some_and(|c| is_ident(c) || c == '.') {
                continue;
            }
            let rest = &body[from..];
            let method: String = rest.chars().take_while(|c| is_ident(*c)).collect();
            if !READS.contains(&method.as_str()) || !rest[method.len()..].starts_with('(') {
                continue;
            }
            let args = call_args(&rest[method.len() + 1..]);
            let Some(literal) = args.first().and_then(|a| a.strip_prefix('"')).and_then(|a| a.strip_suffix('"')) else {
                panic!("a parameter read without a literal name: {receiver}{method}({})", args.join(", "));
            };
            let names = match method.as_str() {
                "list" | "distinct_list" => vec![format!("{literal}.N")],
                "tags" | "resource_tags" => vec![format!("{literal}.N.Key"), format!("{literal}.N.Value")],
                _ => vec![literal.to_string()],
            };
            for name in names {
                out.push(Read { method: method.clone(), name, args: args[1..].to_vec() });
            }
        }
    }
    out
}

/// Functions a body calls, among the known ones (free functions and `module::function`).
fn callees<'a>(body: &str, known: impl Iterator<Item = &'a String>) -> Vec<String> {
    known
        .filter(|name| {
            body.match_indices(&format!("{name}(")).any(|(i, _)| {
                let before = body[..i].chars().next_back();
                // Not part of a longer name, not a method (`c.cp.describe_instances(`), not the
                // declaration itself; `..function(` in a struct update is a call.
                let method = before == Some('.') && !body[..i].ends_with("..");
                !before.is_some_and(is_ident) && !method && !body[..i].ends_with("fn ")
            })
        })
        .cloned()
        .collect()
}

/// The dispatch arms (`"Action" => module::handler(c)`) of the functions named `handle*`.
fn dispatch(funcs: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, body) in funcs {
        if !name.starts_with("handle") {
            continue;
        }
        for line in body.lines() {
            let line = line.trim();
            let Some(rest) = line.strip_prefix('"') else { continue };
            let Some((action, target)) = rest.split_once("\" => ") else { continue };
            let path = target.split('(').next().unwrap_or("");
            let handler = path.rsplit("::").next().unwrap_or(path).to_string();
            out.insert(action.to_string(), handler);
        }
    }
    out
}

fn int_literal(s: &str) -> Option<i64> {
    match s {
        "i64::MAX" => Some(i64::MAX),
        "i32::MAX as i64" => Some(i32::MAX as i64),
        _ => s.replace('_', "").parse().ok(),
    }
}

fn string_list(s: &str) -> Option<Vec<String>> {
    let inner = s.strip_prefix("&[")?.strip_suffix(']')?;
    Some(inner.split(',').map(|v| v.trim().trim_matches('"').to_string()).filter(|v| !v.is_empty()).collect())
}

/// What a read says about its parameter that the declaration must say too.
fn check_type(action: &Action, read: &Read, problems: &mut Vec<String>) {
    let Some(param) = action.params.iter().find(|p| p.name == read.name) else { return };
    let what = format!("{}: {}", action.name, read.name);
    let arg = |i: usize| read.args.get(i).map(String::as_str).unwrap_or("");
    match read.method.as_str() {
        "int" | "int_or" => {
            if let (Some(min), Some(max)) = (int_literal(arg(0)), int_literal(arg(1))) {
                if param.ty != (Type::Integer { min, max }) {
                    problems.push(format!("{what} is read as an integer from {min} to {max}, declared {}", param.ty));
                }
            } else if !matches!(param.ty, Type::Integer { .. }) {
                problems.push(format!("{what} is read as an integer, declared {}", param.ty));
            }
        }
        "string" => {
            if let Some(max) = int_literal(arg(0)) {
                if param.ty != (Type::String { max_len: Some(max as u32) }) {
                    problems.push(format!("{what} is read as at most {max} characters, declared {}", param.ty));
                }
            }
        }
        "bool" if param.ty != Type::Boolean => problems.push(format!("{what} is read as a boolean")),
        "decimal" if param.ty != Type::Decimal => problems.push(format!("{what} is read as a decimal")),
        "timestamp" if param.ty != Type::Time => problems.push(format!("{what} is read as a time")),
        "choice" | "choice_or" => {
            if let Some(values) = string_list(arg(0)) {
                let declared = match param.ty {
                    Type::Enum(v) => v.iter().map(|s| s.to_string()).collect(),
                    _ => Vec::new(),
                };
                if declared != values {
                    problems.push(format!("{what} is read as one of {values:?}, declared {}", param.ty));
                }
            }
        }
        "json_list" => {
            if let Some(max) = int_literal(arg(0)) {
                if param.ty != (Type::JsonList { max_items: max as u32 }) {
                    problems.push(format!("{what} is read as a JSON list of at most {max}, declared {}", param.ty));
                }
            }
        }
        "list" | "distinct_list" | "tags" | "resource_tags" => {
            if let Some(max) = int_literal(arg(0)) {
                if param.max_n as i64 != max {
                    problems.push(format!("{what} is read with at most {max} items, declared {}", param.max_n));
                }
            }
        }
        _ => {}
    }
}

/// Everything wrong between a product's description and its handlers.
fn drift(product: &'static Product, sources: &[(&str, &str)]) -> Vec<String> {
    let funcs = functions(sources);
    let arms = dispatch(&funcs);
    let mut problems = Vec::new();
    let declared: BTreeSet<&str> = product.actions.iter().map(|a| a.name).collect();
    for action in arms.keys() {
        if !declared.contains(action.as_str()) {
            problems.push(format!("{action} has a handler but no declaration"));
        }
    }
    for action in product.actions {
        let Some(root) = arms.get(action.name) else {
            problems.push(format!("{} is declared but has no handler", action.name));
            continue;
        };
        // The handler and everything it calls.
        let mut seen = BTreeSet::new();
        let mut todo = vec![root.clone()];
        let mut read = Vec::new();
        while let Some(f) = todo.pop() {
            if !seen.insert(f.clone()) {
                continue;
            }
            let Some(body) = funcs.get(&f) else {
                problems.push(format!("{}: handler {f} not found", action.name));
                continue;
            };
            read.extend(reads(body));
            todo.extend(callees(body, funcs.keys().filter(|k| !k.starts_with("handle"))));
        }
        for r in &read {
            if action.param(&r.name).is_none() {
                problems.push(format!("{} reads {} but does not declare it", action.name, r.name));
            }
            check_type(action, r, &mut problems);
        }
        for p in action.params {
            if !read.iter().any(|r| r.name == p.name) {
                problems.push(format!("{} declares {} but never reads it", action.name, p.name));
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

#[test]
fn the_description_matches_the_handlers() {
    let mut problems = drift(&super::ecs::PRODUCT, ECS_SOURCES);
    problems.extend(drift(&super::vpc::PRODUCT, VPC_SOURCES));
    problems.extend(drift(&super::bss::PRODUCT, BSS_SOURCES));
    problems.extend(drift(&super::feiyun::PRODUCT, FEIYUN_SOURCES));
    assert!(problems.is_empty(), "the API description and the handlers disagree:\n{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_reads_calls_and_arms() {
    let src = "fn handle(c: &Call<'_>) -> R {\n    match c.action {\n        \"Go\" => m::go(c),\n    }\n}\n\
               fn go(c: &Call<'_>) -> R {\n    let p = c.params;\n    helper(p)?;\n    p.int(\"Amount\", 1, 100)?;\n    p.tags(\"Tag\", 20)?;\n}\n\
               fn helper(p: &Params) -> R {\n    p.choice(\n        \"Mode\",\n        &[\"A\", \"B\"],\n    )?;\n    c.params.list(\"InstanceId\", 100)\n}\n";
    let funcs = functions(&[("x.rs", src)]);
    assert_eq!(dispatch(&funcs).get("Go").map(String::as_str), Some("go"));
    let names: Vec<String> = reads(&funcs["go"]).into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["Amount", "Tag.N.Key", "Tag.N.Value"]);
    let helper = reads(&funcs["helper"]);
    assert_eq!(helper[0].args, ["&[\"A\", \"B\"]"]);
    assert_eq!(helper.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["Mode", "InstanceId.N"]);
    assert_eq!(callees(&funcs["go"], funcs.keys()), ["helper"]);
}
