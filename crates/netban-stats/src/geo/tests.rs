//! Enrichment against MaxMind's test databases (`testdata/geoip`), including replacing the
//! files under a running [`Geo`].

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::*;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/geoip")
        .join(name)
}

fn t(s: &str) -> Target {
    Target::parse(s).unwrap()
}

fn geo() -> Geo {
    Geo::open(
        Some(data("GeoLite2-Country-Test.mmdb")),
        Some(data("GeoLite2-ASN-Test.mmdb")),
    )
}

/// Replaces `dst` the way updaters do: write a temporary file, rename it over.
fn replace(dst: &Path, content: &[u8]) {
    let tmp = dst.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, dst).unwrap();
}

fn immediate() -> GeoOptions {
    GeoOptions {
        check_every: Duration::ZERO,
        ..GeoOptions::default()
    }
}

#[test]
fn countries_and_asns_of_the_test_databases() {
    let g = geo();
    assert_eq!(g.loaded(), (true, true));
    assert_eq!(g.lookup(&t("81.2.69.160")).country.as_deref(), Some("GB"));
    assert_eq!(g.lookup(&t("2001:218::1")).country.as_deref(), Some("JP"));
    let se = g.lookup(&t("89.160.20.128"));
    assert_eq!(se.country.as_deref(), Some("SE"));
    assert_eq!(se.asn, Some(29518));
    assert_eq!(se.org.as_deref(), Some("Bredband2 AB"));
    // The mmdb writer merges neighbours with equal data: the source JSON's /25 is a /17 here.
    assert_eq!(se.asn_network, Some("89.160.0.0/17".parse().unwrap()));
    let telstra = g.lookup(&t("1.128.0.1"));
    assert_eq!(telstra.asn, Some(1221));
    assert_eq!(telstra.org.as_deref(), Some("Telstra Pty Ltd"));
}

#[test]
fn addresses_without_data_are_unknown() {
    let g = geo();
    for ip in ["1.2.3.4", "192.0.2.1", "2001:db8::1", "10.0.0.0/8"] {
        assert_eq!(g.lookup(&t(ip)), GeoInfo::default(), "{ip}");
    }
    let none = Geo::none();
    assert_eq!(none.lookup(&t("81.2.69.160")), GeoInfo::default());
    let missing = Geo::open(Some("/nonexistent/GeoLite2-Country.mmdb".into()), None);
    assert_eq!(missing.loaded(), (false, false));
    assert_eq!(missing.lookup(&t("81.2.69.160")), GeoInfo::default());
}

#[test]
fn later_lookups_inside_a_known_network_hit_the_cache() {
    let g = geo();
    let first = g.lookup(&t("89.160.20.130"));
    let second = g.lookup(&t("89.160.20.250"));
    assert_eq!(first, second);
    assert_eq!(g.counters().cache_hits, 1);
    // Outside the country database's /25 (inside the ASN's /17): a new lookup.
    let outside = g.lookup(&t("89.160.20.1"));
    assert_eq!((outside.country, outside.asn), (None, Some(29518)));
    assert_eq!(g.counters().cache_hits, 1);
    // Unknown answers are cached by their (data-less) network too.
    g.lookup(&t("1.2.3.4"));
    g.lookup(&t("1.2.3.5"));
    assert_eq!(g.counters().cache_hits, 2);
    assert_eq!(g.lookup_uncached(&t("89.160.20.200")), first);
}

#[test]
fn replacing_the_file_changes_later_lookups_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("country.mmdb");
    std::fs::copy(data("GeoLite2-Country-Test.mmdb"), &path).unwrap();
    let g = Geo::with_options(Some(path.clone()), None, immediate());
    assert_eq!(g.lookup(&t("175.16.199.1")).country, None);
    assert_eq!(g.lookup(&t("81.2.69.160")).country.as_deref(), Some("GB"));

    replace(
        &path,
        &std::fs::read(data("GeoIP2-Country-Test.mmdb")).unwrap(),
    );
    assert_eq!(g.lookup(&t("175.16.199.1")).country.as_deref(), Some("CN"));
    assert_eq!(g.counters().reloads, 1);

    // A database of another kind: no countries any more.
    replace(
        &path,
        &std::fs::read(data("GeoLite2-ASN-Test.mmdb")).unwrap(),
    );
    assert_eq!(g.lookup(&t("81.2.69.160")).country, None);
}

#[test]
fn checks_for_a_new_file_at_most_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("country.mmdb");
    std::fs::copy(data("GeoLite2-Country-Test.mmdb"), &path).unwrap();
    let g = Geo::with_options(
        Some(path.clone()),
        None,
        GeoOptions {
            check_every: Duration::from_secs(3600),
            ..GeoOptions::default()
        },
    );
    replace(
        &path,
        &std::fs::read(data("GeoIP2-Country-Test.mmdb")).unwrap(),
    );
    assert_eq!(
        g.lookup(&t("175.16.199.1")).country,
        None,
        "not checked yet"
    );
    g.refresh_now();
    assert_eq!(g.lookup(&t("175.16.199.1")).country.as_deref(), Some("CN"));
}

/// Log lines written while `f` runs.
fn logs_of(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let out = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || out.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn a_broken_new_file_keeps_the_old_database_and_says_so_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("country.mmdb");
    std::fs::copy(data("GeoLite2-Country-Test.mmdb"), &path).unwrap();
    let g = Geo::with_options(Some(path.clone()), None, immediate());
    let logs = logs_of(|| {
        // Truncated, as a non-atomic copy leaves it half way.
        let good = std::fs::read(data("GeoIP2-Country-Test.mmdb")).unwrap();
        replace(&path, &good[..good.len() / 2]);
        for _ in 0..5 {
            assert_eq!(g.lookup(&t("81.2.69.160")).country.as_deref(), Some("GB"));
        }
        assert_eq!(g.lookup(&t("175.16.199.1")).country, None, "old database");
        // The copy completes: the new database is used.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&good[good.len() / 2..]).unwrap();
        drop(f);
        assert_eq!(g.lookup(&t("175.16.199.1")).country.as_deref(), Some("CN"));
    });
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{logs}");
    assert!(
        warnings[0].contains("is not a usable mmdb file")
            && warnings[0].contains("keeping the database loaded before"),
        "{logs}"
    );
}

#[test]
fn a_file_that_appears_later_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("asn.mmdb");
    let g = Geo::with_options(None, Some(path.clone()), immediate());
    let logs = logs_of(|| {
        for _ in 0..3 {
            assert_eq!(g.lookup(&t("89.160.20.128")).asn, None);
        }
    });
    assert_eq!(
        logs.lines().filter(|l| l.contains("WARN")).count(),
        0,
        "warned at open"
    );
    replace(
        &path,
        &std::fs::read(data("GeoLite2-ASN-Test.mmdb")).unwrap(),
    );
    assert_eq!(g.lookup(&t("89.160.20.128")).asn, Some(29518));
}
