//! Deployment sets.

use feiyun_domain::deployment::DeploymentSet;
use feiyun_domain::instance::InstanceStatus;
use feiyun_domain::ops::valid_name;
use feiyun_domain::{ids, DomainError};

use crate::{store_err, ControlPlane};

impl ControlPlane {
    pub fn create_deployment_set(
        &self,
        account_id: &str,
        name: &str,
        description: &str,
    ) -> Result<String, DomainError> {
        if !name.is_empty() && !valid_name(name) {
            return Err(DomainError::invalid("DeploymentSetName", "2-128 characters starting with a letter"));
        }
        let d = DeploymentSet {
            id: self.with_rng(ids::deployment_set_id),
            account_id: account_id.to_string(),
            name: name.to_string(),
            description: description.to_string(),
            created_at: self.now(),
        };
        self.store.put_deployment_set(&d).map_err(store_err)?;
        let id = d.id.clone();
        self.write().deployment_sets.insert(id.clone(), d);
        Ok(id)
    }

    /// Deployment sets of an account with the ids of their live instances, oldest first.
    pub fn describe_deployment_sets(
        &self,
        account_id: &str,
        ids: Option<&[String]>,
        name: Option<&str>,
    ) -> Vec<(DeploymentSet, Vec<String>)> {
        let state = self.read();
        let mut out: Vec<(DeploymentSet, Vec<String>)> = state
            .deployment_sets
            .values()
            .filter(|d| d.account_id == account_id)
            .filter(|d| ids.map(|ids| ids.contains(&d.id)).unwrap_or(true))
            .filter(|d| name.map(|n| n == d.name).unwrap_or(true))
            .map(|d| {
                let members = state
                    .instances
                    .values()
                    .filter(|i| {
                        i.deployment_set_id.as_deref() == Some(d.id.as_str()) && i.status != InstanceStatus::Deleted
                    })
                    .map(|i| i.id.clone())
                    .collect();
                (d.clone(), members)
            })
            .collect();
        out.sort_by(|a, b| (a.0.created_at, &a.0.id).cmp(&(b.0.created_at, &b.0.id)));
        out
    }

    pub fn delete_deployment_set(&self, account_id: &str, id: &str) -> Result<(), DomainError> {
        let mut state = self.write();
        match state.deployment_sets.get(id) {
            Some(d) if d.account_id == account_id => {}
            _ => return Err(DomainError::DeploymentSetNotFound(id.to_string())),
        }
        if state
            .instances
            .values()
            .any(|i| i.deployment_set_id.as_deref() == Some(id) && i.status != InstanceStatus::Deleted)
        {
            return Err(DomainError::DeploymentSetInUse(id.to_string()));
        }
        self.store.delete_deployment_set(id).map_err(store_err)?;
        state.deployment_sets.remove(id);
        Ok(())
    }
}
