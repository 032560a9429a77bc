//! A package's identity: name, epoch, version, release and architecture.

use std::cmp::Ordering;
use std::fmt;

use super::evr::compare_evr;

/// A package's identity. Displayed as rpm and dnf print it (`name-[epoch:]version-release.arch`);
/// ordered by name and architecture, then by rpm's own version order (`1.10` after `1.9`,
/// `1.0~rc1` before `1.0`), the spelling breaking ties (so `1.0` and `1.00`, equal to rpm, are
/// still two distinct values).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nevra {
    pub name: String,
    pub epoch: i64,
    pub version: String,
    pub release: String,
    pub arch: String,
}

impl Nevra {
    pub fn new(name: &str, epoch: i64, version: &str, release: &str, arch: &str) -> Nevra {
        Nevra {
            name: name.into(),
            epoch,
            version: version.into(),
            release: release.into(),
            arch: arch.into(),
        }
    }

    /// Parses `name-[epoch:]version-release.arch` (the name may contain dashes).
    pub fn parse(s: &str) -> Option<Nevra> {
        let (rest, arch) = s.rsplit_once('.')?;
        let (rest, release) = rest.rsplit_once('-')?;
        let (name, ev) = rest.rsplit_once('-')?;
        let (epoch, version) = match ev.split_once(':') {
            Some((e, v)) => (e.parse().ok()?, v),
            None => (0, ev),
        };
        Some(Nevra::new(name, epoch, version, release, arch))
    }

    /// Epoch, version and release, as rpm compares them.
    pub fn evr(&self) -> (i64, &str, &str) {
        (self.epoch, &self.version, &self.release)
    }

    /// `name.arch`: what a newer version of the package replaces.
    pub fn name_arch(&self) -> (&str, &str) {
        (&self.name, &self.arch)
    }

    /// The same identity, borrowed.
    pub fn borrowed(&self) -> NevraRef<'_> {
        NevraRef {
            name: &self.name,
            epoch: self.epoch,
            version: &self.version,
            release: &self.release,
            arch: &self.arch,
        }
    }
}

/// A package's identity borrowed from wherever its strings are kept (a [`Nevra`], or a
/// record that keeps a package's strings in one allocation), displayed as [`Nevra`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NevraRef<'a> {
    pub name: &'a str,
    pub epoch: i64,
    pub version: &'a str,
    pub release: &'a str,
    pub arch: &'a str,
}

impl<'a> NevraRef<'a> {
    /// Epoch, version and release, as rpm compares them.
    pub fn evr(&self) -> (i64, &'a str, &'a str) {
        (self.epoch, self.version, self.release)
    }

    /// `name.arch`: what a newer version of the package replaces.
    pub fn name_arch(&self) -> (&'a str, &'a str) {
        (self.name, self.arch)
    }

    pub fn to_nevra(&self) -> Nevra {
        Nevra::new(self.name, self.epoch, self.version, self.release, self.arch)
    }
}

/// A record that describes one package (a [`Nevra`], a catalogue row, a parsed upstream
/// entry): what retention and the plan read, without a copy of each identity.
pub trait HasNevra {
    fn nevra_ref(&self) -> NevraRef<'_>;
}

impl HasNevra for Nevra {
    fn nevra_ref(&self) -> NevraRef<'_> {
        self.borrowed()
    }
}

impl HasNevra for NevraRef<'_> {
    fn nevra_ref(&self) -> NevraRef<'_> {
        *self
    }
}

impl<T: HasNevra + ?Sized> HasNevra for &T {
    fn nevra_ref(&self) -> NevraRef<'_> {
        (**self).nevra_ref()
    }
}

impl fmt::Display for NevraRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch == 0 {
            write!(
                f,
                "{}-{}-{}.{}",
                self.name, self.version, self.release, self.arch
            )
        } else {
            write!(
                f,
                "{}-{}:{}-{}.{}",
                self.name, self.epoch, self.version, self.release, self.arch
            )
        }
    }
}

impl fmt::Display for Nevra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.borrowed().fmt(f)
    }
}

impl Ord for Nevra {
    fn cmp(&self, other: &Self) -> Ordering {
        self.name_arch()
            .cmp(&other.name_arch())
            .then_with(|| compare_evr(self.evr(), other.evr()))
            .then_with(|| self.evr().cmp(&other.evr()))
    }
}

impl PartialOrd for Nevra {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::Nevra;

    #[test]
    fn displays_and_parses_as_rpm_does() {
        for s in [
            "bash-5.1-1.x86_64",
            "tool-1:3.0-1.el9.x86_64",
            "python3-foo-bar-2-3.noarch",
        ] {
            let n = Nevra::parse(s).unwrap();
            assert_eq!(n.to_string(), s);
            assert_eq!(n.borrowed().to_string(), s);
            assert_eq!(n.borrowed().to_nevra(), n);
        }
        let n = Nevra::parse("python3-foo-bar-1:2-3.noarch").unwrap();
        assert_eq!(
            (n.name.as_str(), n.epoch, n.arch.as_str()),
            ("python3-foo-bar", 1, "noarch")
        );
        assert_eq!(Nevra::parse("nodash"), None);
    }

    #[test]
    fn orders_by_rpm_version_order_and_stays_consistent_with_equality() {
        let p = |s| Nevra::parse(s).unwrap();
        assert!(p("a-1.10-1.x86_64") > p("a-1.9-1.x86_64"));
        assert!(p("a-1.0~rc1-1.x86_64") < p("a-1.0-1.x86_64"));
        assert!(p("a-1:0.1-1.x86_64") > p("a-9-1.x86_64"));
        assert!(p("a-9-1.aarch64") < p("a-1-1.x86_64"), "name.arch first");
        // Equal to rpm, distinct values: ordered, never Equal.
        assert_ne!(
            p("a-1.0-1.x86_64").cmp(&p("a-1.00-1.x86_64")),
            std::cmp::Ordering::Equal
        );
    }
}
