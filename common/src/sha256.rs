//! The pool's address of a file: its sha256, as 64 lower-case hex digits. A value of this type
//! was checked once (parsed from upstream, the catalogue or an operator) or computed from the
//! bytes, so the pool, the catalogue and the view never meet a malformed one: a path built from
//! it cannot climb out of the pool, and two spellings of one digest cannot name two files.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer};
use serde::Serialize;

/// A sha256 digest in lower-case hex. Serializes as its string; `Borrow<str>` lets maps keyed by
/// it be queried with a `&str`. A boxed `str`: 16 bytes where a `String` takes 24, and an
/// `Option` of it no more (a sync plan holds one per package).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Sha256(Box<str>);

/// Length of the hex spelling.
pub const SHA256_HEX_LEN: usize = 64;

impl Sha256 {
    /// Checks a spelling: 64 hex digits; upper case is folded, anything else refused.
    pub fn parse(s: &str) -> Result<Sha256, String> {
        if s.len() != SHA256_HEX_LEN || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{s:?} is not a sha256 (64 hex digits)"));
        }
        Ok(Sha256(s.to_ascii_lowercase().into_boxed_str()))
    }

    /// The digest of `bytes` held in memory (small files: keys, signatures, repomd.xml).
    pub fn digest(bytes: &[u8]) -> Sha256 {
        use sha2::Digest;
        Sha256::from_hasher(sha2::Sha256::new_with_prefix(bytes))
    }

    /// The value of a streaming hasher that saw every byte.
    pub fn from_hasher(hasher: sha2::Sha256) -> Sha256 {
        use sha2::Digest;
        Sha256(hex::encode(hasher.finalize()).into_boxed_str())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0.into_string()
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for Sha256 {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Sha256 {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Sha256 {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Sha256 {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl FromStr for Sha256 {
    type Err = String;
    fn from_str(s: &str) -> Result<Sha256, String> {
        Sha256::parse(s)
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sha256, D::Error> {
        let s = String::deserialize(d)?;
        Sha256::parse(&s).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_folds_and_refuses() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(Sha256::digest(b"").as_str(), empty);
        assert_eq!(Sha256::parse(&empty.to_uppercase()).unwrap(), empty);
        for bad in [
            "",
            "abc",
            &format!("{}g", &empty[1..]),
            &format!("{empty}0"),
            "../../etc/passwd",
        ] {
            assert!(Sha256::parse(bad).is_err(), "{bad:?} accepted");
        }
        let json = serde_json::to_string(&Sha256::digest(b"")).unwrap();
        assert_eq!(json, format!("\"{empty}\""));
        assert!(serde_json::from_str::<Sha256>("\"nope\"").is_err());
    }

    #[test]
    fn a_missing_digest_costs_no_more_than_one() {
        assert_eq!(std::mem::size_of::<Option<Sha256>>(), 16);
    }

    #[test]
    fn streaming_and_whole_agree() {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"hel");
        h.update(b"lo");
        assert_eq!(Sha256::from_hasher(h), Sha256::digest(b"hello"));
    }
}
