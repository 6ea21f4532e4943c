//! The agent's loop against a real control plane, in-process, on a simulated runtime: joining,
//! reconciling through the protocol, re-adoption with a saved credential, fencing, and region
//! images fetched and checked by their SHA-256.

use std::sync::Arc;
use std::time::Duration;

use feiyun_agent::{Agent, AgentOptions};
use feiyun_control::{BillingSetup, ControlPlane, HostsSetup, Parts, RegionSetup, Sealer, SystemClock};
use feiyun_domain::catalog::Catalog;
use feiyun_domain::image::{Image, ImageSource};
use feiyun_domain::instance::InstanceStatus;
use feiyun_domain::ops::{CreateInstances, Purchase};
use feiyun_domain::region::{Region, Zone};
use feiyun_domain::Resources;
use feiyun_hostproto::{ControlLink, HostSpec, PROTOCOL_VERSION};
use feiyun_runtime::images::ImageStore;
use feiyun_runtime::sim::SimRuntime;
use feiyun_runtime::Runtime;
use feiyun_scheduler::cluster::Policy;
use feiyun_store::{SqliteStore, Store, WriteSet};

const PRICES: &str = include_str!("../../../catalog/prices.toml");
const CATALOG: &str = include_str!("../../../catalog/instance-types.toml");

fn control(dir: &std::path::Path, images: &[Image]) -> Arc<ControlPlane> {
    let store = Arc::new(SqliteStore::open(&dir.join("db")).expect("store"));
    store.commit(&WriteSet { images, ..Default::default() }).expect("images");
    ControlPlane::new(Parts {
        store,
        catalog: Catalog::from_toml(CATALOG).expect("catalog"),
        setup: RegionSetup {
            region: Region {
                id: "cn-local".into(),
                local_name: "l".into(),
                zones: vec![Zone { id: "z".into(), local_name: "z".into() }],
            },
            hosts: HostsSetup { heartbeat: Duration::from_millis(200), ..Default::default() },
            stop_grace: Duration::ZERO,
            policy: Policy::Feiyun,
            billing: BillingSetup::default(),
        },
        blob_dir: Some(dir.join("blobs")),
        clock: Arc::new(SystemClock),
        sealer: Sealer::from_key([3; 32]),
        prices: feiyun_billing::prices::PriceBook::from_toml(PRICES).expect("prices"),
        seed: None,
    })
    .expect("control plane")
}

fn spec(name: &str) -> HostSpec {
    HostSpec {
        name: name.into(),
        zone: Some("z".into()),
        capacity: Resources { vcpus: 16, memory_mib: 64 * 1024, gpus: 0, local_disk_gib: 0 },
        gpu_model: None,
        local_disk_category: None,
        simulated: true,
        protocol: PROTOCOL_VERSION,
        agent_version: "test".into(),
        underlay_ip: None,
    }
}

fn run_one(cp: &ControlPlane, account: &str, image: &str) -> String {
    let s = CreateInstances {
        zone_id: None,
        instance_type: "ecs.g7.large".into(),
        image_id: image.into(),
        amount: 1,
        min_amount: None,
        name: None,
        hostname: None,
        unique_suffix: false,
        description: String::new(),
        user_data: None,
        tags: Vec::new(),
        deployment_set_id: None,
        client_token: None,
        dry_run: false,
        auto_start: true,
        purchase: Purchase::default(),
    };
    cp.create_instances(account, &s).expect("created").ids.remove(0)
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), feiyun_agent::AgentError>>,
}

fn start(
    cp: &Arc<ControlPlane>,
    runtime: Arc<dyn Runtime>,
    images: Option<Arc<ImageStore>>,
    opts: AgentOptions,
) -> Running {
    let link: Arc<dyn ControlLink> = cp.clone();
    let (stop, mut rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(Agent::new(link, runtime, images, opts).run(async move {
        let _ = rx.wait_for(|s| *s).await;
    }));
    Running { stop, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.expect("join").expect("agent ended cleanly");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_runs_readopts_and_drops_what_it_was_not_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = control(dir.path(), &[]);
    let (acct, _) = cp.create_account("alice").expect("account");
    let runtime = Arc::new(SimRuntime::new());
    let opts = AgentOptions {
        host: spec("node-1"),
        token: Some(cp.process_join_token()),
        identity_file: Some(dir.path().join("agent/identity.json")),
        busybox: None,
        network_state: None,
    };
    let agent = start(&cp, runtime.clone(), None, opts.clone());
    wait_for("the host to join", || cp.list_hosts().len() == 1).await;
    let id = run_one(&cp, &acct.id, feiyun_domain::image::BUILTIN_IMAGE_ID);
    wait_for("Running", || cp.instance(&acct.id, &id).map(|i| i.status) == Ok(InstanceStatus::Running)).await;
    assert_eq!(runtime.observe(&id).ok(), Some(feiyun_runtime::Observed::Running));
    // Something the region never gave this host (a leftover of a crash) goes at the next epoch
    // sweep, i.e. when the agent starts again.
    agent.stop().await;
    runtime
        .start(&feiyun_runtime::RuntimeSpec {
            id: "i-leftover".into(),
            hostname: "x".into(),
            vcpus: 1,
            memory_mib: 1,
            baseline_cpu_percent: 0,
            image_rootfs: "/nonexistent".into(),
            user_data: None,
            netns: None,
            authorized_keys: Vec::new(),
        })
        .expect("leftover");
    // The saved credential brings it back as the same host, without a token.
    let again = AgentOptions { token: None, ..opts };
    let agent = start(&cp, runtime.clone(), None, again);
    wait_for("the leftover to go", || runtime.observe("i-leftover").ok() == Some(feiyun_runtime::Observed::Absent))
        .await;
    assert_eq!(cp.list_hosts().len(), 1, "the same host, not a new one");
    assert_eq!(runtime.observe(&id).ok(), Some(feiyun_runtime::Observed::Running), "re-adopted untouched");
    // Cloud Assistant through the loop.
    let (_, inv) = cp
        .run_command(
            &acct.id,
            feiyun_domain::assistant::CommandType::RunShellScript,
            false,
            feiyun_domain::ops::RunScript {
                instance_ids: vec![id.clone()],
                content: b"true".to_vec(),
                name: "t".into(),
                description: String::new(),
                working_dir: String::new(),
                timeout_s: 10,
            },
        )
        .expect("run");
    wait_for("the run to finish", || {
        cp.describe_invocations(&acct.id, &Default::default())
            .iter()
            .find(|v| v.id == inv)
            .is_some_and(|v| v.runs[0].status == feiyun_domain::assistant::RunStatus::Success)
    })
    .await;
    agent.stop().await;
}

fn tar_with(file: &str, text: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, file, text).expect("append");
    b.into_inner().expect("tar")
}

fn image(id: &str, sha256: &str) -> Image {
    Image {
        id: id.into(),
        name: id.into(),
        description: String::new(),
        owner_account_id: None,
        os_name: "linux".into(),
        os_type: "linux".into(),
        architecture: "x86_64".into(),
        size_bytes: 1 << 20,
        source: ImageSource::Region,
        sha256: Some(sha256.into()),
        created_at: chrono::Utc::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_images_are_fetched_and_checked() {
    use sha2::Digest;
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = tar_with("etc/motd", b"from the region\n");
    let good = hex::encode(sha2::Sha256::digest(&archive));
    std::fs::create_dir_all(dir.path().join("blobs/image")).expect("dir");
    std::fs::write(dir.path().join("blobs/image/m-good"), &archive).expect("write");
    std::fs::write(dir.path().join("blobs/image/m-bad"), &archive).expect("write");
    let cp = control(dir.path(), &[image("m-good", &good), image("m-bad", &"0".repeat(64))]);
    let (acct, _) = cp.create_account("alice").expect("account");
    let images = Arc::new(ImageStore::new(dir.path().join("host-images")));
    let runtime = Arc::new(SimRuntime::new());
    let opts = AgentOptions {
        host: spec("node-1"),
        token: Some(cp.process_join_token()),
        identity_file: None,
        busybox: None,
        network_state: None,
    };
    let agent = start(&cp, runtime.clone(), Some(images.clone()), opts);
    wait_for("the host to join", || cp.list_hosts().len() == 1).await;
    let ok = run_one(&cp, &acct.id, "m-good");
    let bad = run_one(&cp, &acct.id, "m-bad");
    wait_for("Running", || cp.instance(&acct.id, &ok).map(|i| i.status) == Ok(InstanceStatus::Running)).await;
    assert_eq!(std::fs::read(images.rootfs("m-good").join("etc/motd")).expect("fetched"), b"from the region\n");
    // An archive that does not match its recorded checksum is refused: the instance does not
    // boot and says why.
    wait_for("the refusal to be reported", || cp.last_error(&bad).is_some_and(|e| e.contains("SHA-256"))).await;
    assert!(images.get("m-bad").is_none());
    assert_ne!(cp.instance(&acct.id, &bad).map(|i| i.status), Ok(InstanceStatus::Running));
    agent.stop().await;
}
