//! # quickstart: a bot and a live feed through a relay pool
//!
//! Shows the whole loop in one file: a [`RelayPool`] connected to a relay, a bot actor that
//! signs and publishes a few notes and NIP-10 replies with [`Publish`] (and prints each
//! relay's `OK`), and a feed actor that implements `Handler<RelayMessage>` and prints what
//! the relay sends back — time, short npub, kind, content — with connection changes. At the
//! end it prints the pool's counters from [`Stats`] and sends [`Shutdown`], so every relay
//! gets a close frame.
//!
//! With no arguments it needs no network: it starts an embedded relay
//! ([`TestRelay`](actix_nostr::testing::TestRelay)) in the process and exits by itself after
//! a few seconds:
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! With `--relay` (repeatable) it reads real relays instead and runs until Ctrl-C; the bot
//! stays quiet there unless `--publish` is given, so public relays get no demo notes:
//!
//! ```sh
//! cargo run --example quickstart -- --relay wss://relay.damus.io --relay wss://nos.lol
//! ```
//!
//! `--run-for <secs>` bounds any run; `--help` lists the flags. `RUST_LOG=debug` shows the
//! library's logs.

mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_nostr::pool::{Publish, PublishResult, RelayPool, Shutdown, Stats, Subscribe};
use actix_nostr::protocol::{Event, EventBuilder, Filter, Keys, Kind, Timestamp};
use actix_nostr::relay::{MessageKind, PublishOutcome, RelayMessage};
use actix_nostr::testing::TestRelay;
use common::{hhmmss, now_hhmmss, one_line, reply_mark, reply_tags, short_note, short_npub, Args};

const HELP: &str = "\
quickstart: a bot and a live feed through an actix-nostr relay pool

USAGE:
    cargo run --example quickstart [-- FLAGS]

FLAGS:
    --relay <wss://…>   read this relay instead of the embedded one (repeatable);
                        then the run lasts until Ctrl-C
    --publish           with --relay: let the bot publish its demo notes there too
    --run-for <secs>    stop after this long (default: 4 s on the embedded relay,
                        no limit with --relay)
    --help              this text

With no flags an embedded relay runs in the process: no network needed.";

/// How long a run on the embedded relay lasts when `--run-for` is not given.
const EMBEDDED_RUN: Duration = Duration::from_secs(4);

/// How long one `Publish` waits for the relays' `OK`s.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// The bot's script: a note, a second note, a reply to the first, a reply to that reply.
/// Each step names the earlier step it answers.
const SCRIPT: &[(&str, Option<usize>)] = &[
    ("gm nostr! This note was signed by an actix actor.", None),
    (
        "Every event in this feed was verified before you saw it.",
        None,
    ),
    (
        "Replying to my first note: a NIP-10 \"root\" e tag.",
        Some(0),
    ),
    (
        "And a reply to the reply: \"root\" and \"reply\" e tags.",
        Some(2),
    ),
];

/// Time between two notes of the bot.
const BOT_STEP: Duration = Duration::from_millis(400);

struct Config {
    relays: Vec<String>,
    publish: bool,
    run_for: Option<Duration>,
}

fn parse_args() -> Result<Option<Config>, String> {
    let mut args = Args::from_env();
    if args.flag("--help")? {
        return Ok(None);
    }
    let config = Config {
        relays: args.values("--relay")?,
        publish: args.flag("--publish")?,
        run_for: args.seconds("--run-for")?,
    };
    args.finish()?;
    Ok(Some(config))
}

// ---- The feed: what the relays say -------------------------------------------------------

/// Prints every `RelayMessage` it gets as one readable line.
struct Feed {
    events: usize,
}

impl Actor for Feed {
    type Context = Context<Self>;
}

impl Handler<RelayMessage> for Feed {
    type Result = ();

    fn handle(&mut self, msg: RelayMessage, _ctx: &mut Context<Self>) {
        let relay = &msg.relay;
        match msg.kind {
            MessageKind::Event { event, .. } => {
                self.events += 1;
                println!(
                    "{}  {}  kind {:<3} {}{}",
                    hhmmss(event.created_at),
                    short_npub(&event.pubkey),
                    event.kind.to_string(),
                    reply_mark(&event),
                    one_line(&event.content, 100),
                );
            }
            MessageKind::Connected => println!("{}  ● connected to {relay}", now_hhmmss()),
            MessageKind::Disconnected { reason, next_retry } => {
                let retry = next_retry
                    .map(|d| format!(", retrying in {d:.1?}"))
                    .unwrap_or_default();
                println!("{}  ○ {relay} disconnected: {reason}{retry}", now_hhmmss());
            }
            MessageKind::Eose(_) => {
                println!("{}  — end of stored events from {relay} —", now_hhmmss())
            }
            MessageKind::Notice(text) => println!("{}  notice from {relay}: {text}", now_hhmmss()),
            MessageKind::Closed { message, .. } => {
                println!("{}  {relay} closed the feed: {message}", now_hhmmss())
            }
            MessageKind::Error(error) => log::warn!("{relay}: {error}"),
            _ => {}
        }
    }
}

// ---- The bot: signs and publishes -----------------------------------------------------------

/// Publishes [`SCRIPT`] one step at a time, replying as NIP-10 says.
struct Bot {
    keys: Keys,
    pool: Addr<RelayPool>,
    /// The notes published so far, by script step.
    published: Vec<Event>,
    /// Where replies say their parent was seen (the NIP-10 relay hint).
    relay_hint: String,
}

impl Actor for Bot {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        println!("bot is {}", self.keys.npub());
        ctx.run_interval(BOT_STEP, |bot, ctx| bot.step(ctx));
    }
}

impl Bot {
    fn step(&mut self, ctx: &mut Context<Self>) {
        let Some(&(text, answers)) = SCRIPT.get(self.published.len()) else {
            ctx.stop();
            return;
        };
        let mut note = EventBuilder::text_note(text);
        if let Some(parent) = answers.and_then(|i| self.published.get(i)) {
            note = note.tags(reply_tags(
                parent,
                &self.relay_hint,
                &self.keys.public_key(),
            ));
        }
        let note = note.sign(&self.keys);
        self.published.push(note.clone());
        let id = short_note(&note.id);
        let request = self.pool.send(Publish::new(note).timeout(PUBLISH_TIMEOUT));
        // The reply comes back to this actor when every relay answered `OK` (or the timeout).
        ctx.spawn(
            request
                .into_actor(self)
                .map(move |result, _bot, _ctx| match result {
                    Ok(result) => report_publish(&id, &result),
                    Err(e) => log::error!("the pool is gone: {e}"),
                }),
        );
    }
}

/// One line per publish, and one per relay that did not accept it.
fn report_publish(note: &str, result: &PublishResult) {
    println!(
        "{}  bot published {note}: accepted by {} of {} relays",
        now_hhmmss(),
        result.accepted(),
        result.relays.len()
    );
    for (relay, outcome) in &result.relays {
        match outcome {
            PublishOutcome::Accepted { .. } => {}
            PublishOutcome::Rejected { message, .. } => {
                println!("          {relay} rejected it: {message}")
            }
            other => println!("          {relay}: {other:?}"),
        }
    }
}

// ---- main ----------------------------------------------------------------------------------

#[actix::main]
async fn main() -> ExitCode {
    common::init_logging("warn");
    common::main_with("quickstart", HELP, parse_args(), run).await
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let embedded = config.relays.is_empty();

    // The relays: an embedded one with two notes already stored, or the ones given.
    let (relay, urls) = if embedded {
        let relay = TestRelay::start().await?;
        let regular = Keys::generate();
        for (text, ago) in [
            ("an older note, stored before we came", 120),
            ("hi from the relay's regular", 60),
        ] {
            let at = Timestamp::now().saturating_sub(Duration::from_secs(ago));
            relay.publish(EventBuilder::text_note(text).created_at(at).sign(&regular));
        }
        println!("embedded relay listening on {}", relay.url());
        let url = relay.url();
        (Some(relay), vec![url])
    } else {
        (None, config.relays.clone())
    };

    // The pool, with the feed as its recipient.
    let feed = Feed { events: 0 }.start();
    let mut builder = RelayPool::builder().recipient(feed.clone().recipient());
    for url in &urls {
        builder = builder.relay(url.as_str());
    }
    let pool = builder.start()?;

    // Stored notes (the newest 20 per relay), then live ones.
    let filter = Filter::new().kind(Kind::TEXT_NOTE).limit(20);
    pool.send(Subscribe::new(vec![filter])).await??;

    if embedded || config.publish {
        Bot {
            keys: Keys::generate(),
            pool: pool.clone(),
            published: Vec::new(),
            relay_hint: urls[0].clone(),
        }
        .start();
    }

    let limit = config.run_for.or(embedded.then_some(EMBEDDED_RUN));
    if limit.is_none() {
        println!("running until Ctrl-C");
    }
    if common::ctrl_c_or(limit).await {
        println!("\nCtrl-C: shutting down");
    }

    let stats = pool.send(Stats).await?;
    common::print_summary(&stats, started.elapsed());
    let events = feed.send(FeedCount).await.unwrap_or(0);
    println!("  the feed printed {events} events");

    // Close frames to every relay, then stop. Bounded: a relay that does not answer the
    // close costs at most a few seconds.
    if actix::clock::timeout(Duration::from_secs(5), pool.send(Shutdown))
        .await
        .is_err()
    {
        log::warn!("shutdown took longer than 5 s; exiting anyway");
    }
    drop(relay);
    Ok(())
}

/// Asks the feed how many events it printed.
#[derive(Message)]
#[rtype(result = "usize")]
struct FeedCount;

impl Handler<FeedCount> for Feed {
    type Result = usize;
    fn handle(&mut self, _: FeedCount, _ctx: &mut Context<Self>) -> usize {
        self.events
    }
}
