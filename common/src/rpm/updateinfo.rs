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
    let mut in_id = false;
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
            if in_id {
                if let Some(piece) = xml::text_piece(&event)? {
                    a.id.push_str(&piece);
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
                    };
                    xml::append_raw(&mut a.fragment, &event);
                    current = Some(a);
                } else if let Some(a) = current.as_mut() {
                    if depth == 2 && name == "id" {
                        in_id = !empty;
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
                in_id = false;
                if depth == 1 {
                    if let Some(mut a) = current.take() {
                        count += 1;
                        a.id = a.id.trim().to_string();
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
        assert!(a[0].fragment.starts_with("<update from="));
        assert!(a[0].fragment.ends_with("</update>"));
        assert_eq!(fixture("updateinfo_03.xml").len(), 6);
        assert!(!fixture("updateinfo_02.xml.xz").is_empty());
    }
}
