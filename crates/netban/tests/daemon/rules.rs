//! What ExaFS holds, read from its database: exactly the expected targets, one active rule
//! each with netban's mark and nothing else, and a readable summary for failure messages.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use netban_testsupport::exafs::{ExaFs, RtbhRule};

use crate::env::{Env, MARK};

/// The first 60 rules, one a line, for a failure message.
pub fn summarize_rules(rules: &[RtbhRule]) -> String {
    let mut lines: Vec<String> = rules
        .iter()
        .take(60)
        .map(|r| {
            format!(
                "#{} {} {} expires {:?} {:?}",
                r.id,
                r.prefix(),
                r.rstate,
                r.expires,
                r.comment
            )
        })
        .collect();
    if rules.len() > 60 {
        lines.push(format!("... {} rules in all", rules.len()));
    }
    if lines.is_empty() {
        "(none)".into()
    } else {
        lines.join("\n")
    }
}

/// Checks that ExaFS holds exactly `expected` (canonical prefixes): one active rule each, no
/// other rule at all (no duplicate, no withdrawn leftover, no orphan with netban's mark).
pub fn exafs_exactly(exafs: &ExaFs, expected: &BTreeSet<String>) -> Result<(), String> {
    let rules = exafs.try_rtbh_rules().map_err(|e| format!("{e:#}"))?;
    let mut per_prefix: BTreeMap<String, Vec<&RtbhRule>> = BTreeMap::new();
    for r in &rules {
        per_prefix.entry(r.prefix()).or_default().push(r);
    }
    let mut problems = Vec::new();
    let dups: Vec<String> = per_prefix
        .iter()
        .filter(|(_, rs)| rs.len() > 1)
        .map(|(p, rs)| {
            let each: Vec<String> = rs
                .iter()
                .map(|r| {
                    format!(
                        "#{} created {:?} {} {:?}",
                        r.id, r.created, r.rstate, r.comment
                    )
                })
                .collect();
            format!("{p} x{}: {}", rs.len(), each.join(", "))
        })
        .collect();
    if !dups.is_empty() {
        problems.push(format!("duplicate rules: {dups:?}"));
    }
    let inactive: Vec<String> = rules
        .iter()
        .filter(|r| !r.is_active())
        .map(|r| format!("{} ({})", r.prefix(), r.rstate))
        .collect();
    if !inactive.is_empty() {
        problems.push(format!("rules not active: {inactive:?}"));
    }
    let active: BTreeSet<String> = rules
        .iter()
        .filter(|r| r.is_active())
        .map(RtbhRule::prefix)
        .collect();
    let missing: Vec<&String> = expected.difference(&active).collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{} expected targets have no active rule: {:?}",
            missing.len(),
            &missing[..missing.len().min(20)]
        ));
    }
    let orphans: Vec<String> = rules
        .iter()
        .filter(|r| !expected.contains(&r.prefix()))
        .map(|r| format!("{} {:?}", r.prefix(), r.comment))
        .collect();
    if !orphans.is_empty() {
        problems.push(format!(
            "{} rules for targets that are not banned (orphans): {:?}",
            orphans.len(),
            &orphans[..orphans.len().min(20)]
        ));
    }
    let unmarked: Vec<String> = rules
        .iter()
        .filter(|r| !r.comment.as_deref().is_some_and(|c| c.starts_with(MARK)))
        .map(|r| format!("{} {:?}", r.prefix(), r.comment))
        .collect();
    if !unmarked.is_empty() {
        problems.push(format!("rules without netban's mark: {unmarked:?}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} rules, {} expected:\n{}",
            rules.len(),
            expected.len(),
            problems.join("\n")
        ))
    }
}

/// Polls until ExaFS holds exactly `expected`, within `timeout`.
pub fn wait_exafs_exactly(env: &Env, expected: &BTreeSet<String>, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    let began = Instant::now();
    loop {
        let r = exafs_exactly(&env.exafs, expected);
        match r {
            Ok(()) => {
                eprintln!("{what}: ExaFS converged after {:?}", began.elapsed());
                return;
            }
            Err(e) if Instant::now() > deadline => {
                panic!(
                    "{what}: ExaFS not exactly as expected within {timeout:?}: {e}\n{}",
                    env.ctx()
                )
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Active rules for exactly `prefix` (`addr/mask`).
pub fn active_rules(exafs: &ExaFs, prefix: &str) -> Vec<RtbhRule> {
    exafs
        .rtbh_rules()
        .into_iter()
        .filter(|r| r.prefix() == prefix && r.is_active())
        .collect()
}
