use super::*;
use crate::config::GuardConfig;
use crate::lease::Origin;

fn common(jails: Option<&[&str]>, min_origins: usize) -> SinkCommon {
    SinkCommon {
        name: "s".into(),
        kind: "exec".into(),
        jails: jails.map(|j| j.iter().map(|s| s.to_string()).collect()),
        origins: None,
        min_origins,
        exclusive: false,
        batch_window: None,
    }
}

fn guard() -> Guard {
    Guard::new(
        &GuardConfig {
            protect_own_addresses: false,
            ..GuardConfig::default()
        },
        None,
    )
}

fn lease(t: &str, jail: &str, until: Until) -> Lease {
    lease_from(t, jail, Origin::Local, until)
}

fn lease_from(t: &str, jail: &str, origin: Origin, until: Until) -> Lease {
    Lease {
        target: Target::parse(t).unwrap(),
        jail: jail.into(),
        origin,
        until,
        bantime: 60,
        since: 0,
    }
}

fn held(t: &str, expires: Option<i64>, updated: i64) -> SinkRecord {
    let mut r = SinkRecord::held(
        "s",
        Target::parse(t).unwrap(),
        LeaseInfo {
            jail: "sshd".into(),
            origin: "local".into(),
            bantime: 60,
            until: None,
        },
        updated,
    );
    r.remote_id = Some("7".into());
    r.expires = expires;
    r
}

fn opts(now: i64, force: bool) -> PlanOptions {
    PlanOptions {
        now,
        force,
        self_expiring: false,
    }
}

fn names(p: &Plan) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| match s {
            Step::Add {
                desired, remote_id, ..
            } => format!("add {} {:?}", desired.target, remote_id),
            Step::Remove { target, .. } => format!("remove {target}"),
            Step::Leave { target, .. } => format!("leave {target}"),
            Step::Forget { target } => format!("forget {target}"),
        })
        .collect()
}

#[test]
fn expiry_is_the_latest_lease_and_filters_apply() {
    let leases = vec![
        lease("192.0.2.1", "sshd", Until::At(500)),
        lease("192.0.2.1", "postfix", Until::At(900)),
        lease("192.0.2.2", "postfix", Until::At(900)),
        lease("192.0.2.3", "sshd", Until::At(50)),
        lease("127.0.0.1", "sshd", Until::Never),
    ];
    let d = desired_set(&common(None, 1), &leases, &guard(), 100);
    assert_eq!(
        d.len(),
        2,
        "expired and guarded leases are not desired: {d:?}"
    );
    let one = &d[&Target::parse("192.0.2.1").unwrap()];
    assert_eq!(one.until, Until::At(900));
    assert_eq!(one.lease.jail, "postfix");
    let d = desired_set(&common(Some(&["sshd"]), 1), &leases, &guard(), 100);
    assert_eq!(
        d[&Target::parse("192.0.2.1").unwrap()].until,
        Until::At(500)
    );
}

#[test]
fn min_origins_wants_that_many_distinct_origins() {
    let leases = vec![
        lease("192.0.2.1", "sshd", Until::Never),
        lease("192.0.2.1", "postfix", Until::Never),
        lease_from(
            "192.0.2.2",
            "sshd",
            Origin::Peer("web-02".into()),
            Until::Never,
        ),
        lease("192.0.2.2", "sshd", Until::Never),
    ];
    let d = desired_set(&common(None, 2), &leases, &guard(), 100);
    // Two jails of one host are one origin.
    assert_eq!(
        d.keys().map(|t| t.to_string()).collect::<Vec<_>>(),
        ["192.0.2.2/32"]
    );
    assert_eq!(d.values().next().unwrap().origins, 2);
}

#[test]
fn plan_adds_extends_removes_and_is_idempotent() {
    let leases = vec![
        lease("192.0.2.1", "sshd", Until::At(900)),
        lease("192.0.2.2", "sshd", Until::At(900)),
    ];
    let d = desired_set(&common(None, 1), &leases, &guard(), 100);
    let recs = vec![
        held("192.0.2.2", Some(600), 100),
        held("192.0.2.9", Some(600), 100),
    ];
    let p = plan_sink(&d, &recs, None, opts(100, false));
    assert_eq!(
        names(&p),
        [
            "add 192.0.2.1/32 None",
            "add 192.0.2.2/32 Some(\"7\")",
            "remove 192.0.2.9/32"
        ]
    );
    // Everything in place: nothing to do.
    let recs = vec![
        held("192.0.2.1", Some(1200), 100),
        held("192.0.2.2", Some(900), 100),
    ];
    assert!(
        plan_sink(&d, &recs, None, opts(100, false))
            .steps
            .is_empty()
    );
}

#[test]
fn permanent_bans_are_renewed_at_half_life() {
    let d = desired_set(
        &common(None, 1),
        &[lease("192.0.2.1", "sshd", Until::Never)],
        &guard(),
        100,
    );
    let rec = vec![held("192.0.2.1", Some(1100), 100)];
    assert!(plan_sink(&d, &rec, None, opts(599, false)).steps.is_empty());
    assert_eq!(plan_sink(&d, &rec, None, opts(600, false)).steps.len(), 1);
    // A sink without expiry never needs renewal.
    let rec = vec![held("192.0.2.1", None, 100)];
    assert!(
        plan_sink(&d, &rec, None, opts(1_000_000, false))
            .steps
            .is_empty()
    );
}

#[test]
fn failed_work_waits_for_its_retry_time_unless_forced() {
    let d = desired_set(
        &common(None, 1),
        &[lease("192.0.2.1", "sshd", Until::At(900))],
        &guard(),
        100,
    );
    let mut r = held("192.0.2.1", None, 100);
    r.state = RecordState::Adding;
    r.next_try = 200;
    let p = plan_sink(&d, std::slice::from_ref(&r), None, opts(100, false));
    assert_eq!((p.steps.len(), p.deferred), (0, 1));
    assert_eq!(plan_sink(&d, &[r], None, opts(100, true)).steps.len(), 1);
}

#[test]
fn an_unconfirmed_add_is_removed_by_lookup() {
    let mut r = held("192.0.2.1", None, 100);
    r.state = RecordState::Adding;
    r.remote_id = None;
    let p = plan_sink(&BTreeMap::new(), &[r], None, opts(100, false));
    assert!(matches!(
        &p.steps[..],
        [Step::Remove {
            remote_id: None,
            ..
        }]
    ));
}

#[test]
fn a_self_expiring_entry_is_forgotten_not_removed_and_put_back_while_banned() {
    let expired = held("192.0.2.1", Some(50), 10);
    let so = PlanOptions {
        self_expiring: true,
        ..opts(100, false)
    };
    let p = plan_sink(&BTreeMap::new(), std::slice::from_ref(&expired), None, so);
    assert_eq!(names(&p), ["forget 192.0.2.1/32"]);
    // Still banned (the lease was extended after the entry expired): added again.
    let d = desired_set(
        &common(None, 1),
        &[lease("192.0.2.1", "sshd", Until::At(900))],
        &guard(),
        100,
    );
    assert_eq!(
        names(&plan_sink(&d, &[expired], None, so)),
        ["add 192.0.2.1/32 None"]
    );
}

#[test]
fn an_entry_somebody_else_made_is_left_not_removed() {
    let mut r = held("192.0.2.1", Some(5000), 10);
    r.foreign_owner = Some("not made by netban".into());
    let p = plan_sink(&BTreeMap::new(), &[r], None, opts(100, false));
    assert_eq!(names(&p), ["leave 192.0.2.1/32"]);
}
