//! Streaming parser for filelists.xml and other.xml: each `<package pkgid=...>` element,
//! verbatim, keyed by pkgid so it can be matched to its primary entry.

use std::io::BufRead;

use quick_xml::events::Event;

use super::window::{self, Advance, Document};
use super::{xml, ParseError};

/// One `<package>` of filelists.xml or other.xml.
pub struct Fragment<'a> {
    /// The pkgid, trimmed and in lower case (as primary's checksums are kept).
    pub pkgid: &'a str,
    /// The element, verbatim.
    pub text: &'a str,
}

/// Reads filelists.xml (root `filelists`) or other.xml (root `otherdata`) and calls `on_package`
/// with each package. Returns the number of packages.
pub fn parse<R: BufRead>(
    input: R,
    root: &str,
    on_package: impl FnMut(&Fragment<'_>) -> Result<(), ParseError>,
) -> Result<u64, ParseError> {
    let limit = if root == "filelists" {
        xml::FILELISTS_LIMIT
    } else {
        xml::PACKAGE_LIMIT
    };
    parse_windows(Document::new(input, limit)?, root, limit, on_package)
}

fn parse_windows<R: BufRead>(
    mut doc: Document<R>,
    root: &str,
    limit: u64,
    mut on_package: impl FnMut(&Fragment<'_>) -> Result<(), ParseError>,
) -> Result<u64, ParseError> {
    let mut parser = Parser {
        root,
        open: xml::OpenElements::default(),
        depth: 0,
        count: 0,
        count_at_restart: 0,
        saw_root: false,
        name: None,
        in_package: false,
    };
    loop {
        let (window, at) = doc.window();
        match parser.window(window, at, doc.ended(), &mut on_package)? {
            Some(restart) => {
                if doc.advance(restart)? == Advance::Full {
                    return Err(parser.too_large(limit));
                }
            }
            None => return Ok(parser.count),
        }
    }
}

/// The state of a parse. What is outside a package is kept from window to window; a package
/// that a window ends inside is read again from its start in the next one.
struct Parser<'r> {
    root: &'r str,
    /// Elements open, outermost first.
    open: xml::OpenElements,
    /// Elements open at the restart point (outside any package).
    depth: usize,
    /// Packages met, the one being read included.
    count: u64,
    /// Packages met before the restart point.
    count_at_restart: u64,
    saw_root: bool,
    /// The name of the package being read (for errors).
    name: Option<String>,
    in_package: bool,
}

impl Parser<'_> {
    /// Reads `window` (at byte `at` of the document, reaching its end if `ended`), calling back
    /// for each package that ends in it. Returns where the next window must start when this one
    /// ends inside an element and more text follows, `None` once the document is read.
    fn window(
        &mut self,
        window: &[u8],
        at: u64,
        ended: bool,
        on_package: &mut impl FnMut(&Fragment<'_>) -> Result<(), ParseError>,
    ) -> Result<Option<usize>, ParseError> {
        self.open.truncate(self.depth);
        let mut depth = self.depth;
        let mut reader = window::reader(window);
        let text = window::Text::new(window);
        let mut restart = 0usize;
        self.count = self.count_at_restart;
        // The package being read: where it starts, and its pkgid.
        let mut package: Option<(usize, String)> = None;
        self.in_package = false;
        loop {
            let before = reader.buffer_position();
            let event = match window::next(&mut reader, window, at, ended) {
                Ok(window::Read::Event(event)) => event,
                Ok(window::Read::More) => return Ok(Some(restart)),
                Err((byte, error)) => return Err(self.invalid(byte, &error)),
            };
            if package.is_some() {
                // Resolving entities is only a check here: the fragment keeps the raw text.
                xml::text_piece(&event)?;
            }
            match &event {
                Event::Start(e) | Event::Empty(e) => {
                    let empty = matches!(event, Event::Empty(_));
                    let name = e.name();
                    let name = name.as_ref();
                    if depth == 0 {
                        if name != self.root {
                            return Err(
                                format!("root element is <{name}>, not <{}>", self.root).into()
                            );
                        }
                        self.saw_root = true;
                    } else if depth == 1 && name == "package" {
                        let id = xml::attr(e, "pkgid")?
                            .filter(|s| !s.trim().is_empty())
                            .ok_or_else(|| format!("package {} has no pkgid", self.count + 1))?;
                        self.count += 1;
                        self.name = xml::attr(e, "name")?;
                        let id = id.trim().to_ascii_lowercase();
                        if empty {
                            let end = reader.buffer_position() as usize;
                            on_package(&Fragment {
                                pkgid: &id,
                                text: text.slice(before as usize, end)?,
                            })?;
                        } else {
                            package = Some((before as usize, id));
                            self.in_package = true;
                        }
                    }
                    if !empty {
                        depth += 1;
                        self.open.push(name);
                    }
                }
                Event::End(e) => {
                    let name = e.name();
                    let name = name.as_ref();
                    if let Err(error) = self.open.close(name) {
                        return Err(self.invalid(at + before, &error));
                    }
                    depth -= 1;
                    if depth == 1 {
                        if let Some((start, id)) = package.take() {
                            self.in_package = false;
                            let end = reader.buffer_position() as usize;
                            on_package(&Fragment {
                                pkgid: &id,
                                text: text.slice(start, end)?,
                            })?;
                        }
                    }
                }
                Event::Eof => break,
                _ => {}
            }
            if package.is_none() {
                restart = reader.buffer_position() as usize;
                self.depth = depth;
                self.count_at_restart = self.count;
            }
        }
        if !self.saw_root {
            return Err(format!("empty document: no <{}> element", self.root).into());
        }
        if depth != 0 {
            return Err("document ends inside an element (truncated?)".into());
        }
        Ok(None)
    }

    /// The number of the package being read, or of the next one.
    fn number(&self) -> u64 {
        if self.in_package {
            self.count
        } else {
            self.count + 1
        }
    }

    /// The error of a document that is not XML at byte `at`.
    fn invalid(&self, at: u64, error: &str) -> ParseError {
        window::invalid(at, self.number(), error)
    }

    /// The error of a package that took more than the limit.
    fn too_large(&self, limit: u64) -> ParseError {
        window::too_large(
            self.number(),
            self.name.as_deref(),
            self.open.last().unwrap_or(self.root),
            limit,
        )
    }
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
        parse(&text[..], root, |f| {
            out.push((f.pkgid.to_string(), f.text.to_string()));
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

    /// Packages and odd items of a filelists.xml, each well-formed or not, with the text that
    /// tempts a reader to cut in the wrong place.
    const PIECES: &[&str] = &[
        r#"<package pkgid="AB" name="a" arch="noarch"><version epoch="0" ver="1" rel="1"/><file>/a</file><file type="dir">/b é€😀</file></package>"#,
        "\n",
        r#"<package pkgid="cd" name="b&amp;c" arch="x86_64"><file>/x &amp; &#233; &lt;/package&gt;</file><!-- </package> --><![CDATA[</package>]]></package >"#,
        r#"<package pkgid="ef" name="e"/>"#,
        r#"<bar><package pkgid="hidden"><file>/h</file></package></bar>"#,
        // Faults.
        r#"<package name="no-id"><file>/n</file></package>"#,
        r#"<package pkgid="gh"><file>&xxe;</file></package>"#,
        r#"<package pkgid="ij"><file>/i</version></package>"#,
        "<package pkgid=\"kl\"><file>\u{fffd} &amp <b/></file></package>",
    ];

    /// What a parse read, windows starting at `first` bytes, and how it ended.
    fn in_windows(text: &[u8], first: usize) -> (Vec<(String, String)>, String) {
        let mut seen = Vec::new();
        let doc = Document::with_window(text, xml::FILELISTS_LIMIT, first).unwrap();
        let end = parse_windows(doc, "filelists", xml::FILELISTS_LIMIT, |f| {
            seen.push((f.pkgid.to_string(), f.text.to_string()));
            Ok(())
        });
        (seen, format!("{end:?}"))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        /// However the text is cut into windows, the parse reads the same fragments and ends
        /// the same way as one window of the whole.
        #[test]
        fn windows_ending_anywhere_read_the_same(
            pieces in proptest::collection::vec(0..PIECES.len(), 0..8),
            first in 1usize..200,
            close in proptest::bool::ANY,
        ) {
            let mut text = String::from("<?xml version=\"1.0\"?>\n<filelists packages=\"3\">");
            for &i in &pieces {
                text.push_str(PIECES[i]);
            }
            if close {
                text.push_str("</filelists>\n");
            }
            let whole = in_windows(text.as_bytes(), text.len() + 1);
            proptest::prop_assert_eq!(in_windows(text.as_bytes(), first), whole);
        }
    }

    #[test]
    fn windows_ending_at_every_byte_read_the_same() {
        let mut text = String::from("<filelists>");
        for piece in &PIECES[..5] {
            text.push_str(piece);
        }
        text.push_str("</filelists>");
        let whole = in_windows(text.as_bytes(), text.len() + 1);
        let ids: Vec<&str> = whole.0.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["ab", "cd", "ef"], "{whole:?}");
        assert!(whole.0[1].1.ends_with("]]></package >"));
        for first in 1..text.len() {
            assert_eq!(
                in_windows(text.as_bytes(), first),
                whole,
                "first window {first}"
            );
        }
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
        let err = parse(input, "filelists", |f| {
            seen.push(f.pkgid.to_string());
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
