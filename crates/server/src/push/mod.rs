//! Web Push for peers who are away: a peer registers its browser's push subscription under its
//! user name; a connection request for a user who is not connected sends that user a push saying
//! who asks and where to connect. Used by rustysignal's `subscribe-push` / `connection-request`
//! and by native peers' `push_subscribe` / `connection_request` (docs/protocol.md). Off unless
//! `push.vapid_key` is set.

pub mod endpoint;
pub mod registry;
pub mod sender;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use switchboard_protocol::{Payload, ProtocolError};
use tokio_util::task::TaskTracker;

use crate::config::PushConfig;
use crate::metrics::{Metrics, PushOutcomes};
use registry::{parse_subscription, Address, Refused, Registry, RegistryLimits};
use sender::{Outcome, Sender, SenderConfig};

/// What a peer asks of the push service.
#[derive(Debug, Clone, PartialEq)]
pub enum PushAction {
    /// Store this subscription under the sender's name.
    Subscribe(Payload),
    /// Forget the sender's subscription.
    Unsubscribe,
    /// Ask the user of this name to connect.
    Request {
        /// The user name.
        to: String,
    },
}

/// The push service of one server.
pub struct Push {
    registry: Mutex<Registry>,
    sender: Sender,
    allowed_hosts: Vec<String>,
    local: bool,
    max_subscription_bytes: usize,
    max_in_flight: usize,
    in_flight: AtomicUsize,
    outcomes: PushOutcomes,
}

/// Gives back a push's place among those in flight when its task ends.
struct InFlight(Arc<Push>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a push says: who asks, in which room or network, and where to connect. The fields of
/// rustysignal's push (`body`, `sender`, `actions`) come first, so its service workers read it.
pub fn connection_request_payload(sender: &str, room: &str, url: &str) -> String {
    serde_json::json!({
        "type": "connection_request",
        "body": format!("{sender}\nwants to connect with you"),
        "sender": sender,
        "actions": [
            {"action": "allowConnection", "title": "Allow"},
            {"action": "denyConnection", "title": "Deny"},
        ],
        "room": room,
        "url": url,
    })
    .to_string()
}

impl Push {
    /// The push service for `config`; `Ok(None)` when push is off.
    pub fn new(config: &PushConfig, metrics: &Metrics) -> Result<Option<Self>, String> {
        let Some(path) = &config.vapid_key else {
            return Ok(None);
        };
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("push.vapid_key {}: {e}", path.display()))?;
        let sender = Sender::new(
            &pem,
            SenderConfig {
                subject: config.subject.clone().unwrap_or_default(),
                ttl: Duration::from_secs(config.ttl_s),
                timeout: Duration::from_millis(config.timeout_ms),
                allowed_hosts: config.allowed_hosts.clone(),
                local: config.allow_http_endpoints,
            },
        )?;
        let limits = RegistryLimits {
            max_subscriptions: config.max_subscriptions,
            max_per_ip: config.max_subscriptions_per_ip,
            ttl: Duration::from_secs(config.subscription_ttl_s),
            per_target_rate: f64::from(config.pushes_per_target_per_minute) / 60.0,
            per_target_burst: config.push_burst_per_target,
        };
        Ok(Some(Self {
            registry: Mutex::new(Registry::new(limits)),
            sender,
            allowed_hosts: config.allowed_hosts.clone(),
            local: config.allow_http_endpoints,
            max_subscription_bytes: config.max_subscription_bytes,
            max_in_flight: config.max_in_flight,
            in_flight: AtomicUsize::new(0),
            outcomes: metrics.pushes(),
        }))
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The VAPID public key pages subscribe with.
    pub fn public_key(&self) -> &str {
        self.sender.public_key()
    }

    /// Stores `who`'s subscription (stored from `ip`), checked.
    pub fn subscribe(
        &self,
        who: Address,
        subscription: &Payload,
        ip: IpAddr,
    ) -> Result<(), ProtocolError> {
        let subscription = parse_subscription(
            subscription,
            &self.allowed_hosts,
            self.local,
            self.max_subscription_bytes,
        )?;
        self.registry()
            .subscribe(who, subscription, ip, Instant::now())
    }

    /// Forgets `who`'s subscription.
    pub fn unsubscribe(&self, who: &Address) {
        self.registry().unsubscribe(who);
    }

    /// Sends `target` a push in the background saying `from` asks to connect at `url`, unless
    /// it has no subscription, had pushes enough for now, or `push.max_in_flight` pushes are
    /// under way. A push service that says the subscription is gone makes the server forget it.
    pub fn request(
        self: &Arc<Self>,
        target: Address,
        from: &str,
        url: &str,
        tasks: &TaskTracker,
    ) -> Result<(), Refused> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.outcomes.count("busy");
            return Err(Refused::Busy);
        }
        let place = InFlight(self.clone());
        let subscription = match self.registry().request(&target, Instant::now()) {
            Ok(subscription) => subscription,
            Err(refused) => {
                self.outcomes.count(match refused {
                    Refused::NotSubscribed => "not_subscribed",
                    Refused::Throttled => "throttled",
                    Refused::Busy => "busy",
                });
                return Err(refused);
            }
        };
        let payload = connection_request_payload(from, &target.0, url);
        let push = self.clone();
        tasks.spawn(async move {
            let _place = place;
            let outcome = push.sender.send(&subscription, payload.as_bytes()).await;
            match &outcome {
                Outcome::Sent => push.outcomes.count("sent"),
                Outcome::Gone => {
                    push.registry().gone(&target, &subscription.endpoint);
                    push.outcomes.count("gone");
                }
                Outcome::Failed(why) => {
                    tracing::info!(endpoint = %subscription.endpoint, %why, "a push failed");
                    push.outcomes.count("failed");
                }
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_says_who_where_and_how_rustysignal_does() {
        let payload: serde_json::Value = serde_json::from_str(&connection_request_payload(
            "bob",
            "rustysignal:default",
            "wss://example.net/rustysignal",
        ))
        .unwrap();
        assert_eq!(payload["sender"], "bob");
        assert_eq!(payload["body"], "bob\nwants to connect with you");
        assert_eq!(payload["actions"][0]["action"], "allowConnection");
        assert_eq!(payload["room"], "rustysignal:default");
        assert_eq!(payload["url"], "wss://example.net/rustysignal");
    }
}
