//! The UDP I/O that Switchboard's UDP shells share (the STUN workers, the server peer's shards):
//! batched receive and send, and several sockets on one port.
//!
//! * [`Inbox`] receives up to [`BATCH`] datagrams per call and [`send_all`] sends a batch: on
//!   Linux with one `recvmmsg` / `sendmmsg` system call (`mmsg`), elsewhere one datagram per
//!   call. Both work on blocking sockets and on non-blocking ones (a tokio socket's `try_io`).
//! * [`claim_port`] and [`bind`] with `reuse_port`: one port, one socket per worker with
//!   `SO_REUSEPORT`, so the kernel spreads the sources over the workers and keeps each source on
//!   one of them.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

#[cfg(target_os = "linux")]
mod mmsg;
#[cfg(target_os = "linux")]
pub use mmsg::{send_all, Inbox};

#[cfg(not(target_os = "linux"))]
mod portable;
#[cfg(not(target_os = "linux"))]
pub use portable::{send_all, Inbox};

/// A UDP socket the batch calls work on: `std::net::UdpSocket`, `tokio::net::UdpSocket`,
/// anything with a file descriptor (a Windows socket handle on Windows).
#[cfg(unix)]
pub trait Handle: std::os::fd::AsFd {}
#[cfg(unix)]
impl<T: std::os::fd::AsFd> Handle for T {}
/// A UDP socket the batch calls work on: anything with a socket handle.
#[cfg(windows)]
pub trait Handle: std::os::windows::io::AsSocket {}
#[cfg(windows)]
impl<T: std::os::windows::io::AsSocket> Handle for T {}

/// Datagrams per batch.
pub const BATCH: usize = 32;
/// Largest datagram read; longer ones arrive truncated.
pub const DATAGRAM: usize = 2048;

/// Finds the port to share: binds once *without* `SO_REUSEPORT`, so that a port already served by
/// another process fails with "address in use" instead of silently splitting its traffic, and so
/// that port 0 picks a port nobody else holds (with `SO_REUSEPORT`, the kernel may hand out a
/// port another reuse-port socket of the same user already has). The probe is closed on return.
pub fn claim_port(addr: SocketAddr) -> io::Result<SocketAddr> {
    let probe = UdpSocket::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind UDP to {addr}: {e}")))?;
    probe.local_addr()
}

/// Kernel buffer sizes asked for a socket (the kernel caps them at `net.core.rmem_max` and
/// `net.core.wmem_max`); `None` keeps the kernel's default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Buffers {
    /// `SO_RCVBUF`, bytes.
    pub receive: Option<usize>,
    /// `SO_SNDBUF`, bytes.
    pub send: Option<usize>,
}

/// A socket bound to `addr` with the kernel buffers asked for. With `reuse_port`, it has
/// `SO_REUSEPORT` (on Unix), so that several can share the port [`claim_port`] found; without, a
/// port in use is an error. Blocking; set a read timeout or make it non-blocking as the shell
/// needs.
pub fn bind(addr: SocketAddr, buffers: Buffers, reuse_port: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    // Best effort: a smaller buffer only means drops under bursts.
    if let Some(bytes) = buffers.receive {
        let _ = socket.set_recv_buffer_size(bytes);
    }
    if let Some(bytes) = buffers.send {
        let _ = socket.set_send_buffer_size(bytes);
    }
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind UDP to {addr}: {e}")))?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn a_batch_sent_at_once_arrives_whole_and_in_order() {
        let receiver = UdpSocket::bind(loopback()).unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let sender = UdpSocket::bind(loopback()).unwrap();
        let to = receiver.local_addr().unwrap();
        // More than one batch: the send loops, the receiver takes BATCH at a time.
        let payloads: Vec<Vec<u8>> = (0..BATCH as u32 + 5)
            .map(|i| i.to_be_bytes().repeat(1 + i as usize % 7))
            .collect();
        let datagrams: Vec<(&[u8], SocketAddr)> =
            payloads.iter().map(|p| (p.as_slice(), to)).collect();
        send_all(&sender, &datagrams);
        let mut inbox = Inbox::new();
        let mut got = Vec::new();
        while got.len() < payloads.len() {
            let count = inbox.receive(&receiver).unwrap();
            assert!((1..=BATCH).contains(&count));
            for i in 0..count {
                let (bytes, from) = inbox.get(i).unwrap();
                assert_eq!(from, sender.local_addr().unwrap());
                got.push(bytes.to_vec());
            }
        }
        assert_eq!(got, payloads);
        assert!(inbox.get(BATCH).is_none());
    }

    #[test]
    fn a_datagram_longer_than_the_buffer_arrives_truncated() {
        let receiver = UdpSocket::bind(loopback()).unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let sender = UdpSocket::bind(loopback()).unwrap();
        let long = vec![7u8; DATAGRAM + 100];
        send_all(&sender, &[(&long, receiver.local_addr().unwrap())]);
        let mut inbox = Inbox::new();
        assert_eq!(inbox.receive(&receiver).unwrap(), 1);
        assert_eq!(inbox.get(0).unwrap().0, &long[..DATAGRAM]);
    }

    #[test]
    fn a_non_blocking_socket_with_nothing_queued_would_block() {
        let socket = UdpSocket::bind(loopback()).unwrap();
        socket.set_nonblocking(true).unwrap();
        let error = Inbox::new().receive(&socket).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn a_claimed_port_is_shared_by_reuse_port_sockets_and_refused_to_others() {
        let addr = claim_port(loopback()).unwrap();
        let first = bind(addr, Buffers::default(), true).unwrap();
        let second = bind(addr, Buffers::default(), true).unwrap();
        assert_eq!(first.local_addr().unwrap(), second.local_addr().unwrap());
        // A port held by reuse-port sockets cannot be claimed by a plain bind.
        assert!(claim_port(addr).is_err());
        assert!(bind(addr, Buffers::default(), false).is_err());
        // Nor can a plainly bound port be shared.
        let alone = bind(loopback(), Buffers::default(), false).unwrap();
        assert!(bind(alone.local_addr().unwrap(), Buffers::default(), true).is_err());
    }
}
