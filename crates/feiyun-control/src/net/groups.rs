//! Security groups: CreateSecurityGroup, DescribeSecurityGroups, Authorize/Revoke (ingress and
//! egress), ModifySecurityGroupPolicy, JoinSecurityGroup, LeaveSecurityGroup, DeleteSecurityGroup.
//!
//! A change of a group's rules or policy reaches the hosts with a member of the group (their
//! intent revision is bumped); a change of membership reaches the hosts with an instance of the
//! group's VPC, since any of them may hold a rule naming the group.

use feiyun_domain::net::security_group::{default_rules, MAX_GROUPS_PER_INSTANCE};
use feiyun_domain::net::{Direction, GroupKind, InnerAccess, NetError, Peer, Provisioning, SecurityGroup, SgRule, Vpc};
use feiyun_domain::ops::{NewRule, NewSecurityGroup, NewVpc};
use feiyun_domain::{ids, DomainError, Instant};
use feiyun_store::{NetKey, NetWrites};

use crate::{ControlPlane, State};

/// The most rules a group holds.
pub const MAX_RULES: usize = 200;

/// DescribeSecurityGroups filters, combined with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupFilter {
    pub ids: Option<Vec<String>>,
    pub vpc_id: Option<String>,
    pub name: Option<String>,
    pub kind: Option<GroupKind>,
}

impl State {
    pub(crate) fn owned_group(&self, account_id: &str, id: &str) -> Result<&SecurityGroup, DomainError> {
        self.net
            .groups
            .get(id)
            .filter(|g| g.account_id == account_id)
            .ok_or_else(|| NetError::SecurityGroupNotFound(id.to_string()).into())
    }
}

impl ControlPlane {
    pub(crate) fn new_group(
        &self,
        account_id: &str,
        vpc: &Vpc,
        spec: &NewSecurityGroup,
        default: bool,
        now: Instant,
    ) -> SecurityGroup {
        let rules = if default {
            default_rules()
                .into_iter()
                .map(|spec| SgRule {
                    id: self.with_rng(ids::rule_id),
                    spec,
                    description: String::new(),
                    created_at: now,
                })
                .collect()
        } else {
            Vec::new()
        };
        SecurityGroup {
            id: self.with_rng(ids::security_group_id),
            account_id: account_id.to_string(),
            vpc_id: vpc.id.clone(),
            name: spec.name.clone(),
            description: spec.description.clone(),
            kind: spec.kind,
            inner_access: InnerAccess::Accept,
            is_default: default,
            created_at: now,
            rules,
        }
    }

    /// CreateSecurityGroup: in a VPC of the account, or its default VPC (made if needed).
    pub fn create_security_group(
        &self,
        account_id: &str,
        spec: &NewSecurityGroup,
    ) -> Result<SecurityGroup, DomainError> {
        let mut state = self.write();
        if let Some(id) = state.replayed(account_id, "CreateSecurityGroup", spec.client_token.as_ref())? {
            return state.owned_group(account_id, &id).cloned();
        }
        let now = self.now();
        let mut w = NetWrites::default();
        let vpc = match &spec.vpc_id {
            Some(id) => {
                let v = state.owned_vpc(account_id, id)?;
                if Provisioning::at(v.available_at, now) != Provisioning::Available {
                    return Err(NetError::VpcNotAvailable(id.clone()).into());
                }
                v.clone()
            }
            None => match state.net.default_vpc(account_id) {
                Some(v) => v.clone(),
                None => {
                    let v = self.new_vpc(&state, account_id, &NewVpc::default(), true, now)?;
                    w.vpcs.push(v.clone());
                    v
                }
            },
        };
        let g = self.new_group(account_id, &vpc, spec, false, now);
        w.groups.push(g.clone());
        self.commit_net_created(&mut state, &w, account_id, "CreateSecurityGroup", spec.client_token.as_ref(), &g.id)?;
        tracing::info!(group = %g.id, vpc = %g.vpc_id, "security group created");
        Ok(g)
    }

    /// The account's groups matching a filter, each with its number of member instances, oldest
    /// first.
    pub fn describe_security_groups(&self, account_id: &str, f: &GroupFilter) -> Vec<(SecurityGroup, usize)> {
        let state = self.read();
        let mut out: Vec<(SecurityGroup, usize)> = state
            .net
            .groups
            .values()
            .filter(|g| {
                g.account_id == account_id
                    && f.ids.as_ref().is_none_or(|ids| ids.contains(&g.id))
                    && f.vpc_id.as_ref().is_none_or(|v| &g.vpc_id == v)
                    && f.name.as_ref().is_none_or(|n| &g.name == n)
                    && f.kind.is_none_or(|k| g.kind == k)
            })
            .map(|g| (g.clone(), state.net.group_member_count(&g.id)))
            .collect();
        out.sort_by(|a, b| (a.0.created_at, &a.0.id).cmp(&(b.0.created_at, &b.0.id)));
        out
    }

    /// A group of the account, with the names of the groups its rules name.
    pub fn security_group(
        &self,
        account_id: &str,
        id: &str,
    ) -> Result<(SecurityGroup, Vec<(String, String)>), DomainError> {
        let state = self.read();
        let g = state.owned_group(account_id, id)?.clone();
        let names =
            g.referenced().filter_map(|r| state.net.groups.get(r).map(|x| (x.id.clone(), x.name.clone()))).collect();
        Ok((g, names))
    }

    /// Authorize rules (AuthorizeSecurityGroup, AuthorizeSecurityGroupEgress). A rule equal to one
    /// the group has, or to an earlier one of the call, adds nothing. Returns how many were new.
    pub fn authorize(&self, account_id: &str, group_id: &str, rules: &[NewRule]) -> Result<usize, DomainError> {
        let mut state = self.write();
        let mut g = state.owned_group(account_id, group_id)?.clone();
        for r in rules {
            r.spec.check()?;
            if let Peer::Group(other) = &r.spec.peer {
                let egress = r.spec.direction == Direction::Egress;
                let o = state
                    .net
                    .groups
                    .get(other)
                    .filter(|o| o.account_id == account_id)
                    .ok_or_else(|| NetError::PeerGroupNotFound { id: other.clone(), egress })?;
                if o.vpc_id != g.vpc_id {
                    return Err(NetError::PeerGroupVpcMismatch(other.clone()).into());
                }
            }
        }
        let now = self.now();
        let mut added = 0;
        for r in rules {
            if g.has_rule(&r.spec) {
                continue;
            }
            g.rules.push(SgRule {
                id: self.with_rng(ids::rule_id),
                spec: r.spec.clone(),
                description: r.description.clone(),
                created_at: now,
            });
            added += 1;
        }
        if g.rules.len() > MAX_RULES {
            return Err(NetError::TooManyRules(MAX_RULES).into());
        }
        if added > 0 {
            self.commit_net(&mut state, &NetWrites { groups: vec![g], ..Default::default() })?;
            state.bump_group(group_id);
        }
        Ok(added)
    }

    /// Revoke rules (RevokeSecurityGroup, RevokeSecurityGroupEgress) given as rules or by id.
    /// Rules the group does not have are no error. Returns how many went.
    pub fn revoke(
        &self,
        account_id: &str,
        group_id: &str,
        rules: &[NewRule],
        rule_ids: &[String],
    ) -> Result<usize, DomainError> {
        let mut state = self.write();
        let mut g = state.owned_group(account_id, group_id)?.clone();
        for r in rules {
            r.spec.check()?;
        }
        let before = g.rules.len();
        g.rules.retain(|x| !rules.iter().any(|r| r.spec == x.spec) && !rule_ids.contains(&x.id));
        let removed = before - g.rules.len();
        if removed > 0 {
            self.commit_net(&mut state, &NetWrites { groups: vec![g], ..Default::default() })?;
            state.bump_group(group_id);
        }
        Ok(removed)
    }

    /// ModifySecurityGroupPolicy: whether members of a basic group reach each other.
    pub fn set_inner_access(&self, account_id: &str, group_id: &str, policy: InnerAccess) -> Result<(), DomainError> {
        let mut state = self.write();
        let mut g = state.owned_group(account_id, group_id)?.clone();
        if g.kind == GroupKind::Enterprise {
            return Err(NetError::EnterpriseInnerAccess.into());
        }
        if g.inner_access == policy {
            return Ok(());
        }
        g.inner_access = policy;
        self.commit_net(&mut state, &NetWrites { groups: vec![g], ..Default::default() })?;
        state.bump_group(group_id);
        Ok(())
    }

    /// JoinSecurityGroup (`join`) or LeaveSecurityGroup. Joining a group the instance is in, or
    /// leaving one it is not in, changes nothing.
    pub fn set_membership(
        &self,
        account_id: &str,
        instance_id: &str,
        group_id: &str,
        join: bool,
    ) -> Result<(), DomainError> {
        let mut state = self.write();
        state.owned(account_id, instance_id)?;
        let g = state.owned_group(account_id, group_id)?.clone();
        let mut nic = state
            .net
            .nics
            .get(instance_id)
            .cloned()
            .ok_or_else(|| NetError::InstanceNotNetworked(instance_id.to_string()))?;
        let member = nic.security_group_ids.contains(&g.id);
        if join {
            if member {
                return Ok(());
            }
            if g.vpc_id != nic.vpc_id {
                return Err(NetError::GroupVpcMismatch(g.id).into());
            }
            if nic.security_group_ids.len() >= MAX_GROUPS_PER_INSTANCE {
                return Err(NetError::TooManyGroups(MAX_GROUPS_PER_INSTANCE).into());
            }
            if nic.security_group_ids.iter().filter_map(|x| state.net.groups.get(x)).any(|x| x.kind != g.kind) {
                return Err(NetError::GroupKindsMixed.into());
            }
            nic.security_group_ids.push(g.id.clone());
        } else {
            if !member {
                return Ok(());
            }
            if nic.security_group_ids.len() == 1 {
                return Err(NetError::LastGroup(g.id).into());
            }
            nic.security_group_ids.retain(|x| *x != g.id);
        }
        let vpc = nic.vpc_id.clone();
        self.commit_net(&mut state, &NetWrites { nics: vec![nic], ..Default::default() })?;
        state.bump_vpc(&vpc);
        Ok(())
    }

    /// DeleteSecurityGroup: only a group without members that no other group's rule names.
    pub fn delete_security_group(&self, account_id: &str, group_id: &str) -> Result<(), DomainError> {
        let mut state = self.write();
        state.owned_group(account_id, group_id)?;
        if state.net.group_member_count(group_id) > 0 {
            return Err(NetError::GroupInUse(group_id.into()).into());
        }
        if state.net.groups.values().any(|g| g.id != group_id && g.referenced().any(|r| r == group_id)) {
            return Err(NetError::GroupReferenced(group_id.into()).into());
        }
        self.commit_net(
            &mut state,
            &NetWrites { deleted: vec![NetKey::SecurityGroup(group_id.into())], ..Default::default() },
        )?;
        tracing::info!(group = %group_id, "security group deleted");
        Ok(())
    }
}
