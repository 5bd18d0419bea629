//! What the web tests share: a real state database, a real reconcile engine over exec sinks
//! (one that works, one whose command fails with credentials in its error), real SQLite
//! statistics fed from the store's own outbox through the MaxMind test databases, and the
//! real listener (`netban_web::serve`) on a free loopback port.

#![allow(dead_code)]

pub mod page;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use netban_core::config::{
    GuardConfig, ReconcileConfig, Secret, SinkCommon, SinkDef, SinkEnv, SinkSpec,
};
use netban_core::exec::ExecConfig;
use netban_core::guard::Guard;
use netban_core::outbox::Cause;
use netban_core::owner::Mark;
use netban_core::reconcile::{Engine, PassOptions, Scope};
use netban_core::store::{LeaseFacts, Store};
use netban_core::{Lease, Origin, Target, Until};
use netban_stats::sqlite::SqliteBackend;
use netban_stats::{Geo, SourceEvent, Stats};
use netban_web::{Backend, Limits, Token};
use serde_json::Value;

/// The password inside the failing sink's error and the Redis URLs: never in an answer.
pub const PASSWORD: &str = "hunter2";
/// The web token of the fixtures that set one.
pub const TOKEN: &str = "s3cret-web-token";
pub const HOST: &str = "web-01";

pub fn geoip(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../netban-stats/testdata/geoip")
        .join(name)
}

pub fn test_geo() -> Arc<Geo> {
    Arc::new(Geo::open(
        Some(geoip("GeoLite2-Country-Test.mmdb")),
        Some(geoip("GeoLite2-ASN-Test.mmdb")),
    ))
}

pub fn t(s: &str) -> Target {
    Target::parse(s).unwrap()
}

pub fn now() -> i64 {
    netban_core::clock::now()
}

/// What the listener serves in a test.
pub struct TestBackend {
    pub store: Arc<Store>,
    pub engine: Arc<Engine>,
    pub stats: Mutex<Option<Arc<Stats>>>,
    pub cluster: Mutex<Option<Value>>,
}

impl Backend for TestBackend {
    fn health(&self) -> Result<String, String> {
        Ok("ok".into())
    }
    fn metrics(&self) -> String {
        "# EOF\n".into()
    }
    fn store(&self) -> Arc<Store> {
        self.store.clone()
    }
    fn engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }
    fn stats(&self) -> Option<Arc<Stats>> {
        self.stats.lock().unwrap().clone()
    }
    fn cluster(&self) -> Option<Value> {
        self.cluster.lock().unwrap().clone()
    }
}

fn exec(ban: &[&str]) -> Arc<dyn SinkSpec> {
    let argv = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
    Arc::new(ExecConfig {
        ban: argv(ban),
        unban: argv(&["/bin/true"]),
        ..ExecConfig::default()
    })
}

fn def(name: &str, spec: Arc<dyn SinkSpec>) -> SinkDef {
    SinkDef {
        common: SinkCommon {
            name: name.into(),
            kind: "exec".into(),
            jails: None,
            origins: None,
            min_origins: 1,
            exclusive: false,
            batch_window: None,
        },
        spec,
        fingerprint: 0,
    }
}

/// A daemon's worth of state behind a real listener.
pub struct Fixture {
    pub backend: Arc<TestBackend>,
    pub addr: SocketAddr,
    pub token: Option<&'static str>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub dir: tempfile::TempDir,
}

pub struct Options {
    pub token: bool,
    pub stats: bool,
    /// An allowlist file with a bad line (a guard problem).
    pub broken_allowlist: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token: false,
            stats: true,
            broken_allowlist: false,
        }
    }
}

impl Fixture {
    pub async fn start(opts: Options) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("state")).unwrap());
        let env = SinkEnv {
            state_dir: store.dir().to_path_buf(),
            host_id: HOST.into(),
            mark: Mark::new(HOST, store.instance()),
        };
        let mut guard_cfg = GuardConfig {
            protect_own_addresses: false,
            ..GuardConfig::default()
        };
        if opts.broken_allowlist {
            let f = dir.path().join("allow.txt");
            std::fs::write(&f, "100.64.0.0/10\nnot-a-network\n").unwrap();
            guard_cfg.allowlist.push(f);
        }
        let guard = Guard::new(&guard_cfg, Some(store.dir()));
        let failing = format!(
            "echo 'POST https://netban:{PASSWORD}@exafs.example/api/v3/rules: connection refused' >&2; exit 1"
        );
        let sinks = vec![
            def("fw", exec(&["/bin/true"])),
            def(
                "exafs-lab",
                exec(&["/bin/sh", "-c", &failing, "sh", "{prefix}"]),
            ),
        ];
        let engine = Arc::new(Engine::new(
            store.clone(),
            guard,
            sinks,
            env,
            ReconcileConfig::default(),
        ));
        let stats = opts.stats.then(|| {
            let backend = SqliteBackend::open(&dir.path().join("stats.db")).unwrap();
            Arc::new(Stats::new(HOST, TimeZone::UTC, 400, test_geo(), Arc::new(backend)).unwrap())
        });
        let backend = Arc::new(TestBackend {
            store,
            engine,
            stats: Mutex::new(stats),
            cluster: Mutex::new(None),
        });
        let token = opts.token.then_some(TOKEN);
        let router = netban_web::router(
            backend.clone(),
            token.and_then(|t| Token::new(Secret::new(t))),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(netban_web::serve(
            listener,
            router,
            Limits::default(),
            async move {
                let _ = rx.await;
            },
        ));
        Fixture {
            backend,
            addr,
            token,
            stop: Some(tx),
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn store(&self) -> &Store {
        &self.backend.store
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.backend.stats().expect("stats on")
    }

    /// A lease of `jail` from `origin`, started `ago` seconds ago, ending in `left`
    /// seconds (`None`: permanent).
    pub fn ban_as(&self, ip: &str, jail: &str, origin: Origin, ago: i64, left: Option<i64>) {
        let now = now();
        let lease = Lease {
            target: t(ip),
            jail: jail.into(),
            origin,
            until: left.map_or(Until::Never, |l| Until::At(now + l)),
            bantime: left.unwrap_or(-1),
            since: now - ago,
        };
        let cause = if lease.origin == Origin::Local {
            Cause::Ban
        } else {
            Cause::Peer
        };
        self.store()
            .upsert_lease(&lease, &LeaseFacts::cause(cause), now)
            .unwrap();
    }

    pub fn ban(&self, ip: &str, jail: &str) {
        self.ban_as(ip, jail, Origin::Local, 60, Some(3600));
    }

    pub fn unban(&self, ip: &str) {
        self.store()
            .end_leases(&t(ip), None, None, &LeaseFacts::cause(Cause::Unban), now())
            .unwrap();
    }

    /// One reconcile pass over every sink (the failing sink fails, that is expected).
    pub async fn pass(&self) {
        let opts = PassOptions {
            deadline: Instant::now() + Duration::from_secs(30),
            force: true,
            repair: false,
            dry_run: false,
        };
        self.backend.engine.run(&Scope::All, opts).await.unwrap();
    }

    /// Feeds the store's outbox to the statistics, as the daemon's stats component does.
    pub async fn ingest_outbox(&self) {
        let events: Vec<SourceEvent> = self
            .store()
            .events_after(0, 10_000)
            .unwrap()
            .iter()
            .map(SourceEvent::from)
            .collect();
        self.stats().ingest(&events).await.unwrap();
    }

    /// Records bans that happened `ago` days back (ids from `first_id`, above the outbox's).
    pub async fn history(&self, first_id: i64, bans: &[(i32, &str, &str)]) {
        let stats = self.stats();
        let today = netban_stats::Day::of(now(), &TimeZone::UTC);
        let events: Vec<_> = bans
            .iter()
            .enumerate()
            .map(|(i, (ago, ip, jail))| {
                let at = i64::from(today.minus(*ago).0) * 86_400 + 12 * 3600;
                stats.enrich(&SourceEvent {
                    id: first_id + i as i64,
                    at,
                    kind: netban_stats::EventKind::Start,
                    cause: Cause::Ban,
                    target: t(ip),
                    jail: jail.to_string(),
                    origin: "local".into(),
                })
            })
            .collect();
        stats.backend().record(&events).await.unwrap();
    }

    /// The usual picture: bans from GB, JP and SE (two jails), a permanent ban, a network,
    /// a peer's ban; one pass (fw in place, exafs-lab failing); then a ban not yet delivered
    /// and an unban whose removal is pending; the outbox counted; six days of history.
    pub async fn populate(&self) {
        self.ban("81.2.69.160", "sshd");
        self.ban("2001:218::1", "postfix");
        self.ban("89.160.20.128", "sshd");
        self.ban_as(
            "89.160.20.128",
            "recidive",
            Origin::Local,
            30,
            Some(7 * 86_400),
        );
        self.ban_as("1.2.3.4", "sshd", Origin::Local, 120, None);
        self.ban("192.0.2.0/24", "nginx-botsearch");
        self.ban_as(
            "203.0.113.9",
            "sshd",
            Origin::Peer("web-02".into()),
            10,
            Some(600),
        );
        self.ban("198.51.100.77", "dovecot");
        self.pass().await;
        self.ban("2.125.160.216", "sshd");
        self.unban("198.51.100.77");
        if self.backend.stats().is_some() {
            self.ingest_outbox().await;
            self.history(
                1000,
                &[
                    (1, "81.2.69.160", "sshd"),
                    (1, "81.2.69.161", "sshd"),
                    (2, "89.160.20.128", "postfix"),
                    (3, "2001:218::1", "sshd"),
                    (4, "81.2.69.160", "sshd"),
                    (5, "1.2.3.4", "dovecot"),
                    (6, "89.160.20.129", "sshd"),
                    (40, "81.2.69.160", "sshd"),
                ],
            )
            .await;
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A client that never follows redirects (the tests look at them).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// GET `path`: the status and the JSON body.
pub async fn get_json(f: &Fixture, path: &str) -> (u16, Value) {
    let mut req = client().get(f.url(path));
    if let Some(tok) = f.token {
        req = req.bearer_auth(tok);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert!(
        !text.contains(PASSWORD) && !text.contains(TOKEN),
        "{path} answered a secret: {text}"
    );
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{path} answered no JSON ({e}): {text}"));
    (status, v)
}
