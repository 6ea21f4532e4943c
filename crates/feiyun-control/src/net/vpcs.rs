//! VPCs and vSwitches: CreateVpc, DescribeVpcs, ModifyVpcAttribute, DeleteVpc, CreateVSwitch,
//! DescribeVSwitches, DeleteVSwitch.

use std::collections::BTreeSet;

use feiyun_domain::net::cidr::{self, Ipv4Net};
use feiyun_domain::net::{NetError, Provisioning, VSwitch, Vpc};
use feiyun_domain::ops::{ClientToken, NewVSwitch, NewVpc};
use feiyun_domain::{ids, DomainError, Instant};
use feiyun_store::{NetKey, NetWrites};

use crate::{store_err, token_record, ControlPlane, State};

/// DescribeVpcs filters, combined with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VpcFilter {
    pub ids: Option<Vec<String>>,
    pub name: Option<String>,
    pub is_default: Option<bool>,
}

/// DescribeVSwitches filters, combined with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VSwitchFilter {
    pub ids: Option<Vec<String>>,
    pub vpc_id: Option<String>,
    pub zone_id: Option<String>,
    pub name: Option<String>,
    pub is_default: Option<bool>,
}

impl State {
    pub(crate) fn owned_vpc(&self, account_id: &str, id: &str) -> Result<&Vpc, DomainError> {
        self.net
            .vpcs
            .get(id)
            .filter(|v| v.account_id == account_id)
            .ok_or_else(|| NetError::VpcNotFound(id.to_string()).into())
    }

    pub(crate) fn owned_vswitch(&self, account_id: &str, id: &str) -> Result<&VSwitch, DomainError> {
        self.net
            .vswitches
            .get(id)
            .filter(|v| v.account_id == account_id)
            .ok_or_else(|| NetError::VSwitchNotFound(id.to_string()).into())
    }
}

impl ControlPlane {
    /// The lowest VNI above every one in use, or the lowest free one once the top is reached.
    pub(crate) fn next_vni(&self, state: &State) -> Result<u32, DomainError> {
        let used: BTreeSet<u32> = state.net.vpcs.values().map(|v| v.vni).collect();
        let max = self.network.max_vni();
        let next = used.last().map(|v| v + 1).unwrap_or(1);
        if next <= max {
            return Ok(next);
        }
        (1..=max).find(|v| !used.contains(v)).ok_or_else(|| NetError::VpcQuota.into())
    }

    pub(crate) fn new_vpc(
        &self,
        state: &State,
        account_id: &str,
        spec: &NewVpc,
        default: bool,
        now: Instant,
    ) -> Result<Vpc, DomainError> {
        let block = spec.cidr.unwrap_or_else(feiyun_domain::net::vpc::default_vpc_block);
        if !cidr::vpc_block_allowed(&block) {
            return Err(NetError::CidrMalformed(block.to_string()).into());
        }
        Ok(Vpc {
            id: self.with_rng(ids::vpc_id),
            account_id: account_id.to_string(),
            name: spec.name.clone(),
            description: spec.description.clone(),
            cidr: block,
            vni: self.next_vni(state)?,
            is_default: default,
            created_at: now,
            available_at: if default { now } else { now + self.provisioning() },
        })
    }

    pub(crate) fn provisioning(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.network.provisioning).unwrap_or_default()
    }

    /// Write network records and apply them in memory.
    pub(crate) fn commit_net(&self, state: &mut State, w: &NetWrites) -> Result<(), DomainError> {
        self.store.commit(&feiyun_store::WriteSet { net: Some(w), ..Default::default() }).map_err(store_err)?;
        state.net.apply(w);
        Ok(())
    }

    /// Write network records, with the `ClientToken` of the create that made `made` in the same
    /// transaction, and apply both in memory.
    pub(crate) fn commit_net_created(
        &self,
        state: &mut State,
        w: &NetWrites,
        account_id: &str,
        scope: &str,
        ct: Option<&ClientToken>,
        made: &str,
    ) -> Result<(), DomainError> {
        let token = token_record(account_id, scope, ct, made);
        self.store
            .commit(&feiyun_store::WriteSet { net: Some(w), token: token.as_ref(), ..Default::default() })
            .map_err(store_err)?;
        state.net.apply(w);
        if let Some(t) = token {
            state.remember(t);
        }
        Ok(())
    }

    /// CreateVpc: Pending for a moment, then Available. A retry with the same `ClientToken`
    /// answers the VPC the first request made.
    pub fn create_vpc(&self, account_id: &str, spec: &NewVpc, dry_run: bool) -> Result<Vpc, DomainError> {
        let mut state = self.write();
        if let Some(id) = state.replayed(account_id, "CreateVpc", spec.client_token.as_ref())? {
            return state.owned_vpc(account_id, &id).cloned();
        }
        let vpc = self.new_vpc(&state, account_id, spec, false, self.now())?;
        if dry_run {
            return Err(DomainError::DryRunOk);
        }
        let w = NetWrites { vpcs: vec![vpc.clone()], ..Default::default() };
        self.commit_net_created(&mut state, &w, account_id, "CreateVpc", spec.client_token.as_ref(), &vpc.id)?;
        tracing::info!(vpc = %vpc.id, cidr = %vpc.cidr, vni = vpc.vni, "VPC created");
        Ok(vpc)
    }

    /// The account's VPCs matching a filter, each with its vSwitches, oldest first.
    pub fn describe_vpcs(&self, account_id: &str, f: &VpcFilter) -> Vec<(Vpc, Vec<String>)> {
        let state = self.read();
        let mut out: Vec<(Vpc, Vec<String>)> = state
            .net
            .vpcs
            .values()
            .filter(|v| {
                v.account_id == account_id
                    && f.ids.as_ref().is_none_or(|ids| ids.contains(&v.id))
                    && f.name.as_ref().is_none_or(|n| &v.name == n)
                    && f.is_default.is_none_or(|d| v.is_default == d)
            })
            .map(|v| {
                let vsw = state.net.vswitches.values().filter(|s| s.vpc_id == v.id).map(|s| s.id.clone()).collect();
                (v.clone(), vsw)
            })
            .collect();
        out.sort_by(|a, b| (a.0.created_at, &a.0.id).cmp(&(b.0.created_at, &b.0.id)));
        out
    }

    pub fn vpc(&self, account_id: &str, id: &str) -> Result<(Vpc, Vec<String>), DomainError> {
        let state = self.read();
        let v = state.owned_vpc(account_id, id)?.clone();
        let vsw = state.net.vswitches.values().filter(|s| s.vpc_id == v.id).map(|s| s.id.clone()).collect();
        Ok((v, vsw))
    }

    /// ModifyVpcAttribute: name and description.
    pub fn modify_vpc(
        &self,
        account_id: &str,
        id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<(), DomainError> {
        let mut state = self.write();
        let mut v = state.owned_vpc(account_id, id)?.clone();
        if let Some(n) = name {
            v.name = n;
        }
        if let Some(d) = description {
            v.description = d;
        }
        self.commit_net(&mut state, &NetWrites { vpcs: vec![v], ..Default::default() })
    }

    /// DeleteVpc: only an available VPC without vSwitches or security groups.
    pub fn delete_vpc(&self, account_id: &str, id: &str, dry_run: bool) -> Result<(), DomainError> {
        let mut state = self.write();
        let v = state.owned_vpc(account_id, id)?;
        if Provisioning::at(v.available_at, self.now()) != Provisioning::Available {
            return Err(NetError::VpcNotAvailable(id.into()).into());
        }
        if state.net.vswitches.values().any(|s| s.vpc_id == id) {
            return Err(NetError::VpcHasVSwitches(id.into()).into());
        }
        if state.net.groups.values().any(|g| g.vpc_id == id) {
            return Err(NetError::VpcHasGroups(id.into()).into());
        }
        if dry_run {
            return Err(DomainError::DryRunOk);
        }
        self.commit_net(&mut state, &NetWrites { deleted: vec![NetKey::Vpc(id.into())], ..Default::default() })?;
        tracing::info!(vpc = %id, "VPC deleted");
        Ok(())
    }

    /// The checks of a new vSwitch in `vpc` against the vSwitches it has and those about to be
    /// added.
    pub(crate) fn check_vswitch_block(
        state: &State,
        vpc: &Vpc,
        block: &Ipv4Net,
        planned: &[VSwitch],
    ) -> Result<(), DomainError> {
        if !cidr::VSWITCH_PREFIX.contains(&block.prefix_len()) {
            return Err(NetError::CidrMalformed(block.to_string()).into());
        }
        if !cidr::within(&vpc.cidr, block) {
            return Err(NetError::CidrOutsideVpc(block.to_string()).into());
        }
        let others = state.net.vswitches.values().chain(planned).filter(|s| s.vpc_id == vpc.id);
        if others.into_iter().any(|s| cidr::overlaps(&s.cidr, block)) {
            return Err(NetError::CidrOverlapped(block.to_string()).into());
        }
        Ok(())
    }

    /// CreateVSwitch: in an available VPC of the account, inside its block, overlapping none of
    /// its vSwitches.
    pub fn create_vswitch(&self, account_id: &str, spec: &NewVSwitch, dry_run: bool) -> Result<VSwitch, DomainError> {
        if self.setup.region.zone(&spec.zone_id).is_none() {
            return Err(DomainError::ZoneNotFound(spec.zone_id.clone()));
        }
        let mut state = self.write();
        if let Some(id) = state.replayed(account_id, "CreateVSwitch", spec.client_token.as_ref())? {
            return state.owned_vswitch(account_id, &id).cloned();
        }
        let now = self.now();
        let vpc = state.owned_vpc(account_id, &spec.vpc_id)?;
        if Provisioning::at(vpc.available_at, now) != Provisioning::Available {
            return Err(NetError::VpcNotAvailable(vpc.id.clone()).into());
        }
        Self::check_vswitch_block(&state, vpc, &spec.cidr, &[])?;
        if dry_run {
            return Err(DomainError::DryRunOk);
        }
        let vsw = VSwitch {
            id: self.with_rng(ids::vswitch_id),
            account_id: account_id.to_string(),
            vpc_id: vpc.id.clone(),
            zone_id: spec.zone_id.clone(),
            cidr: spec.cidr,
            name: spec.name.clone(),
            description: spec.description.clone(),
            is_default: false,
            created_at: now,
            available_at: now + self.provisioning(),
        };
        let w = NetWrites { vswitches: vec![vsw.clone()], ..Default::default() };
        self.commit_net_created(&mut state, &w, account_id, "CreateVSwitch", spec.client_token.as_ref(), &vsw.id)?;
        tracing::info!(vswitch = %vsw.id, vpc = %vsw.vpc_id, cidr = %vsw.cidr, "vSwitch created");
        Ok(vsw)
    }

    /// The account's vSwitches matching a filter, each with the number of addresses still free,
    /// oldest first.
    pub fn describe_vswitches(&self, account_id: &str, f: &VSwitchFilter) -> Vec<(VSwitch, u64)> {
        let state = self.read();
        let mut out: Vec<(VSwitch, u64)> = state
            .net
            .vswitches
            .values()
            .filter(|s| {
                s.account_id == account_id
                    && f.ids.as_ref().is_none_or(|ids| ids.contains(&s.id))
                    && f.vpc_id.as_ref().is_none_or(|v| &s.vpc_id == v)
                    && f.zone_id.as_ref().is_none_or(|z| &s.zone_id == z)
                    && f.name.as_ref().is_none_or(|n| &s.name == n)
                    && f.is_default.is_none_or(|d| s.is_default == d)
            })
            .map(|s| (s.clone(), cidr::usable_count(&s.cidr).saturating_sub(state.net.used_in(s) as u64)))
            .collect();
        out.sort_by(|a, b| (a.0.created_at, &a.0.id).cmp(&(b.0.created_at, &b.0.id)));
        out
    }

    pub fn vswitch(&self, account_id: &str, id: &str) -> Result<(VSwitch, u64), DomainError> {
        let state = self.read();
        let s = state.owned_vswitch(account_id, id)?;
        Ok((s.clone(), cidr::usable_count(&s.cidr).saturating_sub(state.net.used_in(s) as u64)))
    }

    /// DeleteVSwitch: only an available vSwitch without instances.
    pub fn delete_vswitch(&self, account_id: &str, id: &str, dry_run: bool) -> Result<(), DomainError> {
        let mut state = self.write();
        let s = state.owned_vswitch(account_id, id)?;
        if Provisioning::at(s.available_at, self.now()) != Provisioning::Available {
            return Err(NetError::VSwitchNotAvailable(id.into()).into());
        }
        if state.net.nics.values().any(|n| n.vswitch_id == id) {
            return Err(NetError::VSwitchInUse(id.into()).into());
        }
        if dry_run {
            return Err(DomainError::DryRunOk);
        }
        self.commit_net(&mut state, &NetWrites { deleted: vec![NetKey::VSwitch(id.into())], ..Default::default() })?;
        tracing::info!(vswitch = %id, "vSwitch deleted");
        Ok(())
    }

    /// The status of a VPC or vSwitch that becomes available at `at`.
    pub fn provisioning_at(&self, at: Instant) -> Provisioning {
        Provisioning::at(at, self.now())
    }
}
