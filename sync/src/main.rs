//! `chantal`: the command operators and cron run.

mod cancel;
mod cli;
mod commands;
mod docs;
mod engine;
mod output;
mod trust;

use std::process::ExitCode;

use clap::Parser;

/// How a command ended, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything asked for was done.
    Success,
    /// An error; the message was printed.
    Failure,
    /// Done, but not everything (`--allow-partial`).
    Partial,
    /// Stopped by SIGINT or SIGTERM.
    Interrupted,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        match s {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Failure => ExitCode::from(1),
            ExitStatus::Partial => ExitCode::from(2),
            ExitStatus::Interrupted => ExitCode::from(130),
        }
    }
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    chantal_common::limits::raise_open_files();
    init_tracing(cli.quiet, cli.verbose, cli.log_format);
    output::set_quiet(cli.quiet);
    output::set_json_logs(cli.log_format == cli::LogFormat::Json);
    let status = match run(&cli) {
        Ok(status) => status,
        Err(err) => {
            // Our errors carry their cause in their own message: print only the top line.
            output::error(err);
            ExitStatus::Failure
        }
    };
    // Output that could not be written is reported once, now that the work is done.
    match output::finish() {
        Some(e) => {
            output::error(format_args!("cannot write to standard output: {e}"));
            match status {
                ExitStatus::Success | ExitStatus::Partial => ExitStatus::Failure,
                other => other,
            }
            .into()
        }
        None => status.into(),
    }
}

/// The commands that need no configuration (they describe the binary itself, or check a tree
/// from anywhere), then the rest.
fn run(cli: &cli::Cli) -> anyhow::Result<ExitStatus> {
    match &cli.command {
        cli::Command::Completions { shell } => docs::completions(*shell)?,
        cli::Command::Manpages { markdown: true, .. } => output::line(docs::markdown().trim_end()),
        cli::Command::Manpages { dir: Some(dir), .. } => {
            let n = docs::man_pages(dir)?;
            if !cli.quiet {
                output::line(format_args!("wrote {n} man pages to {}", dir.display()));
            }
        }
        cli::Command::VerifyTree {
            target,
            key,
            ca_cert,
            jobs,
            format,
        } => {
            let web = target.starts_with("http://") || target.starts_with("https://");
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            return commands::verify_tree::run(&commands::verify_tree::Args {
                target,
                key: key.as_deref(),
                ca_cert: ca_cert.as_deref(),
                jobs: jobs.unwrap_or(if web { 8 } else { cores }),
                format: format.format,
                quiet: cli.quiet,
                verbose: cli.verbose,
            });
        }
        _ => return commands::run(cli),
    }
    Ok(ExitStatus::Success)
}

fn init_tracing(quiet: bool, verbose: bool, format: cli::LogFormat) {
    let default = if quiet {
        "error"
    } else if verbose {
        // Our own detail only: the database and HTTP drivers' debug output is noise here.
        "info,chantal=debug,chantal_common=debug"
    } else {
        "info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    if format == cli::LogFormat::Json {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::registry()
            .with(filter)
            .with(chantal_common::logging::JsonLines::stderr())
            .init();
        return;
    }
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        // A closed standard error must not turn a log line into a panic.
        .log_internal_errors(false)
        .init();
}
