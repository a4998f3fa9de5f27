//! # reply_bot: a bot that answers every note mentioning it
//!
//! Shows how a bot is written with actix-nostr: one actor owns the keys and the pool's
//! address, subscribes to kind-1 notes that tag its public key (`#p`), and answers each with
//! a signed kind-1 reply carrying NIP-10 tags (`["e", <id>, <relay>, "root", <author>]`, or
//! the thread's root plus a `"reply"` marker deeper in a thread, and the `p` tags of the
//! people involved). It publishes with [`Publish`] and logs each relay's `OK`: accepted, or
//! rejected with the relay's reason.
//!
//! The keys come from the `NOSTR_NSEC` environment variable (`nsec1…` or 64 hex characters);
//! without it a key pair is generated and its npub printed.
//!
//! With no arguments it runs offline: two embedded relays (one of them only accepts notes
//! from its members, so the bot's replies are rejected there and you see how that is
//! reported) and a demo user who mentions the bot three times, the last time inside the
//! thread the bot started. It exits once it has answered them:
//!
//! ```sh
//! cargo run --example reply_bot
//! ```
//!
//! Against real relays it runs until Ctrl-C and answers only notes newer than its start:
//!
//! ```sh
//! NOSTR_NSEC=nsec1… cargo run --example reply_bot -- --relay wss://nos.lol
//! ```
//!
//! `--exit-after <n>` stops after n answered notes, `--run-for <secs>` after a time;
//! `--help` lists the flags. Output is the bot's log (`RUST_LOG` changes what is shown).

mod common;

use std::collections::HashSet;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;
use actix_nostr::pool::{Publish, RelayPool, Shutdown, Subscribe};
use actix_nostr::protocol::{Event, EventBuilder, EventId, Filter, Keys, Kind, Tag, Timestamp};
use actix_nostr::relay::{DisconnectReason, MessageKind, PublishOutcome, RelayMessage};
use actix_nostr::testing::TestRelay;
use common::{one_line, reply_tags, short_note, short_npub, Args};
use futures_util::future::{select, Either};
use tokio::sync::mpsc;

const HELP: &str = "\
reply_bot: answers every kind-1 note that mentions it (NIP-10 replies)

USAGE:
    [NOSTR_NSEC=nsec1…] cargo run --example reply_bot [-- FLAGS]

FLAGS:
    --relay <wss://…>    use this relay instead of the embedded ones (repeatable);
                         then the bot runs until Ctrl-C
    --exit-after <n>     stop after answering n notes (default: 3 on the embedded
                         relays, no limit with --relay)
    --run-for <secs>     stop after this long (default: 20 s on the embedded relays)
    --help               this text

ENVIRONMENT:
    NOSTR_NSEC           the bot's secret key (nsec1… or hex); generated when unset
    RUST_LOG             log filter (default: info,actix_server=warn)";

/// How many notes the demo user sends on the embedded relays.
const DEMO_MENTIONS: usize = 3;

/// A safety bound for offline runs, in case something never arrives.
const EMBEDDED_RUN: Duration = Duration::from_secs(20);

/// How long one reply waits for the relays' `OK`s.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

struct Config {
    relays: Vec<String>,
    exit_after: Option<usize>,
    run_for: Option<Duration>,
}

fn parse_args() -> Result<Option<Config>, String> {
    let mut args = Args::from_env();
    if args.flag("--help")? {
        return Ok(None);
    }
    let config = Config {
        relays: args.values("--relay")?,
        exit_after: args.value("--exit-after")?,
        run_for: args.seconds("--run-for")?,
    };
    args.finish()?;
    Ok(Some(config))
}

// ---- The bot ---------------------------------------------------------------------------------

/// Answers notes that mention it. Receives the pool's messages; publishes through the pool.
struct ReplyBot {
    keys: Keys,
    pool: Addr<RelayPool>,
    /// Notes already answered: a note that comes back after a reconnect is not answered twice.
    answered: HashSet<EventId>,
    /// Told once per finished reply (every relay answered or timed out).
    done: mpsc::UnboundedSender<()>,
}

impl Actor for ReplyBot {
    type Context = Context<Self>;
}

impl Handler<RelayMessage> for ReplyBot {
    type Result = ();

    fn handle(&mut self, msg: RelayMessage, ctx: &mut Context<Self>) {
        match msg.kind {
            MessageKind::Event { event, .. } => self.answer(*event, msg.relay.as_str(), ctx),
            MessageKind::Connected => log::info!("{}: connected", msg.relay),
            MessageKind::Disconnected { reason, .. } => match reason {
                DisconnectReason::Shutdown => log::info!("{}: closed", msg.relay),
                reason => log::warn!("{}: disconnected ({reason})", msg.relay),
            },
            MessageKind::Closed { message, .. } => {
                log::warn!("{}: subscription closed by the relay: {message}", msg.relay)
            }
            MessageKind::Error(error) => log::warn!("{}: {error}", msg.relay),
            _ => {}
        }
    }
}

impl ReplyBot {
    fn answer(&mut self, note: Event, relay: &str, ctx: &mut Context<Self>) {
        // Never answer ourselves (a thread may tag us in our own notes), nor twice.
        if note.pubkey == self.keys.public_key() || !self.answered.insert(note.id) {
            return;
        }
        log::info!(
            "mentioned by {} in {}: {:?}",
            short_npub(&note.pubkey),
            short_note(&note.id),
            one_line(&note.content, 80)
        );
        let text = format!(
            "Hi {}! You said “{}”. This reply was signed by an actix actor.",
            short_npub(&note.pubkey),
            one_line(&note.content, 60)
        );
        let reply = EventBuilder::text_note(text)
            .tags(reply_tags(&note, relay, &self.keys.public_key()))
            .sign(&self.keys);
        let reply_id = short_note(&reply.id);
        let request = self.pool.send(Publish::new(reply).timeout(PUBLISH_TIMEOUT));
        ctx.spawn(request.into_actor(self).map(move |result, bot, _ctx| {
            match result {
                Ok(result) => {
                    // One line per relay: what each one said about this reply.
                    for (relay, outcome) in &result.relays {
                        match outcome {
                            PublishOutcome::Accepted { .. } => {
                                log::info!("reply {reply_id} accepted by {relay}")
                            }
                            PublishOutcome::Rejected { reason, message } => log::warn!(
                                "reply {reply_id} rejected by {relay} ({reason:?}): {message}"
                            ),
                            PublishOutcome::NoAnswer => {
                                log::warn!("reply {reply_id}: no OK from {relay} in time")
                            }
                            other => log::warn!("reply {reply_id} not sent to {relay}: {other:?}"),
                        }
                    }
                    if result.accepted() == 0 {
                        log::error!("reply {reply_id} was accepted by no relay");
                    }
                }
                Err(e) => log::error!("the pool is gone: {e}"),
            }
            let _ = bot.done.send(());
        }));
    }
}

// ---- The offline demo ------------------------------------------------------------------------

/// Two embedded relays: one open, one accepting only its members' notes.
struct Demo {
    open: TestRelay,
    members_only: TestRelay,
    user: Keys,
}

impl Demo {
    async fn start() -> std::io::Result<Demo> {
        let user = Keys::generate();
        let member = user.public_key();
        let open = TestRelay::start().await?;
        let members_only = TestRelay::builder()
            .event_policy(move |event| {
                if event.pubkey == member {
                    Ok(())
                } else {
                    Err("restricted: members only".to_owned())
                }
            })
            .start()
            .await?;
        log::info!(
            "demo: embedded relays {} (open) and {} (members only); demo user {}",
            open.url(),
            members_only.url(),
            short_npub(&user.public_key())
        );
        Ok(Demo {
            open,
            members_only,
            user,
        })
    }

    /// Stores a note on both relays and sends it to their subscribers, as if the demo user
    /// had published it.
    fn post(&self, note: Event) {
        self.open.publish(note.clone());
        self.members_only.publish(note);
    }

    /// The demo user mentions the bot twice, then answers inside the thread the bot's first
    /// reply started (so the bot's answer carries both "root" and "reply" markers).
    async fn script(self: Rc<Self>, bot: Keys) {
        let mention = |text: &str| {
            EventBuilder::text_note(text)
                .tag(Tag::public_key(&bot.public_key()))
                .sign(&self.user)
        };
        let first = mention("hey bot, are you awake?");
        self.post(first.clone());
        actix::clock::sleep(Duration::from_millis(500)).await;
        self.post(mention("bot, what is this crate?"));

        // Wait (bounded) for the bot's answer to the first note, then reply to it.
        let answered_first = |relay: &TestRelay| {
            relay.stored_events().into_iter().find(|e| {
                e.pubkey == bot.public_key()
                    && e.tags.iter().any(|t| t.value() == Some(&first.id.to_hex()))
            })
        };
        if let Err(e) = self
            .open
            .wait_until(|r| answered_first(r).is_some(), Duration::from_secs(10))
            .await
        {
            log::error!("demo: the bot never answered the first note: {e}");
            return;
        }
        let Some(bots_reply) = answered_first(&self.open) else {
            return;
        };
        let in_thread = EventBuilder::text_note("thanks! and how do threads work?")
            .tags(reply_tags(
                &bots_reply,
                &self.open.url(),
                &self.user.public_key(),
            ))
            .sign(&self.user);
        self.post(in_thread);
    }
}

// ---- main ------------------------------------------------------------------------------------

#[actix::main]
async fn main() -> ExitCode {
    // The bot's log is its output; actix-web's start-up lines (the embedded relays) are noise.
    common::init_logging("info,actix_server=warn");
    common::main_with("reply_bot", HELP, parse_args(), run).await
}

fn load_keys() -> Result<Keys, String> {
    match std::env::var("NOSTR_NSEC") {
        Ok(secret) => Keys::parse(&secret).map_err(|e| format!("NOSTR_NSEC: {e}")),
        Err(std::env::VarError::NotPresent) => {
            let keys = Keys::generate();
            log::info!("no NOSTR_NSEC given: generated a new identity");
            Ok(keys)
        }
        Err(e) => Err(format!("NOSTR_NSEC: {e}")),
    }
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let keys = load_keys()?;
    log::info!("the bot is {}", keys.npub());
    let embedded = config.relays.is_empty();
    let demo = if embedded {
        Some(Rc::new(Demo::start().await?))
    } else {
        None
    };
    let urls = match &demo {
        Some(demo) => vec![demo.open.url(), demo.members_only.url()],
        None => config.relays.clone(),
    };

    // The bot is the pool's recipient, and the pool is the bot's way out: build the bot's
    // context first, so the pool can be given its address before the bot starts.
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let bot_ctx = Context::<ReplyBot>::new();
    let mut builder = RelayPool::builder().recipient(bot_ctx.address().recipient());
    for url in &urls {
        builder = builder.relay(url.as_str());
    }
    // With keys, the pool also answers NIP-42 AUTH challenges as the bot.
    let pool = builder.keys(keys.clone()).start()?;
    bot_ctx.run(ReplyBot {
        keys: keys.clone(),
        pool: pool.clone(),
        answered: HashSet::new(),
        done: done_tx,
    });

    // Notes that tag the bot, from now on: a restarted bot does not answer old mentions.
    let mentions = Filter::new()
        .kind(Kind::TEXT_NOTE)
        .pubkey_ref(&keys.public_key())
        .since(Timestamp::now());
    pool.send(Subscribe::new(vec![mentions])).await??;

    // The demo user talks on its own task while this one counts the bot's replies.
    let script = demo.clone().map(|demo| {
        let bot = keys.clone();
        actix::spawn(async move { demo.script(bot).await })
    });
    let exit_after = config.exit_after.or(embedded.then_some(DEMO_MENTIONS));
    let run_for = config.run_for.or(embedded.then_some(EMBEDDED_RUN));
    if !embedded {
        log::info!("answering mentions until Ctrl-C");
    }
    let mut replied = 0;
    let count = async {
        while exit_after.is_none_or(|max| replied < max) && done_rx.recv().await.is_some() {
            replied += 1;
        }
    };
    // Whichever ends first: enough replies, the time limit, Ctrl-C.
    match select(Box::pin(count), Box::pin(common::ctrl_c_or(run_for))).await {
        Either::Left(_) => {}
        Either::Right((true, _)) => log::info!("Ctrl-C"),
        Either::Right((false, _)) => log::info!("time is up"),
    }
    if let Some(script) = script {
        script.abort();
    }

    if actix::clock::timeout(Duration::from_secs(5), pool.send(Shutdown))
        .await
        .is_err()
    {
        log::warn!("shutdown took longer than 5 s; exiting anyway");
    }
    log::info!("answered {replied} notes");
    // Offline, every demo mention (or the --exit-after number) must have been answered.
    if let Some(expected) = exit_after.filter(|_| embedded) {
        if replied < expected {
            return Err(format!("answered {replied} of the {expected} expected notes").into());
        }
    }
    Ok(())
}
