//! Sealing access-key secrets at rest.
//!
//! Both signature schemes need the secret itself, so it cannot be hashed. It is sealed with
//! ChaCha20-Poly1305 under a master key kept in its own file (mode 0600) beside the database: a
//! copy of the database alone reveals no secret. The key id is the associated data, so a sealed
//! secret cannot be moved to another key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("Master key file {0}: {1}")]
    Io(String, std::io::Error),
    #[error("Master key file {0} is not 32 bytes")]
    BadKey(String),
    #[error("Sealed secret does not open with this master key")]
    Open,
}

pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl Sealer {
    /// Load the master key at `path`, creating it (0600) on first use.
    pub fn open_or_create(path: &Path) -> Result<Sealer, SealError> {
        let name = path.display().to_string();
        if !path.exists() {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| SealError::Io(name.clone(), e))?;
            f.write_all(&key).and_then(|_| f.sync_all()).map_err(|e| SealError::Io(name.clone(), e))?;
        }
        let bytes = fs::read(path).map_err(|e| SealError::Io(name.clone(), e))?;
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
        if bytes.len() != 32 {
            return Err(SealError::BadKey(name));
        }
        Ok(Sealer { cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)) })
    }

    pub fn from_key(key: [u8; 32]) -> Sealer {
        Sealer { cipher: ChaCha20Poly1305::new(Key::from_slice(&key)) }
    }

    /// nonce (12 bytes) || ciphertext+tag
    pub fn seal(&self, key_id: &str, secret: &str) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret.as_bytes(), aad: key_id.as_bytes() })
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(ct);
        out
    }

    pub fn open(&self, key_id: &str, sealed: &[u8]) -> Result<String, SealError> {
        if sealed.len() < 12 + 16 {
            return Err(SealError::Open);
        }
        let (nonce, ct) = sealed.split_at(12);
        let pt = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: key_id.as_bytes() })
            .map_err(|_| SealError::Open)?;
        String::from_utf8(pt).map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_binding() {
        let s = Sealer::from_key([7; 32]);
        let sealed = s.seal("LTAI1", "secret");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(s.open("LTAI1", &sealed).expect("opens"), "secret");
        assert!(s.open("LTAI2", &sealed).is_err(), "bound to its key id");
        assert!(Sealer::from_key([8; 32]).open("LTAI1", &sealed).is_err());
    }

    #[test]
    fn master_key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("master.key");
        let a = Sealer::open_or_create(&p).expect("create");
        let mode = fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = a.seal("k", "v");
        let b = Sealer::open_or_create(&p).expect("reopen");
        assert_eq!(b.open("k", &sealed).expect("opens"), "v");
    }
}
