//! The HTTP side: the server thread with its own actix `System`, the actix-web server on
//! 127.0.0.1, and the handler that upgrades every path to a WebSocket session.
//!
//! Running on its own thread (as `actix-test` does) keeps the relay independent of the
//! test's runtime: it works under `#[actix::test]`, does not compete with the client for its
//! thread in benchmarks, and can be stopped synchronously when the handle drops.

use std::io;
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::error::PayloadError;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_web_actors::ws;
use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::oneshot;

use super::inspect::ConnectionId;
use super::session::Session;
use super::state::{normalise_path, Shared};

/// How long dropping the handle waits for the server thread to end before leaving it.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Listen backlog: a scale test may open a thousand connections at once.
const BACKLOG: u32 = 4096;

/// How often, and how long apart, a restart retries binding the same port while the old
/// listener is still being torn down.
const REBIND_ATTEMPTS: u32 = 100;
const REBIND_PAUSE: Duration = Duration::from_millis(20);

/// A running server thread.
pub(crate) struct ServerThread {
    handle: ServerHandle,
    /// Signalled when the thread is about to end (async side).
    done: Option<oneshot::Receiver<()>>,
    /// The same signal for the synchronous `Drop` (in a mutex only to keep the handle
    /// `Sync`).
    done_sync: Mutex<mpsc::Receiver<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Starts the server on `port` (0: any free port; the port is stored in `shared`).
    pub(crate) async fn start(shared: Arc<Shared>, port: u16) -> io::Result<Self> {
        let (ready_tx, ready_rx) = oneshot::channel::<io::Result<ServerHandle>>();
        let (done_tx, done_rx) = oneshot::channel();
        let (done_sync_tx, done_sync_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("actix-nostr-test-relay".to_owned())
            .spawn(move || {
                let system = actix::System::new();
                system.block_on(async move {
                    match build(shared, port) {
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                        Ok(server) => {
                            let _ = ready_tx.send(Ok(server.handle()));
                            if let Err(e) = server.await {
                                log::warn!("test relay server ended with an error: {e}");
                            }
                        }
                    }
                });
                let _ = done_tx.send(());
                let _ = done_sync_tx.send(());
            })?;
        let handle = ready_rx
            .await
            .map_err(|_| io::Error::other("the test relay's thread ended before it started"))??;
        Ok(ServerThread {
            handle,
            done: Some(done_rx),
            done_sync: Mutex::new(done_sync_rx),
            thread: Some(thread),
        })
    }

    /// Stops the server without a graceful shutdown: the listener closes, and every
    /// connection is dropped with its worker.
    pub(crate) async fn stop(mut self) {
        self.handle.stop(false).await;
        if let Some(done) = self.done.take() {
            let _ = actix::clock::timeout(STOP_TIMEOUT, done).await;
        }
        let done_sync = self
            .done_sync
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Ok(()) | Err(mpsc::TryRecvError::Disconnected) = done_sync.try_recv() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
        self.thread = None;
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        // `stop` sends its command at once; the returned future only waits for completion.
        drop(self.handle.stop(false));
        let done_sync = self
            .done_sync
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        match done_sync.recv_timeout(STOP_TIMEOUT) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                log::warn!("test relay thread did not stop within {STOP_TIMEOUT:?}; leaving it");
            }
        }
    }
}

fn build(shared: Arc<Shared>, port: u16) -> io::Result<actix_web::dev::Server> {
    let data = web::Data::from(Arc::clone(&shared));
    let mut attempt = 0;
    let server = loop {
        let data = data.clone();
        let bound = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(upgrade))
        })
        .workers(1)
        .disable_signals()
        // Close at once when a session ends: no lingering for the client to hang up.
        .client_disconnect_timeout(Duration::ZERO)
        .shutdown_timeout(0)
        .backlog(BACKLOG)
        .bind(("127.0.0.1", port));
        match bound {
            Ok(server) => break server,
            Err(e) if port != 0 && e.kind() == io::ErrorKind::AddrInUse => {
                attempt += 1;
                if attempt >= REBIND_ATTEMPTS {
                    return Err(e);
                }
                // On the relay's own thread: the test's thread is not blocked.
                std::thread::sleep(REBIND_PAUSE);
            }
            Err(e) => return Err(e),
        }
    };
    let port = server
        .addrs()
        .first()
        .map(|a| a.port())
        .ok_or_else(|| io::Error::other("the server bound no address"))?;
    shared.set_port(port);
    log::debug!("test relay listening on ws://127.0.0.1:{port}");
    Ok(server.run())
}

/// Upgrades any path to a WebSocket session, unless the relay is refusing connections.
async fn upgrade(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, actix_web::Error> {
    let shared = shared.into_inner();
    let path = normalise_path(req.path());
    if wants_information_document(&req) {
        return Ok(information_document(&shared));
    }
    if shared.refuse_now() {
        log::debug!("{}: refusing a connection", shared.url_for(&path));
        return Ok(
            HttpResponse::ServiceUnavailable().body("the test relay is refusing connections")
        );
    }
    let id = shared.next_connection_id();
    let session = Session::new(id, &path, Arc::clone(&shared));
    let payload = GatedPayload {
        inner: payload,
        shared: Arc::clone(&shared),
        id,
    };
    let (addr, response) = ws::WsResponseBuilder::new(session, &req, payload)
        .frame_size(shared.options.max_message_size)
        .start_with_addr()?;
    shared.register(id, &path, addr);
    Ok(response)
}

/// A plain HTTP request asking for the NIP-11 document (`Accept: application/nostr+json`),
/// not a WebSocket upgrade.
fn wants_information_document(req: &HttpRequest) -> bool {
    let upgrade = req.headers().contains_key(actix_web::http::header::UPGRADE);
    let accepts = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/nostr+json"));
    accepts && !upgrade
}

/// The relay's NIP-11 document, declaring the limits it enforces.
fn information_document(shared: &Shared) -> HttpResponse {
    let options = &shared.options;
    let doc = serde_json::json!({
        "name": "actix-nostr TestRelay",
        "description": "an in-process relay for tests",
        "software": "actix-nostr::testing",
        "supported_nips": [1, 11, 42, 45],
        "limitation": {
            "max_message_length": options.max_message_size,
            "max_subscriptions": options.max_subscriptions,
            "max_filters": options.max_filters,
            "auth_required": options.auth_required,
        },
    });
    HttpResponse::Ok()
        .content_type("application/nostr+json")
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .body(doc.to_string())
}

/// The request body (the client's WebSocket bytes), paused while the relay is silent: the
/// session reads nothing, so pings go unanswered and TCP backpressure builds as on a
/// half-open connection.
struct GatedPayload {
    inner: web::Payload,
    shared: Arc<Shared>,
    id: ConnectionId,
}

impl Stream for GatedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.shared.is_silent() {
            self.shared.park_reader(self.id, cx.waker());
            return Poll::Pending;
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            // The client ended its side of the TCP connection. actix-http reports that as an
            // error, and the WebSocket decoder returns errors before decoding the bytes it
            // already holds — so a close frame sent just before the FIN would be lost. An
            // end is an end: what arrived before it is still read.
            Poll::Ready(Some(Err(PayloadError::Incomplete(_)))) => Poll::Ready(None),
            other => other,
        }
    }
}
