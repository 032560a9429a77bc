//! `repodata/repomd.xml`: the index of a repository's metadata files.

use quick_xml::events::Event;

use super::checksum::Checksum;
use super::{href, xml, MetadataKind, ParseError};

/// Largest compressed metadata file accepted (CS9 AppStream's filelists is ~40 MB).
pub const MAX_METADATA_SIZE: u64 = 8 << 30;
/// Largest decompressed metadata file accepted.
pub const MAX_OPEN_SIZE: u64 = 64 << 30;

/// A parsed repomd.xml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoMd {
    pub revision: Option<String>,
    pub records: Vec<RepoMdRecord>,
}

/// One `<data type="...">` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoMdRecord {
    /// `primary`, `filelists`, `other`, `updateinfo`, `group`, `modules`, ...
    pub kind: MetadataKind,
    pub location_href: String,
    /// `xml:base` of the location, if any (the caller decides whether to accept it).
    pub location_base: Option<String>,
    pub checksum: Checksum,
    pub open_checksum: Option<Checksum>,
    pub size: Option<u64>,
    pub open_size: Option<u64>,
    pub timestamp: Option<i64>,
}

impl RepoMd {
    /// The record of one type.
    pub fn record(&self, kind: &MetadataKind) -> Option<&RepoMdRecord> {
        self.records.iter().find(|r| r.kind == *kind)
    }

    /// Parses and validates repomd.xml. The error says what is wrong, without the file name.
    pub fn parse(bytes: &[u8]) -> Result<RepoMd, ParseError> {
        // The whole document is already bounded (it is read into memory, 16 MiB at most).
        let mut reader = xml::reader(bytes, u64::MAX);
        let mut buf = Vec::new();
        let mut saw_root = false;
        let mut revision = None;
        let mut records: Vec<RepoMdRecord> = Vec::new();
        let mut current: Option<Partial> = None;
        let mut path: Vec<String> = Vec::new();
        let mut text = String::new();
        loop {
            let event = reader
                .read_event_into(&mut buf)
                .map_err(|e| format!("not valid XML at byte {}: {e}", reader.error_position()))?;
            xml::refuse_doctype(&event)?;
            match &event {
                Event::Start(e) | Event::Empty(e) => {
                    let name = e.name().as_ref().to_string();
                    if path.is_empty() {
                        if name != "repomd" {
                            return Err(format!("root element is <{name}>, not <repomd>").into());
                        }
                        saw_root = true;
                    }
                    if path.len() == 1 && name == "data" {
                        let kind = xml::attr(e, "type")?
                            .ok_or("a <data> element has no type attribute")?;
                        current = Some(Partial::new(kind));
                    }
                    if let Some(p) = current.as_mut() {
                        match name.as_str() {
                            "location" if path.len() == 2 => {
                                p.href = xml::attr(e, "href")?;
                                p.base = xml::attr(e, "xml:base")?;
                            }
                            "checksum" | "open-checksum" if path.len() == 2 => {
                                p.pending_type = xml::attr(e, "type")?;
                            }
                            _ => {}
                        }
                    }
                    text.clear();
                    if matches!(event, Event::Start(_)) {
                        path.push(name);
                    }
                }
                Event::End(_) => {
                    let name = path.pop().unwrap_or_default();
                    if path.len() == 1 && name == "revision" {
                        revision = Some(text.trim().to_string());
                    }
                    if path.len() == 2 {
                        if let Some(p) = current.as_mut() {
                            p.field(&name, text.trim())?;
                        }
                    }
                    if path.len() == 1 && name == "data" {
                        if let Some(p) = current.take() {
                            let record = p.finish()?;
                            if records.iter().any(|r| r.kind == record.kind) {
                                return Err(
                                    format!("type {:?} is listed twice", record.kind).into()
                                );
                            }
                            records.push(record);
                        }
                    }
                    text.clear();
                }
                Event::Eof => break,
                other => {
                    if let Some(piece) = xml::text_piece(other)? {
                        text.push_str(&piece);
                    }
                }
            }
            buf.clear();
        }
        if !saw_root {
            return Err("empty document: no <repomd> element".into());
        }
        if records.is_empty() {
            return Err("repomd.xml lists no metadata files".into());
        }
        if !records.iter().any(|r| r.kind == MetadataKind::Primary) {
            return Err("repomd.xml has no primary metadata".into());
        }
        Ok(RepoMd { revision, records })
    }
}

struct Partial {
    kind: String,
    href: Option<String>,
    base: Option<String>,
    pending_type: Option<String>,
    checksum: Option<Checksum>,
    open_checksum: Option<Checksum>,
    size: Option<u64>,
    open_size: Option<u64>,
    timestamp: Option<i64>,
}

impl Partial {
    fn new(kind: String) -> Partial {
        Partial {
            kind,
            href: None,
            base: None,
            pending_type: None,
            checksum: None,
            open_checksum: None,
            size: None,
            open_size: None,
            timestamp: None,
        }
    }

    fn field(&mut self, name: &str, value: &str) -> Result<(), String> {
        let kind = &self.kind;
        match name {
            "checksum" | "open-checksum" => {
                let t = self
                    .pending_type
                    .take()
                    .ok_or_else(|| format!("{kind}: <{name}> has no type"))?;
                let c = Checksum::new(&t, value).map_err(|e| format!("{kind}: {name}: {e}"))?;
                if name == "checksum" {
                    self.checksum = Some(c);
                } else {
                    self.open_checksum = Some(c);
                }
            }
            "size" => {
                self.size = Some(xml::number(
                    &format!("{kind}: size"),
                    value,
                    MAX_METADATA_SIZE,
                )?)
            }
            "open-size" => {
                self.open_size = Some(xml::number(
                    &format!("{kind}: open-size"),
                    value,
                    MAX_OPEN_SIZE,
                )?)
            }
            "timestamp" => {
                // Some generators write fractional timestamps.
                let whole = value.split('.').next().unwrap_or(value);
                self.timestamp = whole.trim().parse().ok();
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<RepoMdRecord, String> {
        let kind = MetadataKind::upstream(&self.kind)?;
        let href = self
            .href
            .ok_or_else(|| format!("{kind}: no <location href>"))?;
        href::check(&href).map_err(|e| format!("{kind}: {e}"))?;
        let checksum = self
            .checksum
            .ok_or_else(|| format!("{kind}: no <checksum>"))?;
        Ok(RepoMdRecord {
            kind,
            location_href: href,
            location_base: self.base,
            checksum,
            open_checksum: self.open_checksum,
            size: self.size,
            open_size: self.open_size,
            timestamp: self.timestamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(rel: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures")
                .join(rel),
        )
        .unwrap()
    }

    #[test]
    fn parses_real_repomds() {
        let md = RepoMd::parse(&fixture("cs9/appstream/repodata/repomd.xml")).unwrap();
        let primary = md.record(&MetadataKind::Primary).unwrap();
        assert_eq!(
            primary.checksum.value,
            "c03bb2ebc33bbee3046da091b45d90717273a43d3641a9d84e6eede05637bc8a"
        );
        assert!(primary.location_href.ends_with("-primary.xml.gz"));
        let other = |k: &str| MetadataKind::Other(k.into());
        assert!(md.record(&other("group")).is_some() && md.record(&other("modules")).is_some());
        let md = RepoMd::parse(&fixture("cs9/custom/repodata/repomd.xml")).unwrap();
        assert_eq!(md.revision.as_deref(), Some("1713204559"));
        assert_eq!(md.record(&MetadataKind::Primary).unwrap().size, Some(579));
        RepoMd::parse(&fixture("createrepo_c/repo_01/repodata/repomd.xml")).unwrap();
    }

    #[test]
    fn missing_type_is_an_error() {
        let err = RepoMd::parse(&fixture(
            "createrepo_c/modified_repo_files/missing_type-repomd.xml",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("no type"), "{err}");
    }

    fn doc(data: &str) -> String {
        format!("<?xml version=\"1.0\"?><repomd xmlns=\"http://linux.duke.edu/metadata/repo\"><revision>1</revision>{data}</repomd>")
    }

    const SHA: &str = "fe9ca8250ddf6ffd0d48dd4a856840503b468c108c09bf97f528d2b73f415e41";

    #[test]
    fn hostile_repomds_are_refused() {
        let cases = [
            ("not xml at all <<<".to_string(), "not valid XML"),
            ("".to_string(), "empty document"),
            ("<html><body>502 Bad Gateway</body></html>".to_string(), "not <repomd>"),
            (
                "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x \"y\">]><repomd/>".to_string(),
                "DTD",
            ),
            (doc("<data type=\"primary\"><checksum type=\"md5\">d41d8cd98f00b204e9800998ecf8427e</checksum><location href=\"repodata/p.xml.gz\"/></data>"), "md5"),
            (doc(&format!("<data type=\"primary\"><checksum type=\"sha256\">{SHA}</checksum><location href=\"../../etc/passwd\"/></data>")), "'..'"),
            (doc(&format!("<data type=\"primary\"><checksum type=\"sha256\">{SHA}</checksum><location href=\"/etc/passwd\"/></data>")), "absolute"),
            (doc(&format!("<data type=\"primary\"><checksum type=\"sha256\">{SHA}</checksum><location href=\"p.xml\"/><size>999999999999999</size></data>")), "absurdly large"),
            (doc(&format!("<data type=\"primary\"><checksum type=\"sha256\">{SHA}</checksum><location href=\"p.xml\"/><size>-5</size></data>")), "not a whole number"),
            (doc(&format!("<data type=\"other\"><checksum type=\"sha256\">{SHA}</checksum><location href=\"o.xml\"/></data>")), "no primary"),
        ];
        for (text, expected) in cases {
            let err = RepoMd::parse(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
