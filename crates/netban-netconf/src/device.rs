//! One device and its NETCONF session, kept open between batches.
//!
//! [`Device::run`] hands the session to one operation at a time (a batch, a listing). The
//! session is taken out of the device while the operation runs and put back only when it
//! ends cleanly, so an operation that is cancelled or fails on the connection leaves no
//! half-used session behind: the next one connects afresh. A kept session that turns out to
//! be dead (the device closed it while idle) is replaced once at once, without counting as a
//! failure. Failed connection attempts back off exponentially (1 s doubling to 60 s, with
//! jitter), so a device that is down is not hammered by every ban.

use std::time::{Duration, Instant};

use crate::error::NetconfError;
use crate::session::{Session, SessionOptions};
use crate::transport::{Endpoint, Login};

const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// A device: where it is, how to log in, and its kept session.
pub struct Device {
    endpoint: Endpoint,
    login: Login,
    options: SessionOptions,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    session: Option<Session>,
    /// Connection attempts failed in a row.
    failures: u32,
    /// No new attempt before this.
    retry_at: Option<Instant>,
    /// When and why the last attempt failed.
    last_error: Option<(Instant, String)>,
}

impl Device {
    pub fn new(endpoint: Endpoint, login: Login, options: SessionOptions) -> Device {
        Device {
            endpoint,
            login,
            options,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// Opens a new session that is not kept (for `netban check`).
    pub async fn open_fresh(&self, deadline: Instant) -> Result<Session, NetconfError> {
        Session::open(&self.endpoint, &self.login, &self.options, deadline).await
    }

    /// Takes the kept session (opening one if needed) for one operation; one at a time.
    /// Give it back with [`Checkout::finish`]; dropping the checkout drops the session.
    pub async fn checkout(&self, deadline: Instant) -> Result<Checkout<'_>, NetconfError> {
        let mut state = self.state.lock().await;
        let (session, reused) = match state.session.take() {
            Some(s) if !s.is_closed() => (s, true),
            _ => (self.connect(&mut state, deadline).await?, false),
        };
        Ok(Checkout {
            device: self,
            state,
            session: Some(session),
            reused,
            deadline,
        })
    }

    async fn connect(&self, state: &mut State, deadline: Instant) -> Result<Session, NetconfError> {
        let now = Instant::now();
        if let Some(at) = state.retry_at.filter(|at| *at > now) {
            if at >= deadline {
                let (when, last) = state
                    .last_error
                    .clone()
                    .unwrap_or_else(|| (now, "unknown".into()));
                return Err(NetconfError::Backoff {
                    addr: self.endpoint.addr(),
                    last,
                    ago: now.saturating_duration_since(when),
                    wait: at - now,
                });
            }
            tokio::time::sleep_until(at.into()).await;
        }
        match Session::open(&self.endpoint, &self.login, &self.options, deadline).await {
            Ok(s) => {
                if state.failures > 0 {
                    tracing::info!(
                        "netconf: connected to {} again after {} failed attempts",
                        self.endpoint.addr(),
                        state.failures
                    );
                }
                state.failures = 0;
                state.retry_at = None;
                state.last_error = None;
                Ok(s)
            }
            Err(e) => {
                state.failures = state.failures.saturating_add(1);
                let wait = backoff(state.failures);
                let now = Instant::now();
                state.retry_at = Some(now + wait);
                state.last_error = Some((now, e.to_string()));
                tracing::debug!(
                    "netconf: connecting to {} failed ({e}); next attempt in {wait:?} at the earliest",
                    self.endpoint.addr()
                );
                Err(e)
            }
        }
    }

    /// Closes the kept session, if any (politely, with `<close-session/>`).
    pub async fn close(&self) {
        let session = self.state.lock().await.session.take();
        if let Some(s) = session {
            s.close().await;
        }
    }
}

/// The session of a device, taken for one operation.
pub struct Checkout<'a> {
    device: &'a Device,
    state: tokio::sync::MutexGuard<'a, State>,
    session: Option<Session>,
    reused: bool,
    deadline: Instant,
}

/// What to do after an operation: done, or once more on a new session.
pub enum Finish<T> {
    Done(Result<T, NetconfError>),
    Retry,
}

impl Checkout<'_> {
    pub fn session(&mut self) -> &mut Session {
        match &mut self.session {
            Some(s) => s,
            // `session` is Some from checkout until finish consumes the checkout.
            None => unreachable!("a checkout always holds its session"),
        }
    }

    /// Puts the session back unless the operation broke it. A kept session that was found
    /// dead at its first use asks for one retry on a new session.
    pub fn finish<T>(mut self, result: Result<T, NetconfError>) -> Finish<T> {
        match &result {
            Ok(_) => {}
            Err(e) if !e.breaks_session() => {}
            Err(e) => {
                self.session = None;
                let stale = self.reused
                    && matches!(e, NetconfError::Frame { .. } | NetconfError::Ssh { .. });
                if stale && Instant::now() < self.deadline {
                    tracing::info!(
                        "netconf: the kept session with {} is gone ({e}); opening a new one",
                        self.device.endpoint.addr()
                    );
                    return Finish::Retry;
                }
                return Finish::Done(result);
            }
        }
        self.state.session = self.session.take();
        Finish::Done(result)
    }
}

/// Runs `$op` (an expression using the `&mut Session` bound to `$s`) on `$device`'s kept
/// session, with one retry when the kept session turns out to be dead. (A macro, not a
/// function taking an async closure: the closure's future borrows the session for a
/// caller-chosen lifetime, which `async_trait`'s `Send` bound cannot express.)
macro_rules! with_session {
    ($device:expr, $deadline:expr, |$s:ident| $op:expr) => {{
        let mut tries = 0;
        loop {
            tries += 1;
            let mut checkout = match $device.checkout($deadline).await {
                Ok(c) => c,
                Err(e) => break Err(e),
            };
            let result = {
                let $s = checkout.session();
                $op
            };
            match checkout.finish(result) {
                $crate::device::Finish::Done(r) => break r,
                $crate::device::Finish::Retry if tries < 2 => continue,
                $crate::device::Finish::Retry => {
                    break Err($crate::error::NetconfError::Deadline {
                        step: "reconnecting",
                        addr: $device.endpoint().addr(),
                    });
                }
            }
        }
    }};
}
pub(crate) use with_session;

/// The wait after `failures` failed attempts in a row, with ±20 % jitter.
fn backoff(failures: u32) -> Duration {
    let base = BACKOFF_FIRST
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_MAX);
    base.mul_f64(0.8 + 0.4 * fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_minute() {
        let b = |n| backoff(n).as_secs_f64();
        assert!((0.8..=1.2).contains(&b(1)));
        assert!((1.6..=2.4).contains(&b(2)));
        assert!((48.0..=72.0).contains(&b(7)));
        assert!((48.0..=72.0).contains(&b(1000)));
    }
}
