//! The exec sink: run a command for each ban and unban, or one command per batch.
//!
//! Covers the classic custom fail2ban action ("call my script with jail, bantime and ip")
//! without its dangers: the argv is built from templates element by element and run directly
//! (never through a shell), with a clean environment (`PATH` plus `NETBAN_*` variables), a
//! timeout, no stdin, bounded output ([`run`]). A non-zero exit is a failure the engine
//! retries like any other.
//!
//! The batched form (`ban_batch`, `unban_batch`) runs one command for a whole batch, `{ips}`
//! expanding to one argument per target: a cluster receiver feeds peer bans into a fail2ban
//! jail with one `fail2ban-client set JAIL banip IP...` per batch instead of one Python start
//! per ban.

pub mod config;
mod run;

use std::time::{Duration, Instant};

use async_trait::async_trait;

pub use config::ExecConfig;
pub use run::{find_program, kill_group};

use crate::config::SinkEnv;
use crate::owner::Mark;
use crate::sink::{Applied, Batching, Change, Commit, Outcome, Sink, SinkError};
use crate::target::Target;
use crate::template::{Template, Vars};
use run::Ended;

/// Runs `ban`/`unban` argv templates.
pub struct ExecSink {
    name: String,
    host: String,
    mark: Mark,
    ban: Command,
    unban: Option<Command>,
    timeout: Duration,
}

/// A command for each target, or one for a batch.
enum Command {
    Each(Vec<Template>),
    Batch(Vec<Arg>),
}

/// An argument of a batch command.
enum Arg {
    Fixed(Template),
    Ips,
    Prefixes,
}

impl ExecSink {
    pub fn new(name: &str, config: &ExecConfig, env: &SinkEnv) -> Result<ExecSink, String> {
        let each = |argv: &[String]| -> Result<Command, String> {
            Ok(Command::Each(
                argv.iter()
                    .map(|a| Template::parse(a))
                    .collect::<Result<_, _>>()?,
            ))
        };
        let batch = |argv: &[String]| -> Result<Command, String> {
            Ok(Command::Batch(
                argv.iter()
                    .map(|a| match a.as_str() {
                        config::IPS => Ok(Arg::Ips),
                        config::PREFIXES => Ok(Arg::Prefixes),
                        _ => Template::parse(a).map(Arg::Fixed),
                    })
                    .collect::<Result<_, _>>()?,
            ))
        };
        let ban = match (&config.ban, &config.ban_batch) {
            (Some(a), _) => each(a)?,
            (None, Some(a)) => batch(a)?,
            (None, None) => return Err("set ban or ban_batch".into()),
        };
        let unban = match (&config.unban, &config.unban_batch) {
            (Some(a), _) => Some(each(a)?),
            (None, Some(a)) => Some(batch(a)?),
            (None, None) => None,
        };
        Ok(ExecSink {
            name: name.to_string(),
            host: env.host_id.clone(),
            mark: env.mark.clone(),
            ban,
            unban,
            timeout: Duration::from_secs_f64(config.timeout),
        })
    }

    fn batched(&self) -> bool {
        matches!(self.ban, Command::Batch(_))
    }

    async fn run(&self, argv: Vec<String>, vars: Vars, deadline: Instant) -> Outcome {
        let program = argv.first().cloned().unwrap_or_default();
        let left = deadline.saturating_duration_since(Instant::now());
        let limit = self.timeout.min(left.max(Duration::from_millis(100)));
        let env: Vec<(String, String)> = vars.env().map(|(k, v)| (k, v.to_string())).collect();
        match run::run(&argv, env.into_iter(), limit).await {
            Err(e) => Err(SinkError::later(format!(
                "{}: cannot run {program}: {e}; check the path in the sink's command",
                self.name
            ))),
            Ok(Ended::TimedOut) => Err(SinkError::soon(format!(
                "{}: {program} did not finish within {:.1}s; it and its process group were killed",
                self.name,
                limit.as_secs_f64()
            ))),
            Ok(Ended::Exited { status, .. }) if status.success() => Ok(Applied::default()),
            Ok(Ended::Exited { status, stderr }) => {
                let stderr = String::from_utf8_lossy(&stderr);
                let first: String = stderr
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect();
                Err(SinkError::soon(format!(
                    "{}: {program} exited with {status}{}",
                    self.name,
                    if first.is_empty() {
                        String::new()
                    } else {
                        format!(": {first}")
                    }
                )))
            }
        }
    }

    fn vars(&self, target: &Target, change: &Change) -> Vars {
        Vars::new(target, change.lease(), &self.host).with_mark(&self.mark)
    }

    /// One command per change.
    async fn apply_each(&self, changes: &[Change], deadline: Instant) -> Vec<Outcome> {
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            if Instant::now() >= deadline {
                out.push(Err(SinkError::soon(format!(
                    "{}: deadline reached before running the command",
                    self.name
                ))));
                continue;
            }
            let command = match change {
                // Already banned through this sink; a command has no expiry to extend.
                Change::Add {
                    remote_id: Some(_), ..
                } => None,
                Change::Add { .. } => Some(&self.ban),
                Change::Remove { .. } => self.unban.as_ref(),
            };
            let outcome = match command {
                Some(Command::Each(argv)) => {
                    let vars = self.vars(change.target(), change);
                    let args = argv.iter().map(|t| t.render(&vars)).collect();
                    self.run(args, vars, deadline).await
                }
                _ => Ok(Applied::default()),
            };
            out.push(outcome);
        }
        out
    }

    /// One command for the adds and one for the removes of the batch.
    async fn apply_batch(&self, changes: &[Change], deadline: Instant) -> Vec<Outcome> {
        let mut out: Vec<Option<Outcome>> = vec![None; changes.len()];
        let adds: Vec<usize> = (0..changes.len())
            .filter(|&i| {
                matches!(
                    changes[i],
                    Change::Add {
                        remote_id: None,
                        ..
                    }
                )
            })
            .collect();
        let removes: Vec<usize> = (0..changes.len())
            .filter(|&i| matches!(changes[i], Change::Remove { .. }))
            .collect();
        for (idx, command) in [(adds, Some(&self.ban)), (removes, self.unban.as_ref())] {
            if idx.is_empty() {
                continue;
            }
            let outcome = match command {
                Some(Command::Batch(args)) => {
                    let targets: Vec<&Target> = idx.iter().map(|&i| changes[i].target()).collect();
                    let vars = Vars::default();
                    let mut argv = Vec::new();
                    for a in args {
                        match a {
                            Arg::Fixed(t) => argv.push(
                                t.render(
                                    &Vars::new(targets[0], changes[idx[0]].lease(), &self.host)
                                        .with_mark(&self.mark),
                                ),
                            ),
                            Arg::Ips => argv.extend(targets.iter().map(|t| t.ip_display())),
                            Arg::Prefixes => argv.extend(targets.iter().map(|t| t.to_string())),
                        }
                    }
                    self.run(argv, vars, deadline).await
                }
                _ => Ok(Applied::default()),
            };
            for i in idx {
                out[i] = Some(outcome.clone());
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Ok(Applied::default())))
            .collect()
    }
}

#[async_trait]
impl Sink for ExecSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn batching(&self) -> Batching {
        if self.batched() {
            Batching {
                max: 1000,
                window: Duration::from_millis(200),
            }
        } else {
            Batching {
                max: 16,
                window: Duration::ZERO,
            }
        }
    }

    fn commit(&self) -> Commit {
        if self.batched() {
            Commit::Atomic
        } else {
            Commit::PerChange
        }
    }

    /// The argv it would run, each argument quoted as a shell would need it to be read back
    /// (no shell runs it). A batch shows the change's target where `{ips}` or `{prefixes}`
    /// stands, one command for the batch.
    fn describe(&self, change: &Change) -> String {
        let command = match change {
            Change::Add {
                remote_id: Some(_), ..
            } => {
                return format!(
                    "{} {}: nothing to run (already banned here)",
                    change.verb(),
                    change.target()
                );
            }
            Change::Add { .. } => Some(&self.ban),
            Change::Remove { .. } => self.unban.as_ref(),
        };
        let argv: Vec<String> = match command {
            None => {
                return format!(
                    "{} {}: no unban command configured",
                    change.verb(),
                    change.target()
                );
            }
            Some(Command::Each(argv)) => {
                let vars = self.vars(change.target(), change);
                argv.iter().map(|t| t.render(&vars)).collect()
            }
            Some(Command::Batch(args)) => {
                let vars =
                    Vars::new(change.target(), change.lease(), &self.host).with_mark(&self.mark);
                args.iter()
                    .map(|a| match a {
                        Arg::Fixed(t) => t.render(&vars),
                        Arg::Ips => change.target().ip_display(),
                        Arg::Prefixes => change.target().to_string(),
                    })
                    .collect()
            }
        };
        let shown: Vec<String> = argv.iter().map(|a| quote(a)).collect();
        format!(
            "{} {}: run {}",
            change.verb(),
            change.target(),
            shown.join(" ")
        )
    }

    async fn apply(&self, changes: &[Change], deadline: Instant) -> Vec<Outcome> {
        if self.batched() {
            self.apply_batch(changes, deadline).await
        } else {
            self.apply_each(changes, deadline).await
        }
    }

    async fn check(&self, _deadline: Instant) -> Result<String, SinkError> {
        let mut programs = Vec::new();
        for command in std::iter::once(&self.ban).chain(self.unban.as_ref()) {
            let program = match command {
                Command::Each(argv) => argv.first().map(|t| t.render(&Vars::default())),
                Command::Batch(args) => match args.first() {
                    Some(Arg::Fixed(t)) => Some(t.render(&Vars::default())),
                    _ => None,
                },
            }
            .unwrap_or_default();
            let found = find_program(&program).ok_or_else(|| {
                SinkError::later(format!(
                    "{}: program {program} not found or not executable; install it or fix the path",
                    self.name
                ))
            })?;
            programs.push(found);
        }
        Ok(format!("runs {}", programs.join(" and ")))
    }
}

#[cfg(test)]
mod tests;

/// `a` as a POSIX shell would need it written to mean that one argument (for display only).
fn quote(a: &str) -> String {
    if !a.is_empty()
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}
