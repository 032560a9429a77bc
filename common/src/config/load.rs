//! Loading: the main file, its includes and the environment, merged into one [`Config`];
//! each file parsed strictly, so a misspelt key is an error that names its file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::GlobalFile;
use super::locate;
use super::repo::parse_repo;
use super::types::*;
use super::yaml::{is_empty, parent_dir, parse, read};
use crate::error::{Error, Result};

impl Config {
    /// Reads `path` and everything it includes. `$CHANTAL_DATABASE_URL`, when set and not
    /// empty, replaces `database.url`.
    pub fn load(path: &Path) -> Result<Config> {
        let env_url = std::env::var(DATABASE_URL_ENV)
            .ok()
            .filter(|s| !s.is_empty());
        Self::load_with_database_override(path, env_url)
    }

    /// [`Config::load`] with the environment override passed in (tests set it explicitly).
    pub fn load_with_database_override(path: &Path, env_url: Option<String>) -> Result<Config> {
        let text = read(path)?;
        if is_empty(&text) {
            // Running on defaults from an empty file is never what was meant (a truncated
            // copy, a template not filled in).
            return Err(Error::Config {
                file: path.to_path_buf(),
                line: 1,
                key: String::new(),
                message: "the configuration file is empty: set at least storage.base_path (see contrib/examples/config.yaml)".into(),
            });
        }
        let main: GlobalFile = parse(path, &text)?;
        let mut globals = Globals::default();
        globals.apply(path, &text, &main);

        let mut warnings = Vec::new();
        let mut repositories: Vec<RepoConfig> = Vec::new();
        let mut seen: HashMap<String, (PathBuf, usize)> = HashMap::new();
        let base_dir = parent_dir(path);
        if let Some(include) = &main.include {
            for pattern in include.patterns() {
                for file in expand_include(path, &text, &base_dir, pattern, &mut warnings)? {
                    let text = read(&file)?;
                    if is_empty(&text) {
                        warnings.push(format!(
                            "{}: empty configuration file, ignored",
                            file.display()
                        ));
                        continue;
                    }
                    if is_repository_file(&text) {
                        let repo = parse_repo(&file, &text)?;
                        if let Some((first, line)) = seen.get(&repo.name) {
                            return Err(Error::Config {
                                file: file.clone(),
                                line: repo.line,
                                key: "name".into(),
                                message: format!(
                                    "duplicate repository name '{}' (first defined at {}:{line})",
                                    repo.name,
                                    first.display()
                                ),
                            });
                        }
                        seen.insert(repo.name.clone(), (file.clone(), repo.line));
                        repositories.push(repo);
                    } else {
                        let global: GlobalFile = parse(&file, &text)?;
                        if global.include.is_some() {
                            return Err(Error::Config {
                                line: locate::line_of(&text, &["include"]),
                                file,
                                key: "include".into(),
                                message: "include is only allowed in the main configuration file"
                                    .into(),
                            });
                        }
                        globals.apply(&file, &text, &global);
                    }
                }
            }
        }

        let environments = match globals.environments.take() {
            None => Vec::new(),
            Some((names, file, line)) => {
                let mut seen = std::collections::HashSet::new();
                for n in &names {
                    let bad = crate::names::check_env_name(n).err().or_else(|| {
                        (!seen.insert(n.as_str())).then(|| format!("{n:?} is listed twice"))
                    });
                    if let Some(message) = bad {
                        return Err(Error::Config {
                            file,
                            line,
                            key: "environments".into(),
                            message,
                        });
                    }
                }
                names
            }
        };
        let database = match env_url {
            Some(url) => DatabaseConfig {
                url: Some(url),
                origin: format!("${DATABASE_URL_ENV}"),
            },
            None => globals.database,
        };
        let base_path = globals
            .base_path
            .unwrap_or_else(|| PathBuf::from("/var/lib/chantal"));
        Ok(Config {
            path: path.to_path_buf(),
            fetch: FetchConfig {
                socket: globals
                    .fetch_socket
                    .unwrap_or_else(|| base_path.join("run/fetchd.sock")),
            },
            storage: StorageConfig { base_path },
            database,
            download: DownloadConfig {
                workers: usize::try_from(globals.workers.unwrap_or(10)).unwrap_or(usize::MAX),
                retries: globals.retries.unwrap_or(5),
                timeout: Duration::from_secs(globals.timeout.unwrap_or(300)),
                proxy: globals.proxy,
                policy: globals.policy.unwrap_or_default(),
            },
            environments,
            metrics: MetricsConfig {
                textfile: globals.metrics_textfile,
            },
            repositories,
            warnings,
        })
    }

    /// The repository called `name`, or an error listing the configured ones.
    pub fn repository(&self, name: &str) -> Result<&RepoConfig> {
        self.repositories
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| Error::UnknownRepository {
                name: name.to_string(),
                known: self.repositories.iter().map(|r| r.name.clone()).collect(),
            })
    }

    /// The catalogue's URL: `database.url` (or `$CHANTAL_DATABASE_URL`) when set, otherwise
    /// the embedded SQLite file `<storage.base_path>/catalog.db`.
    pub fn database_url(&self) -> String {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| default_database_url(&self.storage.base_path))
    }
}

/// Global settings merged across files, key by key, later files winning.
#[derive(Default)]
struct Globals {
    base_path: Option<PathBuf>,
    database: DatabaseConfig,
    workers: Option<u64>,
    retries: Option<u32>,
    timeout: Option<u64>,
    proxy: Option<String>,
    policy: Option<super::DownloadPolicy>,
    /// `environments:`, with the file and line that set it last.
    environments: Option<(Vec<String>, PathBuf, usize)>,
    metrics_textfile: Option<PathBuf>,
    fetch_socket: Option<PathBuf>,
}

impl Globals {
    fn apply(&mut self, file: &Path, text: &str, g: &GlobalFile) {
        let dir = parent_dir(file);
        if let Some(p) = g.storage.as_ref().and_then(|s| s.base_path.as_ref()) {
            self.base_path = Some(dir.join(p));
        }
        if let Some(url) = g.database.as_ref().and_then(|d| d.url.as_ref()) {
            self.database = DatabaseConfig {
                url: Some(url.clone()),
                origin: format!(
                    "{}:{}",
                    file.display(),
                    locate::line_of(text, &["database", "url"])
                ),
            };
        }
        if let Some(e) = &g.environments {
            self.environments = Some((
                e.clone(),
                file.to_path_buf(),
                locate::line_of(text, &["environments"]),
            ));
        }
        if let Some(t) = g.metrics.as_ref().and_then(|m| m.textfile.as_ref()) {
            self.metrics_textfile = Some(dir.join(t));
        }
        if let Some(s) = g.fetch.as_ref().and_then(|f| f.socket.as_ref()) {
            self.fetch_socket = Some(dir.join(s));
        }
        if let Some(d) = &g.download {
            self.workers = d.workers.map(|w| w.0).or(self.workers);
            self.retries = d.retries.or(self.retries);
            self.timeout = d.timeout.map(|t| t.0).or(self.timeout);
            self.proxy = d.proxy.as_ref().map(|p| p.0.clone()).or(self.proxy.take());
            self.policy = d.policy.or(self.policy);
        }
    }
}

fn is_repository_file(text: &str) -> bool {
    // Only a top-level `name:` makes a repository file; matching the raw line keeps this cheap
    // and tolerant of files that do not parse (they are then parsed strictly and reported).
    text.lines().any(|l| {
        l.strip_prefix("name")
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    })
}

fn expand_include(
    main: &Path,
    main_text: &str,
    base_dir: &Path,
    pattern: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<PathBuf>> {
    let line = locate::line_of(main_text, &["include"]);
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base_dir.join(pattern)
    };
    let full = full.to_string_lossy().into_owned();
    let paths = glob::glob(&full).map_err(|e| Error::Config {
        file: main.to_path_buf(),
        line,
        key: "include".into(),
        message: format!("invalid glob {pattern:?}: {e}"),
    })?;
    let mut files = Vec::new();
    for entry in paths {
        let path = entry.map_err(|e| Error::Config {
            file: main.to_path_buf(),
            line,
            key: "include".into(),
            message: format!("cannot read {}: {}", e.path().display(), e.error()),
        })?;
        if path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        warnings.push(format!(
            "{}:{line}: include: {pattern:?} matches no file",
            main.display()
        ));
    }
    files.sort();
    Ok(files)
}
