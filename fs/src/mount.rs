//! The mount point's life: taking over from a daemon that died, refusing to stack on a live
//! mount, and detaching at shutdown so open files drain.

use std::path::Path;

/// A mount left behind by a daemon that died answers "transport endpoint is not connected":
/// unmount it so this one can take its place.
pub fn clear_stale_mount(mountpoint: &Path) -> anyhow::Result<()> {
    // A directory read always reaches the file system; a stat may be answered from the
    // kernel's attribute cache even when the daemon is gone.
    match std::fs::read_dir(mountpoint).and_then(|_| std::fs::metadata(mountpoint)) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            tracing::warn!(
                "{}: stale mount of a dead daemon, unmounting it",
                mountpoint.display()
            );
            let ok = std::process::Command::new("umount")
                .arg("-l")
                .arg(mountpoint)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                anyhow::bail!(
                    "{} is a stale mount and could not be unmounted: run `umount -l {}`",
                    mountpoint.display(),
                    mountpoint.display()
                );
            }
            Ok(())
        }
        Err(e) => anyhow::bail!("cannot use mount point {}: {e}", mountpoint.display()),
        Ok(m) if !m.is_dir() => anyhow::bail!("{} is not a directory", mountpoint.display()),
        Ok(_) => {
            if let Some(m) = mounted_at(mountpoint) {
                anyhow::bail!(
                    "{} is already mounted ({}, source {}): stop whatever serves it (another chantal-fs?) first",
                    mountpoint.display(),
                    m.fstype,
                    m.source
                );
            }
            Ok(())
        }
    }
}

/// A mount found in /proc/self/mountinfo.
pub struct MountEntry {
    pub fstype: String,
    pub source: String,
}

/// The mount whose mount point is `path`, if any (a second daemon must not stack a mount on
/// a live one).
pub fn mounted_at(path: &Path) -> Option<MountEntry> {
    let path = std::fs::canonicalize(path).ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw": the mount point
    // is the fifth field (octal escapes for spaces and the like), then fstype and source
    // after the " - " separator.
    info.lines().rev().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let point = unescape_mountinfo(left.split(' ').nth(4)?);
        let mut right = right.split(' ');
        let (fstype, source) = (right.next()?, right.next()?);
        (Path::new(&point) == path).then(|| MountEntry {
            fstype: fstype.to_string(),
            source: unescape_mountinfo(source),
        })
    })
}

fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches the mount (MNT_DETACH): it leaves the directory tree at once, so new opens fail,
/// while files already open keep working until they are closed.
pub fn detach(mountpoint: &Path) -> anyhow::Result<()> {
    match rustix::mount::unmount(mountpoint, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) => Ok(()),
        // Not root: fusermount3 may detach a FUSE mount of its user.
        Err(rustix::io::Errno::PERM) => {
            let ok = std::process::Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(mountpoint)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                Ok(())
            } else {
                anyhow::bail!(
                    "cannot detach {}: fusermount3 -uz failed",
                    mountpoint.display()
                )
            }
        }
        Err(e) => anyhow::bail!("cannot detach {}: {e}", mountpoint.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/srv/my\040repos"), "/srv/my repos");
        assert_eq!(unescape_mountinfo(r"tab\011here\134"), "tab\there\\");
        assert_eq!(unescape_mountinfo(r"short\04"), r"short\04");
    }

    #[test]
    fn the_root_is_a_mount_and_a_fresh_directory_is_not() {
        assert!(mounted_at(Path::new("/")).is_some());
        let dir = tempfile::tempdir().unwrap();
        assert!(mounted_at(dir.path()).is_none());
        clear_stale_mount(dir.path()).unwrap();
        let err = clear_stale_mount(&dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("cannot use mount point"), "{err}");
    }
}
