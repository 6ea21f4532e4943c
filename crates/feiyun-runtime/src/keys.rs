//! The instance's key pair: OpenSSH public keys in `/root/.ssh/authorized_keys` (directory
//! 0700, file 0600, owned by root), written into its root filesystem from the host before it
//! boots and whenever they change while it runs.
//!
//! The file is shared with the guest: lines the guest added stay. The keys the platform wrote
//! last are recorded beside the instance on the host (`authorized_keys.json`), so that a key
//! taken away (the key pair detached or replaced) is removed and nothing else is.

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::{fchmod, Mode, SFlag};
use nix::unistd::{fchown, Gid, Uid};

use crate::disks::{io, StorageError};
use crate::tree::DirHandle;

/// The record of keys the platform wrote, in the instance's directory on the host.
pub const RECORD: &str = "authorized_keys.json";
const MAX_KEYS: usize = 100;
const MAX_KEY_LEN: usize = 16 * 1024;
const MAX_FILE: u64 = 1 << 20;

fn refused(what: String) -> StorageError {
    StorageError::Refused(what)
}

/// The keys the platform last wrote (none if it never did).
pub(crate) fn recorded(record: &Path) -> Vec<String> {
    fs::read(record).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

pub(crate) fn validate(keys: &[String]) -> Result<Vec<String>, StorageError> {
    if keys.len() > MAX_KEYS {
        return Err(refused(format!("{} authorized keys; at most {MAX_KEYS}", keys.len())));
    }
    keys.iter()
        .map(|k| {
            let k = k.trim();
            if k.is_empty() || k.len() > MAX_KEY_LEN || k.contains(['\n', '\r', '\0']) {
                Err(refused("an authorized key must be one non-empty line".into()))
            } else {
                Ok(k.to_string())
            }
        })
        .collect()
}

/// Make `/root/.ssh/authorized_keys` of the tree at `rootfs` hold `keys` besides the guest's own
/// lines, replacing the keys recorded in `record`. Nothing is touched when the platform never
/// wrote keys and has none to write. Returns whether the file changed.
pub(crate) fn apply(rootfs: &Path, record: &Path, keys: &[String]) -> Result<bool, StorageError> {
    let keys = validate(keys)?;
    let previous = recorded(record);
    if keys.is_empty() && previous.is_empty() {
        return Ok(false);
    }
    let guest = |e: Errno| refused(format!("/root/.ssh in the instance: {e}"));
    let root = DirHandle::open_root(rootfs).map_err(|e| StorageError::Io(rootfs.display().to_string(), e.into()))?;
    let home = root.open_or_make_dir("root", 0o700).map_err(guest)?;
    let ssh = home.open_or_make_dir(".ssh", 0o700).map_err(guest)?;
    fchown(ssh.fd(), Some(Uid::from_raw(0)), Some(Gid::from_raw(0))).map_err(guest)?;
    fchmod(ssh.fd(), Mode::from_bits_truncate(0o700)).map_err(guest)?;

    let name = OsStr::new("authorized_keys");
    let current = ssh.stat(name).map_err(guest)?;
    let existing = match current {
        Some(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG => {
            let path = ssh.path_of(name);
            let mut f =
                fs::OpenOptions::new().read(true).custom_flags(libc_o_nofollow()).open(&path).map_err(io(&path))?;
            let mut text = String::new();
            // A file the guest made unreadable as text is replaced.
            let _ = (&mut f).take(MAX_FILE).read_to_string(&mut text);
            text
        }
        _ => String::new(),
    };
    let mut lines: Vec<String> = existing
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !previous.iter().any(|p| p == l))
        .map(str::to_string)
        .collect();
    for k in &keys {
        if !lines.contains(k) {
            lines.push(k.clone());
        }
    }
    let mut wanted = lines.join("\n");
    if !wanted.is_empty() {
        wanted.push('\n');
    }
    let mode_ok = current.is_some_and(|st| {
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
            && st.st_mode & 0o7777 == 0o600
            && st.st_uid == 0
    });
    let changed = !(mode_ok && existing == wanted);
    if changed {
        let tmp = ".authorized_keys.feiyun";
        ssh.remove_file(tmp).map_err(guest)?;
        let path = ssh.path_of(OsStr::new(tmp));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc_o_nofollow())
            .open(&path)
            .map_err(io(&path))?;
        f.write_all(wanted.as_bytes()).and_then(|_| f.sync_all()).map_err(io(&path))?;
        fchown(f_fd(&f), Some(Uid::from_raw(0)), Some(Gid::from_raw(0))).map_err(guest)?;
        nix::fcntl::renameat(Some(ssh.fd()), tmp, Some(ssh.fd()), name).map_err(guest)?;
    }
    if previous != keys {
        let text = serde_json::to_vec(&keys).map_err(|e| refused(e.to_string()))?;
        let tmp = record.with_extension("tmp");
        fs::write(&tmp, text).map_err(io(&tmp))?;
        fs::rename(&tmp, record).map_err(io(record))?;
    }
    Ok(changed)
}

fn f_fd(f: &fs::File) -> std::os::fd::RawFd {
    use std::os::fd::AsRawFd;
    f.as_raw_fd()
}

fn libc_o_nofollow() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt};

    #[test]
    fn writes_keys_with_modes_and_keeps_the_guests_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        fs::create_dir_all(&rootfs).expect("rootfs");
        let record = dir.path().join(RECORD);
        assert!(!apply(&rootfs, &record, &[]).expect("nothing"), "no keys, none recorded: untouched");
        assert!(!rootfs.join("root").exists());

        let k1 = "ssh-ed25519 AAAAC3Nza1 one".to_string();
        assert!(apply(&rootfs, &record, std::slice::from_ref(&k1)).expect("write"));
        let ssh = rootfs.join("root/.ssh");
        assert_eq!(fs::metadata(&ssh).expect("dir").mode() & 0o777, 0o700);
        let file = ssh.join("authorized_keys");
        assert_eq!(fs::metadata(&file).expect("file").mode() & 0o777, 0o600);
        assert_eq!(fs::read_to_string(&file).expect("read"), format!("{k1}\n"));
        assert!(!apply(&rootfs, &record, std::slice::from_ref(&k1)).expect("again"), "idempotent");

        // The guest adds a key of its own; the platform's key is replaced, the guest's stays.
        fs::write(&file, format!("{k1}\nssh-rsa GUEST mine\n")).expect("guest writes");
        let k2 = "ssh-ed25519 AAAAC3Nza2 two".to_string();
        assert!(apply(&rootfs, &record, std::slice::from_ref(&k2)).expect("replace"));
        assert_eq!(fs::read_to_string(&file).expect("read"), format!("ssh-rsa GUEST mine\n{k2}\n"));
        assert!(apply(&rootfs, &record, &[]).expect("remove"));
        assert_eq!(fs::read_to_string(&file).expect("read"), "ssh-rsa GUEST mine\n");
        assert!(apply(&rootfs, &record, &["two\nlines".into()]).is_err());
    }

    #[test]
    fn never_follows_the_guests_symlinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        let outside = dir.path().join("outside");
        fs::create_dir_all(rootfs.join("root")).expect("rootfs");
        fs::create_dir_all(&outside).expect("outside");
        let record = dir.path().join(RECORD);
        // /root/.ssh is a link out of the tree: refused, nothing written outside.
        symlink(&outside, rootfs.join("root/.ssh")).expect("link");
        assert!(apply(&rootfs, &record, &["ssh-ed25519 K".into()]).is_err());
        assert_eq!(fs::read_dir(&outside).expect("outside").count(), 0);
        // The file itself a link out of the tree: replaced by a file, the target untouched.
        fs::remove_file(rootfs.join("root/.ssh")).expect("unlink");
        fs::create_dir_all(rootfs.join("root/.ssh")).expect("dir");
        fs::write(outside.join("secret"), "host secret\n").expect("secret");
        symlink(outside.join("secret"), rootfs.join("root/.ssh/authorized_keys")).expect("link");
        assert!(apply(&rootfs, &record, &["ssh-ed25519 K".into()]).expect("write"));
        assert_eq!(fs::read_to_string(outside.join("secret")).expect("secret"), "host secret\n");
        let f = rootfs.join("root/.ssh/authorized_keys");
        assert!(fs::symlink_metadata(&f).expect("file").is_file());
        assert_eq!(fs::read_to_string(&f).expect("read"), "ssh-ed25519 K\n");
    }
}
