//! `netban list`: active leases and, per sink, whether each target is in place.

use std::collections::BTreeMap;

use netban_core::{Lease, Target, Until, clock};
use serde_json::json;

use crate::cli::JailArg;
use crate::context::Context;
use crate::exit::CliResult;
use crate::view;

pub fn run(ctx: &mut Context, a: JailArg) -> CliResult {
    if let Some(j) = &a.jail {
        crate::ops::parse_jail(j)?;
    }
    let now = clock::now();
    let leases = ctx.store()?.live_leases(now, a.jail.as_deref())?;
    let engine = ctx.engine()?;
    let sinks = view::sinks(&engine, now)?;
    let mut by_target: BTreeMap<Target, Vec<&Lease>> = BTreeMap::new();
    for l in &leases {
        by_target.entry(l.target).or_default().push(l);
    }
    if ctx.json {
        let items: Vec<_> = by_target
            .iter()
            .map(|(t, ls)| {
                let sink_states: serde_json::Map<String, serde_json::Value> = sinks
                    .iter()
                    .filter_map(|s| {
                        s.entries
                            .get(t)
                            .map(|e| (s.name.clone(), serde_json::to_value(e).unwrap_or_default()))
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
        println!(
            "{}",
            serde_json::to_string_pretty(&items).unwrap_or_default()
        );
        return Ok(());
    }
    let mut rows = vec![{
        let mut h = vec!["TARGET".to_string(), "JAILS".into(), "UNTIL".into()];
        h.extend(sinks.iter().map(|s| s.name.clone()));
        h
    }];
    for (t, ls) in &by_target {
        let until = ls.iter().map(|l| l.until).max().unwrap_or(Until::At(0));
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
        let mut row = vec![t.to_string(), jails.join(","), until.to_string()];
        row.extend(sinks.iter().map(|s| {
            s.entries
                .get(t)
                .map_or_else(|| "-".to_string(), view::Entry::short)
        }));
        rows.push(row);
    }
    print_table(&rows);
    if by_target.is_empty() {
        println!("(no active bans)");
    }
    Ok(())
}

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
        println!("{}", line.join("  ").trim_end());
    }
}
