//! Help texts, written from the API description: a product's actions with their summaries, an
//! action's parameters with type, whether required and what they are.

use std::fmt::Write;

use feiyun_openapi::api::{Action, Product, Region};

use super::args::OPTIONS;
use super::{command, view, wait, DEFAULT_REGION};

const WIDTH: usize = 100;

/// `feiyun <product> --help`.
pub fn product(p: &'static Product) -> String {
    let cmd = command(p);
    let mut s = String::new();
    let _ = writeln!(s, "feiyun {cmd}: {} {} - {}\n", p.code, p.version, p.summary);
    let _ = writeln!(s, "Usage: feiyun {cmd} <Action> [--Param value ...] [options]\n\nActions:");
    let w = p.actions.iter().map(|a| a.name.len()).max().unwrap_or(0);
    for a in p.actions {
        s += &wrap(&format!("  {:w$}  ", a.name), a.summary);
    }
    s += "\nOptions:\n";
    for (name, value, what) in OPTIONS {
        let head = match value {
            Some(v) => format!("  --{name} {v}"),
            None => format!("  --{name}"),
        };
        s += &format!("{head}\n");
        s += &wrap("        ", what);
    }
    let _ = write!(
        s,
        "\n`feiyun {cmd} <Action> --help` describes an action's parameters. Exit status: 0 done; 1 the API \
         answered an error (printed as JSON on stdout), --query found nothing, or a --wait-for can no longer \
         succeed; 2 the command line was refused (nothing was sent) or the region could not be reached; 3 \
         --wait-for timed out.\n"
    );
    wrap_all(&s)
}

/// `feiyun <product> <Action> --help`.
pub fn action(p: &'static Product, a: &'static Action) -> String {
    let cmd = command(p);
    let mut s = String::new();
    let _ = writeln!(s, "feiyun {cmd} {}: {}\n", a.name, a.summary);
    let _ = writeln!(s, "Usage: feiyun {cmd} {} [--Param value ...] [options]\n", a.name);
    if a.params().next().is_none() {
        let _ = writeln!(s, "Parameters: none.");
    } else {
        let _ = writeln!(s, "Parameters ({} {}):", p.code, p.version);
        let w = a.params().map(|p| p.name.len()).max().unwrap_or(0) + 2;
        for prm in a.params() {
            let mut ty = prm.ty.to_string();
            if prm.is_repeated() {
                ty += &format!("; N from 1 to {}", prm.max_n);
            }
            let req = if prm.required { "required" } else { "optional" };
            let _ = writeln!(s, "  {:w$}  {req}  {ty}", format!("--{}", prm.name));
            let mut what = prm.summary.to_string();
            if prm.name == "RegionId" && a.region == Region::Required {
                what += &format!(" Filled in when not given: FEIYUN_REGION_ID, else {DEFAULT_REGION}.");
            }
            s += &wrap("      ", &what);
        }
    }
    if let Some(kind) = wait::kind(a.name) {
        let what = match kind {
            wait::Kind::Instances => "its instances",
            wait::Kind::Invocation => "the command run",
        };
        let _ = writeln!(
            s,
            "\nWaiting: --wait-for STATUS[,STATUS] waits after the call until {what} reach one of {} (--timeout \
             SECONDS, default {}).",
            kind.statuses().join(", "),
            wait::DEFAULT_TIMEOUT_S
        );
    }
    if let Some(note) = view::note(a.name) {
        let _ = writeln!(s, "\n{note}");
    }
    let _ = writeln!(
        s,
        "\nOptions: --profile NAME, --credentials FILE, --data-dir DIR, --output json|table, --columns A,B, \
         --query PATH, --raw (`feiyun {cmd} --help` describes them)."
    );
    wrap_all(&s)
}

/// `head` then `text` wrapped to the width, continuation lines indented like the text starts.
fn wrap(head: &str, text: &str) -> String {
    let indent = head.chars().count();
    let mut out = String::from(head);
    let mut col = indent;
    for (i, word) in text.split_whitespace().enumerate() {
        let len = word.chars().count();
        if i > 0 && col + 1 + len > WIDTH {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', indent));
            col = indent;
        } else if i > 0 {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += len;
    }
    out.push('\n');
    out
}

/// Wrap the long plain lines of a text (not indented ones, which are laid out already).
fn wrap_all(text: &str) -> String {
    text.lines()
        .map(|l| if l.chars().count() > WIDTH && !l.starts_with(' ') { wrap("", l) } else { format!("{l}\n") })
        .collect()
}

#[cfg(test)]
mod tests {
    use feiyun_openapi::api;

    use super::*;

    #[test]
    fn product_help_lists_every_action_with_its_summary() {
        for p in api::PRODUCTS {
            let h = product(p);
            for a in p.actions {
                let line = h.lines().find(|l| l.trim_start().starts_with(&format!("{} ", a.name)));
                let line = line.unwrap_or_else(|| panic!("{} missing from\n{h}", a.name));
                assert!(h.contains(a.summary.split_whitespace().next().unwrap_or_default()), "{line}");
            }
            assert!(h.contains("--wait-for") && h.contains("--profile"), "{h}");
            assert!(h.lines().all(|l| l.chars().count() <= WIDTH), "{h}");
        }
    }

    #[test]
    fn action_help_describes_each_parameter() {
        let ecs = api::product_by_code("ecs").expect("ecs");
        let run = ecs.action("RunInstances").expect("RunInstances");
        let h = action(ecs, run);
        assert!(h.starts_with("feiyun ecs RunInstances: Create and start one or more instances."), "{h}");
        assert!(h.contains("--InstanceType") && h.contains("required  string"), "{h}");
        assert!(h.contains("--Tag.N.Key") && h.contains("N from 1 to 20"), "{h}");
        assert!(h.contains("one of PostPaid, PrePaid"), "{h}");
        assert!(h.contains("--wait-for"), "{h}");
        for prm in run.params() {
            assert!(h.contains(&format!("--{}", prm.name)), "{}", prm.name);
        }
        let bss = api::product_by_code("bssopenapi").expect("bss");
        let h = action(bss, bss.action("QueryAccountBalance").expect("action"));
        assert!(h.contains("Parameters: none.") && !h.contains("--wait-for STATUS"), "{h}");
        let h = action(ecs, ecs.action("GetInstanceConsoleOutput").expect("action"));
        assert!(h.contains("UTC"), "{h}");
    }

    #[test]
    fn wraps_with_a_hanging_indent() {
        let w = wrap("    ", &"word ".repeat(40));
        assert!(w.lines().count() > 1 && w.lines().all(|l| l.starts_with("    ") && l.len() <= WIDTH), "{w}");
    }
}
