//! What a decoded frame does: the hub acts on it, a PeerJS message for an absent id is held,
//! a Web Push action goes to the push service. Methods of [`Speaker`], the peer that sent it.

use std::time::Instant;

use switchboard_protocol::{validate_user_name, ClientMessage, ErrorCode, ProtocolError, Target};

use std::net::IpAddr;

use switchboard_protocol::PeerId;

use crate::compat::mailbox::Held;
use crate::compat::peerjs;
use crate::push::registry::Refused;
use crate::push::PushAction;
use crate::relay::Relay;
use crate::server::Shared;
use crate::wire::{Inbound, Wire};

/// A joined peer as its frames are acted on: by its connection's task, or, in cluster mode, by
/// the node that owns its room.
#[derive(Debug, Clone)]
pub struct Speaker {
    /// The peer.
    pub id: PeerId,
    /// Its connection.
    pub conn: u64,
    /// What the connection speaks.
    pub wire: Wire,
    /// The peer's room and user name (a PeerJS peer's key and id; empty without a name).
    pub room: String,
    /// Its user name.
    pub name: String,
    /// `ws(s)://host` as the client reached the server.
    pub origin: String,
    /// Where the client connects from.
    pub ip: IpAddr,
}

impl Speaker {
    /// Carries out one decoded frame.
    pub fn dispatch(&self, shared: &Shared, relay: &mut Relay, inbound: Inbound, now: Instant) {
        match inbound {
            Inbound::KeepAlive => {}
            Inbound::Hub(message) => self.to_hub(shared, relay, message, now),
            Inbound::RoomAndSelf(data) => {
                let effects = relay.hub.signal_everyone(self.id, self.conn, data, now);
                shared.settle_from(relay, effects, Some(self.id));
            }
            Inbound::Peerjs(message) => self.to_peerjs(shared, relay, message, now),
            Inbound::Push { action, routed } => self.to_push(shared, relay, action, routed, now),
        }
    }

    /// A Web Push action: store or forget the sender's subscription, or ask a user who is away
    /// to connect. A connected target gets `routed` instead (rustysignal routes the request).
    fn to_push(
        &self,
        shared: &Shared,
        relay: &mut Relay,
        action: PushAction,
        routed: Option<Box<Inbound>>,
        now: Instant,
    ) {
        let metrics = &shared.metrics;
        let refuse = |relay: &mut Relay, code, why: String| {
            relay.send_error(self.id, ProtocolError::new(code, why), metrics);
        };
        // Push actions cost the sender's message budget like relayed messages.
        if let Err(effects) = relay.hub.charge(self.id, self.conn, now) {
            shared.settle_from(relay, effects, Some(self.id));
            return;
        }
        if let PushAction::Request { to } = &action {
            if let Err(why) = validate_user_name(to) {
                return refuse(relay, ErrorCode::InvalidMessage, format!("the name {why}"));
            }
        }
        let target_connected = match &action {
            PushAction::Request { to } => relay.hub.connected_by_name(&self.room, to).is_some(),
            _ => false,
        };
        let Some(push) = shared.push.as_ref().filter(|_| !target_connected) else {
            match routed {
                Some(inbound) => self.dispatch(shared, relay, *inbound, now),
                None if target_connected => refuse(
                    relay,
                    ErrorCode::InvalidMessage,
                    "that user is connected: send them a message instead".into(),
                ),
                None => refuse(
                    relay,
                    ErrorCode::InvalidMessage,
                    "push is off on this server (it has no push.vapid_key)".into(),
                ),
            }
            return;
        };
        if self.name.is_empty() {
            let why = "push needs a user name: connect with ?user=".into();
            return refuse(relay, ErrorCode::InvalidMessage, why);
        }
        let me = (self.room.clone(), self.name.clone());
        match action {
            PushAction::Subscribe(subscription) => {
                if let Err(error) = push.subscribe(me, &subscription, self.ip) {
                    relay.send_error(self.id, error, metrics);
                }
            }
            PushAction::Unsubscribe => push.unsubscribe(&me),
            PushAction::Request { to } => {
                let url = connect_url(&self.origin, self.wire, &self.room);
                let target = (self.room.clone(), to.clone());
                match push.request(target, &self.name, &url, &shared.tasks) {
                    Ok(()) => {}
                    Err(Refused::NotSubscribed) => refuse(
                        relay,
                        ErrorCode::UnknownName,
                        format!("{to} is not connected and has no push subscription"),
                    ),
                    Err(Refused::Throttled) => refuse(
                        relay,
                        ErrorCode::Throttled,
                        format!(
                            "{to} had pushes enough for now (push.pushes_per_target_per_minute)"
                        ),
                    ),
                    Err(Refused::Busy) => refuse(
                        relay,
                        ErrorCode::Throttled,
                        "the server has push.max_in_flight pushes under way: try again".into(),
                    ),
                }
            }
        }
    }

    /// Lets the hub act on one message and carries out what it decided.
    fn to_hub(&self, shared: &Shared, relay: &mut Relay, message: ClientMessage, now: Instant) {
        let effects = relay.hub.handle(self.id, self.conn, message, now);
        if !effects.closes.is_empty() {
            shared.update_gauges(relay);
        }
        shared.settle_from(relay, effects, Some(self.id));
    }

    /// A PeerJS message: to its recipient through the hub when it is connected, else held for
    /// it (offers, answers, candidates) or dropped (`LEAVE`, `EXPIRE`), as peerjs-server does.
    fn to_peerjs(&self, shared: &Shared, relay: &mut Relay, message: peerjs::Relay, now: Instant) {
        if relay
            .hub
            .connected_by_name(&self.room, &message.dst)
            .is_some()
        {
            let signal = ClientMessage::Signal {
                to: Target::Name(message.dst),
                data: message.message,
            };
            self.to_hub(shared, relay, signal, now);
            return;
        }
        if !message.hold {
            return;
        }
        // Held messages cost the sender's message budget like relayed ones.
        if let Err(effects) = relay.hub.charge(self.id, self.conn, now) {
            shared.settle_from(relay, effects, Some(self.id));
            return;
        }
        let Ok(text) = message.message.to_json_string() else {
            return;
        };
        let held = Held {
            from: self.ip,
            sender_name: self.name.clone(),
            text,
        };
        match relay
            .mailboxes
            .hold((self.room.clone(), message.dst), held, now)
        {
            Ok(true) => shared.reaper.notify_one(),
            Ok(false) => {}
            Err(expired) => relay.send_expire(&expired, &shared.metrics),
        }
    }
}

/// Where a push tells a user of `room` to connect: the endpoint the asker used.
fn connect_url(origin: &str, wire: Wire, room: &str) -> String {
    match wire {
        Wire::Rustysignal => {
            let network = room.strip_prefix("rustysignal:").unwrap_or(room);
            format!("{origin}/rustysignal/{network}")
        }
        _ => format!("{origin}/ws/{room}"),
    }
}
