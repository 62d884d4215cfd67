//! The built-in STUN server's shell: UDP sockets and worker threads around the sans-IO
//! `switchboard_stun::respond`.
//!
//! One blocking thread per worker, each with its own socket bound to the same address with
//! `SO_REUSEPORT`, so the kernel spreads clients over cores and no lock or queue is shared.
//! Datagrams move in batches (`switchboard_udp`: on Linux, `recvmmsg` / `sendmmsg` move up to 32
//! per system call).
//! Counters are kept per thread and added to the Prometheus counters in batches.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use switchboard_stun::{respond, Action, DropReason, MAX_RESPONSE_LEN};
use switchboard_udp::{bind, claim_port, send_all, Buffers, Inbox, BATCH};

/// How often an idle worker checks whether to stop.
const STOP_CHECK: Duration = Duration::from_millis(100);
/// Kernel receive buffer asked for per socket, so bursts queue instead of being dropped (the
/// kernel caps it at `net.core.rmem_max`).
const RECEIVE_BUFFER_BYTES: usize = 4 << 20;
/// Datagrams handled before a worker adds its counts to the shared counters.
const COUNTER_FLUSH: u64 = 1024;

/// The STUN counters exported at `/metrics`.
#[derive(Clone, Default)]
pub struct StunCounters {
    /// Binding success responses sent.
    pub answered: Counter,
    /// Error responses sent (400, 420).
    pub errors: Counter,
    /// Datagrams dropped: not STUN.
    pub not_stun: Counter,
    /// Datagrams dropped: STUN that failed validation.
    pub malformed: Counter,
    /// Datagrams dropped: indications and responses.
    pub not_request: Counter,
}

/// Running STUN workers.
pub struct StunServer {
    local_addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl StunServer {
    /// Binds every address (port 0 picks one, shared by that address's workers) and starts
    /// `workers` threads per address.
    pub fn start(
        listen: &[SocketAddr],
        workers: usize,
        software: String,
        counters: StunCounters,
    ) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let software: Arc<str> = software.into();
        let mut local_addrs = Vec::new();
        let mut handles = Vec::new();
        for addr in listen {
            let bound =
                claim_port(*addr).map_err(|e| io::Error::new(e.kind(), format!("STUN: {e}")))?;
            local_addrs.push(bound);
            let sockets = (0..workers.max(1))
                .map(|_| bind_worker(bound))
                .collect::<io::Result<Vec<_>>>()?;
            for (i, socket) in sockets.into_iter().enumerate() {
                let (stop, software, counters) = (stop.clone(), software.clone(), counters.clone());
                let handle = std::thread::Builder::new()
                    .name(format!("stun-{bound}-{i}"))
                    .spawn(move || serve(socket, &stop, &software, &counters))?;
                handles.push(handle);
            }
        }
        Ok(Self {
            local_addrs,
            stop,
            workers: handles,
        })
    }

    /// The bound addresses, in the order given.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Stops the workers and waits for them.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Drop for StunServer {
    /// Workers never outlive their server, even when it is dropped without `stop`.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn bind_worker(addr: SocketAddr) -> io::Result<UdpSocket> {
    let buffers = Buffers {
        receive: Some(RECEIVE_BUFFER_BYTES),
        send: None,
    };
    let socket =
        bind(addr, buffers, true).map_err(|e| io::Error::new(e.kind(), format!("STUN: {e}")))?;
    socket.set_read_timeout(Some(STOP_CHECK))?;
    Ok(socket)
}

#[derive(Default)]
struct Tally {
    answered: u64,
    errors: u64,
    not_stun: u64,
    malformed: u64,
    not_request: u64,
}

impl Tally {
    fn total(&self) -> u64 {
        self.answered + self.errors + self.not_stun + self.malformed + self.not_request
    }

    fn flush(&mut self, counters: &StunCounters) {
        counters.answered.inc_by(self.answered);
        counters.errors.inc_by(self.errors);
        counters.not_stun.inc_by(self.not_stun);
        counters.malformed.inc_by(self.malformed);
        counters.not_request.inc_by(self.not_request);
        *self = Tally::default();
    }
}

/// Answers one datagram into `out`; returns the reply length, if any.
fn handle(
    datagram: &[u8],
    source: SocketAddr,
    software: &str,
    out: &mut [u8],
    tally: &mut Tally,
) -> Option<usize> {
    match respond(datagram, source, software, out) {
        Action::Reply(n) => {
            tally.answered += 1;
            Some(n)
        }
        Action::ReplyError(n) => {
            tally.errors += 1;
            Some(n)
        }
        Action::Drop(DropReason::NotStun) => {
            tally.not_stun += 1;
            None
        }
        Action::Drop(DropReason::Malformed) => {
            tally.malformed += 1;
            None
        }
        Action::Drop(DropReason::NotARequest) => {
            tally.not_request += 1;
            None
        }
    }
}

/// Worker loop: up to `BATCH` datagrams in and out per system call where the system has them.
fn serve(socket: UdpSocket, stop: &AtomicBool, software: &str, counters: &StunCounters) {
    let mut inbox = Inbox::new();
    let mut outputs = vec![[0u8; MAX_RESPONSE_LEN]; BATCH];
    let mut replies: Vec<(usize, usize, SocketAddr)> = Vec::with_capacity(BATCH);
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let count = match inbox.receive(&socket) {
            Ok(count) => count,
            // A timeout (nothing to do) or an ICMP error from an earlier send: a quiet moment
            // to publish the counts.
            Err(_) => {
                tally.flush(counters);
                continue;
            }
        };
        replies.clear();
        for (i, out) in outputs.iter_mut().enumerate().take(count) {
            let Some((datagram, source)) = inbox.get(i) else {
                tally.not_stun += 1;
                continue;
            };
            if let Some(n) = handle(datagram, source, software, out, &mut tally) {
                replies.push((i, n, source));
            }
        }
        let datagrams: Vec<(&[u8], SocketAddr)> = replies
            .iter()
            .map(|&(i, n, to)| (&outputs[i][..n], to))
            .collect();
        send_all(&socket, &datagrams);
        if tally.total() >= COUNTER_FLUSH {
            tally.flush(counters);
        }
    }
    tally.flush(counters);
}
