//! Environments: stable names (test, prod) that point, per repository, at a snapshot. A
//! promotion moves one environment in every repository it names in one transaction, and is
//! recorded with what each repository pointed at before, so a rollback is one promotion too.

use super::super::db::{self, Store};
use crate::catalogue::model::{EnvChange, EnvPointer, PromoteInput, PromoteTarget, Promotion};
use crate::error::{Error, Result};

/// Moves `input.environment` as `input.target` says, in every repository of
/// `input.repositories` (none named: every repository the target concerns), in one
/// transaction: all of them or none. Where the target is recorded history (`Previous`,
/// `Promotion`), a snapshot name that has since been given to another version is refused with
/// both versions named: an undo never points at other content without a word.
pub fn promote<S: Store>(s: &S, input: PromoteInput<'_>) -> Result<Promotion> {
    let env = input.environment;
    let ctx = format!("promoting environment {env}");
    db::write(s, &ctx, |db| promote_in(db, &ctx, input))
}

/// [`promote`] inside a transaction the caller holds (a bundle import moves environments in
/// the transaction that commits its versions).
pub(super) fn promote_in(
    db: &mut dyn db::Db,
    ctx: &str,
    input: PromoteInput<'_>,
) -> Result<Promotion> {
    let env = input.environment;
    {
        let only = |r: &str| input.repositories.is_empty() || input.repositories.contains(&r);
        let current = pointers(db, ctx, Some(env))?;
        let points_at = |r: &str| current.iter().any(|p| p.repository == r);
        let (wanted, source) = wanted(db, ctx, &input, &current)?;
        // Restoring "nowhere" where the environment points nowhere already changes nothing.
        let wanted: Vec<Want> = wanted
            .into_iter()
            .filter(|w| only(&w.repository))
            .filter(|w| w.snapshot.is_some() || points_at(&w.repository))
            .collect();
        if wanted.is_empty() {
            return Err(Error::Invalid(match input.target {
                PromoteTarget::Unset => {
                    format!("environment {env} points nowhere: nothing to unset")
                }
                _ => format!("promoting {env}: no repository to move"),
            }));
        }
        let moves = resolve(db, ctx, env, wanted)?;
        apply(db, ctx, &input, source, moves)
    }
}

/// One repository's move: the snapshot the environment will point at (name, id, version), or
/// nowhere.
struct Move {
    repository: String,
    repository_id: i64,
    target: Option<(String, i64, i64)>,
}

/// Every target must exist, and mean what it meant, before anything moves.
fn resolve(db: &mut dyn db::Db, ctx: &str, env: &str, wanted: Vec<Want>) -> Result<Vec<Move>> {
    let mut moves = Vec::with_capacity(wanted.len());
    for w in wanted {
        let repo_id = db.opt(
            ctx,
            "SELECT id FROM repositories WHERE name = $1",
            &[w.repository.as_str().into()],
            |r| r.i64(0),
        )?;
        // (Only a snapshot can be wanted in a repository the catalogue does not know:
        // unsetting needs a pointer, which needs the repository.)
        let Some(repo_id) = repo_id else {
            return Err(Error::Invalid(format!(
                "{} has no snapshot named {}: nothing promoted",
                w.repository,
                w.snapshot.as_ref().map_or("", |(n, _)| n.as_str())
            )));
        };
        let found = match &w.snapshot {
            None => None,
            Some((name, _)) => db.opt(
                ctx,
                "SELECT id, version FROM snapshots WHERE repository_id = $1 AND name = $2",
                &[repo_id.into(), name.as_str().into()],
                |r| Ok((r.i64(0)?, r.i64(1)?)),
            )?,
        };
        let target = target_of(env, &w, found)?;
        moves.push(Move {
            repository: w.repository,
            repository_id: repo_id,
            target,
        });
    }
    Ok(moves)
}

/// What a want resolves to, given the snapshot of its name the repository has now (id and
/// version), if any: refused when the snapshot is gone, or when restored history expected
/// another version under that name.
fn target_of(env: &str, w: &Want, found: Option<(i64, i64)>) -> Result<Option<(String, i64, i64)>> {
    let Some((name, expected)) = &w.snapshot else {
        return Ok(None);
    };
    let Some((snapshot_id, version)) = found else {
        return Err(Error::Invalid(format!(
            "{} has no snapshot named {name}{}: nothing promoted",
            w.repository,
            if expected.is_some() { " any more" } else { "" }
        )));
    };
    if let Some(was) = expected.filter(|was| *was != version) {
        return Err(Error::Invalid(format!(
            "{}: {env} pointed at snapshot {name} when it was version {was}; {name} is now version {version}: refusing to point {env} at other content (choose with --snapshot), nothing promoted",
            w.repository
        )));
    }
    Ok(Some((name.clone(), snapshot_id, version)))
}

/// Records the promotion, moves each repository's pointer and records what it pointed at
/// before; readers hear of it when the transaction commits.
fn apply(
    db: &mut dyn db::Db,
    ctx: &str,
    input: &PromoteInput<'_>,
    source: String,
    moves: Vec<Move>,
) -> Result<Promotion> {
    let env = input.environment;
    let (promotion, set_at) = db.one(
        ctx,
        "INSERT INTO promotions (environment, source, set_by) VALUES ($1, $2, $3)
         RETURNING id, set_at",
        &[env.into(), source.as_str().into(), input.set_by.into()],
        |r| Ok((r.i64(0)?, r.time(1)?)),
    )?;
    let mut changes = Vec::with_capacity(moves.len());
    for m in moves {
        let repo_id = m.repository_id;
        let previous = db.opt(
            ctx,
            "SELECT s.name, s.version FROM environments e
               JOIN snapshots s ON s.id = e.snapshot_id
              WHERE e.environment = $1 AND e.repository_id = $2",
            &[env.into(), repo_id.into()],
            |r| Ok((r.string(0)?, r.i64(1)?)),
        )?;
        db.execute(
            ctx,
            "DELETE FROM environments WHERE environment = $1 AND repository_id = $2",
            &[env.into(), repo_id.into()],
        )?;
        if let Some((_, snapshot_id, _)) = &m.target {
            db.execute(
                ctx,
                "INSERT INTO environments (environment, repository_id, snapshot_id, promotion_id)
                 VALUES ($1, $2, $3, $4)",
                &[
                    env.into(),
                    repo_id.into(),
                    (*snapshot_id).into(),
                    promotion.into(),
                ],
            )?;
        }
        let (snapshot, version) = match m.target {
            Some((name, _, version)) => (Some(name), Some(version)),
            None => (None, None),
        };
        let (previous, previous_version) = match previous {
            Some((n, v)) => (Some(n), Some(v)),
            None => (None, None),
        };
        db.execute(
            ctx,
            "INSERT INTO environment_history
                    (promotion_id, repository_id, snapshot_name, version, previous_name,
                     previous_version)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                promotion.into(),
                repo_id.into(),
                snapshot.as_deref().into(),
                version.into(),
                previous.as_deref().into(),
                previous_version.into(),
            ],
        )?;
        changes.push(EnvChange {
            repository: m.repository,
            snapshot,
            version,
            previous,
            previous_version,
        });
    }
    // Readers (chantal-fs) see every repository of the promotion move at once.
    db.notify(ctx, env)?;
    Ok(Promotion {
        id: promotion,
        environment: env.to_string(),
        source,
        set_at,
        set_by: input.set_by.to_string(),
        changes,
    })
}

/// Where a promotion wants one repository: a snapshot (with the version it must still be,
/// for restored history), or nowhere.
struct Want {
    repository: String,
    snapshot: Option<(String, Option<i64>)>,
}

/// What the target asks for, repository by repository (before `input.repositories` narrows
/// it), and the promotion's source as recorded.
fn wanted(
    db: &mut dyn db::Db,
    ctx: &str,
    input: &PromoteInput<'_>,
    current: &[EnvPointer],
) -> Result<(Vec<Want>, String)> {
    let env = input.environment;
    Ok(match input.target {
        PromoteTarget::Snapshot(name) => {
            if input.repositories.is_empty() {
                return Err(Error::Invalid(format!(
                    "promoting {env} to {name}: name the repositories"
                )));
            }
            (
                input
                    .repositories
                    .iter()
                    .map(|r| Want::point(r.to_string(), name.to_string(), None))
                    .collect(),
                format!("snapshot {name}"),
            )
        }
        PromoteTarget::From(other) => {
            let rows = pointers(db, ctx, Some(other))?;
            (
                wanted_from(input, other, rows, current)?,
                format!("environment {other}"),
            )
        }
        PromoteTarget::Previous => wanted_previous(db, ctx, env)?,
        PromoteTarget::Promotion(id) => (
            wanted_promotion(db, ctx, env, id, current)?,
            format!("state after promotion {id}"),
        ),
        PromoteTarget::Unset => {
            for r in input.repositories {
                if !current.iter().any(|p| p.repository == *r) {
                    return Err(Error::Invalid(format!(
                        "environment {env} points nowhere in {r}: nothing unset"
                    )));
                }
            }
            (
                current
                    .iter()
                    .map(|p| Want::nowhere(p.repository.clone()))
                    .collect(),
                "unset".to_string(),
            )
        }
    })
}

impl Want {
    fn point(repository: String, name: String, version: Option<i64>) -> Want {
        Want {
            repository,
            snapshot: Some((name, version)),
        }
    }

    fn nowhere(repository: String) -> Want {
        Want {
            repository,
            snapshot: None,
        }
    }
}

/// Where environment `other` points (`rows`); with `exact`, also nowhere where it points
/// nowhere and the environment (`current`) points somewhere.
fn wanted_from(
    input: &PromoteInput<'_>,
    other: &str,
    rows: Vec<EnvPointer>,
    current: &[EnvPointer],
) -> Result<Vec<Want>> {
    let env = input.environment;
    if rows.is_empty() && !input.exact {
        return Err(Error::Invalid(format!(
            "environment {other} points nowhere yet: nothing to copy into {env}"
        )));
    }
    if !input.exact {
        for r in input.repositories {
            if !rows.iter().any(|p| p.repository == *r) {
                return Err(Error::Invalid(format!(
                    "environment {other} points nowhere in {r}: nothing promoted"
                )));
            }
        }
    }
    let mut want: Vec<Want> = Vec::new();
    // Identical: where the source points nowhere, neither does the target.
    if input.exact {
        want.extend(
            current
                .iter()
                .filter(|p| !rows.iter().any(|s| s.repository == p.repository))
                .map(|p| Want::nowhere(p.repository.clone())),
        );
    }
    want.extend(
        rows.into_iter()
            .map(|p| Want::point(p.repository, p.snapshot, None)),
    );
    Ok(want)
}

/// What the environment's last promotion replaced, and the source naming it.
fn wanted_previous(db: &mut dyn db::Db, ctx: &str, env: &str) -> Result<(Vec<Want>, String)> {
    let last = db.opt(
        ctx,
        "SELECT max(id) FROM promotions WHERE environment = $1",
        &[env.into()],
        |r| r.opt_i64(0),
    )?;
    let Some(Some(last)) = last else {
        return Err(Error::Invalid(format!(
            "environment {env} was never promoted: there is no previous state"
        )));
    };
    let rows = db.all(
        ctx,
        "SELECT r.name, h.previous_name, h.previous_version FROM environment_history h
           JOIN repositories r ON r.id = h.repository_id
          WHERE h.promotion_id = $1 ORDER BY r.name",
        &[last.into()],
        |r| Ok((r.string(0)?, r.opt_string(1)?, r.opt_i64(2)?)),
    )?;
    Ok((
        rows.into_iter()
            .map(|(repo, name, version)| match name {
                Some(name) => Want::point(repo, name, version),
                None => Want::nowhere(repo),
            })
            .collect(),
        format!("rollback of promotion {last}"),
    ))
}

/// The environment as its promotion `id` left it: each repository as the last change up to
/// that promotion set it, nowhere where it points now and did not then.
fn wanted_promotion(
    db: &mut dyn db::Db,
    ctx: &str,
    env: &str,
    id: i64,
    current: &[EnvPointer],
) -> Result<Vec<Want>> {
    let of = db.opt(
        ctx,
        "SELECT environment FROM promotions WHERE id = $1",
        &[id.into()],
        |r| r.string(0),
    )?;
    if of.as_deref() != Some(env) {
        return Err(Error::Invalid(format!(
            "promotion {id} is not one of environment {env} (see chantal env history --env {env})"
        )));
    }
    let rows = db.all(
        ctx,
        "SELECT r.name, h.snapshot_name, h.version FROM environment_history h
           JOIN promotions p ON p.id = h.promotion_id
           JOIN repositories r ON r.id = h.repository_id
          WHERE p.environment = $1 AND h.promotion_id <= $2
          ORDER BY h.promotion_id",
        &[env.into(), id.into()],
        |r| Ok((r.string(0)?, r.opt_string(1)?, r.opt_i64(2)?)),
    )?;
    let mut then: std::collections::BTreeMap<String, Option<(String, Option<i64>)>> =
        std::collections::BTreeMap::new();
    for (repo, name, version) in rows {
        then.insert(repo, name.map(|n| (n, version)));
    }
    for p in current {
        then.entry(p.repository.clone()).or_insert(None);
    }
    Ok(then
        .into_iter()
        .map(|(repository, snapshot)| Want {
            repository,
            snapshot,
        })
        .collect())
}

/// Where environments point: every environment, or one.
pub fn environments<S: Store>(s: &S, environment: Option<&str>) -> Result<Vec<EnvPointer>> {
    s.autocommit(|db| pointers(db, "listing environments", environment))
}

fn pointers(db: &mut dyn db::Db, ctx: &str, environment: Option<&str>) -> Result<Vec<EnvPointer>> {
    let order = db.dialect().collate_bytes();
    db.all(
        ctx,
        &format!(
            "SELECT e.environment, r.name, s.name, s.version, p.set_at, p.set_by, p.id
               FROM environments e
               JOIN repositories r ON r.id = e.repository_id
               JOIN snapshots s ON s.id = e.snapshot_id
               JOIN promotions p ON p.id = e.promotion_id
              WHERE CAST($1 AS TEXT) IS NULL OR e.environment = $1
              ORDER BY e.environment{order}, r.name{order}"
        ),
        &[environment.into()],
        |r| {
            Ok(EnvPointer {
                environment: r.string(0)?,
                repository: r.string(1)?,
                snapshot: r.string(2)?,
                version: r.i64(3)?,
                set_at: r.time(4)?,
                set_by: r.string(5)?,
                promotion: r.i64(6)?,
            })
        },
    )
}

/// Every promotion of `environment`, newest first, with what it did to each repository.
pub fn environment_history<S: Store>(s: &S, environment: &str) -> Result<Vec<Promotion>> {
    s.autocommit(|db| {
        let rows = db.all(
            &format!("reading the history of environment {environment}"),
            "SELECT p.id, p.source, r.name, h.snapshot_name, h.version, h.previous_name,
                    p.set_at, p.set_by, h.previous_version
               FROM promotions p
               JOIN environment_history h ON h.promotion_id = p.id
               JOIN repositories r ON r.id = h.repository_id
              WHERE p.environment = $1
              ORDER BY p.id DESC, r.name",
            &[environment.into()],
            |r| {
                Ok((
                    (r.i64(0)?, r.string(1)?, r.time(6)?, r.string(7)?),
                    EnvChange {
                        repository: r.string(2)?,
                        snapshot: r.opt_string(3)?,
                        version: r.opt_i64(4)?,
                        previous: r.opt_string(5)?,
                        previous_version: r.opt_i64(8)?,
                    },
                ))
            },
        )?;
        let mut out: Vec<Promotion> = Vec::new();
        for ((id, source, set_at, set_by), change) in rows {
            match out.last_mut() {
                Some(p) if p.id == id => p.changes.push(change),
                _ => out.push(Promotion {
                    id,
                    environment: environment.to_string(),
                    source,
                    set_at,
                    set_by,
                    changes: vec![change],
                }),
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(snapshot: Option<(&str, Option<i64>)>) -> Want {
        Want {
            repository: "r".into(),
            snapshot: snapshot.map(|(n, v)| (n.to_string(), v)),
        }
    }

    /// The resolve is pure over what the catalogue holds: nowhere stays nowhere; a snapshot
    /// resolves to its id and version; a missing one, or restored history whose name now names
    /// other content, is refused and says which.
    #[test]
    fn a_want_resolves_to_the_snapshot_it_meant_or_is_refused() {
        assert_eq!(target_of("prod", &want(None), Some((1, 2))).unwrap(), None);
        assert_eq!(
            target_of("prod", &want(Some(("s", None))), Some((7, 3))).unwrap(),
            Some(("s".to_string(), 7, 3))
        );
        assert_eq!(
            target_of("prod", &want(Some(("s", Some(3)))), Some((7, 3))).unwrap(),
            Some(("s".to_string(), 7, 3))
        );
        let gone = target_of("prod", &want(Some(("s", None))), None).unwrap_err();
        assert_eq!(
            gone.to_string(),
            "r has no snapshot named s: nothing promoted"
        );
        let gone = target_of("prod", &want(Some(("s", Some(3)))), None).unwrap_err();
        assert_eq!(
            gone.to_string(),
            "r has no snapshot named s any more: nothing promoted"
        );
        let other = target_of("prod", &want(Some(("s", Some(2)))), Some((7, 3))).unwrap_err();
        assert!(
            other
                .to_string()
                .contains("prod pointed at snapshot s when it was version 2; s is now version 3"),
            "{other}"
        );
    }
}
