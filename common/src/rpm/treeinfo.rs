//! Installer trees: `.treeinfo` (productmd's INI format, with or without the legacy
//! `[general]` section) and `extra_files.json`. Both come from the upstream and are hostile
//! until checked: every section appears once, every key once per section, every path a file
//! names stays inside the tree, and every file to fetch has a checksum to verify it against.
//! The `.treeinfo` served is rewritten to list only the variants this tree serves (those at
//! `repository = .`), so an installer never follows a path that is not on the mirror.
//!
//! [`parse`] is a chain of pure steps: [`Ini::read`] (a strict INI reader: the INI crates take
//! duplicate keys silently), [`files`] (what to fetch), [`served`] (the subset an installer may
//! follow) and [`Ini::render`].

use std::collections::{BTreeMap, BTreeSet};

use super::checksum::Checksum;
use super::href;

/// The names an upstream tree's description may have, in the order they are tried.
pub const TREEINFO_NAMES: [&str; 2] = [".treeinfo", "treeinfo"];
/// productmd's list of the tree's other files (EULA, GPL, keys...).
pub const EXTRA_FILES: &str = "extra_files.json";
/// Largest `.treeinfo` read (real ones are a few KiB).
pub const MAX_TREEINFO: u64 = 1 << 20;
/// Largest `extra_files.json` read.
pub const MAX_EXTRA_FILES: u64 = 4 << 20;
/// Largest tree file fetched: RHEL 9's boot.iso is about 1 GiB, install.img under 1 GiB.
pub const MAX_TREE_FILE: u64 = 4 << 30;
/// Most files one tree may name.
const MAX_FILES: usize = 10_000;

/// One file of the tree to fetch and serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Its path below the tree (normalised).
    pub path: String,
    pub checksum: Checksum,
    /// Declared by extra_files.json; `.treeinfo` declares none.
    pub size: Option<u64>,
}

/// A parsed, checked tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// The `.treeinfo` to serve: this tree's variants only.
    pub served: Vec<u8>,
    /// Every file to fetch: images, stage2, what `[checksums]` and extra_files.json list.
    pub files: Vec<TreeFile>,
    /// Variants served, and those left out (their repository is elsewhere).
    pub variants: Vec<String>,
    pub dropped_variants: Vec<String>,
}

/// One `[section]` of an INI file: its keys in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub entries: Vec<(String, String)>,
}

/// An INI document as productmd writes it: sections in order, keys in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ini {
    pub sections: Vec<Section>,
}

impl Section {
    fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, key: &str, value: String) {
        if let Some(e) = self.entries.iter_mut().find(|(k, _)| k == key) {
            e.1 = value;
        }
    }
}

impl Ini {
    /// Reads INI as productmd writes it (Python's configparser, strict, keys case-sensitive):
    /// `[section]` headers, `key = value` lines, `#` and `;` comments. Duplicate sections and
    /// duplicate keys are errors, as are lines that are neither.
    pub fn read(text: &str) -> Result<Ini, String> {
        parse_ini(text).map(|sections| Ini { sections })
    }

    /// The document's text: a blank line between sections, `key = value` lines.
    pub fn render(&self) -> Vec<u8> {
        write_ini(&self.sections)
    }

    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
}

fn parse_ini(text: &str) -> Result<Vec<Section>, String> {
    let mut sections: Vec<Section> = Vec::new();
    let mut seen = BTreeSet::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let n = n + 1;
        if line.contains('\0') {
            return Err(format!("line {n}: NUL byte"));
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            return Err(format!("line {n}: continuation lines are not accepted"));
        }
        if let Some(name) = trimmed.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| format!("line {n}: unterminated section header"))?
                .trim();
            if name.is_empty() {
                return Err(format!("line {n}: empty section name"));
            }
            if !seen.insert(name.to_string()) {
                return Err(format!("line {n}: duplicate section [{name}]"));
            }
            sections.push(Section {
                name: name.to_string(),
                entries: Vec::new(),
            });
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(format!("line {n}: expected `key = value`"));
        };
        let (key, value) = (key.trim(), value.trim());
        let section = sections
            .last_mut()
            .ok_or_else(|| format!("line {n}: `{key}` before any section"))?;
        if key.is_empty() {
            return Err(format!("line {n}: empty key in [{}]", section.name));
        }
        if section.get(key).is_some() {
            return Err(format!(
                "line {n}: duplicate key `{key}` in [{}]",
                section.name
            ));
        }
        section.entries.push((key.to_string(), value.to_string()));
    }
    Ok(sections)
}

fn write_ini(sections: &[Section]) -> Vec<u8> {
    let mut out = String::new();
    for (i, s) in sections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("[{}]\n", s.name));
        for (k, v) in &s.entries {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    out.into_bytes()
}

/// A path the tree names for a file it holds: relative, inside the tree, normalised.
fn file_path(what: &str, p: &str) -> Result<String, String> {
    href::check(p).map_err(|e| format!("{what}: {e}"))?;
    Ok(href::normalize(p).into_owned())
}

/// A path naming a variant's repository: it may lead outside the tree (another repository,
/// which is then not served), but it is still a relative path of printable characters.
fn variant_path(what: &str, p: &str) -> Result<(), String> {
    if p.starts_with('/') || p.contains('\\') || p.contains("://") {
        return Err(format!("{what}: {p:?} is not a relative path"));
    }
    if p.chars().any(char::is_control) {
        return Err(format!("{what}: {p:?} contains control characters"));
    }
    Ok(())
}

/// Whether a variant's repository is this tree itself.
fn is_here(repository: &str) -> bool {
    href::normalize(repository).is_empty()
}

fn list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Names that are this module's own: a tree file may not take them (nor live in repodata/).
fn reserved(path: &str) -> bool {
    TREEINFO_NAMES.contains(&path)
        || path == EXTRA_FILES
        || path == href::REPODATA_DIR
        || path.starts_with("repodata/")
}

/// Parses and checks an upstream `.treeinfo` and, if the upstream has one,
/// `extra_files.json`; returns what to fetch and the `.treeinfo` to serve.
pub fn parse(treeinfo: &[u8], extra_files: Option<&[u8]>) -> Result<Tree, String> {
    let ini = read(treeinfo)?;
    let files = files(&ini, extra_files)?;
    let (served, variants, dropped_variants) = served(ini)?;
    Ok(Tree {
        served: served.render(),
        files,
        variants,
        dropped_variants,
    })
}

/// Step 1: the upstream's bytes as a tree description, or why they are not one.
pub fn read(treeinfo: &[u8]) -> Result<Ini, String> {
    // What a web server answers with 200 for a file it does not have (a "soft 404").
    if treeinfo.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty".into());
    }
    let head = String::from_utf8_lossy(&treeinfo[..treeinfo.len().min(1024)]).to_ascii_lowercase();
    let head = head.trim_start();
    if head.starts_with("<!doctype html") || head.starts_with("<html") {
        return Err("it looks like an HTML page (an error page served with 200?)".into());
    }
    if head.starts_with('<') {
        return Err(
            "it looks like XML or HTML, not an INI file (an error page served with 200?)".into(),
        );
    }
    let text = std::str::from_utf8(treeinfo).map_err(|_| "not UTF-8 text".to_string())?;
    let ini = Ini::read(text)?;
    if ini.section("header").is_none() && ini.section("general").is_none() {
        return Err("neither a [header] (productmd) nor a [general] section".into());
    }
    Ok(ini)
}

/// Step 2: every file the tree names (images, stage2, `[checksums]`, extra_files.json), each
/// with the checksum to verify it against.
pub fn files(ini: &Ini, extra_files: Option<&[u8]>) -> Result<Vec<TreeFile>, String> {
    let sections = &ini.sections;
    // Every file it names, with the checksum [checksums] gives it.
    let mut checksums: BTreeMap<String, Checksum> = BTreeMap::new();
    if let Some(s) = ini.section("checksums") {
        for (k, v) in &s.entries {
            let path = file_path("[checksums]", k)?;
            let (kind, value) = v
                .split_once(':')
                .ok_or_else(|| format!("[checksums] {k}: {v:?} is not `type:hex`"))?;
            let sum = Checksum::new(kind, value).map_err(|e| format!("[checksums] {k}: {e}"))?;
            if checksums.insert(path.clone(), sum).is_some() {
                return Err(format!("[checksums] lists {path} twice"));
            }
        }
    }
    let mut named: BTreeSet<String> = BTreeSet::new();
    for s in sections {
        let files: Vec<&str> = if s.name.starts_with("images-") {
            s.entries.iter().map(|(_, v)| v.as_str()).collect()
        } else if s.name == "stage2" {
            s.entries
                .iter()
                .filter(|(k, _)| k == "mainimage" || k == "instimage")
                .map(|(_, v)| v.as_str())
                .collect()
        } else {
            continue;
        };
        for f in files {
            named.insert(file_path(&format!("[{}]", s.name), f)?);
        }
    }
    let mut files = Vec::new();
    for path in &named {
        let sum = checksums.get(path).ok_or_else(|| {
            format!("{path} has no checksum in [checksums]: it cannot be verified")
        })?;
        files.push(TreeFile {
            path: path.clone(),
            checksum: sum.clone(),
            size: None,
        });
    }
    for (path, sum) in &checksums {
        // Repodata is the repository's own (and chantal may write its own): not a tree file,
        // and not listed in the served file, whose checksums must hold for what is served.
        if !named.contains(path) && !path.starts_with("repodata/") {
            files.push(TreeFile {
                path: path.clone(),
                checksum: sum.clone(),
                size: None,
            });
        }
    }
    if let Some(json) = extra_files {
        for f in parse_extra_files(json)? {
            match files.iter().find(|t| t.path == f.path) {
                Some(t) if t.checksum.kind == f.checksum.kind && t.checksum != f.checksum => {
                    return Err(format!(
                        "{}: extra_files.json and [checksums] disagree on its checksum",
                        f.path
                    ))
                }
                Some(_) => {}
                None => files.push(f),
            }
        }
    }
    if files.len() > MAX_FILES {
        return Err(format!("names {} files (at most {MAX_FILES})", files.len()));
    }
    if let Some(f) = files.iter().find(|f| reserved(&f.path)) {
        return Err(format!("{} is not a tree file's name", f.path));
    }
    Ok(files)
}

/// Step 3: the description an installer may follow on the mirror: variants whose repository
/// is this tree (and their addons) only, and the legacy `[general]` naming one of them.
/// Returns it with the variants served and those left out.
pub fn served(ini: Ini) -> Result<(Ini, Vec<String>, Vec<String>), String> {
    let mut sections = ini.sections;
    // Variants: those whose repository is this tree are served, the others left out.
    let listed = sections
        .iter()
        .find(|s| s.name == "tree")
        .map(|s| list(s.get("variants")))
        .unwrap_or_default();
    let (mut kept, mut dropped) = (Vec::new(), Vec::new());
    for v in &listed {
        let section = sections
            .iter()
            .find(|s| s.name == format!("variant-{v}"))
            .ok_or_else(|| format!("[tree] lists variant {v} without a [variant-{v}] section"))?;
        for key in [
            "repository",
            "packages",
            "source_repository",
            "source_packages",
        ] {
            if let Some(p) = section.get(key) {
                variant_path(&format!("[variant-{v}] {key}"), p)?;
            }
        }
        if section.get("repository").is_some_and(is_here) {
            kept.push(v.clone());
        } else {
            dropped.push(v.clone());
        }
    }
    for s in &sections {
        if s.name.starts_with("addon-") || s.name.starts_with("variant-") {
            for key in ["repository", "packages"] {
                if let Some(p) = s.get(key) {
                    variant_path(&format!("[{}] {key}", s.name), p)?;
                }
            }
        }
    }
    let keep_section = |s: &Section| {
        if let Some(v) = s.name.strip_prefix("variant-") {
            return kept.iter().any(|k| k == v);
        }
        if s.name.starts_with("addon-") {
            // [addon-<variant>-<addon>]: served only with its variant, and only from here.
            let parent = s.get("parent").map(String::from).or_else(|| {
                s.name
                    .strip_prefix("addon-")
                    .and_then(|r| r.split('-').next())
                    .map(String::from)
            });
            return parent.is_some_and(|p| kept.contains(&p))
                && s.get("repository").is_some_and(is_here);
        }
        true
    };
    let served_addons: Vec<String> = sections
        .iter()
        .filter(|s| s.name.starts_with("addon-") && keep_section(s))
        .filter_map(|s| s.get("uid").or(s.get("id")).map(String::from))
        .collect();
    // The legacy [general] names one variant and its paths (productmd writes the first in
    // sorted order, whichever repository it is in): it must name a served one.
    let first_kept = kept.first().and_then(|v| {
        sections
            .iter()
            .find(|s| s.name == format!("variant-{v}"))
            .map(|s| {
                (
                    v.clone(),
                    s.get("repository").unwrap_or(".").to_string(),
                    s.get("packages").map(String::from),
                )
            })
    });
    sections.retain(keep_section);
    for s in &mut sections {
        if s.name == "general" {
            if s.get("variants").is_some() {
                s.set("variants", kept.join(","));
            }
            let named = s.get("variant").map(String::from);
            if named.is_some_and(|v| !kept.contains(&v)) {
                if let Some((v, repository, packages)) = &first_kept {
                    s.set("variant", v.clone());
                    s.set("repository", repository.clone());
                    if let Some(p) = packages {
                        s.set("packagedir", p.clone());
                    }
                }
            }
            if s.get("repository").is_some_and(|r| !is_here(r)) {
                s.set("repository", ".".into());
            }
        } else if s.name == "tree" {
            s.set("variants", kept.join(","));
        } else if s.name.starts_with("variant-") {
            if let Some(addons) = s.get("addons").map(|a| list(Some(a))) {
                let left: Vec<String> = addons
                    .into_iter()
                    .filter(|a| served_addons.iter().any(|s| s == a || s.ends_with(a)))
                    .collect();
                s.set("addons", left.join(","));
            }
        } else if s.name == "checksums" {
            s.entries
                .retain(|(k, _)| !href::normalize(k).starts_with("repodata/"));
        }
    }
    Ok((Ini { sections }, kept, dropped))
}

#[derive(serde::Deserialize)]
struct ExtraFiles {
    data: Vec<ExtraFile>,
}

#[derive(serde::Deserialize)]
struct ExtraFile {
    file: String,
    size: Option<u64>,
    checksums: BTreeMap<String, String>,
}

/// The files extra_files.json lists, each with its strongest checksum.
fn parse_extra_files(json: &[u8]) -> Result<Vec<TreeFile>, String> {
    let doc: ExtraFiles =
        serde_json::from_slice(json).map_err(|e| format!("extra_files.json: {e}"))?;
    let mut out: Vec<TreeFile> = Vec::new();
    for f in doc.data {
        let path = file_path("extra_files.json", &f.file)?;
        if let Some(size) = f.size.filter(|s| *s > MAX_TREE_FILE) {
            return Err(format!(
                "extra_files.json: {path} declares {size} bytes (at most {MAX_TREE_FILE})"
            ));
        }
        let checksum = ["sha512", "sha384", "sha256", "sha224", "sha1"]
            .iter()
            .find_map(|k| f.checksums.get(*k).map(|v| Checksum::new(k, v)))
            .ok_or_else(|| format!("extra_files.json: {path} has no usable checksum"))?
            .map_err(|e| format!("extra_files.json: {path}: {e}"))?;
        if out.iter().any(|t| t.path == path) {
            return Err(format!("extra_files.json lists {path} twice"));
        }
        out.push(TreeFile {
            path,
            checksum,
            size: f.size,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const SHA_C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    /// A BaseOS tree as productmd writes it, with AppStream in another repository.
    fn baseos() -> String {
        format!(
            "[checksums]\nimages/install.img = sha256:{SHA_A}\nimages/pxeboot/vmlinuz = sha256:{SHA_B}\n\
             images/pxeboot/initrd.img = sha256:{SHA_C}\nrepodata/repomd.xml = sha256:{SHA_A}\n\n\
             [general]\n; WARNING.0 = as productmd writes it: the first variant, wherever it is\narch = x86_64\nfamily = Rocky Linux\n\
             name = Rocky Linux 9\npackagedir = ../../AppStream/x86_64/os/Packages\nplatforms = x86_64,xen\n\
             repository = ../../AppStream/x86_64/os\ntimestamp = 1700000000\nvariant = AppStream\nvariants = AppStream,BaseOS\nversion = 9\n\n\
             [header]\ntype = productmd.treeinfo\nversion = 1.2\n\n\
             [images-x86_64]\ninitrd = images/pxeboot/initrd.img\nkernel = images/pxeboot/vmlinuz\n\n\
             [images-xen]\ninitrd = images/pxeboot/initrd.img\nkernel = images/pxeboot/vmlinuz\n\n\
             [release]\nname = Rocky Linux\nshort = Rocky\nversion = 9\n\n\
             [stage2]\nmainimage = images/install.img\n\n\
             [tree]\narch = x86_64\nbuild_timestamp = 1700000000\nplatforms = x86_64,xen\nvariants = AppStream,BaseOS\n\n\
             [variant-AppStream]\nid = AppStream\nname = AppStream\npackages = ../../AppStream/x86_64/os/Packages\n\
             repository = ../../AppStream/x86_64/os\ntype = variant\nuid = AppStream\n\n\
             [variant-BaseOS]\nid = BaseOS\nname = BaseOS\npackages = Packages\nrepository = .\ntype = variant\nuid = BaseOS\n"
        )
    }

    #[test]
    fn a_real_layout_serves_its_own_variant_and_fetches_every_image_once() {
        let t = parse(baseos().as_bytes(), None).unwrap();
        let paths: Vec<&str> = t.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "images/install.img",
                "images/pxeboot/initrd.img",
                "images/pxeboot/vmlinuz"
            ]
        );
        assert_eq!(t.variants, ["BaseOS"]);
        assert_eq!(t.dropped_variants, ["AppStream"]);
        let served = String::from_utf8(t.served).unwrap();
        assert!(served.contains("variants = BaseOS\n"), "{served}");
        assert!(served.contains("variant = BaseOS\n"), "{served}");
        assert!(!served.contains("AppStream"), "{served}");
        assert!(!served.contains("repodata/repomd.xml"), "{served}");
        assert!(served.contains(&format!("images/install.img = sha256:{SHA_A}")));
        // What is served parses again, to itself.
        let again = parse(served.as_bytes(), None).unwrap();
        assert_eq!(String::from_utf8(again.served).unwrap(), served);
    }

    #[test]
    fn extra_files_are_fetched_with_their_strongest_checksum() {
        let json = format!(
            r#"{{"header": {{"type": "productmd.extra_files", "version": "1.1"}},
               "data": [{{"file": "EULA", "size": 10, "checksums": {{"md5": "00", "sha256": "{SHA_B}"}}}},
                        {{"file": "RPM-GPG-KEY-Rocky-9", "size": 3, "checksums": {{"sha256": "{SHA_C}"}}}}]}}"#
        );
        let t = parse(baseos().as_bytes(), Some(json.as_bytes())).unwrap();
        let eula = t.files.iter().find(|f| f.path == "EULA").unwrap();
        assert_eq!((eula.checksum.value.as_str(), eula.size), (SHA_B, Some(10)));
        assert!(t.files.iter().any(|f| f.path == "RPM-GPG-KEY-Rocky-9"));
    }

    #[test]
    fn hostile_trees_are_refused_with_the_reason() {
        let base = baseos();
        let cases: Vec<(String, &str)> = vec![
            (
                base.replace("mainimage = images/install.img", "mainimage = /etc/shadow"),
                "absolute",
            ),
            (
                base.replace(
                    "kernel = images/pxeboot/vmlinuz\n\n[images-xen]",
                    "kernel = images/../../../vmlinuz\n\n[images-xen]",
                ),
                "'..'",
            ),
            (
                base.replace(
                    "mainimage = images/install.img",
                    "mainimage = images\\install.img",
                ),
                "outside",
            ),
            (
                base.replace(
                    "mainimage = images/install.img",
                    "mainimage = images/in\0stall.img",
                ),
                "NUL",
            ),
            (
                format!("{base}\n[stage2]\nmainimage = x\n"),
                "duplicate section",
            ),
            (
                base.replace("[stage2]\n", "[stage2]\nmainimage = images/other.img\n"),
                "duplicate key",
            ),
            (
                base.replace(
                    &format!("images/install.img = sha256:{SHA_A}\n"),
                    "images/install.img = sha256:00\n",
                ),
                "not a sha256 checksum",
            ),
            (
                base.replace(&format!("images/install.img = sha256:{SHA_A}\n"), ""),
                "has no checksum",
            ),
            (
                base.replace(
                    "repository = ../../AppStream/x86_64/os",
                    "repository = /srv/appstream",
                ),
                "not a relative path",
            ),
            (
                base.replace(
                    "variants = AppStream,BaseOS",
                    "variants = AppStream,BaseOS,Ghost",
                ),
                "without a [variant-Ghost] section",
            ),
            (
                format!("{base}\n[images-evil]\ntreeinfo = .treeinfo\n[checksums-x]\n"),
                "has no checksum",
            ),
            ("[random]\nx = y\n".to_string(), "neither a [header]"),
        ];
        for (text, why) in cases {
            let err = parse(text.as_bytes(), None).unwrap_err();
            assert!(err.contains(why), "expected {why:?}, got {err:?}");
        }
        let big = format!(
            r#"{{"data": [{{"file": "huge.img", "size": {}, "checksums": {{"sha256": "{SHA_A}"}}}}]}}"#,
            MAX_TREE_FILE + 1
        );
        let err = parse(baseos().as_bytes(), Some(big.as_bytes())).unwrap_err();
        assert!(err.contains("declares"), "{err}");
        let escaping =
            format!(r#"{{"data": [{{"file": "../x", "checksums": {{"sha256": "{SHA_A}"}}}}]}}"#);
        assert!(parse(baseos().as_bytes(), Some(escaping.as_bytes())).is_err());
        let own = base.replace(
            &format!("images/install.img = sha256:{SHA_A}\n"),
            &format!("images/install.img = sha256:{SHA_A}\nextra_files.json = sha256:{SHA_A}\n"),
        );
        let err = parse(own.as_bytes(), None).unwrap_err();
        assert!(err.contains("not a tree file's name"), "{err}");
    }
}

#[cfg(test)]
mod round_trip {
    use super::*;
    use proptest::prelude::*;

    /// Names and values as productmd writes them: no brackets, `=`, comment marks or blanks at
    /// either end.
    fn word() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_.-][A-Za-z0-9_./:, -]{0,12}[A-Za-z0-9_./:,-]|[A-Za-z0-9_.-]"
    }

    fn ini() -> impl Strategy<Value = Ini> {
        prop::collection::btree_map(
            word(),
            prop::collection::btree_map(word(), prop::option::of(word()), 0..5),
            0..6,
        )
        .prop_map(|sections| Ini {
            sections: sections
                .into_iter()
                .map(|(name, entries)| Section {
                    name,
                    entries: entries
                        .into_iter()
                        .map(|(k, v)| (k, v.unwrap_or_default()))
                        .collect(),
                })
                .collect(),
        })
    }

    proptest! {
        /// What is rendered reads back as the same document, and renders the same again.
        #[test]
        fn render_then_read_is_the_identity(doc in ini()) {
            let text = doc.render();
            let again = Ini::read(std::str::from_utf8(&text).unwrap()).unwrap();
            prop_assert_eq!(&again, &doc);
            prop_assert_eq!(again.render(), text);
        }

        /// A served description is a fixed point: serving it again changes nothing.
        #[test]
        fn the_served_subset_of_a_served_tree_is_itself(doc in ini()) {
            if let Ok((once, kept, _)) = served(doc) {
                let (twice, kept_again, dropped) = served(once.clone()).unwrap();
                prop_assert_eq!(twice, once);
                prop_assert_eq!(kept_again, kept);
                prop_assert!(dropped.is_empty());
            }
        }
    }
}
