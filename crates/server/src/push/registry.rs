//! Web Push subscriptions by user, and the decision to push: who is subscribed, whether a target
//! may get another push now (a token bucket per target), what to forget when the push service
//! says a subscription is gone. A pure state machine: the time is passed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

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

/// Checks a subscription as a browser writes it: an endpoint `endpoint::check_url` accepts
/// (`allowed_hosts`; `local` for a local push service), a 65-byte `p256dh` on the curve and a
/// 16-byte `auth`, at most `max_bytes` as JSON.
pub fn parse_subscription(
    subscription: &Payload,
    allowed_hosts: &[String],
    local: bool,
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
    let uri: http::Uri = parsed
        .endpoint
        .parse()
        .map_err(|_| invalid("the subscription endpoint is not a URL"))?;
    super::endpoint::check_url(&uri, allowed_hosts, local)
        .map_err(|why| invalid(format!("the subscription endpoint: {why}")))?;
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
    /// Most subscriptions stored from one address.
    pub max_per_ip: usize,
    /// How long a subscription is kept after it was stored (storing it again renews it).
    pub ttl: Duration,
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
    /// `push.max_in_flight` pushes are under way.
    Busy,
}

#[derive(Debug)]
struct Entry {
    subscription: Subscription,
    bucket: TokenBucket,
    ip: IpAddr,
    expires: Instant,
}

/// Subscriptions by user.
#[derive(Debug)]
pub struct Registry {
    limits: RegistryLimits,
    entries: HashMap<Address, Entry>,
    per_ip: HashMap<IpAddr, usize>,
}

impl Registry {
    /// An empty registry.
    pub fn new(limits: RegistryLimits) -> Self {
        Self {
            limits,
            entries: HashMap::new(),
            per_ip: HashMap::new(),
        }
    }

    /// Stores `who`'s subscription from `ip` (replacing an earlier one, renewing its time),
    /// unless the registry or the address's share is full (expired ones make room first).
    pub fn subscribe(
        &mut self,
        who: Address,
        subscription: Subscription,
        ip: IpAddr,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        let full = |why: String| Err(ProtocolError::new(ErrorCode::Throttled, why));
        let replacing_own = self.entries.get(&who).is_some_and(|e| e.ip == ip);
        if !replacing_own {
            if self.entries.len() >= self.limits.max_subscriptions {
                self.forget_expired(now);
            }
            if !self.entries.contains_key(&who)
                && self.entries.len() >= self.limits.max_subscriptions
            {
                return full(format!(
                    "the server holds push.max_subscriptions ({}) subscriptions",
                    self.limits.max_subscriptions
                ));
            }
            if self.per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.max_per_ip {
                return full(format!(
                    "your address has push.max_subscriptions_per_ip ({}) subscriptions",
                    self.limits.max_per_ip
                ));
            }
        }
        self.unsubscribe(&who);
        *self.per_ip.entry(ip).or_insert(0) += 1;
        let bucket = TokenBucket::full(self.limits.per_target_burst, now);
        let expires = now + self.limits.ttl;
        self.entries.insert(
            who,
            Entry {
                subscription,
                bucket,
                ip,
                expires,
            },
        );
        Ok(())
    }

    /// Forgets `who`'s subscription.
    pub fn unsubscribe(&mut self, who: &Address) {
        if let Some(entry) = self.entries.remove(who) {
            if let Some(count) = self.per_ip.get_mut(&entry.ip) {
                *count -= 1;
                if *count == 0 {
                    self.per_ip.remove(&entry.ip);
                }
            }
        }
    }

    fn forget_expired(&mut self, now: Instant) {
        let expired: Vec<Address> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires <= now)
            .map(|(who, _)| who.clone())
            .collect();
        for who in expired {
            self.unsubscribe(&who);
        }
    }

    /// The subscription to push to for `target` now, or why not.
    pub fn request(&mut self, target: &Address, now: Instant) -> Result<Subscription, Refused> {
        if self.entries.get(target).is_some_and(|e| e.expires <= now) {
            self.unsubscribe(target);
        }
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
            self.unsubscribe(target);
        }
    }

    /// Subscriptions held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none are held.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256DH: &str =
        "BMANk-kMXjsxdbf2HHMPZvtMPbGMepWvW5OVxZHrA8IHc-Fq2BWKVmf79yXJ2SICWcRT7QcRcnw3vczXZgjGBwk";
    const AUTH: &str = "z4wKWSA9dRHE6tMpsdbD-w";

    const LIMITS: RegistryLimits = RegistryLimits {
        max_subscriptions: 3,
        max_per_ip: 2,
        ttl: Duration::from_secs(60),
        per_target_rate: 1.0,
        per_target_burst: 2,
    };

    fn subscription(endpoint: &str) -> Payload {
        let json = serde_json::json!({"endpoint": endpoint, "expirationTime": null, "keys": {"p256dh": P256DH, "auth": AUTH}});
        Payload::from_json(&json.to_string()).unwrap()
    }

    fn any() -> Vec<String> {
        vec!["*".to_string()]
    }

    fn parse(endpoint: &str) -> Subscription {
        parse_subscription(&subscription(endpoint), &any(), false, 1024).unwrap()
    }

    fn at(name: &str) -> Address {
        ("room".into(), name.into())
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn browser_subscriptions_parse_and_bad_ones_say_why() {
        let parsed = parse("https://push.example/x");
        assert_eq!(parsed.endpoint, "https://push.example/x");
        assert_eq!(parsed.p256dh.len(), 65);
        let http = subscription("http://127.0.0.1:1/x");
        assert!(
            parse_subscription(&http, &any(), false, 1024).is_err(),
            "https only"
        );
        assert!(
            parse_subscription(&http, &[], true, 1024).is_ok(),
            "a local push service"
        );
        let fcm_only = ["fcm.googleapis.com".to_string()];
        let elsewhere = subscription("https://push.example/x");
        assert!(parse_subscription(&elsewhere, &fcm_only, false, 1024).is_err());
        let size = elsewhere.to_json_string().unwrap().len();
        assert!(parse_subscription(&elsewhere, &any(), false, size).is_ok());
        assert!(parse_subscription(&elsewhere, &any(), false, size - 1).is_err());
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
                parse_subscription(&payload, &any(), false, 1024).map_err(|e| e.code),
                Err(ErrorCode::InvalidMessage),
                "{text}"
            );
        }
        let short_auth = serde_json::json!({"endpoint": "https://p/x", "keys": {"p256dh": P256DH, "auth": "AAAA"}});
        let payload = Payload::from_json(&short_auth.to_string()).unwrap();
        assert!(
            parse_subscription(&payload, &any(), false, 1024).is_err(),
            "auth of 3 bytes"
        );
        // 65 bytes starting with 4, but not a point on the curve.
        let mut off_curve = vec![4u8; 65];
        off_curve[1] = 1;
        let off_curve = serde_json::json!({"endpoint": "https://p/x", "keys": {"p256dh": URL_SAFE_NO_PAD.encode(off_curve), "auth": AUTH}});
        let payload = Payload::from_json(&off_curve.to_string()).unwrap();
        assert!(
            parse_subscription(&payload, &any(), false, 1024).is_err(),
            "off the curve"
        );
    }

    #[test]
    fn pushes_per_target_are_rate_limited_and_gone_subscriptions_forgotten() {
        let now = Instant::now();
        let mut registry = Registry::new(LIMITS);
        let sub = parse("https://p/ann");
        assert_eq!(
            registry.request(&at("ann"), now),
            Err(Refused::NotSubscribed)
        );
        registry
            .subscribe(at("ann"), sub.clone(), ip(1), now)
            .unwrap();
        assert_eq!(registry.request(&at("ann"), now), Ok(sub.clone()));
        assert_eq!(registry.request(&at("ann"), now), Ok(sub.clone()));
        assert_eq!(registry.request(&at("ann"), now), Err(Refused::Throttled));
        let later = now + Duration::from_secs(1);
        assert_eq!(registry.request(&at("ann"), later), Ok(sub.clone()));
        // A gone endpoint is forgotten, but not a newer subscription.
        registry
            .subscribe(at("ann"), parse("https://p/ann2"), ip(1), later)
            .unwrap();
        registry.gone(&at("ann"), "https://p/ann");
        assert_eq!(registry.len(), 1);
        registry.gone(&at("ann"), "https://p/ann2");
        assert!(registry.is_empty());
    }

    #[test]
    fn subscriptions_are_bounded_in_all_per_address_and_in_time() {
        let now = Instant::now();
        let mut registry = Registry::new(LIMITS);
        let sub = parse("https://p/x");
        registry
            .subscribe(at("a"), sub.clone(), ip(1), now)
            .unwrap();
        registry
            .subscribe(at("b"), sub.clone(), ip(1), now)
            .unwrap();
        // Per address: a third from the same address is refused, from another it is not.
        let third = registry.subscribe(at("c"), sub.clone(), ip(1), now);
        assert_eq!(third.map_err(|e| e.code), Err(ErrorCode::Throttled));
        registry
            .subscribe(at("c"), sub.clone(), ip(2), now)
            .unwrap();
        // In all: full at 3; replacing one's own still works.
        let fourth = registry.subscribe(at("d"), sub.clone(), ip(3), now);
        assert_eq!(fourth.map_err(|e| e.code), Err(ErrorCode::Throttled));
        registry
            .subscribe(at("a"), sub.clone(), ip(1), now)
            .unwrap();
        // In time: expired subscriptions are not pushed to and make room.
        let expired = now + LIMITS.ttl;
        assert_eq!(
            registry.request(&at("c"), expired),
            Err(Refused::NotSubscribed)
        );
        registry
            .subscribe(at("d"), sub.clone(), ip(3), expired)
            .unwrap();
        assert_eq!(registry.len(), 3, "a and b linger until room is needed");
        registry
            .subscribe(at("e"), sub.clone(), ip(5), expired)
            .unwrap();
        assert_eq!(registry.len(), 2, "a and b made room for e");
        assert_eq!(
            registry.request(&at("a"), expired),
            Err(Refused::NotSubscribed)
        );
        // Another address taking a name replaces it, counted against the new address.
        registry.subscribe(at("d"), sub, ip(4), expired).unwrap();
        assert_eq!(registry.len(), 2);
    }
}
