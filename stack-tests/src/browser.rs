//! A real headless Chromium driven through chromedriver, for the web
//! console's tests: the W3C WebDriver protocol spoken over reqwest, just the
//! commands the tests use (open a page, find elements, type, click, read
//! text and attributes, run a script, take a screenshot).
//!
//! Chromium and chromedriver come from Debian's `chromium` and
//! `chromium-driver` packages (`scripts/browser-deps.sh` installs them);
//! `ORDERFLOW_CHROMIUM` and `ORDERFLOW_CHROMEDRIVER` point elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use serde_json::{json, Value};

use crate::free_loopback_address;

/// How long a page or an element may take to appear.
pub const WAIT: Duration = Duration::from_secs(15);

/// The W3C key of an element reference in WebDriver JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

fn program(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// A chromedriver process on a free loopback port, killed when dropped.
pub struct Chromedriver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Chromedriver {
    /// Starts chromedriver and waits until it reports itself ready.
    pub async fn start() -> anyhow::Result<Self> {
        let driver = program("ORDERFLOW_CHROMEDRIVER", "/usr/bin/chromedriver");
        let address = free_loopback_address()?;
        let child = Command::new(&driver)
            .arg(format!("--port={}", address.port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "start {} (scripts/browser-deps.sh installs it)",
                    driver.display()
                )
            })?;
        let driver = Self {
            child,
            url: format!("http://{address}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = async {
                let status: Value = driver
                    .http
                    .get(format!("{}/status", driver.url))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                status["value"]["ready"].as_bool()
            };
            if ready.await == Some(true) {
                return Ok(driver);
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not get ready at {}", driver.url);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new headless Chromium window `width` × `height` CSS pixels, with a
    /// profile of its own. Below Chromium's smallest window (500 pixels
    /// wide) the page is shown as on a phone of that size, through
    /// chromedriver's mobile emulation.
    pub async fn browser(&self, width: u32, height: u32) -> anyhow::Result<Browser> {
        let profile = tempfile::Builder::new()
            .prefix("orderflow-chromium-")
            .tempdir()
            .context("create a browser profile")?;
        let chromium = program("ORDERFLOW_CHROMIUM", "/usr/bin/chromium");
        // Headless, as root in a container-like sandbox, and without the
        // background traffic a closed network refuses.
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let answer = self
            .command(
                reqwest::Method::POST,
                "/session",
                Some(json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": chrome_options(&chromium, args, width, height)
                }}})),
            )
            .await
            .context("open a browser session")?;
        let session = answer["sessionId"]
            .as_str()
            .context("no session id")?
            .to_owned();
        Ok(Browser {
            base: format!("{}/session/{session}", self.url),
            http: self.http.clone(),
            _profile: profile,
        })
    }

    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        send(&self.http, method, &format!("{}{path}", self.url), body).await
    }
}

/// The smallest window Chromium opens, in CSS pixels wide.
const SMALLEST_WINDOW: u32 = 500;

fn chrome_options(chromium: &Path, args: Vec<String>, width: u32, height: u32) -> Value {
    if width >= SMALLEST_WINDOW {
        return json!({"binary": chromium, "args": args});
    }
    json!({
        "binary": chromium,
        "args": args,
        "mobileEmulation": {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0}}
    })
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one WebDriver command and returns its `value`, or the driver's
/// error as an error.
async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut request = http.request(method.clone(), url);
    if let Some(body) = body {
        request = request.json(&body);
    } else if method == reqwest::Method::POST {
        request = request.json(&json!({}));
    }
    let response = request
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = response.status();
    let answer: Value = response.json().await.context("a WebDriver answer")?;
    if !status.is_success() {
        bail!(
            "{method} {url}: {status}: {} {}",
            answer["value"]["error"],
            answer["value"]["message"]
        );
    }
    Ok(answer["value"].clone())
}

/// One browser window (a WebDriver session), closed when dropped.
pub struct Browser {
    base: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        send(&self.http, method, &format!("{}{path}", self.base), body).await
    }

    /// Opens `url` and waits until it has loaded.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await?;
        Ok(())
    }

    pub async fn current_url(&self) -> anyhow::Result<String> {
        let url = self.command(reqwest::Method::GET, "/url", None).await?;
        Ok(url.as_str().unwrap_or_default().to_owned())
    }

    /// The elements matching `css` now, possibly none.
    pub async fn find_all(&self, css: &str) -> anyhow::Result<Vec<Element>> {
        let found = self
            .command(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        Ok(found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT_KEY].as_str())
            .map(|id| Element(id.to_owned()))
            .collect())
    }

    /// The first element matching `css`, waited for up to [`WAIT`].
    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(element) = self.find_all(css).await?.into_iter().next() {
                return Ok(element);
            }
            if Instant::now() > deadline {
                bail!(
                    "no element matches {css:?} on {}; the page:\n{}",
                    self.current_url().await.unwrap_or_default(),
                    self.page_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until some element matching `css` has text containing every
    /// one of `parts`, and returns that text.
    pub async fn wait_for_text(&self, css: &str, parts: &[&str]) -> anyhow::Result<String> {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            seen.clear();
            for element in self.find_all(css).await? {
                let text = self.text(&element).await.unwrap_or_default();
                if parts.iter().all(|part| text.contains(part)) {
                    return Ok(text);
                }
                seen.push(text);
            }
            if Instant::now() > deadline {
                bail!("no {css:?} shows {parts:?}; seen: {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's markup, shortened, for a failure's message.
    async fn page_text(&self) -> String {
        let html = self
            .execute("return document.documentElement.outerHTML;", vec![])
            .await
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|err| format!("(unreadable: {err:#})"));
        html.chars().take(3000).collect()
    }

    pub async fn text(&self, element: &Element) -> anyhow::Result<String> {
        let text = self
            .command(
                reqwest::Method::GET,
                &format!("/element/{}/text", element.0),
                None,
            )
            .await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// An attribute of `element`, `None` when it has none.
    pub async fn attribute(&self, element: &Element, name: &str) -> anyhow::Result<Option<String>> {
        let value = self
            .command(
                reqwest::Method::GET,
                &format!("/element/{}/attribute/{name}", element.0),
                None,
            )
            .await?;
        Ok(value.as_str().map(str::to_owned))
    }

    pub async fn click(&self, element: &Element) -> anyhow::Result<()> {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/click", element.0),
            None,
        )
        .await?;
        Ok(())
    }

    /// Empties a text field and types `text` into it.
    pub async fn fill(&self, element: &Element, text: &str) -> anyhow::Result<()> {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/clear", element.0),
            None,
        )
        .await?;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        )
        .await?;
        Ok(())
    }

    /// Presses keys (WebDriver key codes such as `\u{E004}` for Tab) as the
    /// user would, wherever the focus is.
    pub async fn press(&self, keys: &str) -> anyhow::Result<()> {
        let mut actions = Vec::new();
        for key in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": key.to_string()}));
            actions.push(json!({"type": "keyUp", "value": key.to_string()}));
        }
        self.command(
            reqwest::Method::POST,
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .await?;
        Ok(())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page
    /// and returns what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Saves a PNG of the window at `path`.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let data = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().context("no screenshot data")?)
            .context("decode the screenshot")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("write {}", path.display()))?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Best effort: the driver's own exit closes whatever is left.
        let (http, url) = (self.http.clone(), self.base.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to close the browser");
            runtime.block_on(async move {
                let _ = http.delete(url).send().await;
            });
        })
        .join();
    }
}
