//! The hosts of the region: joining with a token, liveness, drain, evacuation and fencing.
//!
//! A host is in the scheduler's index from the moment it registers. It is closed to new
//! placements while it drains or once it has been silent for longer than the grace
//! ([`HostsSetup::grace`], 40 s by default as Kubernetes' node lease); its instances stay listed
//! and show as impaired, with a system event, until it comes back (they are re-adopted) or the
//! operator evacuates it. Evacuation re-creates each instance on another host of its zone from
//! its image, keeping its id (local disk contents are lost, as with Nova's evacuate without
//! shared storage), a few per tick, and refuses to go on when more than a third of the hosts
//! vanished at once (a partition, not a wave of failures). It bumps the host's epoch: a fenced
//! host that returns is refused until it has dropped what its new intent does not name, so no
//! instance runs on two hosts once the old host talks to the region again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use feiyun_domain::catalog::Catalog;
use feiyun_domain::event::{EventCycle, EventKind, SystemEvent};
use feiyun_domain::host::{Host, HostState, JoinToken};
use feiyun_domain::instance::{Instance, InstanceStatus};
use feiyun_domain::{ids, DomainError, Instant, Resources};
use feiyun_hostproto::{Credential, HostSpec, ProtoError, Registered, PROTOCOL_VERSION};
use feiyun_scheduler::cluster::{HostId, Shape};
use sha2::{Digest, Sha256};

use crate::{store_err, ControlPlane, State};

/// Heartbeats, liveness and evacuation.
#[derive(Debug, Clone, PartialEq)]
pub struct HostsSetup {
    /// How often hosts heartbeat.
    pub heartbeat: Duration,
    /// Silence after which a host is unreachable.
    pub grace: Duration,
    pub evacuation: EvacuationPolicy,
}

impl Default for HostsSetup {
    fn default() -> Self {
        HostsSetup {
            heartbeat: Duration::from_secs(10),
            grace: Duration::from_secs(40),
            evacuation: EvacuationPolicy::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvacuationPolicy {
    /// Evacuate a host automatically once it has been unreachable this long; `None` (the default)
    /// leaves it to the operator (`feiyun host evacuate`).
    pub automatic_after: Option<Duration>,
    /// Instances re-created per host tick (one second), across all hosts being evacuated.
    pub per_tick: usize,
}

impl Default for EvacuationPolicy {
    fn default() -> Self {
        EvacuationPolicy { automatic_after: None, per_tick: 20 }
    }
}

/// A registered host and what the control plane tracks of it.
pub(crate) struct HostSlot {
    pub host: Host,
    /// The host in the scheduler's index (hosts recorded before they registered have none).
    pub cluster_id: Option<HostId>,
    pub last_seen: Instant,
    pub unreachable: bool,
    /// Being evacuated: its instances move elsewhere a few per tick.
    pub evacuating: bool,
    /// The intent revision; long-polls wait for it to move.
    pub revision: u64,
    pub watch: tokio::sync::watch::Sender<u64>,
    /// Tasks sent and not answered yet.
    pub tasks: BTreeMap<String, crate::tasks::Pending>,
    /// Ids of the instances placed on the host (released ones until cleaned).
    pub instances: BTreeSet<String>,
    /// Per instance, the number of the host's last event about it that was applied (see
    /// `InstanceIntent::applied_seq`). In memory only: after a restart the host takes the
    /// region's word until its next report.
    pub applied_seq: HashMap<String, u64>,
}

impl HostSlot {
    /// The instance is no longer on the host (moved or cleaned): nor is the word on its events.
    pub fn remove_instance(&mut self, id: &str) {
        self.instances.remove(id);
        self.applied_seq.remove(id);
    }

    pub fn bump(&mut self) {
        self.revision += 1;
        self.watch.send_replace(self.revision);
    }

    pub fn state(&self) -> HostState {
        if self.unreachable {
            HostState::Unreachable
        } else if self.host.draining {
            HostState::Draining
        } else {
            HostState::Up
        }
    }
}

/// What `feiyun host list` shows of a host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostInfo {
    pub host: Host,
    pub state: HostState,
    pub used: Resources,
    pub instance_ids: Vec<String>,
    pub last_heartbeat: Instant,
    pub evacuating: bool,
}

pub(crate) fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn shape_of(h: &Host) -> Shape {
    Shape {
        capacity: feiyun_scheduler::cluster::Demand {
            cpu_milli: h.capacity.vcpus as u64 * 1000,
            mem_mib: h.capacity.memory_mib,
            gpu_milli: h.capacity.gpus as u64 * 1000,
            disk_gib: h.capacity.local_disk_gib,
        },
        zone: h.zone_id.clone(),
        gpu_model: h.gpu_model.clone(),
        disk_category: h.local_disk_category.clone(),
    }
}

/// Add a host to the in-memory state (and to the scheduler's index if it has capacity), with
/// what is placed on it. Counted as seen at `now`.
pub(crate) fn admit(state: &mut State, catalog: &Catalog, host: Host, instances: BTreeSet<String>, now: Instant) {
    let initial = now.timestamp_millis().max(1) as u64;
    let (watch, _) = tokio::sync::watch::channel(initial);
    let id = host.id.clone();
    let mut slot = HostSlot {
        cluster_id: None,
        last_seen: now,
        unreachable: false,
        evacuating: false,
        // Above any revision an agent saw from an earlier run of the control plane.
        revision: initial,
        watch,
        tasks: BTreeMap::new(),
        instances,
        applied_seq: HashMap::new(),
        host,
    };
    if slot.host.capacity != Resources::ZERO {
        let cid = state.cluster.add_host(shape_of(&slot.host));
        if state.cluster_hosts.len() <= cid as usize {
            state.cluster_hosts.resize(cid as usize + 1, String::new());
        }
        state.cluster_hosts[cid as usize] = id.clone();
        slot.cluster_id = Some(cid);
        for iid in &slot.instances {
            let Some(i) = state.instances.get(iid) else { continue };
            if !i.holds_capacity() {
                continue;
            }
            let Some(t) = catalog.instance_type(&i.instance_type) else {
                tracing::warn!(instance = %i.id, "instance of an unknown type");
                continue;
            };
            if !state.cluster.assign(cid, &crate::instances::demand_of(t), i.deployment_set_id.as_deref()) {
                tracing::warn!(instance = %i.id, host = %id, "instances exceed the host's capacity; host closed to new placements");
                slot.host.draining = true;
            }
        }
        state.cluster.set_enabled(cid, !slot.host.draining);
    }
    state.host_names.insert(slot.host.name.clone(), id.clone());
    if !slot.host.net_prefix.is_empty() {
        state.net_prefixes.insert(slot.host.net_prefix.clone());
    }
    state.hosts.insert(id, slot);
}

fn valid_host_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && !n.starts_with(['-', '.'])
}

impl ControlPlane {
    /// A join token valid until this process ends (the embedded host's).
    pub fn process_join_token(&self) -> String {
        let secret = self.with_rng(ids::secret);
        let token = format!("jt-process.{secret}");
        self.process_tokens.lock().unwrap_or_else(|p| p.into_inner()).push(sha256_hex(&token));
        token
    }

    /// `feiyun host token create`: a join token for hosts (of one zone, if given).
    pub fn create_join_token(&self, zone: Option<&str>) -> Result<(JoinToken, String), DomainError> {
        if let Some(z) = zone {
            if self.setup.region.zone(z).is_none() {
                return Err(DomainError::ZoneNotFound(z.to_string()));
            }
        }
        let id = self.with_rng(|r| ids::new_id("jt", 16, r));
        let secret = self.with_rng(ids::secret);
        let t = JoinToken {
            id: id.clone(),
            secret_hash: sha256_hex(&secret),
            zone_id: zone.map(str::to_string),
            created_at: self.now(),
            revoked_at: None,
        };
        self.store
            .commit(&feiyun_store::WriteSet { join_tokens: std::slice::from_ref(&t), ..Default::default() })
            .map_err(store_err)?;
        self.write().join_tokens.insert(id.clone(), t.clone());
        Ok((t, format!("{id}.{secret}")))
    }

    /// `feiyun host token revoke`: by the token itself or its id. Hosts that joined with it keep
    /// their credentials.
    pub fn revoke_join_token(&self, token_or_id: &str) -> Result<JoinToken, DomainError> {
        let id = token_or_id.split_once('.').map(|(i, _)| i).unwrap_or(token_or_id);
        let mut state = self.write();
        let mut t = state.join_tokens.get(id).cloned().ok_or_else(|| DomainError::JoinTokenNotFound(id.into()))?;
        if t.revoked_at.is_none() {
            t.revoked_at = Some(self.now());
            self.store
                .commit(&feiyun_store::WriteSet { join_tokens: std::slice::from_ref(&t), ..Default::default() })
                .map_err(store_err)?;
            state.join_tokens.insert(id.to_string(), t.clone());
        }
        Ok(t)
    }

    fn check_join_token(&self, state: &State, token: &str) -> Result<Option<String>, ProtoError> {
        let refused = || ProtoError::Unauthorized("the join token is not valid or was revoked".into());
        let hash = sha256_hex(token);
        if self.process_tokens.lock().unwrap_or_else(|p| p.into_inner()).contains(&hash) {
            return Ok(None);
        }
        let (id, secret) = token.split_once('.').ok_or_else(refused)?;
        let t = state.join_tokens.get(id).ok_or_else(refused)?;
        if t.revoked_at.is_some() || t.secret_hash != sha256_hex(secret) {
            return Err(refused());
        }
        Ok(t.zone_id.clone())
    }

    /// Register a host (the host protocol's `register`).
    pub fn register_host(&self, token: &str, spec: HostSpec) -> Result<Registered, ProtoError> {
        if spec.protocol != PROTOCOL_VERSION {
            return Err(ProtoError::UnsupportedVersion(spec.protocol));
        }
        if !valid_host_name(&spec.name) {
            return Err(ProtoError::BadRequest(format!(
                "host name {:?}: 1-64 letters, digits, '-', '.' or '_'",
                spec.name
            )));
        }
        let mut state = self.write();
        let token_zone = self.check_join_token(&state, token)?;
        let zone = match (&token_zone, &spec.zone) {
            (Some(t), Some(s)) if t != s => {
                return Err(ProtoError::BadRequest(format!("the join token is for zone {t}, not {s}")))
            }
            (Some(z), _) | (None, Some(z)) => z.clone(),
            (None, None) => self.setup.region.zones.first().map(|z| z.id.clone()).unwrap_or_default(),
        };
        if self.setup.region.zone(&zone).is_none() {
            return Err(ProtoError::BadRequest(format!(
                "zone {zone} is not a zone of region {}",
                self.setup.region.id
            )));
        }
        if spec.capacity == Resources::ZERO {
            return Err(ProtoError::BadRequest("a host needs some capacity".into()));
        }
        let now = self.now();
        let secret = self.with_rng(ids::secret);
        let existing = state.host_names.get(&spec.name).and_then(|id| state.hosts.get(id)).map(|h| h.host.clone());
        let claimed = existing.is_some();
        let host = match existing {
            // Recorded before hosts registered (a one-machine region's host): claim it.
            Some(h) if h.credential_hash.is_empty() => Host {
                net_prefix: if h.net_prefix.is_empty() {
                    self.free_prefix(&state, &h.id)
                } else {
                    h.net_prefix.clone()
                },
                zone_id: zone,
                capacity: spec.capacity,
                gpu_model: spec.gpu_model,
                local_disk_category: spec.local_disk_category,
                simulated: spec.simulated,
                credential_hash: sha256_hex(&secret),
                registered_at: now,
                underlay_ip: spec.underlay_ip,
                ..h
            },
            Some(h) => {
                tracing::warn!(host = %h.id, name = %spec.name, "registration refused: the name is taken");
                return Err(ProtoError::Conflict(format!(
                    "a host named {} is registered already ({}); its agent joins with the credential it was given",
                    spec.name, h.id
                )));
            }
            None => {
                let id = self.with_rng(ids::host_id);
                Host {
                    net_prefix: self.free_prefix(&state, &id),
                    id,
                    name: spec.name,
                    zone_id: zone,
                    capacity: spec.capacity,
                    gpu_model: spec.gpu_model,
                    local_disk_category: spec.local_disk_category,
                    simulated: spec.simulated,
                    epoch: 1,
                    draining: false,
                    credential_hash: sha256_hex(&secret),
                    registered_at: now,
                    underlay_ip: spec.underlay_ip,
                }
            }
        };
        let pos = self
            .store
            .commit_ordered(&feiyun_store::WriteSet { hosts: std::slice::from_ref(&host), ..Default::default() })
            .map_err(|e| ProtoError::Internal(e.to_string()))?;
        state.hosts.remove(&host.id);
        let registered = Registered {
            host_id: host.id.clone(),
            credential: Credential(format!("{}.{secret}", host.id)),
            zone: host.zone_id.clone(),
            epoch: host.epoch,
            heartbeat_ms: self.setup.hosts.heartbeat.as_millis() as u64,
            grace_ms: self.setup.hosts.grace.as_millis() as u64,
        };
        tracing::info!(host = %host.id, name = %host.name, zone = %host.zone_id, simulated = host.simulated, vcpus = host.capacity.vcpus, memory_mib = host.capacity.memory_mib, "host registered");
        let on_it = if claimed {
            state.instances.values().filter(|i| i.host_id == host.id).map(|i| i.id.clone()).collect()
        } else {
            BTreeSet::new()
        };
        admit(&mut state, &self.catalog, host, on_it, now);
        drop(state);
        // Its credential works only once the registration is durable (group commit).
        self.durable(pos).map_err(|e| ProtoError::Internal(e.to_string()))?;
        Ok(registered)
    }

    /// A network name prefix no registered host has.
    fn free_prefix(&self, state: &State, host_id: &str) -> String {
        crate::net::host_prefix(host_id, &state.net_prefixes)
    }

    /// The host a credential belongs to; any authenticated exchange counts as a sign of life.
    pub(crate) fn authenticate(&self, state: &mut State, credential: &Credential) -> Result<String, ProtoError> {
        let refused = || ProtoError::Unauthorized("the host credential is not valid".into());
        let id = credential.host_id().ok_or_else(refused)?;
        let slot = state.hosts.get(id).ok_or_else(refused)?;
        if slot.host.credential_hash.is_empty() || slot.host.credential_hash != sha256_hex(credential.secret()) {
            tracing::warn!(host = %id, "host API call with a wrong credential");
            return Err(refused());
        }
        let id = id.to_string();
        self.seen(state, &id);
        Ok(id)
    }

    /// A host showed a sign of life: back from unreachable if it was.
    fn seen(&self, state: &mut State, host_id: &str) {
        let now = self.now();
        let Some(slot) = state.hosts.get_mut(host_id) else { return };
        slot.last_seen = now;
        if !slot.unreachable {
            return;
        }
        slot.unreachable = false;
        if slot.evacuating {
            // What is still on it stays and is re-adopted. Moving more now would leave a copy
            // running here: the host drops what its intent no longer names only when its epoch
            // changes, and the epoch changed when the evacuation began.
            slot.evacuating = false;
            tracing::warn!(host = %host_id, left = slot.instances.len(), "host is back during its evacuation: what is left on it stays");
        }
        if let Some(c) = slot.cluster_id {
            state.cluster.set_enabled(c, !slot.host.draining);
        }
        tracing::info!(host = %host_id, "host is reachable again");
        let ids: Vec<String> = slot.instances.iter().cloned().collect();
        let closed: Vec<SystemEvent> = ids
            .iter()
            .filter_map(|i| state.open_events.remove(i))
            .map(|mut e| {
                e.cycle = EventCycle::Executed;
                e.finished_at = Some(now);
                e.reason.push_str("; the host is back and the instance was re-adopted");
                e
            })
            .collect();
        if let Err(e) = self.store.commit(&feiyun_store::WriteSet { events: &closed, ..Default::default() }) {
            tracing::error!(error = %e, "cannot record the end of host events");
        }
    }

    /// The host protocol's heartbeat.
    pub fn host_heartbeat(
        &self,
        credential: &Credential,
        beat: &feiyun_hostproto::Heartbeat,
    ) -> Result<feiyun_hostproto::HeartbeatAck, ProtoError> {
        let mut state = self.write();
        let id = self.authenticate(&mut state, credential)?;
        let slot = state.hosts.get(&id).ok_or_else(|| ProtoError::Internal("host vanished".into()))?;
        if beat.epoch < slot.host.epoch {
            return Err(ProtoError::Fenced { epoch: slot.host.epoch });
        }
        Ok(feiyun_hostproto::HeartbeatAck { epoch: slot.host.epoch, revision: slot.revision })
    }

    /// Every host with its state and what it holds.
    pub fn list_hosts(&self) -> Vec<HostInfo> {
        let state = self.read();
        let mut out: Vec<HostInfo> = state
            .hosts
            .values()
            .map(|s| {
                let used = match s.cluster_id {
                    Some(c) => {
                        let f = state.cluster.free(c);
                        Resources {
                            vcpus: s.host.capacity.vcpus.saturating_sub((f.cpu_milli / 1000) as u32),
                            memory_mib: s.host.capacity.memory_mib.saturating_sub(f.mem_mib),
                            gpus: s.host.capacity.gpus.saturating_sub((f.gpu_milli / 1000) as u32),
                            local_disk_gib: s.host.capacity.local_disk_gib.saturating_sub(f.disk_gib),
                        }
                    }
                    None => Resources::ZERO,
                };
                HostInfo {
                    host: s.host.clone(),
                    state: s.state(),
                    used,
                    instance_ids: s
                        .instances
                        .iter()
                        .filter(|i| {
                            state.instances.get(*i).map(|x| x.status != InstanceStatus::Deleted).unwrap_or(false)
                        })
                        .cloned()
                        .collect(),
                    last_heartbeat: s.last_seen,
                    evacuating: s.evacuating,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.host.zone_id, &a.host.name).cmp(&(&b.host.zone_id, &b.host.name)));
        out
    }

    fn host_id_of(state: &State, id_or_name: &str) -> Result<String, DomainError> {
        if state.hosts.contains_key(id_or_name) {
            return Ok(id_or_name.to_string());
        }
        state
            .hosts
            .values()
            .find(|h| h.host.name == id_or_name)
            .map(|h| h.host.id.clone())
            .ok_or_else(|| DomainError::HostNotFound(id_or_name.to_string()))
    }

    /// `feiyun host drain`: no new placements on the host (or again, with `drain = false`).
    pub fn drain_host(&self, id_or_name: &str, drain: bool) -> Result<HostInfo, DomainError> {
        {
            let mut state = self.write();
            let id = Self::host_id_of(&state, id_or_name)?;
            let slot = state.hosts.get(&id).ok_or_else(|| DomainError::HostNotFound(id.clone()))?;
            let mut host = slot.host.clone();
            host.draining = drain;
            self.store
                .commit(&feiyun_store::WriteSet { hosts: std::slice::from_ref(&host), ..Default::default() })
                .map_err(store_err)?;
            let slot = state.hosts.get_mut(&id).ok_or_else(|| DomainError::HostNotFound(id.clone()))?;
            slot.host = host;
            let (cid, open) = (slot.cluster_id, !slot.unreachable && !drain);
            if let Some(c) = cid {
                state.cluster.set_enabled(c, open);
            }
        }
        self.host_info(id_or_name)
    }

    fn host_info(&self, id_or_name: &str) -> Result<HostInfo, DomainError> {
        self.list_hosts()
            .into_iter()
            .find(|h| h.host.id == id_or_name || h.host.name == id_or_name)
            .ok_or_else(|| DomainError::HostNotFound(id_or_name.to_string()))
    }

    /// `feiyun host evacuate`: fence an unreachable host (bump its epoch) and move its instances
    /// to other hosts, a few per tick. Refused for a host that still answers, and while more
    /// than a third of the hosts are unreachable unless `force`.
    pub fn evacuate_host(&self, id_or_name: &str, force: bool) -> Result<HostInfo, DomainError> {
        {
            let mut state = self.write();
            let id = Self::host_id_of(&state, id_or_name)?;
            self.start_evacuation(&mut state, &id, force)?;
        }
        self.host_info(id_or_name)
    }

    fn start_evacuation(&self, state: &mut State, id: &str, force: bool) -> Result<(), DomainError> {
        let slot = state.hosts.get(id).ok_or_else(|| DomainError::HostNotFound(id.to_string()))?;
        if !slot.unreachable {
            return Err(DomainError::HostReachable(id.to_string()));
        }
        if slot.evacuating {
            return Ok(());
        }
        let (unreachable, total) = (state.hosts.values().filter(|h| h.unreachable).count(), state.hosts.len());
        if !force && unreachable * 3 > total {
            return Err(DomainError::PartitionSuspected { unreachable, total });
        }
        let mut host = slot.host.clone();
        host.epoch += 1;
        self.store
            .commit(&feiyun_store::WriteSet { hosts: std::slice::from_ref(&host), ..Default::default() })
            .map_err(store_err)?;
        tracing::warn!(host = %id, epoch = host.epoch, "host fenced; evacuating its instances");
        if let Some(slot) = state.hosts.get_mut(id) {
            slot.host = host;
            slot.evacuating = true;
            slot.bump();
        }
        Ok(())
    }

    /// Liveness, evacuation and task deadlines; run every second.
    pub fn host_tick(&self) -> Result<(), DomainError> {
        let now = self.now();
        let grace = chrono::Duration::from_std(self.setup.hosts.grace).unwrap_or(chrono::Duration::seconds(40));
        let mut state = self.write();
        let lost: Vec<String> = state
            .hosts
            .values()
            .filter(|s| !s.unreachable && !s.host.credential_hash.is_empty() && now - s.last_seen > grace)
            .map(|s| s.host.id.clone())
            .collect();
        for id in lost {
            self.lose_host(&mut state, &id, now)?;
        }
        if let Some(after) = self.setup.hosts.evacuation.automatic_after {
            let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
            let due: Vec<String> = state
                .hosts
                .values()
                .filter(|s| s.unreachable && !s.evacuating && now - s.last_seen > grace + after)
                .map(|s| s.host.id.clone())
                .collect();
            for id in due {
                if let Err(e) = self.start_evacuation(&mut state, &id, false) {
                    tracing::warn!(host = %id, error = %e, "automatic evacuation not started");
                }
            }
        }
        self.evacuate_some(&mut state, now)?;
        let expired = crate::tasks::expire(&mut state, now);
        drop(state);
        for (task, completion) in expired {
            self.complete_task(task, completion, feiyun_hostproto::TaskOutcome::Failed("interrupted".into()), true);
        }
        Ok(())
    }

    fn lose_host(&self, state: &mut State, id: &str, now: Instant) -> Result<(), DomainError> {
        let Some(slot) = state.hosts.get_mut(id) else { return Ok(()) };
        slot.unreachable = true;
        if let Some(c) = slot.cluster_id {
            state.cluster.set_enabled(c, false);
        }
        tracing::warn!(host = %id, last_seen = %slot.last_seen, "host is unreachable: no new placements on it");
        let reason = format!("the host running the instance stopped answering at {}", slot.last_seen.to_rfc3339());
        let ids: Vec<String> = slot.instances.iter().cloned().collect();
        let mut events = Vec::new();
        for iid in ids {
            let Some(i) = state.instances.get(&iid) else { continue };
            if i.status == InstanceStatus::Deleted || state.open_events.contains_key(&iid) {
                continue;
            }
            events.push(SystemEvent {
                id: self.with_rng(ids::event_id),
                instance_id: iid.clone(),
                account_id: i.account_id.clone(),
                kind: EventKind::HostUnreachable,
                cycle: EventCycle::Executing,
                reason: reason.clone(),
                published_at: now,
                finished_at: None,
            });
        }
        self.store.commit(&feiyun_store::WriteSet { events: &events, ..Default::default() }).map_err(store_err)?;
        for e in events {
            state.open_events.insert(e.instance_id.clone(), e);
        }
        Ok(())
    }

    /// Move up to the policy's number of instances off hosts being evacuated.
    fn evacuate_some(&self, state: &mut State, now: Instant) -> Result<(), DomainError> {
        let mut budget = self.setup.hosts.evacuation.per_tick;
        let hosts: Vec<String> = state.hosts.values().filter(|h| h.evacuating).map(|h| h.host.id.clone()).collect();
        for hid in hosts {
            let ids: Vec<String> =
                state.hosts.get(&hid).map(|h| h.instances.iter().cloned().collect()).unwrap_or_default();
            let mut left = 0;
            for iid in ids {
                let Some(i) = state.instances.get(&iid).cloned() else { continue };
                if i.status == InstanceStatus::Deleted {
                    // Nothing to keep: the fenced host drops its copy when it returns.
                    self.store.mark_cleaned(&iid).map_err(store_err)?;
                    state.forget(&iid);
                    continue;
                }
                if budget == 0 {
                    left += 1;
                    continue;
                }
                match self.redeploy(state, &i, now) {
                    Ok(()) => budget -= 1,
                    Err(e) => {
                        left += 1;
                        tracing::warn!(instance = %iid, error = %e, "cannot evacuate the instance yet");
                    }
                }
            }
            if left == 0 {
                if let Some(h) = state.hosts.get_mut(&hid) {
                    h.evacuating = false;
                    tracing::info!(host = %hid, "evacuation finished");
                }
            }
        }
        Ok(())
    }

    /// Re-create one instance of a fenced host on another host of its zone.
    fn redeploy(&self, state: &mut State, i: &Instance, now: Instant) -> Result<(), DomainError> {
        let t = self
            .catalog
            .instance_type(&i.instance_type)
            .ok_or_else(|| DomainError::InstanceTypeNotFound(i.instance_type.clone()))?;
        let mut ask = self.ask_for(t, Some(i.zone_id.clone()));
        ask.deployment_set = i.deployment_set_id.clone();
        let old = state.hosts.get(&i.host_id).and_then(|h| h.cluster_id);
        // Its own place on the fenced host does not count against its deployment set.
        if let Some(c) = old {
            state.cluster.release(c, &ask.demand, ask.deployment_set.as_deref());
        }
        let plan = match state.cluster.plan(&ask, 1, 1) {
            Ok(p) => p,
            Err(e) => {
                if let Some(c) = old {
                    state.cluster.assign(c, &ask.demand, ask.deployment_set.as_deref());
                }
                return Err(DomainError::Internal(e.to_string()));
            }
        };
        let target = state.cluster_hosts[plan.hosts[0] as usize].clone();
        let mut n = i.revised(now);
        n.host_id = target.clone();
        n.status = InstanceStatus::Pending;
        n.started_at = None;
        let mut events = vec![SystemEvent {
            id: self.with_rng(ids::event_id),
            instance_id: i.id.clone(),
            account_id: i.account_id.clone(),
            kind: EventKind::Redeployed,
            cycle: EventCycle::Executed,
            reason: "the instance's host failed; it was re-created from its image on another host (its system disk and the contents of its data disks were lost)"
                .to_string(),
            published_at: now,
            finished_at: Some(now),
        }];
        if let Some(mut open) = state.open_events.get(&i.id).cloned() {
            open.cycle = EventCycle::Executed;
            open.finished_at = Some(now);
            open.reason.push_str("; the instance was redeployed on another host");
            events.push(open);
        }
        let disks = self.moved_disk_writes(state, i, &target, now);
        let written = self.store.commit(&feiyun_store::WriteSet {
            instances: std::slice::from_ref(&n),
            events: &events,
            storage: Some(&disks),
            ..Default::default()
        });
        if let Err(e) = written {
            if let Some(c) = old {
                state.cluster.assign(c, &ask.demand, ask.deployment_set.as_deref());
            }
            return Err(store_err(e));
        }
        state.cluster.commit(&ask, &plan);
        state.storage.apply(&disks);
        state.open_events.remove(&i.id);
        state.errors.remove(&i.id);
        tracing::info!(instance = %i.id, from = %i.host_id, to = %target, "instance redeployed");
        state.put(n);
        Ok(())
    }

    /// The health ECS reports for an instance (DescribeInstancesFullStatus).
    pub fn instance_health(&self, i: &Instance) -> &'static str {
        let state = self.read();
        if state.open_events.contains_key(&i.id) {
            return "Impaired";
        }
        match i.status {
            InstanceStatus::Running => "Ok",
            InstanceStatus::Pending | InstanceStatus::Starting => "Initializing",
            _ => "NotApplicable",
        }
    }

    /// System events of an account's instances (of one instance), newest first.
    pub fn system_events(&self, account_id: &str, instance_id: Option<&str>) -> Result<Vec<SystemEvent>, DomainError> {
        self.store.system_events(account_id, instance_id).map_err(store_err)
    }

    /// Events still executing for an instance.
    pub fn open_event(&self, instance_id: &str) -> Option<SystemEvent> {
        self.read().open_events.get(instance_id).cloned()
    }
}
