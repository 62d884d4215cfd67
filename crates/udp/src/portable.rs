//! Batched UDP I/O where `recvmmsg` / `sendmmsg` are missing: one datagram per system call, same
//! interface as on Linux.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;

use socket2::SockRef;

use crate::{Handle, DATAGRAM};

/// The receive buffer and source address of one datagram.
pub struct Inbox {
    buffer: Box<[MaybeUninit<u8>; DATAGRAM]>,
    received: Option<(usize, SocketAddr)>,
}

impl Default for Inbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Inbox {
    /// An empty buffer.
    pub fn new() -> Self {
        Self {
            buffer: Box::new([MaybeUninit::uninit(); DATAGRAM]),
            received: None,
        }
    }

    /// Waits (on a blocking socket, up to its read timeout) for one datagram; a non-blocking
    /// socket with nothing queued answers `WouldBlock`. Returns how many were received (1).
    pub fn receive(&mut self, socket: &impl Handle) -> io::Result<usize> {
        self.received = None;
        let (len, from) = SockRef::from(socket).recv_from(&mut self.buffer[..])?;
        self.received = from.as_socket().map(|from| (len.min(DATAGRAM), from));
        Ok(1)
    }

    /// The `i`-th received datagram and its source, if the source is an IP address.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let (len, from) = self.received.filter(|_| i == 0)?;
        // SAFETY: the kernel wrote the first `len` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(self.buffer.as_ptr().cast::<u8>(), len) };
        Some((bytes, from))
    }
}

/// Sends each `(bytes, destination)`; returns how many the kernel took. Datagrams it refuses
/// are dropped, as UDP would; on a non-blocking socket whose buffer is full, the rest of the
/// batch is dropped at once.
pub fn send_all(socket: &impl Handle, datagrams: &[(&[u8], SocketAddr)]) -> usize {
    let socket = SockRef::from(socket);
    let mut taken = 0;
    for (bytes, to) in datagrams {
        match socket.send_to(bytes, &(*to).into()) {
            Ok(_) => taken += 1,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => {}
        }
    }
    taken
}
