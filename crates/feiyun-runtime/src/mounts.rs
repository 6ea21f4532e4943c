//! The mount table of the calling process (`/proc/self/mountinfo`): what is mounted where, from
//! which device, and with which propagation.

use std::fs;
use std::path::{Path, PathBuf};

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// `major:minor` of the mounted filesystem's device (`7:3` for `/dev/loop3`).
    pub dev: String,
    pub mount_point: PathBuf,
    /// The mount is in a shared peer group (`shared:N`): mounts under it propagate to its peers
    /// and slaves.
    pub shared: bool,
    pub fstype: String,
}

pub(crate) fn read() -> std::io::Result<Vec<Mount>> {
    fs::read_to_string("/proc/self/mountinfo").map(|t| parse(&t))
}

/// Parses mountinfo text; lines it cannot read are skipped.
pub(crate) fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let dev = fields.get(2)?.to_string();
            let mount_point = PathBuf::from(unescape(fields.get(4)?));
            let shared = fields.iter().skip(6).any(|f| f.starts_with("shared:"));
            let fstype = right.split(' ').next()?.to_string();
            Some(Mount { dev, mount_point, shared, fstype })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
pub(crate) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether something is mounted on `path`.
pub(crate) fn is_mount_point(mounts: &[Mount], path: &Path) -> bool {
    mounts.iter().any(|m| m.mount_point == path)
}

/// Mount points strictly below `dir`, deepest first (the order to unmount them in).
pub(crate) fn below(mounts: &[Mount], dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = mounts
        .iter()
        .filter(|m| m.mount_point != dir && m.mount_point.starts_with(dir))
        .map(|m| m.mount_point.clone())
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_devices_points_and_propagation() {
        let text = "36 35 98:0 / /a\\040b rw - ext4 /dev/x rw\n\
                    37 35 0:3 / /sys/fs/cgroup/memory rw shared:4 master:1 - cgroup cgroup rw,memory\n\
                    38 36 7:2 / /a\\040b/c/vdb rw,nodev shared:9 - ext4 /dev/loop2 rw\n";
        let m = parse(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].mount_point, PathBuf::from("/a b"));
        assert!(!m[0].shared && m[1].shared && m[2].shared);
        assert_eq!((m[2].dev.as_str(), m[2].fstype.as_str()), ("7:2", "ext4"));
        assert_eq!(below(&m, Path::new("/a b")), vec![PathBuf::from("/a b/c/vdb")]);
        assert!(is_mount_point(&m, Path::new("/sys/fs/cgroup/memory")));
        assert_eq!(unescape("x\\134y\\"), "x\\y\\");
    }
}
