use super::*;
use crate::config::{GuardConfig, SinkCommon, SinkSpec};
use crate::lease::{Origin, Until};
use crate::outbox::Cause;
use crate::owner::{Mark, Owner};
use crate::sink::{Applied, Change, Commit, HeldEntry, Outcome, Sink, SinkError};
use crate::store::LeaseFacts;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A sink double that records calls, fails while `down`, rejects `poison` in atomic mode.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
    batches: Mutex<Vec<usize>>,
    down: AtomicBool,
    atomic: AtomicBool,
    poison: Mutex<Option<Target>>,
    listed: Mutex<Option<Vec<HeldEntry>>>,
    owner: Mutex<Option<Owner>>,
}

#[async_trait::async_trait]
impl Sink for Recorder {
    fn name(&self) -> &str {
        "rec"
    }
    fn batching(&self) -> crate::sink::Batching {
        crate::sink::Batching {
            max: 2,
            window: Duration::ZERO,
        }
    }
    fn commit(&self) -> Commit {
        if self.atomic.load(Ordering::SeqCst) {
            Commit::Atomic
        } else {
            Commit::PerChange
        }
    }
    async fn apply(&self, changes: &[Change], _deadline: Instant) -> Vec<Outcome> {
        self.batches.lock().unwrap().push(changes.len());
        let poison = *self.poison.lock().unwrap();
        if self.atomic.load(Ordering::SeqCst) && changes.iter().any(|c| Some(*c.target()) == poison)
        {
            return changes
                .iter()
                .map(|_| Err(SinkError::later("batch rejected")))
                .collect();
        }
        let down = self.down.load(Ordering::SeqCst);
        let owner = self.owner.lock().unwrap().clone();
        let mut calls = self.calls.lock().unwrap();
        changes
            .iter()
            .map(|c| {
                calls.push(format!("{} {}", c.verb(), c.target()));
                if down {
                    Err(SinkError::soon("connection refused"))
                } else {
                    Ok(Applied {
                        remote_id: Some(c.target().to_string()),
                        owner: owner.clone().unwrap_or(Owner::This),
                        ..Applied::default()
                    })
                }
            })
            .collect()
    }
    async fn held(&self, _deadline: Instant) -> Result<Option<Vec<HeldEntry>>, SinkError> {
        Ok(self.listed.lock().unwrap().clone())
    }
    async fn check(&self, _deadline: Instant) -> Result<String, SinkError> {
        Ok(String::new())
    }
}

#[derive(Debug)]
struct Fixed(Arc<RecorderHandle>);
struct RecorderHandle(Arc<Recorder>);
impl std::fmt::Debug for RecorderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("recorder")
    }
}
impl SinkSpec for Fixed {
    fn build(&self, _name: &str, _env: &SinkEnv) -> Result<Arc<dyn Sink>, String> {
        Ok(self.0.0.clone())
    }
}

fn engine(dir: &std::path::Path) -> (Engine, Arc<Recorder>, Arc<Store>) {
    let store = Arc::new(Store::open(dir).unwrap());
    let guard = Guard::new(
        &GuardConfig {
            protect_own_addresses: false,
            ..GuardConfig::default()
        },
        None,
    );
    let rec = Arc::new(Recorder::default());
    let def = SinkDef {
        common: SinkCommon {
            name: "rec".into(),
            kind: "test".into(),
            jails: None,
            origins: None,
            min_origins: 1,
            exclusive: false,
            batch_window: None,
        },
        spec: Arc::new(Fixed(Arc::new(RecorderHandle(rec.clone())))),
        fingerprint: 1,
    };
    let env = SinkEnv {
        state_dir: dir.to_path_buf(),
        host_id: "web-01".into(),
        mark: Mark::new("web-01", store.instance()),
    };
    let e = Engine::new(
        store.clone(),
        guard,
        vec![def],
        env,
        ReconcileConfig::default(),
    );
    (e, rec, store)
}

fn ban(store: &Store, ip: &str, jail: &str) {
    let l = Lease {
        target: Target::parse(ip).unwrap(),
        jail: jail.into(),
        origin: Origin::Local,
        until: Until::Never,
        bantime: -1,
        since: 0,
    };
    store
        .upsert_lease(&l, &LeaseFacts::cause(Cause::Ban), 0)
        .unwrap();
}

fn unban(store: &Store, ip: &str, jail: &str) {
    store
        .end_leases(
            &Target::parse(ip).unwrap(),
            Some(jail),
            Some(&Origin::Local),
            &LeaseFacts::cause(Cause::Unban),
            1,
        )
        .unwrap();
}

fn opts() -> PassOptions {
    PassOptions {
        deadline: Instant::now() + Duration::from_secs(5),
        force: false,
        repair: false,
        dry_run: false,
    }
}

#[tokio::test]
async fn reconcile_twice_changes_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let (e, rec, store) = engine(dir.path());
    ban(&store, "192.0.2.1", "sshd");
    ban(&store, "192.0.2.1", "postfix");
    ban(&store, "192.0.2.2", "sshd");
    assert_eq!(e.run(&Scope::All, opts()).await.unwrap().changes(), 2);
    assert_eq!(e.run(&Scope::All, opts()).await.unwrap().changes(), 0);
    // One jail's unban keeps the target; the last one removes it.
    unban(&store, "192.0.2.1", "sshd");
    assert_eq!(e.run(&Scope::All, opts()).await.unwrap().changes(), 0);
    unban(&store, "192.0.2.1", "postfix");
    let r = e.run(&Scope::All, opts()).await.unwrap();
    assert_eq!(r.sinks[0].removed, 1);
    assert_eq!(
        rec.calls.lock().unwrap().as_slice(),
        [
            "add 192.0.2.1/32",
            "add 192.0.2.2/32",
            "remove 192.0.2.1/32"
        ]
    );
}

#[tokio::test]
async fn an_unavailable_sink_is_not_hammered_and_recovers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (e, rec, store) = engine(dir.path());
    for i in 1..=7 {
        ban(&store, &format!("192.0.2.{i}"), "sshd");
    }
    rec.down.store(true, Ordering::SeqCst);
    let r = e.run(&Scope::All, opts()).await.unwrap();
    // The first batch of two failed; the other five were not tried.
    assert_eq!((r.sinks[0].failed, r.sinks[0].deferred), (2, 5));
    assert_eq!(rec.calls.lock().unwrap().len(), 2);
    rec.down.store(false, Ordering::SeqCst);
    let r = e.run(&Scope::All, opts()).await.unwrap();
    assert_eq!(r.sinks[0].added, 5);
    let r = e.run(&Scope::All, opts()).await.unwrap();
    assert_eq!(r.sinks[0].added, 2);
    assert!(e.run(&Scope::All, opts()).await.unwrap().converged());
}

#[tokio::test]
async fn dry_run_applies_nothing_and_says_what_it_would_send() {
    let dir = tempfile::tempdir().unwrap();
    let (e, rec, store) = engine(dir.path());
    ban(&store, "192.0.2.1", "sshd");
    let dry = PassOptions {
        dry_run: true,
        ..opts()
    };
    let r = e.run(&Scope::All, dry).await.unwrap();
    assert_eq!((r.sinks[0].added, r.sinks[0].actions.len()), (1, 1));
    assert!(rec.calls.lock().unwrap().is_empty());
    assert!(store.records("rec").unwrap().is_empty());
}

#[tokio::test]
async fn a_rejected_atomic_batch_is_split_until_the_bad_change_stands_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (e, rec, store) = engine(dir.path());
    rec.atomic.store(true, Ordering::SeqCst);
    *rec.poison.lock().unwrap() = Some(Target::parse("192.0.2.2").unwrap());
    for i in 1..=2 {
        ban(&store, &format!("192.0.2.{i}"), "sshd");
    }
    let r = e.run(&Scope::All, opts()).await.unwrap();
    assert_eq!((r.sinks[0].added, r.sinks[0].failed), (1, 1));
    assert_eq!(rec.batches.lock().unwrap().as_slice(), [2, 1, 1]);
    let failed = store.records("rec").unwrap();
    let bad = failed.iter().find(|r| r.attempts > 0).unwrap();
    assert_eq!(bad.target.to_string(), "192.0.2.2/32");
}

#[tokio::test]
async fn an_add_is_recorded_before_it_is_sent() {
    // A kill -9 mid-batch must leave a trace: the record exists in state `adding`.
    let dir = tempfile::tempdir().unwrap();
    let (e, rec, store) = engine(dir.path());
    rec.down.store(true, Ordering::SeqCst);
    ban(&store, "192.0.2.1", "sshd");
    e.run(&Scope::All, opts()).await.unwrap();
    let r = &store.records("rec").unwrap()[0];
    assert_eq!(r.state, crate::store::RecordState::Adding);
}

#[tokio::test]
async fn an_entry_that_was_somebody_elses_is_left_at_the_last_unban() {
    let dir = tempfile::tempdir().unwrap();
    let (e, rec, store) = engine(dir.path());
    *rec.owner.lock().unwrap() = Some(Owner::Foreign);
    ban(&store, "192.0.2.1", "sshd");
    e.run(&Scope::All, opts()).await.unwrap();
    assert!(store.records("rec").unwrap()[0].foreign_owner.is_some());
    unban(&store, "192.0.2.1", "sshd");
    let r = e.run(&Scope::All, opts()).await.unwrap();
    assert_eq!((r.sinks[0].removed, r.sinks[0].kept), (0, 1));
    assert_eq!(
        rec.calls.lock().unwrap().as_slice(),
        ["add 192.0.2.1/32"],
        "no removal was sent"
    );
    assert_eq!(store.kept(None).unwrap().len(), 1);
    assert!(store.records("rec").unwrap().is_empty());
}

fn entry(ip: &str, id: &str, owner: Owner) -> HeldEntry {
    HeldEntry {
        target: Target::parse(ip).unwrap(),
        remote_id: Some(id.into()),
        expires: None,
        owner,
        not_enforced: None,
    }
}

#[tokio::test]
async fn repair_recreates_vanished_entries_removes_duplicates_and_spares_what_is_not_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (e, rec, store) = engine(dir.path());
    ban(&store, "192.0.2.1", "sshd");
    ban(&store, "192.0.2.2", "sshd");
    e.run(&Scope::All, opts()).await.unwrap();
    rec.calls.lock().unwrap().clear();
    // The remote side lost 192.0.2.2, holds 192.0.2.1 twice (ids "192.0.2.1/32" from our
    // add and "99" from a race), one of this state's entries it has no record of (a restored
    // backup: kept), one of another host's and a foreign entry.
    *rec.listed.lock().unwrap() = Some(vec![
        entry("192.0.2.1", "192.0.2.1/32", Owner::This),
        entry("192.0.2.1", "99", Owner::This),
        entry("198.51.100.7", "50", Owner::This),
        entry("198.51.100.8", "51", Owner::Host("web-02".into())),
        entry("203.0.113.9", "60", Owner::Foreign),
    ]);
    let repair = PassOptions {
        repair: true,
        ..opts()
    };
    let r = e.run(&Scope::All, repair).await.unwrap();
    let mut calls = rec.calls.lock().unwrap().clone();
    calls.sort();
    assert_eq!(calls, ["add 192.0.2.2/32", "remove 192.0.2.1/32"]);
    // The duplicate's removal kept the record of the entry that stays.
    let kept = store
        .records_of("rec", &[Target::parse("192.0.2.1").unwrap()])
        .unwrap();
    assert_eq!(kept[0].remote_id.as_deref(), Some("192.0.2.1/32"));
    assert_eq!(r.sinks[0].kept, 1);
    assert_eq!(
        store.kept(Some("rec")).unwrap()[0].target.to_string(),
        "198.51.100.7/32"
    );
}

#[tokio::test]
async fn a_reload_keeps_an_unchanged_sink() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _rec, _store) = engine(dir.path());
    let before = e.slot("rec").unwrap();
    let same = before.def.clone();
    let mut changed = before.def.clone();
    changed.fingerprint = 2;
    let c = e.reconfigure(e.guard(), vec![same], ReconcileConfig::default());
    assert_eq!(c.kept, ["rec"]);
    assert!(Arc::ptr_eq(&before, &e.slot("rec").unwrap()));
    let c = e.reconfigure(e.guard(), vec![changed], ReconcileConfig::default());
    assert_eq!(
        (c.started.as_slice(), c.stopped.as_slice()),
        (&["rec".to_string()][..], &["rec".to_string()][..])
    );
}
