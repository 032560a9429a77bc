//! quick-xml plumbing shared by the repodata parsers: a reader configured for untrusted input,
//! a budget on how much of the document one package may take, verbatim re-serialisation of
//! events into fragments, and entity handling that resolves only XML's five predefined
//! entities and character references (DTDs are refused outright, so no entity is ever expanded
//! from the document itself).

use std::borrow::Cow;
use std::io::{self, BufRead, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::ParseError;

/// Largest part of primary.xml one package may take (the largest in CentOS Stream 9
/// AppStream is 284 KiB).
pub const PACKAGE_LIMIT: u64 = 16 << 20;
/// Largest part of filelists.xml one package may take (the largest in CentOS Stream 9 BaseOS is
/// 861 KiB: every file of a kernel's modules).
pub const FILELISTS_LIMIT: u64 = 64 << 20;

/// A reader that keeps all white space (trimming would eat the spaces around entity
/// references, which arrive as separate events), checks that end tags match, and lets at most
/// `limit` bytes of the document pass between two [`Budget::reset`]s (the parsers reset after
/// each package): the parser's buffer, a text node and a package's fragment all stay below it,
/// whatever sizes the document or repomd.xml claim.
pub fn reader<R: BufRead>(r: R, limit: u64) -> Reader<Budget<R>> {
    let mut reader = Reader::from_reader(Budget {
        inner: r,
        used: 0,
        limit,
    });
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    reader
}

/// Counts what passes through to the XML parser and fails once more than the limit went by
/// since the last reset.
pub struct Budget<R> {
    inner: R,
    used: u64,
    limit: u64,
}

impl<R> Budget<R> {
    /// Starts a new allowance (a new package).
    pub fn reset(&mut self) {
        self.used = 0;
    }

    /// Whether the allowance ran out (the cause of the parser's I/O error, then).
    pub fn exhausted(&self) -> bool {
        self.used >= self.limit
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

impl<R: BufRead> BufRead for Budget<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let left = self.limit.saturating_sub(self.used);
        if left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "one element is larger than the limit",
            ));
        }
        let buf = self.inner.fill_buf()?;
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        Ok(&buf[..n])
    }

    fn consume(&mut self, amount: usize) {
        self.used += amount as u64;
        self.inner.consume(amount);
    }
}

impl<R: BufRead> Read for Budget<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        super::decompress::read_from_buf(self, out)
    }
}

/// The names of the open elements, innermost last, to check end tags against and to name
/// where a parse failed: one string for all of them, so that an element costs no allocation of
/// its own (filelists.xml has one `<file>` per file).
#[derive(Default)]
pub struct OpenElements {
    names: String,
    starts: Vec<usize>,
}

impl OpenElements {
    pub fn push(&mut self, name: &str) {
        self.starts.push(self.names.len());
        self.names.push_str(name);
    }

    fn pop(&mut self) {
        if let Some(start) = self.starts.pop() {
            self.names.truncate(start);
        }
    }

    /// Closes the innermost element, which must be `name`: else the error says what was
    /// expected.
    pub fn close(&mut self, name: &str) -> Result<(), String> {
        match self.last() {
            Some(open) if open == name => {
                self.pop();
                Ok(())
            }
            Some(open) => Err(format!("expected </{open}>, found </{name}>")),
            None => Err(format!("</{name}> closes no element")),
        }
    }

    /// Closes all but the `depth` outermost elements.
    pub fn truncate(&mut self, depth: usize) {
        if let Some(&start) = self.starts.get(depth) {
            self.names.truncate(start);
            self.starts.truncate(depth);
        }
    }

    /// The innermost open element.
    pub fn last(&self) -> Option<&str> {
        self.starts.last().map(|&start| &self.names[start..])
    }
}

/// Where a parse is, for its errors: the `number`th `what` (package, advisory), its name once
/// known, and the element being read.
pub struct At<'a> {
    pub what: &'a str,
    pub number: u64,
    pub name: Option<&'a str>,
    pub element: &'a str,
}

/// The next event, with DTDs refused; an error says where: a package that went over its
/// budget is named with the element that was being read, any other error with its byte. A
/// failure to read the stored file is a [`ParseError::Read`], not the document's fault.
pub fn next_event<'b, R: BufRead>(
    reader: &mut Reader<Budget<R>>,
    buf: &'b mut Vec<u8>,
    at: At<'_>,
) -> Result<Event<'b>, ParseError> {
    match reader.read_event_into(buf) {
        Ok(event) => {
            refuse_doctype(&event)?;
            Ok(event)
        }
        Err(quick_xml::Error::Io(e)) if super::decompress::is_storage_error(&e) => {
            let e = std::sync::Arc::try_unwrap(e)
                .unwrap_or_else(|shared| io::Error::new(shared.kind(), shared.to_string()));
            Err(ParseError::from(e))
        }
        Err(e) => {
            if reader.get_ref().exhausted() {
                Err(ParseError::Invalid(format!(
                    "{what} {number}{}: <{element}> makes it larger than {} MiB, the limit for one {what}: refusing it (a decompression bomb?)",
                    at.name.map(|n| format!(" ({n})")).unwrap_or_default(),
                    reader.get_ref().limit() >> 20,
                    what = at.what,
                    number = at.number,
                    element = at.element,
                )))
            } else {
                Err(ParseError::Invalid(format!(
                    "not valid XML at byte {} ({} {}): {e}",
                    reader.error_position(),
                    at.what,
                    at.number
                )))
            }
        }
    }
}

/// Appends the event to `out` exactly as it was written in the document.
pub fn append_raw(out: &mut String, event: &Event<'_>) {
    match event {
        Event::Start(e) => {
            out.push('<');
            out.push_str(e);
            out.push('>');
        }
        Event::Empty(e) => {
            out.push('<');
            out.push_str(e);
            out.push_str("/>");
        }
        Event::End(e) => {
            out.push_str("</");
            out.push_str(e);
            out.push('>');
        }
        Event::Text(e) => out.push_str(e),
        Event::GeneralRef(e) => {
            out.push('&');
            out.push_str(e);
            out.push(';');
        }
        Event::CData(e) => {
            out.push_str("<![CDATA[");
            out.push_str(e);
            out.push_str("]]>");
        }
        Event::Comment(e) => {
            out.push_str("<!--");
            out.push_str(e);
            out.push_str("-->");
        }
        Event::PI(e) => {
            out.push_str("<?");
            out.push_str(e);
            out.push_str("?>");
        }
        Event::Decl(_) | Event::DocType(_) | Event::Eof => {}
    }
}

/// The text an event contributes to an element's content: text (entity-free by construction),
/// CDATA, or a resolved predefined entity or character reference. Other entities are errors.
pub fn text_piece<'a>(event: &'a Event<'_>) -> Result<Option<Cow<'a, str>>, String> {
    match event {
        Event::Text(t) => Ok(Some(Cow::Borrowed(&**t))),
        Event::CData(t) => Ok(Some(Cow::Borrowed(&**t))),
        Event::GeneralRef(r) => {
            if let Some(c) = r.resolve_char_ref().map_err(|e| e.to_string())? {
                return Ok(Some(Cow::Owned(c.to_string())));
            }
            let s = match &**r {
                "lt" => "<",
                "gt" => ">",
                "amp" => "&",
                "apos" => "'",
                "quot" => "\"",
                other => return Err(format!("undefined entity &{other};")),
            };
            Ok(Some(Cow::Borrowed(s)))
        }
        _ => Ok(None),
    }
}

/// An attribute's value with predefined entities resolved.
pub fn attr(e: &BytesStart<'_>, key: &str) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|err| err.to_string())?;
        if a.key.as_ref() == key {
            return attribute_value(&a).map(Some);
        }
    }
    Ok(None)
}

/// The value of an attribute, with predefined entities resolved.
pub fn attribute_value(a: &quick_xml::events::attributes::Attribute<'_>) -> Result<String, String> {
    a.normalized_value(XmlVersion::Implicit1_0)
        .map(|v| v.into_owned())
        .map_err(|err| err.to_string())
}

/// Refuses DTDs: a document type declaration can define entities, and nothing in repodata
/// needs one.
#[inline]
pub fn refuse_doctype(event: &Event<'_>) -> Result<(), String> {
    if let Event::DocType(_) = event {
        Err("document type declarations (DTDs) are not allowed in repodata".into())
    } else {
        Ok(())
    }
}

/// Parses a non-negative integer attribute or text, refusing absurd values.
pub fn number(what: &str, s: &str, max: u64) -> Result<u64, String> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{what} {s:?} is not a whole number"))?;
    if n > max {
        return Err(format!("{what} {n} is absurdly large (limit {max})"));
    }
    Ok(n)
}
