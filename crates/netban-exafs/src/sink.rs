//! [`ExafsSink`]: the [`Sink`] that turns netban's changes into ExaFS RTBH rules.
//!
//! - Add and extend are the same call: `POST /rules/rtbh` for the canonical address, mask and
//!   community. ExaFS answers with the existing rule's id when there is one and overwrites its
//!   expiry, so the reconcile engine always sends the latest expiry of all leases.
//! - Remove is `DELETE /rules/rtbh/<id>`, after checking with `GET /rules/rtbh/<id>` that the id
//!   still names this target: ExaFS on SQLite hands a deleted rule's id to the next new rule, so
//!   a remembered id may by now belong to somebody else's rule. Without a usable id the rule is
//!   looked up in the listing.
//! - A batch shares one token and runs `concurrency` requests at a time, outcomes in order.
//!
//! Which rules are netban's is decided by [`crate::mark`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use netban_core::config::ExafsConfig;
use netban_core::sink::{Applied, Change, HeldEntry, LeaseInfo, Outcome, Sink, SinkError};
use netban_core::template::{Template, Vars};
use netban_core::{Target, Until, clock};
use reqwest::Method;
use tokio::sync::OnceCell;

use crate::api::{self, NewRule, Rule};
use crate::client::Client;
use crate::error::{ApiError, ExafsError};
use crate::listing_cache::{ListingCache, NAME_TTL};
use crate::mark::{Mark, exafs_text};
use crate::token::TokenCache;

/// ExaFS rounds expiry to 10 minutes; netban asks for a multiple of this, never less than one
/// step ahead (a time in the past makes a withdrawn rule).
pub const EXPIRY_STEP: i64 = 600;
/// Changes per [`Sink::apply`] call.
pub const MAX_BATCH: usize = 64;

/// The ExaFS RTBH sink. See the module documentation.
pub struct ExafsSink {
    name: String,
    host: String,
    community: u32,
    comment: Template,
    mark: Mark,
    permanent_expiry: i64,
    concurrency: usize,
    client: Client,
    /// The community's name (rules list it by name, not id), looked up once.
    community_name: OnceCell<String>,
    /// Expiry of rules on our community that netban did not make, by target, and when it
    /// was listed: a new ban never shortens them (ExaFS would overwrite their expiry).
    foreign: tokio::sync::Mutex<Option<(Instant, ForeignRules)>>,
    /// The same, shared with the other netban processes through `state_dir`.
    listing_cache: ListingCache,
}

/// The expiry of each rule on our community that netban did not make, by target.
type ForeignRules = Arc<HashMap<Target, i64>>;

/// How long a listing of foreign rules is trusted before a new ban lists again.
const FOREIGN_TTL: Duration = Duration::from_secs(60);

impl ExafsSink {
    /// Builds the sink from its config; reads `api_key_file` and `ca_file`, no network I/O.
    pub fn new(
        config: &ExafsConfig,
        state_dir: &Path,
        host_id: &str,
    ) -> Result<ExafsSink, ExafsError> {
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
        let comment = Template::parse(&config.comment).map_err(ExafsError::Comment)?;
        let timeout = Duration::try_from_secs_f64(config.timeout).unwrap_or(Duration::from_secs(5));
        let cache = TokenCache::new(state_dir, &config.name, &config.url, key.expose());
        let client = Client::new(
            &config.name,
            &config.url,
            &key,
            ca.as_ref().map(|(p, pem)| (*p, pem.as_slice())),
            timeout,
            config.concurrency,
            cache,
        )?;
        Ok(ExafsSink {
            name: config.name.clone(),
            host: host_id.to_string(),
            community: config.community,
            mark: Mark::from_template(&config.comment, host_id),
            comment,
            permanent_expiry: config.permanent_expiry,
            concurrency: config.concurrency.max(1),
            client,
            community_name: OnceCell::new(),
            foreign: tokio::sync::Mutex::new(None),
            listing_cache: ListingCache::new(state_dir, &config.name, config.community),
        })
    }

    /// The comment ExaFS stores for a rule made for `target` and `lease`.
    pub fn comment_for(&self, target: &Target, lease: &LeaseInfo) -> String {
        self.comment.render(&Vars::new(target, lease, &self.host))
    }

    /// True when `comment` (as ExaFS stores it) says the rule is this host's netban rule.
    pub fn is_marked(&self, comment: Option<&str>) -> bool {
        comment.is_some_and(|c| self.mark.matches(c))
    }

    fn err(&self, e: &ApiError) -> SinkError {
        e.to_sink_error(&self.name)
    }

    async fn add(
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
        let rule = NewRule::new(
            target,
            self.community,
            expires,
            self.comment_for(target, lease),
        );
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
        tracing::debug!(
            "{}: rule {} for {target}: {}",
            self.name,
            stored.id,
            reply.message()
        );
        if !self.owns(&stored, target, lease) {
            // ExaFS matched a rule somebody else made (an operator, another host on the same
            // community) and overwrote its expiry with ours. It cannot be undone from here;
            // say so, and never delete that rule (see `remove`).
            tracing::warn!(
                "{}: {target} already had rule {} ({:?}) that netban did not make; ExaFS set its expiry to netban's, and netban will leave the rule in place when its ban ends",
                self.name,
                stored.id,
                stored.comment.as_deref().unwrap_or("")
            );
        }
        Ok(Applied {
            remote_id: Some(stored.id.to_string()),
            expires: Some(stored.expires.unwrap_or(expires)),
            not_enforced: stored.not_enforced(),
        })
    }

    async fn remove(
        &self,
        target: &Target,
        remote_id: Option<&str>,
        lease: &LeaseInfo,
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
                404 => return Ok(Applied::default()),
                200 => match reply.body.as_ref().and_then(Rule::from_json) {
                    Some(rule)
                        if rule.is_exactly(target, &self.community_name(deadline).await?) =>
                    {
                        if !self.owns(&rule, target, lease) {
                            return Ok(self.leave_foreign(&rule, target));
                        }
                        return self.delete(rule.id, deadline).await;
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
            return Ok(Applied::default());
        };
        if !self.owns(rule, target, lease) {
            return Ok(self.leave_foreign(rule, target));
        }
        self.delete(rule.id, deadline).await
    }

    /// True when `rule` carries this host's mark or the exact comment netban sent for it.
    /// ExaFS matches a POST to an existing rule whoever made it, so a rule netban "added" may
    /// be an operator's or another host's: only ours is ever deleted.
    fn owns(&self, rule: &Rule, target: &Target, lease: &LeaseInfo) -> bool {
        self.is_marked(rule.comment.as_deref())
            || rule.comment.as_deref()
                == Some(exafs_text(&self.comment_for(target, lease)).as_str())
    }

    fn leave_foreign(&self, rule: &Rule, target: &Target) -> Applied {
        tracing::info!(
            "{}: leaving rule {} for {target} in place: its comment does not carry netban's mark, so netban did not create it",
            self.name,
            rule.id
        );
        Applied::default()
    }

    async fn delete(&self, id: i64, deadline: Instant) -> Outcome {
        let reply = self
            .client
            .call(Method::DELETE, &format!("/rules/rtbh/{id}"), None, deadline)
            .await
            .map_err(|e| self.err(&e))?;
        match reply.status {
            200 | 201 | 204 | 404 => Ok(Applied {
                remote_id: Some(id.to_string()),
                ..Applied::default()
            }),
            _ => Err(self.err(&reply.into_error())),
        }
    }

    /// The name ExaFS lists our community under.
    async fn community_name(&self, deadline: Instant) -> Result<String, SinkError> {
        self.community_name
            .get_or_try_init(|| async {
                if let Some(c) = self.listing_cache.load()
                    && clock::now() - c.listed_at < NAME_TTL
                {
                    return Ok(c.community_name);
                }
                let reply = self.client.call(Method::GET, "/communities", None, deadline).await.map_err(|e| self.err(&e))?;
                let offered = match reply.status {
                    200 => api::communities(reply.body.as_ref().unwrap_or(&serde_json::Value::Null)),
                    404 => Vec::new(),
                    _ => return Err(self.err(&reply.into_error())),
                };
                offered.iter().find(|(id, _)| *id == i64::from(self.community)).map(|(_, name)| name.clone()).ok_or_else(|| {
                    let list = offered.iter().map(|(id, n)| format!("{id} ({n})")).collect::<Vec<_>>().join(", ");
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
    async fn list(&self, deadline: Instant) -> Result<(String, Vec<Rule>), SinkError> {
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
    /// a minute; `None` when the listing fails (the ban goes ahead: durability first).
    async fn foreign_expiries(&self, deadline: Instant) -> Option<ForeignRules> {
        let mut cached = self.foreign.lock().await;
        if let Some((at, map)) = cached.as_ref()
            && at.elapsed() < FOREIGN_TTL
        {
            return Some(map.clone());
        }
        // Another process listed within the minute: use its answer.
        let ttl = FOREIGN_TTL.as_secs() as i64;
        if let Some(c) = self.listing_cache.load() {
            let age = clock::now() - c.listed_at;
            if (0..ttl).contains(&age) {
                let map = Arc::new(c.foreign);
                let listed = Instant::now()
                    .checked_sub(Duration::from_secs(age as u64))
                    .unwrap_or_else(Instant::now);
                *cached = Some((listed, map.clone()));
                return Some(map);
            }
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

    fn foreign_map(&self, community: &str, rules: &[Rule]) -> HashMap<Target, i64> {
        rules
            .iter()
            .filter(|r| !self.is_marked(r.comment.as_deref()))
            .filter_map(|r| {
                let t = r.target?;
                (r.is_exactly(&t, community)).then_some((t, r.expires?))
            })
            .collect()
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
                lease,
            } => {
                self.remove(target, remote_id.as_deref(), lease, listing, deadline)
                    .await
            }
        }
    }
}

/// One listing per batch, shared by the removals that need it.
type Listing = OnceCell<Result<(String, Vec<Rule>), SinkError>>;

#[async_trait]
impl Sink for ExafsSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    fn expiry_for(&self, until: Until, now: i64) -> Option<i64> {
        Some(remote_expiry(until, now, self.permanent_expiry))
    }

    fn renew_before(&self) -> i64 {
        self.permanent_expiry / 2
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
        Ok(Some(held_entries(&rules, &community, |c| {
            self.is_marked(c)
        })))
    }

    async fn check(&self, deadline: Instant) -> Result<String, SinkError> {
        let token = self
            .client
            .fresh_token(deadline)
            .await
            .map_err(|e| self.err(&e))?;
        let base = self.client.api().trim_end_matches("/api/v3");
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
        let entries = held_entries(&rules, &community, |c| self.is_marked(c));
        let ours = entries.iter().filter(|e| e.marked).count();
        let who = user
            .map(|u| format!(" as {} ({})", u.uuid, u.org))
            .unwrap_or_default();
        Ok(format!(
            "ExaFS {base} reachable{who}, {until}, community {} is {community}, {} RTBH rules ({ours} by netban on this host)",
            self.community,
            rules.len()
        ))
    }
}

/// The remote expiry for leases ending at `until`: at least one step ahead, rounded up to the
/// next 10-minute mark; permanent bans get `permanent` seconds and are renewed by the engine.
pub fn remote_expiry(until: Until, now: i64, permanent: i64) -> i64 {
    let want = match until {
        Until::At(u) => u.max(now.saturating_add(EXPIRY_STEP)),
        Until::Never => now.saturating_add(permanent),
    };
    match want.rem_euclid(EXPIRY_STEP) {
        0 => want,
        r => want.saturating_add(EXPIRY_STEP - r),
    }
}

/// The rules of our community as [`HeldEntry`]s, one per target. When several rules name one
/// target (`2001:db8::5` and `2001:DB8::5` are different rules to ExaFS), the one netban would
/// post is kept.
fn held_entries(
    rules: &[Rule],
    community: &str,
    marked: impl Fn(Option<&str>) -> bool,
) -> Vec<HeldEntry> {
    // Per target: the entry that stands for it (an exact rule preferred), then any further
    // exact rules carrying our mark. ExaFS checks for an existing rule and inserts without a
    // lock, so two POSTs racing (a killed process's request still running in ExaFS and its
    // successor's) can make two; the engine removes the extra ones.
    let mut out: Vec<(bool, HeldEntry, Vec<HeldEntry>)> = Vec::new();
    for rule in rules.iter().filter(|r| r.community == community) {
        let Some(target) = rule.target else { continue };
        let exact = rule.is_exactly(&target, community);
        let entry = HeldEntry {
            target,
            remote_id: Some(rule.id.to_string()),
            expires: rule.expires,
            marked: marked(rule.comment.as_deref()),
            not_enforced: rule.not_enforced(),
        };
        match out.iter_mut().find(|(_, e, _)| e.target == target) {
            Some(slot) if exact && !slot.0 => {
                slot.1 = entry;
                slot.0 = true;
            }
            Some(slot) if exact && entry.marked => slot.2.push(entry),
            Some(_) => {}
            None => out.push((exact, entry, Vec::new())),
        }
    }
    out.into_iter()
        .flat_map(|(_, e, extra)| std::iter::once(e).chain(extra))
        .collect()
}

/// The API key from `api_key`, or the first non-empty line of `api_key_file`, trimmed.
fn read_key(config: &ExafsConfig) -> Result<netban_core::config::Secret, ExafsError> {
    use netban_core::config::Secret;
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
    let text = std::fs::read_to_string(path).map_err(|source| ExafsError::KeyFile {
        path: path.clone(),
        source,
    })?;
    match text.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(k) => Ok(Secret::new(k)),
        None => Err(ExafsError::KeyFileEmpty { path: path.clone() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn config(text: &str) -> ExafsConfig {
        let full = format!(
            "[[sink]]\nname=\"exafs\"\ntype=\"exafs\"\nurl=\"http://127.0.0.1:9\"\ncommunity=1\n{text}"
        );
        match netban_core::config::Config::parse(&full, Path::new("t.toml"))
            .unwrap()
            .sinks
            .remove(0)
        {
            netban_core::config::SinkConfig::Exafs(c) => c,
            other => panic!("not an exafs sink: {other:?}"),
        }
    }

    fn sink(text: &str) -> ExafsSink {
        let dir = tempfile::tempdir().unwrap();
        ExafsSink::new(&config(text), dir.path(), "web-01").unwrap()
    }

    fn lease(jail: &str) -> LeaseInfo {
        LeaseInfo {
            jail: jail.into(),
            origin: "local".into(),
            bantime: 600,
            until: Some(1000),
        }
    }

    #[test]
    fn expiry_is_rounded_up_to_ten_minutes() {
        let now = 1_795_309_602; // 01:06:42
        assert_eq!(
            remote_expiry(Until::At(now + 3600), now, 86_400),
            1_795_313_400
        ); // 02:06:42 -> 02:10
        // Already on a mark: unchanged.
        assert_eq!(
            remote_expiry(Until::At(1_795_313_400), now, 86_400),
            1_795_313_400
        );
        // Ending soon, or in the past: at least ten minutes ahead, then rounded up.
        assert_eq!(
            remote_expiry(Until::At(now + 5), now, 86_400),
            1_795_310_400
        ); // 01:16:42 -> 01:20
        assert_eq!(
            remote_expiry(Until::At(now - 100), now, 86_400),
            1_795_310_400
        );
        // Permanent: now + permanent_expiry, rounded up.
        assert_eq!(remote_expiry(Until::Never, now, 7 * 86_400), 1_795_914_600);
        for now in [0, 1, 599, 600, 601, 1_795_309_602] {
            for until in [Until::At(now), Until::At(now + 1234), Until::Never] {
                let e = remote_expiry(until, now, 3600);
                assert_eq!(e % 600, 0);
                assert!(e >= now + 600);
            }
        }
        // No overflow at the edge.
        assert_eq!(remote_expiry(Until::At(i64::MAX), 0, 3600), i64::MAX);
    }

    #[test]
    fn expiry_and_renewal_come_from_the_config() {
        let s = sink("api_key = \"k\"\npermanent_expiry = 86400\n");
        assert_eq!(s.expiry_for(Until::Never, 0), Some(86_400));
        assert_eq!(s.renew_before(), 43_200);
        assert_eq!(s.max_batch(), 64);
        assert_eq!(s.name(), "exafs");
    }

    #[test]
    fn comment_is_rendered_from_the_template() {
        let s = sink("api_key = \"k\"\n");
        let t = Target::parse("192.0.2.1").unwrap();
        assert_eq!(s.comment_for(&t, &lease("sshd")), "netban web-01 sshd");
        let s = sink("api_key = \"k\"\ncomment = \"fail2ban {jail} {ip} via {host}\"\n");
        assert_eq!(
            s.comment_for(&Target::parse("2001:db8::/48").unwrap(), &lease("nginx")),
            "fail2ban nginx 2001:db8::/48 via web-01"
        );
    }

    #[test]
    fn api_key_file_first_non_empty_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "\n  \n  the-key \nsecond\n").unwrap();
        let c = config(&format!(
            "api_key_file = {:?}\n",
            path.display().to_string()
        ));
        assert_eq!(read_key(&c).unwrap().expose(), "the-key");
        std::fs::write(&path, "\n \n").unwrap();
        let e = ExafsSink::new(&c, dir.path(), "h")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains("empty"),
            "{e}"
        );
        let missing = PathBuf::from("/nonexistent/netban/exafs.key");
        let c = config(&format!(
            "api_key_file = {:?}\n",
            missing.display().to_string()
        ));
        let e = ExafsSink::new(&c, dir.path(), "h")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("/nonexistent/netban/exafs.key"), "{e}");
    }

    #[test]
    fn bad_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let c = config(&format!(
            "api_key = \"k\"\nca_file = {:?}\n",
            path.display().to_string()
        ));
        let e = ExafsSink::new(&c, dir.path(), "h")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("ca.pem"), "{e}");
    }

    fn rule(id: i64, address: &str, mask: u8, community: &str, comment: Option<&str>) -> Rule {
        let v = if address.contains(':') {
            serde_json::json!({"id": id, "ipv6": address, "ipv6_mask": mask, "community": community, "comment": comment, "expires": 1200, "rstate": "active rule"})
        } else {
            serde_json::json!({"id": id, "ipv4": address, "ipv4_mask": mask, "community": community, "comment": comment, "expires": 1200, "rstate": "active rule"})
        };
        Rule::from_json(&v).unwrap()
    }

    #[test]
    fn held_keeps_our_community_and_prefers_the_canonical_rule() {
        let s = sink("api_key = \"k\"\n");
        let rules = vec![
            rule(
                1,
                "192.0.2.1",
                32,
                "65535:65283",
                Some("netban web-01 sshd"),
            ),
            rule(
                2,
                "192.0.2.2",
                32,
                "64496:64511",
                Some("netban web-01 sshd"),
            ),
            rule(3, "2001:DB8::5", 128, "65535:65283", Some("manual")),
            rule(
                4,
                "2001:db8::5",
                128,
                "65535:65283",
                Some("netban web-01 sshd"),
            ),
            rule(5, "2001:Db8::5", 128, "65535:65283", Some("other")),
            rule(6, "198.51.100.0", 24, "65535:65283", None),
        ];
        let held = held_entries(&rules, "65535:65283", |c| s.is_marked(c));
        let ids: Vec<_> = held.iter().map(|h| h.remote_id.clone().unwrap()).collect();
        assert_eq!(ids, ["1", "4", "6"]);
        assert!(held[0].marked && held[1].marked && !held[2].marked);
        assert_eq!(held[2].target, Target::parse("198.51.100.0/24").unwrap());
        assert_eq!(held[0].expires, Some(1200));
    }
}
