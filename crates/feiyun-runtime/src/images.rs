//! The image store: read-only root filesystems instances boot from.
//!
//! Layout: `<root>/<image-id>/rootfs/` holds the tree and `<root>/<image-id>/image.json` its
//! metadata. An image is complete only once `image.json` exists (written last, atomically), so a
//! crash while building leaves nothing that looks usable. Importing a root-filesystem tarball is
//! the same two steps: unpack into `rootfs/`, then write `image.json`.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::{Result, RuntimeError};

/// Id of the image built from the host's busybox at first start.
pub const BUILTIN_IMAGE_ID: &str = "feiyun_busybox_x64";

/// PID 1 of every instance: runs UserData once, then waits for a stop signal.
pub const INIT_SCRIPT: &str = r#"#!/bin/sh
# Feiyun instance init (PID 1). Its output is the instance's console.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
echo "[feiyun-init] booting $(hostname) at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
ud=/var/lib/feiyun/user-data
if [ -f "$ud" ] && [ ! -e "$ud.done" ]; then
    : > "$ud.done"
    echo "[feiyun-init] running user data"
    case "$(head -c 2 "$ud")" in
        '#!') chmod 0700 "$ud"; "$ud" ;;
        *) sh "$ud" ;;
    esac
    echo "[feiyun-init] user data exited with status $?"
fi
echo "[feiyun-init] ready"
trap 'echo "[feiyun-init] shutting down"; exit 0' TERM INT
while :; do
    sleep 3600 &
    wait $!
done
"#;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub os_name: String,
    pub os_type: String,
    pub architecture: String,
    /// Size of the image's root filesystem, in bytes.
    pub size_bytes: u64,
    pub created_at: String,
}

pub struct ImageStore {
    root: PathBuf,
    /// Complete images never change, so their metadata is read from disk once.
    cache: std::sync::RwLock<std::collections::HashMap<String, ImageInfo>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError + '_ {
    move |e| RuntimeError::Io(path.display().to_string(), e)
}

fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = fs::read_dir(path) {
        for e in rd.flatten() {
            if let Ok(m) = e.path().symlink_metadata() {
                if m.is_dir() {
                    total += dir_size(&e.path());
                } else {
                    total += m.len();
                }
            }
        }
    }
    total
}

impl ImageStore {
    pub fn new(root: PathBuf) -> ImageStore {
        ImageStore { root, cache: Default::default() }
    }

    /// The directory images live in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.root.join(id).join("rootfs")
    }

    /// Every complete image, ordered by id.
    pub fn list(&self) -> Vec<ImageInfo> {
        let mut out = Vec::new();
        if let Ok(rd) = fs::read_dir(&self.root) {
            for e in rd.flatten() {
                if let Ok(text) = fs::read(e.path().join("image.json")) {
                    if let Ok(info) = serde_json::from_slice::<ImageInfo>(&text) {
                        out.push(info);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    pub fn get(&self, id: &str) -> Option<ImageInfo> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return None;
        }
        if let Some(i) = self.cache.read().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Some(i.clone());
        }
        let text = fs::read(self.root.join(id).join("image.json")).ok()?;
        let info: ImageInfo = serde_json::from_slice(&text).ok()?;
        self.cache.write().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), info.clone());
        Some(info)
    }

    /// Build the built-in image from a static busybox binary, unless it already exists.
    pub fn ensure_builtin(&self, busybox: &Path, created_at: &str) -> Result<ImageInfo> {
        if let Some(info) = self.get(BUILTIN_IMAGE_ID) {
            return Ok(info);
        }
        let dir = self.root.join(BUILTIN_IMAGE_ID);
        if dir.exists() {
            // A previous build was interrupted.
            fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        let rootfs = dir.join("rootfs");
        for d in [
            "bin",
            "sbin",
            "usr/bin",
            "usr/sbin",
            "etc",
            "root",
            "tmp",
            "proc",
            "sys",
            "dev",
            "run",
            "var/lib/feiyun",
            "var/log",
            "home",
        ] {
            fs::create_dir_all(rootfs.join(d)).map_err(io(&rootfs))?;
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).map_err(io(&rootfs))?;
        fs::set_permissions(rootfs.join("root"), fs::Permissions::from_mode(0o700)).map_err(io(&rootfs))?;
        let bb = rootfs.join("bin/busybox");
        fs::copy(busybox, &bb).map_err(io(busybox))?;
        fs::set_permissions(&bb, fs::Permissions::from_mode(0o755)).map_err(io(&bb))?;
        let list = Command::new(busybox)
            .arg("--list-full")
            .output()
            .map_err(|e| RuntimeError::Image(format!("cannot run {}: {e}", busybox.display())))?;
        if !list.status.success() {
            return Err(RuntimeError::Image(format!("{} --list-full failed", busybox.display())));
        }
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let applet = applet.trim();
            if applet.is_empty() || applet == "bin/busybox" || applet.contains("..") {
                continue;
            }
            let link = rootfs.join(applet);
            if link.symlink_metadata().is_ok() {
                continue;
            }
            if let Some(parent) = link.parent() {
                fs::create_dir_all(parent).map_err(io(parent))?;
            }
            symlink("/bin/busybox", &link).map_err(io(&link))?;
        }
        let files: [(&str, &str, u32); 5] = [
            (
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
                0o644,
            ),
            ("etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644),
            ("etc/hosts", "127.0.0.1 localhost\n::1 localhost\n", 0o644),
            ("etc/os-release", "NAME=\"Feiyun BusyBox\"\nID=busybox\nPRETTY_NAME=\"Feiyun BusyBox Linux\"\n", 0o644),
            ("sbin/feiyun-init", INIT_SCRIPT, 0o755),
        ];
        for (path, text, mode) in files {
            let p = rootfs.join(path);
            fs::write(&p, text).map_err(io(&p))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).map_err(io(&p))?;
        }
        let info = ImageInfo {
            id: BUILTIN_IMAGE_ID.to_string(),
            name: "BusyBox minimal Linux userland (x86_64)".to_string(),
            description: "Built at first start from the host's static busybox".to_string(),
            os_name: "Feiyun BusyBox Linux".to_string(),
            os_type: "linux".to_string(),
            architecture: "x86_64".to_string(),
            size_bytes: dir_size(&rootfs),
            created_at: created_at.to_string(),
        };
        let tmp = dir.join("image.json.tmp");
        let text = serde_json::to_vec_pretty(&info).map_err(|e| RuntimeError::Image(e.to_string()))?;
        fs::write(&tmp, text).map_err(io(&tmp))?;
        fs::rename(&tmp, dir.join("image.json")).map_err(io(&tmp))?;
        Ok(info)
    }
}

impl ImageStore {
    /// Install a region image from its archive (a root-filesystem tarball fetched from the control
    /// plane), unless it is here already. The archive must have the SHA-256 the region recorded;
    /// it is unpacked beside its final place and moved there, and `image.json` is written last,
    /// so a crash or a bad archive leaves nothing that looks usable.
    pub fn install_archive(&self, id: &str, archive: &Path, sha256: &str, created_at: &str) -> Result<ImageInfo> {
        if let Some(info) = self.get(id) {
            return Ok(info);
        }
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(RuntimeError::Image(format!("bad image id {id:?}")));
        }
        let found = sha256_file(archive)?;
        if !found.eq_ignore_ascii_case(sha256) {
            return Err(RuntimeError::Image(format!(
                "image {id}: the archive's SHA-256 is {found}, the region recorded {sha256}; refusing it"
            )));
        }
        let dir = self.root.join(id);
        let staging = self.root.join(format!(".{id}.unpacking"));
        for d in [&dir, &staging] {
            if d.exists() {
                fs::remove_dir_all(d).map_err(io(d))?;
            }
        }
        let rootfs = staging.join("rootfs");
        fs::create_dir_all(&rootfs).map_err(io(&rootfs))?;
        let file = fs::File::open(archive).map_err(io(archive))?;
        let mut tar = tar::Archive::new(std::io::BufReader::new(file));
        tar.set_preserve_permissions(true);
        tar.set_overwrite(true);
        tar.unpack(&rootfs).map_err(|e| RuntimeError::Image(format!("image {id}: cannot unpack: {e}")))?;
        if let Err(e) = add_init(&rootfs) {
            let _ = fs::remove_dir_all(&staging);
            return Err(RuntimeError::Image(format!("image {id}: {e}")));
        }
        fs::rename(&staging, &dir).map_err(io(&dir))?;
        let info = ImageInfo {
            id: id.to_string(),
            name: id.to_string(),
            description: "Fetched from the region".to_string(),
            os_name: String::new(),
            os_type: "linux".to_string(),
            architecture: "x86_64".to_string(),
            size_bytes: dir_size(&dir.join("rootfs")),
            created_at: created_at.to_string(),
        };
        let tmp = dir.join("image.json.tmp");
        let text = serde_json::to_vec_pretty(&info).map_err(|e| RuntimeError::Image(e.to_string()))?;
        fs::write(&tmp, text).map_err(io(&tmp))?;
        fs::rename(&tmp, dir.join("image.json")).map_err(io(&tmp))?;
        Ok(info)
    }
}

/// Give a tree without it the platform's init, `/sbin/feiyun-init` (PID 1 of every instance,
/// which runs user data and waits to be stopped): an image a user imported is a root filesystem
/// of their own, without the platform's files, as an ECS image is without the platform's agent
/// until it is installed. A tree that has one keeps it (images captured from instances).
///
/// `/sbin` may be a link (usr-merged trees: `/sbin -> usr/sbin`); it is followed inside the tree
/// only, one level, through real directories, so a link planted in the image never leads the
/// write into the host's own files. The file is created, never opened through a link.
fn add_init(rootfs: &Path) -> std::result::Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::Component;

    let sbin = rootfs.join("sbin");
    let dir = match fs::symlink_metadata(&sbin) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir(&sbin).map_err(|e| format!("cannot make /sbin: {e}"))?;
            fs::set_permissions(&sbin, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
            sbin
        }
        Err(e) => return Err(format!("cannot read /sbin: {e}")),
        Ok(m) if m.file_type().is_dir() => sbin,
        Ok(m) if m.file_type().is_symlink() => {
            let target = fs::read_link(&sbin).map_err(|e| format!("cannot read /sbin: {e}"))?;
            let rel = target.strip_prefix("/").unwrap_or(&target);
            let parts: Vec<Component<'_>> = rel.components().collect();
            if parts.is_empty() || !parts.iter().all(|c| matches!(c, Component::Normal(_))) {
                return Err(format!("/sbin links to {}, which is not a directory of the image", target.display()));
            }
            let mut real = rootfs.to_path_buf();
            for c in parts {
                real.push(c);
                let m = fs::symlink_metadata(&real)
                    .map_err(|_| format!("/sbin links to {}, which is not in the image", target.display()))?;
                if !m.file_type().is_dir() {
                    return Err(format!("/sbin links to {}, which is not a directory", target.display()));
                }
            }
            real
        }
        Ok(_) => return Err("/sbin is not a directory".to_string()),
    };
    let init = dir.join("feiyun-init");
    if fs::symlink_metadata(&init).is_ok() {
        return Ok(());
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&init)
        .map_err(|e| format!("cannot write /sbin/feiyun-init: {e}"))?;
    f.write_all(INIT_SCRIPT.as_bytes()).map_err(|e| format!("cannot write /sbin/feiyun-init: {e}"))?;
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    Ok(())
}

/// Hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = fs::File::open(path).map_err(io(path))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Find a static busybox on this machine.
pub fn find_busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox"].iter().map(PathBuf::from).find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_a_region_image_only_with_its_checksum() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = dir.path().join("img.tar");
        {
            let mut b = tar::Builder::new(fs::File::create(&archive).expect("create"));
            let data = b"hello from the image\n";
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "etc/motd", &data[..]).expect("append");
            b.finish().expect("finish");
        }
        let sum = sha256_file(&archive).expect("sum");
        let store = ImageStore::new(dir.path().join("images"));
        let wrong = "0".repeat(64);
        assert!(matches!(store.install_archive("m-1", &archive, &wrong, "now"), Err(RuntimeError::Image(_))));
        assert!(store.get("m-1").is_none(), "nothing usable is left by a refused archive");
        let info = store.install_archive("m-1", &archive, &sum, "now").expect("install");
        assert_eq!(info.id, "m-1");
        assert_eq!(fs::read(store.rootfs("m-1").join("etc/motd")).expect("file"), b"hello from the image\n");
        assert_eq!(store.install_archive("m-1", &archive, &wrong, "later").expect("already there"), info);
    }

    fn install_tree(store: &ImageStore, dir: &Path, id: &str, entries: &[(&str, Option<&str>)]) -> Result<ImageInfo> {
        let archive = dir.join(format!("{id}.tar"));
        {
            let mut b = tar::Builder::new(fs::File::create(&archive).expect("create"));
            for (path, link) in entries {
                let mut h = tar::Header::new_gnu();
                match link {
                    Some(target) => {
                        h.set_entry_type(tar::EntryType::Symlink);
                        h.set_size(0);
                        h.set_mode(0o777);
                        h.set_cksum();
                        b.append_link(&mut h, path, target).expect("link");
                    }
                    None if path.ends_with('/') => {
                        h.set_entry_type(tar::EntryType::Directory);
                        h.set_size(0);
                        h.set_mode(0o755);
                        h.set_cksum();
                        b.append_data(&mut h, path, &b""[..]).expect("dir");
                    }
                    None => {
                        h.set_size(3);
                        h.set_mode(0o755);
                        h.set_cksum();
                        b.append_data(&mut h, path, &b"own"[..]).expect("file");
                    }
                }
            }
            b.finish().expect("finish");
        }
        let sum = sha256_file(&archive).expect("sum");
        store.install_archive(id, &archive, &sum, "now")
    }

    #[test]
    fn an_image_without_the_platforms_init_gets_it_inside_its_tree_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::new(dir.path().join("images"));
        // No /sbin at all.
        install_tree(&store, dir.path(), "m-plain", &[("bin/", None), ("bin/sh", None)]).expect("install");
        let init = store.rootfs("m-plain").join("sbin/feiyun-init");
        assert_eq!(fs::read_to_string(&init).expect("init"), INIT_SCRIPT);
        assert_eq!(fs::metadata(&init).expect("meta").permissions().mode() & 0o777, 0o755);
        // usr-merged, relative and absolute links.
        for (id, target) in [("m-rel", "usr/sbin"), ("m-abs", "/usr/sbin")] {
            install_tree(&store, dir.path(), id, &[("usr/", None), ("usr/sbin/", None), ("sbin", Some(target))])
                .expect("install");
            let root = store.rootfs(id);
            assert_eq!(fs::read_to_string(root.join("usr/sbin/feiyun-init")).expect("init"), INIT_SCRIPT);
        }
        // One of its own is kept.
        install_tree(&store, dir.path(), "m-own", &[("sbin/", None), ("sbin/feiyun-init", None)]).expect("install");
        assert_eq!(fs::read_to_string(store.rootfs("m-own").join("sbin/feiyun-init")).expect("init"), "own");
        // A link out of the tree (or to nothing in it) is refused, and nothing is written there.
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).expect("mkdir");
        let target = outside.display().to_string();
        assert!(install_tree(&store, dir.path(), "m-out", &[("sbin", Some(target.as_str()))]).is_err());
        assert!(install_tree(&store, dir.path(), "m-up", &[("sbin", Some("../outside"))]).is_err());
        assert!(!outside.join("feiyun-init").exists());
        assert!(store.get("m-out").is_none() && store.get("m-up").is_none());
    }

    #[test]
    fn builds_builtin_image_once() {
        let Some(bb) = find_busybox() else {
            panic!("busybox-static must be installed for the runtime tests (the README's setup installs it)");
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::new(dir.path().to_path_buf());
        assert!(store.list().is_empty());
        let info = store.ensure_builtin(&bb, "2026-11-23T00:00Z").expect("build");
        assert_eq!(info.id, BUILTIN_IMAGE_ID);
        let root = store.rootfs(BUILTIN_IMAGE_ID);
        assert!(root.join("bin/sh").symlink_metadata().is_ok());
        assert!(root.join("sbin/feiyun-init").exists());
        assert_eq!(store.list(), vec![info.clone()]);
        assert_eq!(store.ensure_builtin(&bb, "later").expect("again"), info);
        assert!(store.get("../x").is_none());
    }
}
