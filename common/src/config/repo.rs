//! One repository's file: its keys checked together and turned into a [`RepoConfig`].

use std::path::{Path, PathBuf};

use super::file::{self, CredentialsType, RepoFile};
use super::locate;
use super::types::*;
use super::yaml::{parent_dir, parse_strict};
use crate::error::{Error, Result};

/// `rpm.gpgkey_url`, `rpm.gpgkeys` and `rpm.gpgkey_fingerprints`, checked together: a check
/// asked for without a key to check against is an error here, not a sync that passes nothing.
fn parse_keys(
    rpm: &file::RpmFile,
    dir: &Path,
    fail: &dyn Fn(&[&str], String) -> Error,
) -> Result<(Vec<KeySource>, Vec<String>)> {
    let mut keys = Vec::new();
    let url_source = |s: &str, key: &str| -> Result<KeySource> {
        match s.split_once("://") {
            Some((scheme, rest)) => {
                if !matches!(scheme, "http" | "https" | "file") || rest.is_empty() {
                    return Err(fail(
                        &["rpm", key],
                        format!("{s:?}: use an http://, https:// or file:// URL, or a path"),
                    ));
                }
                Ok(KeySource::Url(s.to_string()))
            }
            None if s.is_empty() => Err(fail(&["rpm", key], "empty key location".into())),
            None => Ok(KeySource::File(dir.join(s))),
        }
    };
    if let Some(u) = &rpm.gpgkey_url {
        if !u.contains("://") {
            return Err(fail(
                &["rpm", "gpgkey_url"],
                format!("{u:?} is not a URL (a local file goes in rpm.gpgkeys)"),
            ));
        }
        keys.push(url_source(u, "gpgkey_url")?);
    }
    for k in &rpm.gpgkeys {
        keys.push(url_source(k, "gpgkeys")?);
    }
    let mut pins = Vec::new();
    for f in &rpm.gpgkey_fingerprints {
        let hex: String = f.chars().filter(|c| !c.is_whitespace()).collect();
        if !matches!(hex.len(), 40 | 64) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(fail(
                &["rpm", "gpgkey_fingerprints"],
                format!("{f:?} is not a full key fingerprint (40 or 64 hex digits)"),
            ));
        }
        pins.push(hex.to_ascii_uppercase());
    }
    if keys.is_empty() {
        for (key, set) in [
            ("gpgcheck", rpm.gpgcheck),
            ("repo_gpgcheck", rpm.repo_gpgcheck),
            ("gpgkey_fingerprints", !pins.is_empty()),
        ] {
            if set {
                return Err(fail(
                    &["rpm", key],
                    "no key to check against: set rpm.gpgkey_url or rpm.gpgkeys".into(),
                ));
            }
        }
    }
    Ok((keys, pins))
}

/// `publish.sign`: a key file (with an optional passphrase file) or a command with its public
/// key, not both.
fn parse_sign(
    sf: &file::SignFile,
    dir: &Path,
    fail: &dyn Fn(&[&str], String) -> Error,
) -> Result<SignConfig> {
    match (&sf.key, &sf.command) {
        (Some(key), None) => {
            if sf.public_key.is_some() {
                return Err(fail(
                    &["publish", "sign", "public_key"],
                    "public_key goes with command; a key file holds its public key".into(),
                ));
            }
            if sf.timeout.is_some() {
                return Err(fail(
                    &["publish", "sign", "timeout"],
                    "timeout goes with command: a key file signs in process".into(),
                ));
            }
            Ok(SignConfig::Key {
                key: dir.join(key),
                passphrase_file: sf.passphrase_file.as_ref().map(|p| dir.join(p)),
            })
        }
        (None, Some(command)) => {
            if sf.passphrase_file.is_some() {
                return Err(fail(
                    &["publish", "sign", "passphrase_file"],
                    "passphrase_file goes with key, not command".into(),
                ));
            }
            let public_key = sf.public_key.as_ref().ok_or_else(|| {
                fail(
                    &["publish", "sign", "command"],
                    "command needs public_key: the key clients check its signatures with".into(),
                )
            })?;
            let timeout = sf.timeout.map_or(SIGN_TIMEOUT, |t| t.0);
            if timeout.is_zero() {
                return Err(fail(
                    &["publish", "sign", "timeout"],
                    "must be longer than 0 (e.g. 60s, 5m)".into(),
                ));
            }
            Ok(SignConfig::Command {
                command: dir.join(command),
                public_key: dir.join(public_key),
                timeout,
            })
        }
        (Some(_), Some(_)) => Err(fail(
            &["publish", "sign"],
            "set key or command, not both".into(),
        )),
        (None, None) => Err(fail(&["publish", "sign"], "set key or command".into())),
    }
}

/// How a repository file reports a mistake: the dotted key and a message, at the key's line.
type Fail<'a> = dyn Fn(&[&str], String) -> Error + 'a;

pub(super) fn parse_repo(file: &Path, text: &str) -> Result<RepoConfig> {
    let raw: RepoFile = parse_strict(file, text)?;
    let dir = parent_dir(file);
    let at = |path: &[&str]| locate::line_of(text, path);
    let fail = |path: &[&str], message: String| Error::Config {
        file: file.to_path_buf(),
        line: at(path),
        key: path.join("."),
        message,
    };
    let cred_file = |key: &'static str, p: &PathBuf| CredentialFile {
        path: dir.join(p),
        key,
        line: at(&["credentials", key]),
    };
    let c = &raw.credentials;
    let auth = parse_auth(c, &fail, &cred_file)?;
    let (keys, gpgkey_fingerprints) = parse_keys(&raw.rpm, &dir, &fail)?;
    let filters = parse_filters(&raw.filters, &fail)?;
    check_retention(&raw.retention, &fail)?;
    let (publish, sign, base_url) = parse_publish(raw.publish, &dir, &fail)?;
    Ok(RepoConfig {
        line: at(&["name"]),
        name: raw.name.into_string(),
        kind: raw.kind,
        enabled: raw.enabled,
        url: raw.upstream.url.0,
        proxy: raw.upstream.proxy.map(|p| p.0),
        download_policy: raw.download.policy,
        credentials: Credentials {
            auth,
            ca_cert: c.ca_cert.as_ref().map(|p| cred_file("ca_cert", p)),
        },
        rpm: RpmOptions {
            architectures: raw
                .rpm
                .architectures
                .map(|v| v.into_iter().map(|a| a.0).collect()),
            gpgcheck: raw.rpm.gpgcheck,
            keys,
            gpgkey_fingerprints,
            repo_gpgcheck: raw.rpm.repo_gpgcheck,
            gpgkey_url: raw.rpm.gpgkey_url,
            installer_tree: raw.rpm.installer_tree,
        },
        filters,
        retention: raw.retention,
        publish,
        sign,
        base_url,
        source: file.to_path_buf(),
    })
}

/// `credentials:`: the keys its `type` needs, and none of another type's.
fn parse_auth(
    c: &file::CredentialsFile,
    fail: &Fail<'_>,
    cred_file: &dyn Fn(&'static str, &PathBuf) -> CredentialFile,
) -> Result<Auth> {
    Ok(match c.kind {
        CredentialsType::None => {
            for (key, present) in [
                ("username", c.username.is_some()),
                ("password", c.password.is_some()),
                ("cert", c.cert.is_some()),
                ("key", c.key.is_some()),
            ] {
                if present {
                    return Err(fail(
                        &["credentials", key],
                        "set credentials.type (basic or client_cert) to use this key".into(),
                    ));
                }
            }
            Auth::None
        }
        CredentialsType::Basic => {
            if c.cert.is_some() || c.key.is_some() {
                return Err(fail(
                    &["credentials", if c.cert.is_some() { "cert" } else { "key" }],
                    "cert and key belong to type client_cert, not basic".into(),
                ));
            }
            let username = c.username.clone().ok_or_else(|| {
                fail(
                    &["credentials", "username"],
                    "type basic needs username".into(),
                )
            })?;
            let password = c.password.clone().ok_or_else(|| {
                fail(
                    &["credentials", "password"],
                    "type basic needs password".into(),
                )
            })?;
            Auth::Basic { username, password }
        }
        CredentialsType::ClientCert => {
            if c.username.is_some() || c.password.is_some() {
                return Err(fail(
                    &[
                        "credentials",
                        if c.username.is_some() {
                            "username"
                        } else {
                            "password"
                        },
                    ],
                    "username and password belong to type basic, not client_cert".into(),
                ));
            }
            let cert = c.cert.as_ref().ok_or_else(|| {
                fail(
                    &["credentials", "cert"],
                    "type client_cert needs cert".into(),
                )
            })?;
            let key = c.key.as_ref().ok_or_else(|| {
                fail(&["credentials", "key"], "type client_cert needs key".into())
            })?;
            Auth::ClientCert {
                cert: cred_file("cert", cert),
                key: cred_file("key", key),
            }
        }
    })
}

/// `filters:`: globs that compile, and no empty include list.
fn parse_filters(f: &file::FiltersFile, fail: &Fail<'_>) -> Result<Filters> {
    let globs = |key: &str, list: &[String]| -> Result<Vec<glob::Pattern>> {
        list.iter()
            .map(|g| {
                glob::Pattern::new(g)
                    .map_err(|e| fail(&["filters", key], format!("{g:?} is not a glob: {e}")))
            })
            .collect()
    };
    // An empty include list keeps nothing: a templated `include: []` would empty the
    // repository at its next sync. Leave the key out to take every name.
    if f.include.as_ref().is_some_and(Vec::is_empty) {
        return Err(fail(
            &["filters", "include"],
            "an empty list would keep no package: list name globs, or remove the key to keep every name".into(),
        ));
    }
    Ok(Filters {
        include: f
            .include
            .as_deref()
            .map(|l| globs("include", l))
            .transpose()?,
        exclude: globs("exclude", &f.exclude)?,
        exclude_source: f.exclude_source,
    })
}

/// `retention:`: keep_last goes with, and only with, policy keep-last.
fn check_retention(r: &Retention, fail: &Fail<'_>) -> Result<()> {
    match (r.policy, r.keep_last) {
        (Policy::KeepLast, None) => Err(fail(
            &["retention", "policy"],
            "keep-last needs retention.keep_last (how many versions of each package)".into(),
        )),
        (Policy::KeepLast, Some(0)) => Err(fail(
            &["retention", "keep_last"],
            "keep at least 1 version of each package".into(),
        )),
        (Policy::KeepLast, Some(_)) | (_, None) => Ok(()),
        (_, Some(_)) => Err(fail(
            &["retention", "keep_last"],
            "keep_last goes with policy: keep-last".into(),
        )),
    }
}

/// `publish:`: the export's paths, the signing of repomd.xml, and the base URL.
fn parse_publish(
    publish: Option<file::PublishFile>,
    dir: &Path,
    fail: &Fail<'_>,
) -> Result<(Option<Publish>, Option<SignConfig>, Option<String>)> {
    let Some(p) = publish else {
        return Ok((None, None, None));
    };
    if p.latest_path.is_none()
        && p.snapshots_path.is_none()
        && p.sign.is_none()
        && p.base_url.is_none()
    {
        return Err(fail(
            &["publish"],
            "set latest_path, snapshots_path, sign or base_url, or remove publish".into(),
        ));
    }
    let sign = p
        .sign
        .as_ref()
        .map(|sf| parse_sign(sf, dir, fail))
        .transpose()?;
    let base_url = match &p.base_url {
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
            return Err(fail(
                &["publish", "base_url"],
                format!("{u:?}: use an http:// or https:// URL"),
            ));
        }
        Some(u) => Some(u.trim_end_matches('/').to_string()),
        None => None,
    };
    if p.environments_path.is_some() && p.snapshots_path.is_none() {
        return Err(fail(
            &["publish", "environments_path"],
            "environments_path links to exported snapshots: set snapshots_path too".into(),
        ));
    }
    let export = (p.latest_path.is_some() || p.snapshots_path.is_some()).then(|| Publish {
        latest_path: p.latest_path.map(|x| dir.join(x)),
        snapshots_path: p.snapshots_path.map(|x| dir.join(x)),
        environments_path: p.environments_path.map(|x| dir.join(x)),
        link: p.link,
    });
    Ok((export, sign, base_url))
}
