//! Keeping the view current: the catalogue announces commits (PostgreSQL's LISTEN/NOTIFY,
//! SQLite's data_version) and is asked anyway every second; after each refresh that moved
//! `latest/`, the kernel is told to forget the entries that now mean something else, and told
//! again a moment later, for a lookup answered across the move; then it is given the new
//! tree's entries (see [`Kernel::prefill`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::view::{Invalidations, View};

/// How often the catalogue is asked for new versions and snapshots without an announcement.
pub const REFRESH: Duration = Duration::from_secs(1);
/// When latest moves, the kernel is told again this much later to forget the old entries: a
/// lookup answered just before the move may have re-cached one after the first telling. Short,
/// since until then such a client (nginx stats every request) sees the previous version.
pub const REINVALIDATE: Duration = Duration::from_millis(100);

/// What the refresher tells the kernel (fuser's notifier in the daemon, a recorder in tests).
pub trait Kernel {
    /// Forget the entry `name` of directory `parent` (nothing happens if it holds none).
    fn forget(&self, parent: u64, name: &str);
    /// Give the kernel the entries of `repo`'s new `latest/` tree before its readers ask, so
    /// that their first opens after a move cost no LOOKUP. Called after the old entries were
    /// forgotten for the last time: forgetting `latest/Packages` drops everything below it.
    fn prefill(&self, repo: &str);
}

/// The refresher's state: when it last asked the catalogue, and what it must tell the kernel
/// again, when.
pub struct Refresher {
    view: Arc<View>,
    refreshed: Instant,
    again: Vec<(Instant, Invalidations)>,
}

impl Refresher {
    pub fn new(view: Arc<View>, now: Instant) -> Refresher {
        Refresher {
            view,
            refreshed: now,
            again: Vec::new(),
        }
    }

    /// When the next turn is due without an announcement.
    pub fn next_wake(&self) -> Instant {
        self.again
            .iter()
            .map(|(at, _)| *at)
            .fold(self.refreshed + REFRESH, std::cmp::min)
    }

    /// One turn at `now`: refreshes the view if a commit was `announced` or the last refresh is
    /// older than [`REFRESH`], then tells the kernel what the refresh made wrong and what is due
    /// again.
    pub fn turn(&mut self, announced: bool, now: Instant, kernel: &dyn Kernel) {
        let fresh = if announced || now >= self.refreshed + REFRESH {
            self.refreshed = now;
            self.view.refresh()
        } else {
            Invalidations::default()
        };
        let (due, later): (Vec<_>, Vec<_>) = self.again.drain(..).partition(|(at, _)| *at <= now);
        self.again = later;
        for (parent, name) in fresh
            .entries
            .iter()
            .chain(due.iter().flat_map(|(_, i)| i.entries.iter()))
        {
            kernel.forget(*parent, name);
        }
        for repo in due.iter().flat_map(|(_, i)| i.latest_moved.iter()) {
            kernel.prefill(repo);
        }
        if !fresh.is_empty() {
            self.again.push((now + REINVALIDATE, fresh));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Mutex;

    use super::*;
    use crate::source::{Clock, ManualClock, MemorySource};
    use crate::view::tests::leaf;
    use crate::view::{Options, ROOT_INO};

    #[derive(Default)]
    struct Recorder {
        forgotten: Mutex<Vec<(u64, String)>>,
        /// (repositories prefilled, entries forgotten before each)
        prefilled: Mutex<Vec<(String, usize)>>,
    }

    impl Kernel for Recorder {
        fn forget(&self, parent: u64, name: &str) {
            self.forgotten
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((parent, name.to_string()));
        }
        fn prefill(&self, repo: &str) {
            let forgotten = self
                .forgotten
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .len();
            self.prefilled
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((repo.to_string(), forgotten));
        }
    }

    impl Recorder {
        fn take(&self) -> Vec<(u64, String)> {
            let mut v =
                std::mem::take(&mut *self.forgotten.lock().unwrap_or_else(|p| p.into_inner()));
            v.sort();
            v
        }
        fn prefilled(&self) -> Vec<(String, usize)> {
            std::mem::take(&mut *self.prefilled.lock().unwrap_or_else(|p| p.into_inner()))
        }
    }

    #[test]
    fn a_move_of_latest_is_forgotten_at_once_and_again_shortly_after() {
        let source = Arc::new(MemorySource::default());
        let clock = Arc::new(ManualClock::default());
        let view = Arc::new(View::new(
            source.clone(),
            PathBuf::from("/data"),
            Options::default(),
            clock.clone(),
        ));
        source.publish(
            "r",
            1,
            vec![leaf("repodata/repomd.xml", 1), leaf("a.rpm", 1)],
        );
        let kernel = Recorder::default();
        let start = clock.now();
        let mut r = Refresher::new(Arc::clone(&view), start);
        r.turn(true, start, &kernel);
        // A client looks at latest/: the kernel may now hold its entries.
        let repo = view.lookup(ROOT_INO, "r").unwrap().ino;
        let latest = view.lookup(repo, "latest").unwrap().ino;
        view.lookup(latest, "repodata").unwrap();
        view.lookup(latest, "a.rpm").unwrap();
        assert!(kernel.take().is_empty());

        source.publish("r", 2, vec![leaf("repodata/repomd.xml", 2)]);
        // Not announced and not due: nothing asked, nothing forgotten.
        let t = start + Duration::from_millis(10);
        r.turn(false, t, &kernel);
        assert!(kernel.take().is_empty());
        assert_eq!(r.next_wake(), start + REFRESH);
        // Announced: refreshed, and the entries given out under latest/ are forgotten.
        r.turn(true, t, &kernel);
        let want = vec![
            (latest, "a.rpm".to_string()),
            (latest, "repodata".to_string()),
        ];
        assert_eq!(kernel.take(), want);
        assert_eq!(r.next_wake(), t + REINVALIDATE);
        // ... and again once REINVALIDATE has passed, then not any more.
        r.turn(false, t + REINVALIDATE / 2, &kernel);
        assert!(kernel.take().is_empty());
        assert!(
            kernel.prefilled().is_empty(),
            "not before the last forgetting"
        );
        r.turn(false, t + REINVALIDATE, &kernel);
        // The new tree goes to the kernel after the old entries were forgotten again (the
        // forgetting of `repodata` would drop what a prefill put below it).
        assert_eq!(kernel.prefilled(), [("r".to_string(), 2)]);
        assert_eq!(kernel.take(), want);
        r.turn(false, t + REINVALIDATE * 2, &kernel);
        assert!(kernel.take().is_empty());
        assert!(kernel.prefilled().is_empty(), "once per move");
        // Without announcements the catalogue is still asked every REFRESH.
        source.publish("r", 3, vec![leaf("repodata/repomd.xml", 3)]);
        view.lookup(latest, "repodata").unwrap();
        r.turn(false, t + REFRESH, &kernel);
        assert_eq!(kernel.take(), vec![(latest, "repodata".to_string())]);
    }
}
