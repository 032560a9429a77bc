//! Checksums as repodata declares them (`<checksum type="sha256">`), and streaming hashers that
//! compute the pool's sha256 and the upstream-declared checksum in one pass.

use std::fmt;

use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use crate::Sha256 as PoolSha256;

/// A checksum algorithm repodata may declare. md5 is refused: it proves nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumType {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl ChecksumType {
    /// Parses repodata's spelling (`sha` is yum's old name for sha1). `Err` carries the
    /// reason, e.g. for md5.
    pub fn parse(s: &str) -> Result<ChecksumType, String> {
        match s.to_ascii_lowercase().as_str() {
            "sha" | "sha1" => Ok(ChecksumType::Sha1),
            "sha224" => Ok(ChecksumType::Sha224),
            "sha256" => Ok(ChecksumType::Sha256),
            "sha384" => Ok(ChecksumType::Sha384),
            "sha512" => Ok(ChecksumType::Sha512),
            "md5" => Err("md5 checksums are refused: md5 is broken".into()),
            other => Err(format!("unknown checksum type {other:?}")),
        }
    }

    /// The name chantal stores and prints.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumType::Sha1 => "sha1",
            ChecksumType::Sha224 => "sha224",
            ChecksumType::Sha256 => "sha256",
            ChecksumType::Sha384 => "sha384",
            ChecksumType::Sha512 => "sha512",
        }
    }

    /// Length of the hex digest.
    pub fn hex_len(self) -> usize {
        match self {
            ChecksumType::Sha1 => 40,
            ChecksumType::Sha224 => 56,
            ChecksumType::Sha256 => 64,
            ChecksumType::Sha384 => 96,
            ChecksumType::Sha512 => 128,
        }
    }
}

impl fmt::Display for ChecksumType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A declared checksum: algorithm and lower-case hex value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checksum {
    pub kind: ChecksumType,
    pub value: String,
}

impl Checksum {
    /// Validates the hex value against the algorithm.
    pub fn new(kind: &str, value: &str) -> Result<Checksum, String> {
        let kind = ChecksumType::parse(kind)?;
        let value = value.trim().to_ascii_lowercase();
        if value.len() != kind.hex_len() || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{value:?} is not a {kind} checksum"));
        }
        Ok(Checksum { kind, value })
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// One streaming hash of any supported algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha1(Sha1),
    Sha224(Sha224),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(kind: ChecksumType) -> Hasher {
        match kind {
            ChecksumType::Sha1 => Hasher::Sha1(Sha1::new()),
            ChecksumType::Sha224 => Hasher::Sha224(Sha224::new()),
            ChecksumType::Sha256 => Hasher::Sha256(Sha256::new()),
            ChecksumType::Sha384 => Hasher::Sha384(Sha384::new()),
            ChecksumType::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha224(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// Lower-case hex digest.
    pub fn finish(self) -> String {
        match self {
            Hasher::Sha1(h) => hex::encode(h.finalize()),
            Hasher::Sha224(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha384(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// The pool's sha256 plus, when upstream declared another algorithm, that one too: every byte is
/// hashed once per distinct algorithm.
#[derive(Clone)]
pub struct DualHasher {
    sha256: Sha256,
    other: Option<Hasher>,
    declared: ChecksumType,
}

impl DualHasher {
    pub fn new(declared: ChecksumType) -> DualHasher {
        DualHasher {
            sha256: Sha256::new(),
            other: (declared != ChecksumType::Sha256).then(|| Hasher::new(declared)),
            declared,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        if let Some(o) = &mut self.other {
            o.update(data);
        }
    }

    /// `(sha256, declared checksum)`.
    pub fn finish(self) -> (PoolSha256, Checksum) {
        let sha256 = PoolSha256::from_hasher(self.sha256);
        let value = match self.other {
            Some(o) => o.finish(),
            None => sha256.as_str().to_string(),
        };
        (
            sha256,
            Checksum {
                kind: self.declared,
                value,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(ChecksumType::parse("sha").unwrap(), ChecksumType::Sha1);
        assert_eq!(ChecksumType::parse("SHA256").unwrap(), ChecksumType::Sha256);
        assert!(ChecksumType::parse("md5").unwrap_err().contains("refused"));
        assert!(Checksum::new("sha256", "abc").is_err());
        assert!(Checksum::new("sha1", &"g".repeat(40)).is_err());
    }

    #[test]
    fn dual_hasher_matches_known_digests() {
        for (kind, expected) in [
            (ChecksumType::Sha1, "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"),
            (
                ChecksumType::Sha512,
                "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043",
            ),
        ] {
            let mut h = DualHasher::new(kind);
            h.update(b"hel");
            h.update(b"lo");
            let (sha256, declared) = h.finish();
            assert_eq!(
                sha256,
                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
            );
            assert_eq!(declared.value, expected);
        }
    }
}
