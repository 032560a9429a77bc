//! updateinfo.xml (advisories): each `<update>` element kept verbatim, with its id and the
//! packages its pkglist names, so advisories can be filtered to a version's package set.

use std::io::BufRead;

use quick_xml::events::Event;

use super::{xml, ParseError};

/// A package named in an advisory's pkglist.
pub type AdvisoryPackage = super::Nevra;

/// One advisory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advisory {
    pub id: String,
    pub fragment: String,
    pub packages: Vec<AdvisoryPackage>,
    /// The `type` attribute: security, bugfix, enhancement...
    pub kind: String,
    pub title: String,
    /// Red Hat's and Fedora's `<severity>` (Critical, Important...), when given.
    pub severity: String,
    /// The ids of its `<reference type="cve">` elements.
    pub cves: Vec<String>,
}

/// Which text element of an advisory is being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Text {
    Id,
    Title,
    Severity,
}

/// Reads updateinfo.xml and calls `on_update` with each advisory.
pub fn parse<R: BufRead>(
    input: R,
    mut on_update: impl FnMut(Advisory) -> Result<(), ParseError>,
) -> Result<u64, ParseError> {
    let mut reader = xml::reader(input, xml::PACKAGE_LIMIT);
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut count = 0u64;
    let mut current: Option<Advisory> = None;
    let mut in_text: Option<Text> = None;
    let mut saw_root = false;
    loop {
        let event = xml::next_event(
            &mut reader,
            &mut buf,
            xml::At {
                what: "advisory",
                number: count + 1,
                name: current
                    .as_ref()
                    .map(|a| a.id.trim())
                    .filter(|i| !i.is_empty()),
                element: "update",
            },
        )?;
        if let Some(a) = current.as_mut() {
            xml::append_raw(&mut a.fragment, &event);
            if let Some(field) = in_text {
                if let Some(piece) = xml::text_piece(&event)? {
                    match field {
                        Text::Id => a.id.push_str(&piece),
                        Text::Title => a.title.push_str(&piece),
                        Text::Severity => a.severity.push_str(&piece),
                    }
                }
            }
        }
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = e.name();
                let name = name.as_ref();
                if depth == 0 {
                    if name != "updates" {
                        return Err(format!("root element is <{name}>, not <updates>").into());
                    }
                    saw_root = true;
                } else if depth == 1 && name == "update" {
                    let mut a = Advisory {
                        id: String::new(),
                        fragment: String::new(),
                        packages: Vec::new(),
                        kind: xml::attr(e, "type")?.unwrap_or_default(),
                        title: String::new(),
                        severity: String::new(),
                        cves: Vec::new(),
                    };
                    xml::append_raw(&mut a.fragment, &event);
                    current = Some(a);
                } else if let Some(a) = current.as_mut() {
                    let text = match name {
                        "id" => Some(Text::Id),
                        "title" => Some(Text::Title),
                        "severity" => Some(Text::Severity),
                        _ => None,
                    };
                    if depth == 2 && text.is_some() {
                        in_text = text.filter(|_| !empty);
                    } else if name == "reference" {
                        if xml::attr(e, "type")?.as_deref() == Some("cve") {
                            if let Some(id) = xml::attr(e, "id")?.filter(|i| !i.is_empty()) {
                                a.cves.push(id);
                            }
                        }
                    } else if name == "package" {
                        let get = |k: &str| xml::attr(e, k).map(Option::unwrap_or_default);
                        a.packages.push(AdvisoryPackage {
                            name: get("name")?,
                            epoch: get("epoch")?.trim().parse().unwrap_or(0),
                            version: get("version")?,
                            release: get("release")?,
                            arch: get("arch")?,
                        });
                    }
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                in_text = None;
                if depth == 1 {
                    if let Some(mut a) = current.take() {
                        count += 1;
                        a.id = a.id.trim().to_string();
                        a.title = a.title.trim().to_string();
                        a.severity = a.severity.trim().to_string();
                        on_update(a)?;
                        reader.get_mut().reset();
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_root {
        return Err("empty document: no <updates> element".into());
    }
    if depth != 0 {
        return Err("document ends inside an element (truncated?)".into());
    }
    Ok(count)
}

/// Opening and closing of an updateinfo document.
pub const HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<updates>\n";
pub const FOOTER: &str = "</updates>\n";

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> Vec<Advisory> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/createrepo_c/updateinfo_files")
            .join(name);
        let f = std::fs::File::open(&p).unwrap();
        let size = f.metadata().unwrap().len();
        let (_, r) = crate::rpm::decompress::open(f, size, Default::default()).unwrap();
        let mut out = Vec::new();
        parse(r, |a| {
            out.push(a);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn advisories_with_their_packages() {
        assert!(fixture("updateinfo_00.xml").is_empty());
        let a = fixture("updateinfo_01.xml");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].id, "foobarupdate_1");
        assert_eq!(
            a[0].packages,
            vec![AdvisoryPackage {
                name: "bar".into(),
                epoch: 0,
                version: "2.0.1".into(),
                release: "3".into(),
                arch: "noarch".into()
            }]
        );
        assert_eq!(a[0].kind, "enhancement");
        assert_eq!(a[0].title, "title_1");
        assert_eq!(a[0].severity, "severity_1");
        assert!(a[0].cves.is_empty(), "a reference of type self is no CVE");
        assert!(a[0].fragment.starts_with("<update from="));
        assert!(a[0].fragment.ends_with("</update>"));
        assert_eq!(fixture("updateinfo_03.xml").len(), 6);
        let cve = br#"<updates><update type="security"><id>X-1</id><title>t</title>
            <references><reference type="cve" id="CVE-2024-1"/><reference type="bugzilla" id="7"/>
            <reference type="cve" id="CVE-2024-2"/></references></update></updates>"#;
        let mut got = Vec::new();
        parse(&cve[..], |a| {
            got.push(a);
            Ok(())
        })
        .unwrap();
        assert_eq!(got[0].cves, ["CVE-2024-1", "CVE-2024-2"]);
        assert_eq!(got[0].kind, "security");
        assert!(!fixture("updateinfo_02.xml.xz").is_empty());
    }
}
