//! What a connection speaks (Switchboard's protocol in either encoding, or a compatible
//! protocol), and the translation of frames to and from the hub's messages for each.

use axum::extract::ws::Message;
use bytes::Bytes;
use switchboard_protocol::{
    decode_client, encode_server, ClientMessage, Encoded, Encoding, ErrorCode, Frame, Payload,
    ProtocolError, ServerMessage, Target,
};

use crate::compat::{matchbox, peerjs, rustysignal};
use crate::push::PushAction;

/// What a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Protocol v1, JSON or MessagePack.
    Switchboard(Encoding),
    /// matchbox_server's JSON protocol (`compat::matchbox`).
    Matchbox,
    /// peerjs-server's JSON protocol (`compat::peerjs`).
    Peerjs,
    /// rustysignal's JSON protocol (`compat::rustysignal`).
    Rustysignal,
}

impl Wire {
    /// How many wires there are: the size of a delivery's per-wire frame cache.
    pub const COUNT: usize = 5;

    /// Index of the wire's frame in a delivery's per-wire cache.
    pub fn slot(self) -> usize {
        match self {
            Self::Switchboard(encoding) => encoding as usize,
            Self::Matchbox => 2,
            Self::Peerjs => 3,
            Self::Rustysignal => 4,
        }
    }

    /// The wire of a slot ([`Wire::slot`]), as cluster records carry it.
    pub fn from_slot(slot: u8) -> Option<Self> {
        Some(match slot {
            0 => Self::Switchboard(Encoding::Json),
            1 => Self::Switchboard(Encoding::MsgPack),
            2 => Self::Matchbox,
            3 => Self::Peerjs,
            4 => Self::Rustysignal,
            _ => return None,
        })
    }

    /// The protocol's name in metrics labels.
    pub fn protocol(self) -> &'static str {
        match self {
            Self::Switchboard(_) => "switchboard",
            Self::Matchbox => "matchbox",
            Self::Peerjs => "peerjs",
            Self::Rustysignal => "rustysignal",
        }
    }

    /// Whether a client's close frame with this code means it does not mean to resume. On
    /// Switchboard's protocol only a normal close (1000) does; a PeerJS client that closes its
    /// socket (any code: browsers send none, or 1001 when the page goes) has left, as
    /// peerjs-server takes it, so its id is free again at once.
    pub fn is_goodbye(self, code: Option<u16>) -> bool {
        match self {
            Self::Peerjs => true,
            _ => code == Some(1000),
        }
    }

    /// Whether a bad frame closes the connection: PeerJS has no error a client survives, so a
    /// bad frame is answered with `ERROR` and a close. The other wires answer and carry on.
    pub fn closes_on_bad_input(self) -> bool {
        self == Self::Peerjs
    }
}

/// A frame from a client, decoded.
#[derive(Debug)]
pub enum Inbound {
    /// A keep-alive: being heard is all it does.
    KeepAlive,
    /// A message for the hub core.
    Hub(ClientMessage),
    /// rustysignal's `one-to-all`: to everyone else in the room, then back to the sender.
    RoomAndSelf(Payload),
    /// A PeerJS message for another id (held for it when that id is not connected).
    Peerjs(peerjs::Relay),
    /// A Web Push action. For a connection request to a user who is connected, `routed` (if
    /// any) is what to do instead: rustysignal routes the request as its protocol says.
    Push {
        /// The action.
        action: PushAction,
        /// What a connected target gets instead of a push.
        routed: Option<Box<Inbound>>,
    },
}

/// A native message that is a Web Push action, as one; the rest for the hub.
fn native(message: ClientMessage) -> Inbound {
    let action = match message {
        ClientMessage::PushSubscribe { subscription } => PushAction::Subscribe(subscription),
        ClientMessage::PushUnsubscribe => PushAction::Unsubscribe,
        ClientMessage::ConnectionRequest { name } => PushAction::Request { to: name },
        other => return Inbound::Hub(other),
    };
    Inbound::Push {
        action,
        routed: None,
    }
}

/// Where a rustysignal text goes, as the hub's message.
fn routed(route: rustysignal::Route, data: Payload) -> Inbound {
    match route {
        rustysignal::Route::All => Inbound::RoomAndSelf(data),
        rustysignal::Route::Myself => Inbound::Hub(ClientMessage::Signal {
            to: Target::Myself,
            data,
        }),
        rustysignal::Route::One(name) => Inbound::Hub(ClientMessage::Signal {
            to: Target::Name(name),
            data,
        }),
    }
}

fn text<'a>(frame: Frame<'a>, protocol: &str) -> Result<&'a str, ProtocolError> {
    match frame {
        Frame::Text(bytes) => std::str::from_utf8(bytes)
            .map_err(|_| ProtocolError::new(ErrorCode::Malformed, "not UTF-8")),
        Frame::Binary(_) => Err(ProtocolError::new(
            ErrorCode::WrongFrameType,
            format!("{protocol} messages are text frames"),
        )),
    }
}

/// Decodes one frame. `own_name` is the sender's user name (a PeerJS peer's id).
pub fn decode(frame: Frame<'_>, wire: Wire, own_name: &str) -> Result<Inbound, ProtocolError> {
    match wire {
        Wire::Switchboard(encoding) => decode_client(frame, encoding).map(native),
        Wire::Matchbox => Ok(matchbox::decode_request(text(frame, "matchbox")?)?
            .map_or(Inbound::KeepAlive, Inbound::Hub)),
        Wire::Peerjs => Ok(
            match peerjs::decode_request(text(frame, "PeerJS")?, own_name)? {
                peerjs::Request::Heartbeat => Inbound::KeepAlive,
                peerjs::Request::Relay(relay) => Inbound::Peerjs(relay),
            },
        ),
        Wire::Rustysignal => {
            let request = rustysignal::decode_request(text(frame, "rustysignal")?)?;
            let payload = request.payload;
            let route = request.route.map(|route| routed(route, payload));
            Ok(match (request.push, route) {
                (Some(action), routed) => Inbound::Push {
                    action,
                    routed: routed.map(Box::new),
                },
                (None, Some(route)) => route,
                // A message with neither a route nor a push action is refused when decoded.
                (None, None) => Inbound::KeepAlive,
            })
        }
    }
}

/// Encodes a message as a WebSocket frame for `wire`; `None` when the wire has no such message.
pub fn encode_for(message: &ServerMessage, wire: Wire) -> Option<Result<Message, ProtocolError>> {
    let text = match wire {
        Wire::Switchboard(encoding) => return Some(encode(message, encoding)),
        Wire::Matchbox => matchbox::encode_event(message),
        Wire::Peerjs => peerjs::encode_event(message),
        Wire::Rustysignal => rustysignal::encode_event(message),
    };
    text.map(|text| text.map(|text| Message::Text(text.into())))
}

/// The frame that tells a client why the server closes its connection, if its wire has one.
pub fn encode_closing(error: &ProtocolError, wire: Wire) -> Option<Message> {
    match wire {
        Wire::Peerjs => Some(Message::Text(peerjs::closing_event(error).into())),
        _ => {
            let message = ServerMessage::Error {
                code: error.code,
                message: error.message.clone(),
            };
            encode_for(&message, wire).and_then(Result::ok)
        }
    }
}

/// Encodes a message as a WebSocket frame of Switchboard's protocol.
pub fn encode(message: &ServerMessage, encoding: Encoding) -> Result<Message, ProtocolError> {
    Ok(match encode_server(message, encoding)? {
        Encoded::Text(text) => Message::Text(text.into()),
        Encoded::Binary(bytes) => Message::Binary(Bytes::from(bytes)),
    })
}
