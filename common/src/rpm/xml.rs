//! quick-xml plumbing shared by the repodata parsers: a reader configured for untrusted input,
//! verbatim re-serialisation of events into fragments, and entity handling that resolves only
//! XML's five predefined entities and character references (DTDs are refused outright, so no
//! entity is ever expanded from the document itself).

use std::borrow::Cow;
use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// A reader that keeps all white space (trimming would eat the spaces around entity
/// references, which arrive as separate events) and checks that end tags match.
pub fn reader<R: BufRead>(r: R) -> Reader<R> {
    let mut reader = Reader::from_reader(r);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    reader
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
            let v = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| err.to_string())?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

/// Refuses DTDs: a document type declaration can define entities, and nothing in repodata
/// needs one.
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
