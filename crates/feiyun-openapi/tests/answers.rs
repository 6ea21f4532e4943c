//! Answers as clients see them: the field order of real ECS answers, the same answer in JSON and
//! XML, and starting an instance its host has not set up yet.

mod common;

use std::time::{Duration, Instant};

use common::{region, ECS};
use feiyun_openapi::params::form_decode;
use feiyun_openapi::{dispatch, route, Ctx, Format, Params};
use serde_json::Value;

const RECORDED: &str = include_str!("../../../tests/e2e/data/recorded_field_order.json");

/// The objects at `path` ("." is the answer itself; `a/b[]` is every item of the list `b` in `a`).
fn objects_at<'a>(answer: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut level = vec![answer];
    if path == "." {
        return level;
    }
    for segment in path.split('/') {
        let (name, items) = match segment.strip_suffix("[]") {
            Some(n) => (n, true),
            None => (segment, false),
        };
        level = level
            .into_iter()
            .filter_map(|v| v.get(name))
            .flat_map(|v| if items { v.as_array().map(|a| a.iter().collect()).unwrap_or_default() } else { vec![v] })
            .collect();
    }
    level
}

/// Every field of the recorded answer is in ours, in the recorded order (ours may have more).
fn assert_recorded_order(action: &str, answer: &Value) {
    let recorded: Value = serde_json::from_str(RECORDED).expect("recorded orders");
    let orders = recorded[action].as_object().expect("recorded action");
    for (path, want) in orders {
        let want: Vec<&str> = want.as_array().expect("list").iter().filter_map(Value::as_str).collect();
        for obj in objects_at(answer, path) {
            let got: Vec<&String> = obj.as_object().expect("object").keys().collect();
            let at: Vec<usize> = want
                .iter()
                .map(|k| {
                    got.iter().position(|g| g == k).unwrap_or_else(|| panic!("{action} {path}: no {k} in {got:?}"))
                })
                .collect();
            assert!(at.windows(2).all(|w| w[0] < w[1]), "{action} {path}: {got:?} is not in the order of {want:?}");
        }
    }
}

#[test]
fn describe_instances_and_attribute_answer_in_the_recorded_order() {
    let r = region();
    r.call("RunInstances", "ImageId=img&InstanceType=ecs.g7.large&Tag.1.Key=k&Tag.1.Value=v").expect("run");
    let id = r.instance();
    let all = r.call("DescribeInstances", "").expect("describe");
    assert_eq!(all["TotalCount"], 2);
    assert_recorded_order("DescribeInstances", &all);
    let one = r.call("DescribeInstanceAttribute", &format!("InstanceId={id}")).expect("attribute");
    assert_eq!(one["InstanceId"], id.as_str());
    assert_recorded_order("DescribeInstanceAttribute", &one);
    // The request id sits where ECS puts it.
    let keys: Vec<&String> = one.as_object().expect("object").keys().collect();
    assert_eq!(keys[3], "RequestId");
}

/// The written answer of an ECS call.
fn answer(r: &common::Region1, action: &str, query: &str, format: Format) -> Vec<u8> {
    let params = Params::from_pairs(form_decode(query).expect("query")).expect("params");
    let ctx =
        Ctx { cp: &r.cp, account_id: &r.account, params: &params, endpoint: "localhost", request_id: "RID-1", format };
    dispatch(route(ECS, action).expect("route"), &ctx).expect("answer")
}

#[test]
fn the_same_answer_in_xml() {
    let r = region();
    let id = r.instance();
    let xml = String::from_utf8(answer(&r, "DescribeInstances", "RegionId=cn-local", Format::Xml)).expect("UTF-8");
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><DescribeInstancesResponse><Instances><Instance>")
    );
    assert!(xml.contains(&format!("<InstanceId>{id}</InstanceId>")), "{xml}");
    assert!(xml.contains("</Instances><TotalCount>1</TotalCount><RequestId>RID-1</RequestId><PageSize>10</PageSize>"));
    // Lists repeat their items under their wrapper; an empty one is an empty element.
    assert!(xml.contains("<SecurityGroupIds><SecurityGroupId>sg-") && xml.contains("<OperationLocks/>"), "{xml}");
    assert!(xml.ends_with("</DescribeInstancesResponse>"));
    let json: Value = serde_json::from_slice(&answer(&r, "DescribeRegions", "", Format::Json)).expect("JSON");
    assert_eq!(json["RequestId"], "RID-1");
    let xml = String::from_utf8(answer(&r, "DescribeRegions", "", Format::Xml)).expect("UTF-8");
    assert_eq!(
        xml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DescribeRegionsResponse><RequestId>RID-1</RequestId><Regions><Region>\
         <RegionId>cn-local</RegionId><LocalName>local</LocalName><RegionEndpoint>localhost</RegionEndpoint>\
         <Status>available</Status></Region></Regions></DescribeRegionsResponse>"
    );
}

#[test]
fn an_instance_its_host_has_not_set_up_is_not_ready_to_start() {
    // No agent runs here: every new instance stays Pending.
    let r = region();
    let started = Instant::now();
    let created = r.call("CreateInstance", "ImageId=img&InstanceType=ecs.g7.large").expect("create");
    let waited = started.elapsed();
    // CreateInstance waits a bounded while for the host, then answers anyway.
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(10), "{waited:?}");
    let id = created["InstanceId"].as_str().expect("id").to_string();
    let e = r.call("StartInstance", &format!("InstanceId={id}")).expect_err("pending");
    assert_eq!((e.status, e.code.as_str()), (403, "InstanceNotReady"));
    assert_eq!(e.message, "The specified instance is not ready for use.");
    let e = r.call("StartInstances", &format!("InstanceId.1={id}")).expect_err("pending");
    assert_eq!(e.code, "InstanceNotReady");
    let each = r.call("StartInstances", &format!("InstanceId.1={id}&BatchOptimization=SuccessFirst")).expect("each");
    assert_eq!(each["InstanceResponses"]["InstanceResponse"][0]["Code"], "InstanceNotReady");
    // Stopping it is still the generic refusal.
    let e = r.call("StopInstance", &format!("InstanceId={id}")).expect_err("pending");
    assert_eq!(e.code, "IncorrectInstanceStatus");
}
