//! Delivery after a lease change: hand it to the daemon, or do it inline within a deadline.
//!
//! When a daemon is running, the CLI pokes it on its control socket and returns once the
//! daemon says it took the work: no network I/O on fail2ban's path. Otherwise (no daemon, or
//! one too busy to answer) the CLI reconciles the changed targets itself, then any other work
//! that is due, until `reconcile.inline_deadline`. Whatever is not done stays pending in the
//! store for the next call or `netban sync`.
//!
//! A host with no sink still pokes a running daemon: its outbox readers (the cluster's
//! publisher, the fanout announcer) wake on the poke and send the change to the fleet at once,
//! instead of at their next poll.

use std::path::Path;
use std::time::{Duration, Instant};

use netban_core::Target;
use netban_core::clock;
use netban_core::reconcile::{PassOptions, Scope};

use crate::context::Context;
use crate::exit::{CliError, CliResult};
use crate::protocol::{self, Request};

/// How many targets left pending by earlier calls one inline call picks up.
const PICK_UP: usize = 256;
/// How long a poke waits for the daemon's answer.
const POKE_WAIT: Duration = Duration::from_secs(1);

/// True when a daemon took the poke.
pub fn poke_daemon(socket: &Path) -> bool {
    protocol::call(socket, &Request::Poke, POKE_WAIT).is_some_and(|r| r.ok)
}

/// Delivers changes to `targets`: through the daemon when it runs, inline otherwise.
pub fn deliver(ctx: &mut Context, targets: Vec<Target>) -> CliResult {
    if ctx.sinks.is_empty() {
        // Nothing to deliver here; without a daemon the change waits in the outbox for one.
        if poke_daemon(&ctx.config.socket_path()) {
            tracing::debug!(
                "daemon poked; no sink here, its outbox readers (cluster, fanout) take the change"
            );
        }
        return Ok(());
    }
    if poke_daemon(&ctx.config.socket_path()) {
        tracing::debug!("daemon poked; it delivers");
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs_f64(ctx.config.reconcile.inline_deadline);
    // The lease is already committed: the change is durably accepted whatever happens here.
    // A failure to deliver now (the state busy under a storm of processes, a bad sink setup)
    // leaves the work pending for the next call, the daemon or `netban sync`: exit 0.
    if let Err(e) = inline(ctx, Scope::Targets(targets), deadline) {
        tracing::warn!("delivery left pending: {e}");
        if matches!(e, CliError::Config(_)) {
            return Err(e);
        }
    }
    Ok(())
}

fn inline(ctx: &mut Context, scope: Scope, deadline: Instant) -> CliResult {
    let engine = ctx.engine()?;
    let store = ctx.store()?;
    let opts = PassOptions {
        deadline,
        force: false,
        repair: false,
        dry_run: false,
    };
    let rt = crate::context::runtime()?;
    rt.block_on(async {
        let report = engine.run(&scope, opts).await?;
        for s in report.sinks.iter().filter(|s| !s.converged()) {
            tracing::info!(
                "{}: work left pending for the next netban call or `netban sync`",
                s.sink
            );
        }
        // Pick up what earlier calls left pending, while time remains.
        if Instant::now() < deadline {
            let more = store.pending_targets(clock::now(), PICK_UP)?;
            if !more.is_empty() {
                engine.run(&Scope::Targets(more), opts).await?;
            }
        }
        Ok::<_, CliError>(())
    })
}

/// True when a daemon answers on the socket.
pub fn daemon_alive(socket: &Path) -> bool {
    protocol::call(socket, &Request::Ping, POKE_WAIT).is_some_and(|r| r.ok)
}
