//! Regions and zones.

#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub id: String,
    pub local_name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub id: String,
    pub local_name: String,
    pub zones: Vec<Zone>,
}

impl Region {
    pub fn zone(&self, id: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.id == id)
    }
}
