//! Repositories, their latest version and their sync history.

use super::super::db::{self, Row, Store};
use std::collections::HashMap;

use crate::catalogue::model::{ForgetReport, RepoSummary, SyncHealth, SyncRecord, SyncStatus};
use crate::error::{Error, Result};

fn summary_select() -> String {
    format!(
        "SELECT r.name, r.type, r.latest_version,
                coalesce(v.package_count, 0), coalesce(v.total_size, 0),
                (SELECT max(h.finished_at) FROM sync_history h
                  WHERE h.repository_id = r.id AND h.status IN ({})),
                (SELECT count(*) FROM snapshots s WHERE s.repository_id = r.id)
           FROM repositories r
           LEFT JOIN repository_versions v
                  ON v.repository_id = r.id AND v.number = r.latest_version",
        SyncStatus::sql_list(&SyncStatus::ENDED_WELL)
    )
}

fn summary(r: &dyn Row) -> Result<RepoSummary> {
    Ok(RepoSummary {
        name: r.string(0)?,
        kind: r.string(1)?,
        latest_version: r.opt_i64(2)?,
        packages: r.i64(3)?,
        total_size: r.i64(4)?,
        last_success: r.opt_time(5)?,
        snapshots: r.i64(6)?,
    })
}

/// The repository's id, creating its row on first use.
pub fn ensure_repository<S: Store>(s: &S, name: &str, kind: &str) -> Result<i64> {
    s.autocommit(|db| {
        db.one(
            &format!("registering repository {name}"),
            "INSERT INTO repositories (name, type) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET type = excluded.type
             RETURNING id",
            &[name.into(), kind.into()],
            |r| r.i64(0),
        )
    })
}

pub fn repository_summaries<S: Store>(s: &S) -> Result<Vec<RepoSummary>> {
    s.autocommit(|db| {
        db.all(
            "listing repositories",
            &format!("{} ORDER BY r.name", summary_select()),
            &[],
            summary,
        )
    })
}

pub fn repository_summary<S: Store>(s: &S, name: &str) -> Result<Option<RepoSummary>> {
    s.autocommit(|db| {
        db.opt(
            &format!("reading repository {name}"),
            &format!("{} WHERE r.name = $1", summary_select()),
            &[name.into()],
            summary,
        )
    })
}

/// The columns [`sync_record`] reads, from `sync_history h`.
const SYNC_COLUMNS: &str = "h.started_at, h.finished_at, h.status, h.host, h.pid, h.version,
    h.added, h.removed, h.unchanged, h.bytes_downloaded, h.error, h.excluded, h.failed";

fn sync_record(r: &dyn Row, ctx: &str) -> Result<SyncRecord> {
    let status = r.string(2)?;
    Ok(SyncRecord {
        started_at: r.time(0)?,
        finished_at: r.opt_time(1)?,
        status: SyncStatus::parse(&status).ok_or_else(|| Error::Db {
            context: ctx.to_string(),
            reason: format!("unknown sync status {status:?}"),
        })?,
        host: r.string(3)?,
        pid: r.i32(4)?,
        version: r.opt_i64(5)?,
        added: r.i64(6)?,
        removed: r.i64(7)?,
        unchanged: r.i64(8)?,
        bytes_downloaded: r.i64(9)?,
        error: r.opt_string(10)?,
        excluded: r.i64(11)?,
        failed: r.i64(12)?,
    })
}

pub fn recent_syncs<S: Store>(s: &S, name: &str, limit: i64) -> Result<Vec<SyncRecord>> {
    let ctx = format!("reading the sync history of {name}");
    s.autocommit(|db| {
        db.all(
            &ctx,
            &format!(
                "SELECT {SYNC_COLUMNS}
                   FROM sync_history h JOIN repositories r ON r.id = h.repository_id
                  WHERE r.name = $1
                  ORDER BY h.started_at DESC, h.id DESC
                  LIMIT $2"
            ),
            &[name.into(), limit.into()],
            |r| sync_record(r, &ctx),
        )
    })
}

/// Per repository with a sync history: its newest run, its newest finished run, its last
/// run that ended well, and the start of the first failed or interrupted run since.
pub fn sync_health<S: Store>(s: &S) -> Result<Vec<SyncHealth>> {
    let ctx = "reading the sync history of every repository";
    let well = SyncStatus::sql_list(&SyncStatus::ENDED_WELL);
    let failed = SyncStatus::sql_list(&[SyncStatus::Failed, SyncStatus::Interrupted]);
    // Ids come from a sequence: the largest is the newest run.
    let newest = |db: &mut dyn db::Db, which: &str| -> Result<HashMap<String, SyncRecord>> {
        let rows = db.all(
            ctx,
            &format!(
                "SELECT {SYNC_COLUMNS}, r.name
                   FROM sync_history h JOIN repositories r ON r.id = h.repository_id
                  WHERE h.id IN (SELECT max(id) FROM sync_history {which} GROUP BY repository_id)"
            ),
            &[],
            |r| Ok((r.string(13)?, sync_record(r, ctx)?)),
        )?;
        Ok(rows.into_iter().collect())
    };
    s.autocommit(|db| {
        let all = newest(db, "")?;
        let mut finished = newest(db, "WHERE status <> 'running'")?;
        let mut success = newest(db, &format!("WHERE status IN ({well})"))?;
        let failing: HashMap<String, chrono::DateTime<chrono::Utc>> = db
            .all(
                ctx,
                &format!(
                    "SELECT r.name, min(h.started_at)
                       FROM sync_history h JOIN repositories r ON r.id = h.repository_id
                      WHERE h.status IN ({failed})
                        AND h.id > coalesce((SELECT max(w.id) FROM sync_history w
                                              WHERE w.repository_id = h.repository_id
                                                AND w.status IN ({well})), 0)
                      GROUP BY r.name"
                ),
                &[],
                |r| Ok((r.string(0)?, r.time(1)?)),
            )?
            .into_iter()
            .collect();
        let mut out: Vec<SyncHealth> = all
            .into_iter()
            .map(|(repository, newest)| SyncHealth {
                last_finished: finished.remove(&repository),
                last_success: success.remove(&repository),
                failing_since: failing.get(&repository).copied(),
                repository,
                newest,
            })
            .collect();
        out.sort_by(|a, b| a.repository.cmp(&b.repository));
        Ok(out)
    })
}

/// Removes a repository from the catalogue: its environment pointers, snapshots, versions and
/// their rows, and its history, in one transaction (the caller holds its sync lock). The pool
/// files only it needed are freed by the next cleanup, like those of any removed version.
pub fn forget_repository<S: Store>(s: &S, name: &str) -> Result<ForgetReport> {
    let ctx = format!("forgetting repository {name}");
    db::write(s, &ctx, |db| {
        let id = db
            .opt(
                &ctx,
                "SELECT id FROM repositories WHERE name = $1",
                &[name.into()],
                |r| r.i64(0),
            )?
            .ok_or_else(|| Error::Invalid(format!("{name} is not in the catalogue")))?;
        let count = |db: &mut dyn db::Db, table: &str| {
            db.one(
                &ctx,
                &format!("SELECT count(*) FROM {table} WHERE repository_id = $1"),
                &[id.into()],
                |r| r.i64(0),
            )
        };
        let report = ForgetReport {
            versions: count(db, "repository_versions")?,
            snapshots: count(db, "snapshots")?,
            environments: count(db, "environments")?,
        };
        // Pointers before the snapshots they name, snapshots before the versions they name;
        // the rest goes with the repository's row.
        for table in ["environments", "snapshots"] {
            db.execute(
                &ctx,
                &format!("DELETE FROM {table} WHERE repository_id = $1"),
                &[id.into()],
            )?;
        }
        db.execute(&ctx, "DELETE FROM repositories WHERE id = $1", &[id.into()])?;
        // chantal-fs drops it at once.
        db.notify(&ctx, name)?;
        Ok(report)
    })
}
