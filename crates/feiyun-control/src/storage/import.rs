//! ImportImage: a file of the region's import directory (a root-filesystem tarball, or a disk
//! image) made into an image archive by an [`ImageImporter`] the composition root provides, off
//! the event loop; the image is Available once its archive is among the region's blobs.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use feiyun_domain::image::{Image, ImageSource};
use feiyun_domain::ops::ImportImage;
use feiyun_domain::storage::{ImageOrigin, ImageStatus, StorageError};
use feiyun_domain::{ids, DomainError};
use feiyun_hostproto::BlobKind;
use feiyun_store::StorageWrites;

use crate::{store_err, ControlPlane};

/// What an import produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    /// The operating system the tree says it is (`/etc/os-release`), or empty.
    pub os_name: String,
    /// Bytes of the files in the tree.
    pub tree_bytes: u64,
}

/// Turns what a user brings (a root-filesystem tarball, plain or gzip; a raw or qcow2 disk
/// image) into an image archive: a plain tar of a root filesystem at `dest`. It may run
/// processes and take minutes; the control plane calls it on a thread of its own. `scratch` is
/// a directory it may use.
pub trait ImageImporter: Send + Sync {
    fn import(&self, source: &Path, dest: &Path, scratch: &Path) -> Result<ImportedImage, String>;
}

/// Where imports come from, and what makes them.
pub(crate) struct Importing {
    pub dir: PathBuf,
    pub importer: Arc<dyn ImageImporter>,
}

/// The file an object name means inside the import directory: a relative path of plain names
/// (no `..`, no root, no empty part), which must stay inside the directory once links are
/// followed, and be a regular file.
pub(crate) fn resolve_object(dir: &Path, object: &str) -> Result<PathBuf, StorageError> {
    let malformed = || StorageError::ImportObjectMalformed(object.to_string());
    let rel = Path::new(object);
    if object.is_empty()
        || object.contains('\0')
        || object.split('/').any(|p| p.is_empty())
        || !rel.components().all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(malformed());
    }
    let root = dir.canonicalize().map_err(|_| StorageError::ImportNotConfigured)?;
    let path = root.join(rel);
    let real = path.canonicalize().map_err(|_| StorageError::ImportObjectNotFound(object.to_string()))?;
    if !real.starts_with(&root) {
        return Err(malformed());
    }
    if !real.is_file() {
        return Err(StorageError::ImportObjectNotFound(object.to_string()));
    }
    Ok(real)
}

/// The SHA-256 (hex) and size of a file.
fn digest(path: &Path) -> std::io::Result<(String, u64)> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

impl ControlPlane {
    /// Let the region import images: files of `dir`, made into archives by `importer`.
    pub fn configure_imports(&self, dir: PathBuf, importer: Arc<dyn ImageImporter>) {
        *self.importing.write().unwrap_or_else(|p| p.into_inner()) = Some(Importing { dir, importer });
    }

    /// ImportImage: start making an image of a file of the import directory; it is Creating
    /// until the import ends (Available, or CreateFailed with the reason).
    pub fn import_image(self: &Arc<Self>, account_id: &str, spec: &ImportImage) -> Result<String, DomainError> {
        let (source, importer) = {
            let guard = self.importing.read().unwrap_or_else(|p| p.into_inner());
            let imp = guard.as_ref().ok_or(StorageError::ImportNotConfigured)?;
            if self.blob_dir.is_none() {
                return Err(StorageError::ImportNotConfigured.into());
            }
            (resolve_object(&imp.dir, &spec.object)?, imp.importer.clone())
        };
        let mut state = self.write();
        if let Some(id) = state.replayed(account_id, "ImportImage", spec.client_token.as_ref())? {
            return Ok(id);
        }
        let id = self.with_rng(ids::image_id);
        let name = spec.name.clone().unwrap_or_else(|| id.clone());
        {
            let images = self.images.read().unwrap_or_else(|p| p.into_inner());
            let taken = images.values().any(|m| {
                m.owner_account_id.as_deref() == Some(account_id)
                    && m.name == name
                    && state.storage.image_lives.get(&m.id).is_none_or(|l| l.status != ImageStatus::UnAvailable)
            });
            if taken {
                return Err(StorageError::ImageNameTaken(name).into());
            }
        }
        let now = self.now();
        let image = Image {
            id: id.clone(),
            name,
            description: spec.description.clone(),
            owner_account_id: Some(account_id.to_string()),
            os_name: String::new(),
            os_type: spec.os_type.clone(),
            architecture: spec.architecture.clone(),
            size_bytes: 0,
            source: ImageSource::Region,
            sha256: None,
            created_at: now,
        };
        let token = crate::token_record(account_id, "ImportImage", spec.client_token.as_ref(), &id);
        self.new_image(&mut state, image, ImageOrigin::Import(spec.object.clone()), None, token.as_ref(), now)?;
        drop(state);
        let cp = self.clone();
        let image_id = id.clone();
        let spawned = std::thread::Builder::new().name(format!("import-{id}")).spawn(move || {
            let result = cp.run_import(&image_id, &source, importer.as_ref());
            cp.finish_import(&image_id, result);
        });
        if let Err(e) = spawned {
            self.finish_import(&id, Err(format!("cannot start the import: {e}")));
        }
        tracing::info!(image = %id, object = %spec.object, "image import started");
        Ok(id)
    }

    fn run_import(
        &self,
        image_id: &str,
        source: &Path,
        importer: &dyn ImageImporter,
    ) -> Result<(ImportedImage, String, u64), String> {
        let dest = self.blob_path(BlobKind::Image, image_id).map_err(|e| e.to_string())?;
        let dir = dest.parent().ok_or("no blob directory")?.to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let scratch = dir.join(format!("{image_id}.scratch"));
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let partial = dir.join(format!("{image_id}.partial"));
        let out = importer.import(source, &partial, &scratch);
        let _ = std::fs::remove_dir_all(&scratch);
        let imported = match out {
            Ok(i) => i,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        let (sha256, size) = digest(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
        std::fs::rename(&partial, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        Ok((imported, sha256, size))
    }

    /// An import ended: the image is Available with its archive's checksum and size, or failed.
    pub(crate) fn finish_import(&self, image_id: &str, result: Result<(ImportedImage, String, u64), String>) {
        let mut state = self.write();
        let Some(mut life) = state.storage.image_lives.get(image_id).cloned() else { return };
        let Some(mut image) = self.image(image_id) else { return };
        let now = self.now();
        life.updated_at = now;
        match result {
            Ok((imported, sha256, size)) => {
                life.status = ImageStatus::Available;
                life.progress = 100;
                image.sha256 = Some(sha256);
                image.size_bytes = size.max(imported.tree_bytes);
                if !imported.os_name.is_empty() {
                    image.os_name = imported.os_name;
                }
                tracing::info!(image = %image_id, bytes = size, "image imported");
            }
            Err(e) => {
                tracing::warn!(image = %image_id, error = %e, "image import failed");
                life.status = ImageStatus::CreateFailed;
                life.failure = Some(e);
            }
        }
        let w = StorageWrites { image_lives: vec![life], ..Default::default() };
        let written = self.store.commit(&feiyun_store::WriteSet {
            images: std::slice::from_ref(&image),
            storage: Some(&w),
            ..Default::default()
        });
        match written {
            Ok(()) => {
                state.storage.apply(&w);
                self.images.write().unwrap_or_else(|p| p.into_inner()).insert(image.id.clone(), image);
            }
            Err(e) => tracing::error!(image = %image_id, error = %store_err(e), "cannot record the end of an import"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_plain_names_inside_the_import_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("imports");
        std::fs::create_dir_all(root.join("sub")).expect("dirs");
        std::fs::write(root.join("rootfs.tar"), b"x").expect("file");
        std::fs::write(root.join("sub/disk.qcow2"), b"x").expect("file");
        std::fs::write(dir.path().join("secret"), b"x").expect("outside");
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).expect("link");
        assert!(resolve_object(&root, "rootfs.tar").is_ok());
        assert!(resolve_object(&root, "sub/disk.qcow2").is_ok());
        for bad in ["../secret", "/etc/passwd", "sub/../../secret", "", "sub//disk.qcow2", "./rootfs.tar", "link"] {
            assert!(
                matches!(resolve_object(&root, bad), Err(StorageError::ImportObjectMalformed(_))),
                "{bad:?}: {:?}",
                resolve_object(&root, bad)
            );
        }
        assert!(matches!(resolve_object(&root, "nope.tar"), Err(StorageError::ImportObjectNotFound(_))));
        assert!(matches!(resolve_object(&root, "sub"), Err(StorageError::ImportObjectNotFound(_))));
    }
}
