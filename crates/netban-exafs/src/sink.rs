//! [`ExafsSink`]: the [`Sink`] that turns netban's changes into ExaFS RTBH rules.
//!
//! A batch shares one token and runs `concurrency` requests at a time, outcomes in order. The
//! calls themselves are in [`crate::rules`]; who made a rule is read from its comment
//! ([`crate::comment`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use netban_core::config::{Secret, SinkEnv, redact_userinfo};
use netban_core::owner::Owner;
use netban_core::sink::{Batching, Change, HeldEntry, Outcome, Sink, SinkError};
use netban_core::template::Template;
use netban_core::{Target, Until, clock};
use tokio::sync::OnceCell;

use crate::api::Rule;
use crate::client::Client;
use crate::comment::Comments;
use crate::config::ExafsConfig;
use crate::error::{ApiError, ExafsError};
use crate::expiry::remote_expiry;
use crate::listing_cache::ListingCache;
use crate::rules::{ForeignRules, Listing};
use crate::token::TokenCache;

/// Changes per [`Sink::apply`] call.
pub const MAX_BATCH: usize = 64;

/// How long a listing of foreign rules is trusted before a new ban lists again.
pub(crate) const FOREIGN_TTL: Duration = Duration::from_secs(60);

/// The ExaFS RTBH sink. See the module documentation.
pub struct ExafsSink {
    pub(crate) name: String,
    pub(crate) community: u32,
    pub(crate) comments: Comments,
    pub(crate) permanent_expiry: i64,
    concurrency: usize,
    pub(crate) client: Client,
    /// The community's name (rules list it by name, not id), looked up once.
    pub(crate) community_name: OnceCell<String>,
    /// Expiry of rules on our community that netban did not make, by target, and when it
    /// was listed: a new ban never shortens them (ExaFS would overwrite their expiry).
    pub(crate) foreign: tokio::sync::Mutex<Option<(Instant, ForeignRules)>>,
    /// The same, shared with the other netban processes through `state_dir`.
    pub(crate) listing_cache: ListingCache,
}

impl ExafsSink {
    /// Builds the sink from its config; reads `api_key_file` and `ca_file`, no network I/O.
    pub fn new(name: &str, config: &ExafsConfig, env: &SinkEnv) -> Result<ExafsSink, ExafsError> {
        let key = read_key(config)?;
        let ca = match &config.ca_file {
            Some(path) => Some((
                path.as_path(),
                std::fs::read(path).map_err(|source| ExafsError::CaFile {
                    path: path.clone(),
                    source,
                })?,
            )),
            None => None,
        };
        let template = Template::parse(&config.comment).map_err(ExafsError::Comment)?;
        let timeout = Duration::try_from_secs_f64(config.timeout).unwrap_or(Duration::from_secs(5));
        let cache = TokenCache::new(&env.state_dir, name, &config.url, key.expose());
        let client = Client::new(
            name,
            &config.url,
            &key,
            ca.as_ref().map(|(p, pem)| (*p, pem.as_slice())),
            timeout,
            config.concurrency,
            cache,
        )?;
        Ok(ExafsSink {
            name: name.to_string(),
            community: config.community,
            comments: Comments::new(template, &env.host_id, env.mark.clone()).adopting(
                config
                    .adopt_comments
                    .iter()
                    .filter_map(|p| crate::comment::Pattern::parse(p).ok())
                    .collect(),
            ),
            permanent_expiry: config.permanent_expiry,
            concurrency: config.concurrency.max(1),
            client,
            community_name: OnceCell::new(),
            foreign: tokio::sync::Mutex::new(None),
            listing_cache: ListingCache::new(&env.state_dir, name, config.community),
        })
    }

    /// The comment ExaFS stores for a rule made for `target` and `lease`.
    pub fn comment_for(&self, target: &Target, lease: &netban_core::LeaseInfo) -> String {
        self.comments.render(target, lease)
    }

    pub(crate) fn err(&self, e: &ApiError) -> SinkError {
        e.to_sink_error(&self.name)
    }

    async fn apply_one(
        &self,
        change: &Change,
        listing: &Listing,
        foreign: Option<&HashMap<Target, i64>>,
        deadline: Instant,
    ) -> Outcome {
        if deadline.saturating_duration_since(Instant::now()) < Duration::from_millis(20) {
            return Err(SinkError::soon(format!(
                "{}: deadline reached before {} {} was sent; it stays pending",
                self.name,
                change.verb(),
                change.target()
            )));
        }
        match change {
            Change::Add {
                target,
                expires,
                lease,
                remote_id,
            } => {
                // Only a first add can meet a rule netban did not make.
                let floor = match remote_id {
                    None => foreign.and_then(|f| f.get(target).copied()),
                    Some(_) => None,
                };
                self.add(target, *expires, lease, floor, deadline).await
            }
            Change::Remove {
                target,
                remote_id,
                adopted,
                ..
            } => {
                self.remove(target, remote_id.as_deref(), *adopted, listing, deadline)
                    .await
            }
        }
    }
}

#[async_trait]
impl Sink for ExafsSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn batching(&self) -> Batching {
        Batching {
            max: MAX_BATCH,
            window: Duration::ZERO,
        }
    }

    fn expiry_for(&self, until: Until, now: i64) -> Option<i64> {
        Some(remote_expiry(until, now, self.permanent_expiry))
    }

    /// A rule whose expiry passed is withdrawn by ExaFS itself: no DELETE is needed for it.
    fn self_expiring(&self) -> bool {
        true
    }

    fn describe(&self, change: &Change) -> String {
        let api = redact_userinfo(self.client.api());
        match change {
            Change::Add {
                target,
                expires,
                lease,
                ..
            } => {
                let expires = expires.unwrap_or_else(|| {
                    remote_expiry(
                        Until::from_db(lease.until),
                        clock::now(),
                        self.permanent_expiry,
                    )
                });
                let body = serde_json::to_string(&self.new_rule(target, expires, lease))
                    .unwrap_or_default();
                format!("POST {api}/rules/rtbh {body}")
            }
            Change::Remove {
                target,
                remote_id: Some(id),
                ..
            } => format!(
                "GET {api}/rules/rtbh/{id}, then DELETE {api}/rules/rtbh/{id} ({target}) if the rule is netban's"
            ),
            Change::Remove { target, .. } => {
                format!(
                    "GET {api}/rules (look up {target}), then DELETE {api}/rules/rtbh/<id> if the rule is netban's"
                )
            }
        }
    }

    async fn apply(&self, changes: &[Change], deadline: Instant) -> Vec<Outcome> {
        if changes.is_empty() {
            return Vec::new();
        }
        // One token for the whole batch; a key problem fails every change with the same words.
        if let Err(e) = self.client.token(deadline).await {
            let err = self.err(&e);
            return changes.iter().map(|_| Err(err.clone())).collect();
        }
        let listing = Listing::new();
        let new_targets = changes.iter().any(|c| {
            matches!(
                c,
                Change::Add {
                    remote_id: None,
                    ..
                }
            )
        });
        let foreign = if new_targets {
            self.foreign_expiries(deadline).await
        } else {
            None
        };
        // Collected first: a lazy `map` inside the stream trips the compiler's higher-ranked
        // lifetime check under async_trait.
        let calls: Vec<_> = changes
            .iter()
            .map(|c| self.apply_one(c, &listing, foreign.as_deref(), deadline))
            .collect();
        futures::stream::iter(calls)
            .buffered(self.concurrency)
            .collect()
            .await
    }

    async fn held(&self, deadline: Instant) -> Result<Option<Vec<HeldEntry>>, SinkError> {
        let (community, rules) = self.list(deadline).await?;
        let map = Arc::new(self.foreign_map(&community, &rules));
        self.listing_cache.store(clock::now(), &community, &map);
        *self.foreign.lock().await = Some((Instant::now(), map));
        Ok(Some(held_entries(&rules, &community, &self.comments)))
    }

    async fn check(&self, deadline: Instant) -> Result<String, SinkError> {
        let token = self
            .client
            .fresh_token(deadline)
            .await
            .map_err(|e| self.err(&e))?;
        let base = redact_userinfo(self.client.api().trim_end_matches("/api/v3"));
        let now = clock::now();
        let until = match token.expires() {
            Some(exp) if exp <= now => {
                return Err(SinkError::later(format!(
                    "{}: ExaFS at {base} issues tokens that are already expired (exp {}): ExaFS reads its local time as UTC; run ExaFS with TZ=UTC and check its clock",
                    self.name,
                    clock::format_utc(exp)
                )));
            }
            Some(exp) => format!("token valid until {} UTC", &clock::format_utc(exp)[11..16]),
            None => "token without expiry".to_string(),
        };
        let user = token.user();
        if user.as_ref().is_some_and(|u| u.readonly) {
            return Err(SinkError::later(format!(
                "{}: the API key is read-only; create a read-write key in ExaFS > API keys",
                self.name
            )));
        }
        let (community, rules) = self.list(deadline).await?;
        let entries = held_entries(&rules, &community, &self.comments);
        let mine = entries.iter().filter(|e| e.owner == Owner::This).count();
        let host = self.comments.mark().host().to_string();
        let this_host = entries
            .iter()
            .filter(|e| e.owner == Owner::Host(host.clone()))
            .count();
        let other_hosts = entries
            .iter()
            .filter(|e| matches!(&e.owner, Owner::Host(h) if *h != host))
            .count();
        let foreign = entries.len() - mine - this_host - other_hosts;
        let who = user
            .map(|u| format!(" as {} ({})", u.uuid, u.org))
            .unwrap_or_default();
        Ok(format!(
            "ExaFS {base} reachable{who}, {until}, community {} is {community}; {} RTBH rules on it: {mine} by this netban (mark {}), {this_host} by an earlier netban state of host {host} (old mark or another state: adopted when banned again, never deleted), {other_hosts} by netban on other hosts, {foreign} not by netban (the old exafs_action.py, operators: never touched)",
            self.community,
            entries.len(),
            self.comments.mark()
        ))
    }
}

/// The rules of our community as [`HeldEntry`]s. When several rules name one target
/// (`2001:db8::5` and `2001:DB8::5` are different rules to ExaFS), the one netban would post
/// comes first; exact copies follow (the engine removes the copies this netban made).
pub(crate) fn held_entries(rules: &[Rule], community: &str, comments: &Comments) -> Vec<HeldEntry> {
    // Per target: the entry that stands for it (an exact rule preferred), then any further
    // exact rules. ExaFS checks for an existing rule and inserts without a lock, so two POSTs
    // racing (a killed process's request still running in ExaFS and its successor's) can
    // make two.
    let mut out: Vec<(bool, HeldEntry, Vec<HeldEntry>)> = Vec::new();
    for rule in rules.iter().filter(|r| r.community == community) {
        let Some(target) = rule.target else { continue };
        let exact = rule.is_exactly(&target, community);
        let entry = HeldEntry {
            target,
            remote_id: Some(rule.id.to_string()),
            expires: rule.expires,
            owner: comments.owner(rule.comment.as_deref()),
            not_enforced: rule.not_enforced(),
        };
        match out.iter_mut().find(|(_, e, _)| e.target == target) {
            Some(slot) if exact && !slot.0 => {
                slot.1 = entry;
                slot.0 = true;
            }
            Some(slot) if exact => slot.2.push(entry),
            Some(_) => {}
            None => out.push((exact, entry, Vec::new())),
        }
    }
    out.into_iter()
        .flat_map(|(_, e, extra)| std::iter::once(e).chain(extra))
        .collect()
}

/// The API key from `api_key`, or the first non-empty line of `api_key_file`, trimmed.
fn read_key(config: &ExafsConfig) -> Result<Secret, ExafsError> {
    if let Some(k) = &config.api_key {
        let k = k.expose().trim();
        return if k.is_empty() {
            Err(ExafsError::NoKey)
        } else {
            Ok(Secret::new(k))
        };
    }
    let Some(path) = &config.api_key_file else {
        return Err(ExafsError::NoKey);
    };
    let text = read_small(path).map_err(|source| ExafsError::KeyFile {
        path: path.clone(),
        source,
    })?;
    match text.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(k) => Ok(Secret::new(k)),
        None => Err(ExafsError::KeyFileEmpty { path: path.clone() }),
    }
}

/// Reads a key file, at most 64 KiB (a key is a line), warning when others may read it.
fn read_small(path: &PathBuf) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let f = std::fs::File::open(path)?;
    if let Ok(m) = f.metadata()
        && m.permissions().mode() & 0o044 != 0
    {
        tracing::warn!(
            "key file {} is readable by group or others (mode {:o}); run: chmod 600 {}",
            path.display(),
            m.permissions().mode() & 0o777,
            path.display()
        );
    }
    let mut text = String::new();
    f.take(64 * 1024).read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests;
