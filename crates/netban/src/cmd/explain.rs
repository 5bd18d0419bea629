//! `netban explain IP`: why an address is (or is not) banned — its leases, the guard's verdict
//! and the rule that decided it, what each sink holds for it (netban's belief and, with
//! `--remote`, the sink's own answer), and its recent history from the event outbox.

use std::time::Duration;

use netban_core::{Target, clock};
use serde_json::json;

use crate::cli::ExplainArgs;
use crate::context::Context;
use crate::exit::CliResult;
use crate::view;

/// Events shown.
const HISTORY: usize = 20;

pub fn run(ctx: &mut Context, a: ExplainArgs) -> CliResult {
    let target = crate::request::parse_target(&a.ip)?;
    let now = clock::now();
    let store = ctx.store()?;
    let guard = ctx.guard()?;
    let engine = ctx.engine()?;
    let leases = store.leases_of(&target)?;
    let live: Vec<_> = leases.iter().filter(|l| l.until.is_live(now)).collect();
    let verdict = guard.check(&target);
    let refusals = store.refusals(Some(&target), 10)?;
    let records = store.records_of_target(&target)?;
    let kept: Vec<_> = store
        .kept(None)?
        .into_iter()
        .filter(|k| k.target == target)
        .collect();
    let history = store.events_of(&target, HISTORY)?;
    let sinks = view::sinks(&engine, now)?;
    let remote = if a.remote {
        view::remote(&engine, Duration::from_secs(30))
    } else {
        Vec::new()
    };
    let per_sink: Vec<_> = sinks
        .iter()
        .map(|s| {
            let believed = s.entries.get(&target);
            let record = records.iter().find(|r| r.sink == s.name);
            let listed = remote.iter().find(|r| r.name == s.name).map(|r| {
                r.listed.as_ref().map(|l| {
                    l.iter()
                        .flatten()
                        .filter(|h| h.target == target)
                        .collect::<Vec<_>>()
                })
            });
            let drift = match &listed {
                Some(Ok(l)) => view::drift(believed, l),
                _ => None,
            };
            (s.name.clone(), believed, record, listed, drift)
        })
        .collect();
    if ctx.json {
        let v = json!({
            "target": target.to_string(),
            "banned": !live.is_empty() && verdict.is_ok(),
            "leases": leases.iter().map(|l| json!({
                "jail": l.jail, "origin": l.origin.as_str(), "since": l.since,
                "until": l.until.to_db(), "bantime": l.bantime, "live": l.until.is_live(now),
            })).collect::<Vec<_>>(),
            "guard": match &verdict { Ok(()) => json!({"allowed": true}), Err(r) => json!({"allowed": false, "reason": r.0}) },
            "refusals": refusals,
            "sinks": per_sink.iter().map(|(name, believed, record, listed, drift)| json!({
                "sink": name,
                "believed": believed,
                "record": record.map(|r| json!({
                    "state": format!("{:?}", r.state).to_lowercase(), "remote_id": r.remote_id,
                    "expires": r.expires, "adopted": r.adopted, "foreign_owner": r.foreign_owner,
                    "attempts": r.attempts, "next_try": r.next_try, "last_error": r.last_error,
                })),
                "remote": listed.as_ref().map(|l| match l {
                    Ok(entries) => json!(entries.iter().map(|h| json!({
                        "remote_id": h.remote_id, "expires": h.expires, "owner": h.owner.describe(),
                        "not_enforced": h.not_enforced,
                    })).collect::<Vec<_>>()),
                    Err(e) => json!({"error": e}),
                }),
                "drift": drift,
            })).collect::<Vec<_>>(),
            "kept": kept,
            "history": history,
        });
        super::print_json(&v);
        return Ok(());
    }
    print_text(
        &target, now, &leases, &verdict, &refusals, &per_sink, &kept, &history,
    );
    Ok(())
}

type PerSink<'a> = (
    String,
    Option<&'a view::Entry>,
    Option<&'a netban_core::store::SinkRecord>,
    Option<Result<Vec<&'a netban_core::HeldEntry>, &'a String>>,
    Option<String>,
);

#[allow(clippy::too_many_arguments)]
fn print_text(
    target: &Target,
    now: i64,
    leases: &[netban_core::Lease],
    verdict: &Result<(), netban_core::guard::Refusal>,
    refusals: &[netban_core::store::Refused],
    per_sink: &[PerSink<'_>],
    kept: &[netban_core::store::Kept],
    history: &[netban_core::outbox::Event],
) {
    let live = leases.iter().filter(|l| l.until.is_live(now)).count();
    let state = match (live, verdict) {
        (0, _) => "not banned",
        (_, Err(_)) => "NOT enforced: the guard refuses it",
        _ => "banned",
    };
    say!("{target}: {state}");
    say!("leases:");
    if leases.is_empty() {
        say!("  none");
    }
    for l in leases {
        say!(
            "  jail {} from {}: since {}, until {}{}",
            l.jail,
            l.origin,
            netban_core::clock::format_utc(l.since),
            l.until,
            if l.until.is_live(now) { "" } else { " (ended)" }
        );
    }
    match verdict {
        Ok(()) => say!("guard: allows it"),
        Err(why) => say!("guard: refuses it: {why}"),
    }
    for r in refusals {
        say!(
            "  refused {} time(s) (jail {}, origin {}), last {}: {}",
            r.count,
            r.jail,
            r.origin,
            netban_core::clock::format_utc(r.last),
            r.reason
        );
    }
    say!("sinks:");
    for (name, believed, record, listed, drift) in per_sink {
        let b = believed.map_or_else(|| "not there (nothing to do)".to_string(), |e| e.short());
        let mut line = format!("  {name}: {b}");
        if let Some(r) = record {
            if let Some(id) = &r.remote_id {
                line.push_str(&format!(", remote id {id}"));
            }
            if let Some(e) = r.expires {
                line.push_str(&format!(", expires {}", netban_core::clock::format_utc(e)));
            }
            if r.adopted {
                line.push_str(", adopted");
            }
            if let Some(f) = &r.foreign_owner {
                line.push_str(&format!(", {f}: netban leaves it at the last unban"));
            }
            if let Some(e) = &r.last_error {
                line.push_str(&format!("; last error (attempt {}): {e}", r.attempts));
            }
        }
        say!("{line}");
        match listed {
            Some(Ok(entries)) if entries.is_empty() => say!("    the sink lists: nothing"),
            Some(Ok(entries)) => {
                for h in entries {
                    say!(
                        "    the sink lists: {} id {}{} ({})",
                        h.target,
                        h.remote_id.as_deref().unwrap_or("-"),
                        h.expires
                            .map(|e| format!(", expires {}", netban_core::clock::format_utc(e)))
                            .unwrap_or_default(),
                        h.owner.describe()
                    );
                }
            }
            Some(Err(e)) => say!("    cannot ask the sink: {e}"),
            None => {}
        }
        if let Some(d) = drift {
            say!("    drift: {d}");
        }
    }
    for k in kept {
        say!(
            "  {}: left on the sink on purpose ({}): {}",
            k.sink,
            k.owner,
            k.reason
        );
    }
    say!("history (newest first):");
    if history.is_empty() {
        say!("  none kept");
    }
    for e in history {
        say!(
            "  {} {} (jail {}, origin {}, cause {}){}",
            netban_core::clock::format_utc(e.at),
            e.kind,
            e.jail,
            e.origin,
            e.cause,
            e.until
                .map(|u| format!(" until {}", netban_core::clock::format_utc(u)))
                .unwrap_or_default()
        );
    }
}
