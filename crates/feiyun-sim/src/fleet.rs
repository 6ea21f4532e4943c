//! The hosts a replay places requests onto: the `--hosts` fleet syntax.
//!
//! A fleet is one or more comma-separated groups, each
//!
//! ```text
//! [COUNTx]<cpus>c<mem>g[<n>gpu[:<MODEL>]][@ZONE]
//! ```
//!
//! - `COUNTx`: how many hosts of this shape (at least 1). Without it the group is *unlimited*:
//!   hosts of that shape are opened on demand, so a replay measures how many it needed.
//! - `<cpus>c`: vCPUs per host (decimals allowed, kept as milli-CPUs).
//! - `<mem>g`: memory per host in GiB (decimals allowed, rounded to the nearest MiB).
//! - `<n>gpu`: whole GPUs per host, optionally `:<MODEL>` (letters, digits, `-`, `_`, `.`).
//! - `@ZONE`: the zone the hosts are in (letters, digits, `-`, `_`, `.`).
//!
//! Examples: `10000x32c128g` (10,000 hosts of 32 vCPU / 128 GiB), `32c128g` (as many such hosts as
//! needed), `500x96c768g8gpu:A100@z2,2000x32c128g@z1`.
//!
//! The whole spec may instead be `alibaba-nodes:PATH`: the fixed fleet listed in an Alibaba
//! `openb_node_list_*.csv` (see [`crate::convert::alibaba_nodes`]), identical hosts grouped in
//! order of first appearance.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::convert::{self, ConvertError};
use crate::decimal::{format_scaled, parse_scaled};

/// The syntax of one group, repeated in error messages.
const GROUP_SYNTAX: &str = "[COUNTx]<cpus>c<mem>g[<n>gpu[:MODEL]][@ZONE]";
const NODES_PREFIX: &str = "alibaba-nodes:";

/// What one host offers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostShape {
    pub cpu_milli: u64,
    pub memory_mib: u64,
    /// Whole GPUs.
    pub gpus: u32,
    pub gpu_model: Option<String>,
    pub zone: Option<String>,
}

/// Hosts of one shape: a fixed number, or as many as needed (`count: None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetGroup {
    pub shape: HostShape,
    pub count: Option<u64>,
}

/// A whole fleet, groups in the order written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetSpec {
    pub groups: Vec<FleetGroup>,
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("Empty fleet spec (expected e.g. 10000x32c128g or 32c128g)")]
    Empty,
    #[error("Bad host group {group:?}: {reason} (syntax: {GROUP_SYNTAX})")]
    Group { group: String, reason: String },
    #[error("Node list {path} lists no hosts")]
    NoNodes { path: String },
    #[error(transparent)]
    Nodes(#[from] ConvertError),
}

impl FleetSpec {
    /// Parses a `--hosts` value (see the module doc). `alibaba-nodes:PATH` reads that file.
    pub fn parse(spec: &str) -> Result<FleetSpec, FleetError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(FleetError::Empty);
        }
        if let Some(path) = spec.strip_prefix(NODES_PREFIX) {
            let nodes = convert::alibaba_nodes(Path::new(path))?;
            if nodes.is_empty() {
                return Err(FleetError::NoNodes { path: path.to_string() });
            }
            return Ok(FleetSpec::from_hosts(nodes.into_iter().map(|n| n.shape)));
        }
        let groups = spec.split(',').map(parse_group).collect::<Result<Vec<_>, _>>()?;
        Ok(FleetSpec { groups })
    }

    /// A fixed fleet of these hosts, identical shapes grouped in order of first appearance.
    pub fn from_hosts(hosts: impl IntoIterator<Item = HostShape>) -> FleetSpec {
        let mut groups: Vec<FleetGroup> = Vec::new();
        for shape in hosts {
            match groups.iter_mut().find(|g| g.shape == shape) {
                Some(group) => group.count = group.count.map(|c| c + 1),
                None => groups.push(FleetGroup { shape, count: Some(1) }),
            }
        }
        FleetSpec { groups }
    }

    /// True when some group opens hosts on demand.
    pub fn is_unlimited(&self) -> bool {
        self.groups.iter().any(|g| g.count.is_none())
    }

    /// The number of hosts in a fixed fleet; `None` when some group is unlimited.
    pub fn host_count(&self) -> Option<u64> {
        self.groups.iter().try_fold(0u64, |sum, g| g.count.map(|c| sum.saturating_add(c)))
    }

    /// The fleet in words: `unlimited 32c128g hosts`, `3,000 fixed 32c128g hosts`, `1,523 fixed
    /// hosts of 9 shapes`, `10 fixed hosts of 2 shapes and unlimited 32c128g hosts`.
    pub fn describe(&self) -> String {
        let fixed: Vec<&FleetGroup> = self.groups.iter().filter(|g| g.count.is_some()).collect();
        let unlimited: Vec<&FleetGroup> = self.groups.iter().filter(|g| g.count.is_none()).collect();
        let hosts: u64 = fixed.iter().filter_map(|g| g.count).sum();
        let fixed_text = match fixed.as_slice() {
            [] => None,
            [g] => Some(format!("{} fixed {} hosts", crate::summary::thousands(hosts), g.shape)),
            many => Some(format!("{} fixed hosts of {} shapes", crate::summary::thousands(hosts), many.len())),
        };
        let unlimited_text = match unlimited.as_slice() {
            [] => None,
            [g] => Some(format!("unlimited {} hosts", g.shape)),
            many => Some(format!("unlimited hosts of {} shapes", many.len())),
        };
        match (fixed_text, unlimited_text) {
            (Some(f), Some(u)) => format!("{f} and {u}"),
            (Some(f), None) => f,
            (None, Some(u)) => u,
            (None, None) => "no hosts".to_string(),
        }
    }
}

/// The fleet of a `--hosts` spec in words, for titles: [`FleetSpec::describe`], and for an
/// `alibaba-nodes:PATH` spec the file it came from (its name, not its path).
pub fn label(spec: &str, fleet: &FleetSpec) -> String {
    match spec.trim().strip_prefix(NODES_PREFIX) {
        Some(path) => {
            let name = Path::new(path).file_name().map_or(path.into(), |n| n.to_string_lossy());
            format!("{} from {name}", fleet.describe())
        }
        None => fleet.describe(),
    }
}

impl FromStr for FleetSpec {
    type Err = FleetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FleetSpec::parse(s)
    }
}

/// The canonical spec: parsing it gives the same fleet (an Alibaba node list comes out expanded).
impl fmt::Display for FleetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, group) in self.groups.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if let Some(count) = group.count {
                write!(f, "{count}x")?;
            }
            write!(f, "{}", group.shape)?;
        }
        Ok(())
    }
}

impl fmt::Display for HostShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}c{}g", format_scaled(self.cpu_milli, 1000), format_scaled(self.memory_mib, 1024))?;
        if self.gpus > 0 {
            write!(f, "{}gpu", self.gpus)?;
            if let Some(model) = &self.gpu_model {
                write!(f, ":{model}")?;
            }
        }
        if let Some(zone) = &self.zone {
            write!(f, "@{zone}")?;
        }
        Ok(())
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn parse_group(group: &str) -> Result<FleetGroup, FleetError> {
    let trimmed = group.trim();
    let bad = |reason: String| FleetError::Group { group: trimmed.to_string(), reason };
    if trimmed.is_empty() {
        return Err(bad("empty group (stray comma?)".to_string()));
    }

    let mut rest = trimmed;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let count = match rest[digits..].strip_prefix('x') {
        Some(after) if digits > 0 => {
            let count: u64 = rest[..digits].parse().map_err(|_| bad("host count is too large".to_string()))?;
            if count == 0 {
                return Err(bad("host count must be at least 1 (omit COUNTx for an unlimited group)".to_string()));
            }
            rest = after;
            Some(count)
        }
        _ => None,
    };

    let (cpus, after) = rest.split_once('c').ok_or_else(|| bad("expected <cpus>c, e.g. 32c".to_string()))?;
    let cpu_milli = parse_scaled(cpus, 1000).map_err(|e| bad(format!("vCPUs: {e}")))?;
    let (mem, after) =
        after.split_once('g').ok_or_else(|| bad("expected <mem>g after the vCPUs, e.g. 128g".to_string()))?;
    let memory_mib = parse_scaled(mem, 1024).map_err(|e| bad(format!("memory: {e}")))?;
    if cpu_milli == 0 || memory_mib == 0 {
        return Err(bad("hosts need some vCPUs and memory".to_string()));
    }

    let (gpu_part, zone) = match after.split_once('@') {
        Some((gpu_part, zone)) if is_name(zone) => (gpu_part, Some(zone.to_string())),
        Some((_, zone)) => return Err(bad(format!("bad zone {zone:?}"))),
        None => (after, None),
    };

    let (gpus, gpu_model) = if gpu_part.is_empty() {
        (0, None)
    } else {
        let (n, model) = gpu_part
            .split_once("gpu")
            .ok_or_else(|| bad(format!("unexpected {gpu_part:?} after the memory (expected <n>gpu or @ZONE)")))?;
        let gpus: u32 = n.parse().map_err(|_| bad(format!("GPU count {n:?} is not a whole number")))?;
        if gpus == 0 {
            return Err(bad("GPU count must be at least 1 (omit <n>gpu for none)".to_string()));
        }
        let model = match model.strip_prefix(':') {
            Some(model) if is_name(model) => Some(model.to_string()),
            Some(model) => return Err(bad(format!("bad GPU model {model:?}"))),
            None if model.is_empty() => None,
            None => return Err(bad(format!("unexpected {model:?} after {gpus}gpu"))),
        };
        (gpus, model)
    };

    Ok(FleetGroup { shape: HostShape { cpu_milli, memory_mib, gpus, gpu_model, zone }, count })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(cpu_milli: u64, memory_mib: u64) -> HostShape {
        HostShape { cpu_milli, memory_mib, gpus: 0, gpu_model: None, zone: None }
    }

    #[test]
    fn fleets_in_words() {
        let words = |spec: &str| label(spec, &FleetSpec::parse(spec).expect("parses"));
        assert_eq!(words("32c128g"), "unlimited 32c128g hosts");
        assert_eq!(words("3000x32c128g"), "3,000 fixed 32c128g hosts");
        assert_eq!(words("500x96c768g8gpu:A100@z2,2000x32c128g@z1"), "2,500 fixed hosts of 2 shapes");
        assert_eq!(words("2x8c32g,32c128g"), "2 fixed 8c32g hosts and unlimited 32c128g hosts");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nodes.csv");
        std::fs::write(
            &path,
            "sn,cpu_milli,memory_mib,gpu,model\nn0,32000,262144,0,\nn1,32000,262144,0,\nn2,8000,32768,2,G1\n",
        )
        .expect("write");
        let spec = format!("alibaba-nodes:{}", path.display());
        assert_eq!(words(&spec), "3 fixed hosts of 2 shapes from nodes.csv");
    }

    #[test]
    fn parses_the_documented_examples() {
        let fixed = FleetSpec::parse("10000x32c128g").expect("parses");
        assert_eq!(fixed.groups, vec![FleetGroup { shape: shape(32000, 131072), count: Some(10000) }]);
        assert!(!fixed.is_unlimited());
        assert_eq!(fixed.host_count(), Some(10000));

        let open = FleetSpec::parse("32c128g").expect("parses");
        assert_eq!(open.groups, vec![FleetGroup { shape: shape(32000, 131072), count: None }]);
        assert!(open.is_unlimited());
        assert_eq!(open.host_count(), None);

        let mixed = FleetSpec::parse("500x96c768g8gpu:A100@z2, 2000x32c128g@z1").expect("parses");
        assert_eq!(
            mixed.groups,
            vec![
                FleetGroup {
                    shape: HostShape {
                        cpu_milli: 96000,
                        memory_mib: 786432,
                        gpus: 8,
                        gpu_model: Some("A100".into()),
                        zone: Some("z2".into()),
                    },
                    count: Some(500),
                },
                FleetGroup { shape: HostShape { zone: Some("z1".into()), ..shape(32000, 131072) }, count: Some(2000) },
            ]
        );
        assert_eq!(mixed.host_count(), Some(2500));
    }

    #[test]
    fn accepts_decimals_gpus_without_model_and_zones_with_dashes() {
        let spec = FleetSpec::parse("0.5c1.75g,4x8c32g2gpu@cn-hangzhou-a").expect("parses");
        assert_eq!(spec.groups[0].shape, shape(500, 1792));
        assert_eq!(spec.groups[1].shape.gpus, 2);
        assert_eq!(spec.groups[1].shape.gpu_model, None);
        assert_eq!(spec.groups[1].shape.zone.as_deref(), Some("cn-hangzhou-a"));
        assert!(spec.is_unlimited());
    }

    #[test]
    fn display_is_canonical_and_parses_back() {
        for text in ["10000x32c128g", "32c128g", "500x96c768g8gpu:A100@z2,2000x32c128g@z1", "0.5c1.75g2gpu"] {
            let spec = FleetSpec::parse(text).expect("parses");
            assert_eq!(spec.to_string(), text);
            assert_eq!(FleetSpec::parse(&spec.to_string()).expect("reparses"), spec);
        }
    }

    #[test]
    fn rejects_bad_specs_with_reasons() {
        let cases = [
            ("", "Empty fleet spec"),
            ("32c128g,", "stray comma"),
            ("0x32c128g", "at least 1"),
            ("10x32", "expected <cpus>c"),
            ("10x32c128", "expected <mem>g"),
            ("10xc128g", "vCPUs"),
            ("10x0c128g", "need some vCPUs"),
            ("10x32c-1g", "memory"),
            ("32c128gpu", "unexpected \"pu\""),
            ("32c128g0gpu", "at least 1"),
            ("32c128g8gpu:", "bad GPU model"),
            ("32c128g8gpuA100", "after 8gpu"),
            ("32c128g@", "bad zone"),
            ("32c128g@z 1", "bad zone"),
            ("32C128G", "expected <cpus>c"),
        ];
        for (text, needle) in cases {
            match FleetSpec::parse(text) {
                Err(e) => assert!(e.to_string().contains(needle), "{text:?}: {e}"),
                Ok(spec) => panic!("{text:?} parsed as {spec:?}"),
            }
        }
    }

    #[test]
    fn alibaba_node_list_becomes_a_fixed_fleet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nodes.csv");
        std::fs::write(
            &path,
            "sn,cpu_milli,memory_mib,gpu,model\nn0,32000,262144,0,\nn1,96000,393216,8,G2\nn2,32000,262144,0,\n",
        )
        .expect("write");
        let spec = FleetSpec::parse(&format!("alibaba-nodes:{}", path.display())).expect("parses");
        assert_eq!(spec.to_string(), "2x32c256g,1x96c384g8gpu:G2");
        assert_eq!(spec.host_count(), Some(3));

        let empty = dir.path().join("empty.csv");
        std::fs::write(&empty, "sn,cpu_milli,memory_mib,gpu,model\n").expect("write");
        assert!(matches!(
            FleetSpec::parse(&format!("alibaba-nodes:{}", empty.display())),
            Err(FleetError::NoNodes { .. })
        ));
        assert!(matches!(FleetSpec::parse("alibaba-nodes:/nonexistent/nodes.csv"), Err(FleetError::Nodes(_))));
    }
}
