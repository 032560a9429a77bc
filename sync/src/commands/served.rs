//! Which trees serve something that versions `a <= N < b` of a repository hold: latest, the
//! versions still in the catalogue, snapshots and environments. Shared by `pool verify`
//! (what a damaged file breaks), `package search/show` and `advisory search`.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use chantal_common::catalogue::{Catalogue, EnvPointer, SnapshotRecord};

/// Every repository's versions, latest, snapshots and environment pointers, read once.
pub struct Trees {
    versions: BTreeMap<String, Vec<i64>>,
    latest: HashMap<String, i64>,
    pub snapshots: Vec<SnapshotRecord>,
    pub environments: Vec<EnvPointer>,
}

/// Where something is served in one repository.
#[derive(Debug, Clone, Serialize)]
pub struct Served {
    pub repository: String,
    /// Whether the repository's latest version holds it.
    pub latest: bool,
    /// The versions still in the catalogue that hold it.
    pub versions: Vec<i64>,
    pub snapshots: Vec<String>,
    pub environments: Vec<String>,
}

impl Trees {
    pub fn load(catalogue: &Catalogue) -> anyhow::Result<Trees> {
        let mut versions: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for (repo, number, _) in catalogue.versions()? {
            versions.entry(repo).or_default().push(number);
        }
        let latest = catalogue
            .repository_summaries()?
            .into_iter()
            .filter_map(|s| s.latest_version.map(|v| (s.name, v)))
            .collect();
        Ok(Trees {
            versions,
            latest,
            snapshots: catalogue.snapshots(None)?,
            environments: catalogue.environments(None)?,
        })
    }

    /// The latest version of `repo`, if it has one.
    pub fn latest(&self, repo: &str) -> Option<i64> {
        self.latest.get(repo).copied()
    }

    /// Where the versions of `repo` for which `holds` is true serve it; `None` when no
    /// version still in the catalogue does.
    pub fn served(&self, repo: &str, holds: impl Fn(i64) -> bool) -> Option<Served> {
        let versions: Vec<i64> = self
            .versions
            .get(repo)
            .map(|v| v.iter().copied().filter(|&v| holds(v)).collect())
            .unwrap_or_default();
        if versions.is_empty() {
            return None;
        }
        Some(Served {
            repository: repo.to_string(),
            latest: self.latest(repo).is_some_and(&holds),
            snapshots: self
                .snapshots
                .iter()
                .filter(|s| s.repository == repo && holds(s.version))
                .map(|s| s.name.clone())
                .collect(),
            environments: self
                .environments
                .iter()
                .filter(|e| e.repository == repo && holds(e.version))
                .map(|e| e.environment.clone())
                .collect(),
            versions,
        })
    }
}

impl Served {
    /// `r versions 1-3 (latest), snapshots s1 s2, environments prod`.
    pub fn describe(&self) -> String {
        let mut line = format!(
            "{} {} {}{}",
            self.repository,
            if self.versions.len() == 1 {
                "version"
            } else {
                "versions"
            },
            ranges(&self.versions),
            if self.latest { " (latest)" } else { "" }
        );
        if !self.snapshots.is_empty() {
            line.push_str(&format!(", snapshots {}", self.snapshots.join(" ")));
        }
        if !self.environments.is_empty() {
            line.push_str(&format!(", environments {}", self.environments.join(" ")));
        }
        line
    }
}

/// `1-3, 5, 7-8` from sorted numbers.
pub fn ranges(numbers: &[i64]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && numbers[i + 1] == end + 1 {
            i += 1;
            end = numbers[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ranges() {
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1-3, 5, 7-8");
        assert_eq!(ranges(&[4]), "4");
        assert_eq!(ranges(&[]), "");
    }
}
