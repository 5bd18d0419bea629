//! `netban status`: daemon, sinks, pending work.

use netban_core::clock;

use crate::context::Context;
use crate::exit::CliResult;
use crate::view::{self, Entry};

pub fn run(ctx: &mut Context) -> CliResult {
    let now = clock::now();
    let socket = ctx.config.socket_path();
    let daemon_up = crate::deliver::daemon_alive(&socket);
    let store = ctx.store()?;
    let leases = store.live_leases(now, None)?;
    let engine = ctx.engine()?;
    let sinks = view::sinks(&engine, now)?;
    let mut out = Vec::new();
    for s in &sinks {
        let mut in_place = 0;
        let mut pending = 0;
        let mut failing = 0;
        let mut not_enforced = 0;
        let mut oldest: Option<i64> = None;
        let mut last_error: Option<&str> = None;
        for e in s.entries.values() {
            match e {
                Entry::InPlace {
                    not_enforced: ne, ..
                } => {
                    in_place += 1;
                    not_enforced += usize::from(ne.is_some());
                }
                Entry::Pending {
                    since,
                    attempts,
                    error,
                    ..
                }
                | Entry::Removing {
                    since,
                    attempts,
                    error,
                    ..
                } => {
                    pending += 1;
                    if *attempts > 0 {
                        failing += 1;
                        last_error = error.as_deref().or(last_error);
                    }
                    oldest = Some(oldest.map_or(*since, |o: i64| o.min(*since)));
                }
            }
        }
        out.push(serde_json::json!({
            "sink": s.name, "in_place": in_place, "pending": pending, "failing": failing,
            "not_enforced": not_enforced, "oldest_pending_age": oldest.map(|o| now - o), "last_error": last_error,
        }));
    }
    if ctx.json {
        let v = serde_json::json!({"daemon": {"running": daemon_up, "socket": socket}, "leases": leases.len(), "sinks": out});
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    println!(
        "daemon: {} ({})",
        if daemon_up {
            "running"
        } else {
            "not running; bans are delivered inline"
        },
        socket.display()
    );
    println!("leases: {} live", leases.len());
    for s in &out {
        let mut line = format!(
            "sink {}: {} in place, {} pending",
            s["sink"].as_str().unwrap_or(""),
            s["in_place"],
            s["pending"]
        );
        if let Some(age) = s["oldest_pending_age"].as_i64() {
            line.push_str(&format!(" (oldest {}s)", age.max(0)));
        }
        if s["failing"].as_i64().unwrap_or(0) > 0 {
            line.push_str(&format!(
                ", {} failing: {}",
                s["failing"],
                s["last_error"].as_str().unwrap_or("")
            ));
        }
        if s["not_enforced"].as_i64().unwrap_or(0) > 0 {
            line.push_str(&format!(", {} NOT ENFORCED by the sink", s["not_enforced"]));
        }
        println!("{line}");
    }
    Ok(())
}
