//! Disks, snapshots, key pairs, the state of accounts' images and the storage usage log.

use super::Exec;
use feiyun_domain::storage::{
    Attachment, BlobCopy, Disk, DiskBlob, DiskCategory, DiskKind, DiskOrigin, DiskStatus, ImageLife, ImageOrigin,
    ImageShare, ImageStatus, KeyPair, Snapshot, SnapshotStatus, Transfer,
};
use feiyun_domain::usage::{StorageEvent, StorageItem, StorageUsage};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{parse_opt_ts, parse_ts, ts};
use crate::{StorageLoaded, StorageWrites, StoreError};

fn corrupt(id: &str, what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(id.to_string(), what.into())
}

const DISK_COLUMNS: &str = "id, account_id, region_id, zone_id, name, description, category, kind, size_gib, \
    source_snapshot_id, image_id, status, instance_id, device, delete_with_instance, delete_auto_snapshot, host_id, \
    origin_kind, origin_id, origin_sha256, origin_size, made, transfer_host, transfer_blob, transfer_task, \
    created_at, attached_at, detached_at, updated_at, revision";

fn disk_from_row(r: &Row<'_>) -> Result<Disk, StoreError> {
    let id: String = r.get(0)?;
    let category: String = r.get(6)?;
    let kind: String = r.get(7)?;
    let status: String = r.get(11)?;
    let instance: Option<String> = r.get(12)?;
    let device: Option<String> = r.get(13)?;
    let origin_kind: String = r.get(17)?;
    let origin_id: Option<String> = r.get(18)?;
    let transfer: (Option<String>, Option<String>, Option<String>) = (r.get(22)?, r.get(23)?, r.get(24)?);
    let created: String = r.get(25)?;
    let updated: String = r.get(28)?;
    Ok(Disk {
        account_id: r.get(1)?,
        region_id: r.get(2)?,
        zone_id: r.get(3)?,
        name: r.get(4)?,
        description: r.get(5)?,
        category: DiskCategory::parse(&category).ok_or_else(|| corrupt(&id, format!("category {category}")))?,
        kind: DiskKind::parse(&kind).ok_or_else(|| corrupt(&id, format!("kind {kind}")))?,
        size_gib: r.get::<_, i64>(8)? as u64,
        source_snapshot_id: r.get(9)?,
        image_id: r.get(10)?,
        status: DiskStatus::parse(&status).ok_or_else(|| corrupt(&id, format!("status {status}")))?,
        attachment: match (instance, device) {
            (Some(instance_id), Some(device)) => Some(Attachment { instance_id, device }),
            _ => None,
        },
        delete_with_instance: r.get(14)?,
        delete_auto_snapshot: r.get(15)?,
        host_id: r.get(16)?,
        origin: match (origin_kind.as_str(), origin_id) {
            ("Empty", _) => DiskOrigin::Empty,
            ("Snapshot", Some(s)) => DiskOrigin::Snapshot(s),
            ("Blob", Some(b)) => DiskOrigin::Blob(DiskBlob {
                id: b,
                sha256: r.get::<_, Option<String>>(19)?.ok_or_else(|| corrupt(&id, "blob checksum"))?,
                size_bytes: r.get::<_, Option<i64>>(20)?.unwrap_or(0) as u64,
            }),
            (k, _) => return Err(corrupt(&id, format!("origin {k}"))),
        },
        made: r.get(21)?,
        transfer: match transfer {
            (Some(to_host), Some(blob_id), Some(task_id)) => Some(Transfer { to_host, blob_id, task_id }),
            _ => None,
        },
        created_at: parse_ts(&id, &created)?,
        attached_at: parse_opt_ts(&id, r.get(26)?)?,
        detached_at: parse_opt_ts(&id, r.get(27)?)?,
        updated_at: parse_ts(&id, &updated)?,
        revision: u64::try_from(r.get::<_, i64>(29)?).map_err(|_| corrupt(&id, "revision"))?,
        id,
    })
}

const SNAPSHOT_COLUMNS: &str = "id, account_id, region_id, name, description, disk_id, disk_kind, disk_category, \
    source_disk_gib, status, host_id, size_bytes, blob_sha256, blob_size, failure, created_at, finished_at, \
    updated_at, revision";

fn snapshot_from_row(r: &Row<'_>) -> Result<Snapshot, StoreError> {
    let id: String = r.get(0)?;
    let kind: String = r.get(6)?;
    let category: String = r.get(7)?;
    let status: String = r.get(9)?;
    let sha: Option<String> = r.get(12)?;
    let created: String = r.get(15)?;
    let updated: String = r.get(17)?;
    Ok(Snapshot {
        account_id: r.get(1)?,
        region_id: r.get(2)?,
        name: r.get(3)?,
        description: r.get(4)?,
        disk_id: r.get(5)?,
        disk_kind: DiskKind::parse(&kind).ok_or_else(|| corrupt(&id, format!("disk kind {kind}")))?,
        disk_category: DiskCategory::parse(&category).ok_or_else(|| corrupt(&id, format!("category {category}")))?,
        source_disk_gib: r.get::<_, i64>(8)? as u64,
        status: SnapshotStatus::parse(&status).ok_or_else(|| corrupt(&id, format!("status {status}")))?,
        host_id: r.get(10)?,
        size_bytes: r.get::<_, i64>(11)? as u64,
        blob: match sha {
            Some(sha256) => Some(BlobCopy { sha256, size_bytes: r.get::<_, Option<i64>>(13)?.unwrap_or(0) as u64 }),
            None => None,
        },
        failure: r.get(14)?,
        created_at: parse_ts(&id, &created)?,
        finished_at: parse_opt_ts(&id, r.get(16)?)?,
        updated_at: parse_ts(&id, &updated)?,
        revision: u64::try_from(r.get::<_, i64>(18)?).map_err(|_| corrupt(&id, "revision"))?,
        id,
    })
}

pub(super) fn load(conn: &Connection) -> Result<StorageLoaded, StoreError> {
    let mut out = StorageLoaded::default();
    let mut st = conn.prepare(&format!("SELECT {DISK_COLUMNS} FROM disks WHERE status <> 'Deleted' ORDER BY id"))?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        out.disks.push(disk_from_row(r)?);
    }
    let mut st =
        conn.prepare(&format!("SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE status <> 'deleted' ORDER BY id"))?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        out.snapshots.push(snapshot_from_row(r)?);
    }
    let mut st = conn.prepare(
        "SELECT account_id, name, id, fingerprint, public_key, created_at FROM key_pairs ORDER BY account_id, name",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(2)?;
        let created: String = r.get(5)?;
        out.key_pairs.push(KeyPair {
            account_id: r.get(0)?,
            name: r.get(1)?,
            fingerprint: r.get(3)?,
            public_key: r.get(4)?,
            created_at: parse_ts(&id, &created)?,
            id,
        });
    }
    let mut st = conn.prepare(
        "SELECT image_id, status, progress, origin_kind, origin_id, failure, task_id, updated_at FROM image_states \
         ORDER BY image_id",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let status: String = r.get(1)?;
        let kind: String = r.get(3)?;
        let updated: String = r.get(7)?;
        out.image_lives.push(ImageLife {
            status: ImageStatus::parse(&status).ok_or_else(|| corrupt(&id, format!("image status {status}")))?,
            progress: u8::try_from(r.get::<_, i64>(2)?).map_err(|_| corrupt(&id, "progress"))?,
            origin: ImageOrigin::parse(&kind, r.get(4)?).ok_or_else(|| corrupt(&id, format!("origin {kind}")))?,
            failure: r.get(5)?,
            task_id: r.get(6)?,
            shared_with: Vec::new(),
            updated_at: parse_ts(&id, &updated)?,
            image_id: id,
        });
    }
    let mut st = conn
        .prepare("SELECT image_id, account_id, shared_at FROM image_shares ORDER BY image_id, shared_at, account_id")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let image: String = r.get(0)?;
        let at: String = r.get(2)?;
        let share = ImageShare { account_id: r.get(1)?, shared_at: parse_ts(&image, &at)? };
        if let Some(l) = out.image_lives.iter_mut().find(|l| l.image_id == image) {
            l.shared_with.push(share);
        }
    }
    Ok(out)
}

/// Insert new records (revision 1) or update the stored revision before; a stale writer gets
/// [`StoreError::Conflict`] and the transaction rolls back.
fn checked(
    tx: &Connection,
    kind: &'static str,
    table: &str,
    id: &str,
    revision: u64,
    written: usize,
) -> Result<(), StoreError> {
    if written > 0 {
        return Ok(());
    }
    let found: Option<i64> =
        tx.query_row(&format!("SELECT revision FROM {table} WHERE id = ?1"), [id], |r| r.get(0)).optional()?;
    Err(match found {
        Some(_) if revision <= 1 => StoreError::Exists { kind, id: id.to_string() },
        found => StoreError::Conflict {
            kind,
            id: id.to_string(),
            expected: revision.saturating_sub(1),
            found: found.unwrap_or(0) as u64,
        },
    })
}

fn write_disks(tx: &Connection, disks: &[Disk]) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO disks ({DISK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
         ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30) ON CONFLICT(id) DO NOTHING"
    ))?;
    let mut update = tx.prepare_cached(
        "UPDATE disks SET zone_id = ?4, name = ?5, description = ?6, category = ?7, size_gib = ?9, \
         source_snapshot_id = ?10, image_id = ?11, status = ?12, instance_id = ?13, device = ?14, \
         delete_with_instance = ?15, delete_auto_snapshot = ?16, host_id = ?17, origin_kind = ?18, origin_id = ?19, \
         origin_sha256 = ?20, origin_size = ?21, made = ?22, transfer_host = ?23, transfer_blob = ?24, \
         transfer_task = ?25, attached_at = ?27, detached_at = ?28, updated_at = ?29, revision = ?30 \
         WHERE id = ?1 AND revision = ?30 - 1",
    )?;
    for d in disks {
        let (origin_kind, origin_id, sha, size) = match &d.origin {
            DiskOrigin::Empty => ("Empty", None, None, None),
            DiskOrigin::Snapshot(s) => ("Snapshot", Some(s.as_str()), None, None),
            DiskOrigin::Blob(b) => ("Blob", Some(b.id.as_str()), Some(b.sha256.as_str()), Some(b.size_bytes as i64)),
        };
        let values = params![
            d.id,
            d.account_id,
            d.region_id,
            d.zone_id,
            d.name,
            d.description,
            d.category.as_str(),
            d.kind.as_str(),
            d.size_gib as i64,
            d.source_snapshot_id,
            d.image_id,
            d.status.as_str(),
            d.attachment.as_ref().map(|a| a.instance_id.as_str()),
            d.attachment.as_ref().map(|a| a.device.as_str()),
            d.delete_with_instance,
            d.delete_auto_snapshot,
            d.host_id,
            origin_kind,
            origin_id,
            sha,
            size,
            d.made,
            d.transfer.as_ref().map(|t| t.to_host.as_str()),
            d.transfer.as_ref().map(|t| t.blob_id.as_str()),
            d.transfer.as_ref().map(|t| t.task_id.as_str()),
            ts(&d.created_at),
            d.attached_at.as_ref().map(ts),
            d.detached_at.as_ref().map(ts),
            ts(&d.updated_at),
            d.revision as i64,
        ];
        let written = if d.revision <= 1 { insert.execute(values)? } else { update.execute(values)? };
        checked(tx, "Disk", "disks", &d.id, d.revision, written)?;
    }
    Ok(())
}

fn write_snapshots(tx: &Connection, snapshots: &[Snapshot]) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO snapshots ({SNAPSHOT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
         ?14, ?15, ?16, ?17, ?18, ?19) ON CONFLICT(id) DO NOTHING"
    ))?;
    let mut update = tx.prepare_cached(
        "UPDATE snapshots SET name = ?4, description = ?5, status = ?10, host_id = ?11, size_bytes = ?12, \
         blob_sha256 = ?13, blob_size = ?14, failure = ?15, finished_at = ?17, updated_at = ?18, revision = ?19 \
         WHERE id = ?1 AND revision = ?19 - 1",
    )?;
    for s in snapshots {
        let values = params![
            s.id,
            s.account_id,
            s.region_id,
            s.name,
            s.description,
            s.disk_id,
            s.disk_kind.as_str(),
            s.disk_category.as_str(),
            s.source_disk_gib as i64,
            s.status.as_str(),
            s.host_id,
            s.size_bytes as i64,
            s.blob.as_ref().map(|b| b.sha256.as_str()),
            s.blob.as_ref().map(|b| b.size_bytes as i64),
            s.failure,
            ts(&s.created_at),
            s.finished_at.as_ref().map(ts),
            ts(&s.updated_at),
            s.revision as i64,
        ];
        let written = if s.revision <= 1 { insert.execute(values)? } else { update.execute(values)? };
        checked(tx, "Snapshot", "snapshots", &s.id, s.revision, written)?;
    }
    Ok(())
}

pub(super) fn write(tx: &Connection, w: &StorageWrites) -> Result<(), StoreError> {
    write_disks(tx, &w.disks)?;
    write_snapshots(tx, &w.snapshots)?;
    for (account, name) in &w.deleted_key_pairs {
        tx.exec("DELETE FROM key_pairs WHERE account_id = ?1 AND name = ?2", params![account, name])?;
    }
    for k in &w.key_pairs {
        tx.exec(
            "INSERT INTO key_pairs (account_id, name, id, fingerprint, public_key, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![k.account_id, k.name, k.id, k.fingerprint, k.public_key, ts(&k.created_at)],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                StoreError::Exists { kind: "KeyPair", id: k.name.clone() }
            }
            e => e.into(),
        })?;
    }
    for id in &w.deleted_images {
        tx.exec("DELETE FROM image_shares WHERE image_id = ?1", [id])?;
        tx.exec("DELETE FROM image_states WHERE image_id = ?1", [id])?;
        tx.exec("UPDATE images SET deleted = 1 WHERE id = ?1", [id])?;
    }
    for l in &w.image_lives {
        tx.exec(
            "INSERT INTO image_states (image_id, status, progress, origin_kind, origin_id, failure, task_id, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(image_id) DO UPDATE SET status = excluded.status, \
             progress = excluded.progress, failure = excluded.failure, task_id = excluded.task_id, \
             updated_at = excluded.updated_at",
            params![
                l.image_id,
                l.status.as_str(),
                l.progress as i64,
                l.origin.kind(),
                l.origin.id(),
                l.failure,
                l.task_id,
                ts(&l.updated_at)
            ],
        )?;
        tx.exec("DELETE FROM image_shares WHERE image_id = ?1", [&l.image_id])?;
        for s in &l.shared_with {
            tx.exec(
                "INSERT INTO image_shares (image_id, account_id, shared_at) VALUES (?1, ?2, ?3)",
                params![l.image_id, s.account_id, ts(&s.shared_at)],
            )?;
        }
    }
    for u in &w.usage {
        // A replayed key is ignored; another event of the resource with the same sequence is an
        // error.
        tx.exec(
            "INSERT INTO storage_usage (key, resource_id, account_id, item, category, gib, zone_id, at_s, kind, seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(key) DO NOTHING",
            params![
                u.key,
                u.resource_id,
                u.account_id,
                u.item.as_str(),
                u.category,
                u.gib as i64,
                u.zone_id,
                u.at_s,
                u.kind.as_str(),
                u.seq as i64
            ],
        )?;
    }
    Ok(())
}

pub(super) fn usage(conn: &Connection, account_id: Option<&str>) -> Result<Vec<StorageUsage>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT key, resource_id, account_id, item, category, gib, zone_id, at_s, kind, seq FROM storage_usage \
         WHERE (?1 IS NULL OR account_id = ?1) ORDER BY at_s, resource_id, seq",
    )?;
    let mut rows = st.query(params![account_id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let key: String = r.get(0)?;
        let item: String = r.get(3)?;
        let kind: String = r.get(8)?;
        out.push(StorageUsage {
            resource_id: r.get(1)?,
            account_id: r.get(2)?,
            item: StorageItem::parse(&item).ok_or_else(|| corrupt(&key, "storage item"))?,
            category: r.get(4)?,
            gib: r.get::<_, i64>(5)? as u64,
            zone_id: r.get(6)?,
            at_s: r.get(7)?,
            kind: StorageEvent::parse(&kind).ok_or_else(|| corrupt(&key, "storage event"))?,
            seq: u64::try_from(r.get::<_, i64>(9)?).map_err(|_| corrupt(&key, "sequence"))?,
            key,
        });
    }
    Ok(out)
}
