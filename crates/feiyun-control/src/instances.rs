//! Instance commands and queries.

use feiyun_domain::catalog::InstanceTypeSpec;
use feiyun_domain::instance::{ChargeType, Instance, InstanceStatus, PowerState, StoppedMode, UserAction};
use feiyun_domain::ops::{
    valid_name, wildcard_match, CreateInstances, InstanceFilter, InstanceNetwork, InstanceStorage, StopOptions,
};
use feiyun_domain::{ids, DomainError};
use feiyun_scheduler::cluster::{Ask, Demand, Unplaceable};

use crate::{store_err, ControlPlane, State};
use feiyun_store::CommitPos;

/// What RunInstances / CreateInstance made.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub ids: Vec<String>,
    /// The order of a subscription (pay-as-you-go instances have none).
    pub order_id: Option<String>,
    /// Charged up front, in cents (subscriptions).
    pub charged_cents: i64,
}

/// Remaining stock of one instance type in one zone.
#[derive(Debug, Clone, PartialEq)]
pub struct AvailableType {
    pub zone_id: String,
    pub instance_type: String,
    /// How many more instances of the type fit right now.
    pub remaining: u64,
}

/// Host names: 2-64 characters, letters, digits, '.', '-'; no leading or trailing '.' or '-'.
pub fn valid_hostname(h: &str) -> bool {
    h.len() >= 2
        && h.len() <= 64
        && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !h.starts_with(['.', '-'])
        && !h.ends_with(['.', '-'])
        && !h.contains("..")
}

/// What one instance of a type takes from a host, in the scheduler's units.
pub(crate) fn demand_of(t: &InstanceTypeSpec) -> Demand {
    let r = t.resources();
    Demand {
        cpu_milli: r.vcpus as u64 * 1000,
        mem_mib: r.memory_mib,
        gpu_milli: r.gpus as u64 * 1000,
        disk_gib: r.local_disk_gib,
    }
}

impl ControlPlane {
    pub(crate) fn ask_for(&self, t: &InstanceTypeSpec, zone: Option<String>) -> Ask {
        Ask {
            demand: demand_of(t),
            zone,
            gpu_model: t.required_gpu_model().map(str::to_string),
            disk_category: t.required_local_disk().map(str::to_string),
            policy: self.setup.policy,
            deployment_set: None,
        }
    }

    /// Remaining stock per (zone, type), for every type or one.
    pub fn available(
        &self,
        zone: Option<&str>,
        instance_type: Option<&str>,
    ) -> Result<Vec<AvailableType>, DomainError> {
        if let Some(z) = zone {
            if self.setup.region.zone(z).is_none() {
                return Err(DomainError::ZoneNotFound(z.to_string()));
            }
        }
        if let Some(t) = instance_type {
            if self.catalog.instance_type(t).is_none() {
                return Err(DomainError::InstanceTypeNotFound(t.to_string()));
            }
        }
        let mut state = self.write();
        let mut out = Vec::new();
        for z in &self.setup.region.zones {
            if zone.map(|w| w != z.id).unwrap_or(false) {
                continue;
            }
            for t in self.catalog.instance_types() {
                if instance_type.map(|w| w != t.id).unwrap_or(false) {
                    continue;
                }
                let ask = self.ask_for(t, Some(z.id.clone()));
                out.push(AvailableType {
                    zone_id: z.id.clone(),
                    instance_type: t.id.clone(),
                    remaining: state.cluster.slots(&ask),
                });
            }
        }
        Ok(out)
    }

    /// RunInstances / CreateInstance in the account's default network: the new instances, and
    /// what their order charged.
    pub fn create_instances(&self, account_id: &str, spec: &CreateInstances) -> Result<Created, DomainError> {
        self.create_instances_in(account_id, spec, &InstanceNetwork::default())
    }

    /// RunInstances / CreateInstance where `network` says, with default storage.
    pub fn create_instances_in(
        &self,
        account_id: &str,
        spec: &CreateInstances,
        network: &InstanceNetwork,
    ) -> Result<Created, DomainError> {
        self.create_instances_full(account_id, spec, network, &InstanceStorage::default())
    }

    /// RunInstances / CreateInstance where `network` says, with the disks and key pair `storage`
    /// says: the new instances, and what their order charged. Their addresses and disks are
    /// made in the instances' own transaction.
    pub fn create_instances_full(
        &self,
        account_id: &str,
        spec: &CreateInstances,
        network: &InstanceNetwork,
        storage: &InstanceStorage,
    ) -> Result<Created, DomainError> {
        // Decided and committed under the state lock; durable (group commit) after it.
        let (created, pos) = self.create_instances_ordered(account_id, spec, network, storage)?;
        self.durable(pos)?;
        Ok(created)
    }

    fn create_instances_ordered(
        &self,
        account_id: &str,
        spec: &CreateInstances,
        network: &InstanceNetwork,
        storage: &InstanceStorage,
    ) -> Result<(Created, CommitPos), DomainError> {
        let t = self
            .catalog
            .instance_type(&spec.instance_type)
            .ok_or_else(|| DomainError::InstanceTypeNotFound(spec.instance_type.clone()))?;
        if let Some(z) = &spec.zone_id {
            if self.setup.region.zone(z).is_none() {
                return Err(DomainError::ZoneNotFound(z.clone()));
            }
        }
        if spec.amount == 0 || spec.amount > 100 {
            return Err(DomainError::invalid("Amount", "must be 1 to 100"));
        }
        if let Some(h) = &spec.hostname {
            if !valid_hostname(h) {
                return Err(DomainError::invalid("HostName", "2-64 letters, digits, '.' or '-'"));
            }
        }
        if let Some(n) = &spec.name {
            if !valid_name(n) {
                return Err(DomainError::invalid("InstanceName", "2-128 characters starting with a letter"));
            }
        }
        if spec.purchase.charge_type == ChargeType::PostPaid && self.in_arrears(account_id)? {
            return Err(DomainError::AccountArrearage);
        }
        let scope = if spec.auto_start { "RunInstances" } else { "CreateInstance" };
        let mut state = self.write();
        if let Some(made) = state.replayed(account_id, scope, spec.client_token.as_ref())? {
            let ids: Vec<String> = serde_json::from_str(&made).map_err(|e| DomainError::Internal(e.to_string()))?;
            // The same answer as the first time: what that order charged is in the ledger.
            let charged: i64 = self
                .ledger(account_id)?
                .iter()
                .filter(|e| e.kind == feiyun_domain::usage::LedgerKind::Subscription && ids.contains(&e.instance_id))
                .map(|e| -e.amount_cents)
                .sum();
            // What the first request made may not be durable yet: answer once it is.
            let created = Created {
                order_id: if charged > 0 { ids.first().cloned() } else { None },
                ids,
                charged_cents: charged,
            };
            return Ok((created, self.store.last_commit()));
        }
        self.check_launchable(&state, account_id, &spec.image_id)?;
        if let Some(k) = &storage.key_pair_name {
            if !state.storage.key_pairs.contains_key(&(account_id.to_string(), k.clone())) {
                return Err(feiyun_domain::storage::StorageError::KeyPairNotFound(k.clone()).into());
            }
        }
        let image_gib = self.image(&spec.image_id).map(|m| m.disk_gib()).unwrap_or(1);
        let planned = self.plan_storage(&state, account_id, image_gib, &storage.system_disk, &storage.data_disks)?;
        let system_disk = (planned.system_category.as_str(), planned.system_gib);
        let resolved = self.resolve_network(&state, account_id, network, spec.zone_id.as_deref(), spec.amount)?;
        let mut ask = self.ask_for(t, spec.zone_id.clone().or_else(|| resolved.zone().map(str::to_string)));
        if let Some(ds) = &spec.deployment_set_id {
            match state.deployment_sets.get(ds) {
                Some(d) if d.account_id == account_id => ask.deployment_set = Some(ds.clone()),
                _ => return Err(DomainError::DeploymentSetNotFound(ds.clone())),
            }
        }
        let plan = state.cluster.plan(&ask, spec.amount, spec.min_amount.unwrap_or(spec.amount)).map_err(|e| {
            match (e, &spec.zone_id) {
                // A zone whose hosts can never run the type is a different error from a full one.
                (Unplaceable::NoSuitableHost, Some(z)) => {
                    DomainError::InstanceTypeNotInZone { instance_type: t.id.clone(), zone: z.clone() }
                }
                _ => DomainError::NoStock,
            }
        })?;
        let hosts: Vec<String> = plan.hosts.iter().map(|h| state.cluster_hosts[*h as usize].clone()).collect();
        let now = self.now();
        let zone_of =
            |state: &State, host_id: &str| state.hosts.get(host_id).map(|h| h.host.zone_id.clone()).unwrap_or_default();
        let first_zone = hosts.first().map(|h| zone_of(&state, h)).unwrap_or_default();
        let bought =
            self.purchase(account_id, t, system_disk, &spec.purchase, &state, &first_zone, hosts.len(), now)?;
        let new_ids: Vec<String> = hosts.iter().map(|_| self.with_rng(ids::instance_id)).collect();
        let zones: Vec<String> = hosts.iter().map(|h| zone_of(&state, h)).collect();
        let attached = self.plan_network(&state, account_id, &resolved, &zones, &new_ids, now)?;
        if spec.dry_run {
            return Err(DomainError::DryRunOk);
        }
        let several = hosts.len() > 1;
        let mut created = Vec::with_capacity(hosts.len());
        for (n, (host_id, id)) in hosts.iter().zip(new_ids).enumerate() {
            let suffix = |base: &str| {
                if several && spec.unique_suffix {
                    format!("{base}{:03}", n + 1)
                } else {
                    base.to_string()
                }
            };
            let zone_id = zone_of(&state, host_id);
            created.push(Instance {
                name: spec.name.as_deref().map(suffix).unwrap_or_else(|| id.clone()),
                hostname: spec.hostname.as_deref().map(suffix).unwrap_or_else(|| format!("iZ{}Z", &id[2..])),
                description: spec.description.clone(),
                account_id: account_id.to_string(),
                region_id: self.setup.region.id.clone(),
                zone_id,
                host_id: host_id.clone(),
                instance_type: t.id.clone(),
                image_id: spec.image_id.clone(),
                status: InstanceStatus::Pending,
                desired: if spec.auto_start { PowerState::Running } else { PowerState::Stopped },
                stopped_mode: None,
                charge_type: spec.purchase.charge_type,
                billing: bought.0.clone(),
                user_data: spec.user_data.clone(),
                tags: spec.tags.clone(),
                deployment_set_id: spec.deployment_set_id.clone(),
                key_pair_name: storage.key_pair_name.clone(),
                created_at: now,
                started_at: None,
                updated_at: now,
                revision: 1,
                id,
            });
        }
        let ids: Vec<String> = created.iter().map(|i| i.id.clone()).collect();
        let made = serde_json::to_string(&ids).unwrap_or_default();
        let token = crate::token_record(account_id, scope, spec.client_token.as_ref(), &made);
        let usage: Vec<_> = created
            .iter()
            .map(|i| self.usage_event_sized(i, feiyun_domain::usage::EventKind::Create, system_disk))
            .collect();
        let disks: Vec<feiyun_domain::storage::Disk> =
            created.iter().flat_map(|i| self.instance_disks(i, &planned, now)).collect();
        let disk_writes = feiyun_store::StorageWrites {
            usage: disks
                .iter()
                .filter(|d| d.kind == feiyun_domain::storage::DiskKind::Data)
                .map(|d| crate::storage::disk_usage(d, feiyun_domain::usage::StorageEvent::Create))
                .collect(),
            disks,
            ..Default::default()
        };
        let orders: Vec<_> = match &bought.1 {
            Some(q) => created
                .iter()
                .map(|i| Self::subscription_entry(i, q, spec.purchase.period_months.unwrap_or(1), None))
                .collect(),
            None => Vec::new(),
        };
        let pos = self
            .store
            .commit_ordered(&feiyun_store::WriteSet {
                instances: &created,
                token: token.as_ref(),
                usage: &usage,
                ledger: &orders,
                net: Some(&attached.writes),
                storage: Some(&disk_writes),
                ..Default::default()
            })
            .map_err(store_err)?;
        state.net.apply(&attached.writes);
        state.storage.apply(&disk_writes);
        if !state.cluster.commit(&ask, &plan) {
            // Cannot happen under the lock the plan was made in; the instances are durable, so
            // their capacity is taken host by host.
            tracing::error!("a placement plan no longer applied; taking capacity host by host");
            for i in &created {
                if let Some(c) = state.hosts.get(&i.host_id).and_then(|h| h.cluster_id) {
                    state.cluster.assign(c, &ask.demand, ask.deployment_set.as_deref());
                }
            }
        }
        let charged: i64 = orders.iter().map(|o| -o.amount_cents).sum();
        for i in created {
            state.put(i);
        }
        if let Some(t) = token {
            state.remember(t);
        }
        let made: Vec<String> = disk_writes.disks.iter().map(|d| d.id.clone()).collect();
        self.request_uploads(&mut state, &made, now);
        let created =
            Created { order_id: if charged > 0 { ids.first().cloned() } else { None }, ids, charged_cents: charged };
        Ok((created, pos))
    }

    /// One page (`offset`, at most `size`) of the instances of an account matching a filter,
    /// oldest first, lent with how many match in all and a view of their network attachments.
    /// Without a filter, only the page's instances are looked at.
    pub fn with_instances_page<R>(
        &self,
        account_id: &str,
        f: &InstanceFilter,
        offset: usize,
        size: usize,
        then: impl FnOnce(usize, &[&Instance], &crate::InstanceNets<'_>) -> R,
    ) -> R {
        if *f != InstanceFilter::default() {
            return self.with_instances(account_id, f, |all, nets| {
                let page: Vec<&Instance> = all.iter().skip(offset).take(size).copied().collect();
                then(all.len(), &page, nets)
            });
        }
        let state = self.read();
        let page: Vec<&Instance> = state.page_of_account(account_id, offset, size).collect();
        then(state.count_of_account(account_id), &page, &crate::InstanceNets(&state.net))
    }

    /// Instances of an account matching a filter, oldest first.
    pub fn describe_instances(&self, account_id: &str, f: &InstanceFilter) -> Vec<Instance> {
        self.with_instances(account_id, f, |list, _| list.iter().map(|i| (*i).clone()).collect())
    }

    /// Like [`ControlPlane::describe_instances`], lending the matches instead of copying them.
    /// Like [`ControlPlane::describe_instances`], lending the matches instead of copying them,
    /// with a view of their network attachments.
    pub fn with_instances<R>(
        &self,
        account_id: &str,
        f: &InstanceFilter,
        then: impl FnOnce(&[&Instance], &crate::InstanceNets<'_>) -> R,
    ) -> R {
        let state = self.read();
        let matches = |i: &&Instance| {
            i.account_id == account_id
                && i.status != InstanceStatus::Deleted
                && f.statuses.as_ref().map(|s| s.contains(&i.status)).unwrap_or(true)
                && f.zone_id.as_ref().map(|z| &i.zone_id == z).unwrap_or(true)
                && f.instance_type.as_ref().map(|t| &i.instance_type == t).unwrap_or(true)
                && f.instance_type_family
                    .as_ref()
                    .map(|fam| self.catalog.instance_type(&i.instance_type).map(|t| &t.family == fam).unwrap_or(false))
                    .unwrap_or(true)
                && f.name.as_ref().map(|n| wildcard_match(n, &i.name)).unwrap_or(true)
                && f.image_id.as_ref().map(|m| &i.image_id == m).unwrap_or(true)
                && f.tags.iter().all(|(k, v)| {
                    i.tags.iter().any(|t| &t.key == k && v.as_ref().map(|v| &t.value == v).unwrap_or(true))
                })
                && (f.vpc_id.is_none() && f.vswitch_id.is_none() && f.security_group_id.is_none()
                    || state.net.nics.get(&i.id).is_some_and(|n| {
                        f.vpc_id.as_ref().is_none_or(|v| &n.vpc_id == v)
                            && f.vswitch_id.as_ref().is_none_or(|v| &n.vswitch_id == v)
                            && f.security_group_id.as_ref().is_none_or(|g| n.security_group_ids.contains(g))
                    }))
        };
        let out: Vec<&Instance> = match &f.ids {
            Some(ids) => {
                let mut out: Vec<&Instance> =
                    ids.iter().filter_map(|id| state.instances.get(id)).filter(matches).collect();
                out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                out.dedup_by(|a, b| a.id == b.id);
                out
            }
            // Already in order, and only the account's.
            None => state.of_account(account_id).filter(matches).collect(),
        };
        then(&out, &crate::InstanceNets(&state.net))
    }

    pub fn instance(&self, account_id: &str, id: &str) -> Result<Instance, DomainError> {
        self.read().owned(account_id, id).cloned()
    }

    /// Apply one user action to several instances. With `all_or_nothing`, any failure fails the
    /// whole call before anything changes; otherwise each instance gets its own outcome.
    /// Returns (id, previous status, new status) per instance, or the per-instance error.
    #[allow(clippy::type_complexity)]
    pub fn act(
        &self,
        account_id: &str,
        ids: &[String],
        action: UserAction,
        stop: Option<StopOptions>,
        all_or_nothing: bool,
        dry_run: bool,
    ) -> Result<Vec<(String, Result<(InstanceStatus, InstanceStatus), DomainError>)>, DomainError> {
        let in_arrears = action == UserAction::Start && self.in_arrears(account_id)?;
        let mut state = self.write();
        let now = self.now();
        let mut outcomes = Vec::with_capacity(ids.len());
        let mut changed = Vec::new();
        for id in ids {
            let res = match state.owned(account_id, id).ok() {
                None => Err(DomainError::InstanceNotFound(id.clone())),
                Some(i) if action == UserAction::Start && i.billing.lock.is_some() => {
                    Err(DomainError::InstanceLocked(i.billing.lock.map(|l| l.as_str()).unwrap_or("")))
                }
                Some(i) if in_arrears && i.charge_type == ChargeType::PostPaid => Err(DomainError::AccountArrearage),
                Some(i)
                    if action == UserAction::Start
                        && state
                            .storage
                            .disks_of(&i.id)
                            .any(|d| d.status == feiyun_domain::storage::DiskStatus::ReIniting) =>
                {
                    Err(DomainError::IncorrectStatus { status: i.status })
                }
                Some(i)
                    if matches!(action, UserAction::Delete { .. })
                        && i.charge_type == ChargeType::PrePaid
                        && i.billing.expires_at.is_some_and(|e| e > now) =>
                {
                    Err(DomainError::ChargeTypeViolation { charge: "PrePaid" })
                }
                Some(i) => match i.status.apply(i.desired, action) {
                    Err(e) => Err(e.into()),
                    Ok(t) => {
                        let mut n = i.revised(now);
                        n.status = t.status;
                        n.desired = t.desired;
                        if let (UserAction::Stop, Some(s)) = (action, stop) {
                            // Economical mode is for pay-as-you-go only; others stop keeping
                            // their resources, without an error (as ECS does).
                            n.stopped_mode = Some(match i.charge_type {
                                ChargeType::PostPaid => s.mode,
                                ChargeType::PrePaid => StoppedMode::KeepCharging,
                            });
                        }
                        if action == UserAction::Start {
                            n.stopped_mode = None;
                        }
                        let prev = i.status;
                        let cur = n.status;
                        changed.push(n);
                        Ok((prev, cur))
                    }
                },
            };
            if all_or_nothing {
                if let Err(e) = res {
                    return Err(e);
                }
            }
            outcomes.push((id.clone(), res));
        }
        if dry_run {
            return Err(DomainError::DryRunOk);
        }
        if !changed.is_empty() {
            let usage: Vec<_> = changed
                .iter()
                .filter(|i| i.status == InstanceStatus::Deleted)
                .map(|i| self.usage_event(&state, i, feiyun_domain::usage::EventKind::Release))
                .collect();
            let released = state
                .net
                .release_writes(changed.iter().filter(|i| i.status == InstanceStatus::Deleted).map(|i| i.id.as_str()));
            let disks = self.release_disk_writes(
                &state,
                changed.iter().filter(|i| i.status == InstanceStatus::Deleted).map(|i| i.id.as_str()),
                now,
            );
            self.store
                .commit(&feiyun_store::WriteSet {
                    instances: &changed,
                    usage: &usage,
                    net: Some(&released),
                    storage: Some(&disks),
                    ..Default::default()
                })
                .map_err(store_err)?;
            state.storage.apply(&disks);
            for i in changed {
                if i.status == InstanceStatus::Deleted {
                    self.release_capacity(&mut state, &i);
                }
                state.put(i);
            }
        }
        Ok(outcomes)
    }

    /// Give a released instance's capacity back to the scheduler.
    pub(crate) fn release_capacity(&self, state: &mut State, i: &Instance) {
        let cid = state.hosts.get(&i.host_id).and_then(|h| h.cluster_id);
        if let (Some(t), Some(h)) = (self.catalog.instance_type(&i.instance_type), cid) {
            state.cluster.release(h, &demand_of(t), i.deployment_set_id.as_deref());
        }
    }

    /// Console output of an instance: its most recent bytes and when they were written. Read
    /// from its host through the host protocol; waits up to ten seconds for the host.
    pub fn console_output(
        &self,
        account_id: &str,
        id: &str,
    ) -> Result<(Vec<u8>, Option<feiyun_domain::Instant>), DomainError> {
        let i = self.instance(account_id, id)?;
        if i.status == InstanceStatus::Pending {
            return Err(DomainError::IncorrectStatus { status: i.status });
        }
        let wait = std::time::Duration::from_secs(10);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let task = feiyun_hostproto::Task::Console(feiyun_hostproto::ConsoleTask {
            id: self.with_rng(|r| ids::new_id("task", 20, r)),
            instance_id: id.to_string(),
            max_bytes: 64 * 1024,
        });
        let deadline = self.now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(10));
        {
            let mut state = self.write();
            self.enqueue(&mut state, &i.host_id, task, crate::tasks::Completion::Console(tx), deadline)
                .map_err(|_| DomainError::HostUnreachable(id.to_string()))?;
        }
        match rx.recv_timeout(wait) {
            Ok(feiyun_hostproto::TaskOutcome::Console(c)) => Ok((c.bytes, c.modified)),
            Ok(feiyun_hostproto::TaskOutcome::Failed(e)) => Err(DomainError::Internal(format!("console: {e}"))),
            Ok(_) => Err(DomainError::HostUnreachable(id.to_string())),
            Err(_) => Err(DomainError::HostUnreachable(id.to_string())),
        }
    }

    /// The mode an instance stops in when the caller did not say.
    pub fn default_stopped_mode(&self) -> StoppedMode {
        StoppedMode::KeepCharging
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(valid_hostname("web-1.example"));
        assert!(!valid_hostname("a"));
        assert!(!valid_hostname("-web"));
        assert!(!valid_hostname("web_1"));
        assert!(!valid_hostname(&"a".repeat(65)));
    }
}
