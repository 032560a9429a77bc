//! The names operators give things: repositories, snapshots and environments. Each becomes a
//! directory name (under the mount, the export and the lock directory), so each is checked once,
//! here, below both the configuration and the catalogue that take them.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer};

/// Longest repository name.
pub const MAX_REPO_NAME: usize = 64;
/// Longest snapshot (or environment) name.
pub const MAX_SNAPSHOT_NAME: usize = 128;
/// Names that commands give a meaning of their own (`snapshot diff --from latest`), so no
/// snapshot or environment may be called that (compared without case). A later keyword joins
/// this list.
pub const RESERVED_SNAPSHOT_NAMES: &[&str] = &["latest"];

/// Whether `name` is made of the characters a repository, snapshot or environment name may
/// use, and is not `.` or `..`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks a repository name; the error says what is wrong.
pub fn check_repo_name(name: &str) -> Result<(), String> {
    check(name, "repository", MAX_REPO_NAME, &[])
}

/// Checks a snapshot name; the error says what is wrong.
pub fn check_snapshot_name(name: &str) -> Result<(), String> {
    check(name, "snapshot", MAX_SNAPSHOT_NAME, RESERVED_SNAPSHOT_NAMES)
}

/// Checks an environment name (`environments:`): the rules of a snapshot name.
pub fn check_env_name(name: &str) -> Result<(), String> {
    check(
        name,
        "environment",
        MAX_SNAPSHOT_NAME,
        RESERVED_SNAPSHOT_NAMES,
    )
}

fn check(name: &str, what: &str, max: usize, reserved: &[&str]) -> Result<(), String> {
    if !valid_name(name) {
        return Err(format!(
            "invalid {what} name {name:?}: use letters, digits, '.', '_' and '-'"
        ));
    }
    if name.len() > max {
        return Err(format!(
            "{what} name {name:?} is {} characters long: at most {max}",
            name.len()
        ));
    }
    if let Some(word) = reserved.iter().find(|w| w.eq_ignore_ascii_case(name)) {
        let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        return Err(format!(
            "{name:?} cannot name {article} {what}: commands read {word:?} as the repository's latest version"
        ));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The name, checked.
            pub fn parse(s: &str) -> Result<$name, String> {
                $check(s)?;
                Ok($name(s.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A repository name: `[A-Za-z0-9._-]{1,64}`, not `.` or `..` (a directory name, and part
    /// of lock file names).
    RepoName,
    check_repo_name
);
name_type!(
    /// A snapshot name: up to 128 of the same characters, not `latest`.
    SnapshotName,
    check_snapshot_name
);
name_type!(
    /// An environment name: the rules of a snapshot name.
    EnvName,
    check_env_name
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_once_for_each_kind() {
        assert!(RepoName::parse("epel9").is_ok());
        assert!(RepoName::parse(&"r".repeat(65)).is_err());
        assert!(SnapshotName::parse(&"s".repeat(128)).is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "ä"] {
            assert!(RepoName::parse(bad).is_err(), "{bad:?}");
            assert!(SnapshotName::parse(bad).is_err(), "{bad:?}");
            assert!(EnvName::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            SnapshotName::parse("Latest").unwrap_err(),
            "\"Latest\" cannot name a snapshot: commands read \"latest\" as the repository's latest version"
        );
        assert_eq!(
            EnvName::parse("latest").unwrap_err(),
            "\"latest\" cannot name an environment: commands read \"latest\" as the repository's latest version"
        );
        assert!(
            RepoName::parse("latest").is_ok(),
            "a repository may be called latest"
        );
        assert_eq!(EnvName::parse("prod").unwrap().as_str(), "prod");
    }
}
