//! The view without a kernel: what each path shows, inode stability, the grace period under
//! `latest/`, outages and the tree cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chantal_common::tree::Leaf;

use super::*;
use crate::source::{ManualClock, MemorySource};

pub(crate) fn leaf(href: &str, size: u64) -> (String, Leaf) {
    (
        href.to_string(),
        Leaf {
            pool_path: format!("pool/{href}"),
            size,
            mtime: 1_700_000_000,
        },
    )
}

pub(super) struct Fixture {
    pub source: Arc<MemorySource>,
    pub clock: Arc<ManualClock>,
    pub view: View,
}

impl Fixture {
    pub fn new(cached_trees: usize) -> Fixture {
        let source = Arc::new(MemorySource::default());
        let clock = Arc::new(ManualClock::default());
        let view = View::new(
            source.clone(),
            PathBuf::from("/data"),
            Options {
                grace: Duration::from_secs(600),
                cached_trees,
                ..Options::default()
            },
            clock.clone(),
        );
        Fixture {
            source,
            clock,
            view,
        }
    }

    /// The node at a slash-separated path from the mount's root, looked up one name at a time
    /// as the kernel does.
    pub fn resolve(&self, path: &str) -> Result<Attr, ViewError> {
        let mut attr = self.view.getattr(ROOT_INO)?;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            attr = self.view.lookup(attr.ino, part)?;
        }
        Ok(attr)
    }

    /// A directory's names (without `.` and `..`), read in chunks of `chunk` as a small
    /// kernel buffer would.
    pub fn list(&self, path: &str, chunk: usize) -> Result<Vec<String>, ViewError> {
        let ino = self.resolve(path)?.ino;
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let mut got = 0;
            self.view.readdir(ino, offset, |_, name, next| {
                if got == chunk {
                    return true;
                }
                got += 1;
                offset = next;
                if name != "." && name != ".." {
                    out.push(name.to_string());
                }
                false
            })?;
            if got == 0 {
                return Ok(out);
            }
        }
    }
}

#[test]
fn the_mount_shows_repositories_latest_and_snapshots() {
    let f = Fixture::new(32);
    f.source.publish(
        "baseos",
        1,
        vec![
            leaf("repodata/repomd.xml", 10),
            leaf("Packages/a-1.rpm", 100),
            leaf("Packages/b-1.rpm", 200),
        ],
    );
    f.source.snapshot("baseos", "2026-11", 1);
    // A repository whose first sync failed has no version: not shown.
    let _ = f.view.refresh();
    assert_eq!(f.list("", 100).unwrap(), ["baseos"]);
    assert_eq!(
        f.list("baseos", 100).unwrap(),
        ["latest", "snapshots", "versions", "at"]
    );
    assert_eq!(f.list("baseos/snapshots", 100).unwrap(), ["2026-11"]);
    assert_eq!(
        f.list("baseos/latest", 100).unwrap(),
        ["Packages", "repodata"]
    );
    assert_eq!(
        f.list("baseos/latest/Packages", 1).unwrap(),
        ["a-1.rpm", "b-1.rpm"],
        "readdir resumes at its offset"
    );
    let a = f.resolve("baseos/latest/Packages/b-1.rpm").unwrap();
    assert_eq!((a.kind, a.size, a.cache), (Kind::File, 200, Cache::Long));
    assert_eq!(
        f.view.path(a.ino).unwrap(),
        PathBuf::from("/data/pool/Packages/b-1.rpm")
    );
    assert_eq!(
        f.resolve("baseos/latest/repodata").unwrap().cache,
        Cache::Latest,
        "latest's root entries are invalidated when latest moves"
    );
    let dir = f.resolve("baseos/latest/Packages").unwrap();
    assert_eq!(f.view.path(dir.ino), Err(ViewError::IsADirectory));
    assert_eq!(
        f.view.readdir(a.ino, 0, |_, _, _| false),
        Err(ViewError::NotADirectory)
    );
    assert_eq!(f.resolve("baseos/latest/nope"), Err(ViewError::NotFound));
    assert_eq!(
        f.resolve("baseos/snapshots/2026-12"),
        Err(ViewError::NotFound)
    );
    assert_eq!(f.resolve("other"), Err(ViewError::NotFound));
    assert_eq!(
        f.view.getattr(TREE_BASE + 1_000_000),
        Err(ViewError::NotFound)
    );
    // The same file under a snapshot is another node (its own context), with the same bytes.
    let s = f
        .resolve("baseos/snapshots/2026-11/Packages/b-1.rpm")
        .unwrap();
    assert_ne!(s.ino, a.ino);
    assert_eq!(f.view.path(s.ino), f.view.path(a.ino));
    assert_eq!(
        f.source.builds(),
        1,
        "one tree per version, shared by its contexts"
    );
}

#[test]
fn inode_numbers_survive_evictions_and_latest_moving() {
    let f = Fixture::new(1);
    f.source
        .publish("r", 1, vec![leaf("a.rpm", 1), leaf("d/b.rpm", 2)]);
    f.source.snapshot("r", "s1", 1);
    let _ = f.view.refresh();
    let latest_b = f.resolve("r/latest/d/b.rpm").unwrap().ino;
    let snap_b = f.resolve("r/snapshots/s1/d/b.rpm").unwrap().ino;
    f.source.publish("r", 2, vec![leaf("c.rpm", 3)]);
    let _ = f.view.refresh();
    // Only one tree fits the cache: every step below rebuilds one.
    assert_eq!(f.resolve("r/latest/c.rpm").unwrap().size, 3);
    assert_eq!(f.resolve("r/snapshots/s1/d/b.rpm").unwrap().ino, snap_b);
    f.view.forget_trees();
    assert_eq!(f.view.getattr(snap_b).unwrap().size, 2);
    assert_eq!(
        f.resolve("r/latest/d/b.rpm").unwrap().ino,
        latest_b,
        "version 1 under latest/ (within the grace period) keeps its numbers"
    );
    assert!(f.source.builds() >= 4);
}

#[test]
fn a_restarted_daemon_numbers_files_differently() {
    let source = Arc::new(MemorySource::default());
    source.publish("r", 1, vec![leaf("a.rpm", 1), leaf("d/b.rpm", 2)]);
    let view = |options: Options| {
        let f = Fixture {
            source: Arc::clone(&source),
            clock: Arc::new(ManualClock::default()),
            view: View::new(
                source.clone(),
                PathBuf::from("/data"),
                options,
                Arc::new(ManualClock::default()),
            ),
        };
        let _ = f.view.refresh();
        let b = f.resolve("r/latest/d/b.rpm").unwrap();
        assert_eq!(f.view.getattr(b.ino).unwrap(), b);
        assert_eq!(
            f.view.path(b.ino).unwrap(),
            PathBuf::from("/data/pool/d/b.rpm")
        );
        b.ino
    };
    let (one, two) = (
        view(Options::default().fresh_inodes()),
        view(Options::default().fresh_inodes()),
    );
    assert_ne!(one, two, "two daemons gave b.rpm the same number");
    // The highest start still leaves room for every number.
    let top = view(Options {
        tree_inodes_from: TREE_BASE + (TREE_STARTS - 1) * TREE_SPAN,
        ..Options::default()
    });
    assert!(top > TREE_BASE + (TREE_STARTS - 1) * TREE_SPAN);
}

#[test]
fn a_snapshot_name_given_to_another_version_shows_that_version() {
    let f = Fixture::new(32);
    f.source.publish("r", 1, vec![leaf("a.rpm", 1)]);
    f.source.snapshot("r", "s", 1);
    let _ = f.view.refresh();
    let old = f.resolve("r/snapshots/s/a.rpm").unwrap();
    f.source.publish("r", 2, vec![leaf("b.rpm", 2)]);
    f.source.delete_snapshot("r", "s");
    let _ = f.view.refresh();
    assert_eq!(f.resolve("r/snapshots/s"), Err(ViewError::NotFound));
    f.source.snapshot("r", "s", 2);
    let _ = f.view.refresh();
    assert_eq!(f.list("r/snapshots/s", 10).unwrap(), ["b.rpm"]);
    assert_eq!(f.resolve("r/snapshots/s/a.rpm"), Err(ViewError::NotFound));
    assert_eq!(
        f.resolve("r/snapshots/s").unwrap().cache,
        Cache::Short,
        "a snapshot's root may change meaning: cached briefly"
    );
    // A kernel still holding the old inode gets version 1's file: it never changes.
    assert_eq!(f.view.getattr(old.ino).unwrap().size, 1);
}

#[test]
fn the_previous_latest_is_served_for_the_grace_period_then_forgotten() {
    let f = Fixture::new(32);
    f.source.publish(
        "r",
        1,
        vec![leaf("repodata/repomd.xml", 1), leaf("Packages/old.rpm", 1)],
    );
    let _ = f.view.refresh();
    assert_eq!(f.list("r/latest", 10).unwrap(), ["Packages", "repodata"]);
    // A reader (a listing alone is not one, see below).
    assert_eq!(f.resolve("r/latest/repodata/repomd.xml").unwrap().size, 1);
    f.source.publish(
        "r",
        2,
        vec![leaf("repodata/repomd.xml", 2), leaf("new/new.rpm", 2)],
    );
    let inval = f.view.refresh();
    let latest_ino = f.resolve("r/latest").unwrap().ino;
    let mut names: Vec<&str> = inval
        .entries
        .iter()
        .inspect(|(dir, _)| assert_eq!(*dir, latest_ino))
        .map(|(_, n)| n.as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["Packages", "repodata"],
        "the entries the kernel may hold"
    );
    assert_eq!(
        inval.latest_moved,
        ["r"],
        "the tree to give the kernel next"
    );
    assert_eq!(f.list("r/latest", 10).unwrap(), ["new", "repodata"]);
    assert_eq!(f.resolve("r/latest/repodata/repomd.xml").unwrap().size, 2);
    // A client that read version 1's repomd.xml still gets its packages...
    assert_eq!(f.resolve("r/latest/Packages/old.rpm").unwrap().size, 1);
    assert_eq!(
        f.resolve("r/latest/Packages").unwrap().cache,
        Cache::Short,
        "a name latest/ answers from another version only for now"
    );
    f.clock.advance(Duration::from_secs(599));
    assert!(f.resolve("r/latest/Packages/old.rpm").is_ok());
    // ...until the grace period is over.
    f.clock.advance(Duration::from_secs(2));
    let _ = f.view.refresh();
    assert_eq!(
        f.resolve("r/latest/Packages/old.rpm"),
        Err(ViewError::NotFound)
    );
    assert_eq!(f.resolve("r/latest/new/new.rpm").unwrap().size, 2);
}

#[test]
fn only_a_latest_readers_looked_into_is_given_to_the_kernel_when_it_moves() {
    let f = Fixture::new(32);
    for r in ["read", "unread"] {
        f.source.publish(r, 1, vec![leaf("repodata/repomd.xml", 1)]);
    }
    let _ = f.view.refresh();
    f.resolve("read/latest/repodata/repomd.xml").unwrap();
    f.resolve("unread/latest").unwrap();
    for r in ["read", "unread"] {
        f.source.publish(r, 2, vec![leaf("repodata/repomd.xml", 2)]);
    }
    assert_eq!(f.view.refresh().latest_moved, ["read"]);
    // Listed only (as the prefill does): not a reader.
    f.list("read/latest", 10).unwrap();
    f.source
        .publish("read", 3, vec![leaf("repodata/repomd.xml", 3)]);
    assert!(f.view.refresh().latest_moved.is_empty(), "listed, not read");
    // Read again: the next move gives it to the kernel again.
    f.resolve("read/latest/repodata").unwrap();
    f.source
        .publish("read", 4, vec![leaf("repodata/repomd.xml", 4)]);
    assert_eq!(f.view.refresh().latest_moved, ["read"]);
    f.source
        .publish("read", 5, vec![leaf("repodata/repomd.xml", 5)]);
    assert!(f.view.refresh().latest_moved.is_empty(), "not read since");
}

#[test]
fn an_outage_keeps_what_is_cached_and_fails_the_rest_quickly() {
    let f = Fixture::new(32);
    f.source.publish("r", 1, vec![leaf("a.rpm", 1)]);
    f.source.snapshot("r", "s", 1);
    f.source.publish("q", 1, vec![leaf("q.rpm", 1)]);
    let _ = f.view.refresh();
    assert!(f.resolve("r/latest/a.rpm").is_ok());
    f.source.set_down(true);
    assert!(f.view.refresh().is_empty());
    assert_eq!(
        f.list("", 10).unwrap(),
        ["q", "r"],
        "the last listing stays"
    );
    assert!(f.resolve("r/latest/a.rpm").is_ok(), "cached tree");
    assert!(f.resolve("r/snapshots/s/a.rpm").is_ok(), "same version");
    assert_eq!(f.resolve("q/latest/q.rpm"), Err(ViewError::Unavailable));
    let builds = f.source.builds();
    assert_eq!(f.resolve("q/latest/q.rpm"), Err(ViewError::Unavailable));
    assert_eq!(
        f.source.builds(),
        builds,
        "no new attempt during a known outage"
    );
    f.source.set_down(false);
    let _ = f.view.refresh();
    assert_eq!(f.resolve("q/latest/q.rpm").unwrap().size, 1);
}

#[test]
fn a_version_whose_tree_cannot_be_built_is_an_io_error_not_an_outage() {
    let f = Fixture::new(32);
    // Two files at one path: the catalogue would never hold this, the view must not panic.
    f.source
        .publish("r", 1, vec![leaf("a.rpm", 1), leaf("a.rpm/b.rpm", 1)]);
    f.source.publish("ok", 1, vec![leaf("x.rpm", 1)]);
    let _ = f.view.refresh();
    assert_eq!(f.resolve("r/latest/a.rpm"), Err(ViewError::Unavailable));
    assert_eq!(f.resolve("ok/latest/x.rpm").unwrap().size, 1);
}

#[test]
fn environments_are_views_of_their_snapshots_that_move_in_one_refresh() {
    let f = Fixture::new(8);
    for repo in ["baseos", "appstream"] {
        f.source
            .publish(repo, 1, vec![leaf("repodata/repomd.xml", 10)]);
        f.source.snapshot(repo, "2025-01", 1);
        f.source
            .publish(repo, 2, vec![leaf("repodata/repomd.xml", 20)]);
        f.source.snapshot(repo, "2025-02", 2);
    }
    f.view.refresh();
    // No environment yet: no env/ directory.
    assert_eq!(
        f.list("baseos", 64).unwrap(),
        ["latest", "snapshots", "versions", "at"]
    );
    assert_eq!(f.resolve("baseos/env"), Err(ViewError::NotFound));

    for repo in ["baseos", "appstream"] {
        f.source.promote(repo, "prod", "2025-01");
    }
    f.view.refresh();
    assert_eq!(
        f.list("baseos", 64).unwrap(),
        ["latest", "snapshots", "env", "versions", "at"]
    );
    assert_eq!(f.list("baseos/env", 64).unwrap(), ["prod"]);
    let prod = f.resolve("baseos/env/prod").unwrap();
    assert_eq!(prod.kind, Kind::Dir);
    assert_eq!(f.view.readlink(prod.ino), Err(ViewError::NotFound));
    assert_eq!(f.list("baseos/env/prod", 64).unwrap(), ["repodata"]);
    // The kernel keeps none of the environment's own entries: every walk asks the view.
    let repodata = f.resolve("baseos/env/prod/repodata").unwrap();
    assert_eq!(repodata.cache, Cache::Never);
    let mut listed = Vec::new();
    f.view
        .readdir(prod.ino, 2, |a, name, _| {
            listed.push((name.to_string(), a.cache));
            false
        })
        .unwrap();
    assert_eq!(listed, [("repodata".to_string(), Cache::Never)]);
    let repomd = f.resolve("baseos/env/prod/repodata/repomd.xml").unwrap();
    assert_eq!((repomd.size, repomd.cache), (10, Cache::Long));
    // Its own inode numbers: not the snapshot's (a miss resolves differently there).
    assert_ne!(
        repomd.ino,
        f.resolve("baseos/snapshots/2025-01/repodata/repomd.xml")
            .unwrap()
            .ino
    );

    // A promotion reaches the view as one listing: both repositories switch in one refresh,
    // with nothing for the kernel to forget, and the environment keeps its inode.
    for repo in ["baseos", "appstream"] {
        f.source.promote(repo, "prod", "2025-02");
    }
    assert_eq!(
        f.resolve("appstream/env/prod/repodata/repomd.xml")
            .unwrap()
            .size,
        10
    );
    assert!(f.view.refresh().is_empty());
    for repo in ["baseos", "appstream"] {
        assert_eq!(
            f.resolve(&format!("{repo}/env/prod/repodata/repomd.xml"))
                .unwrap()
                .size,
            20
        );
    }
    assert_eq!(f.resolve("baseos/env/prod").unwrap().ino, prod.ino);

    // Unset: gone at once, and env/ with it when nothing is left.
    f.source.unset("baseos", "prod");
    f.view.refresh();
    assert_eq!(f.resolve("baseos/env/prod"), Err(ViewError::NotFound));
    assert_eq!(f.resolve("baseos/env"), Err(ViewError::NotFound));
    assert!(f.resolve("appstream/env/prod/repodata").is_ok());
}

#[test]
fn after_a_promotion_the_environment_serves_the_previous_snapshot_for_the_grace_at_every_depth() {
    let f = Fixture::new(8);
    // A flat repository: packages, the key file and the installer tree at the tree's root.
    f.source.publish(
        "r",
        1,
        vec![
            leaf("repodata/repomd.xml", 1),
            leaf("repodata/old-primary.xml.gz", 1),
            leaf("hello-1.0-1.noarch.rpm", 1),
            leaf("RPM-GPG-KEY-r", 1),
            leaf(".treeinfo", 1),
            leaf("Packages/a-1.rpm", 1),
            leaf("images/pxeboot/vmlinuz", 1),
        ],
    );
    f.source.snapshot("r", "f1", 1);
    f.source.publish(
        "r",
        2,
        vec![
            leaf("repodata/repomd.xml", 2),
            leaf("repodata/new-primary.xml.gz", 2),
            leaf("hello-2.0-1.noarch.rpm", 2),
            leaf("Packages/a-2.rpm", 2),
        ],
    );
    f.source.snapshot("r", "f2", 2);
    f.source.promote("r", "test", "f1");
    f.view.refresh();
    // A client reads repomd.xml through env/test/ (its kernel holds nothing of it) ...
    assert_eq!(f.resolve("r/env/test/repodata/repomd.xml").unwrap().size, 1);
    let held_dir = f.resolve("r/env/test/Packages").unwrap().ino;
    f.source.promote("r", "test", "f2");
    f.view.refresh();
    // ... and then asks for what it names, at every depth.
    for path in [
        "hello-1.0-1.noarch.rpm",
        "RPM-GPG-KEY-r",
        ".treeinfo",
        "repodata/old-primary.xml.gz",
        "Packages/a-1.rpm",
        "images/pxeboot/vmlinuz",
    ] {
        let a = f
            .resolve(&format!("r/env/test/{path}"))
            .unwrap_or_else(|e| panic!("env/test/{path}: {e:?}"));
        assert_eq!((a.kind, a.size), (Kind::File, 1), "{path}");
    }
    // A directory of f1 the client still holds resolves names of f2 too.
    assert_eq!(f.view.lookup(held_dir, "a-2.rpm").unwrap().size, 2);
    // Listings show the snapshot as it is.
    assert_eq!(
        f.list("r/env/test", 10).unwrap(),
        ["Packages", "hello-2.0-1.noarch.rpm", "repodata"]
    );
    // A snapshot's tree is exactly what was frozen, grace or not.
    for path in [
        "hello-1.0-1.noarch.rpm",
        "RPM-GPG-KEY-r",
        ".treeinfo",
        "repodata/old-primary.xml.gz",
        "Packages/a-1.rpm",
        "images",
    ] {
        assert_eq!(
            f.resolve(&format!("r/snapshots/f2/{path}")),
            Err(ViewError::NotFound),
            "snapshots/f2/{path}"
        );
        assert_eq!(
            f.resolve(&format!("r/versions/2/{path}")),
            Err(ViewError::NotFound),
            "versions/2/{path}"
        );
    }
    assert_eq!(
        f.resolve("r/env/test/Packages/none.rpm"),
        Err(ViewError::NotFound)
    );
    f.clock.advance(Duration::from_secs(601));
    f.view.refresh();
    assert_eq!(
        f.resolve("r/env/test/hello-1.0-1.noarch.rpm"),
        Err(ViewError::NotFound),
        "after the grace period the environment is only its snapshot"
    );
    assert_eq!(
        f.resolve("r/env/test/Packages/a-1.rpm"),
        Err(ViewError::NotFound)
    );
}

#[test]
fn versions_and_points_in_time() {
    use crate::source::MEMORY_EPOCH;
    let f = Fixture::new(8);
    // Versions 1 and 2 are committed at MEMORY_EPOCH + 1 h and + 2 h.
    f.source.publish("r", 1, vec![leaf("a.rpm", 1)]);
    f.source.publish("r", 2, vec![leaf("b.rpm", 2)]);
    f.view.refresh();
    assert_eq!(
        f.list("r", 64).unwrap(),
        ["latest", "snapshots", "versions", "at"]
    );
    assert_eq!(f.list("r/versions", 64).unwrap(), ["1", "2"]);
    assert_eq!(f.list("r/versions/1", 64).unwrap(), ["a.rpm"]);
    assert_eq!(f.resolve("r/versions/3"), Err(ViewError::NotFound));
    assert_eq!(f.resolve("r/versions/01"), Err(ViewError::NotFound));
    let name = |secs: i64| {
        chrono::DateTime::from_timestamp(secs, 0)
            .unwrap()
            .format(AT_FORMAT)
            .to_string()
    };
    let v1 = MEMORY_EPOCH + 3600;
    let v2 = MEMORY_EPOCH + 7200;
    // at/ lists the instants at which latest changed.
    assert_eq!(f.list("r/at", 64).unwrap(), [name(v1), name(v2)]);
    let target = |t: i64| {
        f.resolve(&format!("r/at/{}", name(t)))
            .and_then(|a| f.view.readlink(a.ino))
    };
    assert_eq!(
        target(v1 - 1),
        Err(ViewError::NotFound),
        "before the first version"
    );
    assert_eq!(target(v1).unwrap(), "../versions/1");
    assert_eq!(
        target(v2 - 1).unwrap(),
        "../versions/1",
        "latest until version 2"
    );
    assert_eq!(target(v2).unwrap(), "../versions/2");
    assert_eq!(target(v2 + 86_400).unwrap(), "../versions/2");
    let future = chrono::Utc::now().timestamp() + 3600;
    assert_eq!(target(future), Err(ViewError::NotFound), "the future");
    // "Now" is the view's clock's: once it has moved past that instant, it exists.
    f.clock.advance(Duration::from_secs(7200));
    assert_eq!(target(future).unwrap(), "../versions/2");
    assert_eq!(f.resolve("r/at/yesterday"), Err(ViewError::NotFound));
    // One spelling per instant: no blanks, no other digits.
    for odd in [
        format!(" {}", name(v2)),
        format!("  {}", name(v2)),
        format!("{} ", name(v2)),
        name(v2).to_lowercase(),
    ] {
        assert_eq!(
            f.resolve(&format!("r/at/{odd}")),
            Err(ViewError::NotFound),
            "{odd:?}"
        );
    }
    // Two names of one version are one node.
    let a = f.resolve(&format!("r/at/{}", name(v1))).unwrap();
    let b = f.resolve(&format!("r/at/{}", name(v1 + 60))).unwrap();
    assert_eq!((a.ino, a.kind), (b.ino, Kind::Symlink));
    // A version cleanup removed is gone from versions/, and at/ no longer names it.
    f.source.forget_version("r", 1);
    f.view.refresh();
    assert_eq!(f.list("r/versions", 64).unwrap(), ["2"]);
    assert_eq!(target(v1), Err(ViewError::NotFound));
    // A version's files have the same inodes under versions/ as under a snapshot of it.
    f.source.snapshot("r", "s", 2);
    f.view.refresh();
    assert_eq!(
        f.resolve("r/versions/2/b.rpm").unwrap().ino,
        f.resolve("r/snapshots/s/b.rpm").unwrap().ino
    );
}

#[test]
fn versions_committed_within_one_second_are_one_instant() {
    let f = Fixture::new(8);
    f.source.publish("r", 1, vec![leaf("a.rpm", 1)]);
    f.source.publish("r", 2, vec![leaf("b.rpm", 2)]);
    f.source
        .set_committed("r", 2, crate::source::MEMORY_EPOCH + 3600);
    f.view.refresh();
    let at = f.list("r/at", 64).unwrap();
    assert_eq!(at.len(), 1, "{at:?}");
    let link = f.resolve(&format!("r/at/{}", at[0])).unwrap();
    assert_eq!(f.view.readlink(link.ino).unwrap(), "../versions/2");
}
