//! The structure before a batch (`prepare`), what the sets hold (`held`, for repair) and
//! `netban check`, over the listings of `read`.
//!
//! `held` of netban's own table lists the whole table once (`nft -j list table`), which also
//! shows whether a chain or drop rule was deleted by hand: then it runs `ensure` again, and a
//! deleted table is made again at once (its elements come back through repair, as entries the
//! listing no longer shows). Elements of netban's own sets are `Owner::This` when they sit in
//! the set netban would put them in; in an operator's set the comment's mark says who made
//! them (`mark`).

use std::time::Instant;

use netban_core::sink::SinkError;
use netban_core::{Target, clock};

use crate::ensure::{self, Known};
use crate::json::Transaction;
use crate::listing::ListedElement;
use crate::mark;
use crate::sink::NftSink;
use netban_core::sink::{HeldEntry, Owner};

/// How far the `until=` of a comment may be from what the kernel says is left, in seconds,
/// and still be taken as the element's exact expiry.
const UNTIL_SLACK: i64 = 2;

impl NftSink {
    /// What makes the structure right, with the extra sets a batch needs: the structure
    /// commands (none with `create = false`, where the operator's sets are only verified),
    /// which the caller sends in the same transaction as its elements, and the sets that are
    /// there once it is applied.
    pub(crate) async fn prepare(
        &self,
        extra: &[crate::layout::Place],
        deadline: Instant,
    ) -> Result<(Transaction, Known), SinkError> {
        if !self.layout.create {
            return Ok((Transaction::default(), self.operator_sets(deadline).await?));
        }
        let listing = self.list_structure(deadline).await?;
        if listing.is_none() {
            tracing::info!(
                "{}: {} does not exist; making it (drop rules in {} at priority {})",
                self.name,
                self.layout.table_name(),
                self.hooks_text(),
                self.layout.priority
            );
        }
        if let Some(known) = listing
            .as_ref()
            .and_then(|l| ensure::complete(&self.layout, l, extra))
        {
            return Ok((Transaction::default(), known));
        }
        Ok(ensure::structure(&self.layout, listing.as_ref(), extra))
    }

    async fn operator_sets(&self, deadline: Instant) -> Result<Known, SinkError> {
        let listing = self.list_structure(deadline).await?.unwrap_or_default();
        let listed: Vec<_> = self
            .layout
            .operator_sets()
            .into_iter()
            .map(|(key, place)| {
                let set = listing.sets.iter().find(|s| s.name == place.set).cloned();
                (key, place, set)
            })
            .collect();
        ensure::operator_sets(&self.layout, &listed)
            .map_err(|m| SinkError::later(format!("{}: {m}", self.name)))
    }

    /// What the sets hold, for repair (see the module documentation).
    pub async fn held_entries(&self, deadline: Instant) -> Result<Vec<HeldEntry>, SinkError> {
        let now = clock::now();
        if !self.layout.create {
            let mut out = Vec::new();
            for (key, place) in self.layout.operator_sets() {
                let Some(set) = self.list_set(&place.set, deadline).await? else {
                    return Err(SinkError::later(format!(
                        "{}: set {} of {} ({key}) does not exist; define it in your ruleset or use create = true",
                        self.name,
                        place.set,
                        self.layout.table_name()
                    )));
                };
                for e in &set.elements {
                    if let Ok(target) = e.value {
                        out.push(entry(
                            target,
                            &set.name,
                            e,
                            now,
                            mark::owner(e.comment.as_deref(), &self.mark),
                        ));
                    }
                }
            }
            return Ok(out);
        }
        let Some(listing) = self.list_table(deadline).await? else {
            tracing::warn!(
                "{}: {} is gone (deleted by hand?); making it again, repair puts the bans back",
                self.name,
                self.layout.table_name()
            );
            self.reensure(deadline).await?;
            return Ok(Vec::new());
        };
        let gaps = ensure::gaps(&self.layout, &listing);
        if !gaps.is_empty() {
            tracing::warn!(
                "{}: {} is incomplete ({}); making it again",
                self.name,
                self.layout.table_name(),
                gaps.join("; ")
            );
            self.reensure(deadline).await?;
        }
        let mut out = Vec::new();
        for set in &listing.sets {
            if self.layout.own_set(&set.name).is_none() {
                continue;
            }
            for e in &set.elements {
                let Ok(target) = e.value else {
                    tracing::debug!(
                        "{}: set {} holds {:?}, which is no target",
                        self.name,
                        set.name,
                        e.value
                    );
                    continue;
                };
                // In netban's table everything is netban's, but only where netban puts it.
                let owner = match self.layout.place(&target) {
                    Ok(p) if p.set == set.name => Owner::This,
                    _ => Owner::Foreign,
                };
                out.push(entry(target, &set.name, e, now, owner));
            }
        }
        Ok(out)
    }

    /// Makes the structure right now (for `held`, which found part of it gone).
    async fn reensure(&self, deadline: Instant) -> Result<(), SinkError> {
        let mut known = self.known.lock().await;
        let (tx, k) = self.prepare(&[], deadline).await?;
        let what = format!("making {}", self.layout.table_name());
        self.nft
            .apply(&tx, false, &what, deadline)
            .await
            .map_err(|e| self.error(&e))?;
        *known = Some(k);
        Ok(())
    }

    /// One line for `netban check`: the structure is there or can be made (tried with
    /// `nft --check`, which the kernel validates, privilege included), or the problem.
    pub async fn check_sink(&self, deadline: Instant) -> Result<String, SinkError> {
        if !self.layout.create {
            let known = self.operator_sets(deadline).await?;
            return Ok(format!(
                "sets {} of {} are ready (flags timeout); netban only fills them (create = false)",
                known.sets.keys().cloned().collect::<Vec<_>>().join(", "),
                self.layout.table_name()
            ));
        }
        let listing = self.list_structure(deadline).await?;
        let (tx, known) = ensure::structure(&self.layout, listing.as_ref(), &[]);
        let what = format!("checking {} with nft --check", self.layout.table_name());
        self.nft
            .apply(&tx, true, &what, deadline)
            .await
            .map_err(|e| self.error(&e))?;
        Ok(match listing {
            None => format!(
                "{} does not exist yet; netban makes it at the first ban (checked with nft --check), drop rules in {} at priority {}",
                self.layout.table_name(),
                self.hooks_text(),
                self.layout.priority
            ),
            Some(l) if !ensure::gaps(&self.layout, &l).is_empty() => format!(
                "{} is incomplete ({}); netban completes it at the next batch (checked with nft --check)",
                self.layout.table_name(),
                ensure::gaps(&self.layout, &l).join("; ")
            ),
            Some(_) => format!(
                "{} is ready: sets {}; drop rules in {} at priority {}",
                self.layout.table_name(),
                known.sets.keys().cloned().collect::<Vec<_>>().join(", "),
                self.hooks_text(),
                self.layout.priority
            ),
        })
    }

    fn hooks_text(&self) -> String {
        self.layout
            .hooks
            .iter()
            .map(|h| h.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A listed element as a held entry. The expiry is the comment's `until=` when it agrees with
/// what the kernel says is left, else now + the seconds left.
fn entry(target: Target, set: &str, e: &ListedElement, now: i64, owner: Owner) -> HeldEntry {
    let expires = e.timeout.map(|_| {
        let left = now + i64::try_from(e.expires.unwrap_or(0)).unwrap_or(i64::MAX / 2);
        match mark::until(e.comment.as_deref()) {
            Some(u) if (u - left).abs() <= UNTIL_SLACK => u,
            _ => left,
        }
    });
    HeldEntry {
        target,
        remote_id: Some(set.to_string()),
        expires,
        owner,
        not_enforced: None,
    }
}
