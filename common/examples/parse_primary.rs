//! Parses a primary.xml(.gz/.xz/.zst/.bz2) the way sync does and prints the package count and
//! the time taken: `cargo run --release --example parse_primary -- FILE`.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: parse_primary FILE")?;
    let started = Instant::now();
    let file = std::fs::File::open(&path)?;
    let size = file.metadata()?.len();
    let (_, reader) = chantal_common::rpm::decompress::open(file, size, Default::default())?;
    let mut fragment_bytes = 0usize;
    let stats = chantal_common::rpm::primary::parse(reader, |_, fragment| {
        fragment_bytes += fragment.len();
        Ok(())
    })?;
    println!(
        "{} packages, {} MB of fragments, parsed in {:.3} s",
        stats.parsed,
        fragment_bytes >> 20,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
