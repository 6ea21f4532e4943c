//! The region's image importer: ImportImage runs the runtime's import (a root-filesystem
//! tarball, or a raw or qcow2 disk image through `qemu-img` and a loop device) on the control
//! plane's machine. The control plane runs no processes itself; it is given this.

use std::path::Path;

use feiyun_control::{ImageImporter, ImportedImage};

pub struct RuntimeImporter;

impl ImageImporter for RuntimeImporter {
    fn import(&self, source: &Path, dest: &Path, scratch: &Path) -> Result<ImportedImage, String> {
        let i = feiyun_runtime::import::import(source, dest, scratch).map_err(|e| e.to_string())?;
        tracing::info!(format = %i.source_format, os = %i.os_name, bytes = i.archive_bytes, "image imported");
        Ok(ImportedImage { os_name: i.os_name, tree_bytes: i.tree_bytes })
    }
}
