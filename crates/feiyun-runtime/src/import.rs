//! Turning what a user brings into an image archive: a root-filesystem tarball (plain or gzip),
//! or a disk image (raw or qcow2, anything `qemu-img` reads) whose partition holds a Linux root
//! filesystem. The result is the plain tar the image store installs ([`super::images`]), and the
//! operating system the tree says it is (`/etc/os-release`).
//!
//! A disk image is converted to raw with `qemu-img`, attached read-only to a loop device with its
//! partitions scanned, and the first partition (or the whole device) that mounts and has an
//! `/etc/os-release` or `/bin/sh` is archived. Every loop device and mount made is undone, also on
//! failure.

use std::fs;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, RuntimeError};

/// What an import produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// `tar`, `tar.gz`, or the disk image format `qemu-img` reported (`raw`, `qcow2`, ...).
    pub source_format: String,
    /// `PRETTY_NAME` (else `NAME`) of the tree's `/etc/os-release`; empty when it has none.
    pub os_name: String,
    /// Bytes of the archive written.
    pub archive_bytes: u64,
    /// Bytes of the files in the tree (the root filesystem's size).
    pub tree_bytes: u64,
}

fn err(what: impl Into<String>) -> RuntimeError {
    RuntimeError::Image(what.into())
}

fn run(cmd: &mut Command) -> Result<String> {
    let what = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| RuntimeError::Command(what.clone(), e.to_string()))?;
    if !out.status.success() {
        return Err(RuntimeError::Command(what, String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// How a file starts: a tar archive, gzip, or something else (a disk image).
fn sniff(path: &Path) -> Result<&'static str> {
    let mut head = [0u8; 512];
    let mut f = fs::File::open(path).map_err(|e| RuntimeError::Io(path.display().to_string(), e))?;
    let n = f.read(&mut head).map_err(|e| RuntimeError::Io(path.display().to_string(), e))?;
    Ok(if n >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        "gzip"
    } else if n >= 262 && &head[257..262] == b"ustar" {
        "tar"
    } else {
        "disk"
    })
}

/// Make `dest` a plain tar of the root filesystem `source` holds.
pub fn import(source: &Path, dest: &Path, scratch: &Path) -> Result<Imported> {
    match sniff(source)? {
        "tar" => {
            fs::copy(source, dest).map_err(|e| RuntimeError::Io(dest.display().to_string(), e))?;
            finish("tar", dest)
        }
        "gzip" => {
            let f = fs::File::open(source).map_err(|e| RuntimeError::Io(source.display().to_string(), e))?;
            let mut gz = flate2::read::GzDecoder::new(BufReader::new(f));
            let mut out = fs::File::create(dest).map_err(|e| RuntimeError::Io(dest.display().to_string(), e))?;
            std::io::copy(&mut gz, &mut out)
                .map_err(|e| err(format!("{} is not a valid gzip: {e}", source.display())))?;
            out.flush().map_err(|e| RuntimeError::Io(dest.display().to_string(), e))?;
            finish("tar.gz", dest)
        }
        _ => from_disk_image(source, dest, scratch),
    }
}

/// Read an archive's os-release and sizes (and check that it is a tar at all).
fn finish(format: &str, archive: &Path) -> Result<Imported> {
    let f = fs::File::open(archive).map_err(|e| RuntimeError::Io(archive.display().to_string(), e))?;
    let mut tar = tar::Archive::new(BufReader::new(f));
    let mut os_release = String::new();
    let mut tree_bytes = 0u64;
    let mut entries = 0u64;
    for e in tar.entries().map_err(|e| err(format!("not a tar archive: {e}")))? {
        let mut e = e.map_err(|e| err(format!("a broken tar archive: {e}")))?;
        entries += 1;
        tree_bytes += e.header().size().unwrap_or(0);
        let path = e.path().map(|p| p.to_string_lossy().trim_start_matches("./").to_string()).unwrap_or_default();
        if (path == "etc/os-release" || path == "usr/lib/os-release") && os_release.is_empty() {
            let _ = e.read_to_string(&mut os_release);
        }
    }
    if entries == 0 {
        return Err(err("the archive is empty"));
    }
    let archive_bytes = fs::metadata(archive).map(|m| m.len()).unwrap_or(0);
    Ok(Imported { source_format: format.to_string(), os_name: os_name(&os_release), archive_bytes, tree_bytes })
}

/// `PRETTY_NAME`, else `NAME`, of an os-release file.
pub fn os_name(text: &str) -> String {
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .map(|v| v.trim().trim_matches('"').to_string())
    };
    field("PRETTY_NAME").or_else(|| field("NAME")).unwrap_or_default()
}

/// Undoes, in reverse order, what an import set up on the host.
struct Cleanup {
    mounts: Vec<PathBuf>,
    loop_device: Option<String>,
    files: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for m in self.mounts.iter().rev() {
            let _ = Command::new("umount").arg(m).output();
            let _ = fs::remove_dir(m);
        }
        if let Some(d) = &self.loop_device {
            let _ = Command::new("losetup").arg("-d").arg(d).output();
        }
        for f in &self.files {
            let _ = fs::remove_file(f);
        }
    }
}

fn from_disk_image(source: &Path, dest: &Path, scratch: &Path) -> Result<Imported> {
    let info = run(Command::new("qemu-img").args(["info", "--output=json"]).arg(source))?;
    let info: serde_json::Value =
        serde_json::from_str(&info).map_err(|e| err(format!("qemu-img info gave no JSON: {e}")))?;
    let format = info["format"].as_str().unwrap_or("").to_string();
    if format.is_empty() {
        return Err(err(format!("{} is neither a tar archive nor a disk image", source.display())));
    }
    fs::create_dir_all(scratch).map_err(|e| RuntimeError::Io(scratch.display().to_string(), e))?;
    let mut cleanup = Cleanup { mounts: Vec::new(), loop_device: None, files: Vec::new() };
    let raw = if format == "raw" {
        source.to_path_buf()
    } else {
        let raw = scratch.join(format!("import-{}.raw", std::process::id()));
        cleanup.files.push(raw.clone());
        run(Command::new("qemu-img").args(["convert", "-O", "raw"]).arg(source).arg(&raw))?;
        raw
    };
    let dev = run(Command::new("losetup").args(["--find", "--show", "--read-only", "--partscan"]).arg(&raw))?
        .trim()
        .to_string();
    if dev.is_empty() {
        return Err(err("losetup attached no device"));
    }
    cleanup.loop_device = Some(dev.clone());
    // Partitions appear as <dev>p1, <dev>p2, ...; a disk without a table is a filesystem itself.
    let base = Path::new(&dev).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut candidates: Vec<String> = fs::read_dir("/dev")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| n.starts_with(&format!("{base}p")))
                .map(|n| format!("/dev/{n}"))
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    candidates.push(dev.clone());
    for (n, part) in candidates.iter().enumerate() {
        let mnt = scratch.join(format!("import-{}-{n}", std::process::id()));
        fs::create_dir_all(&mnt).map_err(|e| RuntimeError::Io(mnt.display().to_string(), e))?;
        if run(Command::new("mount").args(["-o", "ro"]).arg(part).arg(&mnt)).is_err() {
            let _ = fs::remove_dir(&mnt);
            continue;
        }
        cleanup.mounts.push(mnt.clone());
        let looks_like_root = mnt.join("etc/os-release").exists()
            || mnt.join("usr/lib/os-release").exists()
            || mnt.join("bin/sh").symlink_metadata().is_ok();
        if !looks_like_root {
            continue;
        }
        archive_tree(&mnt, dest)?;
        return finish(&format, dest);
    }
    Err(err(format!("no partition of {} holds a Linux root filesystem", source.display())))
}

/// Write a plain tar of the tree at `root` (symlinks kept as links, owners and modes kept).
fn archive_tree(root: &Path, dest: &Path) -> Result<()> {
    let out = fs::File::create(dest).map_err(|e| RuntimeError::Io(dest.display().to_string(), e))?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(out));
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    b.append_dir_all(".", root).map_err(|e| err(format!("cannot archive {}: {e}", root.display())))?;
    let mut w = b.into_inner().map_err(|e| err(format!("cannot finish the archive: {e}")))?;
    w.flush().map_err(|e| RuntimeError::Io(dest.display().to_string(), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) -> PathBuf {
        let root = dir.join("tree");
        fs::create_dir_all(root.join("etc")).expect("dir");
        fs::create_dir_all(root.join("bin")).expect("dir");
        fs::write(root.join("etc/os-release"), "NAME=\"Tiny\"\nPRETTY_NAME=\"Tiny Linux 1.0\"\n").expect("write");
        fs::write(root.join("bin/hello"), "#!/bin/sh\necho hi\n").expect("write");
        std::os::unix::fs::symlink("hello", root.join("bin/sh")).expect("link");
        root
    }

    fn names(archive: &Path) -> Vec<String> {
        let mut t = tar::Archive::new(fs::File::open(archive).expect("open"));
        let mut out: Vec<String> = t
            .entries()
            .expect("entries")
            .map(|e| e.expect("entry").path().expect("path").to_string_lossy().trim_start_matches("./").to_string())
            .filter(|n| !n.is_empty())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn os_release_names() {
        assert_eq!(os_name("NAME=Debian\nPRETTY_NAME=\"Debian GNU/Linux 12\"\n"), "Debian GNU/Linux 12");
        assert_eq!(os_name("NAME=\"Alpine\"\n"), "Alpine");
        assert_eq!(os_name(""), "");
    }

    #[test]
    fn tarballs_plain_and_gzipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = tree(dir.path());
        let plain = dir.path().join("rootfs.tar");
        archive_tree(&root, &plain).expect("tar");
        let out = dir.path().join("out.tar");
        let got = import(&plain, &out, dir.path()).expect("import tar");
        assert_eq!((got.source_format.as_str(), got.os_name.as_str()), ("tar", "Tiny Linux 1.0"));
        assert!(names(&out).contains(&"bin/hello".to_string()));
        let gz = dir.path().join("rootfs.tar.gz");
        {
            let mut e = flate2::write::GzEncoder::new(fs::File::create(&gz).expect("gz"), flate2::Compression::fast());
            e.write_all(&fs::read(&plain).expect("read")).expect("write");
            e.finish().expect("finish");
        }
        let got = import(&gz, &out, dir.path()).expect("import tar.gz");
        assert_eq!(got.source_format, "tar.gz");
        assert!(names(&out).contains(&"etc/os-release".to_string()));
        let junk = dir.path().join("junk");
        fs::write(&junk, b"certainly not an image").expect("write");
        assert!(import(&junk, &out, dir.path()).is_err());
    }

    /// A qcow2 disk image of an ext4 filesystem (made with `mke2fs -d`), imported through a
    /// read-only loop device. Needs root, qemu-img and e2fsprogs; skipped, saying why, without.
    #[test]
    fn a_qcow2_disk_image_becomes_an_archive() {
        let root_user = fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0");
        let have = |c: &str| Command::new(c).arg("--version").output().is_ok();
        if !root_user || !have("qemu-img") || !have("losetup") {
            eprintln!("skipping the disk-image import test: needs root, qemu-img and losetup");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let root = tree(dir.path());
        let raw = dir.path().join("disk.raw");
        run(Command::new("mke2fs").args(["-q", "-t", "ext4", "-d"]).arg(&root).arg(&raw).arg("16M")).expect("mke2fs");
        let qcow = dir.path().join("disk.qcow2");
        run(Command::new("qemu-img").args(["convert", "-O", "qcow2"]).arg(&raw).arg(&qcow)).expect("convert");
        let out = dir.path().join("out.tar");
        let got = import(&qcow, &out, &dir.path().join("scratch")).expect("import qcow2");
        assert_eq!((got.source_format.as_str(), got.os_name.as_str()), ("qcow2", "Tiny Linux 1.0"));
        let n = names(&out);
        assert!(n.contains(&"bin/hello".to_string()) && n.contains(&"bin/sh".to_string()), "{n:?}");
        // Nothing left attached or mounted. A loop device something else still has open (udev
        // probing a new device does, for a moment) is detached by the kernel at its last close.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let loops =
                run(Command::new("losetup").args(["--list", "--noheadings", "--output", "BACK-FILE"])).expect("list");
            if !loops.contains(&dir.path().display().to_string()) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{loops}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        assert!(!mounts.contains(&dir.path().display().to_string()));
    }
}
