//! Hosts, join tokens, the image catalog and system events.

use feiyun_domain::event::{EventCycle, EventKind, SystemEvent};
use feiyun_domain::host::{Host, JoinToken};
use feiyun_domain::image::{Image, ImageSource};
use feiyun_domain::Resources;
use rusqlite::{params, Connection, Row};

use super::{parse_opt_ts, parse_ts, ts};
use crate::StoreError;

const HOST_COLUMNS: &str = "id, name, zone_id, vcpus, memory_mib, gpus, local_disk_gib, gpu_model, \
    local_disk_category, simulated, epoch, draining, credential_hash, registered_at, net_prefix, underlay_ip";

fn host_from_row(r: &Row<'_>) -> Result<Host, StoreError> {
    let id: String = r.get(0)?;
    let registered: String = r.get(13)?;
    let underlay: Option<String> = r.get(15)?;
    Ok(Host {
        net_prefix: r.get(14)?,
        underlay_ip: match underlay {
            None => None,
            Some(u) => Some(u.parse().map_err(|_| StoreError::Corrupt(id.clone(), format!("underlay address {u}")))?),
        },
        name: r.get(1)?,
        zone_id: r.get(2)?,
        capacity: Resources {
            vcpus: r.get::<_, i64>(3)? as u32,
            memory_mib: r.get::<_, i64>(4)? as u64,
            gpus: r.get::<_, i64>(5)? as u32,
            local_disk_gib: r.get::<_, i64>(6)? as u64,
        },
        gpu_model: r.get(7)?,
        local_disk_category: r.get(8)?,
        simulated: r.get(9)?,
        epoch: r.get::<_, i64>(10)? as u64,
        draining: r.get(11)?,
        credential_hash: r.get(12)?,
        registered_at: parse_ts(&id, &registered)?,
        id,
    })
}

pub(super) fn hosts(conn: &Connection) -> Result<Vec<Host>, StoreError> {
    let mut st = conn.prepare(&format!("SELECT {HOST_COLUMNS} FROM hosts ORDER BY id"))?;
    let mut rows = st.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(host_from_row(r)?);
    }
    Ok(out)
}

pub(super) fn put_hosts(tx: &Connection, hosts: &[Host]) -> Result<(), StoreError> {
    let mut st = tx.prepare_cached(&format!(
        "INSERT INTO hosts ({HOST_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, zone_id = excluded.zone_id, vcpus = excluded.vcpus, \
         memory_mib = excluded.memory_mib, gpus = excluded.gpus, local_disk_gib = excluded.local_disk_gib, \
         gpu_model = excluded.gpu_model, local_disk_category = excluded.local_disk_category, \
         simulated = excluded.simulated, epoch = excluded.epoch, draining = excluded.draining, \
         credential_hash = excluded.credential_hash, registered_at = excluded.registered_at, \
         net_prefix = excluded.net_prefix, underlay_ip = excluded.underlay_ip"
    ))?;
    for h in hosts {
        st.execute(params![
            h.id,
            h.name,
            h.zone_id,
            h.capacity.vcpus as i64,
            h.capacity.memory_mib as i64,
            h.capacity.gpus as i64,
            h.capacity.local_disk_gib as i64,
            h.gpu_model,
            h.local_disk_category,
            h.simulated,
            h.epoch as i64,
            h.draining,
            h.credential_hash,
            ts(&h.registered_at),
            h.net_prefix,
            h.underlay_ip.map(|u| u.to_string()),
        ])?;
    }
    Ok(())
}

pub(super) fn join_tokens(conn: &Connection) -> Result<Vec<JoinToken>, StoreError> {
    let mut st = conn
        .prepare("SELECT id, secret_hash, zone_id, created_at, revoked_at FROM join_tokens ORDER BY created_at, id")?;
    let mut rows = st.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let created: String = r.get(3)?;
        out.push(JoinToken {
            secret_hash: r.get(1)?,
            zone_id: r.get(2)?,
            created_at: parse_ts(&id, &created)?,
            revoked_at: parse_opt_ts(&id, r.get(4)?)?,
            id,
        });
    }
    Ok(out)
}

pub(super) fn put_join_tokens(tx: &Connection, tokens: &[JoinToken]) -> Result<(), StoreError> {
    let mut st = tx.prepare_cached(
        "INSERT INTO join_tokens (id, secret_hash, zone_id, created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT(id) DO UPDATE SET revoked_at = excluded.revoked_at",
    )?;
    for t in tokens {
        st.execute(params![t.id, t.secret_hash, t.zone_id, ts(&t.created_at), t.revoked_at.as_ref().map(ts)])?;
    }
    Ok(())
}

pub(super) fn images(conn: &Connection) -> Result<Vec<Image>, StoreError> {
    let mut st = conn.prepare(
        "SELECT id, name, description, owner_account_id, os_name, os_type, architecture, size_bytes, source, sha256, \
         created_at FROM images WHERE deleted = 0 ORDER BY id",
    )?;
    let mut rows = st.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let source: String = r.get(8)?;
        let created: String = r.get(10)?;
        out.push(Image {
            name: r.get(1)?,
            description: r.get(2)?,
            owner_account_id: r.get(3)?,
            os_name: r.get(4)?,
            os_type: r.get(5)?,
            architecture: r.get(6)?,
            size_bytes: r.get::<_, i64>(7)? as u64,
            source: ImageSource::parse(&source)
                .ok_or_else(|| StoreError::Corrupt(id.clone(), format!("image source {source}")))?,
            sha256: r.get(9)?,
            created_at: parse_ts(&id, &created)?,
            id,
        });
    }
    Ok(out)
}

pub(super) fn put_images(tx: &Connection, images: &[Image]) -> Result<(), StoreError> {
    let mut st = tx.prepare_cached(
        "INSERT INTO images (id, name, description, owner_account_id, os_name, os_type, architecture, size_bytes, \
         source, sha256, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, description = excluded.description, \
         size_bytes = excluded.size_bytes, sha256 = excluded.sha256, deleted = 0",
    )?;
    for i in images {
        st.execute(params![
            i.id,
            i.name,
            i.description,
            i.owner_account_id,
            i.os_name,
            i.os_type,
            i.architecture,
            i.size_bytes as i64,
            i.source.as_str(),
            i.sha256,
            ts(&i.created_at),
        ])?;
    }
    Ok(())
}

const EVENT_COLUMNS: &str = "id, instance_id, account_id, code, cycle, reason, published_at, finished_at";

fn event_from_row(r: &Row<'_>) -> Result<SystemEvent, StoreError> {
    let id: String = r.get(0)?;
    let code: String = r.get(3)?;
    let cycle: String = r.get(4)?;
    let published: String = r.get(6)?;
    Ok(SystemEvent {
        instance_id: r.get(1)?,
        account_id: r.get(2)?,
        kind: EventKind::parse(&code).ok_or_else(|| StoreError::Corrupt(id.clone(), format!("event {code}")))?,
        cycle: EventCycle::parse(&cycle).ok_or_else(|| StoreError::Corrupt(id.clone(), format!("cycle {cycle}")))?,
        reason: r.get(5)?,
        published_at: parse_ts(&id, &published)?,
        finished_at: parse_opt_ts(&id, r.get(7)?)?,
        id,
    })
}

pub(super) fn open_events(conn: &Connection) -> Result<Vec<SystemEvent>, StoreError> {
    let mut st = conn.prepare(&format!(
        "SELECT {EVENT_COLUMNS} FROM system_events WHERE cycle = 'Executing' ORDER BY published_at, id"
    ))?;
    let mut rows = st.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(event_from_row(r)?);
    }
    Ok(out)
}

pub(super) fn events(
    conn: &Connection,
    account_id: &str,
    instance_id: Option<&str>,
) -> Result<Vec<SystemEvent>, StoreError> {
    let mut st = conn.prepare(&format!(
        "SELECT {EVENT_COLUMNS} FROM system_events WHERE account_id = ?1 AND (?2 IS NULL OR instance_id = ?2) \
         ORDER BY published_at DESC, id DESC"
    ))?;
    let mut rows = st.query(params![account_id, instance_id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(event_from_row(r)?);
    }
    Ok(out)
}

pub(super) fn put_events(tx: &Connection, events: &[SystemEvent]) -> Result<(), StoreError> {
    let mut st = tx.prepare_cached(&format!(
        "INSERT INTO system_events ({EVENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT(id) DO UPDATE SET cycle = excluded.cycle, reason = excluded.reason, \
         finished_at = excluded.finished_at"
    ))?;
    for e in events {
        st.execute(params![
            e.id,
            e.instance_id,
            e.account_id,
            e.kind.code(),
            e.cycle.as_str(),
            e.reason,
            ts(&e.published_at),
            e.finished_at.as_ref().map(ts),
        ])?;
    }
    Ok(())
}
