//! The socket's write half as a connection holds it: a `Sink` that flushes before it closes,
//! that can write a close frame synchronously when the actor is dropped, and whose errors
//! name the socket they come from.
//!
//! * actix's `SinkWrite` closes without flushing first, and actix-codec's `Framed::close`
//!   (the socket sat in a `Framed` until `framing` replaced it) shut the socket down without
//!   writing what its buffer still held: a close frame written just before `close()` never
//!   left, so no socket ever ended with one. This adapter flushes before closing (and so
//!   does [`FrameWriter`] now).
//! * When an actix System or arbiter stops, its actors are dropped, not stopped: no future
//!   runs again, so the usual close (write, flush, shut down) cannot happen. The
//!   connection's `Drop` then calls [`ClosingSink::close_now`], which writes a close frame
//!   and shuts the socket down in one non-blocking pass — best effort: it succeeds when the
//!   socket's send buffer has room, as it has unless the relay stopped reading.
//! * actix's `SinkWrite` reports every error of every writer to the one `WriteHandler` of
//!   the actor, and a writer whose close failed keeps failing, once per poll of the actor.
//!   An old socket's writer would then report "broken pipe" against the current socket and
//!   tear it down, right after every reconnect, for ever. So each error carries the
//!   connection generation of its socket ([`SocketWriteError`]), and the handler ignores
//!   (and ends) writers of old sockets.
//! * A shutdown waits for its close frame to leave: [`ClosingSink::on_closed`] resolves
//!   when this socket's close has finished (or failed, or the writer is gone) — not when
//!   some other socket's writer ends.

use std::cell::RefCell;
use std::fmt;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use awc::error::WsProtocolError;
use awc::ws::{CloseCode, Message as WsMessage};
use futures_util::sink::Sink;
use tokio::sync::oneshot;

use super::framing::FrameWriter;

/// A write error of one socket, with the connection generation of that socket.
#[doc(hidden)]
pub struct SocketWriteError {
    pub(crate) generation: u64,
    pub(crate) error: WsProtocolError,
}

impl fmt::Display for SocketWriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

struct State {
    inner: FrameWriter,
    /// Told when this socket's close has finished; dropped (which also tells them) with the
    /// last handle on the socket.
    closed: Vec<oneshot::Sender<()>>,
}

/// A shared handle on the socket's write half (the `SinkWrite` drives one clone, the
/// connection keeps another for its `Drop`).
#[derive(Clone)]
pub(crate) struct ClosingSink {
    state: Rc<RefCell<State>>,
    generation: u64,
}

impl ClosingSink {
    /// The write half of the socket of connection generation `generation`.
    pub(crate) fn new(inner: FrameWriter, generation: u64) -> Self {
        ClosingSink {
            state: Rc::new(RefCell::new(State {
                inner,
                closed: Vec::new(),
            })),
            generation,
        }
    }

    /// Resolves when this socket's close has finished or failed, or when nothing holds the
    /// socket any more.
    pub(crate) fn on_closed(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut state) = self.state.try_borrow_mut() {
            state.closed.push(tx);
        }
        // Otherwise `tx` is dropped here and the receiver resolves at once.
        rx
    }

    fn tag(&self, error: WsProtocolError) -> SocketWriteError {
        SocketWriteError {
            generation: self.generation,
            error,
        }
    }

    /// Writes a close frame (1000) and shuts the socket down without waiting: for `Drop`,
    /// where nothing will poll again.
    pub(crate) fn close_now(&self) {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return;
        };
        let mut cx = Context::from_waker(Waker::noop());
        let mut sink = Pin::new(&mut state.inner);
        if let Poll::Ready(Ok(())) = sink.as_mut().poll_ready(&mut cx) {
            let close = WsMessage::Close(Some(CloseCode::Normal.into()));
            if sink.as_mut().start_send(close).is_ok() {
                if let Poll::Ready(Ok(())) = sink.as_mut().poll_flush(&mut cx) {
                    let _ = sink.poll_close(&mut cx);
                }
            }
        }
    }
}

impl Sink<WsMessage> for ClosingSink {
    type Error = SocketWriteError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let result = Pin::new(&mut self.state.borrow_mut().inner).poll_ready(cx);
        result.map_err(|e| self.tag(e))
    }

    fn start_send(self: Pin<&mut Self>, item: WsMessage) -> Result<(), Self::Error> {
        let result = Pin::new(&mut self.state.borrow_mut().inner).start_send(item);
        result.map_err(|e| self.tag(e))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let result = Pin::new(&mut self.state.borrow_mut().inner).poll_flush(cx);
        result.map_err(|e| self.tag(e))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let mut state = self.state.borrow_mut();
        let result = match Pin::new(&mut state.inner).poll_flush(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut state.inner).poll_close(cx),
            other => other,
        };
        if result.is_ready() {
            for waiter in state.closed.drain(..) {
                let _ = waiter.send(());
            }
        }
        drop(state);
        result.map_err(|e| self.tag(e))
    }
}
