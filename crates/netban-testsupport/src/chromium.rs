//! A real headless Chromium (Debian `chromium`), driven through a real `chromedriver`
//! (Debian `chromium-driver`) over the W3C WebDriver HTTP API, for the dashboard's tests.
//!
//! [`Chromedriver::start`] runs chromedriver on a free loopback port in its own process group
//! (killed on drop, with `PR_SET_PDEATHSIG`); [`Chromedriver::session`] starts a browser with
//! the flags this sandbox needs (`--headless=new --no-sandbox --disable-gpu`, no background
//! networking, no component updates, a fresh `--user-data-dir`): without the background
//! flags Chromium keeps trying to reach Google's hosts, and a closed network refuses them
//! noisily. The client is a few WebDriver calls over reqwest (navigate, execute a script,
//! find an element, type, click, screenshot, the browser log, a DevTools command through
//! chromedriver's `goog/cdp/execute`), enough to test a page the way a person uses it.
//!
//! When chromium or chromedriver is missing, [`Chromedriver::start`] fails with the apt-get
//! command that installs them: tests never pass by skipping.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};

use crate::process::{free_port, kill_group, spawn_guarded};

/// The message when the browser is not installed.
pub const INSTALL_HINT: &str = "install Debian's chromium and chromium-driver (scripts/test does: apt-get install --no-install-recommends chromium chromium-driver fonts-dejavu-core)";

/// The element key of a WebDriver element reference (W3C).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver call waits at most this long.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

fn find(names: &[&str]) -> Option<PathBuf> {
    names.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// A running chromedriver.
pub struct Chromedriver {
    child: Option<Child>,
    port: u16,
    chromium: PathBuf,
    http: reqwest::Client,
    // Last: removed after the processes are dead.
    dir: tempfile::TempDir,
}

impl Chromedriver {
    /// Starts chromedriver on a free loopback port and waits until it answers.
    pub fn start() -> anyhow::Result<Chromedriver> {
        let driver = find(&["/usr/bin/chromedriver"])
            .ok_or_else(|| anyhow!("chromedriver not found: {INSTALL_HINT}"))?;
        let chromium = find(&["/usr/bin/chromium"])
            .ok_or_else(|| anyhow!("chromium not found: {INSTALL_HINT}"))?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::Builder::new()
            .prefix("netban-chromium-")
            .tempdir()
            .context("creating a temporary directory for chromium")?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("chromedriver.log"))?;
        let child = spawn_guarded(
            Command::new(&driver)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
        )
        .with_context(|| format!("starting {}", driver.display()))?;
        let mut me = Chromedriver {
            child: Some(child),
            port,
            chromium,
            http: reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                .no_proxy()
                .build()
                .context("building the WebDriver HTTP client")?,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(c) = me.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                bail!(
                    "chromedriver exited ({status}) before answering: {}",
                    me.log()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "chromedriver did not open port {port} in 20 s: {}",
                    me.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(me)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log"))
            .unwrap_or_default()
            .chars()
            .take(4000)
            .collect()
    }

    /// A new browser session: headless, a window of `width` x `height`, a fresh profile,
    /// the browser log kept (console messages, failed loads, CSP violations).
    pub async fn session(&self, width: u32, height: u32) -> anyhow::Result<Session> {
        let profile = tempfile::Builder::new()
            .prefix("profile-")
            .tempdir_in(self.dir.path())?
            .keep();
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--hide-scrollbars".into(),
            "--force-device-scale-factor=1".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": self.chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let base = format!("http://127.0.0.1:{}", self.port);
        let v = call(
            &self.http,
            reqwest::Method::POST,
            &format!("{base}/session"),
            Some(caps),
        )
        .await
        .with_context(|| format!("starting chromium: {}", self.log()))?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("chromedriver answered no session id: {v}"))?;
        Ok(Session {
            http: self.http.clone(),
            base: format!("{base}/session/{id}"),
        })
    }

    /// The directory of the driver's log and the browsers' profiles.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// One WebDriver call; the W3C `value` of the answer, or the driver's error.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut req = http.request(method.clone(), url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("WebDriver {method} {url}"))?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .await
        .with_context(|| format!("WebDriver {method} {url}: not JSON"))?;
    if !status.is_success() {
        bail!(
            "WebDriver {method} {url}: {status}: {} {}",
            v["value"]["error"],
            v["value"]["message"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        );
    }
    Ok(v.get("value").cloned().unwrap_or(Value::Null))
}

/// One entry of the browser log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// `SEVERE`, `WARNING`, `INFO`, ...
    pub level: String,
    pub message: String,
}

/// A browser session (one window).
pub struct Session {
    http: reqwest::Client,
    base: String,
}

impl Session {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}{path}", self.base),
            Some(body),
        )
        .await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        call(
            &self.http,
            reqwest::Method::GET,
            &format!("{}{path}", self.base),
            None,
        )
        .await
    }

    /// Loads `url` and waits for the load event.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.post("/url", json!({"url": url})).await.map(drop)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn execute(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Waits until `script` returns a truthy value, polling every 100 ms, and returns it.
    pub async fn wait_for(&self, script: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.execute(script, json!([])).await?;
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!("waited {timeout:?} for `{script}`; it still returns {v}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The WebDriver reference of the first element matching `css`.
    pub async fn find(&self, css: &str) -> anyhow::Result<String> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await?;
        v[ELEMENT]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no element reference for {css}: {v}"))
    }

    /// Types `text` into the element (as key presses: input events fire).
    pub async fn type_into(&self, element: &str, text: &str) -> anyhow::Result<()> {
        self.post(&format!("/element/{element}/value"), json!({"text": text}))
            .await
            .map(drop)
    }

    /// Clears an input.
    pub async fn clear(&self, element: &str) -> anyhow::Result<()> {
        self.post(&format!("/element/{element}/clear"), json!({}))
            .await
            .map(drop)
    }

    /// Clicks the element.
    pub async fn click(&self, element: &str) -> anyhow::Result<()> {
        self.post(&format!("/element/{element}/click"), json!({}))
            .await
            .map(drop)
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> anyhow::Result<Vec<u8>> {
        use base64::Engine as _;
        let v = self.get("/screenshot").await?;
        let b64 = v
            .as_str()
            .ok_or_else(|| anyhow!("screenshot answer is not a string"))?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .context("decoding the screenshot")
    }

    /// A PNG of the whole page (the window grown to the document's height first).
    pub async fn screenshot_full(&self, width: u32) -> anyhow::Result<Vec<u8>> {
        let h = self
            .execute(
                "return Math.ceil(document.documentElement.scrollHeight)",
                json!([]),
            )
            .await?
            .as_u64()
            .unwrap_or(900)
            .clamp(200, 8000);
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": h, "deviceScaleFactor": 1, "mobile": width < 600}),
        )
        .await?;
        // Let charts resize to the new viewport before the picture.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let png = self.screenshot().await;
        self.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
            .await?;
        png
    }

    /// A Chrome DevTools Protocol command, through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> anyhow::Result<Value> {
        self.post("/goog/cdp/execute", json!({"cmd": cmd, "params": params}))
            .await
    }

    /// Makes the page see `prefers-color-scheme: dark` (or light).
    pub async fn prefer_dark(&self, dark: bool) -> anyhow::Result<()> {
        let value = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": value}]}),
        )
        .await
        .map(drop)
    }

    /// The browser log since the last call (console messages, failed loads, CSP reports).
    pub async fn logs(&self) -> anyhow::Result<Vec<LogEntry>> {
        let v = self.post("/se/log", json!({"type": "browser"})).await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| LogEntry {
                        level: e["level"].as_str().unwrap_or("").to_string(),
                        message: e["message"].as_str().unwrap_or("").to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Ends the session (closes the browser).
    pub async fn close(self) -> anyhow::Result<()> {
        call(&self.http, reqwest::Method::DELETE, &self.base, None)
            .await
            .map(drop)
    }
}
