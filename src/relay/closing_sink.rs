//! The socket's write half as a connection holds it: a `Sink` that flushes before it closes,
//! and that can write a close frame synchronously when the actor is dropped.
//!
//! * actix-codec's `Framed::close` shuts the socket down without writing what its buffer
//!   still holds, and actix's `SinkWrite` closes without flushing first: a close frame
//!   written just before `close()` never left, so no socket ever ended with one. This
//!   adapter flushes before closing.
//! * When an actix System or arbiter stops, its actors are dropped, not stopped: no future
//!   runs again, so the usual close (write, flush, shut down) cannot happen. The
//!   connection's `Drop` then calls [`ClosingSink::close_now`], which writes a close frame
//!   and shuts the socket down in one non-blocking pass — best effort: it succeeds when the
//!   socket's send buffer has room, as it has unless the relay stopped reading.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use actix_codec::Framed;
use awc::error::WsProtocolError;
use awc::ws::{CloseCode, Codec, Message as WsMessage};
use awc::BoxedSocket;
use futures_util::sink::Sink;
use futures_util::stream::SplitSink;

type Inner = SplitSink<Framed<BoxedSocket, Codec>, WsMessage>;

/// A shared handle on the socket's write half (the `SinkWrite` drives one clone, the
/// connection keeps another for its `Drop`).
#[derive(Clone)]
pub(crate) struct ClosingSink(Rc<RefCell<Inner>>);

impl ClosingSink {
    pub(crate) fn new(inner: Inner) -> Self {
        ClosingSink(Rc::new(RefCell::new(inner)))
    }

    /// Writes a close frame (1000) and shuts the socket down without waiting: for `Drop`,
    /// where nothing will poll again.
    pub(crate) fn close_now(&self) {
        let Ok(mut inner) = self.0.try_borrow_mut() else {
            return;
        };
        let mut cx = Context::from_waker(Waker::noop());
        let mut sink = Pin::new(&mut *inner);
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
    type Error = WsProtocolError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: WsMessage) -> Result<(), Self::Error> {
        Pin::new(&mut *self.0.borrow_mut()).start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let mut inner = self.0.borrow_mut();
        match Pin::new(&mut *inner).poll_flush(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut *inner).poll_close(cx),
            other => other,
        }
    }
}
