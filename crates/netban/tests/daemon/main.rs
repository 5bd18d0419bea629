//! The daemon against a real ExaFS 1.4.1 (from PyPI), through a fault-injecting proxy.
//!
//! Every test runs the real `netban daemon` binary as a child process (killed on drop) with a
//! temporary state directory, `/healthz` + `/metrics` on a loopback port the kernel picks
//! (read back from `state_dir/daemon.json`), a repair pass every 2 s and short retry times,
//! and one ExaFS sink pointing at a [`FaultProxy`] in front of ExaFS ([`env`]). `netban ban`
//! / `unban` / `sync` run as separate processes, as fail2ban runs them ([`ops`]).
//!
//! What a user would notice, one module each: an ExaFS outage costs fail2ban nothing and
//! loses nothing ([`outage`]); `kill -9` of the daemon at any moment loses nothing and
//! duplicates nothing ([`crash`]); hundreds of concurrent bans and unbans on the same
//! addresses end in exactly the right rules, with or without the daemon ([`concurrency`]);
//! rules removed behind netban's back come back while foreign rules stay untouched
//! ([`drift`]); bans end on their own ([`expiry`]); status, metrics and health tell the truth
//! ([`observability`]); SIGTERM and SIGHUP do what operations.md says ([`signals`]); restored
//! bans cost no ExaFS call ([`restore`]). What ExaFS holds is checked by [`rules`].
//!
//! Waits poll with generous timeouts (the machine is shared); nothing is asserted after a
//! fixed sleep.
//!
//! [`FaultProxy`]: netban_testsupport::proxy::FaultProxy

mod env;
mod ops;
mod rules;

mod concurrency;
mod crash;
mod drift;
mod expiry;
mod observability;
mod outage;
mod restore;
mod signals;
