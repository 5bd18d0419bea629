//! The command line of `netban-bench`: the options BENCHMARKS.md lists, their defaults and
//! their `--quick` sizes. Parsed by hand (no dependency for eight flags); an unknown flag or
//! case is an error that shows the usage.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

pub const CASES: &[&str] = &[
    "reference",
    "inline",
    "unreachable",
    "daemon",
    "direct",
    "burst-cli",
    "burst-socket",
    "restore",
];

pub const USAGE: &str = "\
netban-bench: benchmark netban against a real ExaFS and a real fail2ban; prints a markdown table.

usage: netban-bench --netban PATH [options]

  --netban PATH        the netban binary to measure (a release build)
  --quick              small sizes for a smoke run (explicit options still win)
  --calls N            timed calls per single-call case (default 200, quick 20)
  --down N             calls with ExaFS refusing connections (default 20, quick 3)
  --blackhole N        calls with ExaFS blackholed, ~3 s each (default 5, quick 2)
  --bans N             bans per burst (default 10000, quick 300)
  --restore N,N        restored bans per fail2ban restart (default 2000,10000, quick 100,300);
                       each must be <= --bans
  --direct N           POSTs straight to ExaFS, per variant (default 1000, quick 50)
  --only CASE,CASE     run only these: reference, inline, unreachable, daemon, direct,
                       burst-cli, burst-socket, restore (restore also runs burst-cli)
  --timeout SECS       give up on one burst or restore after this long (default 3600)
  --out FILE           also write the report (environment + table) to FILE
  -h, --help           this text

Needs ExaFS in $NETBAN_EXAFS_VENV and fail2ban installed (scripts/test installs both).
";

pub struct Args {
    pub netban: PathBuf,
    pub quick: bool,
    pub calls: usize,
    pub down: usize,
    pub blackhole: usize,
    pub bans: usize,
    pub restore: Vec<usize>,
    pub direct: usize,
    pub only: BTreeSet<String>,
    pub timeout: Duration,
    pub out: Option<PathBuf>,
}

impl Args {
    pub fn parse() -> Result<Args> {
        let mut raw: Vec<String> = std::env::args().skip(1).collect();
        raw.reverse();
        let mut netban = None;
        let mut quick = false;
        let (mut calls, mut down, mut blackhole, mut bans, mut direct) =
            (None, None, None, None, None);
        let mut restore: Option<Vec<usize>> = None;
        let mut only: Option<BTreeSet<String>> = None;
        let mut timeout = Duration::from_secs(3600);
        let mut out = None;
        while let Some(arg) = raw.pop() {
            let (key, inline) = match arg.split_once('=') {
                Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = || -> Result<String> {
                inline
                    .clone()
                    .or_else(|| raw.pop())
                    .ok_or_else(|| anyhow!("{key} needs a value\n\n{USAGE}"))
            };
            let num = |s: String| -> Result<usize> {
                s.parse::<usize>()
                    .map_err(|_| anyhow!("{key}: {s:?} is not a number"))
            };
            match key.as_str() {
                "-h" | "--help" => {
                    print!("{USAGE}");
                    std::process::exit(0);
                }
                "--netban" => netban = Some(PathBuf::from(value()?)),
                "--quick" => quick = true,
                "--calls" => calls = Some(num(value()?)?),
                "--down" => down = Some(num(value()?)?),
                "--blackhole" => blackhole = Some(num(value()?)?),
                "--bans" => bans = Some(num(value()?)?),
                "--direct" => direct = Some(num(value()?)?),
                "--restore" => {
                    let v = value()?;
                    let sizes = v
                        .split(',')
                        .filter(|s| !s.trim().is_empty())
                        .map(|s| num(s.trim().to_string()))
                        .collect::<Result<Vec<_>>>()?;
                    restore = Some(sizes);
                }
                "--only" => {
                    let v = value()?;
                    let set: BTreeSet<String> = v
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    if let Some(bad) = set.iter().find(|c| !CASES.contains(&c.as_str())) {
                        bail!("--only: unknown case {bad:?}; cases: {}", CASES.join(", "));
                    }
                    only = Some(set);
                }
                "--timeout" => timeout = Duration::from_secs(num(value()?)? as u64),
                "--out" => out = Some(PathBuf::from(value()?)),
                other => bail!("unknown argument {other:?}\n\n{USAGE}"),
            }
        }
        let netban = netban.ok_or_else(|| anyhow!("--netban PATH is required\n\n{USAGE}"))?;
        let netban = fs::canonicalize(&netban)
            .with_context(|| format!("--netban {}: no such file", netban.display()))?;
        let pick = |v: Option<usize>, full: usize, small: usize| {
            v.unwrap_or(if quick { small } else { full })
        };
        let mut restore = restore.unwrap_or_else(|| {
            if quick {
                vec![100, 300]
            } else {
                vec![2000, 10_000]
            }
        });
        restore.sort_unstable();
        restore.dedup();
        restore.retain(|&n| n > 0);
        let mut only =
            only.unwrap_or_else(|| CASES.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
        if only.contains("restore") {
            only.insert("burst-cli".into());
        }
        let args = Args {
            netban,
            quick,
            calls: pick(calls, 200, 20).max(1),
            down: pick(down, 20, 3),
            blackhole: pick(blackhole, 5, 2),
            bans: pick(bans, 10_000, 300).max(1),
            restore,
            direct: pick(direct, 1000, 50).max(8),
            only,
            timeout,
            out,
        };
        if let Some(&big) = args.restore.last()
            && args.only.contains("restore")
            && big > args.bans
        {
            bail!(
                "--restore {big} exceeds --bans {}: the restored bans are the burst's",
                args.bans
            );
        }
        Ok(args)
    }

    pub fn runs(&self, case: &str) -> bool {
        self.only.contains(case)
    }
}
