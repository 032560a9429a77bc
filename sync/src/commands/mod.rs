//! One module per command group (a directory with a file per subcommand once a group grows);
//! `run` dispatches.

mod advisory;
mod db;
mod env;
mod init;
mod metrics;
mod package;
mod pool;
mod publish;
mod repo;
mod served;
mod sets;
mod snapshot;
mod status;
mod updateinfo;

use chantal_common::catalogue::Catalogue;
use chantal_common::config::Config;

use crate::cli::{
    AdvisoryCommand, Cli, Command, DbCommand, EnvCommand, PackageCommand, PoolCommand, RepoCommand,
    SnapshotCommand,
};
use crate::ExitStatus;

/// What every command needs: the configuration and the global flags.
pub struct Context {
    pub config: Config,
    pub quiet: bool,
}

impl Context {
    /// The catalogue, checked to be at this binary's schema version.
    pub fn catalogue(&self) -> anyhow::Result<Catalogue> {
        Ok(Catalogue::open(&self.config.database_url())?)
    }

    /// The catalogue without the schema check, created if it is a SQLite file that does not
    /// exist yet (for `init` and `db migrate`).
    pub fn catalogue_unchecked(&self) -> anyhow::Result<Catalogue> {
        Ok(Catalogue::connect(&self.config.database_url())?)
    }

    /// The catalogue without the schema check, never created (for `db status`).
    pub fn catalogue_existing(&self) -> anyhow::Result<Catalogue> {
        Ok(Catalogue::connect_existing(&self.config.database_url())?)
    }

    /// Checks that `env` is one of the configured `environments:`.
    pub fn check_env(&self, env: &str) -> anyhow::Result<()> {
        let configured = &self.config.environments;
        if configured.iter().any(|e| e == env) {
            return Ok(());
        }
        if configured.is_empty() {
            anyhow::bail!(
                "unknown environment {env}: the configuration lists none (environments: [test, prod])"
            );
        }
        anyhow::bail!(
            "unknown environment {env} (configured: {})",
            configured.join(", ")
        )
    }

    /// Prints a line on stdout unless `--quiet`.
    pub fn say(&self, line: impl std::fmt::Display) {
        if !self.quiet {
            crate::output::line(line);
        }
    }
}

pub fn run(cli: &Cli) -> anyhow::Result<ExitStatus> {
    let config = Config::load(&cli.config)?;
    if !cli.quiet {
        for warning in &config.warnings {
            crate::output::warn(warning);
        }
    }
    let ctx = Context {
        config,
        quiet: cli.quiet,
    };
    match &cli.command {
        Command::Init => init::run(&ctx),
        Command::Repo(RepoCommand::List(f)) => repo::list(&ctx, f.format),
        Command::Repo(RepoCommand::Sync(args)) => repo::sync::run(&ctx, args, cli.verbose),
        Command::Repo(RepoCommand::Export(args)) => repo::export::run(&ctx, args),
        Command::Repo(RepoCommand::ClientConfig {
            repo_id,
            snapshot,
            env,
            base_url,
        }) => repo::client_config::run(
            &ctx,
            repo_id,
            match (snapshot, env) {
                (Some(s), _) => repo::client_config::Tree::Snapshot(s),
                (None, Some(e)) => repo::client_config::Tree::Env(e),
                (None, None) => repo::client_config::Tree::Latest,
            },
            base_url.as_deref(),
        ),
        Command::Repo(RepoCommand::Forget { repo_id }) => repo::forget(&ctx, repo_id),
        Command::Repo(RepoCommand::Show { repo_id, format }) => {
            repo::show(&ctx, repo_id, format.format)
        }
        Command::Snapshot(SnapshotCommand::Create {
            repo_id,
            all,
            name,
            description,
        }) => snapshot::create(&ctx, repo_id, *all, name, description.as_deref()),
        Command::Snapshot(SnapshotCommand::List { repo_id, format }) => {
            snapshot::list(&ctx, repo_id.as_deref(), format.format)
        }
        Command::Snapshot(SnapshotCommand::Show {
            name,
            repo_id,
            all,
            packages,
            format,
        }) => snapshot::show(
            &ctx,
            name,
            repo_id.as_deref(),
            *all,
            *packages,
            format.format,
        ),
        Command::Snapshot(SnapshotCommand::Delete { name, repo_id, all }) => {
            snapshot::delete(&ctx, name, repo_id.as_deref(), *all)
        }
        Command::Snapshot(SnapshotCommand::Diff {
            from,
            to,
            repo_id,
            all: false,
            format,
        }) => snapshot::diff(&ctx, from, to, repo_id.as_deref(), format.format),
        Command::Snapshot(SnapshotCommand::Diff {
            from,
            to,
            all: true,
            format,
            ..
        }) => snapshot::diff_sets(&ctx, from, to, format.format),
        Command::Db(DbCommand::Migrate { to: None }) => db::migrate(&ctx),
        Command::Db(DbCommand::Migrate { to: Some(url) }) => db::copy_to(&ctx, url),
        Command::Db(DbCommand::Status(f)) => db::status(&ctx, f.format),
        Command::Db(DbCommand::Cleanup {
            dry_run,
            grace,
            keep_versions_for,
        }) => db::cleanup(&ctx, *dry_run, *grace, *keep_versions_for),
        Command::Env(EnvCommand::Promote {
            env,
            snapshot,
            from,
            to_previous: _,
            to_promotion,
            all,
            repo_id,
        }) => env::promote(
            &ctx,
            env,
            match (snapshot, from, to_promotion) {
                (Some(s), _, _) => env::Target::Snapshot(s),
                (None, Some(f), _) => env::Target::From(f),
                (None, None, Some(id)) => env::Target::Promotion(*id),
                (None, None, None) => env::Target::Previous,
            },
            *all,
            repo_id,
        ),
        Command::Env(EnvCommand::Unset { env, all, repo_id }) => {
            env::unset(&ctx, env, *all, repo_id)
        }
        Command::Env(EnvCommand::List(f)) => env::list(&ctx, f.format),
        Command::Env(EnvCommand::History { env, format }) => env::history(&ctx, env, format.format),
        // Answered before the configuration is read (main.rs).
        Command::Completions { .. } | Command::Manpages { .. } => {
            anyhow::bail!("internal error: documentation commands need no configuration")
        }
        Command::Status { max_age, format } => status::run(&ctx, *max_age, format.format),
        Command::Pool(PoolCommand::Verify {
            repo_id,
            sample,
            repair,
            format,
        }) => pool::verify(
            &ctx,
            &pool::Verify {
                repo_id: repo_id.as_deref(),
                sample: *sample,
                repair: *repair,
                format: format.format,
                verbose: cli.verbose,
            },
        ),
        Command::Db(DbCommand::Backup { path }) => db::backup(&ctx, path),
        Command::Package(PackageCommand::Search {
            pattern,
            provides,
            file,
            repo_id,
            format,
        }) => package::search(
            &ctx,
            &package::Search {
                pattern: pattern.as_deref(),
                provides: provides.as_deref(),
                file: file.as_deref(),
                repo_id: repo_id.as_deref(),
                format: format.format,
            },
        ),
        Command::Package(PackageCommand::Show { nevra, format }) => {
            package::show(&ctx, nevra, format.format)
        }
        Command::Advisory(AdvisoryCommand::Search {
            id,
            cve,
            repo_id,
            format,
        }) => advisory::search(
            &ctx,
            &match (id, cve) {
                (Some(id), _) => advisory::Wanted::Id(id),
                (None, Some(cve)) => advisory::Wanted::Cve(cve),
                (None, None) => anyhow::bail!("give an advisory ID or --cve CVE"),
            },
            repo_id.as_deref(),
            format.format,
        ),
    }
}
