//! RPM repository metadata: reading repomd.xml, primary, filelists and other (streaming, with
//! each package's XML fragment kept verbatim), decompression, checksums, and the checks that
//! keep hostile metadata from steering chantal anywhere it should not go.

pub mod checksum;
pub mod decompress;
pub mod evr;
pub mod fragments;
pub mod href;
pub mod primary;
pub mod repomd;
pub mod updateinfo;
pub mod writer;
mod xml;

pub use checksum::{Checksum, ChecksumType};
pub use primary::PrimaryPackage;
pub use repomd::{RepoMd, RepoMdRecord};

/// `name-[epoch:]version-release.arch`, the way rpm and dnf print a package.
pub fn nevra(name: &str, epoch: i64, version: &str, release: &str, arch: &str) -> String {
    if epoch == 0 {
        format!("{name}-{version}-{release}.{arch}")
    } else {
        format!("{name}-{epoch}:{version}-{release}.{arch}")
    }
}
