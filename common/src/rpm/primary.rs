//! Streaming parser for primary.xml: one [`PrimaryPackage`] and its verbatim `<package>`
//! fragment at a time, so memory does not grow with the size of the document.

use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};

use super::window::{self, Advance, Document};

use super::checksum::Checksum;
use super::{href, xml, Nevra, ParseError};

/// Largest package accepted (the biggest real RPMs are a few GiB).
pub const MAX_PACKAGE_SIZE: u64 = 1 << 40;

/// What chantal needs to know of one package in primary.xml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryPackage {
    pub nevra: Nevra,
    /// The pkgid: upstream's checksum of the file.
    pub checksum: Checksum,
    pub location_href: String,
    pub location_base: Option<String>,
    pub size_package: u64,
    pub size_installed: Option<u64>,
    pub size_archive: Option<u64>,
    pub time_file: Option<i64>,
    pub time_build: Option<i64>,
    pub sourcerpm: Option<String>,
}

/// Totals of a parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrimaryStats {
    /// The root's `packages="N"` attribute, if present.
    pub declared: Option<u64>,
    pub parsed: u64,
}

#[derive(Default)]
struct Fields {
    name: Option<String>,
    arch: Option<String>,
    epoch: Option<String>,
    ver: Option<String>,
    rel: Option<String>,
    checksum_type: Option<String>,
    checksum: Option<String>,
    href: Option<String>,
    base: Option<String>,
    size_package: Option<String>,
    size_installed: Option<String>,
    size_archive: Option<String>,
    time_file: Option<String>,
    time_build: Option<String>,
    sourcerpm: Option<String>,
}

impl Fields {
    /// The attributes of a child element of `<package>`: one pass over them, as far as the
    /// last one wanted (each is the first of its name; a second element of the same name
    /// replaces what the first gave).
    fn attributes(&mut self, e: &BytesStart<'_>) -> Result<(), ParseError> {
        let name = e.name();
        // At most three attributes per element: an array, not an allocation per element.
        let mut slots: [Option<(&str, &mut Option<String>)>; 3] = match name.as_ref() {
            "version" => [
                Some(("epoch", &mut self.epoch)),
                Some(("ver", &mut self.ver)),
                Some(("rel", &mut self.rel)),
            ],
            "checksum" => [Some(("type", &mut self.checksum_type)), None, None],
            "location" => [
                Some(("href", &mut self.href)),
                Some(("xml:base", &mut self.base)),
                None,
            ],
            "size" => [
                Some(("package", &mut self.size_package)),
                Some(("installed", &mut self.size_installed)),
                Some(("archive", &mut self.size_archive)),
            ],
            "time" => [
                Some(("file", &mut self.time_file)),
                Some(("build", &mut self.time_build)),
                None,
            ],
            _ => return Ok(()),
        };
        for (_, slot) in slots.iter_mut().flatten() {
            **slot = None;
        }
        let mut left = slots.iter().flatten().count();
        for a in e.attributes() {
            let a = a.map_err(|err| err.to_string())?;
            if let Some((_, slot)) = slots
                .iter_mut()
                .flatten()
                .find(|(key, slot)| slot.is_none() && a.key.as_ref() == *key)
            {
                **slot = Some(xml::attribute_value(&a)?);
                left -= 1;
                if left == 0 {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Whether the text of the element `name` at `depth` is a field.
    fn wants_text(depth: usize, name: &str) -> bool {
        matches!(
            (depth, name),
            (2, "name" | "arch" | "checksum") | (3, "rpm:sourcerpm")
        )
    }

    /// The text of an element that closed at `depth` inside `<package>`.
    fn text(&mut self, depth: usize, name: &str, text: &str) {
        let slot = match (depth, name) {
            (2, "name") => &mut self.name,
            (2, "arch") => &mut self.arch,
            (2, "checksum") => &mut self.checksum,
            (3, "rpm:sourcerpm") => &mut self.sourcerpm,
            _ => return,
        };
        *slot = Some(text.to_string());
    }
}

/// Reads primary.xml from `input`, calling `on_package` with each package and its fragment.
/// An `Err` from the callback stops the parse and is returned as is.
pub fn parse<R: BufRead>(
    input: R,
    on_package: impl FnMut(PrimaryPackage, &str) -> Result<(), ParseError>,
) -> Result<PrimaryStats, ParseError> {
    parse_counted(input, |_| {}, on_package)
}

/// [`parse`], telling `on_declared` the root's `packages="N"` (when present) before the first
/// package, so the caller can size what it keeps. A hint from upstream: bound it.
pub fn parse_counted<R: BufRead>(
    input: R,
    on_declared: impl FnMut(u64),
    on_package: impl FnMut(PrimaryPackage, &str) -> Result<(), ParseError>,
) -> Result<PrimaryStats, ParseError> {
    parse_windows(
        Document::new(input, xml::PACKAGE_LIMIT)?,
        on_declared,
        on_package,
    )
}

fn parse_windows<R: BufRead>(
    mut doc: Document<R>,
    mut on_declared: impl FnMut(u64),
    mut on_package: impl FnMut(PrimaryPackage, &str) -> Result<(), ParseError>,
) -> Result<PrimaryStats, ParseError> {
    let mut parser = Parser::default();
    loop {
        let (window, at) = doc.window();
        match parser.window(window, at, doc.ended(), &mut on_declared, &mut on_package)? {
            Some(restart) => {
                if doc.advance(restart)? == Advance::Full {
                    return Err(parser.too_large());
                }
            }
            None => break,
        }
    }
    Ok(PrimaryStats {
        declared: parser.declared,
        parsed: parser.parsed,
    })
}

/// The state of a parse. What is outside a package is kept from window to window; a package
/// that a window ends inside is read again from its start in the next one.
#[derive(Default)]
struct Parser {
    /// Elements open, outermost first.
    open: xml::OpenElements,
    /// Elements open at the restart point (outside any package).
    depth: usize,
    declared: Option<u64>,
    parsed: u64,
    saw_root: bool,
    fields: Fields,
    text: String,
}

impl Parser {
    /// Reads `window` (at byte `at` of the document, reaching its end if `ended`), calling back
    /// for each package that ends in it. Returns where the next window must start when this one
    /// ends inside an element and more text follows, `None` once the document is read.
    fn window(
        &mut self,
        window: &[u8],
        at: u64,
        ended: bool,
        on_declared: &mut impl FnMut(u64),
        on_package: &mut impl FnMut(PrimaryPackage, &str) -> Result<(), ParseError>,
    ) -> Result<Option<usize>, ParseError> {
        self.open.truncate(self.depth);
        let mut depth = self.depth;
        let mut reader = window::reader(window);
        let text = window::Text::new(window);
        let mut restart = 0usize;
        let mut package_start = None;
        // Whether the innermost open element's text is a field.
        let mut collect = false;
        loop {
            let before = reader.buffer_position();
            let event = match window::next(&mut reader, window, at, ended) {
                Ok(window::Read::Event(event)) => event,
                Ok(window::Read::More) => return Ok(Some(restart)),
                Err((byte, error)) => return Err(self.invalid(byte, &error)),
            };
            match &event {
                Event::Start(e) | Event::Empty(e) => {
                    let empty = matches!(event, Event::Empty(_));
                    let name = e.name();
                    let name = name.as_ref();
                    match depth {
                        0 => {
                            if name != "metadata" {
                                return Err(
                                    format!("root element is <{name}>, not <metadata>").into()
                                );
                            }
                            self.saw_root = true;
                            if let Some(n) = xml::attr(e, "packages")? {
                                self.declared = n.trim().parse().ok();
                            }
                            if let Some(n) = self.declared {
                                on_declared(n);
                            }
                        }
                        1 if name == "package" && !empty => {
                            package_start = Some(before as usize);
                            self.fields = Fields::default();
                        }
                        2 if package_start.is_some() => self.fields.attributes(e)?,
                        _ => {}
                    }
                    self.text.clear();
                    if !empty {
                        collect = package_start.is_some() && Fields::wants_text(depth, name);
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
                    match package_start {
                        Some(start) if depth == 1 => {
                            package_start = None;
                            self.parsed += 1;
                            let pkg = finish(std::mem::take(&mut self.fields))
                                .map_err(|e| format!("package {}: {e}", self.parsed))?;
                            let end = reader.buffer_position() as usize;
                            on_package(pkg, text.slice(start, end)?)?;
                        }
                        Some(_) => self.fields.text(depth, name, &self.text),
                        None => {}
                    }
                    self.text.clear();
                    collect = package_start.is_some()
                        && self
                            .open
                            .last()
                            .is_some_and(|inner| Fields::wants_text(depth - 1, inner));
                }
                Event::Eof => break,
                other => {
                    if package_start.is_some() {
                        // Checked everywhere (an undefined entity is refused), kept only where
                        // a field is read.
                        if let Some(piece) = xml::text_piece(other)? {
                            if collect {
                                self.text.push_str(&piece);
                            }
                        }
                    }
                }
            }
            if package_start.is_none() {
                restart = reader.buffer_position() as usize;
                self.depth = depth;
            }
        }
        if !self.saw_root {
            return Err("empty document: no <metadata> element".into());
        }
        if depth != 0 {
            return Err("document ends inside an element (truncated?)".into());
        }
        Ok(None)
    }

    /// The error of a document that is not XML at byte `at`.
    fn invalid(&self, at: u64, error: &str) -> ParseError {
        window::invalid(at, self.parsed + 1, error)
    }

    /// The error of a package that took more than the limit.
    fn too_large(&self) -> ParseError {
        window::too_large(
            self.parsed + 1,
            self.fields.name.as_deref(),
            self.open.last().unwrap_or("metadata"),
            xml::PACKAGE_LIMIT,
        )
    }
}

fn finish(f: Fields) -> Result<PrimaryPackage, String> {
    let name = f.name.filter(|n| !n.is_empty()).ok_or("no <name>")?;
    let ctx = |e: String| format!("{name}: {e}");
    let arch = f
        .arch
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ctx("no <arch>".into()))?;
    let version = f.ver.ok_or_else(|| ctx("no version".into()))?;
    let release = f.rel.ok_or_else(|| ctx("no release".into()))?;
    let epoch = match f.epoch.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(e) => e
            .parse::<i64>()
            .ok()
            .filter(|e| *e >= 0)
            .ok_or_else(|| ctx(format!("epoch {e:?} is not a whole number")))?,
    };
    let checksum = Checksum::new(
        f.checksum_type
            .as_deref()
            .ok_or_else(|| ctx("no checksum type".into()))?,
        f.checksum
            .as_deref()
            .ok_or_else(|| ctx("no <checksum>".into()))?,
    )
    .map_err(ctx)?;
    let location_href = f.href.ok_or_else(|| ctx("no <location href>".into()))?;
    href::check(&location_href).map_err(ctx)?;
    let size_package = match f.size_package {
        Some(s) => xml::number("package size", &s, MAX_PACKAGE_SIZE).map_err(ctx)?,
        None => return Err(ctx("no package size".into())),
    };
    let opt_size = |s: Option<String>, what: &str| -> Result<Option<u64>, String> {
        s.map(|s| xml::number(what, &s, MAX_PACKAGE_SIZE << 4).map_err(ctx))
            .transpose()
    };
    let opt_time = |s: Option<String>| s.and_then(|s| s.trim().parse::<i64>().ok());
    Ok(PrimaryPackage {
        size_installed: opt_size(f.size_installed, "installed size")?,
        size_archive: opt_size(f.size_archive, "archive size")?,
        time_file: opt_time(f.time_file),
        time_build: opt_time(f.time_build),
        sourcerpm: f.sourcerpm.filter(|s| !s.is_empty()),
        nevra: Nevra {
            name,
            epoch,
            version,
            release,
            arch,
        },
        checksum,
        location_href,
        location_base: f.base,
        size_package,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpm::error::Refused;
    use std::path::Path;

    fn fixtures() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
    }

    fn parse_file(rel: &str) -> Result<(Vec<PrimaryPackage>, Vec<String>), String> {
        let f = std::fs::File::open(fixtures().join(rel)).unwrap();
        let size = f.metadata().unwrap().len();
        let (_, r) = crate::rpm::decompress::open(f, size, Default::default()).unwrap();
        let mut pkgs = Vec::new();
        let mut frags = Vec::new();
        parse(r, |p, frag| {
            pkgs.push(p);
            frags.push(frag.to_string());
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok((pkgs, frags))
    }

    #[test]
    fn parses_cs9_appstream() {
        let (pkgs, frags) =
            parse_file("cs9/appstream/repodata/c03bb2ebc33bbee3046da091b45d90717273a43d3641a9d84e6eede05637bc8a-primary.xml.gz")
                .unwrap();
        assert_eq!(pkgs.len(), 17649);
        let first = &pkgs[0];
        assert_eq!(first.nevra.to_string(), "389-ds-base-2.5.1-1.el9.x86_64");
        assert_eq!(first.size_package, 2922140);
        assert_eq!(first.time_build, Some(1715287144));
        assert_eq!(
            first.sourcerpm.as_deref(),
            Some("389-ds-base-2.5.1-1.el9.src.rpm")
        );
        assert_eq!(
            first.location_href,
            "Packages/389-ds-base-2.5.1-1.el9.x86_64.rpm"
        );
        assert!(frags[0].starts_with("<package type=\"rpm\">\n  <name>389-ds-base</name>"));
        assert!(frags[0].ends_with("</package>"));
        assert!(pkgs.iter().any(|p| p.nevra.epoch > 0));
    }

    #[test]
    fn fragments_are_verbatim() {
        let text = std::fs::read_to_string(
            fixtures().join("createrepo_c/modified_repo_files/repo_01_ampersand-primary.xml"),
        )
        .unwrap();
        let (pkgs, frags) =
            parse_file("createrepo_c/modified_repo_files/repo_01_ampersand-primary.xml").unwrap();
        assert!(!pkgs.is_empty());
        for f in &frags {
            assert!(text.contains(f.as_str()), "fragment not verbatim:\n{f}");
        }
        assert!(frags.iter().any(|f| f.contains("&amp;")));
    }

    #[test]
    fn tolerates_unknown_elements_and_odd_files() {
        for (rel, count) in [
            (
                "createrepo_c/modified_repo_files/unknown_element_00-primary.xml",
                2,
            ),
            // The second package sits inside an unknown <bar>: unknown elements are skipped whole.
            (
                "createrepo_c/modified_repo_files/unknown_element_01-primary.xml",
                1,
            ),
            (
                "createrepo_c/modified_repo_files/unknown_element_02-primary.xml",
                2,
            ),
            ("createrepo_c/modified_repo_files/long_primary.xml", 2),
            (
                "createrepo_c/modified_repo_files/multiple_warnings_00-primary.xml",
                2,
            ),
        ] {
            match parse_file(rel) {
                Ok((pkgs, _)) => assert_eq!(pkgs.len(), count, "{rel}"),
                Err(e) => panic!("{rel}: {e}"),
            }
        }
    }

    #[test]
    fn errors_are_clear() {
        let err = parse_file("createrepo_c/modified_repo_files/error_00-primary.xml").unwrap_err();
        assert_eq!(err, "package 1: fake_bash: no checksum type");
    }

    const PKG: &str = r#"<package type="rpm"><name>a</name><arch>noarch</arch><version epoch="0" ver="1" rel="1"/><checksum type="sha256" pkgid="YES">fe9ca8250ddf6ffd0d48dd4a856840503b468c108c09bf97f528d2b73f415e41</checksum><size package="10"/><location href="HREF"/></package>"#;

    fn one(pkg: &str) -> Result<Vec<PrimaryPackage>, String> {
        let doc = format!("<metadata packages=\"1\">{pkg}</metadata>");
        let mut out = Vec::new();
        parse(doc.as_bytes(), |p, _| {
            out.push(p);
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// A primary.xml whose second package has a `<description>` of `len` bytes, produced as
    /// it is read (nothing of that size is ever in memory here).
    fn with_huge_description(len: u64) -> impl std::io::BufRead {
        use std::io::Read;
        let first = PKG.replace("HREF", "a-1-1.noarch.rpm");
        let head = format!(
            "<metadata packages=\"2\">{first}<package type=\"rpm\"><name>bomb</name><arch>noarch</arch><description>"
        );
        let tail = "</description></package></metadata>";
        std::io::BufReader::new(
            std::io::Cursor::new(head.into_bytes())
                .chain(std::io::repeat(b'x').take(len))
                .chain(tail.as_bytes()),
        )
    }

    #[test]
    fn one_huge_element_is_refused_after_the_limit_whatever_the_sizes_claim() {
        // 10 GiB of description: the parse stops once one package has taken the limit.
        let mut seen = 0;
        let err = parse(with_huge_description(10 << 30), |_, _| {
            seen += 1;
            Ok(())
        })
        .refused();
        assert_eq!(seen, 1, "the package before the bomb is parsed");
        assert!(
            err.starts_with("package 2 (bomb): <description> makes it larger than 16 MiB"),
            "{err}"
        );
        // Just under the limit is fine.
        let mut names = Vec::new();
        let ok = parse(with_huge_description(8 << 20), |p, _| {
            names.push(p.nevra.name);
            Ok(())
        });
        let err = ok.refused();
        assert!(err.contains("bomb: no version"), "parsed to the end: {err}");
    }

    /// Packages and odd items a document may hold, each well-formed or not, and with the text
    /// that tempts a reader to cut in the wrong place.
    const PIECES: &[&str] = &[
        r#"<package type="rpm"><name>a</name><arch>noarch</arch><version epoch="0" ver="1" rel="1"/><checksum type="sha256">fe9ca8250ddf6ffd0d48dd4a856840503b468c108c09bf97f528d2b73f415e41</checksum><size package="10"/><location href="a.rpm"/></package>"#,
        "\n  ",
        r#"<package type="rpm"><name>b&amp;&#233;&#x1F600;</name><arch>x86_64</arch><version ver="2" rel="1.el9"/><checksum type="sha256" pkgid="YES">
  FE9CA8250DDF6FFD0D48DD4A856840503B468C108C09BF97F528D2B73F415E41 </checksum><description><![CDATA[</package><package> ]]> é€😀 &lt;</description><!-- </package> --><?pi </package>?><size package="3" installed="4"/><location href="b/b.rpm" xml:base="http://x/"/><format><rpm:sourcerpm>b-2-1.src.rpm</rpm:sourcerpm></format></package >"#,
        "<!-- a comment with </package> and <package> -->",
        r#"<bar><package type="rpm"><name>hidden</name></package></bar>"#,
        r#"<package type="rpm"><name attr="x>y/>z">c</name><arch>noarch</arch><version epoch="1" ver="1" rel="1"/><checksum type="sha1">0123456789abcdef0123456789abcdef01234567</checksum><size package="1"/><location href="c.rpm"/><time file="1" build="2"/></package>"#,
        "<package/>",
        // Faults, each at a different byte.
        r#"<package type="rpm"><name>bad</arch></package>"#,
        r#"<package type="rpm"><name>&xxe;</name></package>"#,
        "<package type=\"rpm\"><name>\u{0}\u{7f}</name><description>\u{fffd}</description></package>",
        "<package><name>x &amp <b/></name></package>",
        "<!x>",
        "</package>",
    ];

    /// What a parse read, windows starting at `first` bytes, and how it ended.
    fn in_windows(text: &[u8], first: usize) -> (Vec<(PrimaryPackage, String)>, String) {
        let mut seen = Vec::new();
        let mut declared = Vec::new();
        let end = parse_windows(
            Document::with_window(text, xml::PACKAGE_LIMIT, first).unwrap(),
            |n| declared.push(n),
            |p, f| {
                seen.push((p, f.to_string()));
                Ok(())
            },
        );
        (seen, format!("{declared:?} {end:?}"))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        /// However the text is cut into windows, the parse reads the same packages and ends
        /// the same way (with the same error at the same byte) as one window of the whole.
        #[test]
        fn windows_ending_anywhere_read_the_same(
            pieces in proptest::collection::vec(0..PIECES.len(), 0..8),
            first in 1usize..300,
            close in proptest::bool::ANY,
        ) {
            let mut text = String::from("<?xml version=\"1.0\"?>\n<metadata packages=\"3\">");
            for &i in &pieces {
                text.push_str(PIECES[i]);
            }
            if close {
                text.push_str("</metadata>\n");
            }
            let whole = in_windows(text.as_bytes(), text.len() + 1);
            proptest::prop_assert_eq!(in_windows(text.as_bytes(), first), whole);
        }
    }

    #[test]
    fn windows_ending_at_every_byte_read_the_same() {
        let mut text = String::from("<metadata packages=\"9\">");
        for piece in &PIECES[..7] {
            text.push_str(piece);
        }
        text.push_str("</metadata>");
        let whole = in_windows(text.as_bytes(), text.len() + 1);
        assert_eq!(whole.0.len(), 3, "{whole:?}");
        for first in 1..text.len() {
            assert_eq!(
                in_windows(text.as_bytes(), first),
                whole,
                "first window {first}"
            );
        }
        // Invalid UTF-8 is the document's fault wherever the windows end.
        let mut bad = text.clone().into_bytes();
        let at = text.find("z\">c<").unwrap() + 3;
        bad[at] = 0xff;
        let whole = in_windows(&bad, bad.len() + 1);
        assert!(whole.1.contains("not valid XML"), "{whole:?}");
        for first in 1..bad.len() {
            assert_eq!(in_windows(&bad, first), whole, "first window {first}");
        }
    }

    #[test]
    fn a_field_is_the_text_after_the_last_tag_inside_it() {
        let base = PKG.replace("HREF", "a.rpm");
        for (name, expected) in [
            ("<name>a<x/>b</name>", "b"),
            ("<name>a<x>c</x>d</name>", "d"),
            ("<name>a<!-- c -->b&amp;<![CDATA[<e>]]></name>", "ab&<e>"),
        ] {
            let pkgs = one(&base.replace("<name>a</name>", name)).unwrap();
            assert_eq!(pkgs[0].nevra.name, expected, "{name}");
        }
    }

    #[test]
    fn hostile_packages_are_refused() {
        assert_eq!(
            one(&PKG.replace("HREF", "a-1-1.noarch.rpm")).unwrap().len(),
            1
        );
        for (pkg, expected) in [
            (PKG.replace("HREF", "/etc/shadow"), "absolute"),
            (PKG.replace("HREF", "../../x.rpm"), "'..'"),
            (
                PKG.replace("HREF", "a.rpm")
                    .replace("package=\"10\"", "package=\"99999999999999999\""),
                "absurdly large",
            ),
            (PKG.replace("HREF", "a.rpm").replace("sha256", "md5"), "md5"),
            (
                PKG.replace("HREF", "a.rpm")
                    .replace("<name>a</name>", "<name>&xxe;</name>"),
                "undefined entity",
            ),
        ] {
            let err = one(&pkg).unwrap_err();
            assert!(err.contains(expected), "{pkg}: {err}");
        }
        let doctype = format!("<?xml version=\"1.0\"?><!DOCTYPE m [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><metadata>{}</metadata>", PKG.replace("HREF", "a.rpm"));
        let err = parse(doctype.as_bytes(), |_, _| Ok(())).refused();
        assert!(err.contains("DTD"), "{err}");
        let err = parse(
            &b"<metadata><package type=\"rpm\"><name>a</name>"[..],
            |_, _| Ok(()),
        )
        .refused();
        assert!(err.contains("truncated") || err.contains("XML"), "{err}");
    }
}

/// What `chantal package show` prints of a package, from its stored primary.xml fragment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Description {
    pub summary: String,
    pub description: String,
    pub url: String,
    pub license: String,
    pub vendor: String,
    pub packager: String,
    pub sourcerpm: String,
}

/// Reads the descriptive fields of a stored primary.xml `<package>` fragment. Fields the
/// fragment lacks stay empty; a fragment that is not well-formed gives what was read before.
pub fn describe(fragment: &str) -> Description {
    let mut reader = quick_xml::Reader::from_str(fragment);
    let mut d = Description::default();
    let mut field: Option<&'static str> = None;
    loop {
        let event = match reader.read_event() {
            Ok(Event::Eof) | Err(_) => break,
            Ok(e) => e,
        };
        match &event {
            Event::Start(e) => {
                field = match e.name().as_ref() {
                    "summary" => Some("summary"),
                    "description" => Some("description"),
                    "url" => Some("url"),
                    "packager" => Some("packager"),
                    "rpm:license" => Some("license"),
                    "rpm:vendor" => Some("vendor"),
                    "rpm:sourcerpm" => Some("sourcerpm"),
                    _ => None,
                };
            }
            Event::End(_) => field = None,
            _ => {
                if let (Some(f), Ok(Some(text))) = (field, xml::text_piece(&event)) {
                    let target = match f {
                        "summary" => &mut d.summary,
                        "description" => &mut d.description,
                        "url" => &mut d.url,
                        "packager" => &mut d.packager,
                        "license" => &mut d.license,
                        "vendor" => &mut d.vendor,
                        _ => &mut d.sourcerpm,
                    };
                    target.push_str(&text);
                }
            }
        }
    }
    d
}

#[cfg(test)]
mod describe_tests {
    #[test]
    fn descriptive_fields() {
        let d = super::describe(
            r#"<package type="rpm"><name>a</name><summary>A &amp; B</summary>
            <description>line one
line two</description><url></url>
            <format><rpm:license>MIT</rpm:license><rpm:sourcerpm>a-1-1.src.rpm</rpm:sourcerpm></format></package>"#,
        );
        assert_eq!(d.summary, "A & B");
        assert_eq!(d.description, "line one\nline two");
        assert_eq!(d.license, "MIT");
        assert_eq!(d.sourcerpm, "a-1-1.src.rpm");
        assert_eq!(d.url, "");
    }
}
