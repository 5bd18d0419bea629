//! The RTBH rule operations: add (and extend), remove, list.
//!
//! - Add and extend are the same call: `POST /rules/rtbh` for the canonical address, mask and
//!   community. ExaFS answers with the existing rule's id when there is one and overwrites its
//!   expiry, so the engine always sends the latest expiry of all leases, and the answer says
//!   who made the rule it landed on (an operator's rule is reported, never later removed).
//! - Remove is `DELETE /rules/rtbh/<id>`, after checking with `GET /rules/rtbh/<id>` that the id
//!   still names this target: ExaFS on SQLite hands a deleted rule's id to the next new rule, so
//!   a remembered id may by now belong to somebody else's rule. Without a usable id the rule is
//!   looked up in the listing. Only a rule this netban made, or one it adopted, is deleted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use netban_core::owner::Owner;
use netban_core::sink::{Applied, LeaseInfo, Outcome, SinkError};
use netban_core::{Target, Until, clock};
use reqwest::Method;
use tokio::sync::OnceCell;

use crate::api::{self, NewRule, Rule};
use crate::expiry::remote_expiry;
use crate::listing_cache::NAME_TTL;
use crate::sink::ExafsSink;

/// One listing per batch, shared by the removals that need it.
pub(crate) type Listing = OnceCell<Result<(String, Vec<Rule>), SinkError>>;

/// The expiry of each rule on our community that netban did not make, by target.
pub(crate) type ForeignRules = Arc<HashMap<Target, i64>>;

impl ExafsSink {
    pub(crate) async fn add(
        &self,
        target: &Target,
        expires: Option<i64>,
        lease: &LeaseInfo,
        floor: Option<i64>,
        deadline: Instant,
    ) -> Outcome {
        let expires = expires.unwrap_or_else(|| {
            remote_expiry(
                Until::from_db(lease.until),
                clock::now(),
                self.permanent_expiry,
            )
        });
        // Somebody else's rule for this target ends later: keep their expiry.
        let expires = floor.map_or(expires, |f| expires.max(f));
        let rule = self.new_rule(target, expires, lease);
        let body = serde_json::to_value(&rule).map_err(|e| {
            SinkError::later(format!(
                "{}: cannot encode the rule for {target}: {e}",
                self.name
            ))
        })?;
        let reply = self
            .client
            .call(Method::POST, "/rules/rtbh", Some(&body), deadline)
            .await
            .map_err(|e| self.err(&e))?;
        if !matches!(reply.status, 200 | 201) {
            return Err(self.err(&reply.into_error()));
        }
        let Some(stored) = reply
            .body
            .as_ref()
            .and_then(|b| b.get("rule"))
            .and_then(Rule::from_json)
        else {
            return Err(self.err(&reply.unexpected("no rule in the answer")));
        };
        let community = self.community_name(deadline).await?;
        if !stored.is_exactly(target, &community) {
            // A 201 about another rule is not a confirmation of ours (issue 6).
            return Err(self.err(&reply.unexpected(&format!(
                "rule {} for {}/{} (community {}) instead of {target}",
                stored.id, stored.address, stored.mask, stored.community
            ))));
        }
        tracing::debug!(
            "{}: rule {} for {target}: {}",
            self.name,
            stored.id,
            reply.message()
        );
        Ok(Applied {
            remote_id: Some(stored.id.to_string()),
            expires: Some(stored.expires.unwrap_or(expires)),
            not_enforced: stored.not_enforced(),
            owner: self.comments.owner(stored.comment.as_deref()),
            absent: false,
        })
    }

    pub(crate) fn new_rule(&self, target: &Target, expires: i64, lease: &LeaseInfo) -> NewRule {
        NewRule::new(
            target,
            self.community,
            expires,
            self.comments.render(target, lease),
        )
    }

    pub(crate) async fn remove(
        &self,
        target: &Target,
        remote_id: Option<&str>,
        adopted: bool,
        listing: &Listing,
        deadline: Instant,
    ) -> Outcome {
        if let Some(id) = remote_id
            .and_then(|id| id.parse::<i64>().ok())
            .filter(|id| *id > 0)
        {
            let path = format!("/rules/rtbh/{id}?time_format=timestamp");
            let reply = self
                .client
                .call(Method::GET, &path, None, deadline)
                .await
                .map_err(|e| self.err(&e))?;
            match reply.status {
                404 => return Ok(absent()),
                200 => match reply.body.as_ref().and_then(Rule::from_json) {
                    Some(rule)
                        if rule.is_exactly(target, &self.community_name(deadline).await?) =>
                    {
                        return self.delete_if_ours(&rule, adopted, true, deadline).await;
                    }
                    Some(rule) => tracing::info!(
                        "{}: rule {id} is now {}/{} with community {}, not netban's rule for {target} (ExaFS reuses ids); looking {target} up instead",
                        self.name,
                        rule.address,
                        rule.mask,
                        rule.community
                    ),
                    None => return Err(self.err(&reply.unexpected("no rule in the answer"))),
                },
                // Not ours to see, so not ours to delete either: let DELETE say so in its words.
                401 => return self.delete(id, deadline).await,
                _ => return Err(self.err(&reply.into_error())),
            }
        }
        let (community, rules) = listing.get_or_init(|| self.list(deadline)).await.clone()?;
        let Some(rule) = rules.iter().find(|r| r.is_exactly(target, &community)) else {
            return Ok(absent());
        };
        self.delete_if_ours(rule, adopted, false, deadline).await
    }

    /// Deletes `rule` when this netban made it, or adopted it (and knows it by id, or it
    /// carries another netban state's mark); otherwise leaves it and says whose it is.
    async fn delete_if_ours(
        &self,
        rule: &Rule,
        adopted: bool,
        by_id: bool,
        deadline: Instant,
    ) -> Outcome {
        let owner = self.comments.owner(rule.comment.as_deref());
        let ours = match &owner {
            Owner::This => true,
            Owner::Host(_) => adopted,
            Owner::Foreign => adopted && by_id,
        };
        if !ours {
            return Ok(Applied {
                remote_id: Some(rule.id.to_string()),
                expires: rule.expires,
                owner,
                ..Applied::default()
            });
        }
        self.delete(rule.id, deadline).await
    }

    async fn delete(&self, id: i64, deadline: Instant) -> Outcome {
        let reply = self
            .client
            .call(Method::DELETE, &format!("/rules/rtbh/{id}"), None, deadline)
            .await
            .map_err(|e| self.err(&e))?;
        match reply.status {
            200 | 201 | 204 => Ok(Applied {
                remote_id: Some(id.to_string()),
                ..Applied::default()
            }),
            404 => Ok(absent()),
            _ => Err(self.err(&reply.into_error())),
        }
    }

    /// The name ExaFS lists our community under.
    pub(crate) async fn community_name(&self, deadline: Instant) -> Result<String, SinkError> {
        self.community_name
            .get_or_try_init(|| async {
                if let Some(c) = self.listing_cache.load()
                    && clock::now() - c.listed_at < NAME_TTL
                {
                    return Ok(c.community_name);
                }
                let reply = self
                    .client
                    .call(Method::GET, "/communities", None, deadline)
                    .await
                    .map_err(|e| self.err(&e))?;
                let offered = match reply.status {
                    200 => api::communities(reply.body.as_ref().unwrap_or(&serde_json::Value::Null)),
                    404 => Vec::new(),
                    _ => return Err(self.err(&reply.into_error())),
                };
                offered
                    .iter()
                    .find(|(id, _)| *id == i64::from(self.community))
                    .map(|(_, name)| name.clone())
                    .ok_or_else(|| {
                        let list = offered
                            .iter()
                            .map(|(id, n)| format!("{id} ({n})"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        SinkError::later(format!(
                            "{}: community {} is not offered to this API key's user (ExaFS offers: {}); set community to one of them, or fix the community's role in ExaFS > Communities",
                            self.name,
                            self.community,
                            if list.is_empty() { "none".to_string() } else { list }
                        ))
                    })
            })
            .await
            .cloned()
    }

    /// Our community's name and every RTBH rule the key can see.
    pub(crate) async fn list(&self, deadline: Instant) -> Result<(String, Vec<Rule>), SinkError> {
        let community = self.community_name(deadline).await?;
        let reply = self
            .client
            .call(Method::GET, "/rules?time_format=timestamp", None, deadline)
            .await
            .map_err(|e| self.err(&e))?;
        if reply.status != 200 {
            return Err(self.err(&reply.into_error()));
        }
        match reply.body.as_ref().and_then(api::rtbh_rules) {
            Some(rules) => Ok((community, rules)),
            None => Err(self.err(&reply.unexpected("no rtbh_any_rw list in the answer"))),
        }
    }

    /// Expiries of the rules on our community that netban did not make, listed at most once
    /// a minute (shared with other processes); `None` when the listing fails (the ban goes
    /// ahead: durability first).
    pub(crate) async fn foreign_expiries(&self, deadline: Instant) -> Option<ForeignRules> {
        let mut cached = self.foreign.lock().await;
        if let Some((at, map)) = cached.as_ref()
            && at.elapsed() < crate::sink::FOREIGN_TTL
        {
            return Some(map.clone());
        }
        if let Some(c) = self.listing_cache.load()
            && clock::now() - c.listed_at < crate::sink::FOREIGN_TTL.as_secs() as i64
        {
            let map = Arc::new(c.foreign);
            *cached = Some((Instant::now(), map.clone()));
            return Some(map);
        }
        match self.list(deadline).await {
            Ok((community, rules)) => {
                let map = Arc::new(self.foreign_map(&community, &rules));
                self.listing_cache.store(clock::now(), &community, &map);
                *cached = Some((Instant::now(), map.clone()));
                Some(map)
            }
            Err(e) => {
                tracing::debug!("{}: cannot list rules before adding: {e}", self.name);
                None
            }
        }
    }

    pub(crate) fn foreign_map(&self, community: &str, rules: &[Rule]) -> HashMap<Target, i64> {
        rules
            .iter()
            .filter(|r| self.comments.owner(r.comment.as_deref()) != Owner::This)
            .filter_map(|r| {
                let t = r.target?;
                (r.is_exactly(&t, community)).then_some((t, r.expires?))
            })
            .collect()
    }
}

fn absent() -> Applied {
    Applied {
        absent: true,
        ..Applied::default()
    }
}
