//! Snapshot sets: one name given to the latest version of several repositories in one commit,
//! shared by `snapshot create` and `repo sync --create-snapshot`.

use chantal_common::catalogue::{Catalogue, SnapshotRecord};
use chantal_common::config::check_snapshot_name;

use super::Context;

/// Creates snapshot `name` in every repository of `names` in one commit and says so, a line
/// per repository; refused as a whole, naming why, when any of them cannot take it.
pub fn create_set(
    ctx: &Context,
    catalogue: &Catalogue,
    names: &[String],
    name: &str,
    description: Option<&str>,
) -> anyhow::Result<Vec<SnapshotRecord>> {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let set = catalogue
        .create_snapshots(&refs, name, description)
        .map_err(|e| match refs.len() {
            0 | 1 => anyhow::Error::from(e),
            n => anyhow::anyhow!("{e}: no snapshot was created in any of the {n} repositories"),
        })?;
    for s in &set {
        ctx.say(format!(
            "{}: snapshot {} of version {} ({} packages)",
            s.repository, s.name, s.version, s.packages
        ));
    }
    Ok(set)
}

/// The name `repo sync --create-snapshot` gives its set: the given one, or today's UTC date
/// with `-2`, `-3`... when any repository of the set has it.
pub fn set_name(
    catalogue: &Catalogue,
    repos: &[String],
    name: Option<&str>,
) -> anyhow::Result<String> {
    if let Some(n) = name {
        check_name(n)?;
        return Ok(n.to_string());
    }
    let base = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let mut candidate = base.clone();
    let mut n = 1;
    loop {
        let mut taken = false;
        for r in repos {
            taken |= catalogue.snapshot_exists(r, &candidate)?;
        }
        if !taken {
            return Ok(candidate);
        }
        n += 1;
        candidate = format!("{base}-{n}");
    }
}

pub fn check_name(name: &str) -> anyhow::Result<()> {
    check_snapshot_name(name).map_err(anyhow::Error::msg)
}
