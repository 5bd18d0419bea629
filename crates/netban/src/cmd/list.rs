//! `netban list`: active leases and, per sink, whether each target is in place; with
//! `--remote`, what each sink really holds beside it, and the drift between the two.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use netban_core::sink::HeldEntry;
use netban_core::{Lease, Target, Until, clock};
use serde_json::json;

use crate::cli::ListArgs;
use crate::context::Context;
use crate::exit::CliResult;
use crate::view;

/// What a sink lists, by target, or why it could not be asked.
type Listed<'a> = Result<BTreeMap<Target, Vec<&'a HeldEntry>>, String>;

pub fn run(ctx: &mut Context, a: ListArgs) -> CliResult {
    if let Some(j) = &a.jail {
        crate::request::parse_jail(j)?;
    }
    let now = clock::now();
    let leases = ctx.store()?.live_leases(now, a.jail.as_deref())?;
    let engine = ctx.engine()?;
    let sinks = view::sinks(&engine, now)?;
    let remote = if a.remote {
        view::remote(&engine, Duration::from_secs(30))
    } else {
        Vec::new()
    };
    let mut by_target: BTreeMap<Target, Vec<&Lease>> = BTreeMap::new();
    for l in &leases {
        by_target.entry(l.target).or_default().push(l);
    }
    // Per sink, what it lists by target.
    let listed: Vec<(String, Listed<'_>)> = remote
        .iter()
        .map(|r| {
            let m = r.listed.as_ref().map_err(Clone::clone).map(|l| {
                let mut m: BTreeMap<Target, Vec<&HeldEntry>> = BTreeMap::new();
                for h in l.iter().flatten() {
                    m.entry(h.target).or_default().push(h);
                }
                m
            });
            (r.name.clone(), m)
        })
        .collect();
    let mut targets: BTreeSet<Target> = by_target.keys().copied().collect();
    if a.jail.is_none() {
        for (_, m) in &listed {
            if let Ok(m) = m {
                targets.extend(m.keys().copied());
            }
        }
    }
    let drift_of = |sink: &str, t: &Target| -> Option<String> {
        let believed = sinks
            .iter()
            .find(|s| s.name == sink)
            .and_then(|s| s.entries.get(t));
        let (_, m) = listed.iter().find(|(n, _)| n == sink)?;
        match m {
            Ok(m) => view::drift(believed, m.get(t).map(Vec::as_slice).unwrap_or(&[])),
            Err(_) => None,
        }
    };
    if ctx.json {
        let items: Vec<_> = targets
            .iter()
            .map(|t| {
                let ls = by_target.get(t).cloned().unwrap_or_default();
                let sink_states: serde_json::Map<String, serde_json::Value> = sinks
                    .iter()
                    .filter_map(|s| {
                        let mut v = s
                            .entries
                            .get(t)
                            .map(|e| serde_json::to_value(e).unwrap_or_default())
                            .unwrap_or_else(|| json!({"state": "absent"}));
                        if let Some(d) = drift_of(&s.name, t)
                            && let Some(o) = v.as_object_mut()
                        {
                            o.insert("drift".into(), json!(d));
                        }
                        (v["state"] != "absent" || a.remote).then(|| (s.name.clone(), v))
                    })
                    .collect();
                json!({
                    "target": t.to_string(),
                    "leases": ls.iter().map(|l| json!({
                        "jail": l.jail, "origin": l.origin.as_str(), "until": l.until.to_db(),
                        "bantime": l.bantime, "since": l.since,
                    })).collect::<Vec<_>>(),
                    "sinks": sink_states,
                })
            })
            .collect();
        super::print_json(&items);
        return Ok(());
    }
    let mut rows = vec![{
        let mut h = vec!["TARGET".to_string(), "JAILS".into(), "UNTIL".into()];
        h.extend(sinks.iter().map(|s| s.name.clone()));
        h
    }];
    for t in &targets {
        let ls = by_target.get(t).cloned().unwrap_or_default();
        let until = ls
            .iter()
            .map(|l| l.until)
            .max()
            .map_or_else(|| "-".to_string(), |u: Until| u.to_string());
        let jails: Vec<String> = ls
            .iter()
            .map(|l| {
                if l.origin.as_str() == "local" {
                    l.jail.clone()
                } else {
                    format!("{}@{}", l.jail, l.origin)
                }
            })
            .collect();
        let mut row = vec![
            t.to_string(),
            if jails.is_empty() {
                "-".into()
            } else {
                jails.join(",")
            },
            until,
        ];
        row.extend(sinks.iter().map(|s| {
            let believed = s
                .entries
                .get(t)
                .map_or_else(|| "-".to_string(), view::Entry::short);
            match drift_of(&s.name, t) {
                Some(d) => format!("{believed}; {d}"),
                None => believed,
            }
        }));
        rows.push(row);
    }
    super::print_table(&rows);
    if targets.is_empty() {
        say!("(no active bans)");
    }
    for (name, m) in &listed {
        if let Err(e) = m {
            say!("{name}: cannot list what the sink holds: {e}");
        }
    }
    Ok(())
}
