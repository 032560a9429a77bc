//! One module per command group (a directory with a file per subcommand once a group grows);
//! `run` dispatches.

mod advisory;
mod bundle;
mod db;
mod env;
mod fetchd;
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
pub mod verify_tree;

use chantal_common::catalogue::Catalogue;
use chantal_common::config::Config;

use crate::cli::{
    AdvisoryCommand, BundleCommand, Cli, Command, DbCommand, EnvCommand, PackageCommand,
    PoolCommand, RepoCommand, SnapshotCommand,
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

/// A runtime for the engine's network work, and the cancellation SIGINT/SIGTERM trigger.
pub fn engine_runtime() -> anyhow::Result<(tokio::runtime::Runtime, crate::engine::Cancel)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cancel = crate::engine::Cancel::default();
    cancel.on_signals(&rt);
    Ok((rt, cancel))
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
        Command::Repo(c) => repo_command(&ctx, c, cli.verbose),
        Command::Snapshot(c) => snapshot_command(&ctx, c),
        Command::Db(c) => db_command(&ctx, c),
        Command::Env(c) => env_command(&ctx, c),
        Command::Init => init::run(&ctx),
        Command::Bundle(BundleCommand::Create {
            output,
            snapshot,
            all,
            repo_id,
            env,
            since,
        }) => bundle::create(
            &ctx,
            &bundle::CreateArgs {
                output,
                snapshot: snapshot.as_deref(),
                all: *all,
                repo_ids: repo_id,
                env: env.as_deref(),
                since: since.as_deref(),
                verbose: cli.verbose,
            },
        ),
        Command::Bundle(BundleCommand::Import { dir, key }) => {
            bundle::import(&ctx, dir, key.as_deref(), cli.verbose)
        }
        Command::Fetchd => fetchd::run(&ctx),
        // Answered before the configuration is read (main.rs).
        Command::Completions { .. } | Command::Manpages { .. } | Command::VerifyTree { .. } => {
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

fn repo_command(ctx: &Context, command: &RepoCommand, verbose: bool) -> anyhow::Result<ExitStatus> {
    match command {
        RepoCommand::List(f) => repo::list(ctx, f.format),
        RepoCommand::Sync(args) => repo::sync::run(ctx, args, verbose),
        RepoCommand::Export(args) => repo::export::run(ctx, args),
        RepoCommand::ClientConfig {
            repo_id,
            snapshot,
            env,
            base_url,
        } => repo::client_config::run(
            ctx,
            repo_id,
            match (snapshot, env) {
                (Some(s), _) => repo::client_config::Tree::Snapshot(s),
                (None, Some(e)) => repo::client_config::Tree::Env(e),
                (None, None) => repo::client_config::Tree::Latest,
            },
            base_url.as_deref(),
        ),
        RepoCommand::Forget { repo_id } => repo::forget(ctx, repo_id),
        RepoCommand::Show { repo_id, format } => repo::show(ctx, repo_id, format.format),
    }
}

fn snapshot_command(ctx: &Context, command: &SnapshotCommand) -> anyhow::Result<ExitStatus> {
    match command {
        SnapshotCommand::Create {
            repo_id,
            all,
            name,
            description,
        } => snapshot::create(ctx, repo_id, *all, name, description.as_deref()),
        SnapshotCommand::List { repo_id, format } => {
            snapshot::list(ctx, repo_id.as_deref(), format.format)
        }
        SnapshotCommand::Show {
            name,
            repo_id,
            all,
            packages,
            format,
        } => snapshot::show(
            ctx,
            name,
            repo_id.as_deref(),
            *all,
            *packages,
            format.format,
        ),
        SnapshotCommand::Delete { name, repo_id, all } => {
            snapshot::delete(ctx, name, repo_id.as_deref(), *all)
        }
        SnapshotCommand::Diff {
            from,
            to,
            repo_id,
            all: false,
            format,
        } => snapshot::diff(ctx, from, to, repo_id.as_deref(), format.format),
        SnapshotCommand::Diff {
            from,
            to,
            all: true,
            format,
            ..
        } => snapshot::diff_sets(ctx, from, to, format.format),
    }
}

fn db_command(ctx: &Context, command: &DbCommand) -> anyhow::Result<ExitStatus> {
    match command {
        DbCommand::Migrate { to: None } => db::migrate(ctx),
        DbCommand::Migrate { to: Some(url) } => db::copy_to(ctx, url),
        DbCommand::Status(f) => db::status(ctx, f.format),
        DbCommand::Cleanup {
            dry_run,
            grace,
            keep_versions_for,
        } => db::cleanup(ctx, *dry_run, *grace, *keep_versions_for),
        DbCommand::Backup { path } => db::backup(ctx, path),
    }
}

fn env_command(ctx: &Context, command: &EnvCommand) -> anyhow::Result<ExitStatus> {
    match command {
        EnvCommand::Promote {
            env,
            snapshot,
            from,
            to_previous: _,
            to_promotion,
            all,
            repo_id,
        } => env::promote(
            ctx,
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
        EnvCommand::Unset { env, all, repo_id } => env::unset(ctx, env, *all, repo_id),
        EnvCommand::List(f) => env::list(ctx, f.format),
        EnvCommand::History { env, format } => env::history(ctx, env, format.format),
    }
}
