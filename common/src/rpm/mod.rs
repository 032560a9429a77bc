//! RPM repository metadata: reading repomd.xml, primary, filelists and other (streaming, with
//! each package's XML fragment kept verbatim), decompression, checksums, and the checks that
//! keep hostile metadata from steering chantal anywhere it should not go.

pub mod checksum;
pub mod decompress;
mod error;
pub mod evr;
pub mod fragments;
pub mod href;
pub mod kind;
pub mod nevra;
pub mod primary;
pub mod repomd;
pub mod treeinfo;
pub mod updateinfo;
mod window;
mod xml;

pub use checksum::{Checksum, ChecksumType};
pub use error::ParseError;
pub use kind::MetadataKind;
pub use nevra::{HasNevra, Nevra, NevraRef};
pub use primary::PrimaryPackage;
pub use repomd::{RepoMd, RepoMdRecord};
