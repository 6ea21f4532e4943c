//! The identity an agent keeps between runs follows its host's epoch.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use feiyun_agent::{Agent, AgentOptions, Identity};
use feiyun_domain::Resources;
use feiyun_hostproto::{
    ControlLink, Credential, Heartbeat, HeartbeatAck, HostSpec, Intent, ProtoError, Registered, Report,
    PROTOCOL_VERSION,
};
use feiyun_runtime::sim::SimRuntime;

/// A control plane that fenced the host (epoch 2) right after it joined (epoch 1).
struct FencedRegion;

#[async_trait::async_trait]
impl ControlLink for FencedRegion {
    async fn register(&self, _: &str, _: HostSpec) -> Result<Registered, ProtoError> {
        Ok(Registered {
            host_id: "h-1".into(),
            credential: Credential("h-1.secret".into()),
            zone: "z".into(),
            epoch: 1,
            heartbeat_ms: 100,
            grace_ms: 1000,
        })
    }
    async fn heartbeat(&self, _: &Credential, beat: Heartbeat) -> Result<HeartbeatAck, ProtoError> {
        if beat.epoch < 2 {
            return Err(ProtoError::Fenced { epoch: 2 });
        }
        Ok(HeartbeatAck { epoch: 2, revision: 1 })
    }
    async fn intent(&self, _: &Credential, since: u64, wait: Duration) -> Result<Intent, ProtoError> {
        if since == 1 {
            tokio::time::sleep(wait.min(Duration::from_millis(50))).await;
        }
        Ok(Intent {
            host_id: "h-1".into(),
            epoch: 2,
            revision: 1,
            instances: Vec::new(),
            tasks: Vec::new(),
            network: None,
            disks: Vec::new(),
            snapshots: Vec::new(),
        })
    }
    async fn report(&self, _: &Credential, _: Report) -> Result<(), ProtoError> {
        Ok(())
    }
    async fn fetch_image(&self, _: &Credential, id: &str, _: &Path) -> Result<u64, ProtoError> {
        Err(ProtoError::NotFound(id.into()))
    }
}

#[tokio::test]
async fn a_fenced_host_keeps_its_new_epoch_for_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let identity = dir.path().join("identity.json");
    let opts = AgentOptions {
        host: HostSpec {
            name: "node-1".into(),
            zone: None,
            capacity: Resources { vcpus: 4, memory_mib: 4096, gpus: 0, local_disk_gib: 0 },
            gpu_model: None,
            local_disk_category: None,
            simulated: true,
            protocol: PROTOCOL_VERSION,
            agent_version: "test".into(),
            underlay_ip: None,
        },
        token: Some("jt-1.secret".into()),
        identity_file: Some(identity.clone()),
        network_state: None,
        busybox: None,
    };
    let agent = Agent::new(Arc::new(FencedRegion), Arc::new(SimRuntime::new()), None, opts);
    agent.run(tokio::time::sleep(Duration::from_millis(400))).await.expect("ran");
    let kept: Identity = serde_json::from_slice(&std::fs::read(&identity).expect("identity")).expect("json");
    assert_eq!((kept.host_id.as_str(), kept.epoch), ("h-1", 2));
}
