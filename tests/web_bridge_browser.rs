//! The web_bridge example in a real browser: headless Chromium, driven through chromedriver's
//! WebDriver HTTP API, loads the page, publishes a note with the page's form, and the note
//! must come back through the relay, the pool and the WebSocket session into the page.
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`.ci/run` installs them).
//! Without them the test is skipped with a loud message, except when `CI` is set: then it
//! fails, because CI must run it.
#![cfg(feature = "testing")]

mod examples_support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use examples_support::{host_port, http, spawn};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The bound on each step: starting things, one WebDriver command, seeing a change.
const STEP: Duration = Duration::from_secs(20);

/// The WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Both browser binaries, or `None` (skip) on a developer's machine without them.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let (chromium, driver) = (PathBuf::from(CHROMIUM), PathBuf::from(CHROMEDRIVER));
    if chromium.is_file() && driver.is_file() {
        return Some((chromium, driver));
    }
    let missing = "chromium and chromium-driver are not installed \
                   (apt-get install chromium chromium-driver)";
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but {missing}");
    }
    eprintln!("\n*** SKIPPED web_bridge browser test: {missing} ***\n");
    None
}

/// chromedriver in a process group of its own, so the browser it starts dies with it.
struct Driver {
    child: Child,
    addr: String,
    session: Option<String>,
    profile: PathBuf,
}

impl Driver {
    fn start(driver: &Path) -> Driver {
        // A free port: bind, read it, let go. chromedriver cannot report a port it chose.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new(driver);
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("chromedriver starts");
        let profile = std::env::temp_dir().join(format!(
            "actix-nostr-chromium-{}-{port}",
            std::process::id()
        ));
        let mut driver = Driver {
            child,
            addr: format!("127.0.0.1:{port}"),
            session: None,
            profile,
        };
        let deadline = Instant::now() + STEP;
        loop {
            let ready = http(&driver.addr, "GET", "/status", None, Duration::from_secs(2))
                .ok()
                .and_then(|r| serde_json::from_str::<Value>(&r.body).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return driver;
            }
            if Instant::now() > deadline {
                panic!("chromedriver was not ready within {STEP:?}");
            }
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One WebDriver command; panics with the driver's answer when it fails.
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let response = http(&self.addr, method, path, body.as_deref(), STEP)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let value: Value = serde_json::from_str(&response.body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}: {}", response.body));
        assert_eq!(
            response.status, 200,
            "WebDriver {method} {path} failed: {value}"
        );
        value["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        let id = self.session.as_deref().expect("a session");
        format!("/session/{id}{rest}")
    }

    fn open_browser(&mut self, chromium: &Path) {
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--no-proxy-server", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-extensions",
                    format!("--user-data-dir={}", self.profile.display()),
                ],
            },
        }}});
        let session = self.command("POST", "/session", Some(capabilities));
        let id = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {session}"));
        self.session = Some(id.to_owned());
    }

    /// Runs `script` in the page and returns its result.
    fn script(&self, script: &str) -> Value {
        self.command(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Polls `script` until `done` holds for its result, at most [`STEP`].
    fn wait_for(&self, what: &str, script: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let value = self.script(script);
            if done(&value) {
                return value;
            }
            if Instant::now() > deadline {
                let page = self.script("return document.body.innerText");
                panic!("{what} did not happen within {STEP:?}; last {value}; page:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn element(&self, css: &str) -> String {
        let found = self.command(
            "POST",
            &self.session_path("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Quit the browser through WebDriver, then end chromedriver's whole process group
        // (the browser too, if quitting did not work).
        if let Some(id) = self.session.take() {
            let _ = http(
                &self.addr,
                "DELETE",
                &format!("/session/{id}"),
                None,
                Duration::from_secs(5),
            );
        }
        #[cfg(unix)]
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[test]
fn a_note_published_from_the_page_appears_in_its_live_feed() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let mut bridge = spawn("web_bridge", &["--port", "0", "--run-for", "60"], &[]);
    let line = bridge.wait_for_line("serving the live feed at http://", STEP);
    let url = line.rsplit(' ').next().unwrap_or_default().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let addr = host_port(&url);

    let mut driver = Driver::start(&chromedriver);
    driver.open_browser(&chromium);
    driver.command(
        "POST",
        &driver.session_path("/url"),
        Some(json!({"url": url})),
    );

    // The page's WebSocket is up and the notes stored on the relay were pushed to it.
    driver.wait_for(
        "the page going live",
        "return document.getElementById('status').dataset.state",
        |v| v == "live",
    );
    driver.wait_for(
        "the stored notes reaching the page",
        "return document.getElementById('feed').innerText",
        |v| v.as_str().is_some_and(|t| t.contains("Welcome!")),
    );

    // Publish through the form.
    let text = format!("hello from headless chromium {}", std::process::id());
    let note = driver.element("#note");
    driver.command(
        "POST",
        &driver.session_path(&format!("/element/{note}/value")),
        Some(json!({"text": text})),
    );
    let send = driver.element("#send");
    driver.command(
        "POST",
        &driver.session_path(&format!("/element/{send}/click")),
        Some(json!({})),
    );

    // The note went to the relay, came back through the subscription, the hub and the
    // session, and is now in the page — once.
    driver.wait_for(
        "the published note appearing in the feed",
        "return document.getElementById('feed').innerText",
        |v| v.as_str().is_some_and(|t| t.contains(&text)),
    );
    let result = driver.wait_for(
        "the publish result",
        "return document.getElementById('result').innerText",
        |v| v.as_str().is_some_and(|t| t.starts_with("published ")),
    );
    assert!(
        result
            .as_str()
            .is_some_and(|t| t.contains("accepted by 1 of 1 relays")),
        "{result}"
    );
    let copies = driver.script(&format!(
        "return Array.from(document.querySelectorAll('#feed .content'))\
         .filter(e => e.textContent === {}).length",
        json!(text)
    ));
    assert_eq!(copies, 1, "the note appears once");

    // The server is still healthy after the browser's visit.
    let page = http(&addr, "GET", "/", None, STEP).expect("GET /");
    assert_eq!(page.status, 200);
    drop(driver);
    drop(bridge);
}
