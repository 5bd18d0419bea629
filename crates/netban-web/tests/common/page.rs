//! Helpers of the browser tests: loading the dashboard, reading its table and its charts'
//! data, the browser log, a month of bans to draw, screenshots.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use netban_testsupport::chromium::Session;
use serde_json::{Value, json};

use super::Fixture;

pub const WAIT: Duration = Duration::from_secs(20);

pub fn shots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    let dir = target.join("netban-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn save(s: &Session, name: &str, width: u32) {
    let png = s.screenshot_full(width).await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = shots().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
}

/// Addresses of the MaxMind test databases (several countries and ASes) and others.
pub const SOURCES: &[&str] = &[
    "81.2.69.160",
    "81.2.69.142",
    "2.125.160.216",
    "89.160.20.128",
    "89.160.20.112",
    "216.160.83.56",
    "175.16.199.1",
    "202.196.224.1",
    "67.43.156.1",
    "2001:218::1",
    "2001:220::1",
    "2a02:d280::1",
    "1.128.0.1",
    "1.2.3.4",
    "198.51.100.3",
];
pub const JAILS: &[&str] = &["sshd", "postfix", "dovecot", "nginx-http-auth", "recidive"];

/// A month of bans: a few a day, skewed towards the first sources and jails.
pub async fn month(f: &Fixture) {
    let mut bans = Vec::new();
    for ago in 1..30i32 {
        let n = 3 + (ago * 7 % 11) as usize;
        for i in 0..n {
            let src = SOURCES[(i * i + ago as usize) % SOURCES.len()];
            let jail = JAILS[(i + ago as usize / 3) % JAILS.len()];
            bans.push((ago, src, jail));
        }
    }
    f.history(10_000, &bans).await;
}

/// Every browser log entry at SEVERE (console errors, failed loads, CSP violations).
pub async fn errors(s: &Session) -> Vec<String> {
    s.logs()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.level == "SEVERE")
        .map(|e| e.message)
        .collect()
}

/// Loads `/` and waits for the first complete refresh.
pub async fn open(s: &Session, f: &Fixture) {
    s.goto(&f.url("/")).await.unwrap();
    s.wait_for("return document.body.dataset.loaded === 'true'", WAIT)
        .await
        .unwrap();
}

pub async fn rows(s: &Session) -> Vec<String> {
    let v = s
        .execute(
            "return [...document.querySelectorAll('#active tbody tr[data-target]')].map(r => r.dataset.target)",
            json!([]),
        )
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

/// The series of a chart: `(label, values)` per dataset, and the x labels.
pub async fn series(s: &Session, id: &str) -> (Vec<String>, Vec<(String, Vec<u64>)>) {
    let v = s
        .execute(
            "const c = Chart.getChart(arguments[0]); \
             return {labels: c.data.labels, sets: c.data.datasets.map(d => [d.label ?? '', d.data])};",
            json!([id]),
        )
        .await
        .unwrap();
    let labels = serde_json::from_value(v["labels"].clone()).unwrap();
    let sets = serde_json::from_value(v["sets"].clone()).unwrap();
    (labels, sets)
}

/// The top `n` keys of a count map, largest first, and whether the rest is "other".
pub fn top(counts: &Value, n: usize) -> Vec<String> {
    let mut kv: Vec<(String, u64)> = counts
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    kv.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut keys: Vec<String> = kv.iter().take(n).map(|(k, _)| k.clone()).collect();
    if kv.len() > n {
        keys.push("other".into());
    }
    keys
}

/// Checks a stacked per-day chart against the report: one dataset per top key (plus
/// "other"), each day's values summing to the day's total.
pub fn check_stacked(report: &Value, field: &str, labels: &[String], sets: &[(String, Vec<u64>)]) {
    let per_day = report["per_day"].as_array().unwrap();
    assert_eq!(labels.len(), per_day.len());
    let names: Vec<String> = sets.iter().map(|(l, _)| l.clone()).collect();
    assert_eq!(names, top(&report[field], 8), "{field}");
    for (i, day) in per_day.iter().enumerate() {
        let sum: u64 = sets.iter().map(|(_, v)| v[i]).sum();
        assert_eq!(
            sum,
            day["total"].as_u64().unwrap(),
            "{field} on {}",
            day["day"]
        );
    }
    for (label, values) in sets.iter().filter(|(l, _)| l != "other") {
        let total: u64 = values.iter().sum();
        assert_eq!(
            total,
            report[field][label].as_u64().unwrap(),
            "{field} {label}"
        );
    }
}
