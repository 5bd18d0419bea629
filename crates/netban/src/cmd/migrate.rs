//! `netban [--config NEW] migrate exafs-action --from OLD.cfg [--rules rules.json] [--write]`:
//! moving from `exafs_action.py` to netban.
//!
//! - The old script's `exafs.cfg` (INI, section `[exafs]`: `url`, `api_key`, `community`,
//!   `whitelist_file`) becomes a netban config: printed when NEW does not exist, written with
//!   `--write` (never over an existing file), the key in its own 0600 file beside it; when NEW
//!   exists (a packaged host), printed for the operator to merge.
//! - With `--rules`, the rules the old script made (its `rules.json`: address -> rule id) are
//!   **adopted** into NEW's state: checked against ExaFS (same address and community), recorded
//!   as netban's, so netban extends them and deletes them at the last unban like its own, with
//!   no duplicate and no orphan. Run it after the switch-over (fail2ban restarted with
//!   netban's action), so that netban holds the bans: a listed rule of an address nobody bans
//!   any more is the old script's orphan, and netban deletes it.
//! - `--dry-run` says what would happen.

use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netban_core::config::DEFAULT_CONFIG_PATH;
use netban_core::owner::Owner;
use netban_core::reconcile::plan;
use netban_core::sink::LeaseInfo;
use netban_core::store::{RecordOp, RecordState, SinkRecord};
use netban_core::{Target, clock};

use crate::cli::{Cli, MigrateArgs, MigrateWhat};
use crate::context::Context;
use crate::exit::{CliError, CliResult};

/// The old script's settings.
#[derive(Debug, Default)]
struct OldConfig {
    url: String,
    api_key: String,
    community: u32,
    whitelist: Option<PathBuf>,
}

pub fn run(cli: &Cli, a: &MigrateArgs) -> CliResult {
    let MigrateWhat::ExafsAction(m) = &a.what;
    let old = read_old(&m.from)?;
    let new = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    if !new.exists() {
        let key_file = new.with_file_name("exafs.key");
        let text = config_text(&old, &key_file);
        if !m.write || cli.dry_run {
            say!(
                "# {} does not exist; the config for it (write it with --write):",
                new.display()
            );
            say!("{}", text.trim_end());
            say!(
                "# the API key goes into {} (0600) with --write",
                key_file.display()
            );
            if m.rules.is_some() {
                say!("# --rules: adopting the old rules needs the new config first (--write)");
            }
            return Ok(());
        }
        write_new(&key_file, &format!("{}\n", old.api_key))?;
        write_new(&new, &text)?;
        say!("wrote {} and {} (0600)", new.display(), key_file.display());
    } else if m.rules.is_none() || m.write {
        // A packaged host has a config already: show what to merge into it.
        let key_file = new.with_file_name("exafs.key");
        say!(
            "# {} exists; netban does not write over it. The old settings as netban config, to merge by hand:",
            new.display()
        );
        say!("{}", config_text(&old, &key_file).trim_end());
        say!(
            "# put the API key into {} yourself (mode 0600), or point api_key_file elsewhere",
            key_file.display()
        );
    }
    if let Some(rules) = &m.rules {
        let mut ctx = Context::load_file(cli, Some(&new))?;
        adopt(&mut ctx, &old, rules, cli.dry_run)?;
    }
    Ok(())
}

/// Reads `exafs.cfg`: an INI file whose `[exafs]` section holds the settings.
fn read_old(path: &Path) -> CliResult<OldConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("--from {}: {e}", path.display())))?;
    let bad =
        |line: usize, why: &str| CliError::Usage(format!("{} line {line}: {why}", path.display()));
    let mut old = OldConfig::default();
    let mut section = String::new();
    let mut seen = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_ascii_lowercase();
            continue;
        }
        if section != "exafs" {
            continue;
        }
        let Some((k, v)) = line.split_once('=').or_else(|| line.split_once(':')) else {
            return Err(bad(i + 1, "expected key = value"));
        };
        let (k, v) = (
            k.trim().to_ascii_lowercase(),
            v.trim().trim_matches('"').to_string(),
        );
        seen.insert(k.clone(), i + 1);
        match k.as_str() {
            "url" => old.url = v,
            "api_key" => old.api_key = v,
            "community" => {
                old.community = v.parse().map_err(|_| {
                    bad(i + 1, "community must be a number (the ExaFS community id)")
                })?
            }
            "whitelist_file" | "whitelist" if !v.is_empty() => {
                old.whitelist = Some(PathBuf::from(v));
            }
            _ => {}
        }
    }
    for key in ["url", "api_key", "community"] {
        if !seen.contains_key(key) {
            return Err(CliError::Usage(format!(
                "{}: [exafs] {key} is missing; is it exafs_action.py's config?",
                path.display()
            )));
        }
    }
    if !(old.url.starts_with("http://") || old.url.starts_with("https://")) {
        return Err(bad(seen["url"], "url must start with https:// or http://"));
    }
    if old.api_key.is_empty() || old.api_key.chars().any(char::is_whitespace) {
        return Err(bad(seen["api_key"], "api_key is empty or has spaces"));
    }
    Ok(old)
}

/// The netban config for the old script's settings.
fn config_text(old: &OldConfig, key_file: &Path) -> String {
    let allow = old
        .whitelist
        .as_ref()
        .map(|w| {
            format!(
                "# exafs_action.py's whitelist, in the same format (one address or CIDR a line).\nallowlist = [{}]\n",
                toml_str(&w.display().to_string())
            )
        })
        .unwrap_or_default();
    format!(
        "# netban, migrated from exafs_action.py by `netban migrate exafs-action`.\n\
         state_dir = \"/var/lib/netban\"\n\n\
         [guard]\n{allow}\n\
         [[sink]]\nname = \"exafs\"\ntype = \"exafs\"\nurl = {}\napi_key_file = {}\ncommunity = {}\n\
         # Rules exafs_action.py made that its rules.json lost: their comment in ExaFS, `*` for\n\
         # any text. Such a rule is adopted when fail2ban bans its address, never deleted otherwise.\n\
         # adopt_comments = [\"fail2ban *\"]\n",
        toml_str(&old.url),
        toml_str(&key_file.display().to_string()),
        old.community
    )
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// Creates `path` (0600) with `text`; refuses an existing file.
fn write_new(path: &Path, text: &str) -> CliResult {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::Runtime(format!("{}: {e}", dir.display())))?;
    }
    std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| {
            CliError::Runtime(format!(
                "{}: {e}; netban never writes over a file",
                path.display()
            ))
        })
}

/// Reads `rules.json`: `{"192.0.2.1": 42, ...}` (an address or `address/len`, the rule id as
/// a number or a string).
fn read_rules(path: &Path) -> CliResult<Vec<(Target, i64)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("--rules {}: {e}", path.display())))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("--rules {}: not JSON: {e}", path.display())))?;
    let map = v.as_object().ok_or_else(|| {
        CliError::Usage(format!(
            "--rules {}: expected an object of address -> rule id",
            path.display()
        ))
    })?;
    let mut out = Vec::new();
    for (addr, id) in map {
        let Ok(target) = Target::parse(addr) else {
            tracing::warn!(
                "migrate: {addr:?} in {} is not an address; skipped",
                path.display()
            );
            continue;
        };
        let id = id
            .as_i64()
            .or_else(|| id.as_str().and_then(|s| s.parse().ok()))
            .filter(|i| *i > 0);
        match id {
            Some(id) => out.push((target, id)),
            None => tracing::warn!("migrate: {addr}: rule id {id:?} is not a number; skipped"),
        }
    }
    Ok(out)
}

/// Adopts the old rules into the state of the config in `ctx`.
///
/// Each rule must still be in ExaFS under its id, for the same address and community. A
/// rule of an address netban bans becomes netban's record of it (kept in place, extended,
/// deleted at the last unban); a rule of an address nobody bans any more is an orphan of the
/// old script, adopted so that netban's next pass deletes it. Because of the latter, netban
/// must hold fail2ban's bans first: with no ban at all, it refuses.
fn adopt(ctx: &mut Context, old: &OldConfig, rules: &Path, dry_run: bool) -> CliResult {
    let wanted = read_rules(rules)?;
    let def = ctx
        .sinks
        .iter()
        .find(|d| d.kind() == "exafs")
        .cloned()
        .ok_or_else(|| {
            CliError::Config("the config has no exafs sink to adopt the rules into".into())
        })?;
    let store = ctx.store()?;
    let guard = ctx.guard()?;
    let now = clock::now();
    let leases = store.live_leases(now, None)?;
    if leases.is_empty() && !wanted.is_empty() {
        return Err(CliError::Usage(format!(
            "netban holds no ban yet, so every rule in {} would count as unbanned and be deleted; \
             switch the jails to netban and restart fail2ban first (docs/fail2ban.md), then adopt",
            rules.display()
        )));
    }
    let desired = plan::desired_set(&def.common, &leases, &guard, now);
    let env = ctx.env()?;
    let sink = def.spec.build(def.name(), &env).map_err(CliError::Config)?;
    let rt = crate::context::runtime()?;
    let listed = rt
        .block_on(sink.held(Instant::now() + Duration::from_secs(60)))
        .map_err(|e| CliError::Runtime(format!("cannot list ExaFS's rules: {}", e.message)))?
        .unwrap_or_default();
    let by_id: BTreeMap<String, &netban_core::HeldEntry> = listed
        .iter()
        .filter_map(|h| h.remote_id.clone().map(|id| (id, h)))
        .collect();
    let known: BTreeMap<Target, SinkRecord> = store
        .records(def.name())?
        .into_iter()
        .map(|r| (r.target, r))
        .collect();
    let bar = indicatif::ProgressBar::new(wanted.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("adopting {pos}/{len} [{bar:30}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    if wanted.len() < 100 || ctx.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut tally = Tally::default();
    let mut ops = Vec::new();
    for (target, id) in &wanted {
        bar.inc(1);
        let id = id.to_string();
        let Some(h) = by_id.get(&id).filter(|h| h.target == *target) else {
            bar.suspend(|| say!("skip {target}: rule {id} is not in ExaFS for this address and community (deleted, expired, or another community)"));
            tally.skipped += 1;
            continue;
        };
        if h.owner == Owner::This {
            bar.suspend(|| say!("skip {target}: rule {id} is netban's own already"));
            tally.skipped += 1;
            continue;
        }
        let mut rec = match known.get(target) {
            Some(r) if r.remote_id.as_deref().is_some_and(|r| r != id) => {
                bar.suspend(|| say!("skip {target}: netban holds rule {} for it; rule {id} is another rule for the same address: delete it in ExaFS", r.remote_id.as_deref().unwrap_or("")));
                tally.skipped += 1;
                continue;
            }
            Some(r) if r.adopted && r.foreign_owner.is_none() => {
                bar.suspend(|| say!("skip {target}: rule {id} is adopted already"));
                tally.skipped += 1;
                continue;
            }
            Some(r) => r.clone(),
            None => SinkRecord::held(
                def.name(),
                *target,
                desired
                    .get(target)
                    .map_or_else(LeaseInfo::unknown, |d| d.lease.clone()),
                now,
            ),
        };
        let banned = desired.contains_key(target);
        let what = if banned {
            "kept while banned, deleted at the last unban"
        } else {
            tally.orphans += 1;
            "not banned any more: netban's next pass deletes it"
        };
        bar.suspend(|| {
            say!(
                "{} {target}: rule {id}{}; {what}",
                if dry_run { "would adopt" } else { "adopt" },
                expiry(h.expires)
            )
        });
        tally.adopted += 1;
        rec.state = RecordState::Held;
        rec.remote_id = Some(id);
        rec.expires = h.expires;
        rec.adopted = true;
        rec.foreign_owner = None;
        rec.updated = now;
        ops.push(RecordOp::Held(rec));
    }
    bar.finish_and_clear();
    if !ops.is_empty() && !dry_run {
        store.apply_record_ops(def.name(), &ops, &|_, _| 0, now)?;
    }
    say!(
        "{} {} rule(s) of exafs_action.py ({}) into sink {}, {} of them not banned any more; skipped {}; community {} on {}",
        if dry_run { "would adopt" } else { "adopted" },
        tally.adopted,
        rules.display(),
        def.name(),
        tally.orphans,
        tally.skipped,
        old.community,
        netban_core::config::redact_userinfo(&old.url)
    );
    if tally.orphans > 0 && !dry_run {
        say!(
            "`netban sync` deletes the {} rule(s) nobody bans now (a running daemon does it within seconds)",
            tally.orphans
        );
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Tally {
    adopted: usize,
    orphans: usize,
    skipped: usize,
}

fn expiry(e: Option<i64>) -> String {
    e.map(|e| format!(", expires {}", clock::format_utc(e)))
        .unwrap_or_default()
}
