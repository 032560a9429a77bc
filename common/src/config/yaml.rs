//! Reading one configuration file: the text (without a byte order mark), and the YAML parsed
//! strictly into its file type, a mistake reported as one line naming the file, line and key.
//! Below both the loader and the repository parser.

use std::path::{Path, PathBuf};

use super::locate;
use crate::error::{Error, Result};

/// Reads a configuration file. A UTF-8 byte order mark (editors on other systems write one)
/// is not part of the YAML.
pub(super) fn read(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// Whether a file holds nothing but white space and comments.
pub(super) fn is_empty(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---"
    })
}

pub(super) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Deserialises `text`, turning serde's error into one line with file, line and key path.
pub(super) fn parse<T: serde::de::DeserializeOwned + Default>(
    file: &Path,
    text: &str,
) -> Result<T> {
    // An empty file (or one with only comments) is an empty mapping, not an error.
    if is_empty(text) {
        return Ok(T::default());
    }
    parse_strict(file, text)
}

pub(super) fn parse_strict<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        // serde_path_to_error writes `?` for a part of the path it could not name (a syntax
        // error inside a mapping): the known part is the key to report.
        let key = err
            .path()
            .to_string()
            .split('.')
            .filter(|part| !part.is_empty() && *part != "?")
            .collect::<Vec<_>>()
            .join(".");
        let inner = err.into_inner();
        let line = inner.location().map(|l| l.line()).unwrap_or_else(|| {
            let parts: Vec<&str> = key.split('.').collect();
            locate::line_of(text, &parts)
        });
        Error::Config {
            file: file.to_path_buf(),
            line,
            message: clean_serde_message(&inner.to_string(), &key),
            key,
        }
    })
}

/// serde_yaml appends " at line L column C" and sometimes prefixes the key path; both are
/// already in our own error format.
pub(super) fn clean_serde_message(msg: &str, key: &str) -> String {
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    let msg = match msg.split_once(": ") {
        Some((path, rest))
            if !path.is_empty()
                && (key == path || key.starts_with(&format!("{path}.")))
                && !path.contains(' ') =>
        {
            rest
        }
        _ => msg,
    };
    msg.replace('\n', " ")
}
