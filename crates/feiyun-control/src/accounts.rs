//! Accounts, access keys and request freshness.

use std::collections::{HashSet, VecDeque};

use chrono::Duration as ChronoDuration;
use feiyun_domain::account::{valid_account_name, AccessKey, Account};
use feiyun_domain::{ids, DomainError, Instant};
use feiyun_store::{StoreError, StoredKey};

use crate::{store_err, ControlPlane};

/// How far a request's timestamp may be from the server's clock, either way.
pub const NONCE_WINDOW: i64 = 15 * 60;

/// Nonces seen within the window. Entries older than the window are forgotten: a request that
/// old is refused on its timestamp anyway.
#[derive(Default)]
pub(crate) struct NonceCache {
    seen: HashSet<(String, String)>,
    order: VecDeque<(Instant, String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    Fresh,
    /// Outside the window, or older than this process (a nonce from before a restart cannot be
    /// checked, so such requests are refused).
    Expired,
    Replayed,
}

impl ControlPlane {
    /// Create an account with one access key. The secret is returned once and stored sealed.
    pub fn create_account(&self, name: &str) -> Result<(Account, AccessKey), DomainError> {
        let (account, key) =
            self.with_rng(|r| create_account(self.store.as_ref(), &self.sealer, r, self.now(), name))?;
        self.keys.write().unwrap_or_else(|p| p.into_inner()).insert(key.id.clone(), key.clone());
        Ok((account, key))
    }

    pub fn account(&self, id: &str) -> Result<Option<Account>, DomainError> {
        self.store.account(id).map_err(store_err)
    }

    pub fn account_by_name(&self, name: &str) -> Result<Option<Account>, DomainError> {
        self.store.account_by_name(name).map_err(store_err)
    }

    /// An access key already known to this process, without touching the store.
    pub fn cached_access_key(&self, id: &str) -> Option<AccessKey> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// Look up an access key (with its secret opened). Keys created by another process on the
    /// same data directory (`feiyun account create`) are found in the store.
    pub fn access_key(&self, id: &str) -> Result<Option<AccessKey>, DomainError> {
        if let Some(k) = self.keys.read().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Ok(Some(k.clone()));
        }
        let Some(key) = open_key(self.store.as_ref(), &self.sealer, id)? else {
            return Ok(None);
        };
        self.keys.write().unwrap_or_else(|p| p.into_inner()).insert(key.id.clone(), key.clone());
        Ok(Some(key))
    }

    /// Check a signed request's timestamp and remember its nonce.
    pub fn check_nonce(&self, key_id: &str, nonce: &str, signed_at: Instant) -> NonceCheck {
        let now = self.now();
        let window = ChronoDuration::seconds(NONCE_WINDOW);
        // Compare with this process's start truncated to the second: most clients write whole
        // seconds, so their timestamp may stand for any moment of that second.
        let started = self.started_at - ChronoDuration::nanoseconds(self.started_at.timestamp_subsec_nanos() as i64);
        if signed_at < now - window || signed_at > now + window || signed_at < started {
            return NonceCheck::Expired;
        }
        let mut cache = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        // Entries are kept until no timestamp they could carry is acceptable any more. The queue is
        // in arrival order, so eviction from the front is conservative: it never drops early.
        while cache.order.front().map(|(expires, _, _)| *expires < now).unwrap_or(false) {
            if let Some((_, k, n)) = cache.order.pop_front() {
                cache.seen.remove(&(k, n));
            }
        }
        if !cache.seen.insert((key_id.to_string(), nonce.to_string())) {
            return NonceCheck::Replayed;
        }
        cache.order.push_back((signed_at + window + window, key_id.to_string(), nonce.to_string()));
        NonceCheck::Fresh
    }
}

/// Create an account and its first access key directly in a store (also used by the command line
/// while a server runs on the same data directory).
pub fn create_account(
    store: &dyn feiyun_store::Store,
    sealer: &crate::Sealer,
    rng: &mut impl rand::Rng,
    now: Instant,
    name: &str,
) -> Result<(Account, AccessKey), DomainError> {
    if !valid_account_name(name) {
        return Err(DomainError::invalid("AccountName", "use 1-64 letters, digits, '-', '_' or '.'"));
    }
    let account = Account { id: ids::account_id(rng), name: name.to_string(), created_at: now };
    let key = AccessKey {
        id: ids::access_key_id(rng),
        account_id: account.id.clone(),
        secret: ids::access_key_secret(rng),
        enabled: true,
    };
    let stored = StoredKey {
        id: key.id.clone(),
        account_id: account.id.clone(),
        sealed_secret: sealer.seal(&key.id, &key.secret),
        enabled: true,
    };
    match store.create_account(&account, &stored) {
        Ok(()) => Ok((account, key)),
        Err(StoreError::NameTaken(n)) => Err(DomainError::AccountExists(n)),
        Err(e) => Err(store_err(e)),
    }
}

/// Open the secret of an existing access key from the store.
pub fn open_key(
    store: &dyn feiyun_store::Store,
    sealer: &crate::Sealer,
    id: &str,
) -> Result<Option<AccessKey>, DomainError> {
    let Some(stored) = store.access_key(id).map_err(store_err)? else {
        return Ok(None);
    };
    let secret = sealer.open(&stored.id, &stored.sealed_secret).map_err(|e| DomainError::Internal(e.to_string()))?;
    Ok(Some(AccessKey { id: stored.id, account_id: stored.account_id, secret, enabled: stored.enabled }))
}
