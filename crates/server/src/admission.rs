//! Admission of TCP connections before they become WebSockets: one address must not be able to
//! fill the process's file table or memory with connections that never upgrade.
//!
//! * [`Pending`] counts connections not (yet) upgraded, in all and per IP address (pure: no I/O,
//!   no clock). Over either cap a new connection is closed as soon as it is accepted.
//! * [`AdmissionAcceptor`] (the shell) wraps each accepted stream in a [`Guarded`] stream, whose
//!   deadline closes a connection that does not send a whole request within `http_idle_timeout`
//!   of opening or of its previous response (slowloris, idle keep-alive, a TLS handshake that
//!   never ends), and each connection's service in a [`Watched`] service, which sees responses:
//!   a `101 Switching Protocols` releases the connection's place and disarms the deadline (the
//!   WebSocket's own limits take over), any other response moves the deadline.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// Locks a mutex, also when a panicking holder poisoned it (the data stays consistent: every
/// update here is one step).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Connections accepted and not yet upgraded (pure bookkeeping).
#[derive(Debug)]
pub struct Pending {
    max_total: usize,
    max_per_ip: usize,
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_pending_connections` are pending.
    Total,
    /// `max_pending_per_ip` are pending from this address.
    PerIp,
}

impl Pending {
    /// Empty, with these caps.
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self {
            max_total,
            max_per_ip,
            total: 0,
            per_ip: HashMap::new(),
        }
    }

    /// Takes a place for a new connection from `ip`, or says why not.
    pub fn admit(&mut self, ip: IpAddr) -> Result<(), Refused> {
        if self.total >= self.max_total {
            return Err(Refused::Total);
        }
        let count = self.per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return Err(Refused::PerIp);
        }
        *count += 1;
        self.total += 1;
        Ok(())
    }

    /// Gives back the place of a connection from `ip` (upgraded or closed).
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(count) = self.per_ip.get_mut(&ip) {
            *count -= 1;
            self.total -= 1;
            if *count == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    /// Connections pending, in all.
    pub fn total(&self) -> usize {
        self.total
    }
}

/// One connection's place and deadline, shared by its stream and its service.
#[derive(Debug)]
pub struct ConnState {
    pending: Arc<Mutex<Pending>>,
    ip: IpAddr,
    idle: Duration,
    inner: Mutex<Phase>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Plain HTTP: must send a whole request by this instant.
    Http { deadline: Instant },
    /// Upgraded to a WebSocket, or closed: no deadline, no place held.
    Released,
}

impl ConnState {
    fn deadline(&self) -> Option<Instant> {
        match *lock(&self.inner) {
            Phase::Http { deadline } => Some(deadline),
            Phase::Released => None,
        }
    }

    /// A response went out: a new request may take `idle` again.
    fn responded(&self) {
        let mut phase = lock(&self.inner);
        if let Phase::Http { .. } = *phase {
            *phase = Phase::Http {
                deadline: Instant::now() + self.idle,
            };
        }
    }

    /// Gives the place back (once): upgraded, or the connection is gone.
    fn release(&self) {
        let mut phase = lock(&self.inner);
        if *phase != Phase::Released {
            *phase = Phase::Released;
            lock(&self.pending).release(self.ip);
        }
    }
}

/// A stream whose reads and writes fail once its connection's deadline passes unupgraded.
pub struct Guarded<S> {
    inner: S,
    state: Arc<ConnState>,
    /// The deadline's timer, until the connection is seen released (upgraded): that is for
    /// good, so it is dropped then and no later read or write looks at the state.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S> Guarded<S> {
    /// `Err` once the deadline has passed; arms the timer otherwise.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(timer) = self.timer.as_mut() else {
            return Ok(());
        };
        let Some(deadline) = self.state.deadline() else {
            self.timer = None;
            return Ok(());
        };
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no whole HTTP request within http_idle_timeout_ms",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

impl<S> Drop for Guarded<S> {
    fn drop(&mut self) {
        self.state.release();
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A connection's service: tells its [`ConnState`] about each response.
#[derive(Clone)]
pub struct Watched<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S, R, B> tower_service::Service<R> for Watched<S>
where
    S: tower_service::Service<R, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let future = self.inner.call(request);
        let state = self.state.clone();
        Box::pin(async move {
            let response = future.await?;
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                state.release();
            } else {
                state.responded();
            }
            Ok(response)
        })
    }
}

/// The innermost acceptor (TLS, if any, goes on top): admits or closes each TCP connection.
#[derive(Clone, Debug)]
pub struct AdmissionAcceptor {
    pending: Arc<Mutex<Pending>>,
    idle: Duration,
}

impl AdmissionAcceptor {
    /// Admits into `pending`; connections must send each request within `idle`.
    pub fn new(pending: Arc<Mutex<Pending>>, idle: Duration) -> Self {
        Self { pending, idle }
    }
}

impl<S: Send + 'static> axum_server::accept::Accept<TcpStream, S> for AdmissionAcceptor {
    type Stream = Guarded<TcpStream>;
    type Service = Watched<S>;
    type Future = std::future::Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        std::future::ready(self.admit(stream, service))
    }
}

impl AdmissionAcceptor {
    fn admit<S>(
        &self,
        stream: TcpStream,
        service: S,
    ) -> io::Result<(Guarded<TcpStream>, Watched<S>)> {
        let ip = crate::server::canonical_ip(stream.peer_addr()?.ip());
        if let Err(refused) = lock(&self.pending).admit(ip) {
            tracing::debug!(%ip, ?refused, "connection refused before HTTP: too many pending");
            // Dropping the stream closes it: no request is read, nothing is allocated for it.
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "too many pending connections",
            ));
        }
        let _ = stream.set_nodelay(true);
        let deadline = Instant::now() + self.idle;
        let state = Arc::new(ConnState {
            pending: self.pending.clone(),
            ip,
            idle: self.idle,
            inner: Mutex::new(Phase::Http { deadline }),
        });
        let guarded = Guarded {
            inner: stream,
            state: state.clone(),
            timer: Some(Box::pin(tokio::time::sleep_until(deadline))),
        };
        Ok((
            guarded,
            Watched {
                inner: service,
                state,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn caps_per_address_and_in_all() {
        let mut pending = Pending::new(5, 2);
        assert_eq!(pending.admit(ip(1)), Ok(()));
        assert_eq!(pending.admit(ip(1)), Ok(()));
        // The third from one address is refused; others still come in.
        assert_eq!(pending.admit(ip(1)), Err(Refused::PerIp));
        assert_eq!(pending.admit(ip(2)), Ok(()));
        assert_eq!(pending.admit(ip(3)), Ok(()));
        assert_eq!(pending.admit(ip(4)), Ok(()));
        assert_eq!(pending.total(), 5);
        assert_eq!(pending.admit(ip(5)), Err(Refused::Total));
        // A release makes room again, for that address and in all.
        pending.release(ip(1));
        assert_eq!(pending.total(), 4);
        assert_eq!(pending.admit(ip(1)), Ok(()));
        assert_eq!(pending.admit(ip(5)), Err(Refused::Total));
    }

    #[test]
    fn releasing_an_unknown_address_changes_nothing() {
        let mut pending = Pending::new(5, 2);
        pending.admit(ip(1)).expect("room");
        pending.release(ip(9));
        assert_eq!(pending.total(), 1);
        pending.release(ip(1));
        pending.release(ip(1));
        assert_eq!(pending.total(), 0);
    }

    #[tokio::test]
    async fn a_connection_state_releases_its_place_once() {
        let pending = Arc::new(Mutex::new(Pending::new(5, 2)));
        lock(&pending).admit(ip(1)).expect("room");
        let state = ConnState {
            pending: pending.clone(),
            ip: ip(1),
            idle: Duration::from_secs(1),
            inner: Mutex::new(Phase::Http {
                deadline: Instant::now(),
            }),
        };
        let first = state.deadline().expect("a deadline");
        state.responded();
        assert!(state.deadline().expect("a deadline") > first);
        state.release();
        state.release();
        assert_eq!(state.deadline(), None);
        assert_eq!(lock(&pending).total(), 0);
    }
}
