//! One file per subcommand; [`run`] dispatches.

mod ban;
mod check;
mod cluster;
mod explain;
mod flush;
mod generate;
mod list;
mod migrate;
mod stats;
mod status;
mod sync;
mod unban;

use netban_core::reconcile::PassReport;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::exit::{CliError, CliResult};

pub fn run(cli: Cli) -> CliResult {
    // Validate command-line input before anything else: bad input is exit 2 and touches
    // nothing, whatever the state of the config.
    let pre = match &cli.command {
        Command::Ban(a) => Some(ban::parse(a)?),
        _ => None,
    };
    if let Command::Unban(a) = &cli.command {
        unban::validate(a)?;
    }
    if let Command::Generate(a) = &cli.command {
        return generate::run(a);
    }
    if let Command::Migrate(a) = &cli.command {
        // The new config may not exist yet: migrate loads it itself once it does.
        return migrate::run(&cli, a);
    }
    let mut ctx = Context::load(&cli)?;
    match cli.command {
        Command::Ban(_) => match pre {
            Some(req) => ban::run(&mut ctx, req),
            None => Err(CliError::Runtime("internal: ban request not parsed".into())),
        },
        Command::Unban(a) => unban::run(&mut ctx, a),
        Command::Flush(a) => flush::run(&mut ctx, a),
        Command::List(a) => list::run(&mut ctx, a),
        Command::Sync(a) => sync::run(&mut ctx, a),
        Command::Check => check::run(&mut ctx),
        Command::Status => status::run(&mut ctx),
        Command::Explain(a) => explain::run(&mut ctx, a),
        Command::Stats(a) => stats::run(&mut ctx, a),
        Command::Cluster(a) => cluster::run(&mut ctx, a),
        Command::Daemon => crate::daemon::run(&mut ctx),
        Command::Generate(_) | Command::Migrate(_) => Ok(()),
    }
}

/// Prints what a dry run would send, per sink.
pub fn print_actions(report: &PassReport) {
    for s in &report.sinks {
        if s.actions.is_empty() {
            say!("  {}: nothing to send", s.sink);
        }
        for a in &s.actions {
            say!("  {}: {a}", s.sink);
        }
        if let Some(e) = &s.error {
            say!("  {}: cannot say more: {e}", s.sink);
        }
    }
}

/// Prints rows as aligned columns.
pub fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        say!("{}", line.join("  ").trim_end());
    }
}

/// Pretty JSON on stdout.
pub fn print_json(v: &impl serde::Serialize) {
    say!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
