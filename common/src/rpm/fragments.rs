//! Streaming parser for filelists.xml and other.xml: each `<package pkgid=...>` element,
//! verbatim, keyed by pkgid so it can be matched to its primary entry.

use std::io::BufRead;

use quick_xml::events::Event;

use super::{xml, ParseError};

/// Reads filelists.xml (root `filelists`) or other.xml (root `otherdata`) and calls `on_package`
/// with each package's pkgid and fragment. Returns the number of packages.
pub fn parse<R: BufRead>(
    input: R,
    root: &str,
    mut on_package: impl FnMut(&str, &str) -> Result<(), ParseError>,
) -> Result<u64, ParseError> {
    let limit = if root == "filelists" {
        xml::FILELISTS_LIMIT
    } else {
        xml::PACKAGE_LIMIT
    };
    let mut reader = xml::reader(input, limit);
    // Elements open inside the current package, innermost last (for the error that names it).
    let mut open: Vec<String> = Vec::new();
    let mut package_name: Option<String> = None;
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut count = 0u64;
    let mut fragment = String::new();
    let mut pkgid: Option<String> = None;
    let mut saw_root = false;
    loop {
        let event = xml::next_event(
            &mut reader,
            &mut buf,
            xml::At {
                what: "package",
                number: if pkgid.is_some() { count } else { count + 1 },
                name: package_name.as_deref(),
                element: open.last().map_or(root, String::as_str),
            },
        )?;
        if pkgid.is_some() {
            xml::append_raw(&mut fragment, &event);
            // Resolving entities is only a check here: the fragment keeps the raw text.
            xml::text_piece(&event)?;
        }
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = e.name();
                let name = name.as_ref();
                if depth == 0 {
                    if name != root {
                        return Err(format!("root element is <{name}>, not <{root}>").into());
                    }
                    saw_root = true;
                } else if depth == 1 && name == "package" {
                    let id = xml::attr(e, "pkgid")?
                        .filter(|s| !s.trim().is_empty())
                        .ok_or_else(|| format!("package {} has no pkgid", count + 1))?;
                    count += 1;
                    package_name = xml::attr(e, "name")?;
                    fragment.clear();
                    xml::append_raw(&mut fragment, &event);
                    if empty {
                        on_package(id.trim(), &fragment)?;
                        reader.get_mut().reset();
                    } else {
                        pkgid = Some(id.trim().to_ascii_lowercase());
                    }
                }
                if !empty {
                    depth += 1;
                    if pkgid.is_some() {
                        open.push(e.name().as_ref().to_string());
                    }
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                open.pop();
                if depth == 1 {
                    if let Some(id) = pkgid.take() {
                        on_package(&id, &fragment)?;
                    }
                    reader.get_mut().reset();
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_root {
        return Err(format!("empty document: no <{root}> element").into());
    }
    if depth != 0 {
        return Err("document ends inside an element (truncated?)".into());
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpm::error::Refused;
    use std::path::Path;

    fn run(rel: &str, root: &str) -> Result<Vec<(String, String)>, String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/createrepo_c/modified_repo_files")
            .join(rel);
        let text = std::fs::read(path).unwrap();
        let mut out = Vec::new();
        parse(&text[..], root, |id, f| {
            out.push((id.to_string(), f.to_string()));
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn filelists_and_other_fragments() {
        let f = run("repo_01_ampersand-filelists.xml", "filelists").unwrap();
        assert!(!f.is_empty());
        assert!(f[0].1.starts_with("<package pkgid=") && f[0].1.ends_with("</package>"));
        let o = run("repo_01_ampersand-other.xml", "otherdata").unwrap();
        assert_eq!(o.len(), f.len());
        run("unknown_element_00-filelists.xml", "filelists").unwrap();
        run("unknown_element_01-other.xml", "otherdata").unwrap();
    }

    #[test]
    fn one_huge_package_is_refused_after_the_limit() {
        use std::io::Read;
        let head = "<filelists><package pkgid=\"a\" name=\"small\" arch=\"noarch\"><file>/a</file></package><package pkgid=\"b\" name=\"huge\" arch=\"noarch\"><file>";
        let input = std::io::BufReader::new(
            head.as_bytes()
                .chain(std::io::repeat(b'f').take(1 << 40))
                .chain(&b"</file></package></filelists>"[..]),
        );
        let mut seen = Vec::new();
        let err = parse(input, "filelists", |id, _| {
            seen.push(id.to_string());
            Ok(())
        })
        .refused();
        assert_eq!(seen, ["a"]);
        assert!(
            err.starts_with("package 2 (huge): <file> makes it larger than 64 MiB"),
            "{err}"
        );
    }

    #[test]
    fn missing_pkgid_and_wrong_root_are_errors() {
        let e = run("no_pkgid-filelists.xml", "filelists").unwrap_err();
        assert!(e.contains("no pkgid"), "{e}");
        let e = run("repo_01_ampersand-other.xml", "filelists").unwrap_err();
        assert!(e.contains("not <filelists>"), "{e}");
        // An unknown file type is tolerated and kept verbatim.
        let odd = run("bad_file_type-filelists.xml", "filelists").unwrap();
        assert_eq!(odd.len(), 2);
        assert!(odd[1]
            .1
            .contains(r#"<file type="foo">/usr/file_with_bad_type</file>"#));
    }
}
