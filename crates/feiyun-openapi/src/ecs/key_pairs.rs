//! SSH key pairs: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPairs, AttachKeyPair,
//! DetachKeyPair.

use feiyun_domain::storage::{valid_key_pair_name, KeyPair};
use serde_json::{json, Value};

use super::{page, seconds, Call};
use crate::error::ApiError;
use crate::params::Params;

fn key_pair_name(p: &Params) -> Result<String, ApiError> {
    let bad = || ApiError::new(400, "InvalidKeyPairName.Malformed", "Specified Key Pair name is not valid.");
    let n = p.string("KeyPairName", 128).map_err(|_| bad())?.ok_or_else(|| ApiError::missing("KeyPairName"))?;
    if !valid_key_pair_name(&n) {
        return Err(bad());
    }
    Ok(n)
}

pub(super) fn create_key_pair(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = key_pair_name(c.params)?;
    let created = c.cp.create_key_pair(c.account_id, &name)?;
    Ok(json!({
        "KeyPairId": created.key_pair.id,
        "KeyPairName": created.key_pair.name,
        "KeyPairFingerPrint": created.key_pair.fingerprint,
        "PrivateKeyBody": created.private_key_pem,
    }))
}

pub(super) fn import_key_pair(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let name = key_pair_name(p)?;
    let body = p.string("PublicKeyBody", 16_384);
    let malformed =
        || ApiError::new(400, "InvalidPublicKeyBody.Malformed", "The PublicKeyBody format is not supported.");
    let body = body.map_err(|_| malformed())?.ok_or_else(|| ApiError::missing("PublicKeyBody"))?;
    let k = c.cp.import_key_pair(c.account_id, &name, &body)?;
    Ok(json!({"KeyPairName": k.name, "KeyPairFingerPrint": k.fingerprint}))
}

fn key_pair_json(k: &KeyPair, public_key: bool) -> Value {
    let mut v = json!({
        "CreationTime": seconds(&k.created_at),
        "KeyPairName": k.name,
        "KeyPairFingerPrint": k.fingerprint,
        "ResourceGroupId": "",
        "Tags": {"Tag": []},
    });
    if public_key {
        v["PublicKey"] = json!(k.public_key);
    }
    v
}

pub(super) fn describe_key_pairs(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let (offset, size, number) = page(p, 10, 50)?;
    let include = p.bool("IncludePublicKey")?.unwrap_or(false);
    let all = c.cp.describe_key_pairs(c.account_id, p.get("KeyPairName"), p.get("KeyPairFingerPrint"));
    let items: Vec<Value> = all.iter().skip(offset).take(size).map(|k| key_pair_json(k, include)).collect();
    Ok(json!({
        "PageNumber": number,
        "TotalCount": all.len(),
        "KeyPairs": {"KeyPair": items},
        "PageSize": size,
    }))
}

pub(super) fn delete_key_pairs(c: &Call<'_>) -> Result<Value, ApiError> {
    let invalid = || {
        ApiError::new(
            400,
            "InvalidKeyPairNames.ValueNotSupported",
            "The specified parameter \"KeyPairNames\" is not valid.",
        )
    };
    let p = c.params;
    let names = p.json_list("KeyPairNames", 100).map_err(|_| invalid())?;
    let names = names.ok_or_else(|| ApiError::missing("KeyPairNames"))?;
    if names.is_empty() {
        return Err(invalid());
    }
    c.cp.delete_key_pairs(c.account_id, &names)?;
    Ok(json!({}))
}

fn instance_ids(p: &Params) -> Result<Vec<String>, ApiError> {
    let invalid = || {
        ApiError::new(400, "InvalidInstanceIds.ValueNotSupported", "The specified parameter InstanceIds is not valid.")
    };
    let ids = p.json_list("InstanceIds", 50).map_err(|_| invalid())?.ok_or_else(|| ApiError::missing("InstanceIds"))?;
    if ids.is_empty() {
        return Err(invalid());
    }
    crate::params::distinct("InstanceIds", &ids)?;
    Ok(ids)
}

fn set_key_pair(c: &Call<'_>, attach: bool) -> Result<Value, ApiError> {
    let p = c.params;
    let name = key_pair_name(p)?;
    let ids = instance_ids(p)?;
    let outcomes = c.cp.set_key_pair(c.account_id, &name, &ids, attach)?;
    let failed = outcomes.iter().filter(|(_, r)| r.is_err()).count();
    let results: Vec<Value> = outcomes
        .into_iter()
        .map(|(id, r)| match r {
            Ok(()) => json!({"InstanceId": id, "Success": "true", "Code": "200", "Message": "successful"}),
            Err(e) => {
                let e = ApiError::from(e);
                json!({"InstanceId": id, "Success": "false", "Code": e.code, "Message": e.message})
            }
        })
        .collect();
    Ok(json!({
        "TotalCount": results.len().to_string(),
        "FailCount": failed.to_string(),
        "KeyPairName": name,
        "Results": {"Result": results},
    }))
}

pub(super) fn attach_key_pair(c: &Call<'_>) -> Result<Value, ApiError> {
    set_key_pair(c, true)
}

pub(super) fn detach_key_pair(c: &Call<'_>) -> Result<Value, ApiError> {
    set_key_pair(c, false)
}
