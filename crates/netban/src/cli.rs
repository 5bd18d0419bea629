//! The command line, defined once: `--help`, the man pages and completions come from here.
//!
//! The contract (DESIGN.md) is stable because fail2ban and scripts depend on it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  netban ban --jail sshd --bantime 3600 192.0.2.1   record a ban and deliver it
  netban unban 192.0.2.1                             end every local ban of an address
  netban list                                        what is banned, and where it is in place
  netban explain 192.0.2.1                           why an address is (not) banned, per sink
  netban sync                                        reconcile now; exit 0 when converged
  netban --dry-run sync                              what sync would send, request by request
  netban check                                       validate the config and reach every sink

Exit status: 0 done or durably accepted (a target the guard refuses is 0, with a log line);
1 runtime failure; 2 bad usage or input; 3 bad configuration.

Files: /etc/netban/netban.toml (or --config, or $NETBAN_CONFIG); state in /var/lib/netban.";

/// One fail2ban ban, enforced across the whole network.
///
/// netban records each ban durably, then delivers it to every configured sink (ExaFS RTBH
/// rules, commands, ...) and keeps them converged.
#[derive(Debug, Parser)]
#[command(name = "netban", version, about, long_about, after_help = EXAMPLES)]
pub struct Cli {
    /// Config file [default: /etc/netban/netban.toml, else an embedded default with no sinks].
    #[arg(long, global = true, env = "NETBAN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Show what would happen, down to each request; change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Log more to stderr (-v info, -vv debug).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print machine-readable JSON (list, sync, check, status, explain, stats, cluster status).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ban an address or network: record the lease, then deliver it.
    #[command(
        after_help = "Examples:\n  netban ban 192.0.2.1\n  netban ban --jail sshd --bantime 600 2001:db8::1\n  netban ban 203.0.113.0/24 -1          (the old positional form: permanent)"
    )]
    Ban(BanArgs),
    /// End a ban of an address; it leaves the sinks when no ban is left.
    #[command(
        after_help = "Without --jail, every local ban of the address ends (each is named).\nfail2ban always passes --jail, ending only its own."
    )]
    Unban(UnbanArgs),
    /// fail2ban's actionflush: keep network bans (they expire on their own).
    Flush(JailArg),
    /// Active leases and, per sink, whether each target is in place.
    #[command(after_help = "With --remote, asks each sink what it really holds and shows drift.")]
    List(ListArgs),
    /// Reconcile every sink now; exit 0 only when every sink is converged.
    Sync(SyncArgs),
    /// Validate the config and reach every sink (like `nginx -t`).
    Check,
    /// Daemon, sinks, pending work, entries kept on purpose, guard problems.
    Status,
    /// Why an address is (not) banned: leases, guard, each sink, history.
    #[command(after_help = "With --remote, asks each sink what it really holds for the target.")]
    Explain(ExplainArgs),
    /// Attack statistics: per day, country, jail, ASN, repeat offenders.
    #[command(
        after_help = "Examples:\n  netban stats\n  netban stats --days 7 --json\nNeeds a [stats] section in the config (docs/stats.md). With the Redis backend the numbers are the fleet's."
    )]
    Stats(StatsArgs),
    /// The cluster: this host's signing key; the bus, peers, lag, caps.
    #[command(
        after_help = "Examples:\n  netban cluster keygen                 (writes [cluster] key_file, prints the line for peers)\n  netban cluster keygen --out /etc/netban/cluster.key\n  netban cluster status --json\nSee docs/cluster.md."
    )]
    Cluster(ClusterArgs),
    /// Run the delivery daemon: reconcile loop, repair, expiry, cluster, statistics, web,
    /// metrics.
    Daemon,
    /// Print the man pages (roff) or shell completions, generated from these definitions.
    #[command(
        after_help = "Examples:\n  netban generate man > netban.1\n  netban generate man --out-dir /usr/share/man/man1   (netban.1 and one page per subcommand)\n  netban generate bash > /etc/bash_completion.d/netban"
    )]
    Generate(GenerateArgs),
    /// Move from another tool to netban: its config, and the rules it made.
    #[command(
        after_help = "Examples:\n  netban migrate exafs-action --from /etc/fail2ban/exafs.cfg\n  netban --config /etc/netban/netban.toml migrate exafs-action --from /etc/fail2ban/exafs.cfg --write\n  netban migrate exafs-action --from /etc/fail2ban/exafs.cfg --rules /var/lib/fail2ban/exafs/rules.json --dry-run"
    )]
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub what: ClusterWhat,
}

#[derive(Debug, Subcommand)]
pub enum ClusterWhat {
    /// Write this host's Ed25519 secret key (0600, never over a file) and print the line
    /// its peers paste under [cluster.peers].
    Keygen {
        /// Where [default: [cluster] key_file, /etc/netban/cluster.key].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// The bus (connected, what waits to be published, how far behind), every peer (last
    /// event, sequence, accepted, refused by cause, caps hit), the exclusive sinks' locks.
    Status,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub what: MigrateWhat,
}

#[derive(Debug, Subcommand)]
pub enum MigrateWhat {
    /// From exafs_action.py: its exafs.cfg becomes netban's config; with --rules, the RTBH
    /// rules it made become netban's (extended, and deleted at the last unban).
    ExafsAction(ExafsActionArgs),
}

#[derive(Debug, Args)]
pub struct ExafsActionArgs {
    /// The old script's config (INI, section [exafs]: url, api_key, community, whitelist_file).
    #[arg(long, value_name = "OLD.cfg")]
    pub from: PathBuf,
    /// The old script's rules.json (address -> rule id): adopt those rules into netban's state.
    #[arg(long, value_name = "rules.json")]
    pub rules: Option<PathBuf>,
    /// Write the new config (and its key file) when it does not exist yet; never over a file.
    #[arg(long)]
    pub write: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// `man`, or a shell: bash, zsh, fish, elvish, powershell.
    pub what: String,
    /// With `man`: write netban.1 and a page per subcommand into this directory.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BanArgs {
    /// The jail that banned it.
    #[arg(long, default_value = "default")]
    pub jail: String,
    /// Ban time in seconds [default: 3600]; -1 is permanent.
    #[arg(long, allow_hyphen_values = true)]
    pub bantime: Option<String>,
    /// Ban start, unix seconds (fail2ban's <time>, may be a float) [default: now].
    #[arg(long)]
    pub time: Option<String>,
    /// 1 when fail2ban restores the ban at its start.
    #[arg(long, default_value = "0")]
    pub restored: String,
    /// Number of failures (kept with the ban's event, for statistics).
    #[arg(long)]
    pub failures: Option<String>,
    /// The jail's port setting (kept with the ban's event, for statistics).
    #[arg(long)]
    pub port: Option<String>,
    /// Address (192.0.2.1, 2001:db8::1) or network (203.0.113.0/24).
    pub ip: String,
    /// Ban time, the old positional form (`netban ban IP BANTIME`); not with --bantime.
    #[arg(allow_hyphen_values = true)]
    pub bantime_pos: Option<String>,
}

#[derive(Debug, Args)]
pub struct UnbanArgs {
    /// Only this jail's ban ends [default: every local ban of the address].
    #[arg(long, conflicts_with = "everywhere")]
    pub jail: Option<String>,
    /// Every host of the cluster ends every lease of the address (a signed revoke; peers
    /// accept it from the hosts in [cluster] revoke_from).
    #[arg(long)]
    pub everywhere: bool,
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
pub struct ListArgs {
    /// Only this jail.
    #[arg(long)]
    pub jail: Option<String>,
    /// Ask each sink what it really holds, and show the difference.
    #[arg(long)]
    pub remote: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Address or network.
    pub ip: String,
    /// Ask each sink what it really holds for it.
    #[arg(long)]
    pub remote: bool,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The last N days, today included.
    #[arg(long, default_value = "30")]
    pub days: u32,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Give up after this many seconds.
    #[arg(long, default_value = "60")]
    pub timeout: f64,
}
