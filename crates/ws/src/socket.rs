//! The WebSocket shell: one upgraded connection's bytes, moved between the socket and the codec.
//!
//! Reads land in one buffer (`read_buffer_bytes`, grown to fit a larger frame and given back
//! after it); whole messages come out of it without a copy. Writes are encoded into one buffer
//! and go out together when flushed, or as soon as `write_buffer_bytes` are waiting. A ping is
//! answered by itself (the pong waits in the write buffer for the next write, and is tried at
//! the next read); a close frame by a close with the same code. Every method is cancel-safe:
//! what was read or encoded stays in the buffers.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::extract::ws::Message;
use bytes::BytesMut;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::codec::{close_reply, encode, encoded_len, Decoded, Decoder};
use crate::{Config, Error};

/// An upgraded WebSocket connection, server side.
pub struct WebSocket<S = TokioIo<hyper::upgrade::Upgraded>> {
    io: S,
    config: Config,
    read: BytesMut,
    decoder: Decoder,
    write: BytesMut,
    /// How much of `write` the socket has taken.
    written: usize,
    /// The client's close frame arrived (nothing is read after it).
    close_received: bool,
    /// Our close frame is encoded (nothing is written after it).
    close_sent: bool,
    /// The stream ended or broke: nothing more is read as frames.
    ended: bool,
    /// The client broke the protocol: what it still sends is unreadable.
    broken: bool,
    /// The read buffer was grown past `read_buffer_bytes` (a large frame, or a busy client).
    grown: bool,
    /// How much the next read asks for: `read_buffer_bytes`, doubled (up to
    /// `busy_read_buffer_bytes`) each time a read fills it.
    read_size: usize,
    /// Short reads in a row while `read_size` is above `read_buffer_bytes`.
    short_reads: u8,
}

/// Short reads in a row after which a busy connection's reads go back to `read_buffer_bytes`.
const SHORT_READS_TO_SHRINK: u8 = 8;

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// A WebSocket over `io`, whose handshake is done.
    pub fn new(io: S, config: Config) -> Self {
        Self {
            io,
            read: BytesMut::with_capacity(config.read_buffer_bytes),
            decoder: Decoder::new(config.max_message_bytes),
            config,
            write: BytesMut::new(),
            written: 0,
            close_received: false,
            close_sent: false,
            ended: false,
            broken: false,
            grown: false,
            read_size: config.read_buffer_bytes,
            short_reads: 0,
        }
    }

    /// The next message from the client; `None` once the stream has ended (after the client's
    /// close frame, or when the connection dropped without one). An error ends the stream too.
    pub async fn next(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        if self.ended || self.close_received {
            return Poll::Ready(None);
        }
        // Pongs owed to the client go out when the socket takes them, whatever the caller
        // writes (a full socket is the write deadline's business, not the reader's).
        if self.written < self.write.len() {
            if let Poll::Ready(Err(error)) = self.poll_write_out(cx) {
                self.ended = true;
                return Poll::Ready(Some(Err(error)));
            }
        }
        loop {
            match self.decoder.decode(&mut self.read) {
                Ok(Decoded::Message(message)) => {
                    self.shrink_read_buffer();
                    return Poll::Ready(Some(self.answer(message)));
                }
                Ok(Decoded::NeedBytes(need)) => {
                    // Room for a read of `read_size`; for a larger frame, room that doubles with
                    // what has arrived of it (a header alone announcing 64 KiB reserves 64 KiB
                    // for nobody). What earlier messages took off the front is reclaimed when
                    // they are gone.
                    let room = need
                        .min(self.read.len().max(self.read_size) * 2)
                        .max(self.read_size);
                    if self.read.capacity() < room {
                        self.grown |= room > self.config.read_buffer_bytes;
                        self.read.reserve(room - self.read.len());
                    }
                    let spare = self.read.capacity() - self.read.len();
                    match ready!(tokio_util::io::poll_read_buf(
                        Pin::new(&mut self.io),
                        cx,
                        &mut self.read
                    )) {
                        Ok(0) | Err(_) => {
                            self.ended = true;
                            return Poll::Ready(None);
                        }
                        // Reads sized by a large frame say nothing about how busy it is.
                        Ok(read) if need <= self.read_size => self.adapt_read_size(read >= spare),
                        Ok(_) => {}
                    }
                }
                Err(error) => {
                    self.ended = true;
                    self.broken = true;
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }

    /// Queues the answer a control message owes (a pong, the close reply), then hands it on.
    fn answer(&mut self, message: Message) -> Result<Message, Error> {
        match &message {
            Message::Ping(payload) if !self.close_sent => {
                let pong = Message::Pong(payload.clone());
                let unsent = self.write.len() - self.written;
                if unsent + encoded_len(&pong) > self.config.max_write_buffer_bytes {
                    self.ended = true;
                    return Err(Error::WriteBufferFull);
                }
                encode(&pong, &mut self.write);
            }
            Message::Close(frame) => {
                self.close_received = true;
                if !self.close_sent {
                    self.close_sent = true;
                    encode(&close_reply(frame), &mut self.write);
                }
            }
            _ => {}
        }
        Ok(message)
    }

    /// A read that filled all the room it had means more is waiting: the next reads ask for
    /// twice as much (up to `busy_read_buffer_bytes`), so a busy client costs fewer system
    /// calls; after `SHORT_READS_TO_SHRINK` short reads in a row they ask for
    /// `read_buffer_bytes` again.
    fn adapt_read_size(&mut self, filled: bool) {
        if filled {
            self.short_reads = 0;
            self.read_size = (self.read_size * 2).min(self.config.busy_read_buffer_bytes);
        } else if self.read_size > self.config.read_buffer_bytes {
            self.short_reads += 1;
            if self.short_reads >= SHORT_READS_TO_SHRINK {
                self.short_reads = 0;
                self.read_size = self.config.read_buffer_bytes;
            }
        }
    }

    /// A buffer grown for a large frame or a busy client is given back once it is empty and
    /// reads are back to `read_buffer_bytes` (a message taken from it keeps the large
    /// allocation only as long as the message lives).
    fn shrink_read_buffer(&mut self) {
        if self.grown && self.read.is_empty() && self.read_size == self.config.read_buffer_bytes {
            self.grown = false;
            self.read = BytesMut::with_capacity(self.config.read_buffer_bytes);
        }
    }

    /// After the client broke the protocol, reads and drops what it still sends until it closes
    /// its side (the caller bounds the wait): a socket closed with unread input makes the
    /// kernel send a reset, which can cost the client our close frame and its reason.
    pub async fn discard_input(&mut self) {
        if !self.broken {
            return;
        }
        loop {
            self.read.clear();
            self.read.reserve(self.config.read_buffer_bytes);
            let read = poll_fn(|cx| {
                tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read)
            });
            if !matches!(read.await, Ok(n) if n > 0) {
                return;
            }
        }
    }

    /// Encodes `message` to go out with the next flush; writes what waits first when the
    /// write buffer is full. After our close frame, nothing more is queued.
    pub async fn feed(&mut self, message: Message) -> Result<(), Error> {
        if self.close_sent {
            return Ok(());
        }
        let unsent = self.write.len() - self.written;
        if unsent > 0 && unsent + encoded_len(&message) > self.config.write_buffer_bytes {
            self.flush().await?;
        }
        self.close_sent = matches!(message, Message::Close(_));
        encode(&message, &mut self.write);
        Ok(())
    }

    /// Writes everything queued and flushes the socket.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_write_out(cx)).await?;
        poll_fn(|cx| Pin::new(&mut self.io).poll_flush(cx))
            .await
            .map_err(Error::Io)
    }

    /// Queues `message` and flushes.
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Writes the write buffer out; then it is emptied, and its allocation given back when it
    /// grew past `write_buffer_bytes`.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while self.written < self.write.len() {
            let unsent = &self.write[self.written..];
            let taken = ready!(Pin::new(&mut self.io).poll_write(cx, unsent)).map_err(Error::Io)?;
            if taken == 0 {
                return Poll::Ready(Err(Error::Io(io::ErrorKind::WriteZero.into())));
            }
            self.written += taken;
        }
        self.written = 0;
        if self.write.capacity() > self.config.write_buffer_bytes {
            self.write = BytesMut::new();
        } else {
            self.write.clear();
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::unmask;
    use axum::extract::ws::CloseFrame;
    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    const MASK: [u8; 4] = [9, 8, 7, 6];

    fn config() -> Config {
        Config {
            read_buffer_bytes: 64,
            busy_read_buffer_bytes: 512,
            write_buffer_bytes: 256,
            max_write_buffer_bytes: 1024,
            max_message_bytes: 64 * 1024,
        }
    }

    fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        if payload.len() < 126 {
            out.push(0x80 | payload.len() as u8);
        } else {
            out.push(0x80 | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(&MASK);
        let mut masked = payload.to_vec();
        unmask(&mut masked, MASK);
        out.extend(masked);
        out
    }

    fn pair() -> (WebSocket<DuplexStream>, DuplexStream) {
        let (server, client) = tokio::io::duplex(1 << 20);
        (WebSocket::new(server, config()), client)
    }

    #[tokio::test]
    async fn a_message_written_a_byte_at_a_time_arrives_whole_and_the_buffer_shrinks_after() {
        let (mut socket, mut client) = pair();
        let payload = vec![5u8; 40_000];
        let frame = client_frame(0x2, &payload);
        let writer = tokio::spawn(async move {
            for byte in frame.chunks(1).take(20) {
                client.write_all(byte).await.unwrap();
                tokio::task::yield_now().await;
            }
            client
                .write_all(&client_frame(0x2, &payload)[20..])
                .await
                .unwrap();
            client
        });
        let got = socket.next().await.unwrap().unwrap();
        assert_eq!(got, Message::Binary(Bytes::from(vec![5u8; 40_000])));
        assert!(socket.read.capacity() <= 64, "{}", socket.read.capacity());
        drop(writer.await.unwrap());
        assert!(socket.next().await.is_none(), "the end, without a close");
    }

    #[tokio::test]
    async fn a_busy_client_is_read_in_larger_reads_and_an_idle_one_goes_back_to_the_small_buffer() {
        let (mut socket, mut client) = pair();
        // 200 small frames at once: the reads fill their room and grow to the busy size.
        let burst: Vec<u8> = (0..200)
            .flat_map(|_| client_frame(0x2, &[1u8; 20]))
            .collect();
        client.write_all(&burst).await.unwrap();
        for _ in 0..200 {
            assert!(matches!(socket.next().await, Some(Ok(Message::Binary(_)))));
        }
        assert_eq!(socket.read_size, 512, "grown to busy_read_buffer_bytes");
        // Frames one at a time: short reads, back to the small size and the small buffer.
        for _ in 0..SHORT_READS_TO_SHRINK {
            client.write_all(&client_frame(0x2, b"x")).await.unwrap();
            assert!(matches!(socket.next().await, Some(Ok(Message::Binary(_)))));
        }
        assert_eq!(socket.read_size, 64);
        assert!(socket.read.capacity() <= 64, "{}", socket.read.capacity());
    }

    #[test]
    fn reads_double_while_they_fill_and_return_after_exactly_eight_short_ones() {
        let (socket, _client) = pair();
        let mut socket = socket;
        for expected in [128, 256, 512, 512] {
            socket.adapt_read_size(true);
            assert_eq!(
                socket.read_size, expected,
                "capped at busy_read_buffer_bytes"
            );
        }
        for _ in 1..SHORT_READS_TO_SHRINK {
            socket.adapt_read_size(false);
        }
        assert_eq!(socket.read_size, 512, "seven short reads: still busy");
        // A full read in between starts the count again.
        socket.adapt_read_size(true);
        for _ in 1..SHORT_READS_TO_SHRINK {
            socket.adapt_read_size(false);
        }
        assert_eq!(socket.read_size, 512);
        socket.adapt_read_size(false);
        assert_eq!(
            socket.read_size, 64,
            "the eighth in a row: back to read_buffer_bytes"
        );
    }

    #[tokio::test]
    async fn a_flush_within_write_buffer_bytes_keeps_its_buffer_and_one_past_it_gives_it_back() {
        let (mut socket, mut client) = pair();
        socket
            .send(Message::Binary(Bytes::from(vec![1u8; 200])))
            .await
            .unwrap();
        assert!(socket.write.is_empty());
        assert!(socket.write.capacity() >= 204, "kept for the next batch");
        socket
            .send(Message::Binary(Bytes::from(vec![2u8; 300])))
            .await
            .unwrap();
        assert_eq!(
            socket.write.capacity(),
            0,
            "grown past 256 bytes: given back"
        );
        let mut got = vec![0u8; 204 + 304];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..5], &[0x82, 126, 0, 200, 1]);
        assert_eq!(&got[204..209], &[0x82, 126, 1, 44, 2]);
    }

    #[tokio::test]
    async fn a_header_announcing_a_large_frame_reserves_only_what_arrives() {
        let (mut socket, mut client) = pair();
        let frame = client_frame(0x2, &[3u8; 60_000]);
        client.write_all(&frame[..200]).await.unwrap();
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), socket.next()).await;
        assert!(waiting.is_err(), "the frame is not whole yet");
        assert!(socket.read.capacity() <= 1024, "{}", socket.read.capacity());
        client.write_all(&frame[200..]).await.unwrap();
        assert_eq!(
            socket.next().await.unwrap().unwrap(),
            Message::Binary(Bytes::from(vec![3u8; 60_000]))
        );
    }

    #[tokio::test]
    async fn pings_are_answered_and_a_close_gets_its_code_back_then_the_stream_ends() {
        let (mut socket, mut client) = pair();
        let mut bytes = client_frame(0x9, b"hb");
        bytes.extend(client_frame(0x8, &[0x03, 0xE9, b'x']));
        client.write_all(&bytes).await.unwrap();
        assert_eq!(
            socket.next().await.unwrap().unwrap(),
            Message::Ping(Bytes::from_static(b"hb"))
        );
        assert_eq!(
            socket.next().await.unwrap().unwrap(),
            Message::Close(Some(CloseFrame {
                code: 1001,
                reason: "x".into()
            }))
        );
        assert!(socket.next().await.is_none());
        socket.flush().await.unwrap();
        let mut out = [0u8; 8];
        client.read_exact(&mut out).await.unwrap();
        assert_eq!(out, [0x8A, 0x02, b'h', b'b', 0x88, 0x02, 0x03, 0xE9]);
        // Nothing is written after the close.
        socket.send(Message::Text("late".into())).await.unwrap();
        drop(socket);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "{rest:?}");
    }

    #[tokio::test]
    async fn frames_fed_together_go_out_in_order_and_past_the_write_buffer() {
        let (mut socket, mut client) = pair();
        let mut expected = BytesMut::new();
        for i in 0..100u32 {
            let message = Message::Binary(Bytes::from(i.to_be_bytes().repeat(i as usize % 9)));
            encode(&message, &mut expected);
            socket.feed(message).await.unwrap();
        }
        // Past `write_buffer_bytes` the first frames went already; the rest on flush.
        socket.flush().await.unwrap();
        assert!(socket.write.capacity() <= 256);
        assert!(socket.write.is_empty());
        drop(socket);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, expected.to_vec());
    }

    #[tokio::test]
    async fn pongs_owed_to_a_client_that_never_reads_fill_the_write_buffer_then_fail() {
        // A tiny pipe: the client never reads, so pongs pile up in the write buffer.
        let (server, mut client) = tokio::io::duplex(64);
        let mut socket = WebSocket::new(server, config());
        let ping = client_frame(0x9, &[0u8; 100]);
        let writer = tokio::spawn(async move {
            for _ in 0..40 {
                if client.write_all(&ping).await.is_err() {
                    break;
                }
            }
            client
        });
        let mut pings = 0;
        let error = loop {
            match socket.next().await {
                Some(Ok(Message::Ping(_))) => pings += 1,
                Some(Err(error)) => break error,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(error, Error::WriteBufferFull);
        // 1024 bytes hold nine 102-byte pongs besides the 64 the pipe took.
        assert!(
            (9..=12).contains(&pings),
            "{pings} pings before the buffer was full"
        );
        assert!(socket.next().await.is_none());
        drop(writer);
    }
}
