//! Web Push subscriptions by user, and the decision to push: who is subscribed, whether a target
//! may get another push now (a token bucket per target), what to forget when the push service
//! says a subscription is gone. A pure state machine: the time is passed in.

use std::collections::HashMap;
use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use switchboard_protocol::rate::TokenBucket;
use switchboard_protocol::{ErrorCode, Payload, ProtocolError};

/// A room (or directory) and a user name in it.
pub type Address = (String, String);

/// A browser's push subscription (`PushSubscription.toJSON()`), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The push service URL to POST to.
    pub endpoint: String,
    /// The browser's P-256 public key, uncompressed (65 bytes).
    pub p256dh: Vec<u8>,
    /// The browser's authentication secret (16 bytes).
    pub auth: [u8; 16],
}

#[derive(Deserialize)]
struct SubscriptionJson {
    endpoint: String,
    keys: KeysJson,
}

#[derive(Deserialize)]
struct KeysJson {
    p256dh: String,
    auth: String,
}

fn invalid(why: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidMessage, why)
}

fn base64url(field: &str, text: &str) -> Result<Vec<u8>, ProtocolError> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| invalid(format!("subscription keys.{field} is not base64url")))
}

/// Checks a subscription as a browser writes it: an `https:` endpoint (`http:` only when
/// `allow_http`), a 65-byte `p256dh` and a 16-byte `auth`, at most `max_bytes` as JSON.
pub fn parse_subscription(
    subscription: &Payload,
    allow_http: bool,
    max_bytes: usize,
) -> Result<Subscription, ProtocolError> {
    let text = subscription
        .to_json_string()
        .map_err(|e| invalid(e.to_string()))?;
    if text.len() > max_bytes {
        return Err(invalid(format!(
            "the subscription is {} bytes, over push.max_subscription_bytes ({max_bytes})",
            text.len()
        )));
    }
    let parsed: SubscriptionJson = serde_json::from_str(&text).map_err(|e| {
        invalid(format!(
            "a push subscription is {{endpoint, keys: {{p256dh, auth}}}}: {e}"
        ))
    })?;
    let plain_allowed = allow_http && parsed.endpoint.starts_with("http://");
    if !(parsed.endpoint.starts_with("https://") || plain_allowed) {
        return Err(invalid("the subscription endpoint must be an https: URL"));
    }
    if parsed.endpoint.parse::<http::Uri>().is_err() {
        return Err(invalid("the subscription endpoint is not a URL"));
    }
    let p256dh = base64url("p256dh", &parsed.keys.p256dh)?;
    let on_curve = web_push_native::p256::PublicKey::from_sec1_bytes(&p256dh).is_ok();
    if p256dh.len() != 65 || !on_curve {
        return Err(invalid(
            "subscription keys.p256dh must be an uncompressed P-256 point (65 bytes)",
        ));
    }
    let auth: [u8; 16] = base64url("auth", &parsed.keys.auth)?
        .try_into()
        .map_err(|_| invalid("subscription keys.auth must be 16 bytes"))?;
    Ok(Subscription {
        endpoint: parsed.endpoint,
        p256dh,
        auth,
    })
}

/// The registry's bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegistryLimits {
    /// Most subscriptions held.
    pub max_subscriptions: usize,
    /// Sustained pushes per second to one user.
    pub per_target_rate: f64,
    /// Pushes to one user in a burst above that rate.
    pub per_target_burst: u32,
}

/// Why no push goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The user has no subscription.
    NotSubscribed,
    /// The user had pushes enough for now.
    Throttled,
}

#[derive(Debug)]
struct Entry {
    subscription: Subscription,
    bucket: TokenBucket,
}

/// Subscriptions by user.
#[derive(Debug)]
pub struct Registry {
    limits: RegistryLimits,
    entries: HashMap<Address, Entry>,
}

impl Registry {
    /// An empty registry.
    pub fn new(limits: RegistryLimits) -> Self {
        Self {
            limits,
            entries: HashMap::new(),
        }
    }

    /// Stores `who`'s subscription (replacing an earlier one), unless the registry is full.
    pub fn subscribe(
        &mut self,
        who: Address,
        subscription: Subscription,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        if !self.entries.contains_key(&who) && self.entries.len() >= self.limits.max_subscriptions {
            return Err(ProtocolError::new(
                ErrorCode::Throttled,
                format!(
                    "the server holds push.max_subscriptions ({}) subscriptions",
                    self.limits.max_subscriptions
                ),
            ));
        }
        let bucket = TokenBucket::full(self.limits.per_target_burst, now);
        self.entries.insert(
            who,
            Entry {
                subscription,
                bucket,
            },
        );
        Ok(())
    }

    /// Forgets `who`'s subscription.
    pub fn unsubscribe(&mut self, who: &Address) {
        self.entries.remove(who);
    }

    /// The subscription to push to for `target` now, or why not.
    pub fn request(&mut self, target: &Address, now: Instant) -> Result<Subscription, Refused> {
        let limits = self.limits;
        let entry = self.entries.get_mut(target).ok_or(Refused::NotSubscribed)?;
        let rate = limits.per_target_rate;
        if !entry
            .bucket
            .try_take_amount(rate, limits.per_target_burst, 1.0, now)
        {
            return Err(Refused::Throttled);
        }
        Ok(entry.subscription.clone())
    }

    /// The push service said `endpoint` is gone (404, 410): forgets it, unless `target` has
    /// subscribed anew since.
    pub fn gone(&mut self, target: &Address, endpoint: &str) {
        if self
            .entries
            .get(target)
            .is_some_and(|e| e.subscription.endpoint == endpoint)
        {
            self.entries.remove(target);
        }
    }

    /// Subscriptions held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const P256DH: &str =
        "BMANk-kMXjsxdbf2HHMPZvtMPbGMepWvW5OVxZHrA8IHc-Fq2BWKVmf79yXJ2SICWcRT7QcRcnw3vczXZgjGBwk";
    const AUTH: &str = "z4wKWSA9dRHE6tMpsdbD-w";

    fn subscription(endpoint: &str) -> Payload {
        Payload::from_json(
            &serde_json::json!({"endpoint": endpoint, "expirationTime": null, "keys": {"p256dh": P256DH, "auth": AUTH}})
                .to_string(),
        )
        .unwrap()
    }

    fn at(name: &str) -> Address {
        ("room".into(), name.into())
    }

    const LIMITS: RegistryLimits = RegistryLimits {
        max_subscriptions: 2,
        per_target_rate: 1.0,
        per_target_burst: 2,
    };

    #[test]
    fn browser_subscriptions_parse_and_bad_ones_say_why() {
        let parsed =
            parse_subscription(&subscription("https://push.example/x"), false, 1024).unwrap();
        assert_eq!(parsed.endpoint, "https://push.example/x");
        assert_eq!(parsed.p256dh.len(), 65);
        let http = subscription("http://127.0.0.1:1/x");
        assert!(
            parse_subscription(&http, false, 1024).is_err(),
            "https only by default"
        );
        assert!(parse_subscription(&http, true, 1024).is_ok());
        let size = subscription("https://push.example/x")
            .to_json_string()
            .unwrap()
            .len();
        assert!(parse_subscription(&subscription("https://push.example/x"), false, size).is_ok());
        assert!(
            parse_subscription(&subscription("https://push.example/x"), false, size - 1).is_err()
        );
        let bad = [
            r#"{"endpoint":"https://p/x"}"#,
            r#"{"endpoint":"https://p/x","keys":{"p256dh":"AAAA","auth":"z4wKWSA9dRHE6tMpsdbD-w"}}"#,
            r#"{"endpoint":"https://p/x","keys":{"p256dh":"!!","auth":"z4wKWSA9dRHE6tMpsdbD-w"}}"#,
            r#"{"endpoint":"ftp://p/x","keys":{"p256dh":"a","auth":"a"}}"#,
            r#"[1]"#,
        ];
        for text in bad {
            let payload = Payload::from_json(text).unwrap();
            assert_eq!(
                parse_subscription(&payload, false, 1024).map_err(|e| e.code),
                Err(ErrorCode::InvalidMessage),
                "{text}"
            );
        }
        let short_auth = serde_json::json!({"endpoint": "https://p/x", "keys": {"p256dh": P256DH, "auth": "AAAA"}});
        let payload = Payload::from_json(&short_auth.to_string()).unwrap();
        assert!(
            parse_subscription(&payload, false, 1024).is_err(),
            "auth of 3 bytes"
        );
        // 65 bytes starting with 4, but not a point on the curve.
        let mut off_curve = vec![4u8; 65];
        off_curve[1] = 1;
        let off_curve = serde_json::json!({"endpoint": "https://p/x", "keys": {"p256dh": URL_SAFE_NO_PAD.encode(off_curve), "auth": AUTH}});
        let payload = Payload::from_json(&off_curve.to_string()).unwrap();
        assert!(
            parse_subscription(&payload, false, 1024).is_err(),
            "off the curve"
        );
    }

    #[test]
    fn pushes_per_target_are_rate_limited_and_gone_subscriptions_forgotten() {
        let now = Instant::now();
        let mut registry = Registry::new(LIMITS);
        let sub = parse_subscription(&subscription("https://p/ann"), false, 1024).unwrap();
        assert_eq!(
            registry.request(&at("ann"), now),
            Err(Refused::NotSubscribed)
        );
        registry.subscribe(at("ann"), sub.clone(), now).unwrap();
        assert_eq!(registry.request(&at("ann"), now), Ok(sub.clone()));
        assert_eq!(registry.request(&at("ann"), now), Ok(sub.clone()));
        assert_eq!(registry.request(&at("ann"), now), Err(Refused::Throttled));
        let later = now + Duration::from_secs(1);
        assert_eq!(registry.request(&at("ann"), later), Ok(sub.clone()));
        // A gone endpoint is forgotten, but not a newer subscription.
        let newer = parse_subscription(&subscription("https://p/ann2"), false, 1024).unwrap();
        registry.subscribe(at("ann"), newer, later).unwrap();
        registry.gone(&at("ann"), "https://p/ann");
        assert_eq!(registry.len(), 1);
        registry.gone(&at("ann"), "https://p/ann2");
        assert!(registry.is_empty());
    }

    #[test]
    fn the_registry_holds_max_subscriptions() {
        let now = Instant::now();
        let mut registry = Registry::new(LIMITS);
        let sub = parse_subscription(&subscription("https://p/x"), false, 1024).unwrap();
        registry.subscribe(at("a"), sub.clone(), now).unwrap();
        registry.subscribe(at("b"), sub.clone(), now).unwrap();
        assert_eq!(
            registry
                .subscribe(at("c"), sub.clone(), now)
                .map_err(|e| e.code),
            Err(ErrorCode::Throttled)
        );
        // Replacing one's own still works when full.
        registry.subscribe(at("a"), sub.clone(), now).unwrap();
        registry.unsubscribe(&at("b"));
        registry.subscribe(at("c"), sub, now).unwrap();
    }
}
