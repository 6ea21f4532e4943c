//! The images accounts make (CreateImage from an instance or a snapshot, captured by a host
//! and uploaded) and import, whom they are shared with, and deleting them.

use feiyun_domain::image::{Image, ImageSource};
use feiyun_domain::instance::InstanceStatus;
use feiyun_domain::ops::{ImageSourceRef, NewImage};
use feiyun_domain::storage::{ImageLife, ImageOrigin, ImageShare, ImageStatus, SnapshotStatus, StorageError};
use feiyun_domain::{ids, DomainError, Instant};
use feiyun_hostproto::{BlobKind, CaptureImageTask, CaptureSource, Task};
use feiyun_store::{StorageWrites, TokenRecord};

use super::STORAGE_TASK_DEADLINE;
use crate::tasks::{Completion, StorageCompletion};
use crate::{store_err, ControlPlane, State};

/// An image as an account sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageView {
    pub image: Image,
    pub status: ImageStatus,
    pub progress: u8,
    /// `system`, `self` or `others` (shared with the account).
    pub owner_alias: &'static str,
    /// The account's own image, shared with other accounts.
    pub shared: bool,
    pub origin: Option<ImageOrigin>,
    /// Live instances run from it.
    pub in_use: bool,
}

impl ControlPlane {
    /// Whether an image shows for an account: a system image, one of its own, or one shared
    /// with it — and not one its owner deleted.
    fn visible_to(state: &State, account_id: &str, image: &Image) -> Option<&'static str> {
        let life = state.storage.image_lives.get(&image.id);
        if life.is_some_and(|l| l.status == ImageStatus::UnAvailable) {
            return None;
        }
        match image.owner_account_id.as_deref() {
            None => Some("system"),
            Some(o) if o == account_id => Some("self"),
            Some(_) if life.is_some_and(|l| l.shared_with.iter().any(|s| s.account_id == account_id)) => Some("others"),
            Some(_) => None,
        }
    }

    /// Whether an account may launch an instance from an image: it sees it and it is available.
    pub(crate) fn check_launchable(&self, state: &State, account_id: &str, image_id: &str) -> Result<(), DomainError> {
        let images = self.images.read().unwrap_or_else(|p| p.into_inner());
        let image = images.get(image_id).ok_or_else(|| DomainError::ImageNotFound(image_id.to_string()))?;
        Self::visible_to(state, account_id, image).ok_or_else(|| DomainError::ImageNotFound(image_id.to_string()))?;
        match state.storage.image_lives.get(image_id).map(|l| l.status) {
            None | Some(ImageStatus::Available) => Ok(()),
            Some(_) => Err(StorageError::ImageNotReady(image_id.to_string()).into()),
        }
    }

    /// Every image an account sees, by id.
    pub fn image_views(&self, account_id: &str) -> Vec<ImageView> {
        let state = self.read();
        let used: std::collections::HashSet<&str> = state
            .instances
            .values()
            .filter(|i| i.status != InstanceStatus::Deleted)
            .map(|i| i.image_id.as_str())
            .collect();
        let images = self.images.read().unwrap_or_else(|p| p.into_inner());
        images
            .values()
            .filter_map(|m| {
                let alias = Self::visible_to(&state, account_id, m)?;
                let life = state.storage.image_lives.get(&m.id);
                Some(ImageView {
                    image: m.clone(),
                    status: life.map(|l| l.status).unwrap_or(ImageStatus::Available),
                    progress: life.map(|l| l.progress).unwrap_or(100),
                    owner_alias: alias,
                    shared: alias == "self" && life.is_some_and(|l| !l.shared_with.is_empty()),
                    origin: life.map(|l| l.origin.clone()),
                    in_use: used.contains(m.id.as_str()),
                })
            })
            .collect()
    }

    /// An image of the account's own (system images and others' are not).
    fn own_image(&self, account_id: &str, image_id: &str) -> Result<Image, DomainError> {
        self.image(image_id)
            .filter(|m| m.owner_account_id.as_deref() == Some(account_id))
            .ok_or_else(|| DomainError::ImageNotFound(image_id.to_string()))
    }

    fn name_taken(&self, state: &State, account_id: &str, name: &str) -> bool {
        let images = self.images.read().unwrap_or_else(|p| p.into_inner());
        images.values().any(|m| {
            m.owner_account_id.as_deref() == Some(account_id)
                && m.name == name
                && state.storage.image_lives.get(&m.id).is_none_or(|l| l.status != ImageStatus::UnAvailable)
        })
    }

    /// Record a new image of an account, being made.
    pub(crate) fn new_image(
        &self,
        state: &mut State,
        image: Image,
        origin: ImageOrigin,
        task_id: Option<String>,
        token: Option<&TokenRecord>,
        now: Instant,
    ) -> Result<(), DomainError> {
        let life = ImageLife {
            image_id: image.id.clone(),
            status: ImageStatus::Creating,
            progress: 0,
            origin,
            failure: None,
            task_id,
            shared_with: Vec::new(),
            updated_at: now,
        };
        let w = StorageWrites { image_lives: vec![life], ..Default::default() };
        self.store
            .commit(&feiyun_store::WriteSet {
                images: std::slice::from_ref(&image),
                token,
                storage: Some(&w),
                ..Default::default()
            })
            .map_err(store_err)?;
        state.storage.apply(&w);
        if let Some(t) = token {
            state.remember(t.clone());
        }
        self.images.write().unwrap_or_else(|p| p.into_inner()).insert(image.id.clone(), image);
        Ok(())
    }

    /// CreateImage: an image of an instance's root filesystem (running or stopped) or of a
    /// snapshot, captured and uploaded by the host holding it; Available once uploaded.
    pub fn create_image(&self, account_id: &str, spec: &NewImage, dry_run: bool) -> Result<String, DomainError> {
        let mut state = self.write();
        if let Some(id) = state.replayed(account_id, "CreateImage", spec.client_token.as_ref())? {
            return Ok(id);
        }
        let (host, source, origin, base_image) = match &spec.from {
            ImageSourceRef::Instance(id) => {
                let i = state.owned(account_id, id)?;
                if !matches!(i.status, InstanceStatus::Running | InstanceStatus::Stopped) {
                    return Err(DomainError::IncorrectStatus { status: i.status });
                }
                (
                    i.host_id.clone(),
                    CaptureSource::Instance(id.clone()),
                    ImageOrigin::Instance(id.clone()),
                    self.image(&i.image_id),
                )
            }
            ImageSourceRef::Snapshot(id) => {
                let s = state.storage.owned_snapshot(account_id, id)?;
                if s.status != SnapshotStatus::Accomplished {
                    return Err(StorageError::SnapshotNotReady(id.clone()).into());
                }
                (s.host_id.clone(), CaptureSource::Snapshot(id.clone()), ImageOrigin::Snapshot(id.clone()), None)
            }
        };
        let id = self.with_rng(ids::image_id);
        let name = spec.name.clone().unwrap_or_else(|| id.clone());
        if self.name_taken(&state, account_id, &name) {
            return Err(StorageError::ImageNameTaken(name).into());
        }
        if state.hosts.get(&host).is_none_or(|s| s.unreachable) {
            return Err(StorageError::HostUnavailable(host).into());
        }
        if dry_run {
            return Err(DomainError::DryRunOk);
        }
        let now = self.now();
        let image = Image {
            id: id.clone(),
            name,
            description: spec.description.clone(),
            owner_account_id: Some(account_id.to_string()),
            os_name: base_image.as_ref().map(|m| m.os_name.clone()).unwrap_or_else(|| "Linux".to_string()),
            os_type: base_image.as_ref().map(|m| m.os_type.clone()).unwrap_or_else(|| "linux".to_string()),
            architecture: base_image.as_ref().map(|m| m.architecture.clone()).unwrap_or_else(|| "x86_64".to_string()),
            size_bytes: 0,
            source: ImageSource::Region,
            sha256: None,
            created_at: now,
        };
        let task_id = self.with_rng(|r| ids::new_id("task", 20, r));
        let token = crate::token_record(account_id, "CreateImage", spec.client_token.as_ref(), &id);
        self.new_image(&mut state, image, origin, Some(task_id.clone()), token.as_ref(), now)?;
        let task = Task::CaptureImage(CaptureImageTask { id: task_id, image_id: id.clone(), source });
        let completion = Completion::Storage(StorageCompletion::Capture { image_id: id.clone() });
        if self.enqueue(&mut state, &host, task, completion, now + STORAGE_TASK_DEADLINE).is_err() {
            tracing::error!(image = %id, host = %host, "the capture task could not be sent");
        }
        tracing::info!(image = %id, host = %host, "image capture asked for");
        Ok(id)
    }

    /// DeleteImage of one of the account's images. Refused while it is shared, or being
    /// imported; while instances run from it only with `force`, and then it is hidden rather
    /// than removed (its archive stays for their hosts).
    pub fn delete_image(&self, account_id: &str, image_id: &str, force: bool) -> Result<(), DomainError> {
        let mut state = self.write();
        let image = self.own_image(account_id, image_id)?;
        let Some(life) = state.storage.image_lives.get(image_id).cloned() else {
            return Err(DomainError::ImageNotFound(image_id.to_string()));
        };
        if life.status == ImageStatus::UnAvailable {
            return Err(DomainError::ImageNotFound(image_id.to_string()));
        }
        if life.status == ImageStatus::Creating && matches!(life.origin, ImageOrigin::Import(_)) {
            return Err(StorageError::ImageImporting(image_id.to_string()).into());
        }
        if !life.shared_with.is_empty() {
            return Err(StorageError::ImageShared(image_id.to_string()).into());
        }
        let in_use = state
            .instances
            .values()
            .any(|i| i.image_id == image_id && i.status != feiyun_domain::instance::InstanceStatus::Deleted);
        if in_use && !force {
            return Err(StorageError::ImageInUse(image_id.to_string()).into());
        }
        let now = self.now();
        let mut w = StorageWrites::default();
        if in_use {
            w.image_lives.push(ImageLife { status: ImageStatus::UnAvailable, task_id: None, updated_at: now, ..life });
        } else {
            w.deleted_images.push(image_id.to_string());
        }
        self.store.commit(&feiyun_store::WriteSet { storage: Some(&w), ..Default::default() }).map_err(store_err)?;
        state.storage.apply(&w);
        if !in_use {
            self.images.write().unwrap_or_else(|p| p.into_inner()).remove(image_id);
            if image.sha256.is_some() {
                self.remove_blob(BlobKind::Image, image_id);
            }
        }
        tracing::info!(image = %image_id, hidden = in_use, "image deleted");
        Ok(())
    }

    /// ModifyImageSharePermission: share one of the account's images with other accounts, or
    /// stop sharing it.
    pub fn share_image(
        &self,
        account_id: &str,
        image_id: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<(), DomainError> {
        self.own_image(account_id, image_id)?;
        for a in add {
            if a == account_id {
                return Err(StorageError::ShareWithSelf.into());
            }
            if self.store.account(a).map_err(store_err)?.is_none() {
                return Err(StorageError::AccountNotFound(a.clone()).into());
            }
        }
        let mut state = self.write();
        let Some(mut life) =
            state.storage.image_lives.get(image_id).cloned().filter(|l| l.status != ImageStatus::UnAvailable)
        else {
            return Err(DomainError::ImageNotFound(image_id.to_string()));
        };
        let now = self.now();
        life.shared_with.retain(|s| !remove.contains(&s.account_id));
        for a in add {
            if !life.shared_with.iter().any(|s| &s.account_id == a) {
                life.shared_with.push(ImageShare { account_id: a.clone(), shared_at: now });
            }
        }
        life.updated_at = now;
        let w = StorageWrites { image_lives: vec![life], ..Default::default() };
        self.store.commit(&feiyun_store::WriteSet { storage: Some(&w), ..Default::default() }).map_err(store_err)?;
        state.storage.apply(&w);
        Ok(())
    }

    /// DescribeImageSharePermission: the accounts one of the account's images is shared with.
    pub fn image_shares(&self, account_id: &str, image_id: &str) -> Result<Vec<ImageShare>, DomainError> {
        self.own_image(account_id, image_id)?;
        let state = self.read();
        match state.storage.image_lives.get(image_id) {
            Some(l) if l.status != ImageStatus::UnAvailable => Ok(l.shared_with.clone()),
            _ => Err(DomainError::ImageNotFound(image_id.to_string())),
        }
    }

    /// Remove a blob of the region (best effort: a file left behind is only space).
    pub(crate) fn remove_blob(&self, kind: BlobKind, id: &str) {
        if let Ok(path) = self.blob_path(kind, id) {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(kind = kind.as_str(), id, "blob removed"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove a blob"),
            }
        }
    }
}
