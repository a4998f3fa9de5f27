//! Smoke tests of the examples: each example binary runs offline against its embedded
//! relays, bounded by its own flags and by a deadline here, and what it prints is checked.
//! A broken example fails CI. (`cargo test` builds the examples before running this.)
#![cfg(feature = "testing")]

mod examples_support;

use std::collections::HashSet;
#[cfg(unix)]
use std::process::Command;
use std::time::Duration;

use actix_nostr::protocol::Keys;
#[cfg(unix)]
use actix_nostr::testing::TestRelay;
use examples_support::{host_port, http, run, spawn};

/// The bound on any one example run; each example also bounds itself.
const DEADLINE: Duration = Duration::from_secs(30);

// ---- quickstart ----------------------------------------------------------------------------

#[test]
fn quickstart_prints_a_live_feed_and_a_summary_then_exits() {
    let out = run("quickstart", &["--run-for", "4"], DEADLINE);
    assert!(out.status.success(), "{out}");
    assert_eq!(
        out.lines_with("● connected to ws://127.0.0.1:").len(),
        1,
        "{out}"
    );
    // The two stored notes, then every step of the bot's script, as feed lines.
    for text in [
        "an older note, stored before we came",
        "gm nostr! This note was signed by an actix actor.",
        "↳ Replying to my first note",
        "↳ And a reply to the reply",
    ] {
        let lines = out.lines_with(text);
        assert_eq!(lines.len(), 1, "{text:?} once in the feed\n{out}");
        assert!(
            lines[0].contains("npub1") && lines[0].contains("kind 1"),
            "{out}"
        );
    }
    assert_eq!(
        out.lines_with("accepted by 1 of 1 relays").len(),
        4,
        "each publish reports its OK\n{out}"
    );
    assert!(out.stdout.contains("summary after"), "{out}");
    assert!(out.stdout.contains("the feed printed 6 events"), "{out}");
    let total = out.lines_with("  total ");
    assert_eq!(total.len(), 1, "{out}");
    assert!(
        out.stdout.contains("disconnected: shutdown"),
        "close frames sent\n{out}"
    );
}

/// With `--relay`, quickstart reads the given relays (here a local one: tests never reach a
/// public relay), publishes nothing there without `--publish`, and runs until Ctrl-C, then
/// shuts the pool down cleanly.
#[cfg(unix)]
#[test]
fn quickstart_on_given_relays_runs_until_ctrl_c_and_publishes_nothing() {
    let relay = actix::System::new()
        .block_on(TestRelay::start())
        .expect("relay starts");
    let mut quickstart = spawn("quickstart", &["--relay", &relay.url()], &[]);
    quickstart.wait_for_line("running until Ctrl-C", DEADLINE);
    quickstart.wait_for_line("● connected to", DEADLINE);
    let interrupted = Command::new("kill")
        .args(["-INT", &quickstart.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let out = quickstart.finish(DEADLINE);
    assert!(out.status.success(), "{out}");
    assert!(out.stdout.contains("Ctrl-C: shutting down"), "{out}");
    assert!(out.stdout.contains("summary after"), "{out}");
    assert!(out.stdout.contains("disconnected: shutdown"), "{out}");
    assert!(
        !out.stdout.contains("bot is"),
        "no bot on given relays\n{out}"
    );
    assert!(relay.stored_events().is_empty(), "nothing published");
}

#[test]
fn quickstart_help_lists_the_flags() {
    let out = run("quickstart", &["--help"], DEADLINE);
    assert!(out.status.success(), "{out}");
    for flag in ["--relay", "--publish", "--run-for", "--help"] {
        assert!(out.stdout.contains(flag), "{flag} in --help\n{out}");
    }
}

#[test]
fn quickstart_fails_cleanly_on_a_bad_relay_url_or_flag() {
    // Not a ws:// URL: refused before any connection is attempted (no network).
    let out = run(
        "quickstart",
        &["--relay", "http://example.invalid"],
        DEADLINE,
    );
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("quickstart:"), "{out}");
    assert!(!out.stderr.contains("panicked"), "{out}");

    let out = run("quickstart", &["--no-such-flag"], DEADLINE);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("unknown argument"), "{out}");
}

// ---- reply_bot -----------------------------------------------------------------------------

#[test]
fn reply_bot_answers_each_mention_and_logs_each_relays_verdict() {
    let out = run("reply_bot", &["--run-for", "20"], DEADLINE);
    assert!(out.status.success(), "{out}");
    let log = out.all();
    assert_eq!(log.matches("mentioned by npub1").count(), 3, "{out}");
    // Each reply: accepted by the open relay, rejected with its reason by the other.
    assert_eq!(
        log.matches(" accepted by ws://127.0.0.1:").count(),
        3,
        "{out}"
    );
    assert_eq!(
        log.matches("(Restricted): restricted: members only")
            .count(),
        3,
        "{out}"
    );
    assert!(log.contains("answered 3 notes"), "{out}");
}

#[test]
fn reply_bot_uses_the_key_from_nostr_nsec() {
    let secret = "0000000000000000000000000000000000000000000000000000000000000003";
    let npub = Keys::parse(secret).expect("a valid key").npub();
    let nsec = Keys::parse(secret).expect("a valid key").nsec();
    let out = spawn(
        "reply_bot",
        &["--exit-after", "1", "--run-for", "20"],
        &[("NOSTR_NSEC", &nsec)],
    )
    .finish(DEADLINE);
    assert!(out.status.success(), "{out}");
    assert!(out.all().contains(&format!("the bot is {npub}")), "{out}");
    assert!(
        !out.all().contains(&nsec),
        "the secret is never printed\n{out}"
    );

    let out = spawn("reply_bot", &[], &[("NOSTR_NSEC", "nsec1notakey")]).finish(DEADLINE);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("NOSTR_NSEC"), "{out}");
}

// ---- feed ----------------------------------------------------------------------------------

/// The 12-hex-digit ids of the events a feed run printed, in order.
fn printed_ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.split("[id ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn feed_prints_each_event_once_across_relays_and_a_restart() {
    let out = run("feed", &[], DEADLINE);
    assert!(out.status.success(), "{out}");
    let ids = printed_ids(&out.stdout);
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(ids.len(), distinct.len(), "an event printed twice\n{out}");
    // 6 stored (3 of them on both relays) + 1 live on both + 1 live after the restart.
    assert_eq!(ids.len(), 8, "{out}");
    // The pool's snapshot right after start: one line per relay, in whatever state it is by
    // then (a connection on another arbiter may already be up).
    for path in ["/east", "/west"] {
        let snapshot = out
            .stdout
            .lines()
            .filter(|l| l.contains("  … ws://") && l.contains(path))
            .count();
        assert_eq!(snapshot, 1, "snapshot of {path}\n{out}");
    }
    // State changes as they happen: each relay connects, drops at the restart, reconnects.
    // (`●` marks a `Connected` message; the snapshot's "connected already" is not one.)
    assert!(out.lines_with("  ● ").len() >= 4, "{out}");
    assert!(
        out.lines_with(" disconnected: connection lost").len() >= 2,
        "{out}"
    );
    let dedup = out
        .lines_with("duplicate deliveries suppressed")
        .first()
        .map(|l| l.to_string())
        .unwrap_or_default();
    assert!(!dedup.contains(" 0 duplicate deliveries"), "{out}");
}

#[test]
fn feed_filters_and_stops_after_n_events() {
    let npub = Keys::generate().npub();
    // An author nobody on the embedded relays is: nothing is printed.
    let out = run("feed", &["--author", &npub, "--run-for", "1.5"], DEADLINE);
    assert!(out.status.success(), "{out}");
    assert!(out.stdout.contains(r#""authors":["#), "{out}");
    assert_eq!(printed_ids(&out.stdout).len(), 0, "{out}");

    let out = run("feed", &["--exit-after", "3", "--run-for", "20"], DEADLINE);
    assert!(out.status.success(), "{out}");
    assert!(printed_ids(&out.stdout).len() >= 3, "{out}");
    assert!(
        !out.stdout.contains("restarting"),
        "stopped before the demo's restart\n{out}"
    );

    let out = run("feed", &["--author", "npub1nope"], DEADLINE);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("--author"), "{out}");
}

// ---- web_bridge ----------------------------------------------------------------------------

#[test]
fn web_bridge_serves_the_page_and_publishes_through_the_pool() {
    let mut bridge = spawn("web_bridge", &["--port", "0", "--run-for", "8"], &[]);
    let line = bridge.wait_for_line("serving the live feed at http://", DEADLINE);
    let url = line.rsplit(' ').next().unwrap_or_default();
    let addr = host_port(url);
    let wait = Duration::from_secs(10);

    let page = http(&addr, "GET", "/", None, wait).expect("GET /");
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.body.contains(r#"<form id="compose">"#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"new WebSocket("#), "{}", page.body);

    let published = http(
        &addr,
        "POST",
        "/publish",
        Some(r#"{"content":"hello from the smoke test"}"#),
        wait,
    )
    .expect("POST /publish");
    assert_eq!(published.status, 200, "{published:?}");
    let body: serde_json::Value = serde_json::from_str(&published.body).expect("JSON");
    assert_eq!(body["accepted"], 1, "{body}");

    let empty =
        http(&addr, "POST", "/publish", Some(r#"{"content":"  "}"#), wait).expect("POST /publish");
    assert_eq!(empty.status, 400, "{empty:?}");

    let out = bridge.finish(DEADLINE);
    assert!(out.status.success(), "{out}");
}
