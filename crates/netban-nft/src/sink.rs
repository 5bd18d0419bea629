//! [`NftSink`]: netban's bans as elements of kernel sets, one transaction per batch.
//!
//! - `apply`: every change of a batch becomes element commands of ONE `nft -j -f -`
//!   transaction (`batch`): all of the batch is applied or none of it (`Commit::Atomic`; the
//!   engine bisects a refused batch). An element gets `timeout` = the lease's remaining time
//!   (none for a permanent ban), so the kernel lifts the ban on time even when netban is not
//!   running (`self_expiring`). An element that is already there or already gone is no error.
//! - Before its first batch, when a network of a new prefix length needs its set, and after
//!   the kernel said something is missing (the table was deleted by hand, and the batch is
//!   tried once more), the sink reads its table's structure (one cheap `nft -j -t list
//!   ruleset inet`, no elements: `read`) and, when something is missing, puts the structure
//!   commands (`ensure`) at the head of the batch's transaction. Otherwise a batch costs exactly one `nft` process, and it is
//!   always one transaction. With `create = false` each operator set is listed before the
//!   batch (`operator`).
//! - `held` lists the sets for repair; `check` tries the structure with `nft --check`.
//!
//! The driver logic is in inherent methods; the `Sink` impl at the end is a thin layer, so that
//! moving to the sink-v2 trait (`v2`) only changes that layer.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use netban_core::config::SinkEnv;
use netban_core::sink::{Applied, Batching, Change, Commit, HeldEntry, Outcome, Sink, SinkError};
use netban_core::{Target, Until, clock};

use crate::batch::{self, Item, Op, Presence};
use crate::config::NftConfig;
use crate::ensure::Known;
use crate::json::Transaction;
use crate::layout::{Layout, Place};
use crate::mark;
use crate::operator;
use crate::run::{Nft, NftError, Refusal};

/// Changes per batch: one transaction of 10,000 host elements takes about 0.2 s.
pub const MAX_BATCH: usize = 10_000;
/// Changes arriving this close together share a transaction (a burst of peer bans).
pub const BATCH_WINDOW: Duration = Duration::from_millis(100);

/// The nftables sink. See the module documentation.
pub struct NftSink {
    pub(crate) name: String,
    pub(crate) layout: Layout,
    pub(crate) nft: Nft,
    pub(crate) mark: String,
    /// The sets verified (or made) since the last time something was found missing; `None`:
    /// the next batch carries the structure commands. Held across a batch, so one process
    /// never runs two transactions at once.
    pub(crate) known: tokio::sync::Mutex<Option<Known>>,
}

impl NftSink {
    /// Builds the sink from its config; validates it, touches nothing.
    pub fn new(name: &str, config: &NftConfig, env: &SinkEnv) -> Result<NftSink, String> {
        config.validate().map_err(|e| format!("{name}: {e}"))?;
        let timeout = Duration::try_from_secs_f64(config.timeout)
            .unwrap_or(Duration::from_secs_f64(crate::config::DEFAULT_TIMEOUT));
        Ok(NftSink {
            name: name.to_string(),
            layout: Layout::new(config),
            nft: Nft::new(&config.nft, timeout),
            mark: env.mark.to_string(),
            known: tokio::sync::Mutex::new(None),
        })
    }

    pub fn batching(&self) -> Batching {
        Batching {
            max: MAX_BATCH,
            window: BATCH_WINDOW,
        }
    }

    pub fn commit(&self) -> Commit {
        Commit::Atomic
    }

    /// Elements carry kernel timeouts: they vanish at their expiry without netban.
    pub fn self_expiring(&self) -> bool {
        true
    }

    /// The element expires when the lease ends; a permanent ban has no timeout.
    pub fn expiry(&self, until: Until, _now: i64) -> Option<i64> {
        until.to_db()
    }

    /// Carries out `changes` in one transaction; one outcome per change, in order. When a
    /// target appears more than once, its last change is what the kernel ends up with, and
    /// every change of that target reports that outcome.
    pub async fn apply_batch(&self, changes: &[Change], deadline: Instant) -> Vec<Outcome> {
        let now = clock::now();
        let last: HashMap<Target, usize> = changes
            .iter()
            .enumerate()
            .map(|(i, c)| (*c.target(), i))
            .collect();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; changes.len()];
        let mut items: Vec<Pending> = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            if last.get(change.target()) != Some(&i) {
                continue;
            }
            let (item, expires) = match self.item_for(change, now) {
                Ok(x) => x,
                Err(m) => {
                    outcomes[i] = Some(Err(SinkError::later(format!("{}: {m}", self.name))));
                    continue;
                }
            };
            items.push(Pending {
                index: i,
                item,
                expires,
            });
        }
        if !items.is_empty() {
            self.run_items(&items, &mut outcomes, deadline).await;
        }
        (0..changes.len())
            .map(|i| {
                let winner = last.get(changes[i].target()).copied().unwrap_or(i);
                outcomes[i]
                    .clone()
                    .or_else(|| outcomes[winner].clone())
                    .unwrap_or_else(|| {
                        Err(SinkError::soon(format!(
                            "{}: change not attempted",
                            self.name
                        )))
                    })
            })
            .collect()
    }

    /// The element command of one change (its set, and for an add its timeout and comment),
    /// and when the entry expires.
    fn item_for(&self, change: &Change, now: i64) -> Result<(Item, Option<i64>), String> {
        let place = self.layout.place(change.target())?;
        let (op, expires) = match change {
            Change::Add { expires, lease, .. } => {
                let timeout = batch::timeout_for(expires.or(lease.until), now);
                let expires = timeout.and(expires.or(lease.until));
                let comment = mark::comment(&self.mark, lease, expires);
                (Op::Put { timeout, comment }, expires)
            }
            Change::Remove { .. } => (Op::Remove, None),
        };
        let target = *change.target();
        Ok((Item { target, place, op }, expires))
    }

    /// The transaction one change would be, for `--dry-run` (a set's structure commands,
    /// when missing, would go at its head).
    pub fn describe_change(&self, change: &Change) -> String {
        match self.item_for(change, clock::now()) {
            Err(m) => format!("nothing: {m}"),
            Ok((item, _)) => {
                let mut tx = Transaction::default();
                let set = item.place.set.clone();
                batch::push_set(&mut tx, &self.layout.table, &set, &[&item], Presence::Blind);
                format!(
                    "{} -j -f - with {}",
                    self.nft.path().display(),
                    String::from_utf8_lossy(&tx.to_json())
                )
            }
        }
    }

    async fn run_items(
        &self,
        items: &[Pending],
        outcomes: &mut [Option<Outcome>],
        deadline: Instant,
    ) {
        let started = Instant::now();
        let mut known = self.known.lock().await;
        let mut retried = false;
        loop {
            // The structure commands, when something is or may be missing, go into the same
            // transaction as the elements: a batch is always one transaction.
            let missing = missing_sets(known.as_ref(), items.iter().map(|p| &p.item.place));
            let (mut tx, fresh) = match known.as_ref() {
                Some(_) if missing.is_empty() => (Transaction::default(), None),
                _ => match self.prepare(&missing, deadline).await {
                    Ok((tx, k)) => (tx, Some(k)),
                    Err(e) => return fill(outcomes, items.iter().map(|p| p.index), &Err(e)),
                },
            };
            let Some(k) = fresh.as_ref().or(known.as_ref()) else {
                return;
            };
            // Which changes go into the transaction, by their index.
            let mut sent = vec![false; outcomes.len()];
            let mut by_set: BTreeMap<&str, Vec<&Pending>> = BTreeMap::new();
            for entry in items {
                by_set
                    .entry(entry.item.place.set.as_str())
                    .or_default()
                    .push(entry);
            }
            for (set, group) in by_set {
                let interval = k.sets.get(set).is_some_and(|s| s.interval);
                if self.layout.create {
                    let elems: Vec<&Item> = group.iter().map(|p| &p.item).collect();
                    batch::push_set(&mut tx, &self.layout.table, set, &elems, Presence::Blind);
                    group.iter().for_each(|p| sent[p.index] = true);
                    continue;
                }
                // An operator's set: list it, leave what netban did not make (`operator`).
                let listed = match self.list_owned(set, deadline).await {
                    Ok(l) => l,
                    Err(e) => {
                        fill(outcomes, group.iter().map(|p| p.index), &Err(e));
                        continue;
                    }
                };
                let pairs: Vec<(usize, &Item)> = group.iter().map(|p| (p.index, &p.item)).collect();
                let plan = operator::plan(&self.layout.table, set, interval, &pairs, &listed);
                let expiry: HashMap<usize, (&Item, Option<i64>)> = group
                    .iter()
                    .map(|p| (p.index, (&p.item, p.expires)))
                    .collect();
                for (i, settled) in plan.settled {
                    outcomes[i] = Some(match (settled, expiry.get(&i)) {
                        (Ok(note), Some((item, expires))) => {
                            tracing::info!("{}: {note}", self.name);
                            Ok(self.applied(item, *expires))
                        }
                        (Ok(note), None) => Err(SinkError::later(format!("{}: {note}", self.name))),
                        (Err(m), _) => Err(SinkError::later(format!("{}: {m}", self.name))),
                    });
                }
                let elems: Vec<&Item> = plan.send.iter().map(|(_, it)| *it).collect();
                plan.send.iter().for_each(|(i, _)| sent[*i] = true);
                batch::push_set(
                    &mut tx,
                    &self.layout.table,
                    set,
                    &elems,
                    Presence::Listed(&plan.ours),
                );
            }
            let succeed = |outcomes: &mut [Option<Outcome>]| {
                for p in items.iter().filter(|p| sent[p.index]) {
                    outcomes[p.index] = Some(Ok(self.applied(&p.item, p.expires)));
                }
            };
            if tx.is_empty() {
                // Nothing to send: every sent change was a removal of what is not there.
                return succeed(outcomes);
            }
            let count = sent.iter().filter(|s| **s).count();
            let what = format!("a transaction of {count} changes");
            match self.nft.apply(&tx, false, &what, deadline).await {
                Ok(()) => {
                    if let Some(k) = fresh {
                        *known = Some(k);
                    }
                    tracing::debug!(
                        "{}: {count} changes applied in one transaction in {} ms",
                        self.name,
                        started.elapsed().as_millis()
                    );
                    return succeed(outcomes);
                }
                Err(e) if e.refusal() == Some(Refusal::Missing) && !retried => {
                    tracing::warn!(
                        "{}: the kernel says part of {} is missing (deleted by hand?); checking it and trying the batch again",
                        self.name,
                        self.layout.table_name()
                    );
                    retried = true;
                    *known = None;
                }
                Err(e) => {
                    let err = Err(self.error(&e));
                    let which = (0..sent.len()).filter(|i| sent[*i]);
                    return fill(outcomes, which, &err);
                }
            }
        }
    }

    fn applied(&self, item: &Item, expires: Option<i64>) -> Applied {
        match item.op {
            Op::Put { .. } => Applied {
                remote_id: Some(item.place.set.clone()),
                expires,
                ..Applied::default()
            },
            Op::Remove => Applied::default(),
        }
    }

    /// The operator-facing error for a failed `nft` call.
    pub(crate) fn error(&self, e: &NftError) -> SinkError {
        let text = format!("{}: {e}", self.name);
        match e.refusal() {
            _ if e.is_transient() => SinkError::soon(text),
            Some(Refusal::Permission) => SinkError::later(format!(
                "{text}; netban needs CAP_NET_ADMIN to change the firewall: run it as root, and under systemd grant it (netban.service: CapabilityBoundingSet=CAP_NET_ADMIN and AmbientCapabilities=CAP_NET_ADMIN; see docs/nftables.md)"
            )),
            Some(Refusal::Missing) if !self.layout.create => SinkError::later(format!(
                "{text}; a set netban fills is missing from {} (create = false): define it in your ruleset",
                self.layout.table_name()
            )),
            _ => SinkError::later(text),
        }
    }
}

/// A change of the batch on its way: its index in the batch, the element command, and the
/// expiry it asks for.
struct Pending {
    index: usize,
    item: Item,
    expires: Option<i64>,
}

/// The places `items` need that `known` does not have (all of them when nothing is known).
fn missing_sets<'a>(known: Option<&Known>, places: impl Iterator<Item = &'a Place>) -> Vec<Place> {
    let mut out: Vec<Place> = Vec::new();
    for p in places {
        if known.is_some_and(|k| k.has(p)) || out.contains(p) {
            continue;
        }
        out.push(p.clone());
    }
    out
}

fn fill(outcomes: &mut [Option<Outcome>], which: impl Iterator<Item = usize>, outcome: &Outcome) {
    for i in which {
        outcomes[i] = Some(outcome.clone());
    }
}

#[async_trait]
impl Sink for NftSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn batching(&self) -> Batching {
        NftSink::batching(self)
    }

    fn commit(&self) -> Commit {
        NftSink::commit(self)
    }

    fn expiry_for(&self, until: Until, now: i64) -> Option<i64> {
        self.expiry(until, now)
    }

    fn self_expiring(&self) -> bool {
        NftSink::self_expiring(self)
    }

    fn describe(&self, change: &Change) -> String {
        self.describe_change(change)
    }

    async fn apply(&self, changes: &[Change], deadline: Instant) -> Vec<Outcome> {
        self.apply_batch(changes, deadline).await
    }

    async fn held(&self, deadline: Instant) -> Result<Option<Vec<HeldEntry>>, SinkError> {
        Ok(Some(self.held_entries(deadline).await?))
    }

    async fn check(&self, deadline: Instant) -> Result<String, SinkError> {
        self.check_sink(deadline).await
    }
}
