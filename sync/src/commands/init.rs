//! `chantal init`: storage directories and schema, idempotently.

use chantal_common::pool::Pool;

use super::Context;
use crate::ExitStatus;

pub fn run(ctx: &Context) -> anyhow::Result<ExitStatus> {
    // Reach the database first: a typo in database.url should not leave directories behind.
    let catalogue = ctx.catalogue_unchecked()?;
    let base = &ctx.config.storage.base_path;
    let mut created = Vec::new();
    if !base.is_dir() {
        std::fs::create_dir_all(base)
            .map_err(|e| chantal_common::Error::io("cannot create", base, e))?;
        created.push(base.clone());
    }
    created.extend(Pool::new(base).create_dirs()?);
    let applied = catalogue.migrate()?;
    for dir in &created {
        ctx.say(format!("created {}", dir.display()));
    }
    for m in &applied {
        ctx.say(format!("applied migration {}", m.name));
    }
    if created.is_empty() && applied.is_empty() {
        let version = catalogue.schema_status()?.current;
        ctx.say(format!(
            "nothing to do: storage {} exists and the catalogue ({}) is at schema version {version}",
            base.display(),
            catalogue.describe()
        ));
    }
    Ok(ExitStatus::Success)
}
