//! The socket under a connection once the WebSocket handshake is done: frames read and
//! written without holding a buffer while the socket is idle.
//!
//! awc hands the socket over inside an actix-codec `Framed`, whose read and write buffers
//! (8 KiB each, allocated for the handshake) live as long as the socket: 16 KiB of every idle
//! relay's ~23 KiB (DHAT, benches/pool.rs scenario 6). Here the read buffer is given back
//! whenever a read finds the socket empty with no partial frame held, and the write buffer
//! whenever everything written has left, so an idle connection holds neither; a busy one
//! reads up to [`READ_CHUNK`] bytes per system call. A read with nothing held goes to a
//! small array on the stack first, so that a quiet socket's wake-up or a short message (an
//! `OK`) does not allocate a large buffer only to free it.
//!
//! Reader and writer share the socket through an `Rc<RefCell<_>>`: both live on the
//! connection's arbiter and neither polls while the other does (tokio keeps a waker for each
//! direction, so the two can wait on the socket at the same time).

use std::cell::RefCell;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

use actix_codec::{AsyncRead, AsyncWrite, Decoder, Encoder, Framed, ReadBuf};
use awc::error::WsProtocolError;
use awc::ws::{Codec, Frame, Message as WsMessage};
use awc::BoxedSocket;
use bytes::{Buf, BytesMut};
use futures_util::sink::Sink;
use futures_util::stream::Stream;

/// What one read asks the socket for, at most: ~40 frames of a typical event stream (~785
/// bytes each) per system call, where awc's `Framed` reads 8 KiB. Allocated only while data
/// keeps arriving.
pub(crate) const READ_CHUNK: usize = 32 * 1024;

/// What a read from a socket with nothing held takes first, on the stack.
const FIRST_READ: usize = 2 * 1024;

/// Below this much free room the read buffer is topped up before the next read.
const MIN_SPARE: usize = 1024;

/// Encoded frames waiting for the socket beyond which `poll_ready` flushes first.
const WRITE_HIGH: usize = 8 * 1024;

type SharedSocket = Rc<RefCell<BoxedSocket>>;

/// Splits the handshake's `Framed` into the connection's two halves, keeping any bytes
/// already read after the handshake (the relay may speak first, e.g. an `AUTH` challenge).
pub(crate) fn split(framed: Framed<BoxedSocket, Codec>) -> (FrameReader, FrameWriter) {
    let parts = framed.into_parts();
    let socket = Rc::new(RefCell::new(parts.io));
    let reader = FrameReader {
        socket: Rc::clone(&socket),
        codec: parts.codec.clone(),
        // Copied out so that the handshake's 8 KiB allocation is freed.
        buf: BytesMut::from(&parts.read_buf[..]),
        decodable: !parts.read_buf.is_empty(),
        eof: false,
    };
    let writer = FrameWriter {
        socket,
        codec: parts.codec,
        buf: BytesMut::from(&parts.write_buf[..]),
    };
    (reader, writer)
}

/// The socket is borrowed by the other half: cannot happen (both halves poll on one thread,
/// never from inside each other), reported rather than panicking.
fn busy() -> WsProtocolError {
    io::Error::other("the socket is in use by the other half of the connection").into()
}

/// The read half: WebSocket frames as a stream (the items `Framed` would give).
pub(crate) struct FrameReader {
    socket: SharedSocket,
    codec: Codec,
    buf: BytesMut,
    /// Bytes arrived since the last decode that found no whole frame.
    decodable: bool,
    eof: bool,
}

impl Stream for FrameReader {
    type Item = Result<Frame, WsProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.decodable {
                let decoded = if this.eof {
                    this.codec.decode_eof(&mut this.buf)
                } else {
                    this.codec.decode(&mut this.buf)
                };
                match decoded {
                    Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                    Err(e) => {
                        if this.eof {
                            // A frame cut short by the end of the stream: reported once.
                            this.buf.clear();
                        }
                        return Poll::Ready(Some(Err(e)));
                    }
                    Ok(None) if this.eof => return Poll::Ready(None),
                    Ok(None) => this.decodable = false,
                }
            }
            if this.eof {
                return Poll::Ready(None);
            }
            let Ok(mut socket) = this.socket.try_borrow_mut() else {
                return Poll::Ready(Some(Err(busy())));
            };
            let socket = Pin::new(&mut *socket);
            let cramped = this.buf.capacity() - this.buf.len() < MIN_SPARE;
            let read = if cramped && this.buf.is_empty() && !this.buf.try_reclaim(READ_CHUNK) {
                // Nothing held and no buffer to reuse: a quiet socket or a short message (an
                // `OK`, an `EOSE`) costs no large allocation.
                first_read(socket, cx, &mut this.buf)
            } else {
                if cramped {
                    // Sized so that a buffer whose frames have all been dropped is reused in
                    // place (the part of a frame still to come moves to its start).
                    let room = READ_CHUNK.saturating_sub(this.buf.len()).max(MIN_SPARE);
                    this.buf.reserve(room);
                }
                tokio_util::io::poll_read_buf(socket, cx, &mut this.buf)
            };
            match read {
                Poll::Pending => {
                    if this.buf.is_empty() {
                        // Nothing held: give the buffer back while the socket is quiet.
                        this.buf = BytesMut::new();
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Ok(0)) => this.eof = true,
                Poll::Ready(Ok(_)) => {}
            }
            this.decodable = true;
        }
    }
}

/// Reads into a small array on the stack, then into a buffer of the bytes read, or of
/// [`READ_CHUNK`] when the array came back full (more is probably waiting).
fn first_read(
    socket: Pin<&mut BoxedSocket>,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    let mut first = [MaybeUninit::<u8>::uninit(); FIRST_READ];
    let mut read = ReadBuf::uninit(&mut first);
    ready!(socket.poll_read(cx, &mut read))?;
    let bytes = read.filled();
    *buf = if bytes.len() < FIRST_READ {
        BytesMut::from(bytes)
    } else {
        let mut chunk = BytesMut::with_capacity(READ_CHUNK);
        chunk.extend_from_slice(bytes);
        chunk
    };
    Poll::Ready(Ok(bytes.len()))
}

/// The write half: a `Sink` of WebSocket messages. Flushing writes everything encoded, then
/// frees the buffer; closing flushes before it shuts the socket down.
pub(crate) struct FrameWriter {
    socket: SharedSocket,
    codec: Codec,
    buf: BytesMut,
}

impl Sink<WsMessage> for FrameWriter {
    type Error = WsProtocolError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.buf.len() >= WRITE_HIGH {
            return self.poll_flush(cx);
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: WsMessage) -> Result<(), Self::Error> {
        let this = self.get_mut();
        this.codec.encode(item, &mut this.buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        let Ok(mut socket) = this.socket.try_borrow_mut() else {
            return Poll::Ready(Err(busy()));
        };
        while !this.buf.is_empty() {
            let n = ready!(Pin::new(&mut *socket).poll_write(cx, &this.buf))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the socket accepted no more bytes of a frame",
                )
                .into()));
            }
            this.buf.advance(n);
        }
        if this.buf.capacity() > 0 {
            this.buf = BytesMut::new();
        }
        ready!(Pin::new(&mut *socket).poll_flush(cx))?;
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        ready!(self.as_mut().poll_flush(cx))?;
        let Ok(mut socket) = self.socket.try_borrow_mut() else {
            return Poll::Ready(Err(busy()));
        };
        Pin::new(&mut *socket).poll_shutdown(cx).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use std::future::{poll_fn, Future};
    use std::time::Duration;

    use actix_codec::FramedParts;
    use actix_rt::net::{TcpListener, TcpStream};
    use bytes::Bytes;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Bounds every wait of these tests.
    async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
        match actix_rt::time::timeout(Duration::from_secs(10), future).await {
            Ok(value) => value,
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }

    /// A connected pair of loopback sockets: ours, boxed as awc hands it over, and the
    /// relay's end.
    async fn socket_pair() -> (BoxedSocket, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (ours, theirs) =
            futures_util::future::join(TcpStream::connect(addr), listener.accept()).await;
        let ours: BoxedSocket = Box::new(ours.expect("connect"));
        (ours, theirs.expect("accept").0)
    }

    fn client_codec() -> Codec {
        Codec::new().client_mode().max_size(1 << 20)
    }

    /// A frame as a relay writes it (unmasked).
    fn relay_frame(text: &str) -> BytesMut {
        let mut out = BytesMut::new();
        Codec::new()
            .max_size(1 << 20)
            .encode(WsMessage::Text(text.to_owned().into()), &mut out)
            .expect("encode");
        out
    }

    fn text_of(frame: Option<Result<Frame, WsProtocolError>>) -> Bytes {
        match frame {
            Some(Ok(Frame::Text(text))) => text,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Polls the reader once.
    async fn poll_once(reader: &mut FrameReader) -> Poll<Option<Result<Frame, WsProtocolError>>> {
        poll_fn(|cx| Poll::Ready(reader.poll_next_unpin(cx))).await
    }

    #[actix::test]
    async fn reads_leftover_split_large_and_batched_frames_and_holds_nothing_when_idle() {
        let (ours, mut relay) = socket_pair().await;
        let small = relay_frame("first");
        let split_text = "x".repeat(3_000);
        let cut = relay_frame(&split_text);
        // What awc read past the handshake: a whole frame and the start of the next.
        let mut leftover = small.clone();
        leftover.extend_from_slice(&cut[..100]);
        let framed = Framed::from_parts(FramedParts::with_read_buf(ours, client_codec(), leftover));
        let (mut reader, _writer) = split(framed);

        assert_eq!(
            text_of(bounded("the leftover frame", reader.next()).await),
            "first"
        );
        // The rest of the second frame has not been sent: the part held is kept.
        assert!(poll_once(&mut reader).await.is_pending());
        assert!(reader.buf.capacity() >= 100);

        relay.write_all(&cut[100..]).await.expect("write");
        let text = text_of(bounded("the split frame", reader.next()).await);
        assert_eq!(text, split_text.as_bytes());
        drop(text);
        // Nothing held and nothing to read: the buffer is given back.
        assert!(poll_once(&mut reader).await.is_pending());
        assert_eq!(reader.buf.capacity(), 0);

        // A frame larger than a read, sent in three writes.
        let large_text = "y".repeat(3 * READ_CHUNK + 17);
        let large = relay_frame(&large_text);
        for part in large.chunks(large.len() / 3 + 1) {
            relay.write_all(part).await.expect("write");
        }
        let text = text_of(bounded("the large frame", reader.next()).await);
        assert_eq!(text, large_text.as_bytes());

        // Many frames in one write (more than one read's worth): all of them, in order.
        let mut batch = BytesMut::new();
        for i in 0..200 {
            batch.extend_from_slice(&relay_frame(&format!("{i:0>300}")));
        }
        relay.write_all(&batch).await.expect("write");
        for i in 0..200 {
            let text = text_of(bounded("a batched frame", reader.next()).await);
            assert_eq!(text, format!("{i:0>300}").as_bytes());
        }
        // The last read left room in the buffer: given back all the same.
        assert!(poll_once(&mut reader).await.is_pending());
        assert_eq!(reader.buf.capacity(), 0);

        relay.shutdown().await.expect("shutdown");
        assert!(bounded("the end", reader.next()).await.is_none());
    }

    #[actix::test]
    async fn a_frame_cut_short_by_the_end_of_the_stream_is_one_error() {
        let (ours, mut relay) = socket_pair().await;
        let (mut reader, _writer) = split(Framed::new(ours, client_codec()));
        let frame = relay_frame("never finished");
        relay
            .write_all(&frame[..frame.len() - 3])
            .await
            .expect("write");
        relay.shutdown().await.expect("shutdown");
        match bounded("the error", reader.next()).await {
            Some(Err(WsProtocolError::Io(_))) => {}
            other => panic!("expected an I/O error, got {other:?}"),
        }
        assert!(bounded("the end", reader.next()).await.is_none());
    }

    #[actix::test]
    async fn writes_everything_frees_the_buffer_and_flushes_before_closing() {
        let (ours, mut relay) = socket_pair().await;
        let (_reader, mut writer) = split(Framed::new(ours, client_codec()));
        // The relay reads everything until the end of the stream, meanwhile.
        let received = actix_rt::spawn(async move {
            let mut bytes = Vec::new();
            relay.read_to_end(&mut bytes).await.map(|_| bytes)
        });

        let large = "z".repeat(200_000);
        bounded(
            "a flushed send",
            writer.send(WsMessage::Text(large.clone().into())),
        )
        .await
        .expect("send");
        assert_eq!(writer.buf.capacity(), 0, "the buffer is freed once flushed");
        // Queued without a flush: `close` must write them before it shuts the socket down.
        for i in 0..50 {
            writer
                .feed(WsMessage::Text(format!("{i}").into()))
                .await
                .expect("feed");
        }
        bounded("close", writer.close()).await.expect("close");

        let bytes = bounded("the relay's read", received)
            .await
            .expect("the reading task")
            .expect("read");
        let mut bytes = BytesMut::from(&bytes[..]);
        let mut relay_codec = Codec::new().max_size(1 << 20);
        let mut texts = Vec::new();
        while let Some(frame) = relay_codec.decode(&mut bytes).expect("decode") {
            match frame {
                Frame::Text(text) => texts.push(text),
                other => panic!("unexpected frame {other:?}"),
            }
        }
        assert!(bytes.is_empty(), "{} bytes left undecoded", bytes.len());
        assert_eq!(texts.len(), 51);
        assert_eq!(texts[0], large.as_bytes());
        for (i, text) in texts[1..].iter().enumerate() {
            assert_eq!(text, format!("{i}").as_bytes());
        }
    }
}
