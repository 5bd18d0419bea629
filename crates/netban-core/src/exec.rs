//! The exec sink: run a command for each ban and unban.
//!
//! Covers the classic custom fail2ban action ("call my script with jail, bantime and ip")
//! without its dangers: the argv is built from templates element by element and run directly
//! (never through a shell), with a clean environment (`PATH` plus `NETBAN_*` variables), a
//! timeout, and no stdin. A non-zero exit is a failure the engine retries like any other.

use std::process::Stdio;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::config::ExecConfig;
use crate::sink::{Applied, Change, Outcome, Sink, SinkError};
use crate::template::{Template, Vars};

const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs `ban`/`unban` argv templates.
pub struct ExecSink {
    name: String,
    host: String,
    ban: Vec<Template>,
    unban: Option<Vec<Template>>,
    timeout: Duration,
}

impl ExecSink {
    pub fn new(config: &ExecConfig, host: &str) -> Result<ExecSink, String> {
        let parse = |argv: &[String]| {
            argv.iter()
                .map(|a| Template::parse(a))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(ExecSink {
            name: config.name.clone(),
            host: host.to_string(),
            ban: parse(&config.ban)?,
            unban: config.unban.as_deref().map(parse).transpose()?,
            timeout: Duration::from_secs_f64(config.timeout),
        })
    }

    async fn run(&self, argv: &[Template], vars: &Vars, deadline: Instant) -> Outcome {
        let args: Vec<String> = argv.iter().map(|t| t.render(vars)).collect();
        let Some((program, rest)) = args.split_first() else {
            return Err(SinkError::later(format!("{}: empty command", self.name)));
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(rest)
            .env_clear()
            .env("PATH", SAFE_PATH)
            .envs(vars.env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let left = deadline.saturating_duration_since(Instant::now());
        let limit = self.timeout.min(left.max(Duration::from_millis(100)));
        let child = cmd.spawn().map_err(|e| {
            SinkError::later(format!(
                "{}: cannot run {program}: {e}; check the path in the sink's ban/unban",
                self.name
            ))
        })?;
        match tokio::time::timeout(limit, child.wait_with_output()).await {
            Err(_) => Err(SinkError::soon(format!(
                "{}: {program} did not finish within {:.1}s and was killed",
                self.name,
                limit.as_secs_f64()
            ))),
            Ok(Err(e)) => Err(SinkError::soon(format!(
                "{}: waiting for {program}: {e}",
                self.name
            ))),
            Ok(Ok(out)) if out.status.success() => Ok(Applied::default()),
            Ok(Ok(out)) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let first = stderr
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect::<String>();
                Err(SinkError::soon(format!(
                    "{}: {program} exited with {}{}",
                    self.name,
                    out.status,
                    if first.is_empty() {
                        String::new()
                    } else {
                        format!(": {first}")
                    }
                )))
            }
        }
    }
}

#[async_trait]
impl Sink for ExecSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn max_batch(&self) -> usize {
        16
    }

    async fn apply(&self, changes: &[Change], deadline: Instant) -> Vec<Outcome> {
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            if Instant::now() >= deadline {
                out.push(Err(SinkError::soon(format!(
                    "{}: deadline reached before running the command",
                    self.name
                ))));
                continue;
            }
            let outcome = match change {
                Change::Add {
                    target,
                    lease,
                    remote_id: Some(_),
                    ..
                } => {
                    // Already banned through this sink; a command has no expiry to extend.
                    let _ = (target, lease);
                    Ok(Applied::default())
                }
                Change::Add { target, lease, .. } => {
                    self.run(&self.ban, &Vars::new(target, lease, &self.host), deadline)
                        .await
                }
                Change::Remove { target, lease, .. } => match &self.unban {
                    Some(argv) => {
                        self.run(argv, &Vars::new(target, lease, &self.host), deadline)
                            .await
                    }
                    None => Ok(Applied::default()),
                },
            };
            out.push(outcome);
        }
        out
    }

    async fn check(&self, _deadline: Instant) -> Result<String, SinkError> {
        let mut programs = Vec::new();
        for argv in std::iter::once(&self.ban).chain(self.unban.as_ref()) {
            let program = argv
                .first()
                .map(|t| t.render(&Vars::default()))
                .unwrap_or_default();
            let found = find_program(&program).ok_or_else(|| {
                SinkError::later(format!(
                    "{}: program {program} not found or not executable",
                    self.name
                ))
            })?;
            programs.push(found);
        }
        Ok(format!("runs {}", programs.join(" and ")))
    }
}

fn find_program(program: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(std::path::Path::new(program)).then(|| program.to_string());
    }
    SAFE_PATH
        .split(':')
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| executable(p))
        .map(|p| p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::LeaseInfo;
    use crate::target::Target;

    fn sink(ban: &[&str], unban: Option<&[&str]>, timeout: f64) -> ExecSink {
        let cfg = ExecConfig {
            name: "cmd".into(),
            jails: None,
            origins: None,
            ban: ban.iter().map(|s| s.to_string()).collect(),
            unban: unban.map(|u| u.iter().map(|s| s.to_string()).collect()),
            timeout,
        };
        ExecSink::new(&cfg, "web-01").unwrap()
    }

    fn add(t: &str, jail: &str) -> Change {
        Change::Add {
            target: Target::parse(t).unwrap(),
            expires: None,
            lease: LeaseInfo {
                jail: jail.into(),
                origin: "local".into(),
                bantime: 600,
                until: Some(1000),
            },
            remote_id: None,
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn runs_argv_without_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!(
            "printf '%s|' \"$@\" \"$NETBAN_IP\" \"$NETBAN_JAIL\" > {}",
            out.display()
        );
        let s = sink(
            &[
                "/bin/sh",
                "-c",
                &script,
                "sh",
                "{jail}",
                "{bantime}",
                "{ip}",
            ],
            None,
            5.0,
        );
        // A hostile jail value arrives as one argument, unexpanded.
        let r = s
            .apply(&[add("192.0.2.1", "x;$(touch /tmp/pwned)")], soon())
            .await;
        assert!(r[0].is_ok(), "{r:?}");
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            got,
            "x;$(touch /tmp/pwned)|600|192.0.2.1|192.0.2.1|x;$(touch /tmp/pwned)|"
        );
    }

    #[tokio::test]
    async fn nonzero_exit_and_timeout_are_retryable_failures() {
        let s = sink(&["/bin/false"], None, 5.0);
        let r = s.apply(&[add("192.0.2.1", "sshd")], soon()).await;
        let e = r[0].clone().unwrap_err();
        assert_eq!(e.retry, crate::sink::Retry::Soon);
        assert!(e.message.contains("exited"), "{e}");
        let s = sink(&["/bin/sleep", "5"], None, 0.2);
        let t0 = Instant::now();
        let r = s.apply(&[add("192.0.2.1", "sshd")], soon()).await;
        assert!(r[0].as_ref().unwrap_err().message.contains("killed"));
        assert!(t0.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn missing_program_is_reported() {
        let s = sink(&["/nonexistent/notify", "{ip}"], None, 1.0);
        let e = s.check(soon()).await.unwrap_err();
        assert!(e.message.contains("not found"), "{e}");
        let r = s.apply(&[add("192.0.2.1", "sshd")], soon()).await;
        assert!(r[0].as_ref().unwrap_err().message.contains("cannot run"));
    }
}
