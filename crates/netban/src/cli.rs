//! The command line, defined once: `--help`, the man page and completions come from here.
//!
//! The contract (DESIGN.md) is stable because fail2ban and scripts depend on it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// One fail2ban ban, enforced across the whole network.
///
/// netban records each ban durably, then delivers it to every configured sink (ExaFS RTBH
/// rules, commands, ...) and keeps them converged. Exit codes: 0 done or durably accepted;
/// 1 runtime failure; 2 bad usage or input; 3 bad configuration.
#[derive(Debug, Parser)]
#[command(name = "netban", version, about, long_about)]
pub struct Cli {
    /// Config file.
    #[arg(long, global = true, env = "NETBAN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Show what would happen; change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Log more to stderr (-v info, -vv debug).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print machine-readable JSON (list, sync, check, status).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ban an address or network: record the lease, then deliver it.
    Ban(BanArgs),
    /// End one jail's ban of an address; it leaves the sinks when no ban is left.
    Unban(UnbanArgs),
    /// fail2ban's actionflush: keep network bans (they expire on their own).
    Flush(JailArg),
    /// Active leases and, per sink, whether each target is in place.
    List(JailArg),
    /// Reconcile every sink now; exit 0 only when every sink is converged.
    Sync(SyncArgs),
    /// Validate the config and reach every sink (like `nginx -t`).
    Check,
    /// Daemon, sinks, pending work.
    Status,
    /// Run the delivery daemon: reconcile loop, repair, expiry, metrics.
    Daemon,
    /// Print the man page (roff) or shell completions, generated from these definitions.
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// `man`, or a shell: bash, zsh, fish, elvish, powershell.
    pub what: String,
}

#[derive(Debug, Args)]
pub struct BanArgs {
    /// The jail that banned it.
    #[arg(long, default_value = "default")]
    pub jail: String,
    /// Ban time in seconds; -1 is permanent.
    #[arg(long, allow_hyphen_values = true)]
    pub bantime: Option<String>,
    /// Ban start, unix seconds (fail2ban's <time>, may be a float).
    #[arg(long)]
    pub time: Option<String>,
    /// 1 when fail2ban restores the ban at start.
    #[arg(long, default_value = "0")]
    pub restored: String,
    /// Number of failures (informational).
    #[arg(long)]
    pub failures: Option<String>,
    /// Address (192.0.2.1, 2001:db8::1) or network (203.0.113.0/24).
    pub ip: String,
    /// Ban time, the old positional form (`netban ban IP BANTIME`).
    #[arg(allow_hyphen_values = true)]
    pub bantime_pos: Option<String>,
}

#[derive(Debug, Args)]
pub struct UnbanArgs {
    /// The jail whose ban ends.
    #[arg(long, default_value = "default")]
    pub jail: String,
    /// Address or network.
    pub ip: String,
}

#[derive(Debug, Args)]
pub struct JailArg {
    /// Only this jail.
    #[arg(long)]
    pub jail: Option<String>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Give up after this many seconds.
    #[arg(long, default_value = "60")]
    pub timeout: f64,
}
