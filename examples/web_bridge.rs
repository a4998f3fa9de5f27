//! # web_bridge: a relay pool inside an actix-web application
//!
//! Shows the "embedded in an actix application" case: one actix System runs the
//! [`RelayPool`], an actix-web server and the actors between them.
//!
//! * `GET /` serves one HTML page (inline script and style, no external assets) with the live
//!   feed, the state of each relay, and a form to publish a note.
//! * `GET /ws` is a WebSocket whose session is an actix-web-actors actor. It implements
//!   `Handler<RelayMessage>`: the pool's messages reach it through a `Recipient` (via a small
//!   hub actor that keeps the list of open sessions, since browsers come and go while the
//!   pool's recipients are fixed when it is built), and it pushes them to the browser as JSON.
//! * `POST /publish` (`{"content": "…"}`) signs a kind-1 note with the server's keys, publishes
//!   it through the pool with [`Publish`] and answers with each relay's outcome; the note then
//!   comes back from the relay through the subscription and appears on every open page.
//!
//! With no arguments it uses an embedded relay (no network needed) holding a few notes:
//!
//! ```sh
//! cargo run --example web_bridge            # then open the printed http://127.0.0.1:… URL
//! cargo run --example web_bridge -- --port 8080 --relay wss://nos.lol
//! ```
//!
//! It listens on 127.0.0.1 only, on `--port` (default 0: the OS picks a free port; the URL is
//! printed). It runs until Ctrl-C, or for `--run-for <secs>`; `--help` lists the flags.

mod common;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_nostr::pool::{Publish, RelayPool, Shutdown, Subscribe};
use actix_nostr::protocol::{EventBuilder, Filter, Keys, Kind, Timestamp};
use actix_nostr::relay::{MessageKind, PublishOutcome, RelayMessage};
use actix_nostr::testing::TestRelay;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_web_actors::ws;
use common::{hhmmss, reply_mark, short_note, short_npub, Args};
use serde::Deserialize;
use serde_json::json;

const HELP: &str = "\
web_bridge: an actix-web page showing a relay pool's live feed, with a form to publish

USAGE:
    cargo run --example web_bridge [-- FLAGS]

FLAGS:
    --port <n>          port on 127.0.0.1 (default 0: any free port; the URL is printed)
    --relay <wss://…>   use this relay instead of the embedded one (repeatable)
    --run-for <secs>    stop after this long (default: until Ctrl-C)
    --help              this text";

/// How many recent events a page gets when it connects.
const BACKLOG: usize = 100;

/// The longest note the form may publish, in characters.
const MAX_NOTE: usize = 2000;

/// Pings to each browser, and how long without any frame from it ends its session.
const HEARTBEAT: Duration = Duration::from_secs(10);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a publish from the form waits for the relays' `OK`s.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

struct Config {
    port: u16,
    relays: Vec<String>,
    run_for: Option<Duration>,
}

fn parse_args() -> Result<Option<Config>, String> {
    let mut args = Args::from_env();
    if args.flag("--help")? {
        return Ok(None);
    }
    let config = Config {
        port: args.value("--port")?.unwrap_or(0),
        relays: args.values("--relay")?,
        run_for: args.seconds("--run-for")?,
    };
    args.finish()?;
    Ok(Some(config))
}

// ---- The hub: the pool's recipient, fanning out to the open pages ---------------------------

/// A browser session joins the hub.
#[derive(Message)]
#[rtype(result = "()")]
struct Join {
    id: u64,
    session: Recipient<RelayMessage>,
}

/// A browser session leaves the hub.
#[derive(Message)]
#[rtype(result = "()")]
struct Leave {
    id: u64,
}

/// Receives every `RelayMessage` of the pool and hands it to each open page. Keeps the
/// recent events and each relay's last state, so a page that connects late starts full.
#[derive(Default)]
struct Hub {
    sessions: HashMap<u64, Recipient<RelayMessage>>,
    recent: VecDeque<RelayMessage>,
    states: BTreeMap<String, RelayMessage>,
}

impl Actor for Hub {
    type Context = Context<Self>;
}

impl Handler<RelayMessage> for Hub {
    type Result = ();
    fn handle(&mut self, msg: RelayMessage, _ctx: &mut Context<Self>) {
        match &msg.kind {
            MessageKind::Event { .. } => {
                if self.recent.len() == BACKLOG {
                    self.recent.pop_front();
                }
                self.recent.push_back(msg.clone());
            }
            MessageKind::Connected | MessageKind::Disconnected { .. } => {
                self.states.insert(msg.relay.to_string(), msg.clone());
            }
            _ => return,
        }
        self.sessions.retain(|_, session| session.connected());
        for session in self.sessions.values() {
            session.do_send(msg.clone());
        }
    }
}

impl Handler<Join> for Hub {
    type Result = ();
    fn handle(&mut self, msg: Join, _ctx: &mut Context<Self>) {
        for past in self.states.values().chain(&self.recent) {
            msg.session.do_send(past.clone());
        }
        self.sessions.insert(msg.id, msg.session);
    }
}

impl Handler<Leave> for Hub {
    type Result = ();
    fn handle(&mut self, msg: Leave, _ctx: &mut Context<Self>) {
        self.sessions.remove(&msg.id);
    }
}

// ---- One browser: an actix-web-actors WebSocket session ------------------------------------

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// One open page. Receives `RelayMessage`s through its `Recipient` and writes them to the
/// browser as JSON text frames.
struct BrowserSession {
    id: u64,
    hub: Addr<Hub>,
    last_heard: Instant,
}

impl Actor for BrowserSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.hub.do_send(Join {
            id: self.id,
            session: ctx.address().recipient(),
        });
        ctx.run_interval(HEARTBEAT, |session, ctx| {
            if session.last_heard.elapsed() > CLIENT_TIMEOUT {
                log::info!("page #{} stopped answering; closing it", session.id);
                ctx.stop();
            } else {
                ctx.ping(b"");
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.hub.do_send(Leave { id: self.id });
    }
}

impl Handler<RelayMessage> for BrowserSession {
    type Result = ();
    fn handle(&mut self, msg: RelayMessage, ctx: &mut Self::Context) {
        if let Some(json) = browser_json(&msg) {
            ctx.text(json.to_string());
        }
    }
}

/// What the page understands: `{"type": "event", …}` and `{"type": "status", …}`.
fn browser_json(msg: &RelayMessage) -> Option<serde_json::Value> {
    let relay = msg.relay.as_str();
    Some(match &msg.kind {
        MessageKind::Event { event, .. } => json!({
            "type": "event",
            "relay": relay,
            "id": event.id.to_hex(),
            "npub": short_npub(&event.pubkey),
            "time": hhmmss(event.created_at),
            "created_at": event.created_at.as_secs(),
            "kind": event.kind.as_u16(),
            "reply": !reply_mark(event).is_empty(),
            "content": event.content,
        }),
        MessageKind::Connected => json!({"type": "status", "relay": relay, "state": "connected"}),
        MessageKind::Disconnected { reason, .. } => json!({
            "type": "status",
            "relay": relay,
            "state": format!("disconnected: {reason}"),
        }),
        _ => return None,
    })
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for BrowserSession {
    fn handle(&mut self, frame: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match frame {
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            // The page only listens on this socket; it publishes with POST /publish.
            Ok(_) => {}
            Err(e) => {
                log::warn!("page #{}: {e}", self.id);
                ctx.stop();
            }
        }
    }
}

// ---- HTTP ------------------------------------------------------------------------------------

/// What the handlers share.
struct AppState {
    pool: Addr<RelayPool>,
    hub: Addr<Hub>,
    keys: Keys,
}

async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}

async fn websocket(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    let session = BrowserSession {
        id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
        hub: state.hub.clone(),
        last_heard: Instant::now(),
    };
    ws::start(session, &req, stream)
}

#[derive(Deserialize)]
struct NoteForm {
    content: String,
}

/// Signs the note with the server's keys and publishes it through the pool. Takes JSON only,
/// which a cross-site HTML form cannot send without the browser asking first (CORS).
async fn publish(form: web::Json<NoteForm>, state: web::Data<AppState>) -> HttpResponse {
    let content = form.content.trim();
    if content.is_empty() || content.chars().count() > MAX_NOTE {
        return HttpResponse::BadRequest()
            .json(json!({"error": format!("a note has 1 to {MAX_NOTE} characters")}));
    }
    let note = EventBuilder::text_note(content).sign(&state.keys);
    let id = note.id;
    let result = match state
        .pool
        .send(Publish::new(note).timeout(PUBLISH_TIMEOUT))
        .await
    {
        Ok(result) => result,
        Err(e) => {
            log::error!("publish: the pool is gone: {e}");
            return HttpResponse::ServiceUnavailable().json(json!({"error": "the pool is gone"}));
        }
    };
    let relays: Vec<_> = result
        .relays
        .iter()
        .map(|(relay, outcome)| {
            let outcome = match outcome {
                PublishOutcome::Accepted { .. } => "accepted".to_owned(),
                PublishOutcome::Rejected { message, .. } => format!("rejected: {message}"),
                other => format!("{other:?}"),
            };
            log::info!("published {}: {relay} {outcome}", short_note(&id));
            json!({"relay": relay.as_str(), "outcome": outcome})
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "id": id.to_hex(),
        "note": short_note(&id),
        "accepted": result.accepted(),
        "relays": relays,
    }))
}

// ---- main ------------------------------------------------------------------------------------

#[actix::main]
async fn main() -> ExitCode {
    common::init_logging("warn");
    common::main_with("web_bridge", HELP, parse_args(), run).await
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    // The relays: an embedded one with a few notes, or the ones given.
    let relay = if config.relays.is_empty() {
        let relay = TestRelay::start().await?;
        let someone = Keys::generate();
        for (text, ago) in [
            (
                "Welcome! This feed is pushed by an actix-web-actors session.",
                90,
            ),
            (
                "Write a note below: the server signs it and publishes it through the pool.",
                30,
            ),
        ] {
            let at = Timestamp::now().saturating_sub(Duration::from_secs(ago));
            relay.publish(EventBuilder::text_note(text).created_at(at).sign(&someone));
        }
        Some(relay)
    } else {
        None
    };
    let urls = match &relay {
        Some(relay) => vec![relay.url()],
        None => config.relays.clone(),
    };

    // The hub is the pool's recipient; pages join the hub.
    let hub = Hub::default().start();
    let mut builder = RelayPool::builder().recipient(hub.clone().recipient());
    for url in &urls {
        builder = builder.relay(url.as_str());
    }
    let pool = builder.start()?;
    let feed = Filter::new().kind(Kind::TEXT_NOTE).limit(50);
    pool.send(Subscribe::new(vec![feed])).await??;

    let keys = Keys::generate();
    let state = web::Data::new(AppState {
        pool: pool.clone(),
        hub,
        keys: keys.clone(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/", web::get().to(index))
            .route("/ws", web::get().to(websocket))
            .route("/publish", web::post().to(publish))
    })
    .workers(1)
    // Ctrl-C is handled below, so the pool can send its close frames first.
    .disable_signals()
    .shutdown_timeout(1)
    .bind(("127.0.0.1", config.port))?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or("the server bound no address")?;
    let server = server.run();
    let handle = server.handle();
    actix::spawn(server);
    println!("web_bridge: serving the live feed at http://{addr}/");
    println!("web_bridge: notes are signed as {}", keys.npub());
    for url in &urls {
        println!("web_bridge: relay {url}");
    }
    if config.run_for.is_none() {
        println!("web_bridge: running until Ctrl-C");
    }

    if common::ctrl_c_or(config.run_for).await {
        println!("\nweb_bridge: Ctrl-C, shutting down");
    }
    if actix::clock::timeout(Duration::from_secs(5), pool.send(Shutdown))
        .await
        .is_err()
    {
        log::warn!("shutdown took longer than 5 s; exiting anyway");
    }
    handle.stop(true).await;
    drop(relay);
    Ok(())
}

/// The page: the feed (newest first), the relays' states, and the form. Relay content is
/// inserted with `textContent`, never as HTML.
const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>actix-nostr web bridge</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1d1d1f; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  #status { color: #666; margin-top: 0; }
  #status[data-state="live"] { color: #11772b; }
  #relays { list-style: none; padding: 0; font-size: .85rem; color: #555; }
  form { display: grid; gap: .4rem; margin: 1rem 0 1.5rem; }
  textarea { font: inherit; padding: .5rem; }
  button { justify-self: start; font: inherit; padding: .3rem 1rem; }
  #result { font-size: .85rem; color: #555; }
  #feed { list-style: none; padding: 0; }
  #feed li { border-top: 1px solid #ddd; padding: .5rem 0; }
  .meta { display: block; font: .8rem ui-monospace, monospace; color: #777; }
  .content { white-space: pre-wrap; overflow-wrap: anywhere; }
</style>
</head>
<body>
<h1>actix-nostr live feed</h1>
<p id="status" data-state="connecting">connecting…</p>
<ul id="relays"></ul>
<form id="compose">
  <textarea id="note" rows="3" maxlength="2000" required
    placeholder="Write a note: the server signs it and publishes it through the relay pool"></textarea>
  <button id="send" type="submit">Publish</button>
  <span id="result"></span>
</form>
<ol id="feed"></ol>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const seen = new Set();
const relayItems = new Map();

function addEvent(e) {
  if (seen.has(e.id)) return;
  seen.add(e.id);
  const li = document.createElement("li");
  li.dataset.id = e.id;
  li.dataset.createdAt = String(e.created_at);
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = `${e.time}  ${e.npub}  kind ${e.kind}  via ${e.relay}`;
  const content = document.createElement("span");
  content.className = "content";
  content.textContent = (e.reply ? "↳ " : "") + e.content;
  li.append(meta, content);
  // Newest first.
  const later = Array.from($("feed").children)
    .find((other) => Number(other.dataset.createdAt) < e.created_at);
  $("feed").insertBefore(li, later || null);
}

function setRelay(s) {
  let li = relayItems.get(s.relay);
  if (!li) {
    li = document.createElement("li");
    relayItems.set(s.relay, li);
    $("relays").append(li);
  }
  li.textContent = `${s.state === "connected" ? "●" : "○"} ${s.relay}: ${s.state}`;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + "/ws");
  socket.onopen = () => {
    $("status").textContent = "live";
    $("status").dataset.state = "live";
  };
  socket.onmessage = (message) => {
    let msg;
    try { msg = JSON.parse(message.data); } catch (_) { return; }
    if (msg.type === "event") addEvent(msg);
    else if (msg.type === "status") setRelay(msg);
  };
  socket.onclose = () => {
    $("status").textContent = "connection to the server lost; retrying…";
    $("status").dataset.state = "closed";
    setTimeout(connect, 1000);
  };
}

$("compose").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const content = $("note").value.trim();
  if (!content) return;
  $("send").disabled = true;
  $("result").textContent = "publishing…";
  try {
    const response = await fetch("/publish", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ content }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    $("result").textContent =
      `published ${body.note}: accepted by ${body.accepted} of ${body.relays.length} relays`;
    $("note").value = "";
  } catch (e) {
    $("result").textContent = "not published: " + e.message;
  } finally {
    $("send").disabled = false;
  }
});

connect();
</script>
</body>
</html>
"##;
