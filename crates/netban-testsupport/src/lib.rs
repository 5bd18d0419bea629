//! Test harness for netban's integration tests.
//!
//! Everything here starts a *real* component on a free loopback port, inside a temporary
//! directory that is removed when the handle is dropped: ExaFS from PyPI (`exafs`), fail2ban
//! from Debian, netconfd (Debian) behind a private OpenSSH sshd, redis-server from Debian,
//! a small fault-injecting HTTP proxy that sits in front of a real server, and headless
//! Chromium behind chromedriver ([`chromium`]) for the dashboard; the nftables
//! tests get a private network namespace each ([`netns`]) with the real nft.
//! [`fanout`] is the one exception: a minimal fanout-protocol server, because the real one is
//! not installable here (shared/reference/cluster.md specifies its protocol).
//! Nothing else here imitates a server. When a component is missing the harness panics with the
//! command that installs it (`scripts/test` does): tests never pass by skipping.
//!
//! And the pieces every netban test shares, once each: the runner of the real binary
//! ([`runner`]), its config ([`config`]), the daemon handle ([`daemon`]), a client of the
//! control socket ([`control`]), polling waits ([`wait`]) and forged tokens ([`jwt`]).

pub mod chromium;
pub mod config;
pub mod control;
pub mod daemon;
pub mod exafs;
pub mod fail2ban;
pub mod fanout;
pub mod http;
pub mod jwt;
pub mod netconf_client;
pub mod netconfd;
pub mod netconfd_files;
pub mod netconfd_user;
pub mod netns;
pub mod process;
pub mod proxy;
pub mod redis;
pub mod runner;
pub mod ssh_keys;
pub mod wait;
