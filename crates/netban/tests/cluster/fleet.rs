//! A fleet of real `netban daemon`s on one machine: each host its own directory, state,
//! signing key (made by `netban cluster keygen`) and exec sink writing `sink.log`; one real
//! redis-server between them; every host trusting every other.

use std::time::Duration;

use netban_testsupport::config::{Config, Sink};
use netban_testsupport::daemon::Daemon;
use netban_testsupport::redis::RedisServer;
use netban_testsupport::runner::{Netban, read, stdout, tail};
use netban_testsupport::wait;

pub const NETBAN: &str = env!("CARGO_BIN_EXE_netban");
/// How long a change may take to cross the fleet on a loaded machine (it takes milliseconds).
pub const WAIT: Duration = Duration::from_secs(30);

/// One host: its runner, its config builder's extra lines, its daemon when running.
pub struct Host {
    pub id: String,
    pub nb: Netban,
    pub daemon: Option<Daemon>,
    extra: Vec<(String, String)>,
    sinks: Vec<Sink>,
}

pub struct Fleet {
    pub redis: RedisServer,
    pub hosts: Vec<Host>,
    peers: Vec<String>,
}

/// What each host's config has besides its peers.
pub struct HostSpec {
    pub id: &'static str,
    /// `(section, lines)` added to the config (`("cluster", "revoke_from = [\"a\"]")`).
    pub extra: Vec<(String, String)>,
    /// The sinks; default: an exec sink writing `sink.log`.
    pub sinks: Option<Vec<Sink>>,
}

impl HostSpec {
    pub fn plain(id: &'static str) -> HostSpec {
        HostSpec {
            id,
            extra: Vec::new(),
            sinks: None,
        }
    }

    pub fn with(mut self, section: &str, lines: &str) -> HostSpec {
        self.extra.push((section.into(), lines.into()));
        self
    }

    pub fn sinks(mut self, sinks: Vec<Sink>) -> HostSpec {
        self.sinks = Some(sinks);
        self
    }
}

impl Fleet {
    /// Hosts with default specs, all started.
    pub fn start(ids: &[&'static str]) -> Fleet {
        Fleet::start_specs(ids.iter().map(|i| HostSpec::plain(i)).collect())
    }

    pub fn start_specs(specs: Vec<HostSpec>) -> Fleet {
        let redis = RedisServer::start().unwrap_or_else(|e| panic!("starting redis: {e:#}"));
        let mut fleet = Fleet {
            redis,
            hosts: Vec::new(),
            peers: Vec::new(),
        };
        for spec in specs {
            fleet.add(spec);
        }
        for i in 0..fleet.hosts.len() {
            fleet.start_host(i);
        }
        fleet
    }

    /// Adds a host (not started): writes its key and tells every host about it.
    pub fn add(&mut self, spec: HostSpec) -> usize {
        let sinks = spec
            .sinks
            .unwrap_or_else(|| vec![Sink::exec_to_file("sink.log")]);
        let host = Host {
            id: spec.id.to_string(),
            nb: Netban::new(NETBAN, &Config::new()),
            daemon: None,
            extra: spec.extra,
            sinks,
        };
        self.hosts.push(host);
        let i = self.hosts.len() - 1;
        // The key first, from a config naming no peer (revoke_from may name peers).
        self.write_config_with(i, false);
        let out = self.hosts[i].nb.expect(0, &["cluster", "keygen"]);
        let line = stdout(&out).trim().to_string();
        assert!(
            line.starts_with(&format!("{} = \"ed25519:", spec.id)),
            "{line}"
        );
        self.peers.push(line);
        for j in 0..self.hosts.len() {
            self.write_config(j);
        }
        i
    }

    fn write_config(&self, i: usize) {
        self.write_config_with(i, true);
    }

    fn write_config_with(&self, i: usize, extras: bool) {
        let h = &self.hosts[i];
        let mut c = Config::new()
            .host_id(h.id.clone())
            .log_file("netban.log", Some("debug"))
            .guard("protect_own_addresses = false")
            .daemon("resync_interval = 5")
            .reconcile("retry_initial = 0.2\nretry_max = 2.0")
            .section(
                "cluster",
                format!(
                    "redis = \"{}\"\nkey_file = \"{}\"",
                    self.redis.url(),
                    h.nb.path("cluster.key").display()
                ),
            );
        for (section, lines) in h.extra.iter().filter(|_| extras) {
            c = c.section(section, lines.clone());
        }
        if !self.peers.is_empty() {
            c = c.section("cluster.peers", self.peers.join("\n"));
        }
        for s in &h.sinks {
            c = c.sink(s.clone());
        }
        h.nb.write_config(&c);
    }

    pub fn start_host(&mut self, i: usize) {
        let d = Daemon::start(&self.hosts[i].nb);
        self.hosts[i].daemon = Some(d);
    }

    pub fn stop_host(&mut self, i: usize) {
        if let Some(mut d) = self.hosts[i].daemon.take() {
            d.stop(Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("stopping {}: {e:#}", self.hosts[i].id));
        }
    }

    pub fn host(&self, id: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.id == id)
            .unwrap_or_else(|| panic!("no host {id}"))
    }

    pub fn index(&self, id: &str) -> usize {
        self.hosts
            .iter()
            .position(|h| h.id == id)
            .unwrap_or_else(|| panic!("no host {id}"))
    }

    /// Every host's log tail and the sink log, for a failing assertion.
    pub fn ctx(&self) -> String {
        let mut s = String::new();
        for h in &self.hosts {
            s.push_str(&format!(
                "--- {} netban.log ---\n{}\n--- {} daemon.out ---\n{}\n",
                h.id,
                tail(&h.nb.path("netban.log"), 15),
                h.id,
                tail(&h.nb.path("daemon.out"), 5)
            ));
        }
        s.push_str(&format!("--- redis ---\n{}", self.redis.log_tail(10)));
        s
    }

    /// Waits until `f` holds.
    pub fn wait(&self, what: &str, mut f: impl FnMut() -> bool) {
        wait::wait_until(
            what,
            WAIT,
            Duration::from_millis(50),
            || self.ctx(),
            || f().then_some(()),
        );
    }
}

impl Host {
    pub fn ban(&self, jail: &str, ip: &str) {
        self.nb.expect(0, &["ban", "--jail", jail, ip]);
    }

    pub fn unban(&self, jail: &str, ip: &str) {
        self.nb.expect(0, &["unban", "--jail", jail, ip]);
    }

    /// `(target, origins)` of every live lease, from `netban list --json`.
    pub fn leases(&self) -> Vec<(String, Vec<String>)> {
        let list = self.nb.list();
        list.as_array()
            .map(|a| {
                a.iter()
                    .map(|i| {
                        let origins = i["leases"]
                            .as_array()
                            .map(|ls| {
                                ls.iter()
                                    .filter_map(|l| l["origin"].as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (i["target"].as_str().unwrap_or("").to_string(), origins)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The targets with a lease from `origin`.
    pub fn from(&self, origin: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .leases()
            .into_iter()
            .filter(|(_, o)| o.iter().any(|o| o == origin))
            .map(|(t, _)| t)
            .collect();
        v.sort();
        v
    }

    pub fn sink_log(&self) -> String {
        read(&self.nb.path("sink.log"))
    }

    pub fn status(&self) -> String {
        stdout(&self.nb.expect(0, &["status"]))
    }

    pub fn cluster_status(&self) -> serde_json::Value {
        let out = self.nb.expect(0, &["--json", "cluster", "status"]);
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {out:?}"))
    }

    /// What `origin`'s events became here: `counts[cause]`.
    pub fn counts(&self, origin: &str) -> serde_json::Value {
        self.cluster_status()["cluster"]["peers"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["host"] == origin).cloned())
            .map(|p| p["counts"].clone())
            .unwrap_or_default()
    }

    pub fn metrics(&self) -> String {
        self.daemon
            .as_ref()
            .map(Daemon::metrics)
            .unwrap_or_default()
    }
}

/// `count` addresses of 198.18.0.0/15 (benchmarking range), from `start`.
pub fn addrs(start: u32, count: u32) -> Vec<String> {
    (start..start + count)
        .map(|n| format!("198.18.{}.{}", n / 250, n % 250 + 1))
        .collect()
}

/// `addrs` as canonical targets, sorted.
pub fn targets(addrs: &[String]) -> Vec<String> {
    let mut v: Vec<String> = addrs.iter().map(|a| format!("{a}/32")).collect();
    v.sort();
    v
}
