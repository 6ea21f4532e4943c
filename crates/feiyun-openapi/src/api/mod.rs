//! One description of the API this server speaks: per product (ECS, BssOpenApi, Feiyun) its
//! version and actions; per action its summary, whether it changes state, whether it takes
//! `RegionId`, and the parameters it reads, each with its wire name, type, whether it is required
//! and a one-line description. Plain static data: the server routes by it and the command line
//! can build help, suggestions and refusals from it.
//!
//! Repeated parameters are written with `N` where the index goes: `InstanceId.N`, `Tag.N.Key`,
//! `ModuleList.N.Config`. On the wire `N` is a positive decimal index (1, 2, ... without leading
//! zeros); [`Param::matches`] matches a concrete name such as `Tag.3.Key` to its pattern, and
//! [`Param::max_n`] bounds the index. For a repeated parameter "required" means at least one item.
//!
//! ```
//! use feiyun_openapi::api;
//!
//! let ecs = api::product_by_code("ecs").expect("ECS");
//! assert_eq!(ecs.version, "2014-05-26");
//! let run = ecs.action("RunInstances").expect("RunInstances");
//! assert!(run.mutating);
//! let tag = run.param("Tag.3.Key").expect("Tag.N.Key");
//! assert_eq!(tag.name, "Tag.N.Key");
//! assert!(run.param("Tag.21.Key").is_none(), "at most 20 tags");
//! assert!(run.param("RegionId").expect("RegionId").required);
//! assert_eq!(api::route("2014-05-26", "DescribeUnicorns").unwrap_err().code, "InvalidAction.NotFound");
//! ```

use std::fmt;

use crate::error::ApiError;

mod bss;
mod ecs;
mod ecs_instances;
mod ecs_security_groups;
mod ecs_storage;
mod feiyun;
mod vpc;

#[cfg(test)]
mod honesty;

/// Every product this server answers, in the order a help text lists them.
pub static PRODUCTS: [&Product; 4] = [&ecs::PRODUCT, &vpc::PRODUCT, &bss::PRODUCT, &feiyun::PRODUCT];

/// Which product a request is for; the wire layer dispatches and renders errors by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductKind {
    /// ECS 2014-05-26.
    Ecs,
    /// VPC 2016-04-28: VPCs, vSwitches, elastic IP addresses; answers and errors as ECS's.
    Vpc,
    /// BssOpenApi 2017-12-14: its answers and errors carry the BSS envelope.
    Bss,
    /// Feiyun's own API, for what Alibaba Cloud has no action for.
    Feiyun,
}

/// A product: the `Version` that selects it and the actions it has.
#[derive(Debug)]
pub struct Product {
    pub kind: ProductKind,
    /// The product code as Alibaba Cloud spells it (`Ecs`, `Vpc`, `BssOpenApi`, `Feiyun`).
    pub code: &'static str,
    /// The `Version` parameter (or `x-acs-version` header) of its calls.
    pub version: &'static str,
    pub summary: &'static str,
    pub actions: &'static [Action],
}

/// Whether an action takes `RegionId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// Missing → `MissingParameter`; another region → `InvalidRegionId.NotFound`.
    Required,
    /// Accepted (and checked) when given; the SDK model of the action has none or does not
    /// require it.
    Optional,
    /// Not a parameter of the action.
    Absent,
}

/// One action of a product.
#[derive(Debug)]
pub struct Action {
    pub name: &'static str,
    pub summary: &'static str,
    /// Changes state: audited, and run off the event loop.
    pub mutating: bool,
    /// Changes nothing but does blocking work (reads the ledger from the store, or computes at
    /// length), so it too runs off the event loop.
    pub blocking: bool,
    pub region: Region,
    /// The parameters the action reads, `RegionId` excepted (see [`Action::region`]).
    pub params: &'static [Param],
}

/// One parameter of an action.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// The wire name, with `N` for the index of a repeated parameter.
    pub name: &'static str,
    pub ty: Type,
    /// Must be given (for a repeated parameter: at least once).
    pub required: bool,
    /// The largest index `N` of a repeated parameter (0 when it is not repeated).
    pub max_n: u16,
    pub summary: &'static str,
}

/// The type of a parameter's value, as it is written on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Type {
    /// Text, optionally with a largest length in characters.
    String { max_len: Option<u32> },
    /// A decimal integer in `min..=max`.
    Integer { min: i64, max: i64 },
    /// A non-negative decimal number.
    Decimal,
    /// `true` or `false` (any case).
    Boolean,
    /// One of these values, exactly.
    Enum(&'static [&'static str]),
    /// A JSON array of strings in one value, e.g. `["i-1","i-2"]`.
    JsonList { max_items: u32 },
    /// Values separated by commas in one value, e.g. `i-1,i-2`.
    CommaList { max_items: u32 },
    /// Base64 of at most `max_bytes` bytes.
    Base64 { max_bytes: u32 },
    /// A UTC time, `yyyy-MM-ddTHH:mm:ssZ`.
    Time,
    /// A document of many lines (a TOML plan, a CSV trace, a script).
    Text,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::String { max_len: None } => write!(f, "string"),
            Type::String { max_len: Some(n) } => write!(f, "string of at most {n} characters"),
            Type::Integer { min, max: i64::MAX } => write!(f, "integer, at least {min}"),
            Type::Integer { min, max } => write!(f, "integer from {min} to {max}"),
            Type::Decimal => write!(f, "non-negative number"),
            Type::Boolean => write!(f, "boolean (true or false)"),
            Type::Enum(values) => write!(f, "one of {}", values.join(", ")),
            Type::JsonList { max_items } => write!(f, "JSON array of at most {max_items} strings"),
            Type::CommaList { max_items } => write!(f, "comma-separated list of at most {max_items} values"),
            Type::Base64 { max_bytes } => write!(f, "base64 of at most {max_bytes} bytes"),
            Type::Time => write!(f, "UTC time yyyy-MM-ddTHH:mm:ssZ"),
            Type::Text => write!(f, "text"),
        }
    }
}

// ---- building the tables ----------------------------------------------------------------------

pub(crate) const STR: Type = Type::String { max_len: None };
pub(crate) const BOOL: Type = Type::Boolean;

pub(crate) const fn str_max(n: u32) -> Type {
    Type::String { max_len: Some(n) }
}

pub(crate) const fn int(min: i64, max: i64) -> Type {
    Type::Integer { min, max }
}

pub(crate) const fn one_of(values: &'static [&'static str]) -> Type {
    Type::Enum(values)
}

/// An optional parameter.
pub(crate) const fn opt(name: &'static str, ty: Type, summary: &'static str) -> Param {
    Param { name, ty, required: false, max_n: 0, summary }
}

/// A required parameter.
pub(crate) const fn req(name: &'static str, ty: Type, summary: &'static str) -> Param {
    Param { name, ty, required: true, max_n: 0, summary }
}

impl Param {
    /// The same parameter, required.
    pub(crate) const fn required(self) -> Param {
        Param { required: true, ..self }
    }

    /// A repeated parameter with indexes 1 to `max_n`.
    pub(crate) const fn upto(self, max_n: u16) -> Param {
        Param { max_n, ..self }
    }
}

impl Action {
    /// An action that only reads.
    pub(crate) const fn query(
        name: &'static str,
        summary: &'static str,
        region: Region,
        params: &'static [Param],
    ) -> Action {
        Action { name, summary, mutating: false, blocking: false, region, params }
    }

    /// An action that changes state.
    pub(crate) const fn change(
        name: &'static str,
        summary: &'static str,
        region: Region,
        params: &'static [Param],
    ) -> Action {
        Action { name, summary, mutating: true, blocking: false, region, params }
    }

    /// A read that blocks (see [`Action::blocking`]).
    pub(crate) const fn blocking_query(
        name: &'static str,
        summary: &'static str,
        region: Region,
        params: &'static [Param],
    ) -> Action {
        Action { name, summary, mutating: false, blocking: true, region, params }
    }
}

static REGION_REQUIRED: Param = req("RegionId", STR, "The region: the one this server runs (see DescribeRegions).");
static REGION_OPTIONAL: Param = opt("RegionId", STR, "The region; when given it must be the one this server runs.");

// ---- lookups ----------------------------------------------------------------------------------

/// The product a `Version` selects.
pub fn product_by_version(version: &str) -> Option<&'static Product> {
    PRODUCTS.iter().copied().find(|p| p.version == version)
}

/// A product by its code, any case: `ecs`, `BssOpenApi`, `feiyun`.
pub fn product_by_code(code: &str) -> Option<&'static Product> {
    PRODUCTS.iter().copied().find(|p| p.code.eq_ignore_ascii_case(code))
}

/// Every action of every product, with its product.
pub fn actions() -> impl Iterator<Item = (&'static Product, &'static Action)> {
    PRODUCTS.iter().copied().flat_map(|p| p.actions.iter().map(move |a| (p, a)))
}

impl Product {
    /// An action by its exact name.
    pub fn action(&'static self, name: &str) -> Option<&'static Action> {
        self.actions.iter().find(|a| a.name == name)
    }
}

impl Action {
    /// The parameter a wire name belongs to: an exact name (`InstanceType`), a concrete name of a
    /// repeated parameter (`Tag.3.Key`) or its pattern (`Tag.N.Key`). `RegionId` included when
    /// the action takes it.
    pub fn param(&'static self, name: &str) -> Option<&'static Param> {
        self.params().find(|p| p.name == name || p.matches(name))
    }

    /// Every parameter of the action: `RegionId` first when it takes one, then the others in
    /// their declared order.
    pub fn params(&'static self) -> impl Iterator<Item = &'static Param> {
        let region = match self.region {
            Region::Required => Some(&REGION_REQUIRED),
            Region::Optional => Some(&REGION_OPTIONAL),
            Region::Absent => None,
        };
        region.into_iter().chain(self.params.iter())
    }
}

impl Param {
    /// Whether the name has an `N` index.
    pub fn is_repeated(&self) -> bool {
        self.name.split('.').any(|s| s == "N")
    }

    /// Whether a concrete wire name is this parameter: the same name, or for a repeated one the
    /// pattern with each `N` replaced by an index from 1 to [`Param::max_n`] written without
    /// leading zeros (`Tag.3.Key` is `Tag.N.Key`; `Tag.03.Key` and `Tag.21.Key` are not).
    pub fn matches(&self, name: &str) -> bool {
        if !self.is_repeated() {
            return self.name == name;
        }
        let mut given = name.split('.');
        for part in self.name.split('.') {
            let Some(g) = given.next() else { return false };
            if part == "N" {
                if canonical_index(g).is_none_or(|n| n > self.max_n as usize) {
                    return false;
                }
            } else if part != g {
                return false;
            }
        }
        given.next().is_none()
    }
}

/// A positive decimal index without leading zeros.
pub fn canonical_index(s: &str) -> Option<usize> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

// ---- routing ----------------------------------------------------------------------------------

/// Where a request goes: its product and action, with the action's properties.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub product: &'static Product,
    pub action: &'static Action,
}

impl Route {
    /// Changes state: the server audits it.
    pub fn mutating(&self) -> bool {
        self.action.mutating
    }

    /// Must not run on the event loop (it changes state, reads the store or computes at length).
    pub fn blocking(&self) -> bool {
        self.action.mutating || self.action.blocking
    }
}

/// The route of a call: an unknown `Version` is `InvalidVersion` (400), an action the product
/// does not have (or this server does not implement) is `InvalidAction.NotFound` (404).
pub fn route(version: &str, action: &str) -> Result<Route, ApiError> {
    let product = product_by_version(version).ok_or_else(ApiError::invalid_version)?;
    let action = product.action(action).ok_or_else(ApiError::unknown_action)?;
    Ok(Route { product, action })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_version_then_action() {
        let r = route("2014-05-26", "RunInstances").expect("route");
        assert_eq!(
            (r.product.kind, r.action.name, r.mutating(), r.blocking()),
            (ProductKind::Ecs, "RunInstances", true, true)
        );
        let r = route("2014-05-26", "DescribeInstances").expect("route");
        assert!(!r.mutating() && !r.blocking());
        let r = route("2017-12-14", "QueryBill").expect("route");
        assert_eq!(r.product.kind, ProductKind::Bss);
        assert!(!r.mutating() && r.blocking(), "bills read the ledger from the store");
        let r = route("2016-04-28", "CreateVpc").expect("route");
        assert_eq!((r.product.kind, r.mutating()), (ProductKind::Vpc, true));
        assert!(route("2016-04-28", "RunInstances").is_err(), "an ECS action under VPC");
        let r = route("2026-11-01", "CalculateTco").expect("route");
        assert!(!r.mutating() && r.blocking());
        let e = route("2099-01-01", "RunInstances").expect_err("version");
        assert_eq!((e.status, e.code.as_str()), (400, "InvalidVersion"));
        let e = route("2014-05-26", "QueryBill").expect_err("BSS action under ECS");
        assert_eq!((e.status, e.code.as_str()), (404, "InvalidAction.NotFound"));
        assert!(route("2014-05-26", "runinstances").is_err(), "action names are exact");
    }

    #[test]
    fn concrete_names_match_their_patterns() {
        let run = route("2014-05-26", "RunInstances").expect("route").action;
        assert_eq!(run.param("Tag.1.Key").map(|p| p.name), Some("Tag.N.Key"));
        assert_eq!(run.param("Tag.20.Value").map(|p| p.name), Some("Tag.N.Value"));
        assert_eq!(run.param("Tag.N.Key").map(|p| p.name), Some("Tag.N.Key"));
        for bad in ["Tag.0.Key", "Tag.21.Key", "Tag.01.Key", "Tag.x.Key", "Tag.1", "Tag.1.Key.x", "Tag..Key"] {
            assert!(run.param(bad).is_none(), "{bad}");
        }
        let start = route("2014-05-26", "StartInstances").expect("route").action;
        assert_eq!(start.param("InstanceId.100").map(|p| p.name), Some("InstanceId.N"));
        assert!(start.param("InstanceId.101").is_none());
        assert!(start.param("InstanceId").is_none());
        let bss = route("2017-12-14", "GetPayAsYouGoPrice").expect("route").action;
        assert_eq!(bss.param("ModuleList.2.Config").map(|p| p.name), Some("ModuleList.N.Config"));
        assert!(bss.param("RegionId").is_none(), "BSS takes Region, not RegionId");
    }

    #[test]
    fn region_is_a_parameter_when_the_action_takes_it() {
        let zones = route("2014-05-26", "DescribeZones").expect("route").action;
        assert_eq!(zones.params().next().map(|p| (p.name, p.required)), Some(("RegionId", true)));
        let attr = route("2014-05-26", "DescribeInstanceAttribute").expect("route").action;
        assert_eq!(attr.param("RegionId").map(|p| p.required), Some(false));
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut versions: Vec<&str> = PRODUCTS.iter().map(|p| p.version).collect();
        versions.sort();
        versions.dedup();
        assert_eq!(versions.len(), PRODUCTS.len());
        for (product, action) in actions() {
            assert_eq!(product.actions.iter().filter(|a| a.name == action.name).count(), 1, "{}", action.name);
            assert!(!action.summary.is_empty() && action.summary.ends_with('.'), "{}", action.name);
            // RegionId is declared by `region`, never in the list.
            assert!(action.params.iter().all(|p| p.name != "RegionId"), "{}", action.name);
            let mut seen = Vec::new();
            for p in action.params() {
                assert!(!seen.contains(&p.name), "{}: {} twice", action.name, p.name);
                seen.push(p.name);
                assert!(!p.summary.is_empty() && p.summary.ends_with('.'), "{}: {}", action.name, p.name);
                assert_eq!(
                    p.is_repeated(),
                    p.max_n > 0,
                    "{}: {} needs upto(n) exactly when it has N",
                    action.name,
                    p.name
                );
                if let Type::Integer { min, max } = p.ty {
                    assert!(min <= max, "{}: {}", action.name, p.name);
                }
            }
        }
    }

    #[test]
    fn ecs_actions_that_change_state_are_the_ones_named_so() {
        // ECS names its reads Describe*, Get* or Query*; everything else changes state.
        for a in ecs::PRODUCT.actions {
            let read = ["Describe", "Get", "Query"].iter().any(|p| a.name.starts_with(p));
            assert_eq!(a.mutating, !read, "{}", a.name);
        }
        for a in vpc::PRODUCT.actions {
            assert_eq!(a.mutating, !a.name.starts_with("Describe"), "{}", a.name);
        }
        assert!(bss::PRODUCT.actions.iter().all(|a| !a.mutating && a.blocking));
        // Feiyun's own: the host operations change state; the rest read (and block: the
        // administrator check reads the store).
        for a in feiyun::PRODUCT.actions {
            let read = ["Calculate", "List"].iter().any(|p| a.name.starts_with(p));
            assert_eq!(a.mutating, !read, "{}", a.name);
            assert!(a.mutating || a.blocking, "{}", a.name);
        }
    }
}
