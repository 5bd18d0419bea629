//! The sink contract suite: what every sink must do, checked against its real remote side.
//!
//! A driver crate's tests provide a [`Fixture`] (a real ExaFS, a netconfd behind sshd, a
//! private network namespace with nft, a directory an exec command writes to) that builds the
//! sink and reads what the remote side holds *directly*, not through the sink. Then
//! [`sink_contract_tests!`] generates one test per case:
//!
//! ```ignore
//! netban_core::sink_contract_tests!(fixture: my_fixture, run: netban_core::contract::run_tokio);
//! ```
//!
//! The cases drive the sink the way netban does: through the reconcile [`Engine`] with a real
//! state database (bans and unbans as leases, passes, repair), plus the trait's own promises
//! (one outcome per change, in order; stopping by the deadline; idempotent adds and
//! removes). Enabled by the `contract` feature.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{GuardConfig, ReconcileConfig, SinkCommon, SinkDef, SinkEnv, SinkSpec};
use crate::guard::Guard;
use crate::lease::{Lease, Origin, Until};
use crate::outbox::Cause;
use crate::owner::{Mark, Owner};
use crate::reconcile::{Engine, PassOptions, Scope};
use crate::sink::{Change, LeaseInfo, Sink};
use crate::store::{LeaseFacts, Store};
use crate::target::Target;

/// A boxed future, for the fixture's async methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A real remote side and the sink that writes to it.
pub trait Fixture: Send + Sync {
    /// The sink's type name (`exafs`, `nftables`, ...), for messages.
    fn kind(&self) -> &str;
    /// The driver's config for a sink writing to this remote side.
    fn spec(&self) -> Arc<dyn SinkSpec>;
    /// What the remote side holds, read directly (not through the sink).
    fn remote(&self) -> BoxFuture<'_, BTreeSet<Target>>;
    /// Puts an entry for `target` there that netban did not make; false when the remote side
    /// cannot hold one (an exec command's log).
    fn foreign(&self, target: Target) -> BoxFuture<'_, bool>;
    /// Removes `target` there behind netban's back; false when the fixture cannot.
    fn delete(&self, target: Target) -> BoxFuture<'_, bool>;
}

/// Runs a case on a fresh tokio runtime (the default runner).
pub fn run_tokio<F: Future<Output = ()>>(f: impl FnOnce() -> F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f())
}

/// Generates the contract tests for a fixture: `fixture` is a function returning a future of
/// the fixture (`fn() -> impl Future<Output = impl Fixture>`), `run` runs a future to its end
/// (`netban_core::contract::run_tokio`, or a runner inside a network namespace).
#[macro_export]
macro_rules! sink_contract_tests {
    (fixture: $fixture:path, run: $run:path) => {
        $crate::sink_contract_tests!(@case $fixture, $run, contract_bans_reach_the_remote_side_and_unbans_leave_it);
        $crate::sink_contract_tests!(@case $fixture, $run, contract_a_second_pass_changes_nothing);
        $crate::sink_contract_tests!(@case $fixture, $run, contract_ipv4_ipv6_and_networks_arrive_canonical);
        $crate::sink_contract_tests!(@case $fixture, $run, contract_one_outcome_per_change_in_order);
        $crate::sink_contract_tests!(@case $fixture, $run, contract_adding_twice_and_removing_twice_are_fine);
        $crate::sink_contract_tests!(@case $fixture, $run, contract_a_past_deadline_returns_at_once);
        $crate::sink_contract_tests!(@case $fixture, $run, contract_repair_puts_back_what_was_deleted_and_spares_foreign_entries);
        $crate::sink_contract_tests!(@case $fixture, $run, contract_held_reports_its_own_entries_as_this);
    };
    (@case $fixture:path, $run:path, $case:ident) => {
        #[test]
        fn $case() {
            $run(|| async {
                let f = $fixture().await;
                $crate::contract::$case(&f).await;
            });
        }
    };
}

/// A state, an engine over the fixture's sink, and helpers to ban and unban through leases.
pub struct Bench {
    pub store: Arc<Store>,
    pub engine: Engine,
    pub sink: Arc<dyn Sink>,
    _dir: tempfile::TempDir,
}

const HOST: &str = "contract";

impl Bench {
    pub fn new(f: &dyn Fixture) -> Bench {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join("state")).expect("state"));
        let env = SinkEnv {
            state_dir: store.dir().to_path_buf(),
            host_id: HOST.into(),
            mark: Mark::new(HOST, store.instance()),
        };
        let spec = f.spec();
        let sink = spec.build("contract", &env).expect("the sink builds");
        let def = SinkDef {
            common: SinkCommon {
                name: "contract".into(),
                kind: f.kind().to_string(),
                jails: None,
                origins: None,
                min_origins: 1,
                exclusive: false,
                batch_window: None,
            },
            spec,
            fingerprint: 0,
        };
        let guard = Guard::new(
            &GuardConfig {
                protect_own_addresses: false,
                ..GuardConfig::default()
            },
            None,
        );
        let engine = Engine::new(
            store.clone(),
            guard,
            vec![def],
            env,
            ReconcileConfig::default(),
        );
        Bench {
            store,
            engine,
            sink,
            _dir: dir,
        }
    }

    pub fn ban(&self, ip: &str) {
        let lease = Lease {
            target: t(ip),
            jail: "sshd".into(),
            origin: Origin::Local,
            until: Until::At(crate::clock::now() + 3600),
            bantime: 3600,
            since: crate::clock::now(),
        };
        self.store
            .upsert_lease(&lease, &LeaseFacts::cause(Cause::Ban), crate::clock::now())
            .expect("lease");
    }

    pub fn unban(&self, ip: &str) {
        self.store
            .end_leases(
                &t(ip),
                None,
                None,
                &LeaseFacts::cause(Cause::Unban),
                crate::clock::now(),
            )
            .expect("unban");
    }

    /// A pass over every target; panics when it does not converge.
    pub async fn pass(&self, repair: bool) -> crate::reconcile::PassReport {
        let opts = PassOptions {
            deadline: Instant::now() + Duration::from_secs(60),
            force: true,
            repair,
            dry_run: false,
        };
        let r = self.engine.run(&Scope::All, opts).await.expect("pass");
        assert!(r.converged(), "the pass must converge: {r:?}");
        r
    }
}

fn t(s: &str) -> Target {
    Target::parse(s).expect("target")
}

fn set(ts: &[&str]) -> BTreeSet<Target> {
    ts.iter().map(|s| t(s)).collect()
}

fn lease() -> LeaseInfo {
    LeaseInfo {
        jail: "sshd".into(),
        origin: "local".into(),
        bantime: 3600,
        until: Some(crate::clock::now() + 3600),
    }
}

fn add(sink: &dyn Sink, ip: &str) -> Change {
    Change::Add {
        target: t(ip),
        expires: sink.expiry_for(Until::At(crate::clock::now() + 3600), crate::clock::now()),
        lease: lease(),
        remote_id: None,
    }
}

fn remove(ip: &str, remote_id: Option<String>) -> Change {
    Change::Remove {
        target: t(ip),
        remote_id,
        lease: lease(),
        adopted: false,
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// Bans reach the remote side; unbans take them away again.
pub async fn contract_bans_reach_the_remote_side_and_unbans_leave_it(f: &impl Fixture) {
    let b = Bench::new(f);
    for ip in ["192.0.2.1", "192.0.2.2", "2001:db8::1"] {
        b.ban(ip);
    }
    let r = b.pass(false).await;
    assert_eq!(r.sinks[0].added, 3, "{r:?}");
    assert_eq!(
        f.remote().await,
        set(&["192.0.2.1", "192.0.2.2", "2001:db8::1"])
    );
    b.unban("192.0.2.2");
    b.pass(false).await;
    assert_eq!(f.remote().await, set(&["192.0.2.1", "2001:db8::1"]));
    b.unban("192.0.2.1");
    b.unban("2001:db8::1");
    b.pass(false).await;
    assert_eq!(
        f.remote().await,
        BTreeSet::new(),
        "{} keeps nothing",
        f.kind()
    );
}

/// Reconcile is idempotent: a second pass sends nothing.
pub async fn contract_a_second_pass_changes_nothing(f: &impl Fixture) {
    let b = Bench::new(f);
    b.ban("192.0.2.10");
    b.ban("203.0.113.128/25");
    assert_eq!(b.pass(false).await.changes(), 2);
    assert_eq!(b.pass(false).await.changes(), 0);
    assert_eq!(b.pass(true).await.changes(), 0, "a repair pass agrees");
    assert_eq!(f.remote().await, set(&["192.0.2.10", "203.0.113.128/25"]));
}

/// What the remote side holds is the canonical target, whatever the spelling.
pub async fn contract_ipv4_ipv6_and_networks_arrive_canonical(f: &impl Fixture) {
    let b = Bench::new(f);
    for ip in [
        "2001:DB8:0::5",
        "::ffff:192.0.2.9",
        "203.0.113.77/24",
        "2001:DB8:1::9/64",
    ] {
        b.ban(ip);
    }
    b.pass(false).await;
    assert_eq!(
        f.remote().await,
        set(&[
            "2001:db8::5",
            "192.0.2.9",
            "203.0.113.0/24",
            "2001:db8:1::/64"
        ])
    );
}

/// One outcome per change, in order.
pub async fn contract_one_outcome_per_change_in_order(f: &impl Fixture) {
    let b = Bench::new(f);
    let changes = vec![
        add(&*b.sink, "192.0.2.21"),
        add(&*b.sink, "192.0.2.22"),
        remove("192.0.2.23", None),
    ];
    let out = b.sink.apply(&changes, soon()).await;
    assert_eq!(out.len(), changes.len());
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    assert_eq!(f.remote().await, set(&["192.0.2.21", "192.0.2.22"]));
}

/// Adding what is there and removing what is not are not errors.
pub async fn contract_adding_twice_and_removing_twice_are_fine(f: &impl Fixture) {
    let b = Bench::new(f);
    let first = b.sink.apply(&[add(&*b.sink, "192.0.2.31")], soon()).await;
    let id = first[0].as_ref().expect("first add").remote_id.clone();
    let again = Change::Add {
        target: t("192.0.2.31"),
        expires: b
            .sink
            .expiry_for(Until::At(crate::clock::now() + 7200), crate::clock::now()),
        lease: lease(),
        remote_id: id.clone(),
    };
    assert!(b.sink.apply(&[again], soon()).await[0].is_ok());
    assert!(b.sink.apply(&[add(&*b.sink, "192.0.2.31")], soon()).await[0].is_ok());
    assert_eq!(
        f.remote().await,
        set(&["192.0.2.31"]),
        "one entry, however often added"
    );
    assert!(
        b.sink
            .apply(&[remove("192.0.2.31", id.clone())], soon())
            .await[0]
            .is_ok()
    );
    assert!(b.sink.apply(&[remove("192.0.2.31", id)], soon()).await[0].is_ok());
    assert!(b.sink.apply(&[remove("192.0.2.31", None)], soon()).await[0].is_ok());
    assert_eq!(f.remote().await, BTreeSet::new());
}

/// A call with no time left returns at once with retryable failures.
pub async fn contract_a_past_deadline_returns_at_once(f: &impl Fixture) {
    let b = Bench::new(f);
    let started = Instant::now();
    let out = b
        .sink
        .apply(
            &[add(&*b.sink, "192.0.2.41"), add(&*b.sink, "192.0.2.42")],
            Instant::now(),
        )
        .await;
    assert_eq!(out.len(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{} took {:?} with no time left",
        f.kind(),
        started.elapsed()
    );
    for o in out.iter().filter_map(|o| o.as_ref().err()) {
        assert_eq!(o.retry, crate::sink::Retry::Soon, "{o}");
    }
}

/// A full check puts back an entry deleted behind netban's back, and never removes an entry
/// netban did not make.
pub async fn contract_repair_puts_back_what_was_deleted_and_spares_foreign_entries(
    f: &impl Fixture,
) {
    let b = Bench::new(f);
    b.ban("192.0.2.51");
    b.ban("192.0.2.52");
    b.pass(false).await;
    let foreign = f.foreign(t("203.0.113.99")).await;
    if f.delete(t("192.0.2.52")).await {
        assert!(!f.remote().await.contains(&t("192.0.2.52")));
        let r = b.pass(true).await;
        if b.sink.held(soon()).await.ok().flatten().is_some() {
            assert!(
                r.sinks[0].added >= 1,
                "repair re-adds the deleted entry: {r:?}"
            );
            assert!(f.remote().await.contains(&t("192.0.2.52")));
        }
    }
    b.unban("192.0.2.51");
    b.unban("192.0.2.52");
    b.pass(true).await;
    b.pass(true).await;
    let left = f.remote().await;
    if foreign {
        assert_eq!(
            left,
            set(&["203.0.113.99"]),
            "only the foreign entry is left"
        );
    } else {
        assert_eq!(left, BTreeSet::new());
    }
}

/// `held` (where the sink can list) reports the sink's own entries as made by this netban.
pub async fn contract_held_reports_its_own_entries_as_this(f: &impl Fixture) {
    let b = Bench::new(f);
    b.ban("192.0.2.61");
    b.pass(false).await;
    let Some(held) = b.sink.held(soon()).await.expect("held") else {
        return;
    };
    let mine: Vec<_> = held
        .iter()
        .filter(|h| h.target == t("192.0.2.61"))
        .collect();
    assert!(!mine.is_empty(), "{} lists its entry: {held:?}", f.kind());
    assert!(mine.iter().all(|h| h.owner == Owner::This), "{mine:?}");
}
