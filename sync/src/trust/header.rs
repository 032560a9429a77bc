//! An RPM's lead and headers, read and bounds-checked before rpm-rs parses them. rpm-rs
//! trusts a header's index: an entry offset past the data panics, and an entry count of
//! billions makes it reserve that many items (an allocation failure aborts the process).
//! These are rpm's own limits (`hdrchkTags`, `hdrchkData`, `dataLength`), so nothing rpm
//! installs is refused here.

use std::io::Read;

const LEAD_SIZE: usize = 96;
const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
/// The magic, version 1 and four reserved bytes rpm wants zero ("hdr magic: BAD").
const HEADER_MAGIC: [u8; 8] = [0x8e, 0xad, 0xe8, 1, 0, 0, 0, 0];
/// `RPMSIGTYPE_HEADERSIG`, the only signature type rpm reads.
const HEADER_SIGNATURES: u16 = 5;
/// rpm's `HEADER_TAGS_MAX` and `HEADER_DATA_MAX`.
const MAX_ENTRIES: usize = 0xffff;
const MAX_DATA: usize = 0x0fff_ffff;

/// The lead, the signature header with its padding and the main header of the RPM `input`
/// starts with, checked so that rpm-rs can parse them without panicking or over-allocating;
/// `input` is left at the payload.
pub fn read_headers(input: &mut impl Read) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(16 << 10);
    take(input, LEAD_SIZE, &mut bytes)?;
    if bytes[..4] != LEAD_MAGIC {
        return Err("not an RPM file (no RPM lead)".into());
    }
    // rpm's own lead checks: format 3 or 4, signatures in a header.
    if !(3..=4).contains(&bytes[4])
        || u16::from_be_bytes([bytes[78], bytes[79]]) != HEADER_SIGNATURES
    {
        return Err(format!(
            "unsupported RPM lead (format {}, signature type {})",
            bytes[4],
            u16::from_be_bytes([bytes[78], bytes[79]])
        ));
    }
    let data = read_header(input, &mut bytes, "signature header")?;
    // The main header starts 8-byte aligned.
    take(input, (8 - data % 8) % 8, &mut bytes)?;
    read_header(input, &mut bytes, "header")?;
    Ok(bytes)
}

/// One header (magic, index, data) appended to `bytes`: the size of its data.
fn read_header(input: &mut impl Read, bytes: &mut Vec<u8>, what: &str) -> Result<usize, String> {
    let start = bytes.len();
    take(input, 16, bytes)?;
    let intro = &bytes[start..];
    if intro[..8] != HEADER_MAGIC {
        return Err(format!("the {what} has no header magic"));
    }
    let entries = be32(intro, 8);
    let data = be32(intro, 12);
    if entries > MAX_ENTRIES || data > MAX_DATA {
        return Err(format!(
            "the {what} claims {entries} entries and {data} bytes of data (rpm's limits: {MAX_ENTRIES}, {MAX_DATA})"
        ));
    }
    take(input, 16 * entries + data, bytes)?;
    let index = &bytes[start + 16..start + 16 + 16 * entries];
    for entry in index.chunks_exact(16) {
        let (tag, kind, offset, count) = (
            be32(entry, 0),
            be32(entry, 4),
            be32(entry, 8),
            be32(entry, 12),
        );
        // The least each of `count` items of this type takes: strings at least their NUL.
        let item = match kind {
            0 => 0,
            1 | 2 | 6..=9 => 1,
            3 => 2,
            4 => 4,
            5 => 8,
            _ => return Err(format!("the {what}'s tag {tag} has unknown type {kind}")),
        };
        let fits = offset <= data && count.saturating_mul(item) <= data - offset;
        if !fits {
            return Err(format!(
                "the {what}'s tag {tag} ({count} items at offset {offset}) lies outside its {data} bytes of data"
            ));
        }
    }
    Ok(data)
}

fn take(input: &mut impl Read, n: usize, bytes: &mut Vec<u8>) -> Result<(), String> {
    let got = input
        .take(n as u64)
        .read_to_end(bytes)
        .map_err(|e| format!("cannot read the RPM headers: {e}"))?;
    if got < n {
        return Err("the file ends inside its RPM headers (truncated?)".into());
    }
    Ok(())
}

/// The big-endian u32 at `at`, as an index.
pub(super) fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lead and a signature header with one entry, then an empty main header.
    fn rpm(kind: u32, offset: u32, count: u32, data: u32) -> Vec<u8> {
        let mut b = vec![0u8; 96];
        b[..4].copy_from_slice(&LEAD_MAGIC);
        b[4] = 3;
        b[79] = 5;
        b.extend([0x8e, 0xad, 0xe8, 1, 0, 0, 0, 0]);
        b.extend(1u32.to_be_bytes());
        b.extend(data.to_be_bytes());
        for v in [1000u32, kind, offset, count] {
            b.extend(v.to_be_bytes());
        }
        b.extend(vec![0u8; data as usize]);
        b.extend(vec![0u8; (8 - data as usize % 8) % 8]);
        b.extend([0x8e, 0xad, 0xe8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    #[test]
    fn entries_inside_their_data_pass_and_others_are_refused() {
        let ok = rpm(4, 4, 3, 16);
        assert_eq!(read_headers(&mut &ok[..]).unwrap(), ok);
        let ok = rpm(6, 15, 1, 16);
        assert!(read_headers(&mut &ok[..]).is_ok());
        for (kind, offset, count, why) in [
            (4, 17, 1, "outside"),
            (4, 8, 3, "outside"),
            (5, 0, u32::MAX, "outside"),
            (8, 10, 7, "outside"),
            (12, 0, 1, "unknown type"),
        ] {
            let err = read_headers(&mut &rpm(kind, offset, count, 16)[..]).unwrap_err();
            assert!(err.contains(why), "{kind} {offset} {count}: {err}");
        }
        let mut huge = rpm(4, 0, 1, 16);
        huge[96 + 12..96 + 16].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(read_headers(&mut &huge[..])
            .unwrap_err()
            .contains("rpm's limits"));
        let cut = rpm(4, 0, 1, 16);
        assert!(read_headers(&mut &cut[..130])
            .unwrap_err()
            .contains("truncated"));
        assert!(read_headers(&mut &b"not an rpm at all"[..]).is_err());
        // rpm refuses non-zero reserved bytes after a header's magic, and other leads.
        for (at, why) in [(96 + 5, "magic"), (4, "lead"), (79, "lead")] {
            let mut bad = rpm(4, 0, 1, 16);
            bad[at] ^= 0x20;
            assert!(
                read_headers(&mut &bad[..]).unwrap_err().contains(why),
                "{at}"
            );
        }
    }
}
