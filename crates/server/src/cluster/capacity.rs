//! What a node holds itself in cluster mode: its sockets, counted in all and per address. A
//! node's hub counts the members of the rooms it owns, wherever they are connected, so a node
//! whose peers are in rooms owned elsewhere would hold sockets no hub counts: each connection
//! takes a seat here for as long as its socket lives, under `max_connections` and
//! `max_connections_per_ip`, whatever node owns its room.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use switchboard_protocol::{ErrorCode, ProtocolError};

/// The sockets of this node, in all and per address.
#[derive(Debug)]
pub struct Sockets {
    max: usize,
    max_per_ip: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One socket's seat; given back when dropped.
#[derive(Debug)]
pub struct Seat {
    sockets: Arc<Sockets>,
    ip: IpAddr,
}

impl Sockets {
    /// At most `max` sockets, `max_per_ip` from one address.
    pub fn new(max: usize, max_per_ip: usize) -> Self {
        Self {
            max,
            max_per_ip,
            held: Mutex::new(Held::default()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a socket from `ip` fits (refused the way the hub refuses a join).
    pub fn check(&self, ip: IpAddr) -> Result<(), ProtocolError> {
        let held = self.held();
        if held.total >= self.max {
            return Err(ProtocolError::new(
                ErrorCode::TooManyConnections,
                format!("this node has reached max_connections ({})", self.max),
            ));
        }
        if held.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip {
            return Err(ProtocolError::new(
                ErrorCode::TooManyConnections,
                format!(
                    "your address has reached max_connections_per_ip ({}) on this node",
                    self.max_per_ip
                ),
            ));
        }
        Ok(())
    }

    /// Whether this node is full in all (not just for one address).
    pub fn is_full(&self) -> bool {
        self.held().total >= self.max
    }

    /// Takes a seat for a socket from `ip`, if one is free.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Result<Seat, ProtocolError> {
        self.check(ip)?;
        let mut held = self.held();
        held.total += 1;
        *held.per_ip.entry(ip).or_insert(0) += 1;
        Ok(Seat {
            sockets: self.clone(),
            ip,
        })
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut held = self.sockets.held();
        held.total = held.total.saturating_sub(1);
        if let Some(count) = held.per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                held.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn seats_are_counted_per_address_and_in_all_and_given_back() {
        let sockets = Arc::new(Sockets::new(3, 2));
        let a = sockets.take(ip(1)).unwrap();
        let _b = sockets.take(ip(1)).unwrap();
        let refused = sockets.take(ip(1)).unwrap_err();
        assert_eq!(refused.code, ErrorCode::TooManyConnections);
        assert!(refused.message.contains("max_connections_per_ip"));
        let _c = sockets.take(ip(2)).unwrap();
        assert!(sockets.is_full());
        assert!(sockets
            .take(ip(3))
            .unwrap_err()
            .message
            .contains("max_connections ("));
        drop(a);
        assert!(!sockets.is_full());
        let _d = sockets.take(ip(1)).unwrap();
    }
}
