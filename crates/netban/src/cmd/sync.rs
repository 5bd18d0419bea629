//! `netban sync`: reconcile every sink now, retrying failed work at once and repairing drift
//! against what each sink lists; exit 0 only when every sink is converged. With `--dry-run`
//! it lists what it would send, request by request, computed exactly as the real run would.

use std::time::{Duration, Instant};

use netban_core::reconcile::{PassOptions, Scope};
use netban_core::{clock, leases};

use crate::cli::SyncArgs;
use crate::context::Context;
use crate::exit::{CliError, CliResult};

pub fn run(ctx: &mut Context, a: SyncArgs) -> CliResult {
    if let Err(e) = netban_core::config::seconds("--timeout", a.timeout, 0.1, 86_400.0) {
        return Err(CliError::Usage(e));
    }
    let deadline = Instant::now() + Duration::from_secs_f64(a.timeout);
    // The store first: it creates a missing state dir, or says why it cannot.
    let store = ctx.store()?;
    let engine = ctx.engine()?;
    let keep: Vec<&str> = ctx.sinks.iter().map(|s| s.name()).collect();
    if !ctx.dry_run {
        leases::expire(&store, clock::now())?;
        let n = store.forget_sinks_except(&keep)?;
        if n > 0 {
            tracing::warn!(
                "forgot {n} records of sinks no longer in the config (their remote entries are left alone)"
            );
        }
    }
    let opts = PassOptions {
        deadline,
        force: true,
        repair: true,
        dry_run: ctx.dry_run,
    };
    let rt = crate::context::runtime()?;
    let report = rt.block_on(engine.run(&Scope::All, opts))?;
    // Converged means: nothing is left to do, checked afresh after the pass.
    let left: Vec<(String, usize)> = if ctx.dry_run {
        report
            .sinks
            .iter()
            .filter(|s| !s.standby)
            .map(|s| (s.sink.clone(), s.changes() + s.failed))
            .collect()
    } else {
        engine
            .plans(clock::now())?
            .into_iter()
            .filter(|p| engine.slot(&p.name).is_none_or(|s| s.may_write()))
            .map(|p| {
                let n = p.plan.steps.iter().filter(|s| s.calls_sink()).count() + p.plan.deferred;
                (p.name, n)
            })
            .collect()
    };
    let converged = left.iter().all(|(_, n)| *n == 0) && report.converged();
    if ctx.json {
        let v = serde_json::json!({ "converged": converged, "dry_run": ctx.dry_run, "sinks": report.sinks, "pending": left.iter().map(|(n, c)| serde_json::json!({"sink": n, "pending": c})).collect::<Vec<_>>() });
        super::print_json(&v);
    } else {
        let verb = |real: &'static str, dry: &'static str| if ctx.dry_run { dry } else { real };
        for s in report.sinks.iter().filter(|s| s.standby) {
            say!(
                "{}: exclusive: written by the netban daemon holding the fleet's lock for it, not by this process",
                s.sink
            );
        }
        for (s, (_, pending)) in report.sinks.iter().filter(|s| !s.standby).zip(&left) {
            let mut line = format!(
                "{}: {} {}, {} {}, {} {}, {} repaired, {} failed, {} pending",
                s.sink,
                s.added,
                verb("added", "to add"),
                s.extended,
                verb("extended", "to extend"),
                s.removed,
                verb("removed", "to remove"),
                s.repaired,
                s.failed,
                pending
            );
            if s.kept > 0 {
                line.push_str(&format!(
                    ", {} left on the sink on purpose (see netban status)",
                    s.kept
                ));
            }
            if s.busy {
                line.push_str("; another netban process held the sink's lock");
            }
            if let Some(e) = &s.error {
                line.push_str(&format!("; last error: {e}"));
            }
            say!("{line}");
            for a in &s.actions {
                say!("  would {a}");
            }
        }
    }
    if ctx.dry_run || converged {
        Ok(())
    } else {
        Err(CliError::Runtime("not converged: work is still pending (see above); it is retried by the daemon or the next `netban sync`".into()))
    }
}
