//! Feiyun's own API (2026-11-01): what Alibaba Cloud's products have no action for.

use super::{opt, req, Action, Product, ProductKind, Region, Type};

pub(super) static PRODUCT: Product = Product {
    kind: ProductKind::Feiyun,
    code: "Feiyun",
    version: crate::feiyun::VERSION,
    summary: "Feiyun's own actions.",
    actions: &[Action::blocking_query(
        "CalculateTco",
        "Total cost of owning a fleet against renting it here.",
        Region::Absent,
        &[
            req("Plan", Type::Text, "The plan, TOML (see docs/tco.md)."),
            opt("Trace", Type::Text, "A workload trace, CSV, instead of the plan's workloads."),
        ],
    )],
};
