//! Hostile input to the storage actions (disks, snapshots, images, key pairs, and the storage
//! parameters of RunInstances and DescribePrice): every malformed, out-of-range, foreign or
//! conflicting parameter is refused with its documented code, and a refused call changes
//! nothing. And the same actions, called well, answer in their documented shapes.

mod common;

use common::{region, Region1};
use feiyun_domain::instance::AgentEvent;
use feiyun_domain::ops::{DiskFilter, SnapshotFilter};
use feiyun_openapi::sign::pct;
use serde_json::Value;

/// What a refused call must leave as it was.
fn footprint(r: &Region1, accounts: &[&str]) -> String {
    let mut out = format!("{:?}", r.footprint());
    for a in accounts {
        let disks: Vec<String> =
            r.cp.describe_disks(a, &DiskFilter::default())
                .iter()
                .map(|d| {
                    format!(
                        "{} {:?} {} {:?} {} {}",
                        d.id, d.status, d.size_gib, d.attachment, d.name, d.delete_with_instance
                    )
                })
                .collect();
        let snaps: Vec<String> =
            r.cp.describe_snapshots(a, &SnapshotFilter::default())
                .iter()
                .map(|s| format!("{} {:?}", s.id, s.status))
                .collect();
        let keys: Vec<String> = r.cp.describe_key_pairs(a, None, None).iter().map(|k| k.name.clone()).collect();
        let images: Vec<String> =
            r.cp.image_views(a).iter().map(|v| format!("{} {:?} {}", v.image.id, v.status, v.shared)).collect();
        let kps: Vec<String> =
            r.cp.describe_instances(a, &Default::default())
                .iter()
                .map(|i| format!("{}={:?}", i.id, i.key_pair_name))
                .collect();
        out.push_str(&format!("\n{a}: {disks:?} {snaps:?} {keys:?} {images:?} {kps:?}"));
    }
    out
}

fn ok(r: &Region1, action: &str, q: &str) -> Value {
    r.call(action, q).unwrap_or_else(|e| panic!("{action} {q}: {} {}", e.code, e.message))
}

/// A running instance (its host reported it so), a detached disk, and bob with his own disk and
/// key pair.
struct World {
    instance: String,
    system_disk: String,
    disk: String,
    bob: String,
    bob_disk: String,
}

fn world(r: &Region1) -> World {
    let instance = r.instance();
    r.cp.record_event(&instance, AgentEvent::Provisioned);
    r.cp.record_event(&instance, AgentEvent::Booted);
    let system_disk = ok(r, "DescribeDisks", &format!("InstanceId={instance}"))["Disks"]["Disk"][0]["DiskId"]
        .as_str()
        .expect("system disk")
        .to_string();
    let disk = ok(r, "CreateDisk", "ZoneId=cn-local-a&Size=20&DiskCategory=cloud_essd&DiskName=data")["DiskId"]
        .as_str()
        .expect("disk")
        .to_string();
    ok(r, "CreateKeyPair", "KeyPairName=ops");
    let (bob, _) = r.cp.create_account("bob").expect("bob");
    let mut spec = feiyun_domain::ops::NewDisk {
        zone_id: "cn-local-a".into(),
        category: None,
        size_gib: Some(20),
        snapshot_id: None,
        name: String::new(),
        description: String::new(),
        client_token: None,
    };
    spec.size_gib = Some(30);
    let bob_disk = r.cp.create_disk(&bob.id, &spec).expect("bob's disk").id;
    r.cp.create_key_pair(&bob.id, "bobs").expect("bob's key pair");
    World { instance, system_disk, disk, bob: bob.id, bob_disk }
}

#[test]
fn hostile_storage_parameters_are_refused_and_change_nothing() {
    let r = region();
    let w = world(&r);
    let many: Vec<String> = (0..101).map(|n| format!("\"d-{n}\"")).collect();
    let many = pct(&format!("[{}]", many.join(",")));
    let many_instances: Vec<String> = (0..51).map(|n| format!("\"i-{n}\"")).collect();
    let many_instances = pct(&format!("[{}]", many_instances.join(",")));
    let (i, d, sys, bd) = (&w.instance, &w.disk, &w.system_disk, &w.bob_disk);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        // CreateDisk.
        ("CreateDisk", "Size=20".into(), 400, "MissingParameter"),
        ("CreateDisk", "ZoneId=nowhere&Size=20".into(), 404, "InvalidZoneId.NotFound"),
        ("CreateDisk", "ZoneId=cn-local-a&Size=20&DiskCategory=cloud_auto".into(), 400, "InvalidDiskCategory.ValueNotSupported"),
        ("CreateDisk", "ZoneId=cn-local-a&Size=big".into(), 400, "InvalidSize.ValueNotSupported"),
        ("CreateDisk", "ZoneId=cn-local-a&Size=0".into(), 400, "InvalidSize.ValueNotSupported"),
        ("CreateDisk", "ZoneId=cn-local-a&Size=19&DiskCategory=cloud_ssd".into(), 400, "InvalidDataDiskSize.ValueNotSupported"),
        ("CreateDisk", "ZoneId=cn-local-a&Size=2001&DiskCategory=cloud".into(), 400, "InvalidDataDiskSize.ValueNotSupported"),
        ("CreateDisk", "ZoneId=cn-local-a&Size=32769&DiskCategory=cloud_essd".into(), 400, "InvalidDataDiskSize.ValueNotSupported"),
        ("CreateDisk", "ZoneId=cn-local-a".into(), 400, "MissingParameter"),
        ("CreateDisk", "ZoneId=cn-local-a&SnapshotId=s-nope".into(), 404, "InvalidSnapshotId.NotFound"),
        ("CreateDisk", "ZoneId=cn-local-a&Size=20&DiskName=1disk".into(), 400, "InvalidDiskName.Malformed"),
        ("CreateDisk", format!("ZoneId=cn-local-a&Size=20&DiskName={}", "d".repeat(129)), 400, "InvalidDiskName.Malformed"),
        ("CreateDisk", "ZoneId=cn-local-a&Size=20&Description=http%3A%2F%2Fx".into(), 400, "InvalidDescription.Malformed"),
        ("CreateDisk", format!("ZoneId=cn-local-a&Size=20&ClientToken={}", "t".repeat(65)), 400, "InvalidClientToken.ValueNotSupported"),
        // DescribeDisks.
        ("DescribeDisks", "DiskType=boot".into(), 400, "InvalidDiskType.ValueNotSupported"),
        ("DescribeDisks", "Category=floppy".into(), 400, "InvalidCategory.ValueNotSupported"),
        ("DescribeDisks", "Status=Busy".into(), 400, "InvalidStatus.ValueNotSupported"),
        ("DescribeDisks", "DiskIds=d-1".into(), 400, "InvalidParameter.DiskIds"),
        ("DescribeDisks", format!("DiskIds={many}"), 403, "InvalidDiskIds.Malformed"),
        ("DescribeDisks", "PageSize=101".into(), 400, "InvalidParameter"),
        ("DescribeDisks", "NextToken=zz".into(), 400, "InvalidParameter"),
        ("DescribeDisks", "Portable=maybe".into(), 400, "InvalidParameter"),
        // AttachDisk, DetachDisk, DeleteDisk.
        ("AttachDisk", format!("InstanceId={i}"), 400, "MissingParameter"),
        ("AttachDisk", format!("InstanceId={i}&DiskId={bd}"), 404, "InvalidDiskId.NotFound"),
        ("AttachDisk", format!("InstanceId=i-nope&DiskId={d}"), 404, "InvalidInstanceId.NotFound"),
        ("AttachDisk", format!("InstanceId={i}&DiskId={d}&Device=%2Fdev%2Fsda"), 400, "InvalidDevice.Malformed"),
        ("AttachDisk", format!("InstanceId={i}&DiskId={d}&Device=%2Fdev%2Fxvda"), 400, "InvalidDevice.Malformed"),
        ("AttachDisk", format!("InstanceId={i}&DiskId={sys}"), 403, "DiskNotPortable"),
        ("DetachDisk", format!("InstanceId={i}&DiskId={d}"), 403, "DependencyViolation"),
        ("DetachDisk", format!("InstanceId={i}&DiskId={sys}"), 403, "DiskNotPortable"),
        ("DetachDisk", format!("InstanceId={i}&DiskId={bd}"), 404, "InvalidDiskId.NotFound"),
        ("DeleteDisk", format!("DiskId={sys}"), 403, "DiskNotPortable"),
        ("DeleteDisk", format!("DiskId={bd}"), 404, "InvalidDiskId.NotFound"),
        // ResizeDisk, ResetDisk, ModifyDiskAttribute.
        ("ResizeDisk", format!("DiskId={d}"), 400, "MissingParameter"),
        ("ResizeDisk", format!("DiskId={d}&NewSize=10"), 403, "InvalidDiskSize.TooSmall"),
        ("ResizeDisk", format!("DiskId={d}&NewSize=20"), 403, "InvalidDiskSize.TooSmall"),
        ("ResizeDisk", format!("DiskId={d}&NewSize=40000"), 403, "InvalidDiskSize.TooLarge"),
        ("ResizeDisk", format!("DiskId={sys}&NewSize=3000"), 403, "InvalidDiskSize.TooLarge"),
        ("ResizeDisk", format!("DiskId={d}&NewSize=30&Type=sideways"), 400, "InvalidParam.Type"),
        ("ResizeDisk", format!("DiskId={d}&NewSize=30&Type=online"), 403, "IncorrectDiskStatus"),
        ("ResizeDisk", format!("DiskId={bd}&NewSize=40"), 404, "InvalidDiskId.NotFound"),
        ("ResetDisk", format!("DiskId={d}&SnapshotId=s-nope"), 404, "InvalidSnapshotId.NotFound"),
        ("ModifyDiskAttribute", format!("DiskId={d}"), 400, "NoAttributeToModify"),
        ("ModifyDiskAttribute", format!("DiskId={d}&DiskName=-x"), 400, "InvalidDiskName.Malformed"),
        ("ModifyDiskAttribute", format!("DiskId={sys}&DeleteWithInstance=false"), 403, "DiskNotPortable"),
        ("ModifyDiskAttribute", format!("DiskId={bd}&DiskName=mine"), 404, "InvalidDiskId.NotFound"),
        ("ModifyDiskAttribute", "DiskName=mine".into(), 400, "MissingParameter"),
        // Snapshots.
        ("CreateSnapshot", format!("DiskId={d}"), 403, "IncorrectDiskStatus.NeverAttached"),
        ("CreateSnapshot", format!("DiskId={sys}"), 403, "IncorrectDiskType.NotSupport"),
        ("CreateSnapshot", format!("DiskId={d}&SnapshotName=auto1"), 400, "InvalidSnapshotName.Malformed"),
        ("CreateSnapshot", format!("DiskId={bd}"), 404, "InvalidDiskId.NotFound"),
        ("DescribeSnapshots", "Status=done".into(), 404, "InvalidStatus.NotFound"),
        ("DescribeSnapshots", "SourceDiskType=floppy".into(), 404, "InvalidSourceDiskType"),
        ("DescribeSnapshots", format!("SnapshotIds={many}"), 403, "InvalidSnapshotIds.Malformed"),
        ("DeleteSnapshot", "SnapshotId=s-nope".into(), 404, "InvalidSnapshotId.NotFound"),
        // Images.
        ("CreateImage", "ImageName=mine".into(), 400, "MissingParameter"),
        ("CreateImage", "InstanceId=i-nope".into(), 404, "InvalidInstanceId.NotFound"),
        ("CreateImage", "SnapshotId=s-nope".into(), 404, "InvalidSnapshotId.NotFound"),
        ("CreateImage", format!("InstanceId={i}&ImageName=aliyun-x"), 400, "InvalidImageName.Malformed"),
        ("CreateImage", format!("InstanceId={i}&ImageName=1x"), 400, "InvalidImageName.Malformed"),
        ("DeleteImage", "ImageId=img".into(), 404, "InvalidImageId.NotFound"),
        ("DeleteImage", "ImageId=m-nope".into(), 404, "InvalidImageId.NotFound"),
        ("ImportImage", "ImageName=x1".into(), 400, "MissingParameter"),
        ("ImportImage", "DiskDeviceMapping.1.OSSObject=rootfs.tar".into(), 400, "InvalidRegion.NotSupport"),
        ("ImportImage", "DiskDeviceMapping.1.OSSObject=rootfs.tar&DiskDeviceMapping.1.Format=ISO".into(), 400, "InvalidImageFormat.Malformed"),
        ("ImportImage", "DiskDeviceMapping.1.OSSObject=rootfs.tar&OSType=windows".into(), 400, "InvalidOSType.Malformed"),
        ("ImportImage", "DiskDeviceMapping.1.OSSObject=rootfs.tar&Architecture=sparc".into(), 400, "InvalidArchitecture.Malformed"),
        ("ImportImage", "DiskDeviceMapping.1.OSSObject=rootfs.tar&DiskDeviceMapping.1.OSSBucket=..".into(), 400, "InvalidOSSBucket.NotFound"),
        ("ModifyImageSharePermission", "ImageId=img&AddAccount.1=1".into(), 404, "InvalidImageId.NotFound"),
        ("ModifyImageSharePermission", "ImageId=img&AddAccount.11=1".into(), 400, "InvalidParameter"),
        ("DescribeImageSharePermission", "ImageId=img".into(), 404, "InvalidImageId.NotFound"),
        // Key pairs.
        ("CreateKeyPair", "KeyPairName=1ops".into(), 400, "InvalidKeyPairName.Malformed"),
        ("CreateKeyPair", "KeyPairName=ops".into(), 400, "KeyPair.AlreadyExist"),
        ("CreateKeyPair", "".into(), 400, "MissingParameter"),
        ("ImportKeyPair", "KeyPairName=k2&PublicKeyBody=ssh-rsa+junk".into(), 400, "InvalidPublicKeyBody.Malformed"),
        ("ImportKeyPair", "KeyPairName=k2".into(), 400, "MissingParameter"),
        ("DeleteKeyPairs", "KeyPairNames=ops".into(), 400, "InvalidKeyPairNames.ValueNotSupported"),
        ("DeleteKeyPairs", "KeyPairNames=%5B%5D".into(), 400, "InvalidKeyPairNames.ValueNotSupported"),
        ("AttachKeyPair", format!("KeyPairName=bobs&InstanceIds={}", pct(&format!("[\"{i}\"]"))), 400, "InvalidKeyPairName.NotFound"),
        ("AttachKeyPair", format!("KeyPairName=ops&InstanceIds={i}"), 400, "InvalidInstanceIds.ValueNotSupported"),
        ("AttachKeyPair", format!("KeyPairName=ops&InstanceIds={many_instances}"), 400, "InvalidInstanceIds.ValueNotSupported"),
        ("AttachKeyPair", format!("KeyPairName=ops&InstanceIds={}", pct(&format!("[\"{i}\",\"{i}\"]"))), 400, "InvalidParameter"),
        ("DetachKeyPair", format!("KeyPairName=nope&InstanceIds={}", pct(&format!("[\"{i}\"]"))), 400, "InvalidKeyPairName.NotFound"),
        // The storage of RunInstances.
        ("RunInstances", "ImageId=img&InstanceType=ecs.g7.large&SystemDisk.Category=floppy".into(), 400, "InvalidSystemDiskCategory.ValueNotSupported"),
        ("RunInstances", "ImageId=img&InstanceType=ecs.g7.large&SystemDisk.Size=big".into(), 400, "InvalidSystemDiskSize.ValueNotSupported"),
        ("RunInstances", "ImageId=img&InstanceType=ecs.g7.large&SystemDisk.Size=10".into(), 404, "InvalidSystemDiskSize.LessThanMinSize"),
        ("RunInstances", "ImageId=img&InstanceType=ecs.g7.large&SystemDisk.Size=5000".into(), 400, "InvalidSystemDiskSize.ValueNotSupported"),
        ("RunInstances", "ImageId=img&InstanceType=ecs.g7.large&SystemDisk.DiskName=-s".into(), 400, "InvalidDiskName.Malformed"),
        ("RunInstances", "ImageId=img&InstanceType=ecs.g7.large&DataDisk.1.Size=5".into(), 400, "InvalidDataDiskSize.ValueNotSupported"),
        ("RunInstances", "ImageId=img&InstanceType=ecs.g7.large&DataDisk.1.Size=x".into(), 400, "InvalidDataDiskSize.ValueNotSupported"),
        ("RunInstances", "ImageId=img&InstanceType=ecs.g7.large&DataDisk.1.Size=20&DataDisk.1.Category=floppy".into(), 400, "InvalidDataDiskCategory.ValueNotSupported"),
        ("RunInstances", "ImageId=img&InstanceType=ecs.g7.large&DataDisk.1.Size=20&DataDisk.1.Device=%2Fdev%2Fsda".into(), 400, "InvalidDataDevice.Malformed"),
        ("RunInstances", "ImageId=img&InstanceType=ecs.g7.large&DataDisk.1.Size=20&DataDisk.1.Device=%2Fdev%2Fvdc&DataDisk.2.Size=20&DataDisk.2.Device=%2Fdev%2Fvdc".into(), 403, "InvalidDevice.InUse"),
        ("RunInstances", "ImageId=img&InstanceType=ecs.g7.large&DataDisk.1.SnapshotId=s-nope".into(), 404, "InvalidDataDiskSnapshotId.NotFound"),
        ("RunInstances", "ImageId=img&InstanceType=ecs.g7.large&DataDisk.1.DeleteWithInstance=maybe&DataDisk.1.Size=20".into(), 400, "InvalidParameter"),
        ("RunInstances", "ImageId=img&InstanceType=ecs.g7.large&DataDisk.1.Description=h".into(), 400, "MissingParameter"),
        ("RunInstances", "ImageId=img&InstanceType=ecs.g7.large&KeyPairName=bobs".into(), 400, "InvalidKeyPairName.NotFound"),
        ("DescribePrice", "InstanceType=ecs.g7.large&DataDisk.1.Size=5".into(), 400, "InvalidDataDiskSize.ValueNotSupported"),
        ("DescribePrice", "InstanceType=ecs.g7.large&DataDisk.1.Size=20&DataDisk.1.Category=floppy".into(), 400, "InvalidDataDiskCategory.ValueNotSupported"),
        ("DescribePrice", "InstanceType=ecs.g7.large&DataDisk.1.Size=20&PriceUnit=Month".into(), 400, "InvalidParameter"),
        ("DescribePrice", "InstanceType=ecs.g7.large&SystemDisk.Size=10".into(), 404, "InvalidSystemDiskSize.LessThanMinSize"),
        ("DescribePrice", "InstanceType=ecs.g7.large&ImageId=m-nope".into(), 404, "InvalidImageId.NotFound"),
    ];
    let accounts = [r.account.as_str(), w.bob.as_str()];
    let before = footprint(&r, &accounts);
    for (action, q, status, code) in cases {
        match r.call(action, &q) {
            Ok(v) => panic!("{action} {q}: accepted: {v}"),
            Err(e) => assert_eq!((e.status, e.code.as_str()), (status, code), "{action} {q}: {}", e.message),
        }
        assert_eq!(footprint(&r, &accounts), before, "{action} {q} changed something");
    }
}

#[test]
fn storage_calls_made_well_answer_in_their_shapes() {
    let r = region();
    let w = world(&r);
    // The disk, in DescribeDisks' documented order.
    let v = ok(&r, "DescribeDisks", &format!("DiskIds={}", pct(&format!("[\"{}\"]", w.disk))));
    assert_eq!(v["TotalCount"], 1);
    let d = &v["Disks"]["Disk"][0];
    let keys: Vec<&String> = d.as_object().expect("object").keys().collect();
    assert_eq!(keys.first().map(|k| k.as_str()), Some("DiskChargeType"));
    assert_eq!(keys.last().map(|k| k.as_str()), Some("DiskId"));
    assert_eq!(
        (d["Status"].as_str(), d["Size"].as_u64(), d["Type"].as_str()),
        (Some("Available"), Some(20), Some("data"))
    );
    assert_eq!(
        (d["Category"].as_str(), d["Portable"].as_bool(), d["DiskName"].as_str()),
        (Some("cloud_essd"), Some(true), Some("data"))
    );
    let sys = ok(&r, "DescribeDisks", &format!("InstanceId={}&DiskType=system", w.instance));
    let s = &sys["Disks"]["Disk"][0];
    assert_eq!(
        (s["Device"].as_str(), s["Size"].as_u64(), s["Status"].as_str()),
        (Some("/dev/xvda"), Some(40), Some("In_use"))
    );
    assert_eq!(s["InstanceId"].as_str(), Some(w.instance.as_str()));
    // Token paging walks every disk once.
    for n in 0..11 {
        ok(&r, "CreateDisk", &format!("ZoneId=cn-local-a&Size=20&DiskName=d{n}"));
    }
    let first = ok(&r, "DescribeDisks", "MaxResults=10");
    let token = first["NextToken"].as_str().expect("token").to_string();
    assert!(!token.is_empty());
    let second = ok(&r, "DescribeDisks", &format!("MaxResults=10&NextToken={token}"));
    assert_eq!(first["Disks"]["Disk"].as_array().map(Vec::len), Some(10));
    assert_eq!(second["Disks"]["Disk"].as_array().map(Vec::len), Some(3), "13 disks of alice");
    // Attaching: Attaching until the host reports it attached.
    ok(&r, "AttachDisk", &format!("InstanceId={}&DiskId={}&DeleteWithInstance=true", w.instance, w.disk));
    let d = ok(&r, "DescribeDisks", &format!("DiskIds={}", pct(&format!("[\"{}\"]", w.disk))));
    assert_eq!(d["Disks"]["Disk"][0]["Status"].as_str(), Some("Attaching"));
    assert_eq!(d["Disks"]["Disk"][0]["DeleteWithInstance"].as_bool(), Some(true));
    assert_eq!(ok(&r, "DescribeDisks", "Status=Attaching")["TotalCount"], 1);
    // Resize of a detached disk; attributes.
    let d2 = ok(&r, "CreateDisk", "ZoneId=cn-local-a&Size=20")["DiskId"].as_str().expect("id").to_string();
    ok(&r, "ResizeDisk", &format!("DiskId={d2}&NewSize=64"));
    ok(&r, "ModifyDiskAttribute", &format!("DiskId={d2}&DiskName=logs&Description=web+logs&DeleteWithInstance=true"));
    let m = ok(&r, "DescribeDisks", "DiskName=logs");
    let m = &m["Disks"]["Disk"][0];
    assert_eq!(
        (m["Size"].as_u64(), m["Description"].as_str(), m["Category"].as_str()),
        (Some(64), Some("web logs"), Some("cloud"))
    );
    ok(&r, "DeleteDisk", &format!("DiskId={d2}"));

    // Key pairs: the created pair's private key once, the fingerprint in DescribeKeyPairs.
    let kp = ok(&r, "CreateKeyPair", "KeyPairName=deploy");
    assert!(kp["PrivateKeyBody"].as_str().expect("pem").starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(kp["KeyPairId"].as_str().expect("id").starts_with("kp-"));
    let listed = ok(&r, "DescribeKeyPairs", "KeyPairName=dep*&IncludePublicKey=true");
    let k = &listed["KeyPairs"]["KeyPair"][0];
    assert_eq!(k["KeyPairFingerPrint"], kp["KeyPairFingerPrint"]);
    assert!(k["PublicKey"].as_str().expect("public key").starts_with("ssh-rsa "));
    assert!(k.get("PrivateKeyBody").is_none());
    let body = pct("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDjcXjLNmMaUjlNhAYdA5Qqp6IfwVnf6RapYY+We1Nj2 test@feiyun");
    let imported = ok(&r, "ImportKeyPair", &format!("KeyPairName=laptop&PublicKeyBody={body}"));
    assert_eq!(imported["KeyPairFingerPrint"].as_str(), Some("bc:4c:e8:1f:5f:fc:70:7f:85:e9:e5:8f:aa:0d:0c:b2"));
    let ids = pct(&format!("[\"{}\",\"i-nope\"]", w.instance));
    let att = ok(&r, "AttachKeyPair", &format!("KeyPairName=laptop&InstanceIds={ids}"));
    assert_eq!((att["TotalCount"].as_str(), att["FailCount"].as_str()), (Some("2"), Some("1")));
    assert_eq!(att["Results"]["Result"][0]["Code"].as_str(), Some("200"));
    assert_eq!(att["Results"]["Result"][1]["Code"].as_str(), Some("InvalidInstanceId.NotFound"));
    let inst = ok(&r, "DescribeInstances", &format!("InstanceIds={}", pct(&format!("[\"{}\"]", w.instance))));
    assert_eq!(inst["Instances"]["Instance"][0]["KeyPairName"].as_str(), Some("laptop"));
    ok(&r, "DeleteKeyPairs", &format!("KeyPairNames={}", pct("[\"deploy\",\"never\"]")));
    assert_eq!(ok(&r, "DescribeKeyPairs", "")["TotalCount"], 2);

    // DescribeImages: the system image; none of the account's own yet.
    assert_eq!(ok(&r, "DescribeImages", "ImageOwnerAlias=self")["TotalCount"], 0);
    assert!(ok(&r, "DescribeImages", "ImageOwnerAlias=system")["TotalCount"].as_u64().is_some_and(|n| n >= 1));
    let img = ok(&r, "CreateImage", &format!("InstanceId={}&ImageName=web", w.instance))["ImageId"]
        .as_str()
        .expect("image")
        .to_string();
    assert_eq!(ok(&r, "DescribeImages", "ImageOwnerAlias=self")["TotalCount"], 0, "Available ones by default");
    let mine = ok(&r, "DescribeImages", "ImageOwnerAlias=self&Status=Creating");
    assert_eq!(mine["Images"]["Image"][0]["ImageId"].as_str(), Some(img.as_str()));
    assert_eq!(mine["Images"]["Image"][0]["Progress"].as_str(), Some("0%"));
    ok(&r, "ModifyImageSharePermission", &format!("ImageId={img}&AddAccount.1={}", w.bob));
    let shares = ok(&r, "DescribeImageSharePermission", &format!("ImageId={img}"));
    assert_eq!(shares["Accounts"]["Account"][0]["AliyunId"].as_str(), Some(w.bob.as_str()));
    let e = r.call("DeleteImage", &format!("ImageId={img}")).expect_err("shared");
    assert_eq!(e.code, "ImageUseShared");

    // DescribePrice with data disks: the quote RunInstances' charge follows. By the hour:
    // g7.large 0.5296 + 50 GiB cloud_ssd 0.0695 + 100 GiB cloud_efficiency 0.049 = 0.6481.
    let q = "InstanceType=ecs.g7.large&SystemDisk.Category=cloud_ssd&SystemDisk.Size=50\
             &DataDisk.1.Category=cloud_efficiency&DataDisk.1.Size=100";
    let price = ok(&r, "DescribePrice", q);
    assert_eq!(price["PriceInfo"]["Price"]["TradePrice"].as_f64(), Some(0.6481));
    let details = price["PriceInfo"]["Price"]["DetailInfos"]["DetailInfo"].as_array().expect("details");
    let resources: Vec<&str> = details.iter().filter_map(|d| d["Resource"].as_str()).collect();
    assert_eq!(resources, ["instanceType", "systemDisk", "dataDisk", "bandwidth"]);
    let run = ok(&r, "RunInstances", &format!("ImageId=img&{q}"));
    let id = run["InstanceIdSets"]["InstanceIdSet"][0].as_str().expect("id");
    let prices = r.cp.prices().expect("prices");
    let t = r.cp.catalog().instance_type("ecs.g7.large").expect("type");
    let ev = r.cp.usage_events(Some(&r.account), 0).expect("usage");
    let e = ev.iter().find(|e| e.instance_id == id).expect("event");
    let storage = r.cp.storage_usage(Some(&r.account)).expect("storage");
    let data: i128 =
        r.cp.describe_disks(&r.account, &DiskFilter { instance_id: Some(id.to_string()), ..Default::default() })
            .iter()
            .filter(|d| d.kind == feiyun_domain::storage::DiskKind::Data)
            .map(|d| {
                assert!(storage.iter().any(|u| u.resource_id == d.id && u.gib == d.size_gib));
                prices.disk_hour(d.category.as_str(), d.size_gib).expect("priced")
            })
            .sum();
    let charged =
        r.cp.instance_hour(t).expect("hour") + prices.disk_hour(&e.disk_category, e.disk_gib).expect("priced") + data;
    assert_eq!(charged, 648_100, "the hourly rate charged is the quote's");
}
