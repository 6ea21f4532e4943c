//! Feiyun's own API (2026-11-01): what Alibaba Cloud's products have no action for.

use super::{opt, req, Action, Product, ProductKind, Region, Type, BOOL, STR};

pub(super) static PRODUCT: Product = Product {
    kind: ProductKind::Feiyun,
    code: "Feiyun",
    version: crate::feiyun::VERSION,
    summary: "Feiyun's own actions.",
    actions: &[
        Action::blocking_query(
            "CalculateTco",
            "Total cost of owning a fleet against renting it here.",
            Region::Absent,
            &[
                req("Plan", Type::Text, "The plan, TOML (see docs/tco.md)."),
                opt("Trace", Type::Text, "A workload trace, CSV, instead of the plan's workloads."),
            ],
        ),
        // The region's hosts; the administrator's only.
        Action::blocking_query(
            "ListHosts",
            "The region's hosts: state, capacity, what runs on each (administrator).",
            Region::Absent,
            &[],
        ),
        Action::change(
            "CreateHostJoinToken",
            "A token that lets a host agent join the region (administrator).",
            Region::Absent,
            &[opt("ZoneId", STR, "Hosts that join with it are in this zone.")],
        ),
        Action::change(
            "RevokeHostJoinToken",
            "Revoke a join token; hosts that joined with it stay (administrator).",
            Region::Absent,
            &[req("Token", STR, "The token, or its id.")],
        ),
        Action::change(
            "DrainHost",
            "No new instances on a host, or again with Drain=false (administrator).",
            Region::Absent,
            &[req("HostId", STR, "The host, by id or name."), opt("Drain", BOOL, "false to undo (default true).")],
        ),
        Action::change(
            "EvacuateHost",
            "Re-create an unreachable host's instances on other hosts, fencing it (administrator).",
            Region::Absent,
            &[
                req("HostId", STR, "The host, by id or name."),
                opt("Force", BOOL, "Go on although many hosts are unreachable at once."),
            ],
        ),
    ],
};
