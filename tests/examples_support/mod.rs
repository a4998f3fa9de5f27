//! Running the example binaries from tests: finding them, bounded waits on their output and
//! their exit, and a tiny HTTP/1.1 client for the web example and chromedriver. Every wait
//! has a deadline; a process still running when its guard drops is killed.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// `target/<profile>/examples/<name>`, found from this test binary's own path
/// (`target/<profile>/deps/<test>-<hash>`). `cargo test` builds the examples before running
/// the tests; `cargo test --test <this file>` alone does not, hence the message.
pub fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "example binary {} is missing: build the examples first (`cargo test` does; or \
         `cargo build --examples`)",
        path.display()
    );
    path
}

/// Everything a process wrote so far, line by line, and whether its streams ended.
#[derive(Default)]
struct Output {
    stdout: Vec<String>,
    stderr: Vec<String>,
    closed: usize,
}

/// A running example. Killed when dropped.
pub struct Running {
    name: String,
    child: Child,
    output: Arc<(Mutex<Output>, Condvar)>,
}

/// What an example printed, and how it ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Both streams, for searching logs wherever they went.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The lines of stdout that contain `needle`.
    pub fn lines_with<'a>(&'a self, needle: &'a str) -> Vec<&'a str> {
        self.stdout.lines().filter(|l| l.contains(needle)).collect()
    }
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Starts example `name` with `args`. The environment is pinned so a developer's own
/// `RUST_LOG` or `NOSTR_NSEC` does not change what the tests see.
pub fn spawn(name: &str, args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut command = Command::new(example_path(name));
    command
        .args(args)
        .env_remove("NOSTR_NSEC")
        .env("RUST_LOG", "info,actix_server=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
    let output = Arc::new((Mutex::new(Output::default()), Condvar::new()));
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    collect(stdout, Arc::clone(&output), |o, l| o.stdout.push(l));
    collect(stderr, Arc::clone(&output), |o, l| o.stderr.push(l));
    Running {
        name: name.to_owned(),
        child,
        output,
    }
}

fn collect(
    stream: impl Read + Send + 'static,
    output: Arc<(Mutex<Output>, Condvar)>,
    push: fn(&mut Output, String),
) {
    std::thread::spawn(move || {
        let (lock, changed) = &*output;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            push(&mut lock.lock().unwrap_or_else(|e| e.into_inner()), line);
            changed.notify_all();
        }
        lock.lock().unwrap_or_else(|e| e.into_inner()).closed += 1;
        changed.notify_all();
    });
}

impl Running {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most `timeout`) for a stdout line containing `needle` and returns it.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let (lock, changed) = &*self.output;
        let mut output = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(line) = output.stdout.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || output.closed == 2 {
                let seen = format!(
                    "--- stdout ---\n{}\n--- stderr ---\n{}",
                    output.stdout.join("\n"),
                    output.stderr.join("\n")
                );
                drop(output);
                let _ = self.child.kill();
                panic!(
                    "example {} printed no line with {needle:?} within {timeout:?}\n{seen}",
                    self.name
                );
            }
            output = changed
                .wait_timeout(output, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits (at most `timeout`) for the example to exit by itself; kills it and fails the
    /// test if it does not.
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(25))
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let (stdout, stderr) = self.collected();
                    panic!(
                        "example {} did not exit within {timeout:?}; killed\n\
                         --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
                        self.name
                    );
                }
                Err(e) => panic!("waiting for example {}: {e}", self.name),
            }
        };
        let (stdout, stderr) = self.collected();
        Finished {
            status,
            stdout,
            stderr,
        }
    }

    /// The output so far, after giving the reader threads a moment to drain the pipes.
    fn collected(&self) -> (String, String) {
        let (lock, changed) = &*self.output;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut output = lock.lock().unwrap_or_else(|e| e.into_inner());
        while output.closed < 2 && Instant::now() < deadline {
            output = changed
                .wait_timeout(output, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        (output.stdout.join("\n"), output.stderr.join("\n"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs an example to its end, bounded by `timeout`.
pub fn run(name: &str, args: &[&str], timeout: Duration) -> Finished {
    spawn(name, args, &[]).finish(timeout)
}

// ---- A tiny HTTP/1.1 client ----------------------------------------------------------------

/// An HTTP response: status code and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// One request on a fresh connection (`Connection: close`), with a deadline on connecting,
/// writing and reading. `addr` is `host:port`; `body` is sent as JSON when given.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<Response> {
    let socket = addr
        .parse()
        .map_err(|e| std::io::Error::other(format!("{addr}: {e}")))?;
    let mut stream = TcpStream::connect_timeout(&socket, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;

    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut length = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let mut bytes = Vec::new();
    match length {
        Some(n) => {
            bytes.resize(n, 0);
            reader.read_exact(&mut bytes)?;
        }
        None => {
            reader.read_to_end(&mut bytes)?;
        }
    }
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// `host:port` of an `http://host:port/` URL printed by an example.
pub fn host_port(url: &str) -> String {
    url.trim()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}
