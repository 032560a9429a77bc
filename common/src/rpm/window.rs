//! A repodata document read as large windows of its decompressed text, so that the parsers
//! tokenize the text where it lies (quick-xml's slice reader: no copy of each event into a
//! buffer) and a package's fragment is a slice of the window, not a re-serialisation of its
//! events.
//!
//! A window ends wherever the reads ended, often inside a package. The parser tells where the
//! last whole top-level item ended (its restart point) when it reaches the end of a window
//! with more document to come; the next window starts there, holding the unfinished package
//! again in full, and the parser reads that package from its start. Nothing before a restart
//! point is read twice, and a parser only acts on a package (its callback) once the package has
//! ended inside a window, so a package is never reported twice.

use std::io::BufRead;

use super::ParseError;

/// The first window's size: large enough that restarting the one unfinished package at each
/// window's end costs little (a package of primary.xml takes 1 to 3 KiB).
const FIRST_WINDOW: usize = 1 << 20;

/// The document's text from the current restart point on.
pub struct Document<R> {
    input: R,
    buf: Vec<u8>,
    /// Bytes of `buf` that hold text.
    len: usize,
    /// Where `buf[0]` is in the document.
    offset: u64,
    /// Whether the input has no more text.
    ended: bool,
    /// The most one window may hold when it has to grow (one package and what precedes it
    /// since the last restart point).
    limit: usize,
}

/// What [`Document::advance`] could do.
#[derive(Debug, PartialEq, Eq)]
pub enum Advance {
    /// The window holds more text after the restart point than before.
    More,
    /// The document has no more text.
    End,
    /// The text after the restart point already fills `limit` bytes.
    Full,
}

impl<R: BufRead> Document<R> {
    /// A document whose first window is read at once.
    pub fn new(input: R, limit: u64) -> Result<Document<R>, ParseError> {
        Document::with_window(input, limit, FIRST_WINDOW)
    }

    /// [`Document::new`] with a first window of `first` bytes (tests use tiny ones, to end
    /// windows everywhere).
    pub fn with_window(input: R, limit: u64, first: usize) -> Result<Document<R>, ParseError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut doc = Document {
            input,
            buf: vec![0; first.min(limit).max(1)],
            len: 0,
            offset: 0,
            ended: false,
            limit,
        };
        doc.fill()?;
        Ok(doc)
    }

    /// The text from the restart point on, and where it starts in the document. Unless the
    /// document ended, a character cut by the end of the reads is left for the next window, so
    /// that the reader's UTF-8 errors are always the document's.
    pub fn window(&self) -> (&[u8], u64) {
        let text = &self.buf[..self.len];
        let end = if self.ended {
            text.len()
        } else {
            whole_characters(text)
        };
        (&text[..end], self.offset)
    }

    /// Whether the window reaches the end of the document.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Moves the restart point `consumed` bytes into the window and reads on: the next window
    /// holds at least one byte more after the restart point than this one, unless the
    /// document ended or the text after the restart point would exceed the limit.
    pub fn advance(&mut self, consumed: usize) -> Result<Advance, ParseError> {
        let consumed = consumed.min(self.len);
        self.buf.copy_within(consumed..self.len, 0);
        self.len -= consumed;
        self.offset += consumed as u64;
        if self.ended {
            return Ok(Advance::End);
        }
        if self.len == self.buf.len() {
            if self.len >= self.limit {
                return Ok(Advance::Full);
            }
            let grown = self.buf.len().saturating_mul(2).min(self.limit);
            self.buf.resize(grown, 0);
        }
        let before = self.len;
        self.fill()?;
        Ok(if self.len > before {
            Advance::More
        } else {
            Advance::End
        })
    }

    /// Reads until the buffer is full or the input ends.
    fn fill(&mut self) -> Result<(), ParseError> {
        while self.len < self.buf.len() {
            let chunk = match self.input.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ParseError::from(e)),
            };
            if chunk.is_empty() {
                self.ended = true;
                break;
            }
            let n = chunk.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&chunk[..n]);
            self.input.consume(n);
            self.len += n;
        }
        Ok(())
    }
}

/// The length of `text` without a UTF-8 sequence its end cuts short (an invalid sequence is
/// kept, for the reader to refuse).
fn whole_characters(text: &[u8]) -> usize {
    let tail = text.len().saturating_sub(4);
    let Some(lead) = (tail..text.len()).rev().find(|&i| text[i] & 0xc0 != 0x80) else {
        return text.len();
    };
    let needed = match text[lead] {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    };
    if lead + needed > text.len() {
        lead
    } else {
        text.len()
    }
}

/// Whether a reader's `error` at byte `at` of `window` may only mean that the window ended
/// inside an item: quick-xml's syntax errors are all a terminator not found before the end of
/// its input (but for a `<!` it cannot name, which needs a few bytes after it), and a
/// reference is unclosed at the end when nothing after its `&` ends it.
fn may_be_cut(error: &quick_xml::Error, window: &[u8], at: u64) -> bool {
    use quick_xml::errors::{IllFormedError, SyntaxError};
    let at = usize::try_from(at).unwrap_or(usize::MAX).min(window.len());
    match error {
        quick_xml::Error::Syntax(SyntaxError::InvalidBangMarkup) => window.len() - at < 16,
        quick_xml::Error::Syntax(_) => true,
        quick_xml::Error::IllFormed(IllFormedError::UnclosedReference) => !window
            .get(at + 1..)
            .unwrap_or_default()
            .iter()
            .any(|b| matches!(b, b';' | b'&' | b'<')),
        _ => false,
    }
}

/// A window's bytes, and the same as text when they are all UTF-8 (nearly always): a
/// fragment is then a slice of the text, checked once for the whole window rather than once
/// per package.
pub struct Text<'w> {
    bytes: &'w [u8],
    text: Option<&'w str>,
}

impl<'w> Text<'w> {
    pub fn new(bytes: &'w [u8]) -> Text<'w> {
        Text {
            bytes,
            text: std::str::from_utf8(bytes).ok(),
        }
    }

    /// The text from byte `start` to byte `end` (a package's fragment: every event of it was
    /// UTF-8, so this only fails on a reader's fault).
    pub fn slice(&self, start: usize, end: usize) -> Result<&'w str, ParseError> {
        match self.text.and_then(|t| t.get(start..end)) {
            Some(text) => Ok(text),
            None => std::str::from_utf8(self.bytes.get(start..end).unwrap_or_default())
                .map_err(|e| ParseError::Invalid(format!("not UTF-8: {e}"))),
        }
    }
}

/// Where a parse stopped reading a window.
pub enum Read<'w> {
    /// The next event.
    Event(quick_xml::events::Event<'w>),
    /// The window ends inside an item (or at its end) and more text follows: read on from the
    /// restart point in a larger or later window.
    More,
}

/// The next event of the window `reader` reads (the `event`th byte of it, at byte `at` of the
/// document, reaching its end if `ended`), DTDs refused; an error that is the document's
/// names its byte in the document.
pub fn next<'w>(
    reader: &mut quick_xml::Reader<&'w [u8]>,
    window: &'w [u8],
    at: u64,
    ended: bool,
) -> Result<Read<'w>, (u64, String)> {
    let event = reader.buffer_position();
    match reader.read_event() {
        Ok(quick_xml::events::Event::Eof) if !ended => Ok(Read::More),
        Ok(e) => match super::xml::refuse_doctype(&e) {
            Ok(()) => Ok(Read::Event(e)),
            Err(message) => Err((at + event, message)),
        },
        Err(e) if !ended && may_be_cut(&e, window, reader.error_position()) => Ok(Read::More),
        Err(e) => Err((at + error_byte(&e, reader, event), e.to_string())),
    }
}

/// The error of a document that is not XML at byte `at`, in the `number`th package.
pub fn invalid(at: u64, number: u64, error: &str) -> ParseError {
    ParseError::Invalid(format!(
        "not valid XML at byte {at} (package {number}): {error}"
    ))
}

/// The error of the `number`th package (`name`d, when known), which `element` made larger
/// than `limit` bytes.
pub fn too_large(number: u64, name: Option<&str>, element: &str, limit: u64) -> ParseError {
    ParseError::Invalid(format!(
        "package {number}{}: <{element}> makes it larger than {} MiB, the limit for one package: refusing it (a decompression bomb?)",
        name.map(|n| format!(" ({n})")).unwrap_or_default(),
        limit >> 20,
    ))
}

/// Where in the window the reader's `error` is: quick-xml places its syntax and form errors,
/// but not a text's failed UTF-8 check, which is the event that began at `event`.
fn error_byte(error: &quick_xml::Error, reader: &quick_xml::Reader<&[u8]>, event: u64) -> u64 {
    match error {
        quick_xml::Error::Encoding(_) => event,
        _ => reader.error_position(),
    }
}

/// The reader of one window: every white space kept (trimming would eat the spaces around
/// entity references, which arrive as separate events); end tags are checked by the parsers,
/// which know the elements open before the window began (the reader does not: the root's end
/// tag closes nothing it saw).
pub fn reader(window: &[u8]) -> quick_xml::Reader<&[u8]> {
    let mut reader = quick_xml::Reader::from_reader(window);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = false;
    config.allow_unmatched_ends = true;
    reader
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_grow_to_the_limit_and_keep_the_text_after_the_restart_point() {
        let text: Vec<u8> = (0..5000u32).map(|i| b'!' + (i % 90) as u8).collect();
        let input = || std::io::BufReader::with_capacity(7, &text[..]);
        let mut doc = Document::with_window(input(), 4096, 100).unwrap();
        // Nothing consumed: the window grows, by doubling, up to the limit.
        let mut sizes = vec![doc.window().0.len()];
        while doc.advance(0).unwrap() == Advance::More {
            sizes.push(doc.window().0.len());
        }
        assert_eq!(sizes, [100, 200, 400, 800, 1600, 3200, 4096]);
        assert_eq!(doc.advance(0).unwrap(), Advance::Full);
        assert_eq!(doc.window().0, &text[..4096]);
        // Consuming moves through the whole text, each window where the last one stopped.
        let mut doc = Document::with_window(input(), 4096, 100).unwrap();
        let mut read = Vec::new();
        loop {
            let (w, at) = doc.window();
            assert_eq!(at as usize, read.len());
            let take = w.len().min(33);
            read.extend_from_slice(&w[..take]);
            if doc.advance(take).unwrap() == Advance::End && doc.window().0.is_empty() {
                break;
            }
        }
        assert_eq!(read, text);
        assert!(doc.ended());
    }

    #[test]
    fn a_window_never_ends_inside_a_character() {
        let text = "aé€😀b".as_bytes();
        for end in 0..=text.len() {
            let whole = whole_characters(&text[..end]);
            assert!(std::str::from_utf8(&text[..whole]).is_ok(), "{end}");
            assert!(end - whole < 4);
        }
        // An invalid byte is the document's fault, not a cut.
        assert_eq!(whole_characters(b"a\xff"), 2);
    }
}
