//! The on-disk shape of configuration files, exactly as operators write them. Validation that
//! serde can do while reading (unknown keys, types, enums, URL schemes, names) happens here so
//! that the error carries serde_yaml's line number.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// Global settings: the main file, or an included file without a `name` key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalFile {
    pub include: Option<Include>,
    pub storage: Option<StorageFile>,
    pub database: Option<DatabaseFile>,
    pub download: Option<DownloadFile>,
    pub environments: Option<Vec<String>>,
    pub metrics: Option<MetricsFile>,
    pub fetch: Option<FetchFile>,
}

/// `fetch:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchFile {
    /// The Unix socket chantal fetchd listens on and chantal-fs connects to.
    pub socket: Option<PathBuf>,
}

/// `metrics:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    /// node_exporter's textfile collector file to (re)write after every sync and pool verify.
    pub textfile: Option<PathBuf>,
}

/// `include:` takes one glob or a list of globs.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Include {
    One(String),
    Many(Vec<String>),
}

impl Include {
    pub fn patterns(&self) -> Vec<&str> {
        match self {
            Include::One(p) => vec![p.as_str()],
            Include::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageFile {
    pub base_path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseFile {
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadFile {
    pub workers: Option<Positive>,
    pub retries: Option<u32>,
    pub timeout: Option<Positive>,
    pub proxy: Option<ProxyUrl>,
    pub policy: Option<super::DownloadPolicy>,
}

/// A repository's `download:` (its policy only; the rest is the main configuration's).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoDownloadFile {
    pub policy: Option<super::DownloadPolicy>,
}

/// One repository: an included file with a `name` key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoFile {
    pub name: RepoName,
    #[serde(rename = "type", default)]
    pub kind: super::RepoType,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub upstream: UpstreamFile,
    #[serde(default)]
    pub credentials: CredentialsFile,
    #[serde(default)]
    pub rpm: RpmFile,
    #[serde(default)]
    pub filters: FiltersFile,
    #[serde(default)]
    pub retention: super::Retention,
    pub publish: Option<PublishFile>,
    #[serde(default)]
    pub download: RepoDownloadFile,
}

/// `filters:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FiltersFile {
    pub include: Option<Vec<String>>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub exclude_source: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    pub url: UpstreamUrl,
    pub proxy: Option<ProxyUrl>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsFile {
    #[serde(rename = "type", default)]
    pub kind: CredentialsType,
    pub username: Option<String>,
    pub password: Option<String>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialsType {
    #[default]
    None,
    Basic,
    ClientCert,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpmFile {
    pub architectures: Option<Vec<Arch>>,
    #[serde(default)]
    pub gpgcheck: bool,
    pub gpgkey_url: Option<String>,
    #[serde(default)]
    pub gpgkeys: Vec<String>,
    #[serde(default)]
    pub gpgkey_fingerprints: Vec<String>,
    #[serde(default)]
    pub repo_gpgcheck: bool,
    #[serde(default)]
    pub installer_tree: super::InstallerTree,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishFile {
    pub latest_path: Option<PathBuf>,
    pub snapshots_path: Option<PathBuf>,
    pub environments_path: Option<PathBuf>,
    #[serde(default)]
    pub link: super::LinkMode,
    pub sign: Option<SignFile>,
    pub base_url: Option<String>,
}

/// `publish.sign:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignFile {
    pub key: Option<PathBuf>,
    pub passphrase_file: Option<PathBuf>,
    pub command: Option<PathBuf>,
    pub public_key: Option<PathBuf>,
    pub timeout: Option<super::Span>,
}

pub use crate::names::{
    check_repo_name, check_snapshot_name, valid_name, RepoName, MAX_REPO_NAME, MAX_SNAPSHOT_NAME,
    RESERVED_SNAPSHOT_NAMES,
};

/// An upstream URL: http, https or file (absolute path). Stored without a trailing slash.
#[derive(Debug, Clone)]
pub struct UpstreamUrl(pub String);

impl<'de> Deserialize<'de> for UpstreamUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(de::Error::custom(format!(
                "{s:?} is not a URL: use http://, https:// or file:///"
            )));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" if !rest.is_empty() && !rest.starts_with('/') => {}
            "http" | "https" => {
                return Err(de::Error::custom(format!("URL {s:?} has no host")));
            }
            "file" if rest.starts_with('/') => {}
            "file" => {
                return Err(de::Error::custom(format!(
                    "file URL {s:?} needs an absolute path (file:///srv/repo)"
                )));
            }
            other => {
                return Err(de::Error::custom(format!(
                    "unsupported URL scheme '{other}' in {s:?}: use http, https or file"
                )));
            }
        }
        Ok(UpstreamUrl(s.trim_end_matches('/').to_string()))
    }
}

/// A proxy URL: http or https.
#[derive(Debug, Clone)]
pub struct ProxyUrl(pub String);

impl<'de> Deserialize<'de> for ProxyUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            Ok(ProxyUrl(s))
        } else {
            Err(de::Error::custom(format!(
                "unsupported proxy URL {:?}: use http:// or https://",
                crate::redact::redact_url(&s)
            )))
        }
    }
}

/// An architecture name as rpm writes it (`x86_64`, `aarch64`, `noarch`, `src`, ...).
#[derive(Debug, Clone)]
pub struct Arch(pub String);

impl<'de> Deserialize<'de> for Arch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            Ok(Arch(s))
        } else {
            Err(de::Error::custom(format!("invalid architecture {s:?}")))
        }
    }
}

/// A whole number of at least 1 (workers, timeout seconds).
#[derive(Debug, Clone, Copy)]
pub struct Positive(pub u64);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Positive;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number of at least 1")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Positive, E> {
                if v == 0 {
                    Err(E::custom("must be at least 1"))
                } else {
                    Ok(Positive(v))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Positive, E> {
                if v < 1 {
                    Err(E::custom("must be at least 1"))
                } else {
                    Ok(Positive(v.unsigned_abs()))
                }
            }
        }
        d.deserialize_u64(V)
    }
}
