//! The instance-type catalog: families and types as data, loaded at start.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::resources::Resources;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilySpec {
    pub id: String,
    pub name: String,
    pub generation: String,
    pub category: String,
    pub level: String,
    pub cpu_model: String,
    pub cpu_base_ghz: f64,
    pub cpu_turbo_ghz: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceTypeSpec {
    pub id: String,
    pub family: String,
    pub vcpus: u32,
    pub memory_gib: f64,
    #[serde(default)]
    pub gpu_count: u32,
    #[serde(default)]
    pub gpu_model: String,
    #[serde(default)]
    pub gpu_memory_gib: f64,
    #[serde(default)]
    pub local_disk_count: u32,
    #[serde(default)]
    pub local_disk_gib: u64,
    #[serde(default)]
    pub local_disk_category: String,
    /// Burstable types: baseline performance of each vCPU in percent; 0 for full vCPUs.
    #[serde(default)]
    pub baseline_cpu_percent: u32,
    #[serde(default)]
    pub initial_credit: u32,
    #[serde(default)]
    pub credit_per_hour: f64,
    #[serde(default)]
    pub bandwidth_mbps: u32,
    #[serde(default)]
    pub pps_kpps: u32,
    #[serde(default)]
    pub enis: u32,
    #[serde(default)]
    pub ips_per_eni: u32,
}

impl InstanceTypeSpec {
    pub fn memory_mib(&self) -> u64 {
        (self.memory_gib * 1024.0).round() as u64
    }

    /// What one instance of this type takes from a host.
    pub fn resources(&self) -> Resources {
        Resources {
            vcpus: self.vcpus,
            memory_mib: self.memory_mib(),
            gpus: self.gpu_count,
            local_disk_gib: self.local_disk_gib * self.local_disk_count as u64,
        }
    }

    pub fn is_burstable(&self) -> bool {
        self.baseline_cpu_percent > 0
    }

    /// The GPU model a host must have, if any.
    pub fn required_gpu_model(&self) -> Option<&str> {
        (self.gpu_count > 0).then_some(self.gpu_model.as_str())
    }

    /// The local disk category a host must have, if any.
    pub fn required_local_disk(&self) -> Option<&str> {
        (self.local_disk_count > 0).then_some(self.local_disk_category.as_str())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    family: Vec<FamilySpec>,
    instance_type: Vec<InstanceTypeSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("Catalog is not valid TOML: {0}")]
    Parse(String),
    #[error("Catalog entry {0} is invalid: {1}")]
    Invalid(String, String),
}

/// All families and instance types, ordered by id.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    families: BTreeMap<String, FamilySpec>,
    types: BTreeMap<String, InstanceTypeSpec>,
}

impl Catalog {
    pub fn from_toml(text: &str) -> Result<Catalog, CatalogError> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| CatalogError::Parse(e.to_string()))?;
        let mut c = Catalog::default();
        for f in file.family {
            if c.families.insert(f.id.clone(), f.clone()).is_some() {
                return Err(CatalogError::Invalid(f.id, "duplicate family".into()));
            }
        }
        for t in file.instance_type {
            let bad = |why: &str| CatalogError::Invalid(t.id.clone(), why.to_string());
            if !c.families.contains_key(&t.family) {
                return Err(bad("unknown family"));
            }
            if t.vcpus == 0 || t.memory_gib <= 0.0 {
                return Err(bad("vCPUs and memory must be positive"));
            }
            if t.gpu_count > 0 && t.gpu_model.is_empty() {
                return Err(bad("GPU type without a GPU model"));
            }
            if t.local_disk_count > 0 && (t.local_disk_category.is_empty() || t.local_disk_gib == 0) {
                return Err(bad("local disks without category or size"));
            }
            if c.types.insert(t.id.clone(), t.clone()).is_some() {
                return Err(bad("duplicate instance type"));
            }
        }
        Ok(c)
    }

    pub fn instance_type(&self, id: &str) -> Option<&InstanceTypeSpec> {
        self.types.get(id)
    }

    pub fn family(&self, id: &str) -> Option<&FamilySpec> {
        self.families.get(id)
    }

    pub fn families(&self) -> impl Iterator<Item = &FamilySpec> {
        self.families.values()
    }

    pub fn instance_types(&self) -> impl Iterator<Item = &InstanceTypeSpec> {
        self.types.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
[[family]]
id = "ecs.g7"
name = "General purpose"
generation = "ecs-6"
category = "General-purpose"
level = "EnterpriseLevel"
cpu_model = "x"
cpu_base_ghz = 2.7
cpu_turbo_ghz = 3.5

[[instance_type]]
id = "ecs.g7.large"
family = "ecs.g7"
vcpus = 2
memory_gib = 8.0
"#;

    #[test]
    fn parses_and_derives_resources() {
        let c = Catalog::from_toml(SMALL).expect("valid");
        let t = c.instance_type("ecs.g7.large").expect("present");
        assert_eq!(t.resources(), Resources { vcpus: 2, memory_mib: 8192, gpus: 0, local_disk_gib: 0 });
        assert!(t.required_gpu_model().is_none());
    }

    #[test]
    fn rejects_unknown_family() {
        let bad = SMALL.replace("family = \"ecs.g7\"", "family = \"ecs.zz\"");
        assert!(matches!(Catalog::from_toml(&bad), Err(CatalogError::Invalid(..))));
    }

    #[test]
    fn rejects_bad_toml() {
        assert!(matches!(Catalog::from_toml("[[family]"), Err(CatalogError::Parse(_))));
    }
}
