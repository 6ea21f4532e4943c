//! Elastic IP addresses: AllocateEipAddress, AssociateEipAddress, UnassociateEipAddress,
//! ReleaseEipAddress, DescribeEipAddresses. Addresses come from the region's pool, lowest free
//! first; an instance has at most one public address (its own or an EIP).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use feiyun_domain::net::{NetError, PublicIp, PublicIpKind};
use feiyun_domain::ops::NewEip;
use feiyun_domain::{ids, DomainError};
use feiyun_store::{NetKey, NetWrites};

use crate::{ControlPlane, State};

/// DescribeEipAddresses filters, combined with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EipFilter {
    pub ids: Option<Vec<String>>,
    pub ip: Option<Ipv4Addr>,
    pub instance_id: Option<String>,
    /// `Some(true)`: associated ones only; `Some(false)`: free ones only.
    pub in_use: Option<bool>,
}

impl State {
    pub(crate) fn owned_eip(&self, account_id: &str, id: &str) -> Result<&PublicIp, DomainError> {
        self.net
            .public_ips
            .get(id)
            .filter(|p| p.account_id == account_id && p.kind == PublicIpKind::Eip)
            .ok_or_else(|| NetError::EipNotFound(id.to_string()).into())
    }
}

impl ControlPlane {
    /// The lowest address of the pool neither held nor in `planned`.
    pub(crate) fn free_public_ip(
        &self,
        state: &State,
        planned: &BTreeSet<Ipv4Addr>,
        eip: bool,
    ) -> Result<Ipv4Addr, DomainError> {
        if self.network.eip_pool.is_none() {
            return Err(NetError::NoPublicPool.into());
        }
        self.network
            .pool()
            .find(|ip| !state.net.pool_used().contains(ip) && !planned.contains(ip))
            .ok_or_else(|| NetError::PublicPoolExhausted { eip }.into())
    }

    /// AllocateEipAddress.
    pub fn allocate_eip(&self, account_id: &str, spec: &NewEip) -> Result<PublicIp, DomainError> {
        let mut state = self.write();
        if let Some(id) = state.replayed(account_id, "AllocateEipAddress", spec.client_token.as_ref())? {
            return state.owned_eip(account_id, &id).cloned();
        }
        let ip = self.free_public_ip(&state, &BTreeSet::new(), true)?;
        let p = PublicIp {
            allocation_id: self.with_rng(ids::eip_id),
            ip,
            account_id: account_id.to_string(),
            kind: PublicIpKind::Eip,
            instance_id: None,
            name: spec.name.clone(),
            description: spec.description.clone(),
            bandwidth_mbps: spec.bandwidth_mbps,
            charge: spec.charge,
            created_at: self.now(),
        };
        let w = NetWrites { public_ips: vec![p.clone()], ..Default::default() };
        let ct = spec.client_token.as_ref();
        self.commit_net_created(&mut state, &w, account_id, "AllocateEipAddress", ct, &p.allocation_id)?;
        tracing::info!(eip = %p.allocation_id, ip = %p.ip, "EIP allocated");
        Ok(p)
    }

    /// AssociateEipAddress: a free EIP with an instance that has no public address.
    pub fn associate_eip(&self, account_id: &str, allocation_id: &str, instance_id: &str) -> Result<(), DomainError> {
        let mut state = self.write();
        let eip = state.owned_eip(account_id, allocation_id)?.clone();
        let i = state.owned(account_id, instance_id)?.clone();
        if eip.instance_id.is_some() {
            return Err(NetError::EipInUse(allocation_id.into()).into());
        }
        if !state.net.nics.contains_key(instance_id) {
            return Err(NetError::InstanceNotNetworked(instance_id.into()).into());
        }
        if state.net.public_of(instance_id).is_some() {
            return Err(NetError::InstanceHasPublicAddress(instance_id.into()).into());
        }
        let p = PublicIp { instance_id: Some(instance_id.to_string()), ..eip };
        self.commit_net(&mut state, &NetWrites { public_ips: vec![p], ..Default::default() })?;
        if let Some(slot) = state.hosts.get_mut(&i.host_id) {
            slot.bump();
        }
        Ok(())
    }

    /// UnassociateEipAddress: from the instance it is associated with.
    pub fn unassociate_eip(&self, account_id: &str, allocation_id: &str, instance_id: &str) -> Result<(), DomainError> {
        let mut state = self.write();
        let eip = state.owned_eip(account_id, allocation_id)?.clone();
        if eip.instance_id.as_deref() != Some(instance_id) {
            return Err(NetError::EipNotInUse(allocation_id.into()).into());
        }
        let host = state.instances.get(instance_id).map(|i| i.host_id.clone());
        let p = PublicIp { instance_id: None, ..eip };
        self.commit_net(&mut state, &NetWrites { public_ips: vec![p], ..Default::default() })?;
        if let Some(slot) = host.and_then(|h| state.hosts.get_mut(&h)) {
            slot.bump();
        }
        Ok(())
    }

    /// ReleaseEipAddress: only an unassociated one.
    pub fn release_eip(&self, account_id: &str, allocation_id: &str) -> Result<(), DomainError> {
        let mut state = self.write();
        let eip = state.owned_eip(account_id, allocation_id)?;
        if eip.instance_id.is_some() {
            return Err(NetError::EipInUse(allocation_id.into()).into());
        }
        self.commit_net(
            &mut state,
            &NetWrites { deleted: vec![NetKey::PublicIp(allocation_id.into())], ..Default::default() },
        )?;
        tracing::info!(eip = %allocation_id, "EIP released");
        Ok(())
    }

    /// The account's EIPs matching a filter, oldest first.
    pub fn describe_eips(&self, account_id: &str, f: &EipFilter) -> Vec<PublicIp> {
        let state = self.read();
        let mut out: Vec<PublicIp> = state
            .net
            .public_ips
            .values()
            .filter(|p| {
                p.account_id == account_id
                    && p.kind == PublicIpKind::Eip
                    && f.ids.as_ref().is_none_or(|ids| ids.contains(&p.allocation_id))
                    && f.ip.is_none_or(|ip| p.ip == ip)
                    && f.instance_id.as_ref().is_none_or(|i| p.instance_id.as_ref() == Some(i))
                    && f.in_use.is_none_or(|u| p.instance_id.is_some() == u)
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.allocation_id).cmp(&(b.created_at, &b.allocation_id)));
        out
    }

    /// The VPC attributes of an instance, for DescribeInstances: its interface and its public
    /// address (`None` for an instance from before networks).
    pub fn instance_network(&self, instance_id: &str) -> Option<(feiyun_domain::net::Nic, Option<PublicIp>)> {
        let state = self.read();
        let nic = state.net.nics.get(instance_id)?.clone();
        Some((nic, state.net.public_of(instance_id).cloned()))
    }
}
