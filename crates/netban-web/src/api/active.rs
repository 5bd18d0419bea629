//! `GET /api/v1/active`: what is blocked now. Every live target with its leases (jail,
//! origin, since, until) and, per sink, what netban believes it holds: in place (with the
//! remote id and expiry), pending, failing (attempts and the last error), being removed.
//! Targets whose leases ended but whose removal is still pending are listed too, with no
//! lease: they are still blocked somewhere.
//!
//! It is netban's own picture ([`netban_core::view::sinks`] over the state database), no
//! sink is asked. Searching, sorting and paging are done here, so a phone showing 100 rows
//! of 20,000 targets gets 100 rows (`q`, `state`, `sort`, `order`, `offset`, `limit`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use netban_core::config::redact_userinfo;
use netban_core::view::{self, Entry};
use netban_core::{Lease, Target, Until};
use serde::Serialize;

use super::{ApiError, JsonBody, RawQuery, int_param, no_store, query};
use crate::{App, Backend};

/// Most rows of one page.
const MAX_LIMIT: u32 = 5000;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct LeaseRow {
    pub jail: String,
    pub origin: String,
    pub since: i64,
    /// Unix seconds; `null` when permanent.
    pub until: Option<i64>,
    pub bantime: i64,
}

/// One target on one sink.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SinkState {
    /// `in_place`, `not_enforced`, `pending`, `failing`, `removing`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_try: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_enforced: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreign_owner: Option<String>,
}

/// How bad a state is: a target's `state` is the worst of its sinks'.
fn rank(state: &str) -> u8 {
    match state {
        "failing" => 5,
        "not_enforced" => 4,
        "pending" => 3,
        "removing" => 2,
        "in_place" => 1,
        _ => 0,
    }
}

fn sink_state(e: &Entry) -> SinkState {
    let blank = SinkState {
        state: "in_place",
        remote_id: None,
        expires: None,
        since: None,
        attempts: None,
        next_try: None,
        error: None,
        not_enforced: None,
        adopted: false,
        foreign_owner: None,
    };
    match e {
        Entry::InPlace {
            remote_id,
            expires,
            not_enforced,
            adopted,
            foreign_owner,
        } => SinkState {
            state: if not_enforced.is_some() {
                "not_enforced"
            } else {
                "in_place"
            },
            remote_id: remote_id.clone(),
            expires: *expires,
            not_enforced: not_enforced.as_deref().map(redact_userinfo),
            adopted: *adopted,
            foreign_owner: foreign_owner.clone(),
            ..blank
        },
        Entry::Pending {
            since,
            attempts,
            next_try,
            error,
        }
        | Entry::Removing {
            since,
            attempts,
            next_try,
            error,
        } => SinkState {
            state: match (e, *attempts > 0) {
                (Entry::Removing { .. }, _) => "removing",
                (_, true) => "failing",
                _ => "pending",
            },
            since: Some(*since),
            attempts: Some(*attempts),
            next_try: (*next_try > 0).then_some(*next_try),
            error: error.as_deref().map(redact_userinfo),
            ..blank
        },
    }
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Item {
    pub target: String,
    pub leases: Vec<LeaseRow>,
    /// The earliest start of its leases.
    pub since: Option<i64>,
    /// The latest end of its leases; `null` when permanent or when no lease is left.
    pub until: Option<i64>,
    pub permanent: bool,
    /// The worst state over its sinks (`none` when no sink takes it).
    pub state: &'static str,
    pub sinks: BTreeMap<String, SinkState>,
    #[serde(skip)]
    key: Target,
}

/// Every row, before searching and paging.
pub(crate) struct Picture {
    pub sinks: Vec<String>,
    pub items: Vec<Item>,
}

/// Reads the leases and the sinks' records (blocking: the state database).
pub(crate) fn picture(b: &dyn Backend, now: i64) -> Result<Picture, ApiError> {
    let unreadable = |e: netban_core::store::StoreError| {
        ApiError::unavailable(format!(
            "the state database cannot be read ({e}); check the daemon's log"
        ))
    };
    let store = b.store();
    let engine = b.engine();
    let leases: Vec<Lease> = store.live_leases(now, None).map_err(unreadable)?;
    let views = view::sinks(&engine, now).map_err(unreadable)?;
    let mut by_target: BTreeMap<Target, Item> = BTreeMap::new();
    let new_item = |t: Target| Item {
        target: t.to_string(),
        leases: Vec::new(),
        since: None,
        until: None,
        permanent: false,
        state: "none",
        sinks: BTreeMap::new(),
        key: t,
    };
    for l in &leases {
        let it = by_target
            .entry(l.target)
            .or_insert_with(|| new_item(l.target));
        it.leases.push(LeaseRow {
            jail: l.jail.clone(),
            origin: l.origin.as_str().to_string(),
            since: l.since,
            until: l.until.to_db(),
            bantime: l.bantime,
        });
        it.since = Some(it.since.map_or(l.since, |s| s.min(l.since)));
        match l.until {
            Until::Never => it.permanent = true,
            Until::At(t) => it.until = Some(it.until.map_or(t, |u| u.max(t))),
        }
    }
    for v in &views {
        for (t, e) in &v.entries {
            let it = by_target.entry(*t).or_insert_with(|| new_item(*t));
            it.sinks.insert(v.name.clone(), sink_state(e));
        }
    }
    let items = by_target
        .into_values()
        .map(|mut it| {
            if it.permanent {
                it.until = None;
            }
            it.state = it
                .sinks
                .values()
                .map(|s| s.state)
                .max_by_key(|s| rank(s))
                .unwrap_or("none");
            it
        })
        .collect();
    Ok(Picture {
        sinks: views.into_iter().map(|v| v.name).collect(),
        items,
    })
}

/// Whether `it` matches every word of the search: a substring of its target, jails,
/// origins, sink names and states; an address also matches the networks that cover it.
fn matches(it: &Item, words: &[(String, Option<Target>)]) -> bool {
    if words.is_empty() {
        return true;
    }
    let mut h = it.target.clone();
    for l in &it.leases {
        for part in [" ", &l.jail, " ", &l.origin] {
            h.push_str(part);
        }
    }
    for (name, s) in &it.sinks {
        for part in [" ", name, " ", name, ":", s.state] {
            h.push_str(part);
        }
    }
    h.push(' ');
    h.push_str(it.state);
    let h = h.to_lowercase();
    words
        .iter()
        .all(|(w, t)| h.contains(w.as_str()) || t.is_some_and(|t| it.key.overlaps(&t.net())))
}

pub(crate) async fn active(State(app): State<Arc<App>>, q: RawQuery) -> Response {
    let result = async {
        let q = query(q)?;
        let offset = int_param(&q, "offset", 0, 0, u32::MAX)? as usize;
        let limit = int_param(&q, "limit", 100, 1, MAX_LIMIT)? as usize;
        let sort = q.get("sort").map_or("since", String::as_str).to_string();
        if !["target", "since", "until", "state", "jail"].contains(&sort.as_str()) {
            return Err(ApiError::bad(
                "sort must be one of target, since, until, state, jail",
            ));
        }
        let desc = match q.get("order").map(String::as_str) {
            None => sort != "target" && sort != "jail",
            Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(ApiError::bad("order must be asc or desc")),
        };
        let state = q.get("state").filter(|s| !s.is_empty()).cloned();
        if let Some(s) = &state
            && rank(s) == 0
            && s != "none"
        {
            return Err(ApiError::bad(
                "state must be one of in_place, not_enforced, pending, failing, removing, none",
            ));
        }
        let words: Vec<(String, Option<Target>)> = q
            .get("q")
            .map(|s| s.chars().take(200).collect::<String>())
            .unwrap_or_default()
            .split_whitespace()
            .take(8)
            .map(|w| (w.to_lowercase(), Target::parse(w).ok()))
            .collect();
        let now = netban_core::clock::now();
        let pic = crate::blocking(app.backend.clone(), move |b| picture(b, now))
            .await
            .map_err(|_| ApiError::internal())??;
        let total = pic.items.len();
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for it in &pic.items {
            *counts.entry(it.state).or_default() += 1;
        }
        let mut rows: Vec<Item> = pic
            .items
            .into_iter()
            .filter(|it| state.as_deref().is_none_or(|s| it.state == s))
            .filter(|it| matches(it, &words))
            .collect();
        sort_rows(&mut rows, &sort, desc);
        let matched = rows.len();
        let page: Vec<Item> = rows.into_iter().skip(offset).take(limit).collect();
        Ok(JsonBody::value(&serde_json::json!({
            "now": now,
            "total": total,
            "matched": matched,
            "offset": offset,
            "limit": limit,
            "sort": sort,
            "order": if desc { "desc" } else { "asc" },
            "sinks": pic.sinks,
            "counts": counts,
            "items": page,
        })))
    }
    .await;
    no_store(match result {
        Ok(b) => b.into_response(),
        Err(e) => e.into_response(),
    })
}

fn sort_rows(rows: &mut [Item], sort: &str, desc: bool) {
    let until = |it: &Item| {
        if it.permanent {
            i64::MAX
        } else {
            it.until.unwrap_or(i64::MIN)
        }
    };
    rows.sort_by(|a, b| {
        let o = match sort {
            "since" => a.since.cmp(&b.since),
            "until" => until(a).cmp(&until(b)),
            "state" => rank(a.state).cmp(&rank(b.state)),
            "jail" => {
                let j = |it: &Item| it.leases.iter().map(|l| l.jail.clone()).min();
                j(a).cmp(&j(b))
            }
            _ => std::cmp::Ordering::Equal,
        };
        let o = if desc { o.reverse() } else { o };
        o.then_with(|| a.key.cmp(&b.key))
    });
}
