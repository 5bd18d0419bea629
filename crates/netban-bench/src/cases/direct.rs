//! `direct`: POSTs made straight to ExaFS with a minimal client (no netban, no proxy):
//! ExaFS's own ceiling, sequential and with 8 clients (netban's default concurrency).

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use netban_testsupport::http;
use serde_json::json;

use super::{BANTIME, Bench};
use crate::exa::{Exa, RULES_PATH};
use crate::measure::{Unit, now_unix, num};
use crate::report::Row;

impl Bench {
    /// POSTs straight to ExaFS (no proxy, no netban): `clients` threads, `n` rules in all.
    pub fn direct(&mut self, x: &Exa, label: &str, n: usize, clients: usize) -> Result<()> {
        let rules_before = x.rules();
        self.log.say(format!(
            "direct: {n} POSTs straight to ExaFS, {clients} client(s), {rules_before} rules stored"
        ));
        let token = x.exafs.token(x.exafs.api_key())?;
        let ips = self.ips.take(n);
        let expires = now_unix() + BANTIME;
        let authority = x.exafs.authority();
        let started = Instant::now();
        let chunks: Vec<&[String]> = ips.chunks(n.div_ceil(clients)).collect();
        let results: Vec<Result<Vec<Duration>>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|chunk| {
                    let (token, authority) = (&token, &authority);
                    s.spawn(move || -> Result<Vec<Duration>> {
                        let mut walls = Vec::with_capacity(chunk.len());
                        for ip in chunk.iter() {
                            let body = json!({
                                "ipv4": ip, "ipv4_mask": 32, "community": 1,
                                "expires": expires, "comment": "bench direct",
                            })
                            .to_string();
                            let t = Instant::now();
                            let r = http::request(
                                authority,
                                "POST",
                                RULES_PATH,
                                &[
                                    ("x-access-token", token.as_str()),
                                    ("Content-Type", "application/json"),
                                ],
                                Some(body.as_bytes()),
                            )?;
                            walls.push(t.elapsed());
                            if r.status != 201 {
                                bail!("POST {ip}: HTTP {}: {}", r.status, r.text());
                            }
                        }
                        Ok(walls)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("client thread panicked")))
                })
                .collect()
        });
        let elapsed = started.elapsed();
        let mut walls = Vec::new();
        for r in results {
            walls.extend(r?);
        }
        let rate = n as f64 / elapsed.as_secs_f64();
        self.rows.push(Row::timing(
            "direct",
            &format!("POST /rules/rtbh straight to ExaFS, {clients} client(s), {label}"),
            &walls,
            Unit::Ms,
            format!(
                "**{} req/s**; {rules_before} rules stored before; a minimal HTTP/1.1 client, \
                 new connection per request (werkzeug sends Connection: close)",
                num(rate)
            ),
        ));
        Ok(())
    }
}
