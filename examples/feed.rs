//! # feed: tail a filter across several relays, each event once
//!
//! Shows a read-only client: one [`Subscribe`] with a filter built from the command line
//! (`--kind`, `--author npub1…`, `--since <unix time>`) goes to every relay of the pool; the
//! pool verifies each event and de-duplicates across relays, so an event stored on several
//! relays is printed once. Connection changes — connected, disconnected with the reason and
//! the next retry, failed attempts — are printed as they happen, and the subscription is
//! re-sent by the pool after every reconnect.
//!
//! With no arguments it runs offline against two embedded relays (two paths of one
//! [`TestRelay`](actix_nostr::testing::TestRelay), each with its own store) that hold
//! overlapping events; halfway through the run the relay restarts, both connections drop and
//! come back, and still nothing is printed twice. It exits by itself after a few seconds:
//!
//! ```sh
//! cargo run --example feed
//! ```
//!
//! Against real relays it runs until Ctrl-C:
//!
//! ```sh
//! cargo run --example feed -- --relay wss://relay.damus.io --relay wss://nos.lol \
//!     --kind 1 --author npub1… --since 1700000000
//! ```
//!
//! `--run-for <secs>` and `--exit-after <n events>` bound a run; `--help` lists the flags.

mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_nostr::pool::{ListRelays, RelayPool, Shutdown, Stats, Subscribe};
use actix_nostr::protocol::{nip19, Event, EventBuilder, Filter, Keys, Kind, Timestamp};
use actix_nostr::relay::{MessageKind, RelayError, RelayMessage, RelayState};
use actix_nostr::testing::TestRelay;
use common::{hhmmss, now_hhmmss, one_line, reply_mark, short_npub, Args};
use futures_util::future::{select, Either};
use tokio::sync::oneshot;

const HELP: &str = "\
feed: tails a filter across several relays, printing each event once

USAGE:
    cargo run --example feed [-- FLAGS]

FLAGS:
    --relay <wss://…>     read this relay instead of the embedded ones (repeatable);
                          then the run lasts until Ctrl-C
    --kind <n>            event kind to show (repeatable; default 1, text notes)
    --author <npub1…>     only these authors (repeatable)
    --since <unix time>   only events created at or after this time
    --limit <n>           stored events asked from each relay (default 50)
    --exit-after <n>      stop after printing n events
    --run-for <secs>      stop after this long (default: 5 s on the embedded relays)
    --help                this text";

/// How long an offline run lasts when `--run-for` is not given.
const EMBEDDED_RUN: Duration = Duration::from_secs(5);

/// When, in an offline run, the embedded relay restarts.
const RESTART_AFTER: Duration = Duration::from_millis(2000);

struct Config {
    relays: Vec<String>,
    filter: Filter,
    exit_after: Option<usize>,
    run_for: Option<Duration>,
}

fn parse_args() -> Result<Option<Config>, String> {
    let mut args = Args::from_env();
    if args.flag("--help")? {
        return Ok(None);
    }
    let mut kinds = Vec::new();
    for kind in args.values("--kind")? {
        let n: u16 = kind.parse().map_err(|e| format!("--kind {kind:?}: {e}"))?;
        kinds.push(Kind::new(n));
    }
    if kinds.is_empty() {
        kinds.push(Kind::TEXT_NOTE);
    }
    let mut authors = Vec::new();
    for npub in args.values("--author")? {
        authors.push(nip19::decode_npub(&npub).map_err(|e| format!("--author {npub:?}: {e}"))?);
    }
    let mut filter = Filter::new()
        .kinds(kinds)
        .limit(args.value("--limit")?.unwrap_or(50));
    if !authors.is_empty() {
        filter = filter.authors(authors);
    }
    if let Some(since) = args.value::<u64>("--since")? {
        filter = filter.since(Timestamp::from_secs(since));
    }
    let config = Config {
        relays: args.values("--relay")?,
        filter,
        exit_after: args.value("--exit-after")?,
        run_for: args.seconds("--run-for")?,
    };
    args.finish()?;
    Ok(Some(config))
}

// ---- The printer ---------------------------------------------------------------------------

/// Prints each event it receives and every connection change.
struct Printer {
    printed: usize,
    exit_after: Option<usize>,
    /// Fired once `exit_after` events are printed.
    enough: Option<oneshot::Sender<()>>,
}

impl Actor for Printer {
    type Context = Context<Self>;
}

impl Handler<RelayMessage> for Printer {
    type Result = ();

    fn handle(&mut self, msg: RelayMessage, _ctx: &mut Context<Self>) {
        let relay = &msg.relay;
        match msg.kind {
            MessageKind::Event { event, .. } => self.print(&event, relay.as_str()),
            MessageKind::Connected => println!("{}  ● {relay} connected", now_hhmmss()),
            MessageKind::Disconnected { reason, next_retry } => {
                let retry = next_retry
                    .map(|d| format!("; next attempt in {d:.1?}"))
                    .unwrap_or_default();
                println!("{}  ○ {relay} disconnected: {reason}{retry}", now_hhmmss());
            }
            MessageKind::Error(RelayError::ConnectFailed {
                attempt,
                next_retry,
                reason,
                ..
            }) => println!(
                "{}  ○ {relay} attempt {attempt} failed ({reason}); next in {next_retry:.1?}",
                now_hhmmss()
            ),
            MessageKind::Error(error) => log::warn!("{relay}: {error}"),
            MessageKind::Eose(_) => {
                println!(
                    "{}  — {relay}: stored events done, now live —",
                    now_hhmmss()
                )
            }
            MessageKind::Closed { message, .. } => {
                println!(
                    "{}  {relay} ended the subscription: {message}",
                    now_hhmmss()
                )
            }
            MessageKind::Notice(text) => println!("{}  {relay} says: {text}", now_hhmmss()),
            _ => {}
        }
    }
}

impl Printer {
    fn print(&mut self, event: &Event, relay: &str) {
        self.printed += 1;
        println!(
            "{}  {}  kind {:<5} {}{}  [id {} via {}]",
            hhmmss(event.created_at),
            short_npub(&event.pubkey),
            event.kind.to_string(),
            reply_mark(event),
            one_line(&event.content, 80),
            &event.id.to_hex()[..12],
            relay
                .trim_start_matches("wss://")
                .trim_start_matches("ws://"),
        );
        if self.exit_after.is_some_and(|n| self.printed >= n) {
            if let Some(enough) = self.enough.take() {
                let _ = enough.send(());
            }
        }
    }
}

// ---- The offline demo ------------------------------------------------------------------------

/// Fills the two embedded relays: three people, some notes on both relays, some on one.
fn fill(relay: &TestRelay) -> usize {
    let people: Vec<Keys> = (0..3).map(|_| Keys::generate()).collect();
    let note = |who: usize, text: &str, minutes_ago: u64| {
        EventBuilder::text_note(text)
            .created_at(Timestamp::now().saturating_sub(Duration::from_secs(60 * minutes_ago)))
            .sign(&people[who])
    };
    let both = [
        note(0, "on both relays: printed once", 9),
        note(1, "also on both relays", 7),
        note(2, "a third copy-everywhere note", 5),
    ];
    let east_only = [note(0, "only on east", 8), note(1, "east again", 3)];
    let west_only = [note(2, "only on west", 6)];
    for event in &both {
        relay.publish_at("/east", event.clone());
        relay.publish_at("/west", event.clone());
    }
    for event in east_only {
        relay.publish_at("/east", event);
    }
    for event in west_only {
        relay.publish_at("/west", event);
    }
    both.len() + 3
}

/// While the feed runs: a live note on both relays, a restart, another live note.
async fn demo_script(relay: &mut TestRelay) -> Result<(), String> {
    let live = Keys::generate();
    actix::clock::sleep(Duration::from_millis(800)).await;
    let first = EventBuilder::text_note("live, sent to both relays at once").sign(&live);
    relay.publish_at("/east", first.clone());
    relay.publish_at("/west", first);

    actix::clock::sleep(RESTART_AFTER - Duration::from_millis(800)).await;
    println!(
        "{}  (demo: restarting the embedded relay, events kept)",
        now_hhmmss()
    );
    relay
        .restart(true)
        .await
        .map_err(|e| format!("restarting the embedded relay: {e}"))?;
    // Both connections come back (after their backoff); the pool re-sends the
    // subscription with `since` moved up, and de-dup absorbs the overlap.
    relay
        .wait_until(
            |r| r.open_subscriptions().len() == 2,
            Duration::from_secs(5),
        )
        .await
        .map_err(|e| format!("waiting for the pool to resubscribe: {e}"))?;
    let after = EventBuilder::text_note("live again after the restart").sign(&live);
    relay.publish_at("/west", after);
    std::future::pending().await
}

// ---- main ------------------------------------------------------------------------------------

#[actix::main]
async fn main() -> ExitCode {
    common::init_logging("warn");
    common::main_with("feed", HELP, parse_args(), run).await
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut relay = None;
    let urls = if config.relays.is_empty() {
        let embedded = TestRelay::start().await?;
        let stored = fill(&embedded);
        println!(
            "embedded relays {} and {}: {stored} distinct notes stored, 3 of them on both",
            embedded.url_for("/east"),
            embedded.url_for("/west"),
        );
        let urls = vec![embedded.url_for("/east"), embedded.url_for("/west")];
        relay = Some(embedded);
        urls
    } else {
        config.relays.clone()
    };

    let (enough_tx, enough_rx) = oneshot::channel();
    let printer = Printer {
        printed: 0,
        exit_after: config.exit_after,
        enough: Some(enough_tx),
    }
    .start();
    let mut builder = RelayPool::builder().recipient(printer.recipient());
    for url in &urls {
        builder = builder.relay(url.as_str());
    }
    let pool = builder.start()?;
    // A snapshot: each connection runs on its own arbiter, so by now a relay may already be
    // connected (its `Connected` message is on the way to the printer too).
    for info in pool.send(ListRelays).await? {
        let state = match info.state {
            RelayState::Connecting { attempt } => format!("connecting (attempt {attempt})"),
            RelayState::Connected => "connected already".to_owned(),
            RelayState::WaitingToRetry { attempt, delay, .. } => {
                format!("attempt {attempt} in {delay:.1?}")
            }
            other => format!("{other:?}"),
        };
        println!("{}  … {} {state}", now_hhmmss(), info.url);
    }
    println!("filter: {}", config.filter.as_json());
    pool.send(Subscribe::new(vec![config.filter.clone()]))
        .await??;

    let run_for = config.run_for.or(relay.is_some().then_some(EMBEDDED_RUN));
    if run_for.is_none() {
        println!("running until Ctrl-C");
    }
    // Whichever ends first: enough events, the time limit or Ctrl-C, or a failed demo.
    let demo = async {
        match relay.as_mut() {
            Some(relay) => demo_script(relay).await,
            None => std::future::pending().await,
        }
    };
    let stop = select(Box::pin(enough_rx), Box::pin(common::ctrl_c_or(run_for)));
    let outcome = match select(Box::pin(demo), stop).await {
        Either::Left((Err(e), _)) => Err(e),
        _ => Ok(()),
    };

    let stats = pool.send(Stats).await?;
    common::print_summary(&stats, started.elapsed());
    if actix::clock::timeout(Duration::from_secs(5), pool.send(Shutdown))
        .await
        .is_err()
    {
        log::warn!("shutdown took longer than 5 s; exiting anyway");
    }
    drop(relay);
    Ok(outcome?)
}
