//! Documentation generated from the clap definitions, so it never drifts from the binary:
//! shell completions (`chantal completions bash|zsh|fish`), man pages (one per command, as
//! `chantal-repo-sync.1`), and the Markdown command reference (docs/COMMANDS.md). Needs no
//! configuration file: packagers run it at build time.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use clap::{Arg, Command, CommandFactory};

use crate::cli::{Cli, Shell};

/// Writes the completion script for `shell` to standard output.
pub fn completions(shell: Shell) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "chantal", &mut out);
    crate::output::Out.write_all(&out)?;
    Ok(())
}

/// Every command with its full name (`chantal repo sync`), parents first; hidden ones left out.
fn commands() -> Vec<(String, Command)> {
    fn walk(prefix: &str, cmd: &Command, out: &mut Vec<(String, Command)>) {
        let name = if prefix.is_empty() {
            cmd.get_name().to_string()
        } else {
            format!("{prefix} {}", cmd.get_name())
        };
        out.push((name.clone(), cmd.clone()));
        for sub in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            walk(&name, sub, out);
        }
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = Vec::new();
    walk("", &cmd, &mut out);
    out
}

/// Writes `chantal.1` and a page per subcommand (`chantal-repo-sync.1`) into `dir`.
pub fn man_pages(dir: &Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).map_err(|e| chantal_common::Error::io("cannot create", dir, e))?;
    let all = commands();
    for (full, cmd) in &all {
        let page = full.replace(' ', "-");
        // The page's title and NAME are the full command; its usage line too.
        let cmd = cmd
            .clone()
            .name(page.clone())
            .bin_name(full.clone())
            .display_name(page.clone());
        let mut roff = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut roff)?;
        let path = dir.join(format!("{page}.1"));
        std::fs::write(&path, roff)
            .map_err(|e| chantal_common::Error::io("cannot write", &path, e))?;
    }
    Ok(all.len())
}

/// The command reference in Markdown: every command, its usage, arguments and options.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Command reference\n\n\
         Generated from the command-line definitions by `chantal manpages --markdown`; the man\n\
         pages (`chantal manpages DIR`) hold the same text. Do not edit by hand.\n",
    );
    for (full, cmd) in commands() {
        let _ = write!(out, "\n## `{full}`\n\n");
        if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
            let about = about.to_string();
            let stop = if about.ends_with('.') { "" } else { "." };
            let _ = writeln!(out, "{about}{stop}\n");
        }
        let usage = cmd
            .clone()
            .bin_name(full.clone())
            .render_usage()
            .to_string()
            .replace("Usage: ", "");
        let _ = writeln!(out, "```\n{usage}\n```\n");
        let subs: Vec<&Command> = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
            .collect();
        if !subs.is_empty() {
            for s in subs {
                let _ = writeln!(
                    out,
                    "- [`{full} {}`](#{}): {}",
                    s.get_name(),
                    anchor(&format!("{full} {}", s.get_name())),
                    s.get_about().map(|a| a.to_string()).unwrap_or_default()
                );
            }
            out.push('\n');
        }
        // Global options are listed once, under `chantal`.
        let root = !full.contains(' ');
        let args: Vec<&Arg> = cmd
            .get_arguments()
            .filter(|a| !a.is_hide_set() && a.get_id() != "help" && a.get_id() != "version")
            .filter(|a| root || !a.is_global_set())
            .collect();
        for a in args {
            let _ = writeln!(out, "- `{}`: {}", spelling(a), help(a));
        }
    }
    out
}

/// GitHub's anchor for a heading `` `chantal repo sync` ``.
fn anchor(heading: &str) -> String {
    heading.replace(' ', "-")
}

/// `--repo-id <NAME>`, `-q, --quiet`, `<PATTERN>`.
fn spelling(a: &Arg) -> String {
    let value = a
        .get_value_names()
        .map(|v| {
            v.iter()
                .map(|n| format!("<{n}>"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| format!("<{}>", a.get_id().as_str().to_uppercase()));
    let takes_value = a.get_action().takes_values();
    match (a.get_short(), a.get_long()) {
        (None, None) => value,
        (short, Some(long)) => {
            let mut s = String::new();
            if let Some(c) = short {
                let _ = write!(s, "-{c}, ");
            }
            let _ = write!(s, "--{long}");
            if takes_value {
                let _ = write!(s, " {value}");
            }
            s
        }
        (Some(c), None) => format!("-{c}"),
    }
}

fn help(a: &Arg) -> String {
    let mut text = a
        .get_long_help()
        .or(a.get_help())
        .map(|h| h.to_string().replace('\n', " "))
        .unwrap_or_default();
    if !text.is_empty() && !text.ends_with('.') {
        text.push('.');
    }
    let values: Vec<String> = a
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect();
    if !values.is_empty() && a.get_action().takes_values() {
        let _ = write!(text, " One of: {}.", values.join(", "));
    }
    let defaults: Vec<String> = a
        .get_default_values()
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() && a.get_action().takes_values() {
        let _ = write!(text, " Default: `{}`.", defaults.join(" "));
    }
    if let Some(env) = a.get_env() {
        let _ = write!(text, " Environment: `{}`.", env.to_string_lossy());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/COMMANDS.md is what the binary says; regenerate it with
    /// `cargo run -p chantal-sync -- manpages --markdown > docs/COMMANDS.md`.
    #[test]
    fn the_command_reference_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/COMMANDS.md");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed.trim_end() == markdown().trim_end(),
            "docs/COMMANDS.md is stale: run `cargo run -p chantal-sync -- manpages --markdown > docs/COMMANDS.md`"
        );
    }

    #[test]
    fn every_command_gets_a_man_page() {
        let dir = tempfile::tempdir().unwrap();
        let n = man_pages(dir.path()).unwrap();
        assert_eq!(n, commands().len());
        let page = std::fs::read_to_string(dir.path().join("chantal-pool-verify.1")).unwrap();
        assert!(page.contains(".TH chantal-pool-verify"), "{page}");
        assert!(page.contains("repair"), "{page}");
        assert!(dir.path().join("chantal.1").is_file());
        assert!(!dir.path().join("chantal-manpages.1").exists(), "hidden");
    }
}
