//! Batched UDP I/O on Linux: `recvmmsg` / `sendmmsg` move up to [`BATCH`] datagrams per system
//! call. The `unsafe` is kept to building the C structures these calls take.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use socket2::SockAddr;

use crate::{Handle, BATCH, DATAGRAM};

/// Receive buffers and source addresses for one batch.
pub struct Inbox {
    buffers: Box<[[u8; DATAGRAM]; BATCH]>,
    addrs: Box<[libc::sockaddr_storage; BATCH]>,
    lens: [usize; BATCH],
    count: usize,
}

impl Default for Inbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Inbox {
    /// Empty buffers.
    pub fn new() -> Self {
        Self {
            buffers: Box::new([[0u8; DATAGRAM]; BATCH]),
            // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
            addrs: Box::new(unsafe { zeroed() }),
            lens: [0; BATCH],
            count: 0,
        }
    }

    /// Waits (on a blocking socket, up to its read timeout) for at least one datagram, then takes
    /// whatever else is already queued, up to [`BATCH`]. A non-blocking socket with nothing
    /// queued answers `WouldBlock`.
    pub fn receive(&mut self, socket: &impl Handle) -> io::Result<usize> {
        // SAFETY: iovec and mmsghdr are plain old data; zeroed is a valid starting value.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..BATCH {
            iovecs[i].iov_base = self.buffers[i].as_mut_ptr().cast();
            iovecs[i].iov_len = DATAGRAM;
            let header = &mut headers[i].msg_hdr;
            header.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_iov = &mut iovecs[i];
            header.msg_iovlen = 1;
        }
        // SAFETY: every header points into `iovecs`, `self.buffers` and `self.addrs`, which live
        // across the call and have the sizes given.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_fd().as_raw_fd(),
                headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            self.count = 0;
            return Err(io::Error::last_os_error());
        }
        self.count = n as usize;
        for (len, header) in self.lens.iter_mut().zip(&headers).take(self.count) {
            *len = (header.msg_len as usize).min(DATAGRAM);
        }
        Ok(self.count)
    }

    /// The `i`-th received datagram and its source, if the source is an IP address.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.count {
            return None;
        }
        Some((
            &self.buffers[i][..self.lens[i]],
            to_socket_addr(&self.addrs[i])?,
        ))
    }
}

/// Reads an IPv4 or IPv6 socket address the kernel wrote.
fn to_socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    let family = i32::from(storage.ss_family);
    let storage: *const libc::sockaddr_storage = storage;
    match family {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in; sockaddr_storage is
            // large and aligned enough for every socket address type.
            let v4 = unsafe { &*storage.cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe { &*storage.cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
            let port = u16::from_be(v6.sin6_port);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                port,
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Sends each `(bytes, destination)` with as few `sendmmsg` calls as it takes; returns how many
/// the kernel took. Datagrams it refuses (an unreachable peer) are dropped, as UDP would; on a
/// non-blocking socket whose buffer is full, the rest of the batch is dropped at once.
pub fn send_all(socket: &impl Handle, datagrams: &[(&[u8], SocketAddr)]) -> usize {
    let addrs: Vec<SockAddr> = datagrams
        .iter()
        .map(|(_, to)| SockAddr::from(*to))
        .collect();
    // SAFETY: plain old data.
    let mut iovecs: Vec<libc::iovec> = datagrams.iter().map(|_| unsafe { zeroed() }).collect();
    let mut headers: Vec<libc::mmsghdr> = datagrams.iter().map(|_| unsafe { zeroed() }).collect();
    for (i, (bytes, _)) in datagrams.iter().enumerate() {
        iovecs[i].iov_base = bytes.as_ptr() as *mut libc::c_void;
        iovecs[i].iov_len = bytes.len();
    }
    for (i, header) in headers.iter_mut().enumerate() {
        header.msg_hdr.msg_name = addrs[i].as_ptr() as *mut libc::c_void;
        header.msg_hdr.msg_namelen = addrs[i].len();
        header.msg_hdr.msg_iov = &mut iovecs[i];
        header.msg_hdr.msg_iovlen = 1;
    }
    let (mut done, mut taken) = (0, 0);
    while done < headers.len() {
        let remaining = &mut headers[done..];
        // SAFETY: headers point into `iovecs`, `addrs` and `datagrams`, all alive here; the
        // kernel only reads them.
        let n = unsafe {
            libc::sendmmsg(
                socket.as_fd().as_raw_fd(),
                remaining.as_mut_ptr(),
                remaining.len() as libc::c_uint,
                0,
            )
        };
        if n > 0 {
            done += n as usize;
            taken += n as usize;
        } else if io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock {
            break;
        } else {
            // Skip the datagram that failed and go on with the rest.
            done += 1;
        }
    }
    taken
}
