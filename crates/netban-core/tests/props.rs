//! Property tests and a corpus of hostile inputs for the parsers an attacker (or a careless
//! config) reaches: targets, jail names, templates, the config. Nothing panics; whatever is
//! accepted is canonical; every corpus line is refused.

use std::path::Path;

use netban_core::config::Config;
use netban_core::template::{Template, Vars};
use netban_core::{LeaseInfo, Target};
use proptest::prelude::*;

fn corpus(name: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.replace("\\n", "\n"))
        .collect()
}

#[test]
fn the_hostile_target_corpus_is_refused() {
    for line in corpus("targets.txt") {
        assert!(Target::parse(&line).is_err(), "{line:?} must be refused");
    }
}

#[test]
fn the_hostile_jail_corpus_is_refused() {
    for line in corpus("jails.txt") {
        assert!(
            netban_core::lease::validate_jail(&line).is_err(),
            "{line:?}"
        );
    }
}

#[test]
fn the_bad_template_corpus_is_refused() {
    for line in corpus("templates.txt") {
        assert!(Template::parse(&line).is_err(), "{line:?}");
    }
}

#[test]
fn the_bad_config_corpus_is_refused_without_a_panic() {
    for line in corpus("configs.txt") {
        let parsed = Config::parse(&line, Path::new("corpus.toml"));
        let refused = match parsed {
            Err(_) => true,
            Ok(c) => c
                .sinks
                .iter()
                .any(|s| s.define::<netban_core::exec::ExecConfig>().is_err()),
        };
        assert!(refused, "{line:?} must be refused");
    }
}

fn lease() -> LeaseInfo {
    LeaseInfo {
        jail: "sshd".into(),
        origin: "local".into(),
        bantime: 600,
        until: Some(1000),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_string_either_refused_or_a_canonical_target(s in "\\PC{0,48}") {
        if let Ok(t) = Target::parse(&s) {
            // The display form parses back to the same target, and is its own display.
            let again = Target::parse(&t.to_string()).unwrap();
            prop_assert_eq!(again, t);
            prop_assert_eq!(again.to_string(), t.to_string());
            prop_assert!(!t.to_string().contains(char::is_whitespace));
        }
    }

    #[test]
    fn address_like_strings_are_canonical(a in any::<[u8; 4]>(), len in 0u8..=40) {
        let s = format!("{}.{}.{}.{}/{len}", a[0], a[1], a[2], a[3]);
        match Target::parse(&s) {
            Ok(t) => {
                prop_assert!(len <= 32);
                prop_assert_eq!(t.prefix_len(), len);
                prop_assert_eq!(t.net().trunc(), t.net(), "host bits are zero");
            }
            Err(_) => prop_assert!(len > 32),
        }
    }

    #[test]
    fn ipv6_spellings_collapse(segs in any::<[u16; 8]>(), len in 0u8..=128) {
        let lower = segs.iter().map(|s| format!("{s:x}")).collect::<Vec<_>>().join(":");
        let upper = segs.iter().map(|s| format!("{s:04X}")).collect::<Vec<_>>().join(":");
        let a = Target::parse(&format!("{lower}/{len}"));
        let b = Target::parse(&format!("{upper}/{len}"));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn templates_never_panic_and_render_values_verbatim(s in "\\PC{0,40}", jail in "[a-z0-9;$`|&<> -]{1,20}") {
        if let Ok(t) = Template::parse(&s) {
            let mut l = lease();
            l.jail = jail.clone();
            let out = t.render(&Vars::new(&Target::parse("192.0.2.1").unwrap(), &l, "h"));
            // A value is pasted as it is, once per {jail}: never interpreted.
            let uses = t.placeholders().filter(|p| *p == "jail").count();
            prop_assert!(out.matches(jail.as_str()).count() >= uses);
        }
    }

    #[test]
    fn any_config_text_is_accepted_or_refused_never_a_panic(s in "\\PC{0,120}") {
        let _ = Config::parse(&s, Path::new("fuzz.toml"));
    }

    #[test]
    fn structured_configs_are_accepted_or_refused_never_a_panic(
        key in prop::sample::select(vec!["resync_interval", "inline_deadline", "retry_max", "max_prefix_v4", "batch_window", "min_origins"]),
        value in prop::sample::select(vec!["0", "-1", "1e300", "1e-300", "nan", "inf", "\"x\"", "[]", "{}", "18446744073709551616", "3"]),
    ) {
        let section = match key {
            "resync_interval" => "[daemon]",
            "max_prefix_v4" => "[guard]",
            "batch_window" | "min_origins" => "[[sink]]\nname = \"s\"\ntype = \"exec\"\nban = [\"/bin/true\"]",
            _ => "[reconcile]",
        };
        let text = format!("{section}\n{key} = {value}\n");
        if let Ok(c) = Config::parse(&text, Path::new("fuzz.toml")) {
            for s in &c.sinks {
                let _ = s.define::<netban_core::exec::ExecConfig>();
                if let Some(w) = s.common.window() {
                    prop_assert!(w.as_secs() <= 600);
                }
            }
            prop_assert!(c.daemon.resync_interval.is_finite());
        }
    }
}
