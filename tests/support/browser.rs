//! A real browser for the web pages' tests: Debian's `chromium`, headless, driven through its
//! `chromedriver` (a process this harness starts on a free port) with `thirtyfour`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thirtyfour::prelude::*;

/// A running chromedriver and one browser session; both end when dropped (or by `quit`).
pub struct Browser {
    driver: Option<WebDriver>,
    chromedriver: Child,
    _profile: super::Scratch,
}

impl Browser {
    pub async fn start(test: &str) -> Browser {
        let port = super::free_port();
        let chromedriver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; scripts/test installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = super::Scratch::new(&format!("{test}-chromium"));
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary("/usr/bin/chromium").unwrap();
        // This machine's network is closed: nothing in the background may try to reach out.
        for arg in [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=420,900",
            &format!("--user-data-dir={}", profile.path().display()),
        ] {
            caps.add_arg(arg).unwrap();
        }
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps)
            .await
            .expect("a chromium session");
        Browser {
            driver: Some(driver),
            chromedriver,
            _profile: profile,
        }
    }

    pub fn driver(&self) -> &WebDriver {
        self.driver.as_ref().unwrap()
    }

    /// The page's main heading.
    pub async fn heading(&self) -> String {
        self.driver()
            .find(By::Css("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) {
        self.driver()
            .find(By::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// The main heading once it reads `expected` (a click's navigation takes a moment), or what
    /// it read after ten seconds.
    pub async fn heading_becomes(&self, expected: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = match self.driver().find(By::Css("h1")).await {
                Ok(h1) => h1.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if seen == expected || Instant::now() > deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A screenshot of the page into the tests' output folder (`target/tmp/pages/NAME.png`).
    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("pages");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        self.driver().screenshot(&path).await.unwrap();
        path
    }

    pub async fn quit(mut self) {
        if let Some(driver) = self.driver.take() {
            let _ = driver.quit().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}
