//! The report: one row per measurement, the markdown table, and progress lines on stderr.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::measure::{Unit, num, stats};

pub struct Row {
    pub case: String,
    pub what: String,
    pub n: String,
    pub median: String,
    pub p90: String,
    pub max: String,
    pub unit: String,
    pub notes: String,
}

impl Row {
    pub fn timing(case: &str, what: &str, samples: &[Duration], unit: Unit, notes: String) -> Row {
        let s = stats(samples);
        Row {
            case: case.into(),
            what: what.into(),
            n: s.n.to_string(),
            median: num(unit.of(s.median)),
            p90: num(unit.of(s.p90)),
            max: num(unit.of(s.max)),
            unit: unit.name().into(),
            notes,
        }
    }

    pub fn single(
        case: &str,
        what: &str,
        n: usize,
        value: String,
        unit: &str,
        notes: String,
    ) -> Row {
        Row {
            case: case.into(),
            what: what.into(),
            n: n.to_string(),
            median: value,
            p90: "–".into(),
            max: "–".into(),
            unit: unit.into(),
            notes,
        }
    }

    pub fn failed(case: &str, what: &str, error: &anyhow::Error) -> Row {
        let text = format!("{error:#}").replace(['\n', '|'], " ");
        let text: String = text.chars().take(300).collect();
        Row::single(case, what, 0, "FAILED".into(), "", text)
    }
}

pub fn table(rows: &[Row]) -> String {
    let mut s = String::from("| case | what | n | median | p90 | max | unit | notes |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---|---|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.case,
            r.what,
            r.n,
            r.median,
            r.p90,
            r.max,
            r.unit,
            r.notes.replace('|', "/")
        );
    }
    s
}

/// Progress on stderr, with the time since the start.
pub struct Log(pub Instant);

impl Log {
    pub fn say(&self, msg: impl AsRef<str>) {
        eprintln!(
            "[bench {:7.1}s] {}",
            self.0.elapsed().as_secs_f64(),
            msg.as_ref()
        );
    }
}
