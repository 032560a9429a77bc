//! Environments: stable names (test, prod) that point, per repository, at a snapshot. A
//! promotion moves one environment in every repository it names in one transaction, and is
//! recorded with what each repository pointed at before, so a rollback is one promotion too.

use super::super::db::{self, Store};
use crate::catalogue::model::{EnvChange, EnvPointer, PromoteInput, PromoteTarget, Promotion};
use crate::error::{Error, Result};

/// Moves `input.environment` as `input.target` says, in every repository of
/// `input.repositories` (for `From` and `Previous`, none named means every repository the
/// source names), in one transaction: all of them or none.
pub fn promote<S: Store>(s: &S, input: PromoteInput<'_>) -> Result<Promotion> {
    let env = input.environment;
    let ctx = format!("promoting environment {env}");
    db::write(s, &ctx, |db| {
        let only = |r: &str| input.repositories.is_empty() || input.repositories.contains(&r);
        // (repository, snapshot name) for each repository that moves.
        let (wanted, source): (Vec<(String, String)>, String) = match input.target {
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
                        .map(|r| (r.to_string(), name.to_string()))
                        .collect(),
                    format!("snapshot {name}"),
                )
            }
            PromoteTarget::From(other) => {
                let rows = pointers(db, &ctx, Some(other))?;
                if rows.is_empty() {
                    return Err(Error::Invalid(format!(
                        "environment {other} points nowhere yet: nothing to copy into {env}"
                    )));
                }
                let picked: Vec<(String, String)> = rows
                    .into_iter()
                    .filter(|p| only(&p.repository))
                    .map(|p| (p.repository, p.snapshot))
                    .collect();
                for r in input.repositories {
                    if !picked.iter().any(|(p, _)| p == r) {
                        return Err(Error::Invalid(format!(
                            "environment {other} points nowhere in {r}: nothing promoted"
                        )));
                    }
                }
                (picked, format!("environment {other}"))
            }
            PromoteTarget::Previous => {
                let last = db.opt(
                    &ctx,
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
                    &ctx,
                    "SELECT r.name, h.previous_name FROM environment_history h
                       JOIN repositories r ON r.id = h.repository_id
                      WHERE h.promotion_id = $1 ORDER BY r.name",
                    &[last.into()],
                    |r| Ok((r.string(0)?, r.opt_string(1)?)),
                )?;
                let mut picked = Vec::new();
                for (repo, previous) in rows.into_iter().filter(|(r, _)| only(r)) {
                    let Some(previous) = previous else {
                        return Err(Error::Invalid(format!(
                            "{repo}: {env} pointed nowhere before its last promotion: nothing to go back to"
                        )));
                    };
                    picked.push((repo, previous));
                }
                (picked, format!("rollback of promotion {last}"))
            }
        };
        if wanted.is_empty() {
            return Err(Error::Invalid(format!(
                "promoting {env}: no repository to move"
            )));
        }
        // Every target must exist before anything moves.
        let mut targets = Vec::with_capacity(wanted.len());
        for (repo, snapshot) in &wanted {
            let found = db.opt(
                &ctx,
                "SELECT r.id, s.id, s.version FROM snapshots s
                   JOIN repositories r ON r.id = s.repository_id
                  WHERE r.name = $1 AND s.name = $2",
                &[repo.into(), snapshot.into()],
                |r| Ok((r.i64(0)?, r.i64(1)?, r.i64(2)?)),
            )?;
            let Some((repo_id, snapshot_id, version)) = found else {
                return Err(Error::Invalid(format!(
                    "{repo} has no snapshot named {snapshot}: nothing promoted"
                )));
            };
            targets.push((
                repo.clone(),
                snapshot.clone(),
                repo_id,
                snapshot_id,
                version,
            ));
        }
        let promotion = db.one(
            &ctx,
            "INSERT INTO promotions (environment, source, set_by) VALUES ($1, $2, $3)
             RETURNING id, set_at",
            &[env.into(), source.as_str().into(), input.set_by.into()],
            |r| Ok((r.i64(0)?, r.time(1)?)),
        )?;
        let (promotion, set_at) = promotion;
        let mut changes = Vec::with_capacity(targets.len());
        for (repository, snapshot, repo_id, snapshot_id, version) in targets {
            let previous = db.opt(
                &ctx,
                "SELECT s.name FROM environments e JOIN snapshots s ON s.id = e.snapshot_id
                  WHERE e.environment = $1 AND e.repository_id = $2",
                &[env.into(), repo_id.into()],
                |r| r.string(0),
            )?;
            db.execute(
                &ctx,
                "DELETE FROM environments WHERE environment = $1 AND repository_id = $2",
                &[env.into(), repo_id.into()],
            )?;
            db.execute(
                &ctx,
                "INSERT INTO environments (environment, repository_id, snapshot_id, promotion_id)
                 VALUES ($1, $2, $3, $4)",
                &[
                    env.into(),
                    repo_id.into(),
                    snapshot_id.into(),
                    promotion.into(),
                ],
            )?;
            db.execute(
                &ctx,
                "INSERT INTO environment_history
                        (promotion_id, repository_id, snapshot_name, version, previous_name)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    promotion.into(),
                    repo_id.into(),
                    snapshot.as_str().into(),
                    version.into(),
                    previous.as_deref().into(),
                ],
            )?;
            changes.push(EnvChange {
                repository,
                snapshot,
                version,
                previous,
            });
        }
        // Readers (chantal-fs) see every repository of the promotion move at once.
        db.notify(&ctx, env)?;
        Ok(Promotion {
            id: promotion,
            environment: env.to_string(),
            source,
            set_at,
            set_by: input.set_by.to_string(),
            changes,
        })
    })
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
                    p.set_at, p.set_by
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
                        snapshot: r.string(3)?,
                        version: r.i64(4)?,
                        previous: r.opt_string(5)?,
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
