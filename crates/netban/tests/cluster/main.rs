//! The cluster end to end: several real `netban daemon`s on this machine, each with its own
//! state and key, one real redis-server between them ([`fleet`]).
//!
//! What an operator would notice: a ban on one host is enforced by every other, and so is
//! its unban, including on hosts that were down, far behind, new, or cut off from Redis
//! ([`bus`]); nothing a peer sends that is forged, replayed, over its caps or refused by the
//! guard becomes a lease, and fleet-wide unbans obey `revoke_from` ([`trust`]); two hubs in
//! front of one real ExaFS hand its exclusive sink over when the holder is killed, and ExaFS
//! ends with exactly the banned set; `min_origins` holds the big hammer back; peer bans feed
//! a real fail2ban jail in one call per batch ([`hub`]); clusterd's fanout messages go both
//! ways, hostile ones run nothing ([`fanout`]).

mod fleet;

mod bus;
mod fanout;
mod hub;
mod trust;
