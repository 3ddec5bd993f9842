//! Headless Chromium driven over WebDriver (`chromedriver`), for the console's browser tests.
//!
//! Debian's `chromium` and `chromium-driver` packages provide both (`.ci/run` installs them). A missing
//! browser fails the test with what to install; it never skips.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};

/// A browser session and the driver process behind it.
#[derive(Debug)]
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    driver: Child,
    profile: tempfile::TempDir,
}

fn find(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    std::env::var_os(env)
        .map(PathBuf::from)
        .into_iter()
        .chain(candidates.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

impl Browser {
    /// Starts `chromedriver` on a free loopback port and a headless Chromium session through it.
    pub async fn start() -> anyhow::Result<Self> {
        let Some(driver_bin) = find(
            "CAUSEWAY_CHROMEDRIVER",
            &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
        ) else {
            bail!(
                "chromedriver is not installed: install Debian's `chromium` and `chromium-driver` (`.ci/run` does), or set CAUSEWAY_CHROMEDRIVER"
            );
        };
        let Some(chromium) = find(
            "CAUSEWAY_CHROMIUM",
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        ) else {
            bail!(
                "chromium is not installed: install Debian's `chromium` (`.ci/run` does), or set CAUSEWAY_CHROMIUM"
            );
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", driver_bin.display()))?;
        let profile = tempfile::tempdir()?;
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,1000", "--no-first-run", "--disable-extensions",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        let capabilities = match capabilities {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("an object literal"),
        };
        let url = format!("http://127.0.0.1:{port}");
        // The driver takes a moment to listen: retry the session until it does, or until it has exited.
        let mut driver = driver;
        let mut last = None;
        for _ in 0..200 {
            if let Some(status) = driver.try_wait()? {
                bail!("chromedriver exited at start ({status})");
            }
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Ok(Self {
                        client,
                        driver,
                        profile,
                    });
                }
                Err(e) => last = Some(e.to_string()),
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = driver.kill();
        bail!("no browser session: {}", last.unwrap_or_default())
    }

    /// The text of the page's `main` element, read again while a navigation replaces the page under it.
    pub async fn main_text(&self) -> anyhow::Result<String> {
        self.text_of("main").await
    }

    /// The text of the element `css`, read again while a navigation replaces the page under it.
    pub async fn text_of(&self, css: &str) -> anyhow::Result<String> {
        let mut last = None;
        for _ in 0..100 {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => match element.text().await {
                    Ok(text) => return Ok(text),
                    Err(e) => last = Some(e.to_string()),
                },
                Err(e) => last = Some(e.to_string()),
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        bail!("no `{css}` on the page: {}", last.unwrap_or_default())
    }

    /// Waits until the page's `main` holds `text`; returns all of it.
    pub async fn wait_for_text(&self, text: &str) -> anyhow::Result<String> {
        let mut seen = String::new();
        for _ in 0..200 {
            seen = self.main_text().await?;
            if seen.contains(text) {
                return Ok(seen);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        bail!("the page never showed `{text}`: {seen}")
    }

    /// Waits until the page's address contains `part`.
    pub async fn wait_for_url(&self, part: &str) -> anyhow::Result<()> {
        for _ in 0..200 {
            if self.client.current_url().await?.as_str().contains(part) {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        bail!("the browser never reached an address with `{part}`")
    }

    /// Waits until the page's heading is no longer `heading` (a form's answer has replaced its page).
    pub async fn wait_past(&self, heading: &str) -> anyhow::Result<()> {
        for _ in 0..200 {
            if self.text_of("h1").await? != heading {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        bail!("the page stayed at `{heading}`")
    }

    /// Sets the value of the form field `name` (typing into it).
    pub async fn fill(&self, name: &str, value: &str) -> anyhow::Result<()> {
        let field = self
            .client
            .find(Locator::Css(&format!("[name=\"{name}\"]")))
            .await
            .with_context(|| format!("no field `{name}`"))?;
        field.clear().await?;
        field.send_keys(value).await?;
        Ok(())
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("no element `{css}`"))?
            .click()
            .await?;
        Ok(())
    }

    /// The `Cookie` header the browser would send to the console.
    pub async fn cookie_header(&self) -> anyhow::Result<String> {
        Ok(self
            .client
            .get_all_cookies()
            .await?
            .iter()
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect::<Vec<_>>()
            .join("; "))
    }

    /// Saves a PNG screenshot of the page as `dir/name.png`.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await?)?;
        Ok(path)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Killing the driver leaves the browser it started running (its processes are re-parented, not
        // ended): end every process whose command line names this session's profile directory.
        let profile = self.profile.path().display().to_string();
        let pids: Vec<String> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let pid = entry.file_name().into_string().ok()?;
                pid.parse::<u32>().ok()?;
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                String::from_utf8_lossy(&cmdline)
                    .contains(&profile)
                    .then_some(pid)
            })
            .collect();
        if !pids.is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(&pids)
                .stderr(Stdio::null())
                .status();
        }
    }
}
