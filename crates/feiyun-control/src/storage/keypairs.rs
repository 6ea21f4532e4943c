//! SSH key pairs: CreateKeyPair (an RSA key made here; its private key is returned once, PEM,
//! PKCS#8), ImportKeyPair (an OpenSSH public key, checked), DescribeKeyPairs, DeleteKeyPairs,
//! AttachKeyPair and DetachKeyPair. An instance's key pair's public key goes into its intent
//! (root's authorized keys) and its metadata.

use feiyun_domain::instance::Instance;
use feiyun_domain::storage::{KeyPair, StorageError};
use feiyun_domain::{ids, DomainError};
use feiyun_store::StorageWrites;
use md5::{Digest, Md5};

use crate::{store_err, ControlPlane};

/// What CreateKeyPair made: the key pair and its private key, which the region does not keep.
#[derive(Clone)]
pub struct CreatedKeyPair {
    pub key_pair: KeyPair,
    /// PEM, PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
    pub private_key_pem: String,
}

impl std::fmt::Debug for CreatedKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKeyPair")
            .field("key_pair", &self.key_pair)
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

/// The RFC 4716 fingerprint of an OpenSSH public key: the MD5 of its key blob, as colon-separated
/// lower-case hex (what `ssh-keygen -l -E md5` shows after `MD5:`).
pub fn fingerprint(key: &ssh_key::PublicKey) -> Result<String, StorageError> {
    let blob = key.to_bytes().map_err(|e| StorageError::PublicKeyMalformed(e.to_string()))?;
    let digest = Md5::digest(&blob);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"))
}

/// Check an OpenSSH public key line (`<type> <base64> [comment]`) and write it back the way it
/// goes into authorized keys. RSA, DSA, ECDSA and Ed25519 keys are accepted.
fn parse_public_key(body: &str) -> Result<ssh_key::PublicKey, StorageError> {
    let line = body.trim();
    if line.lines().count() != 1 {
        return Err(StorageError::PublicKeyMalformed("one key on one line".into()));
    }
    let key = ssh_key::PublicKey::from_openssh(line).map_err(|e| StorageError::PublicKeyMalformed(e.to_string()))?;
    match key.algorithm() {
        ssh_key::Algorithm::Rsa { .. }
        | ssh_key::Algorithm::Dsa
        | ssh_key::Algorithm::Ecdsa { .. }
        | ssh_key::Algorithm::Ed25519 => Ok(key),
        other => Err(StorageError::PublicKeyMalformed(format!("{} keys are not supported", other.as_str()))),
    }
}

/// A new 2048-bit RSA key: its PKCS#8 PEM and its OpenSSH public key.
fn generate(comment: &str) -> Result<(String, ssh_key::PublicKey), DomainError> {
    use rsa::pkcs8::EncodePrivateKey;
    use rsa::traits::PublicKeyParts;
    let internal = |e: &dyn std::fmt::Display| DomainError::Internal(format!("key generation: {e}"));
    // Key material comes from the operating system, never from the (seeded) id generator.
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| internal(&e))?;
    let pem = private.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).map_err(|e| internal(&e))?;
    let public = private.to_public_key();
    let mpint = |n: &rsa::BigUint| ssh_key::Mpint::from_positive_bytes(&n.to_bytes_be()).map_err(|e| internal(&e));
    let data = ssh_key::public::RsaPublicKey { e: mpint(public.e())?, n: mpint(public.n())? };
    let key = ssh_key::PublicKey::new(ssh_key::public::KeyData::Rsa(data), comment);
    Ok((pem.to_string(), key))
}

impl ControlPlane {
    fn store_key_pair(&self, account_id: &str, name: &str, key: &ssh_key::PublicKey) -> Result<KeyPair, DomainError> {
        if !feiyun_domain::storage::valid_key_pair_name(name) {
            return Err(DomainError::invalid("KeyPairName", "2-128 characters starting with a letter"));
        }
        let mut state = self.write();
        let slot = (account_id.to_string(), name.to_string());
        if state.storage.key_pairs.contains_key(&slot) {
            return Err(StorageError::KeyPairExists(name.to_string()).into());
        }
        let public_key = key.to_openssh().map_err(|e| StorageError::PublicKeyMalformed(e.to_string()))?;
        let k = KeyPair {
            id: self.with_rng(ids::key_pair_id),
            account_id: account_id.to_string(),
            name: name.to_string(),
            fingerprint: fingerprint(key)?,
            public_key,
            created_at: self.now(),
        };
        let w = StorageWrites { key_pairs: vec![k.clone()], ..Default::default() };
        self.store.commit(&feiyun_store::WriteSet { storage: Some(&w), ..Default::default() }).map_err(
            |e| match e {
                feiyun_store::StoreError::Exists { .. } => StorageError::KeyPairExists(name.to_string()).into(),
                e => store_err(e),
            },
        )?;
        state.storage.apply(&w);
        tracing::info!(key_pair = %k.name, fingerprint = %k.fingerprint, "key pair stored");
        Ok(k)
    }

    /// CreateKeyPair: a new RSA key pair; the private key is returned once and not kept.
    pub fn create_key_pair(&self, account_id: &str, name: &str) -> Result<CreatedKeyPair, DomainError> {
        if self.read().storage.key_pairs.contains_key(&(account_id.to_string(), name.to_string())) {
            return Err(StorageError::KeyPairExists(name.to_string()).into());
        }
        let (pem, key) = generate(name)?;
        let key_pair = self.store_key_pair(account_id, name, &key)?;
        Ok(CreatedKeyPair { key_pair, private_key_pem: pem })
    }

    /// ImportKeyPair: an OpenSSH public key made elsewhere.
    pub fn import_key_pair(&self, account_id: &str, name: &str, public_key: &str) -> Result<KeyPair, DomainError> {
        let key = parse_public_key(public_key)?;
        self.store_key_pair(account_id, name, &key)
    }

    /// DescribeKeyPairs: the account's key pairs whose name matches (`*` wildcards) and whose
    /// fingerprint is the one given, by name.
    pub fn describe_key_pairs(&self, account_id: &str, name: Option<&str>, fingerprint: Option<&str>) -> Vec<KeyPair> {
        let state = self.read();
        state
            .storage
            .key_pairs
            .values()
            .filter(|k| k.account_id == account_id)
            .filter(|k| name.is_none_or(|n| feiyun_domain::ops::wildcard_match(n, &k.name)))
            .filter(|k| fingerprint.is_none_or(|f| k.fingerprint == f))
            .cloned()
            .collect()
    }

    /// DeleteKeyPairs: names the account has no key pair of are passed over. Instances keep the
    /// name; their hosts stop writing its key.
    pub fn delete_key_pairs(&self, account_id: &str, names: &[String]) -> Result<(), DomainError> {
        let mut state = self.write();
        let gone: Vec<(String, String)> = names
            .iter()
            .map(|n| (account_id.to_string(), n.clone()))
            .filter(|k| state.storage.key_pairs.contains_key(k))
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        let w = StorageWrites { deleted_key_pairs: gone.clone(), ..Default::default() };
        self.store.commit(&feiyun_store::WriteSet { storage: Some(&w), ..Default::default() }).map_err(store_err)?;
        state.storage.apply(&w);
        let hosts: Vec<String> = state
            .instances
            .values()
            .filter(|i| i.account_id == account_id && gone.iter().any(|(_, n)| i.key_pair_name.as_ref() == Some(n)))
            .map(|i| i.host_id.clone())
            .collect();
        for h in hosts {
            state.bump_host(&h);
        }
        Ok(())
    }

    /// AttachKeyPair (`Some(name)`) or DetachKeyPair (`None`, of the pair `name`): each instance
    /// gets its own outcome; a running instance's host writes the new keys at once.
    #[allow(clippy::type_complexity)]
    pub fn set_key_pair(
        &self,
        account_id: &str,
        name: &str,
        instance_ids: &[String],
        attach: bool,
    ) -> Result<Vec<(String, Result<(), DomainError>)>, DomainError> {
        let mut state = self.write();
        if !state.storage.key_pairs.contains_key(&(account_id.to_string(), name.to_string())) {
            return Err(StorageError::KeyPairNotFound(name.to_string()).into());
        }
        let now = self.now();
        let mut outcomes = Vec::with_capacity(instance_ids.len());
        let mut changed: Vec<Instance> = Vec::new();
        for id in instance_ids {
            let res = match state.owned(account_id, id) {
                Err(e) => Err(e),
                Ok(i) if !attach && i.key_pair_name.as_deref() != Some(name) => {
                    Err(StorageError::KeyPairNotFound(name.to_string()).into())
                }
                Ok(i) => {
                    if !changed.iter().any(|c| c.id == i.id) {
                        let mut n = i.revised(now);
                        n.key_pair_name = attach.then(|| name.to_string());
                        changed.push(n);
                    }
                    Ok(())
                }
            };
            outcomes.push((id.clone(), res));
        }
        if !changed.is_empty() {
            self.store.put_instances(&changed, None, &[], &[]).map_err(store_err)?;
            for n in changed {
                state.put(n);
            }
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys made with `ssh-keygen`; `ssh-keygen -l -E md5 -f key.pub` printed the fingerprints.
    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDjcXjLNmMaUjlNhAYdA5Qqp6IfwVnf6RapYY+We1Nj2 test@feiyun";
    const ED25519_MD5: &str = "bc:4c:e8:1f:5f:fc:70:7f:85:e9:e5:8f:aa:0d:0c:b2";
    const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDFk7JU9hCwwcFBzISOUVoin39T81s7HgncbUHRlu9qA1eeIFF509RmO0d1SWAhaJhIGnxXfP+bNu3JD2wz5VBp5hsRJcdZwbzYdZbeL7dps9FO5TjLJiwWASQLWdDYSQXx3ZCmNyugRI/z7pNQBb5oiEOH9WSu9iUKb+fVNNC1My2smS2Cqt97YU4ggbw3QQ9iMq/wLYme2BPBfGwqc4hT4uOmcyF9jnh3cORc6xVEp2FrkI5U/hwyv83NrtUgfDXKInH9sC0KslmcbqxvONprIsi1TXkud9wkWe8dFDmRlB9DlsZdQIyOoyqA9f0IcFBwqzgpgtFd9JuLy1narxKV rsa@feiyun";
    const RSA_MD5: &str = "e0:d2:ed:19:52:4a:cc:ed:e0:4b:60:f9:54:a7:65:e1";

    #[test]
    fn public_keys_are_checked_and_fingerprinted_as_ssh_keygen_does() {
        for (line, md5) in [(ED25519, ED25519_MD5), (RSA, RSA_MD5)] {
            let key = parse_public_key(line).expect("valid");
            assert_eq!(fingerprint(&key).expect("fingerprint"), md5);
            assert_eq!(key.to_openssh().expect("openssh"), line, "written back as given");
        }
        let truncated = &ED25519[..40];
        for bad in ["", "ssh-rsa", "ssh-rsa AAAA", "not a key", truncated, &format!("{ED25519}\n{RSA}")] {
            assert!(parse_public_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_created_key_is_pkcs8_and_its_public_half_parses_back() {
        let (pem, key) = generate("k").expect("generate");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{}", &pem[..40]);
        let line = key.to_openssh().expect("openssh");
        assert!(line.starts_with("ssh-rsa AAAA"), "{line}");
        let back = parse_public_key(&line).expect("parses back");
        assert_eq!(fingerprint(&back).expect("fp"), fingerprint(&key).expect("fp"));
        use rsa::pkcs8::DecodePrivateKey;
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).expect("PKCS#8");
        use rsa::traits::PublicKeyParts;
        assert_eq!(private.size(), 256, "2048 bits");
    }
}
